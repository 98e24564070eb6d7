use std::path::PathBuf;

use recipe_core::InvalidSetting;
use thiserror::Error;

/// Why a dataset could not be read or split. Every variant names the file or
/// field and what was expected.
#[derive(Debug, Error)]
pub enum DataError {
    /// The file could not be opened or read.
    // The I/O error is in the message, so it is not also the error's
    // `source`: a report of the chain (anyhow's `{:#}`) would say it twice.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        reason: std::io::Error,
    },
    /// A gzip file whose compressed stream is corrupt or cut short.
    #[error("{path}: corrupt gzip stream: {reason}")]
    Gzip {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        reason: std::io::Error,
    },
    /// The file is not in the IDX format recipe reads, or not of the expected kind.
    #[error("{path}: not a valid IDX file: expected {expected}, found {found}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What the header should hold.
        expected: String,
        /// What it held.
        found: String,
    },
    /// The header promises more (or fewer) bytes than the file has.
    #[error("{path}: the header promises {expected} data bytes, the file has {found}{hint}", hint = if found < expected { " (truncated?)" } else { "" })]
    Length {
        /// The file.
        path: PathBuf,
        /// Bytes promised by the header.
        expected: usize,
        /// Bytes found after the header.
        found: usize,
    },
    /// Images and labels disagree in number.
    #[error("{images} holds {image_count} images but {labels} holds {label_count} labels")]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// Its image count.
        image_count: usize,
        /// The label file.
        labels: PathBuf,
        /// Its label count.
        label_count: usize,
    },
    /// A label outside the class range.
    #[error("{path}: label {label} at index {index} is outside 0..{classes}")]
    LabelOutOfRange {
        /// The label file.
        path: PathBuf,
        /// Position of the bad label.
        index: usize,
        /// The label.
        label: u8,
        /// Number of classes.
        classes: usize,
    },
    /// None of the searched folders holds the dataset.
    #[error("{dataset} not found; looked for {file} in: {searched}. {hint}", searched = .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        /// The dataset's name.
        dataset: String,
        /// The file that was looked for.
        file: String,
        /// The folders searched, in order.
        searched: Vec<PathBuf>,
        /// How to get the dataset.
        hint: String,
    },
    /// No mirror delivered a file with a known checksum.
    #[error("could not download {}: {}", path.display(), failures.join("; "))]
    Download {
        /// The file that was to be written.
        path: PathBuf,
        /// Each mirror's URL and why it failed.
        failures: Vec<String>,
    },
    /// A table (CSV) whose content is not what a provider can read.
    #[error("{path}{location}: expected {expected}, found {found}", location = if location.is_empty() { String::new() } else { format!(", {location}") })]
    Table {
        /// The file.
        path: PathBuf,
        /// Where in it (`line 7, column \`x\``), or empty for the whole file.
        location: String,
        /// What should be there.
        expected: String,
        /// What was there.
        found: String,
    },
    /// An impossible split or batching setting.
    // Not `#[from]`: that would make the setting the error's `source` as
    // well, and a report of the chain (anyhow's `{:#}`) would say it twice.
    #[error("invalid data config: {0}")]
    InvalidConfig(InvalidSetting),
}

impl DataError {
    pub(crate) fn table(
        path: &std::path::Path,
        location: impl Into<String>,
        expected: impl Into<String>,
        found: impl std::fmt::Display,
    ) -> Self {
        Self::Table {
            path: path.to_path_buf(),
            location: location.into(),
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    pub(crate) fn invalid(
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl std::fmt::Display,
    ) -> Self {
        Self::InvalidConfig(InvalidSetting::new(field, expected, found))
    }
}

impl From<InvalidSetting> for DataError {
    fn from(setting: InvalidSetting) -> Self {
        Self::InvalidConfig(setting)
    }
}
