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
//! than on one at batch 100; [`FusedAdam`] and [`FusedAdamW`] run Burn's
//! Adam and AdamW, and [`FusedSgd`] its SGD with or without (Nesterov)
//! momentum, as one in-place loop over Flex's host memory, bit for bit the
//! same numbers (and the same arithmetic as tensor operations for tensors
//! elsewhere).
//! [`install`] makes `recipe_train::OptimizerConfig::init` build them, so a
//! program opts in with one call (the `recipe` binary does when its `flex`
//! feature is on):
//!
//! ```
//! recipe_flex::install();
//! let optimizer = recipe_train::OptimizerConfig::adam().init(); // FusedAdam
//! # let _ = optimizer;
//! ```
#![warn(missing_docs)]

mod activation_ops;
mod elastic_net;
mod flex_activations;
mod flex_loops;
mod fused_adam;
mod fused_sgd;
mod linear_ops;
mod pointwise;
mod spin_pool;
mod split_gemm;
mod vector_math;

use burn::module::ParamGroup;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;
use recipe_train::{FoldedPenalty, OptimizerConfig, OptimizerKernels, install_optimizer_kernels};

pub use flex_activations::FlexActivations;
pub use fused_adam::{FusedAdam, FusedAdamW};
pub use fused_sgd::{FusedSgd, FusedSgdState};

/// Builds [`FusedAdam`], [`FusedAdamW`] and [`FusedSgd`] for recipe's Adam,
/// AdamW and SGD (recipe's SGD momentum is undampened, as PyTorch's).
#[derive(Debug, Clone, Copy, Default)]
pub struct FlexKernels;

impl FlexKernels {
    /// The fused optimizer for `config`, with `penalty`'s gradient added in
    /// its loop when given.
    fn optimizer(config: &OptimizerConfig, penalty: Option<(f64, f64)>) -> Option<Optimizer> {
        let optimizer = match *config {
            OptimizerConfig::Adam {
                beta1,
                beta2,
                epsilon,
            } => Optimizer::Adam(FusedAdam::new(beta1, beta2, epsilon)),
            OptimizerConfig::AdamW {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => Optimizer::AdamW(FusedAdamW::new(beta1, beta2, epsilon, weight_decay)),
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                ramp,
            } if momentum > 0.0 => {
                let sgd = FusedSgd::with_momentum(momentum, 0.0, nesterov);
                Optimizer::Sgd(match ramp {
                    Some(ramp) => sgd.with_ramp(ramp),
                    None => sgd,
                })
            }
            OptimizerConfig::Sgd { .. } => Optimizer::Sgd(FusedSgd::plain()),
            _ => return None,
        };
        Some(match penalty {
            Some((l1, l2)) => optimizer.with_elastic_net(l1, l2),
            None => optimizer,
        })
    }
}

/// One of the fused optimizers, before it is type-erased.
enum Optimizer {
    Adam(FusedAdam),
    AdamW(FusedAdamW),
    Sgd(FusedSgd),
}

impl Optimizer {
    fn with_elastic_net(self, l1: f64, l2: f64) -> Self {
        match self {
            Self::Adam(o) => Self::Adam(o.with_elastic_net(l1, l2)),
            Self::AdamW(o) => Self::AdamW(o.with_elastic_net(l1, l2)),
            Self::Sgd(o) => Self::Sgd(o.with_elastic_net(l1, l2)),
        }
    }

    fn into_module_optimizer(self) -> ModuleOptimizer {
        match self {
            Self::Adam(o) => o.into(),
            Self::AdamW(o) => o.into(),
            Self::Sgd(o) => o.into(),
        }
    }

    fn add_group(self, to: ModuleOptimizer, group: ParamGroup) -> ModuleOptimizer {
        match self {
            Self::Adam(o) => to.with_group(group, o, None),
            Self::AdamW(o) => to.with_group(group, o, None),
            Self::Sgd(o) => to.with_group(group, o, None),
        }
    }
}

impl OptimizerKernels for FlexKernels {
    fn build(&self, config: &OptimizerConfig) -> Option<ModuleOptimizer> {
        Self::optimizer(config, None).map(Optimizer::into_module_optimizer)
    }

    fn build_folded(
        &self,
        config: &OptimizerConfig,
        folded: &[FoldedPenalty],
    ) -> Option<ModuleOptimizer> {
        let mut optimizer = self.build(config)?;
        for fold in folded {
            let with_penalty = Self::optimizer(config, Some((fold.l1, fold.l2)))?;
            optimizer = with_penalty.add_group(optimizer, fold.group.clone());
        }
        Some(optimizer)
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
}

/// Makes [`OptimizerConfig::init`] build the fused optimizers, and
/// recipe-models' sigmoid, tanh and Maxout run [`FlexActivations`], from now
/// on (in this process; calling it again changes nothing).
pub fn install() {
    install_optimizer_kernels(FlexKernels);
    recipe_models::install_activation_kernels(FlexActivations);
}
