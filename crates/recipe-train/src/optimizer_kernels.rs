//! Faster implementations of recipe's optimizers, supplied by a backend crate.

use std::sync::{Arc, OnceLock, RwLock};

use burn::module::ParamGroup;
use burn::optim::ModuleOptimizer;
use burn::tensor::Tensor;

use crate::adam_update::{AdamTensors, AdamUpdate, AdamUpdated};
use crate::{OptimizerConfig, ParamConstraints};

/// Faster implementations of recipe's optimizers' updates and penalties,
/// with the same numbers as Burn's (e.g. `recipe-flex`'s in-place loops for
/// the CPU, `recipe-cube`'s kernels for a GPU). The library crates name no
/// backend: a backend crate implements this and a program installs it with
/// [`install_optimizer_kernels`].
///
/// Every method has a default. A kernel set usually implements
/// [`OptimizerKernels::sgd_update`] and [`OptimizerKernels::adam_update`]
/// for the tensors it can take, declining the others: the default
/// [`OptimizerKernels::build`] gives recipe's [`FusedSgd`](crate::FusedSgd),
/// [`FusedAdam`](crate::FusedAdam) and [`FusedAdamW`](crate::FusedAdamW),
/// which ask the installed kernels for each parameter's update and run
/// Burn's arithmetic where none takes it.
pub trait OptimizerKernels: Send + Sync + 'static {
    /// The optimizer for `config`, or `None` to let Burn's own be built.
    /// The default: [`fused_optimizer`](crate::fused_optimizer), recipe's
    /// optimizer that asks the installed kernels' `sgd_update` and
    /// `adam_update`.
    fn build(&self, config: &OptimizerConfig) -> Option<ModuleOptimizer> {
        crate::fused_optimizer(config)
    }

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

    /// The optimizer for `config` with each [`FoldedHooks`]' penalty
    /// gradient added to its parameters' gradients inside the update (one
    /// pass over memory for both) and its constraints applied to each new
    /// parameter right after its update, or `None` (the default) to leave
    /// penalties in the training step and constraints after the optimizer.
    /// When it returns an optimizer, the training step no longer adds those
    /// gradients or applies those constraints itself; it still reports the
    /// penalty's value through [`OptimizerKernels::elastic_net_value`]. So
    /// an optimizer that cannot honour every group's `constraints` must not
    /// be returned (return `None`): they would silently not be applied.
    /// Kernels whose updates add the penalty ([`SgdUpdate::l1`],
    /// [`SgdUpdate::l2`]; the same in [`AdamUpdate`]) return
    /// [`fused_optimizer_folded`](crate::fused_optimizer_folded).
    fn build_folded(
        &self,
        config: &OptimizerConfig,
        folded: &[FoldedHooks],
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

    /// One [`SgdUpdate`] of one flattened parameter in one pass (e.g. one
    /// GPU kernel where Burn's SGD launches five), or the tensors handed
    /// back (the default) when the kernel does not take them: a fused SGD
    /// optimizer such as recipe's [`FusedSgd`](crate::FusedSgd) asks the
    /// installed kernels through [`installed_sgd_update`] for every
    /// parameter, before it falls back to tensor operations.
    fn sgd_update(
        &self,
        update: &SgdUpdate,
        tensors: SgdTensors,
    ) -> Result<SgdUpdated, Box<SgdTensors>> {
        let _ = update;
        Err(Box::new(tensors))
    }

    /// The max-norm constraint on one parameter, laid out as
    /// [`ParamTensor::matrix`](crate::ParamTensor::matrix) (units are rows
    /// when `unit_dim` is 0, columns when it is 1): each unit whose L2 norm
    /// exceeds `max_norm` rescaled to it, in fewer passes than the tensor
    /// code; or `None` (the default) to let the tensor code run.
    fn max_norm(&self, matrix: &Tensor<2>, unit_dim: usize, max_norm: f64) -> Option<Tensor<2>> {
        let _ = (matrix, unit_dim, max_norm);
        None
    }

    /// One [`AdamUpdate`] (Adam or AdamW) of one flattened parameter in one
    /// pass, or the tensors handed back (the default), as
    /// [`OptimizerKernels::sgd_update`]: a fused Adam such as recipe's
    /// [`FusedAdam`](crate::FusedAdam) asks the installed kernels through
    /// [`installed_adam_update`] for every parameter, before Burn's Adam.
    fn adam_update(
        &self,
        update: &AdamUpdate,
        tensors: AdamTensors,
    ) -> Result<AdamUpdated, Box<AdamTensors>> {
        let _ = update;
        Err(Box::new(tensors))
    }
}

/// One SGD update, as Burn's `Sgd` with `MomentumConfig` computes it, with
/// an optional L1/L2 penalty whose gradient is added first:
///
/// ```text
/// g = grad + l1 sign(w) + l2 w
/// v = g                                      (first update)
/// v = gradient_weight * g + momentum * v     (later ones)
/// w = w - lr * (nesterov ? momentum * v + g : v)
/// ```
///
/// without momentum `w = w - lr * g`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdUpdate {
    /// The learning rate of this update.
    pub learning_rate: f32,
    /// The momentum rule, if any.
    pub momentum: Option<SgdMomentum>,
    /// The L1 strength (0 for none).
    pub l1: f32,
    /// The L2 strength (0 for none).
    pub l2: f32,
}

/// SGD's momentum, as in [`SgdUpdate`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdMomentum {
    /// The velocity's decay.
    pub momentum: f32,
    /// `1 - dampening`: the gradient's weight in the velocity.
    pub gradient_weight: f32,
    /// Nesterov's look-ahead step.
    pub nesterov: bool,
}

/// One parameter's tensors before an [`SgdUpdate`], flattened, all on one
/// device.
#[derive(Debug, Clone)]
pub struct SgdTensors {
    /// The parameter.
    pub param: Tensor<1>,
    /// Its gradient (without the penalty's).
    pub grad: Tensor<1>,
    /// Its velocity; `None` without momentum or before the first update.
    pub velocity: Option<Tensor<1>>,
}

/// One parameter after an [`SgdUpdate`].
#[derive(Debug, Clone)]
pub struct SgdUpdated {
    /// The updated parameter.
    pub param: Tensor<1>,
    /// The new velocity (`None` without momentum).
    pub velocity: Option<Tensor<1>>,
}

/// Two sets of kernels, the first asked first: e.g. a CPU backend's and a
/// GPU backend's, each declining the other's tensors.
impl<A: OptimizerKernels, B: OptimizerKernels> OptimizerKernels for (A, B) {
    fn build(&self, config: &OptimizerConfig) -> Option<ModuleOptimizer> {
        self.0.build(config).or_else(|| self.1.build(config))
    }

    #[allow(clippy::result_large_err)]
    fn elastic_net(
        &self,
        weights: &Tensor<1>,
        grad: Tensor<1>,
        l1: f64,
        l2: f64,
        scale: f32,
    ) -> Result<(Tensor<1>, Tensor<1>), Tensor<1>> {
        self.0
            .elastic_net(weights, grad, l1, l2, scale)
            .or_else(|grad| self.1.elastic_net(weights, grad, l1, l2, scale))
    }

    fn build_folded(
        &self,
        config: &OptimizerConfig,
        folded: &[FoldedHooks],
    ) -> Option<ModuleOptimizer> {
        self.0
            .build_folded(config, folded)
            .or_else(|| self.1.build_folded(config, folded))
    }

    fn elastic_net_value(&self, weights: &Tensor<1>, l1: f64, l2: f64) -> Option<Tensor<1>> {
        self.0
            .elastic_net_value(weights, l1, l2)
            .or_else(|| self.1.elastic_net_value(weights, l1, l2))
    }

    fn sgd_update(
        &self,
        update: &SgdUpdate,
        tensors: SgdTensors,
    ) -> Result<SgdUpdated, Box<SgdTensors>> {
        self.0
            .sgd_update(update, tensors)
            .or_else(|tensors| self.1.sgd_update(update, *tensors))
    }

    fn max_norm(&self, matrix: &Tensor<2>, unit_dim: usize, max_norm: f64) -> Option<Tensor<2>> {
        self.0
            .max_norm(matrix, unit_dim, max_norm)
            .or_else(|| self.1.max_norm(matrix, unit_dim, max_norm))
    }

    fn adam_update(
        &self,
        update: &AdamUpdate,
        tensors: AdamTensors,
    ) -> Result<AdamUpdated, Box<AdamTensors>> {
        self.0
            .adam_update(update, tensors)
            .or_else(|tensors| self.1.adam_update(update, *tensors))
    }
}

/// What an optimizer does for a group of parameters (their paths in the
/// module the optimizer steps) besides its update: an L1/L2 penalty's
/// gradient added to theirs inside the update (0 for none), and, for a
/// group of one parameter, that parameter's constraints applied to its new
/// values right after (a [`ConstrainedStep`](crate::ConstrainedStep)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FoldedHooks {
    /// The parameters.
    pub group: ParamGroup,
    /// The L1 strength (0 for none).
    pub l1: f64,
    /// The L2 strength (0 for none).
    pub l2: f64,
    /// The constraints of the group's one parameter, if it has any.
    pub constraints: Option<ParamConstraints>,
}

impl FoldedHooks {
    /// An elastic-net penalty `l1 Σ|w| + l2/2 Σw²` on `group`.
    pub fn penalty(group: ParamGroup, l1: f64, l2: f64) -> Self {
        Self {
            group,
            l1,
            l2,
            constraints: None,
        }
    }

    /// The same with `constraints` on the group's one parameter.
    pub fn with_constraints(self, constraints: ParamConstraints) -> Self {
        Self {
            constraints: Some(constraints),
            ..self
        }
    }

    /// Whether the update adds a penalty's gradient.
    pub fn has_penalty(&self) -> bool {
        self.l1 != 0.0 || self.l2 != 0.0
    }
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
    folded: &[FoldedHooks],
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

/// The installed kernels' [`OptimizerKernels::max_norm`].
pub(crate) fn installed_max_norm(
    matrix: &Tensor<2>,
    unit_dim: usize,
    max_norm: f64,
) -> Option<Tensor<2>> {
    current().and_then(|kernels| kernels.max_norm(matrix, unit_dim, max_norm))
}

/// The installed kernels' [`OptimizerKernels::sgd_update`], or the tensors
/// back when none is installed or none takes them.
pub fn installed_sgd_update(
    update: &SgdUpdate,
    tensors: SgdTensors,
) -> Result<SgdUpdated, Box<SgdTensors>> {
    match current() {
        Some(kernels) => kernels.sgd_update(update, tensors),
        None => Err(Box::new(tensors)),
    }
}

/// The installed kernels' [`OptimizerKernels::adam_update`], or the tensors
/// back when none is installed or none takes them.
pub fn installed_adam_update(
    update: &AdamUpdate,
    tensors: AdamTensors,
) -> Result<AdamUpdated, Box<AdamTensors>> {
    match current() {
        Some(kernels) => kernels.adam_update(update, tensors),
        None => Err(Box::new(tensors)),
    }
}
