//! recipe: the lecture "Recipe of Deep Learning" as a Burn training framework.
//!
//! The umbrella crate re-exports the three library crates and adds backend
//! selection and the lecture's experiments:
//!
//! - [`models`]: MLPs with a configurable activation per layer, Maxout, dropout, initializers;
//! - [`data`]: IDX datasets (MNIST, Fashion-MNIST), splits, batching;
//! - [`train`]: training on Burn's Learner, history, artifacts, evaluation;
//! - `flex` (with the `flex` feature): fused Adam and AdamW for the CPU,
//!   installed by [`backend::select_device`];
//! - [`allocator`]: keep freed memory in the process (faster CPU training), for binaries;
//! - [`backend`]: the `--device` names and the backends compiled into this build;
//! - [`bench`](mod@bench): throughput measurements behind `recipe bench` and `cargo bench`;
//! - [`experiments`]: the lecture's claims as runnable experiments;
//! - [`remote`]: `recipe worker` and devices on other machines (`ws://HOST:PORT/INDEX`);
//! - [`plots`]: learning curves, depth sweeps and histograms as PNG and SVG.
#![warn(missing_docs)]

pub mod allocator;
pub mod backend;
pub mod bench;
pub mod experiments;
pub mod plots;
pub mod remote;

pub use recipe_data as data;
#[cfg(feature = "flex")]
pub use recipe_flex as flex;
pub use recipe_models as models;
pub use recipe_train as train;
