//! recipe's optimizers whose updates the installed kernels run.

use burn::module::ParamGroup;
use burn::optim::ModuleOptimizer;

use crate::{FoldedPenalty, FusedAdam, FusedAdamW, FusedSgd, OptimizerConfig};

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

/// [`fused_optimizer`] with each [`FoldedPenalty`]'s gradient added to its
/// parameters' gradients inside their updates: what a set of kernels whose
/// updates take the penalty ([`SgdUpdate::l1`](crate::SgdUpdate::l1) and
/// `l2`, the same in [`AdamUpdate`](crate::AdamUpdate)) returns from
/// [`OptimizerKernels::build_folded`](crate::OptimizerKernels::build_folded).
pub fn fused_optimizer_folded(
    config: &OptimizerConfig,
    folded: &[FoldedPenalty],
) -> Option<ModuleOptimizer> {
    let mut optimizer = fused_optimizer(config)?;
    for fold in folded {
        let with_penalty = Fused::of(config, Some((fold.l1, fold.l2)))?;
        optimizer = with_penalty.add_group(optimizer, fold.group.clone());
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

    fn add_group(self, to: ModuleOptimizer, group: ParamGroup) -> ModuleOptimizer {
        match self {
            Self::Adam(o) => to.with_group(group, o, None),
            Self::AdamW(o) => to.with_group(group, o, None),
            Self::Sgd(o) => to.with_group(group, o, None),
        }
    }
}
