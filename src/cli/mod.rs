//! The `recipe` command line.

pub mod reproduce;
pub mod train;
