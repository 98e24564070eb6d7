//! Settings that a TOML file gives as text (`optimizer = "adam"`), parsed by
//! the same `FromStr` as the flag (`--optimizer adam`), so that the file and
//! the command line accept the same words and report the same errors.

use std::fmt::Display;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// An optional setting written as one word.
pub fn option<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    Option::<String>::deserialize(deserializer)?
        .map(|text| text.parse().map_err(serde::de::Error::custom))
        .transpose()
}

/// An optional list of settings, each written as one word.
pub fn list<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: Display,
{
    Option::<Vec<String>>::deserialize(deserializer)?
        .map(|texts| {
            texts
                .iter()
                .map(|text| text.parse().map_err(serde::de::Error::custom))
                .collect()
        })
        .transpose()
}
