//! The `recipe` command line.

pub mod bench;
pub mod data;
pub mod diagnose;
pub mod evaluate;
mod experiment_jobs;
pub mod lr_find;
pub mod reproduce;
mod text;
pub mod train;
pub mod worker;
