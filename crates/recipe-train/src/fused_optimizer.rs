//! recipe's optimizers whose updates the installed kernels run.

use burn::module::ParamGroup;
use burn::optim::{ModuleOptimizer, Optimizer};

use crate::{
    ConstrainedStep, FoldedHooks, FusedAdam, FusedAdamW, FusedSgd, OptimizerConfig,
    ParamConstraints,
};

/// [`FusedAdam`], [`FusedAdamW`] or [`FusedSgd`] for `config` (recipe's SGD
/// momentum is undampened, as PyTorch's), or `None` for optimizers without
/// a fused form (RMSProp): what [`OptimizerKernels::build`]'s default
/// builds, so that kernels that implement
/// [`OptimizerKernels::sgd_update`] or [`OptimizerKernels::adam_update`]
/// are asked for every parameter's update.
///
/// [`OptimizerKernels::build`]: crate::OptimizerKernels::build
/// [`OptimizerKernels::sgd_update`]: crate::OptimizerKernels::sgd_update
/// [`OptimizerKernels::adam_update`]: crate::OptimizerKernels::adam_update
pub fn fused_optimizer(config: &OptimizerConfig) -> Option<ModuleOptimizer> {
    Fused::of(config, None).map(Fused::into_module_optimizer)
}

/// [`fused_optimizer`] with each [`FoldedHooks`]' penalty gradient added
/// to its parameters' gradients inside their updates, and its constraints
/// applied to its parameter right after the update ([`ConstrainedStep`]):
/// what a set of kernels whose updates take the penalty
/// ([`SgdUpdate::l1`](crate::SgdUpdate::l1) and `l2`, the same in
/// [`AdamUpdate`](crate::AdamUpdate)) returns from
/// [`OptimizerKernels::build_folded`](crate::OptimizerKernels::build_folded).
pub fn fused_optimizer_folded(
    config: &OptimizerConfig,
    folded: &[FoldedHooks],
) -> Option<ModuleOptimizer> {
    let mut optimizer = fused_optimizer(config)?;
    for fold in folded {
        let penalty = fold.has_penalty().then_some((fold.l1, fold.l2));
        let fused = Fused::of(config, penalty)?;
        optimizer = fused.add_group(optimizer, fold.group.clone(), fold.constraints.clone());
    }
    Some(optimizer)
}

/// One of the fused optimizers, before it is type-erased.
enum Fused {
    Adam(FusedAdam),
    AdamW(FusedAdamW),
    Sgd(FusedSgd),
}

impl Fused {
    /// The fused optimizer for `config`, with `penalty`'s gradient added in
    /// its update when given.
    fn of(config: &OptimizerConfig, penalty: Option<(f64, f64)>) -> Option<Self> {
        let optimizer = match *config {
            OptimizerConfig::Adam {
                beta1,
                beta2,
                epsilon,
            } => Self::Adam(FusedAdam::new(beta1, beta2, epsilon)),
            OptimizerConfig::AdamW {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => Self::AdamW(FusedAdamW::new(beta1, beta2, epsilon, weight_decay)),
            OptimizerConfig::Sgd {
                momentum,
                nesterov,
                dampened,
                ramp,
            } if momentum > 0.0 => {
                let sgd = FusedSgd::with_momentum(momentum, 0.0, nesterov);
                let sgd = if dampened {
                    sgd.dampened_by_momentum()
                } else {
                    sgd
                };
                Self::Sgd(match ramp {
                    Some(ramp) => sgd.with_ramp(ramp),
                    None => sgd,
                })
            }
            OptimizerConfig::Sgd { .. } => Self::Sgd(FusedSgd::plain()),
            _ => return None,
        };
        Some(match penalty {
            Some((l1, l2)) => optimizer.with_elastic_net(l1, l2),
            None => optimizer,
        })
    }

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

    /// `to` with this optimizer for `group`, followed by `constraints`
    /// after each step where given.
    fn add_group(
        self,
        to: ModuleOptimizer,
        group: ParamGroup,
        constraints: Option<ParamConstraints>,
    ) -> ModuleOptimizer {
        fn add<O: Optimizer>(
            to: ModuleOptimizer,
            group: ParamGroup,
            optimizer: O,
            constraints: Option<ParamConstraints>,
        ) -> ModuleOptimizer {
            match constraints {
                Some(constraints) => {
                    to.with_group(group, ConstrainedStep::new(optimizer, constraints), None)
                }
                None => to.with_group(group, optimizer, None),
            }
        }
        match self {
            Self::Adam(o) => add(to, group, o, constraints),
            Self::AdamW(o) => add(to, group, o, constraints),
            Self::Sgd(o) => add(to, group, o, constraints),
        }
    }
}
