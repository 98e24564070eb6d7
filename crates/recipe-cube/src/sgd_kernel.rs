//! SGD's update, with momentum or Nesterov momentum and an L1/L2 penalty
//! folded in, as one CubeCL kernel: each thread reads its weight, gradient
//! and velocity once and writes the weight and the velocity once, where
//! Burn's SGD launches five element-wise kernels (scale the gradient, scale
//! the velocity, add, scale by the learning rate, subtract) and the penalty
//! four more, each reading and writing the whole parameter.

use burn_cubecl::cubecl;
use burn_cubecl::cubecl::prelude::*;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;

use crate::kernels::{empty_f32, grid};
use crate::penalty_gradient::add_penalty;

/// What the kernel is compiled for (one kernel per combination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct SgdForm {
    /// Whether there is a velocity at all.
    pub(crate) momentum: bool,
    /// Whether a velocity from the last update is read (not the first).
    pub(crate) reads_velocity: bool,
    /// Nesterov's step `momentum * v + g`.
    pub(crate) nesterov: bool,
    /// Whether `l1 sign(w)` is added to the gradient.
    pub(crate) l1: bool,
    /// Whether `l2 w` is added to the gradient.
    pub(crate) l2: bool,
}

/// The update's numbers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SgdNumbers {
    pub(crate) learning_rate: f32,
    pub(crate) momentum: f32,
    pub(crate) gradient_weight: f32,
    pub(crate) l1: f32,
    pub(crate) l2: f32,
}

/// One thread per weight, in the tensor code's order of operations.
#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn sgd_kernel(
    param: &Tensor<f32>,
    grad: &Tensor<f32>,
    velocity: &Tensor<f32>,
    param_out: &mut Tensor<f32>,
    velocity_out: &mut Tensor<f32>,
    learning_rate: f32,
    momentum: f32,
    gradient_weight: f32,
    l1: f32,
    l2: f32,
    #[comptime] form: SgdForm,
) {
    let i = ABSOLUTE_POS;
    if i >= param_out.len() {
        terminate!();
    }
    let w = param[i];
    let g = add_penalty(grad[i], w, l1, l2, form.l1, form.l2);
    let mut step = g;
    if form.momentum {
        let mut v = g;
        if form.reads_velocity {
            v = g * gradient_weight + velocity[i] * momentum;
        }
        velocity_out[i] = v;
        step = v;
        if form.nesterov {
            step = v * momentum + g;
        }
    }
    param_out[i] = w - step * learning_rate;
}

/// The updated parameter and velocity (a one-element placeholder without
/// momentum). `param`, `grad` and `velocity` are `f32` with the same number
/// of elements; `velocity` is read only when `form.reads_velocity`.
pub(crate) fn sgd_update(
    param: CubeTensor,
    grad: CubeTensor,
    velocity: CubeTensor,
    numbers: SgdNumbers,
    form: SgdForm,
) -> (CubeTensor, CubeTensor) {
    let (param, grad, velocity) = (
        into_contiguous(param),
        into_contiguous(grad),
        into_contiguous(velocity),
    );
    let elements = param.meta.num_elements();
    let param_out = empty_f32(&param, elements);
    let velocity_out = empty_f32(&param, if form.momentum { elements } else { 1 });
    let (cube_count, cube_dim) = grid(&param, elements);
    let client = param.client.clone();
    // Safety: every tensor is contiguous; `param`, `grad` and `param_out`
    // have `elements` elements, and so have `velocity` where it is read and
    // `velocity_out` where it is written; each thread checks its index.
    unsafe {
        sgd_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            param.into_tensor_arg(),
            grad.into_tensor_arg(),
            velocity.into_tensor_arg(),
            param_out.clone().into_tensor_arg(),
            velocity_out.clone().into_tensor_arg(),
            numbers.learning_rate,
            numbers.momentum,
            numbers.gradient_weight,
            numbers.l1,
            numbers.l2,
            form,
        );
    }
    (param_out, velocity_out)
}
