//! The `recipe` command line.

pub mod diagnose;
pub mod reproduce;
pub mod train;
