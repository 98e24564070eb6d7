//! An impossible value in a setting.

use std::fmt::Display;

use thiserror::Error;

/// A setting that holds an impossible value: which one (as it is spelled in
/// the config, `network.mlp.dropout`), what it must hold, and what it held.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("`{field}` must be {expected}, found {found}")]
pub struct InvalidSetting {
    /// The setting, as its config spells it.
    pub field: String,
    /// What it must hold.
    pub expected: String,
    /// What it held.
    pub found: String,
}

impl InvalidSetting {
    /// `field` must be `expected`, found `found`.
    pub fn new(field: impl Into<String>, expected: impl Into<String>, found: impl Display) -> Self {
        Self {
            field: field.into(),
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    /// The same error with its field named inside `parent` (`beta` inside
    /// `activation[1]` becomes `activation[1].beta`), unless it already is.
    pub fn in_field(self, parent: &str) -> Self {
        if self.field.starts_with(parent) {
            return self;
        }
        Self {
            field: format!("{parent}.{}", self.field),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_what_it_must_be_and_what_it_was() {
        let error = InvalidSetting::new("beta", "a number > 0", -1.5).in_field("activation[1]");
        assert_eq!(
            error.to_string(),
            "`activation[1].beta` must be a number > 0, found -1.5"
        );
        assert_eq!(error.clone().in_field("activation[1]"), error);
    }
}
