//! recipe's kernels for Burn's CubeCL backend (the GPU runtimes: wgpu,
//! Vulkan, CUDA).
//!
//! [`CubeActivations`] runs sigmoid, tanh and Maxout's max over pieces as
//! one CubeCL kernel each, with their own backward passes (a Burn backend
//! extension for Cube and autodiff-on-Cube: the forward keeps the output or
//! the winning piece, the backward is one kernel). [`CubeOptimizers`] runs
//! SGD's update (momentum, Nesterov, an L1/L2 penalty folded in) and Adam's
//! or AdamW's as one kernel each, which recipe-train's `FusedSgd`,
//! `FusedAdam` and `FusedAdamW` ask for every parameter's update, and the
//! max-norm constraint and the L1/L2 penalty's value in one launch (two
//! for the value) where the tensor code launches nine and ten. [`install`]
//! makes recipe-models' layers and recipe's optimizers use them for tensors
//! on a GPU:
//!
//! ```ignore
//! recipe_cube::install();
//! // Every recipe-models sigmoid, tanh and Maxout on a GPU device now runs
//! // recipe's kernels, and `OptimizerConfig::init` builds the fused
//! // optimizers that run its updates; tensors on other devices keep Burn's
//! // code.
//! ```
//!
//! To combine them with another backend crate's kernels (the `recipe`
//! binary does this with `recipe-flex` for the CPU), install a pair: the
//! first that takes a tensor runs it.
//!
//! ```ignore
//! recipe_models::install_activation_kernels((recipe_flex::FlexActivations, recipe_cube::CubeActivations));
//! ```
//!
//! The crate is empty unless one of its features (`wgpu`, `vulkan`, `cuda`)
//! compiles a CubeCL runtime into Burn. Its comparison tests with Burn's
//! tensor code run in the root package (`tests/gpu_kernels.rs`), on the GPU
//! path CI has: wgpu over Mesa's software Vulkan.
#![warn(missing_docs)]
// Without a GPU feature the crate is empty and the links above name nothing.
#![cfg_attr(
    not(any(feature = "wgpu", feature = "vulkan", feature = "cuda")),
    allow(rustdoc::broken_intra_doc_links)
)]
#![cfg(any(feature = "wgpu", feature = "vulkan", feature = "cuda"))]

mod activation_ops;
mod adam_kernel;
mod cube_activations;
mod cube_optimizers;
mod kernels;
mod norm_kernels;
mod optimizer_ops;
mod penalty_gradient;
mod sgd_kernel;

pub use cube_activations::CubeActivations;
pub use cube_optimizers::CubeOptimizers;

/// Makes recipe-models' sigmoid, tanh and Maxout run [`CubeActivations`] for
/// tensors on a GPU, and installs [`CubeOptimizers`], from now on (in this
/// process), replacing activation and optimizer kernels installed before:
/// recipe's SGD, Adam and AdamW are then recipe-train's fused optimizers,
/// whose updates of GPU tensors are [`CubeOptimizers`]' kernels (a build
/// without recipe-flex included).
pub fn install() {
    recipe_models::install_activation_kernels(CubeActivations);
    recipe_train::install_optimizer_kernels(CubeOptimizers);
}
