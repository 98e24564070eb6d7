//! recipe's kernels for Burn's Flex CPU backend.
//!
//! The library crates (`recipe-models`, `recipe-train`, `recipe-data`) name
//! no backend. This crate does: [`FlexActivations`] runs sigmoid, tanh and
//! Maxout's max over pieces as vectorized loops with their own backward
//! passes (a Burn backend extension for Flex and autodiff-on-Flex: the
//! forward keeps the output or the winning piece, the backward is one
//! pass), and the linear map before them (`x · W + b`) with the bias
//! folded into the product and each product split across the threads by
//! blocks of columns, where Flex's `gemm` call is slower on two threads
//! than on one at batch 100. [`FlexKernels`] runs the updates of
//! recipe-train's [`FusedSgd`] (SGD with or without Nesterov momentum),
//! [`FusedAdam`] and [`FusedAdamW`] as one in-place loop over Flex's host
//! memory, bit for bit Burn's numbers, with an L1/L2 penalty folded in.
//! [`install`] installs both, so that `recipe_train::OptimizerConfig::init`
//! builds the fused optimizers and they run the loops: a program opts in
//! with one call (the `recipe` binary does when its `flex` feature is on):
//!
//! ```
//! recipe_flex::install();
//! let optimizer = recipe_train::OptimizerConfig::adam().init(); // FusedAdam, run by the loop
//! # let _ = optimizer;
//! ```
#![warn(missing_docs)]

mod activation_ops;
mod adam_loop;
mod column_squares;
mod elastic_net;
mod flex_activations;
mod flex_loops;
mod linear_ops;
mod max_norm;
mod param_values;
mod pointwise;
mod sgd_loop;
mod simd;
mod spin_pool;
mod split_gemm;
mod vector_math;

use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;
use recipe_train::{
    AdamTensors, AdamUpdate, AdamUpdated, FoldedHooks, OptimizerConfig, OptimizerKernels,
    SgdTensors, SgdUpdate, SgdUpdated, fused_optimizer_folded, install_optimizer_kernels,
};

pub use flex_activations::FlexActivations;
// The fused optimizers moved to recipe-train (they run on every backend,
// asking the installed kernels); kept here under their old paths.
pub use recipe_train::{FusedAdam, FusedAdamW, FusedSgd, FusedSgdState};

/// recipe's optimizer kernels for Flex: SGD's and Adam's/AdamW's update
/// (penalties folded in) as one in-place loop over host memory, for `f32`
/// tensors on the Flex device (other tensors are declined, for the next
/// kernels or Burn's arithmetic), the L1/L2 penalty's value and gradient
/// in one pass, and the max-norm constraint in one read (and one write
/// when a unit is over the bound).
#[derive(Debug, Clone, Copy, Default)]
pub struct FlexKernels;

impl OptimizerKernels for FlexKernels {
    fn build_folded(
        &self,
        config: &OptimizerConfig,
        folded: &[FoldedHooks],
    ) -> Option<ModuleOptimizer> {
        fused_optimizer_folded(config, folded)
    }

    fn elastic_net_value(&self, weights: &Tensor<1>, l1: f64, l2: f64) -> Option<Tensor<1>> {
        elastic_net::elastic_net_value(weights, l1, l2)
    }

    fn elastic_net(
        &self,
        weights: &Tensor<1>,
        grad: Tensor<1>,
        l1: f64,
        l2: f64,
        scale: f32,
    ) -> Result<(Tensor<1>, Tensor<1>), Tensor<1>> {
        elastic_net::elastic_net(weights, grad, l1, l2, scale)
    }

    fn max_norm(&self, matrix: &Tensor<2>, unit_dim: usize, max_norm: f64) -> Option<Tensor<2>> {
        max_norm::max_norm(matrix, unit_dim, max_norm)
    }

    fn sgd_update(
        &self,
        update: &SgdUpdate,
        tensors: SgdTensors,
    ) -> Result<SgdUpdated, Box<SgdTensors>> {
        sgd_loop::sgd_update(update, tensors)
    }

    fn adam_update(
        &self,
        update: &AdamUpdate,
        tensors: AdamTensors,
    ) -> Result<AdamUpdated, Box<AdamTensors>> {
        adam_loop::adam_update(update, tensors)
    }
}

/// Makes [`OptimizerConfig::init`] build the fused optimizers and
/// [`FlexKernels`] run their updates, and
/// recipe-models' sigmoid, tanh and Maxout run [`FlexActivations`], from now
/// on (in this process; calling it again changes nothing).
pub fn install() {
    install_optimizer_kernels(FlexKernels);
    recipe_models::install_activation_kernels(FlexActivations);
}
