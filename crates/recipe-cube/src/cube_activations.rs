//! [`CubeActivations`]: recipe-models' activation kernels on the GPU.

use burn::backend::{Dispatch, DispatchDevice};
use burn::tensor::{DType, Tensor};
use recipe_models::ActivationKernels;

use crate::activation_ops::FusedCubeActivationOps;

/// Sigmoid, tanh and Maxout's max as single CubeCL kernels for `f32`
/// tensors on a GPU device of Burn's Cube backend (wgpu, Vulkan, CUDA; with
/// or without autodiff); tensors elsewhere are handed back to Burn's tensor
/// code. Installed by [`crate::install`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CubeActivations;

fn on_cube_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && matches!(x.device().inner().as_dispatch(), DispatchDevice::Cube(_))
}

impl ActivationKernels for CubeActivations {
    fn sigmoid(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
        if !on_cube_f32(&x) {
            return Err(x);
        }
        let y = <Dispatch as FusedCubeActivationOps>::fused_sigmoid(x.into_dispatch());
        Ok(Tensor::from_dispatch(y))
    }

    fn tanh(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
        if !on_cube_f32(&x) {
            return Err(x);
        }
        let y = <Dispatch as FusedCubeActivationOps>::fused_tanh(x.into_dispatch());
        Ok(Tensor::from_dispatch(y))
    }

    fn max_over_pieces(&self, x: Tensor<2>, pieces: usize) -> Result<Tensor<2>, Tensor<2>> {
        let [_, columns] = x.dims();
        if !on_cube_f32(&x) || pieces == 0 || columns % pieces != 0 {
            return Err(x);
        }
        let y =
            <Dispatch as FusedCubeActivationOps>::fused_max_over_pieces(x.into_dispatch(), pieces);
        Ok(Tensor::from_dispatch(y))
    }
}
