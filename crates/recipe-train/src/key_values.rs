//! The `KEY=VALUE,KEY=VALUE` text form of settings with many optional
//! parts (the plateau rule, the kept checkpoints), as the command line and
//! TOML give them.

use std::str::FromStr;

use crate::TrainError;

/// One `KEY=VALUE` pair of a setting's text.
pub(crate) struct KeyValue<'a> {
    /// The key, trimmed.
    pub(crate) key: &'a str,
    /// The value, trimmed.
    pub(crate) value: &'a str,
}

impl KeyValue<'_> {
    /// The value parsed, or an error naming the key and `expected`.
    pub(crate) fn parse<T: FromStr>(&self, expected: &str) -> Result<T, TrainError> {
        self.value
            .parse()
            .map_err(|_| TrainError::invalid(self.key, expected, self.value))
    }

    /// The error for a key `setting` does not have, listing `known`.
    pub(crate) fn unknown(&self, setting: &str, known: &str) -> TrainError {
        TrainError::invalid(format!("{setting} key"), known, self.key)
    }
}

/// The pairs of `text` (none for an empty text or `default_word`), or an
/// error naming `setting` and showing `example`.
pub(crate) fn key_values<'a>(
    text: &'a str,
    setting: &str,
    default_word: &str,
    example: &str,
) -> Result<Vec<KeyValue<'a>>, TrainError> {
    let text = text.trim();
    if text.is_empty() || text == default_word {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|pair| {
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                TrainError::invalid(
                    setting,
                    format!("KEY=VALUE pairs separated by commas, e.g. {example}"),
                    pair,
                )
            })?;
            Ok(KeyValue {
                key: key.trim(),
                value: value.trim(),
            })
        })
        .collect()
}
