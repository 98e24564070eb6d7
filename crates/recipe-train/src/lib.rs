//! Training for recipe on Burn's Learner (`SupervisedTraining`).
//!
//! - [`TrainConfig`] holds everything a run needs and is saved as `config.json`.
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
//!   `config.json` and rebuilt by resume.
//! - [`OptimizerConfig`] picks the optimizer; its Adam and AdamW are
//!   [`FusedAdam`] and [`FusedAdamW`], Burn's fused into one in-place loop on
//!   the CPU (with the `flex` feature), bit for bit the same numbers.
#![warn(missing_docs)]

mod artifacts;
mod checkpoint;
mod classifier;
mod config;
mod constraint;
mod diagnosis;
mod early_stopping;
mod error;
mod evaluate;
mod fused_adam;
mod group_lasso;
mod history;
mod max_norm;
mod monitor;
mod non_neg;
mod optimizer;
mod param;
mod penalty;
mod progress;
mod registry;
mod regularizer;
mod resume;
mod selector;
mod summary;
mod trainer;
mod unit_norm;

pub use artifacts::{RunArtifacts, write_atomic};
pub use checkpoint::{checkpoint_dir, checkpoint_file, complete_checkpoints};
pub use classifier::{Classifier, Classify, StepHooks};
pub use config::TrainConfig;
pub use constraint::{Constraint, WeightConstraint};
pub use diagnosis::{Diagnosis, Evidence, Thresholds, Verdict, diagnose};
pub use early_stopping::{Decision, EarlyStopping, EarlyStoppingConfig, Metric, Mode};
pub use error::TrainError;
pub use evaluate::{Evaluation, evaluate};
pub use fused_adam::{FusedAdam, FusedAdamW};
pub use group_lasso::GroupLasso;
pub use history::{EpochRecord, History};
pub use max_norm::{MaxNorm, MaxNormConfig, column_norms, renorm_columns};
pub use non_neg::NonNeg;
pub use optimizer::OptimizerConfig;
pub use param::{ParamInfo, ParamTensor, map_params, param_infos, visit_params};
pub use penalty::{Penalty, WeightPenalty};
pub use registry::{
    Settings, constraint_names, penalty_names, register_constraint, register_penalty,
};
pub use regularizer::Regularizer;
pub use resume::{epoch_seed, read_run_config};
pub use selector::ParamSelector;
pub use summary::Summary;
pub use trainer::{TrainOptions, TrainedModel, resume, resume_mlp, train, train_mlp};
pub use unit_norm::UnitNorm;
