use std::path::PathBuf;

use recipe_core::InvalidSetting;
use recipe_data::DataError;
use recipe_models::ModelError;
use thiserror::Error;

/// Why a training run could not be set up, run or saved.
#[derive(Debug, Error)]
pub enum TrainError {
    /// A training setting holds an impossible value.
    // Not `#[from]`: that would make the setting the error's `source` as
    // well, and a report of the chain (anyhow's `{:#}`) would say it twice.
    #[error("invalid training config: {0}")]
    InvalidConfig(InvalidSetting),
    /// The model configuration is impossible.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The data could not be read or split.
    #[error(transparent)]
    Data(#[from] DataError),
    /// An artifact could not be written or read.
    // The reason is in the message, so it is not also the error's `source`
    // (see `InvalidConfig`).
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong: the I/O, parse or format error itself.
        reason: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The loss became NaN or infinite.
    #[error(
        "training diverged at epoch {epoch}: the training loss is {loss}; \
         the learning rate ({learning_rate}) is the likely cause, try a smaller one{}",
        last_good_note(last_good)
    )]
    Diverged {
        /// The epoch whose loss was not finite.
        epoch: usize,
        /// The loss.
        loss: f64,
        /// The learning rate in use.
        learning_rate: f64,
        /// The last epoch with finite losses and its weights' checkpoint file,
        /// when the run wrote checkpoints.
        last_good: Option<(usize, PathBuf)>,
    },
    /// `resume` found nothing to continue.
    #[error("cannot resume {}: {reason}", dir.display())]
    NothingToResume {
        /// The run folder.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// The output folder is held by a run in progress, or holds the files of
    /// another run.
    #[error("{}: {reason}", dir.display())]
    FolderInUse {
        /// The output folder.
        dir: PathBuf,
        /// Why, and what to do.
        reason: String,
    },
    /// Burn's Learner reported an error.
    #[error("training failed: {0}")]
    Learner(String),
}

fn last_good_note(last_good: &Option<(usize, PathBuf)>) -> String {
    match last_good {
        Some((epoch, path)) => format!(
            "; the weights of epoch {epoch}, the last with finite losses, are kept in {}",
            path.display()
        ),
        None => String::new(),
    }
}

impl TrainError {
    /// An [`TrainError::InvalidConfig`]: `field` must be `expected`, found `found`.
    pub fn invalid(
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl std::fmt::Display,
    ) -> Self {
        Self::InvalidConfig(InvalidSetting::new(field, expected, found))
    }

    pub(crate) fn io(
        path: impl Into<PathBuf>,
        error: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self::Io {
            path: path.into(),
            reason: error.into(),
        }
    }
}

impl From<InvalidSetting> for TrainError {
    fn from(setting: InvalidSetting) -> Self {
        Self::InvalidConfig(setting)
    }
}
