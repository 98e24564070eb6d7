//! Training for recipe on Burn's Learner (`SupervisedTraining`).
//!
//! - [`TrainConfig`] holds everything a run needs and is saved as `config.json`.
//! - [`train`] trains any [`Classify`] network (recipe's [`Mlp`](recipe_models::Mlp)
//!   or your own) on the splits of an image dataset, records a per-epoch
//!   [`History`], evaluates the final model on train, validation and test, and
//!   writes the artifacts of [`RunArtifacts`] atomically.
#![warn(missing_docs)]

mod artifacts;
mod classifier;
mod config;
mod error;
mod evaluate;
mod history;
mod monitor;
mod optimizer;
mod progress;
mod summary;
mod trainer;

pub use artifacts::{RunArtifacts, write_atomic};
pub use classifier::{Classifier, Classify};
pub use config::TrainConfig;
pub use error::TrainError;
pub use evaluate::{Evaluation, evaluate};
pub use history::{EpochRecord, History};
pub use optimizer::OptimizerConfig;
pub use summary::Summary;
pub use trainer::{TrainOptions, TrainedModel, train, train_mlp};
