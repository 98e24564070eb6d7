//! Faster implementations of recipe's optimizers, supplied by a backend crate.

use std::sync::{Arc, OnceLock, RwLock};

use burn::optim::ModuleOptimizer;

use crate::OptimizerConfig;

/// Builds a faster optimizer for some [`OptimizerConfig`]s, with the same
/// numbers as Burn's (e.g. `recipe-flex`'s fused Adam for the CPU). The
/// library crates name no backend: a backend crate implements this and a
/// program installs it with [`install_optimizer_kernels`].
pub trait OptimizerKernels: Send + Sync + 'static {
    /// The optimizer for `config`, or `None` to let Burn's own be built.
    fn build(&self, config: &OptimizerConfig) -> Option<ModuleOptimizer>;
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

/// The installed kernels' optimizer for `config`, if any.
pub(crate) fn build_installed(config: &OptimizerConfig) -> Option<ModuleOptimizer> {
    let kernels = installed()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    kernels.and_then(|kernels| kernels.build(config))
}
