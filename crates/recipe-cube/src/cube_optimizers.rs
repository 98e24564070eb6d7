//! [`CubeOptimizers`]: recipe-train's optimizer kernels on the GPU.

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::{DType, Tensor};
use recipe_train::{
    AdamMoments, AdamRuleFactors, AdamTensors, AdamUpdate, AdamUpdated, FoldedHooks,
    OptimizerConfig, OptimizerKernels, SgdTensors, SgdUpdate, SgdUpdated, fused_optimizer_folded,
};

use crate::optimizer_ops::FusedCubeOptimizerOps;

/// SGD's update (momentum, Nesterov, and an L1/L2 penalty folded in) and
/// Adam's or AdamW's (with the penalty folded in) as one CubeCL kernel each
/// for `f32` parameters on a GPU device of Burn's Cube backend; tensors
/// elsewhere are handed back. Installed alone, recipe's SGD, Adam and
/// AdamW are built as recipe-train's `FusedSgd`, `FusedAdam` and
/// `FusedAdamW`, which ask it for every parameter's update (penalties
/// folded in); Burn's arithmetic runs for the tensors it declines. With
/// another backend crate's kernels the `recipe` binary installs a pair, the
/// first asked first:
///
/// ```ignore
/// recipe_train::install_optimizer_kernels((recipe_flex::FlexKernels, recipe_cube::CubeOptimizers));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CubeOptimizers;

/// The most cubes a launch may count along one dimension on every GPU.
const MAX_CUBES: usize = 65_535;

fn on_cube_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32
        && !x.device().is_autodiff()
        && matches!(x.device().inner().as_dispatch(), DispatchDevice::Cube(_))
}

impl OptimizerKernels for CubeOptimizers {
    fn build_folded(
        &self,
        config: &OptimizerConfig,
        folded: &[FoldedHooks],
    ) -> Option<burn::optim::ModuleOptimizer> {
        fused_optimizer_folded(config, folded)
    }

    /// Max-norm in one launch (one cube per unit), within a few float
    /// roundings of the tensor code (the sums of squares are added in
    /// another order).
    fn max_norm(&self, matrix: &Tensor<2>, unit_dim: usize, max_norm: f64) -> Option<Tensor<2>> {
        // One cube per unit, and a launch may count on no more than 65,535
        // cubes along a dimension (Vulkan's guaranteed minimum).
        let units = matrix.dims().get(unit_dim).copied()?;
        if !on_cube_f32(matrix) || units > MAX_CUBES {
            return None;
        }
        let constrained = <Dispatch as FusedCubeOptimizerOps>::fused_max_norm(
            matrix.clone().into_dispatch(),
            max_norm as f32,
            unit_dim == 1,
        );
        Some(Tensor::from_dispatch(constrained))
    }

    /// `l1 Σ|w| + l2/2 Σw²` as one element-wise launch and Burn's sum.
    fn elastic_net_value(&self, weights: &Tensor<1>, l1: f64, l2: f64) -> Option<Tensor<1>> {
        if !on_cube_f32(weights) {
            return None;
        }
        let terms = <Dispatch as FusedCubeOptimizerOps>::elastic_net_terms(
            weights.clone().into_dispatch(),
            l1 as f32,
            (l2 / 2.0) as f32,
        );
        Some(Tensor::<1>::from_dispatch(terms).sum())
    }

    fn sgd_update(
        &self,
        update: &SgdUpdate,
        tensors: SgdTensors,
    ) -> Result<SgdUpdated, Box<SgdTensors>> {
        let n = tensors.param.dims()[0];
        let takes = on_cube_f32(&tensors.param)
            && on_cube_f32(&tensors.grad)
            && tensors.grad.dims()[0] == n
            && tensors
                .velocity
                .as_ref()
                .is_none_or(|v| on_cube_f32(v) && v.dims()[0] == n);
        if !takes {
            return Err(Box::new(tensors));
        }
        let momentum = update.momentum;
        let reads_velocity = momentum.is_some() && tensors.velocity.is_some();
        let velocity = match tensors.velocity {
            Some(velocity) if reads_velocity => velocity,
            _ => tensors.grad.clone(),
        };
        let numbers = [
            update.learning_rate,
            momentum.map_or(0.0, |m| m.momentum),
            momentum.map_or(0.0, |m| m.gradient_weight),
            update.l1,
            update.l2,
        ];
        let flags = [
            momentum.is_some(),
            reads_velocity,
            momentum.is_some_and(|m| m.nesterov),
        ];
        let (param, velocity) = <Dispatch as FusedCubeOptimizerOps>::fused_sgd_update(
            tensors.param.into_dispatch(),
            tensors.grad.into_dispatch(),
            velocity.into_dispatch(),
            numbers,
            flags,
        );
        Ok(SgdUpdated {
            param: Tensor::from_dispatch(param),
            velocity: momentum.map(|_| Tensor::from_dispatch(velocity)),
        })
    }

    fn adam_update(
        &self,
        update: &AdamUpdate,
        tensors: AdamTensors,
    ) -> Result<AdamUpdated, Box<AdamTensors>> {
        let (numbers, flags) = adam_arguments(update);
        let [first, ..] = flags;
        if !takes_adam(first, &tensors) {
            return Err(Box::new(tensors));
        }
        let (moment_1, moment_2) = match tensors.moments {
            Some(m) => (m.moment_1, m.moment_2),
            None => (tensors.grad.clone(), tensors.grad.clone()),
        };
        let (param, moment_1, moment_2) = <Dispatch as FusedCubeOptimizerOps>::fused_adam_update(
            tensors.param.into_dispatch(),
            tensors.grad.into_dispatch(),
            moment_1.into_dispatch(),
            moment_2.into_dispatch(),
            numbers,
            flags,
        );
        Ok(AdamUpdated {
            param: Tensor::from_dispatch(param),
            moments: AdamMoments {
                moment_1: Tensor::from_dispatch(moment_1),
                moment_2: Tensor::from_dispatch(moment_2),
            },
        })
    }
}

/// Whether the Adam kernel takes `tensors`: all `f32` on a Cube device,
/// of one length, with moments exactly when the update is not the `first`.
fn takes_adam(first: bool, tensors: &AdamTensors) -> bool {
    let n = tensors.param.dims()[0];
    let fits = |x: &Tensor<1>| on_cube_f32(x) && x.dims()[0] == n;
    fits(&tensors.param)
        && fits(&tensors.grad)
        && first == tensors.moments.is_none()
        && tensors
            .moments
            .as_ref()
            .is_none_or(|m| fits(&m.moment_1) && fits(&m.moment_2))
}

/// The numbers and flags of `fused_adam_update` for `update`, from its
/// factors as Burn computes them.
fn adam_arguments(update: &AdamUpdate) -> ([f32; 11], [bool; 3]) {
    let factors = update.factors();
    let (a, b, epsilon, decay, adamw) = match factors.rule {
        AdamRuleFactors::Adam(s) => (s.combined, s.epsilon, 0.0, None, false),
        AdamRuleFactors::AdamW(s) => (
            s.bias_correction_1,
            s.bias_correction_2,
            s.epsilon,
            s.decay,
            true,
        ),
    };
    let numbers = [
        factors.beta_1,
        factors.beta_2,
        factors.one_minus_beta_1,
        factors.one_minus_beta_2,
        factors.learning_rate,
        a,
        b,
        epsilon,
        decay.unwrap_or(1.0),
        update.l1,
        update.l2,
    ];
    (numbers, [factors.first, adamw, decay.is_some()])
}
