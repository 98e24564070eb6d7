use recipe_core::InvalidSetting;
use thiserror::Error;

/// An impossible model configuration.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum ModelError {
    /// A configuration field holds a value the model cannot be built with.
    // Not `#[from]`: that would make the setting the error's `source` as
    // well, and a report of the chain (anyhow's `{:#}`) would say it twice.
    #[error("invalid model config: {0}")]
    InvalidConfig(InvalidSetting),
    /// An activation name that recipe does not know.
    #[error("unknown activation `{name}`; expected one of: {known}")]
    UnknownActivation {
        /// The name that was given.
        name: String,
        /// The names recipe knows, comma separated.
        known: String,
    },
}

impl ModelError {
    /// The same error with its field named inside `parent` (e.g. `beta` in
    /// `activation[1]` becomes `activation[1].beta`); other errors unchanged.
    pub fn in_field(self, parent: &str) -> Self {
        match self {
            Self::InvalidConfig(setting) => Self::InvalidConfig(setting.in_field(parent)),
            other => other,
        }
    }

    /// An [`ModelError::InvalidConfig`]: `field` must be `expected`, found `found`.
    pub fn invalid(
        field: impl Into<String>,
        expected: impl Into<String>,
        found: impl std::fmt::Display,
    ) -> Self {
        Self::InvalidConfig(InvalidSetting::new(field, expected, found))
    }
}

impl From<InvalidSetting> for ModelError {
    fn from(setting: InvalidSetting) -> Self {
        Self::InvalidConfig(setting)
    }
}
