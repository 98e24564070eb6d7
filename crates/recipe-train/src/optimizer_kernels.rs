//! Faster implementations of recipe's optimizers, supplied by a backend crate.

use std::sync::{Arc, OnceLock, RwLock};

use burn::module::ParamGroup;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;

use crate::OptimizerConfig;

/// Builds a faster optimizer for some [`OptimizerConfig`]s, with the same
/// numbers as Burn's (e.g. `recipe-flex`'s fused Adam for the CPU). The
/// library crates name no backend: a backend crate implements this and a
/// program installs it with [`install_optimizer_kernels`].
pub trait OptimizerKernels: Send + Sync + 'static {
    /// The optimizer for `config`, or `None` to let Burn's own be built.
    fn build(&self, config: &OptimizerConfig) -> Option<ModuleOptimizer>;

    /// An elastic-net penalty on one flattened weight tensor in one pass:
    /// returns its value `l1 Σ|w| + l2/2 Σw²` (shape `[1]`) and
    /// `grad + scale * (l1 sign(w) + l2 w)`, or hands `grad` back when the
    /// kernel does not apply (the default: tensor operations run instead).
    // `grad` comes back untouched, unboxed: an allocation per call would
    // cost more than moving the tensor handle.
    #[allow(clippy::result_large_err)]
    fn elastic_net(
        &self,
        weights: &Tensor<1>,
        grad: Tensor<1>,
        l1: f64,
        l2: f64,
        scale: f32,
    ) -> Result<(Tensor<1>, Tensor<1>), Tensor<1>> {
        let _ = (weights, l1, l2, scale);
        Err(grad)
    }

    /// The optimizer for `config` with each [`FoldedPenalty`]'s gradient
    /// added to its parameters' gradients inside the update (one pass over
    /// memory for both), or `None` (the default) to leave penalties in the
    /// training step. When it returns an optimizer, the training step no
    /// longer adds those gradients itself; it still reports the penalty's
    /// value through [`OptimizerKernels::elastic_net_value`].
    fn build_folded(
        &self,
        config: &OptimizerConfig,
        folded: &[FoldedPenalty],
    ) -> Option<ModuleOptimizer> {
        let _ = (config, folded);
        None
    }

    /// `l1 Σ|w| + l2/2 Σw²` of a flattened weight tensor (shape `[1]`) in one
    /// pass, or `None` (the default: tensor operations run instead).
    fn elastic_net_value(&self, weights: &Tensor<1>, l1: f64, l2: f64) -> Option<Tensor<1>> {
        let _ = (weights, l1, l2);
        None
    }
}

/// An L1/L2 penalty for an optimizer to add to the gradients of a group of
/// parameters (their paths in the module the optimizer steps).
#[derive(Debug, Clone)]
pub struct FoldedPenalty {
    /// The parameters.
    pub group: ParamGroup,
    /// The L1 strength.
    pub l1: f64,
    /// The L2 strength.
    pub l2: f64,
}

fn installed() -> &'static RwLock<Option<Arc<dyn OptimizerKernels>>> {
    static KERNELS: OnceLock<RwLock<Option<Arc<dyn OptimizerKernels>>>> = OnceLock::new();
    KERNELS.get_or_init(|| RwLock::new(None))
}

/// Makes [`OptimizerConfig::init`] ask `kernels` first, in this process
/// (replacing kernels installed before).
pub fn install_optimizer_kernels(kernels: impl OptimizerKernels) {
    *installed().write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(kernels));
}

/// Goes back to Burn's optimizers and tensor code, in this process.
pub fn uninstall_optimizer_kernels() {
    *installed().write().unwrap_or_else(|p| p.into_inner()) = None;
}

/// The installed kernels' optimizer for `config`, if any.
pub(crate) fn build_installed(config: &OptimizerConfig) -> Option<ModuleOptimizer> {
    current().and_then(|kernels| kernels.build(config))
}

/// The installed kernels' [`OptimizerKernels::elastic_net`], or `grad`
/// back.
#[allow(clippy::result_large_err)]
pub(crate) fn installed_elastic_net(
    weights: &Tensor<1>,
    grad: Tensor<1>,
    l1: f64,
    l2: f64,
    scale: f32,
) -> Result<(Tensor<1>, Tensor<1>), Tensor<1>> {
    match current() {
        Some(kernels) => kernels.elastic_net(weights, grad, l1, l2, scale),
        None => Err(grad),
    }
}

/// The installed kernels, if any.
fn current() -> Option<Arc<dyn OptimizerKernels>> {
    installed()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// The installed kernels' [`OptimizerKernels::build_folded`].
pub(crate) fn build_installed_folded(
    config: &OptimizerConfig,
    folded: &[FoldedPenalty],
) -> Option<ModuleOptimizer> {
    current().and_then(|kernels| kernels.build_folded(config, folded))
}

/// The installed kernels' [`OptimizerKernels::elastic_net_value`].
pub(crate) fn installed_elastic_net_value(
    weights: &Tensor<1>,
    l1: f64,
    l2: f64,
) -> Option<Tensor<1>> {
    current().and_then(|kernels| kernels.elastic_net_value(weights, l1, l2))
}
