//! Training for recipe on Burn's Learner (`SupervisedTraining`).
//!
//! - [`TrainConfig`] holds everything a run needs and is saved as
//!   `config.json`: what the data is ([`DataConfig`]), what the network is
//!   ([`NetworkConfig`]: recipe's MLP or your own) and how it is fitted
//!   ([`FitConfig`]).
//! - [`train`] trains any [`Classify`] network (recipe's [`Mlp`](recipe_models::Mlp)
//!   or your own) on the splits of an image dataset, records a per-epoch
//!   [`History`], evaluates the final model on train, validation and test, and
//!   writes the artifacts of [`RunArtifacts`] atomically.
//! - The lecture's remedies for overfitting plug into the Learner:
//!   [`EarlyStopping`] (with restore-best), penalties in the loss
//!   ([`Regularizer`] for L1/L2, [`GroupLasso`], or your own [`Penalty`]),
//!   constraints after each step ([`MaxNorm`], [`UnitNorm`], [`NonNeg`], or
//!   your own [`Constraint`]); dropout variants live in the models.
//! - Penalties and constraints see each parameter with its path, module and
//!   shape, grouped by unit ([`ParamTensor`]), so they work on linear
//!   weights and convolution kernels alike. Registered by name
//!   ([`register_penalty`], [`register_constraint`]), they are recorded in
//!   `config.json` and rebuilt by resume; so are a learning-rate schedule
//!   ([`LrScheduleFn`], [`register_lr_schedule`]) and an optimizer
//!   ([`OptimizerFn`], [`register_optimizer`]) of your own.
//! - Each Learner hook is Burn's own trait, so recipe's pieces work in a
//!   `SupervisedTraining` you build yourself: [`MetricEarlyStopping`] is an
//!   `EarlyStoppingStrategy` on any recorded metric (with restore-best),
//!   [`StopOnDivergence`] one that stops on a NaN loss, [`StopOnAny`] puts
//!   several in Burn's one early-stopping slot, [`AtomicFileCheckpointer`] a
//!   `Checkpointer`, [`RetainCheckpoints`] a `CheckpointingStrategy`,
//!   [`HistoryLogger`] a `MetricLogger` that keeps recipe's [`History`] and
//!   `history.csv`, [`EpochCsvLogger`] one writing a CSV row of epoch means
//!   of every metric, and [`Classifier`] a `TrainStep` that adds the
//!   penalties and applies the constraints. recipe's own trainer is built
//!   from exactly these pieces (`run.rs`).
//! - [`DeferredLossMetric`] and [`DeferredAccuracyMetric`] are Burn's loss
//!   and accuracy metrics (same names, same epoch values bit for bit) that
//!   read the device once per [`READ_METRICS_EVERY`] steps instead of once
//!   per step: on a GPU each read waits for the queue, and the Learner's
//!   training thread waits with it. Both are a [`DeferredMetric`]: give it
//!   a [`StepReading`] of your own for such a metric.
//! - [`TrainOptions::metrics`] adds metrics of your own to recipe's trainer:
//!   any numeric Burn metric of the classifier's outputs in a
//!   [`ClassMetric`], recorded per epoch in the [`History`] (`train_NAME`,
//!   `valid_NAME`), watched by early stopping, the plateau rule and the kept
//!   checkpoints through [`Metric::Recorded`], and measured on every split
//!   of the final model ([`evaluate_metrics`], `summary.json`'s `metrics`).
//! - [`TrainOptions::callbacks`] runs code of yours at every epoch's end
//!   with the history so far ([`EpochCallback`]), which may stop the run:
//!   a stopping rule of your own, a logger of your own.
//! - [`OptimizerConfig`] picks the optimizer: Burn's, or, once a backend
//!   crate installed [`OptimizerKernels`], recipe's [`FusedSgd`],
//!   [`FusedAdam`] and [`FusedAdamW`], the same numbers with each
//!   parameter's update one call to the kernels (`recipe-flex`'s in-place
//!   loops on the CPU, `recipe-cube`'s kernels on a GPU), which also take
//!   folded L1/L2 penalties and the max-norm constraint; or your own
//!   ([`OptimizerFn`]). This crate names no backend.
#![warn(missing_docs)]

mod adam_update;
mod any_stop;
mod artifacts;
mod checkpoint;
mod class_metric;
mod classifier;
mod config;
mod constrained_step;
mod constraint;
mod custom_lr_schedule;
mod custom_optimizer;
mod deferred_accuracy;
mod deferred_loss;
mod deferred_mean;
mod deferred_metric;
mod diagnosis;
mod divergence;
mod dropout_inference;
mod early_stopping;
mod epoch_callback;
mod epoch_logger;
mod error;
mod evaluate;
mod fit_config;
mod fold_hooks;
mod fused_adam;
mod fused_optimizer;
mod fused_sgd;
mod grad_norm_max;
mod gradient_clipping;
mod group_lasso;
mod health_checks;
mod history;
mod history_logger;
mod initial_loss;
mod keep_checkpoints;
mod key_values;
mod layer_gradients;
mod lr_find;
mod lr_scale;
mod lr_schedule;
mod max_norm;
mod metric_early_stopping;
mod metric_evaluation;
#[cfg(test)]
mod metric_test_support;
mod momentum_ramp;
mod monte_carlo;
mod network_config;
mod non_neg;
mod optimizer;
mod optimizer_kernels;
mod output_check;
mod param;
mod param_file;
mod penalty;
mod penalty_gradient;
mod penalty_metric;
mod plateau;
mod progress;
mod registry;
mod regularizer;
mod remedy;
mod resume;
mod run;
mod run_evaluation;
mod run_folder;
mod scalar_reads;
mod selector;
mod session_memory;
mod step_grad_norm;
mod summary;
#[cfg(test)]
mod synthetic_run;
mod trainer;
mod unit_health;
mod unit_norm;
mod weight_averaging;

pub use adam_update::{
    AdamFactors, AdamMoments, AdamRule, AdamRuleFactors, AdamStep, AdamTensors, AdamUpdate,
    AdamUpdated, AdamWStep,
};
pub use any_stop::StopOnAny;
pub use artifacts::{RunArtifacts, write_atomic};
pub use checkpoint::{
    AtomicFileCheckpointer, RetainCheckpoints, atomic_checkpointers, checkpoint_dir,
    checkpoint_file, complete_checkpoints,
};
pub use class_metric::{ClassMetric, ClassMetricInput};
pub use classifier::{Classifier, Classify, StepHooks};
pub use config::{DataConfig, TrainConfig};
pub use constrained_step::{ConstrainedStep, ParamConstraints};
pub use constraint::{Constraint, WeightConstraint};
pub use custom_lr_schedule::{CustomLrSchedule, LrScheduleFn};
pub use custom_optimizer::{CustomOptimizer, OptimizerFn};
pub use deferred_accuracy::{AccuracyReading, DeferredAccuracyInput, DeferredAccuracyMetric};
pub use deferred_loss::{DeferredLossInput, DeferredLossMetric, LossReading};
pub use deferred_metric::{DeferredMetric, READ_METRICS_EVERY, StepReading};
pub use diagnosis::{Diagnosis, Evidence, Thresholds, Verdict, diagnose};
pub use divergence::{Divergence, StopOnDivergence};
pub use dropout_inference::{DropoutInference, MonteCarloFigures};
pub use early_stopping::{Decision, EarlyStopping, EarlyStoppingConfig, Metric, Mode};
pub use epoch_callback::{EpochCallback, StopOnCallback};
pub use epoch_logger::EpochCsvLogger;
pub use error::TrainError;
pub use evaluate::{Evaluation, evaluate};
pub use fit_config::FitConfig;
pub use fold_hooks::fold_hooks;
pub use fused_adam::{FusedAdam, FusedAdamW};
pub use fused_optimizer::{fused_optimizer, fused_optimizer_folded};
pub use fused_sgd::{FusedSgd, FusedSgdState};
pub use grad_norm_max::{GRAD_NORM_MAX_METRIC, GradNormMaxMetric};
pub use gradient_clipping::{GradientClipping, global_norm};
pub use group_lasso::GroupLasso;
pub use health_checks::{CheckOutcome, CheckThresholds, Finding, RunRecord, run_checks};
pub use history::{EpochRecord, GradNorm, History};
pub use history_logger::{HistoryHandle, HistoryLogger};
pub use initial_loss::InitialLoss;
pub use keep_checkpoints::{KeepCheckpoints, KeptEpoch};
pub use layer_gradients::{LayerGradient, LayerGradients, weight_gradient_norms};
pub use lr_find::{LrFindConfig, LrFindPoint, LrFindResult, lr_find, steepest_descent};
pub use lr_scale::{LrScale, ScaledLr, scaled_lr_scheduler};
pub use lr_schedule::{LrSchedule, ScheduledLr};
pub use max_norm::{MaxNorm, MaxNormConfig, column_norms, renorm_columns};
pub use metric_early_stopping::MetricEarlyStopping;
pub use metric_evaluation::evaluate_metrics;
pub use momentum_ramp::{MomentumRamp, RampShape, RampedSgd, RampedSgdState};
pub use monte_carlo::{MonteCarloEvaluation, evaluate_monte_carlo, thinned_copy};
pub use network_config::{CustomNetwork, NetworkConfig};
pub use non_neg::NonNeg;
pub use optimizer::OptimizerConfig;
pub use optimizer_kernels::{
    FoldedHooks, OptimizerKernels, SgdMomentum, SgdTensors, SgdUpdate, SgdUpdated,
    install_optimizer_kernels, installed_adam_update, installed_sgd_update,
    uninstall_optimizer_kernels,
};
pub use output_check::OutputCheck;
pub use param::{ParamInfo, ParamTensor, map_params, param_infos, visit_params};
pub use penalty::{Penalty, WeightPenalty};
pub use penalty_gradient::PenaltyGradient;
pub use penalty_metric::{
    GRAD_NORM_METRIC, PENALTY_METRIC, PenalizedOutput, PenaltyInput, PenaltyMetric, PenaltyReading,
};
pub use plateau::{Plateau, PlateauState, ReduceLrOnPlateau};
pub use progress::QuietRenderer;
pub use recipe_core::InvalidSetting;
pub use registry::{
    Settings, constraint_names, lr_schedule_names, optimizer_names, penalty_names,
    register_constraint, register_lr_schedule, register_optimizer, register_penalty,
};
pub use regularizer::Regularizer;
pub use remedy::{Remedy, tenth_of};
pub use resume::{epoch_seed, read_run_config};
pub use run::DataItem;
pub use run_evaluation::{RunEvaluation, RunEvaluationConfig, SplitEvaluation, evaluate_mlp_run};
pub use run_folder::{LOCK_FILE, RunFolderLock};
pub use selector::ParamSelector;
pub use session_memory::SessionMemory;
pub use step_grad_norm::{PendingGradNorm, StepGradNorm};
pub use summary::Summary;
pub use trainer::{TrainOptions, TrainedModel, lr_find_mlp, resume, resume_mlp, train, train_mlp};
pub use unit_health::{DEAD_RANGE, LayerUnits, SATURATED_SLOPE_SHARE, mlp_unit_health};
pub use unit_norm::UnitNorm;
pub use weight_averaging::{AveragedFigures, WeightAverager, WeightAveraging};
