//! Training for recipe on Burn's Learner (`SupervisedTraining`).
//!
//! - [`TrainConfig`] holds everything a run needs and is saved as `config.json`.
//! - [`train`] trains any [`Classify`] network (recipe's [`Mlp`](recipe_models::Mlp)
//!   or your own) on the splits of an image dataset, records a per-epoch
//!   [`History`], evaluates the final model on train, validation and test, and
//!   writes the artifacts of [`RunArtifacts`] atomically.
//! - The lecture's remedies for overfitting plug into the Learner:
//!   [`EarlyStopping`] (with restore-best), [`Regularizer`] penalties in the
//!   loss (or your own [`Penalty`]), the [`MaxNormConfig`] constraint after
//!   each step; dropout variants live in the models.
//! - [`OptimizerConfig`] picks the optimizer; its Adam and AdamW are
//!   [`FusedAdam`] and [`FusedAdamW`], Burn's fused into one in-place loop on
//!   the CPU (with the `flex` feature), bit for bit the same numbers.
#![warn(missing_docs)]

mod artifacts;
mod checkpoint;
mod classifier;
mod config;
mod diagnosis;
mod early_stopping;
mod error;
mod evaluate;
mod fused_adam;
mod history;
mod max_norm;
mod monitor;
mod optimizer;
mod progress;
mod regularizer;
mod resume;
mod summary;
mod trainer;

pub use artifacts::{RunArtifacts, write_atomic};
pub use checkpoint::{checkpoint_dir, checkpoint_file, complete_checkpoints};
pub use classifier::{Classifier, Classify, StepHooks};
pub use config::TrainConfig;
pub use diagnosis::{Diagnosis, Evidence, Thresholds, Verdict, diagnose};
pub use early_stopping::{Decision, EarlyStopping, EarlyStoppingConfig, Metric, Mode};
pub use error::TrainError;
pub use evaluate::{Evaluation, evaluate};
pub use fused_adam::{FusedAdam, FusedAdamW};
pub use history::{EpochRecord, History};
pub use max_norm::{MaxNormConfig, column_norms, renorm_columns};
pub use optimizer::OptimizerConfig;
pub use regularizer::{ParamSelector, Penalty, Regularizer, WeightPenalty};
pub use resume::{epoch_seed, read_run_config};
pub use summary::Summary;
pub use trainer::{TrainOptions, TrainedModel, resume, resume_mlp, train, train_mlp};
