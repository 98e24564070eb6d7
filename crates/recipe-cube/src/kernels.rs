//! The CubeCL kernels: one launch per forward or backward pass, each thread
//! one element (sigmoid, tanh) or one Maxout unit.
//!
//! Burn's Cube backend computes sigmoid as `exp(-log(1 + exp(-x)))`, five
//! element-wise launches, and its autodiff keeps the *input* and recomputes
//! all of them in the backward pass before three more for
//! `grad * y * (1 - y)`. Maxout's `max_dim` keeps an index tensor and its
//! backward scatters into a zeroed tensor. Here each pass reads and writes
//! memory once.

use burn::tensor::DType;
// The `#[cube]` macro names `cubecl`: Burn's own version of it.
use burn_cubecl::cubecl;
use burn_cubecl::cubecl::prelude::*;
use burn_cubecl::cubecl::{CubeDim, calculate_cube_count_elemwise};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;

/// `y = f(x)`: the sigmoid `1 / (1 + e^-x)`, or tanh where `tanh` (a
/// compile-time choice: one kernel is compiled for each).
#[cube(launch_unchecked)]
fn forward_kernel(x: &Tensor<f32>, y: &mut Tensor<f32>, #[comptime] tanh: bool) {
    if ABSOLUTE_POS >= y.len() {
        terminate!();
    }
    let x = x[ABSOLUTE_POS];
    if tanh {
        y[ABSOLUTE_POS] = f32::tanh(x);
    } else {
        y[ABSOLUTE_POS] = 1.0 / (1.0 + f32::exp(-x));
    }
}

/// The input's gradient from the kept output: the sigmoid's
/// `y * (1 - y) * grad` (in the order Burn's `sigmoid_backward` multiplies),
/// or tanh's `grad * (1 - y^2)`.
#[cube(launch_unchecked)]
fn backward_kernel(
    y: &Tensor<f32>,
    grad: &Tensor<f32>,
    grad_in: &mut Tensor<f32>,
    #[comptime] tanh: bool,
) {
    if ABSOLUTE_POS >= grad_in.len() {
        terminate!();
    }
    let y = y[ABSOLUTE_POS];
    if tanh {
        grad_in[ABSOLUTE_POS] = grad[ABSOLUTE_POS] * (1.0 - y * y);
    } else {
        grad_in[ABSOLUTE_POS] = y * (1.0 - y) * grad[ABSOLUTE_POS];
    }
}

/// One thread per unit: the max of its `pieces` consecutive inputs and the
/// first piece that holds it.
#[cube(launch_unchecked)]
fn max_over_pieces_kernel(
    x: &Tensor<f32>,
    max: &mut Tensor<f32>,
    winners: &mut Tensor<u32>,
    #[comptime] pieces: usize,
) {
    let unit = ABSOLUTE_POS;
    if unit >= max.len() {
        terminate!();
    }
    let start = unit * pieces;
    let mut best = x[start];
    let mut winner = 0u32;
    #[unroll]
    for piece in 1..pieces {
        let value = x[start + piece];
        if value > best {
            best = value;
            winner = piece as u32;
        }
    }
    max[unit] = best;
    winners[unit] = winner;
}

/// One thread per unit: its gradient to the winning piece, zero to the
/// others, every element of `grad_in` written once (no zeroed buffer).
#[cube(launch_unchecked)]
fn to_winners_kernel(
    grad: &Tensor<f32>,
    winners: &Tensor<u32>,
    grad_in: &mut Tensor<f32>,
    #[comptime] pieces: usize,
) {
    let unit = ABSOLUTE_POS;
    if unit >= grad.len() {
        terminate!();
    }
    let start = unit * pieces;
    let gradient = grad[unit];
    let winner = winners[unit];
    #[unroll]
    for piece in 0..pieces {
        grad_in[start + piece] = select(winner == piece as u32, gradient, 0.0);
    }
}

/// An element-wise function whose derivative is a function of its output.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum FromItsOutput {
    /// `1 / (1 + e^-x)`, derivative `y (1 - y)`.
    #[default]
    Sigmoid,
    /// `tanh(x)`, derivative `1 - y^2`.
    Tanh,
}

/// An uninitialized tensor of `shape` and `dtype` on `reference`'s device.
pub(crate) fn empty_like(
    reference: &CubeTensor,
    shape: burn::tensor::Shape,
    dtype: DType,
) -> CubeTensor {
    empty_device_dtype(
        reference.client.clone(),
        reference.device.clone(),
        shape,
        dtype,
    )
}

/// An uninitialized `f32` vector of `elements` on `reference`'s device.
pub(crate) fn empty_f32(reference: &CubeTensor, elements: usize) -> CubeTensor {
    empty_like(reference, burn::tensor::Shape::new([elements]), DType::F32)
}

/// The launch grid for `units` threads, one each.
pub(crate) fn grid(tensor: &CubeTensor, units: usize) -> (CubeCount, CubeDim) {
    let cube_dim = CubeDim::new(&tensor.client, units);
    let cube_count = calculate_cube_count_elemwise(&tensor.client, units, cube_dim);
    (cube_count, cube_dim)
}

impl FromItsOutput {
    /// The kernels' compile-time switch.
    fn is_tanh(self) -> bool {
        matches!(self, Self::Tanh)
    }

    /// `f(x)` for an `f32` tensor.
    pub(crate) fn forward(self, x: CubeTensor) -> CubeTensor {
        let x = into_contiguous(x);
        let y = empty_like(&x, x.meta.shape().clone(), DType::F32);
        let (count, dim) = grid(&x, x.meta.num_elements());
        let client = x.client.clone();
        // Safety: both tensors are contiguous with the same number of
        // elements, and each thread checks its index against it.
        unsafe {
            forward_kernel::launch_unchecked(
                &client,
                count,
                dim,
                x.into_tensor_arg(),
                y.clone().into_tensor_arg(),
                self.is_tanh(),
            );
        }
        y
    }

    /// The input's gradient from the kept output `y` and the output's
    /// gradient.
    pub(crate) fn backward(self, y: CubeTensor, grad: CubeTensor) -> CubeTensor {
        let (y, grad) = (into_contiguous(y), into_contiguous(grad));
        let grad_in = empty_like(&grad, grad.meta.shape().clone(), DType::F32);
        let (count, dim) = grid(&grad, grad.meta.num_elements());
        let client = grad.client.clone();
        // Safety: as in `forward`; `y` and `grad` have the output's shape.
        unsafe {
            backward_kernel::launch_unchecked(
                &client,
                count,
                dim,
                y.into_tensor_arg(),
                grad.into_tensor_arg(),
                grad_in.clone().into_tensor_arg(),
                self.is_tanh(),
            );
        }
        grad_in
    }
}

/// What Maxout's backward pass needs: the winning piece of each unit.
#[derive(Debug, Clone)]
pub(crate) struct Winners {
    winners: CubeTensor,
    pieces: usize,
}

/// `[batch, units * pieces]` to `[batch, units]` and the winners.
pub(crate) fn max_over_pieces(x: CubeTensor, pieces: usize) -> (CubeTensor, Winners) {
    let x = into_contiguous(x);
    let [batch, columns] = [x.meta.shape()[0], x.meta.shape()[1]];
    let shape = burn::tensor::Shape::new([batch, columns / pieces]);
    let max = empty_like(&x, shape.clone(), DType::F32);
    let winners = empty_like(&x, shape, DType::U32);
    let (count, dim) = grid(&x, max.meta.num_elements());
    let client = x.client.clone();
    // Safety: `x` is contiguous with `pieces` columns per unit of `max` and
    // `winners`, and each thread checks its unit against their length.
    unsafe {
        max_over_pieces_kernel::launch_unchecked(
            &client,
            count,
            dim,
            x.into_tensor_arg(),
            max.clone().into_tensor_arg(),
            winners.clone().into_tensor_arg(),
            pieces,
        );
    }
    (max, Winners { winners, pieces })
}

/// The gradient of Maxout's input: `grad` to the winners, zero elsewhere.
pub(crate) fn to_winners(grad: CubeTensor, winners: Winners) -> CubeTensor {
    let grad = into_contiguous(grad);
    let [batch, units] = [grad.meta.shape()[0], grad.meta.shape()[1]];
    let shape = burn::tensor::Shape::new([batch, units * winners.pieces]);
    let grad_in = empty_like(&grad, shape, DType::F32);
    let (count, dim) = grid(&grad, grad.meta.num_elements());
    let client = grad.client.clone();
    // Safety: as in `max_over_pieces`, with `grad` in the place of `max`.
    unsafe {
        to_winners_kernel::launch_unchecked(
            &client,
            count,
            dim,
            grad.into_tensor_arg(),
            winners.winners.into_tensor_arg(),
            grad_in.clone().into_tensor_arg(),
            winners.pieces,
        );
    }
    grad_in
}
