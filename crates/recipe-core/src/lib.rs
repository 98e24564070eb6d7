//! What recipe's library crates share. Each crate's error type wraps an
//! [`InvalidSetting`] for an impossible setting, so that every crate reports
//! one the same way and a caller can match it in one place.
#![warn(missing_docs)]

mod invalid_setting;

pub use invalid_setting::InvalidSetting;
