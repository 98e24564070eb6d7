//! [`CubeOptimizers`]: recipe-train's optimizer kernels on the GPU.

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::{DType, Tensor};
use recipe_train::{OptimizerConfig, OptimizerKernels, SgdTensors, SgdUpdate, SgdUpdated};

use crate::optimizer_ops::FusedCubeOptimizerOps;

/// SGD's update (momentum, Nesterov, and an L1/L2 penalty folded in) as one
/// CubeCL kernel for `f32` parameters on a GPU device of Burn's Cube
/// backend; tensors elsewhere are handed back. It builds no optimizer of
/// its own: a fused SGD that asks the installed kernels for tensors its
/// own loop cannot take (recipe-flex's `FusedSgd`) runs it, which is why
/// the `recipe` binary installs it after recipe-flex's kernels, as a pair:
///
/// ```ignore
/// recipe_train::install_optimizer_kernels((recipe_flex::FlexKernels, recipe_cube::CubeOptimizers));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct CubeOptimizers;

fn on_cube_f32(x: &Tensor<1>) -> bool {
    x.dtype() == DType::F32
        && !x.device().is_autodiff()
        && matches!(x.device().inner().as_dispatch(), DispatchDevice::Cube(_))
}

impl OptimizerKernels for CubeOptimizers {
    fn build(&self, _config: &OptimizerConfig) -> Option<burn::optim::ModuleOptimizer> {
        None
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
}
