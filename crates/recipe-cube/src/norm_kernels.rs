//! The hooks that read a whole weight tensor each step, as few CubeCL
//! launches as they can be: max-norm (one launch per weight, where the
//! tensor code launches nine: square, sum, root, reciprocal, scale, clamp,
//! compare, mask, multiply) and the L1/L2 penalty's value (one element-wise
//! launch and Burn's sum, where the tensor code launches ten). On a GPU
//! each launch costs about as much as the arithmetic of these small
//! tensors, so the number of launches is the cost.

use burn_cubecl::cubecl;
use burn_cubecl::cubecl::CubeDim;
use burn_cubecl::cubecl::prelude::*;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;

use crate::kernels::{empty_like, grid};

/// Threads that share one unit's sum of squares (a power of two; Vulkan
/// guarantees workgroups of 128).
const UNIT_THREADS: usize = 128;

/// One cube per unit: its threads add the squares of the unit's weights
/// (thread `t` takes elements `t`, `t + UNIT_THREADS`, ...), halve the
/// partial sums in shared memory down to one, and write the unit rescaled
/// by `min(max_norm / norm, 1)` where its norm exceeds `max_norm`, as it
/// is otherwise (the tensor code's factor, `(1 / norm) * max_norm`).
/// Element `k` of unit `u` is at `u * unit_stride + k * element_stride`.
#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn max_norm_kernel(
    matrix: &Tensor<f32>,
    out: &mut Tensor<f32>,
    unit_length: u32,
    unit_stride: u32,
    element_stride: u32,
    max_norm: f32,
) {
    let thread = UNIT_POS as usize;
    let base = CUBE_POS * unit_stride as usize;
    let length = unit_length as usize;
    let stride = element_stride as usize;
    let mut partial = 0.0f32;
    let mut k = thread;
    while k < length {
        let w = matrix[base + k * stride];
        partial += w * w;
        k += UNIT_THREADS;
    }
    let mut sums = Shared::<[f32]>::new_slice(UNIT_THREADS);
    sums[thread] = partial;
    sync_cube();
    let mut half = (UNIT_THREADS / 2).runtime();
    while half > 0 {
        if thread < half {
            let other = sums[thread + half];
            let own = sums[thread];
            sums[thread] = own + other;
        }
        sync_cube();
        half /= 2;
    }
    let norm = f32::sqrt(sums[0]);
    let mut scale = 1.0f32;
    if norm > max_norm {
        scale = f32::min((1.0 / norm) * max_norm, 1.0);
    }
    let mut k = thread;
    while k < length {
        let at = base + k * stride;
        out[at] = matrix[at] * scale;
        k += UNIT_THREADS;
    }
}

/// `l1 |w| + l2_half w²` for each weight: summed, the penalty's value.
#[cube(launch_unchecked)]
fn elastic_net_terms_kernel(weights: &Tensor<f32>, terms: &mut Tensor<f32>, l1: f32, l2_half: f32) {
    let i = ABSOLUTE_POS;
    if i >= terms.len() {
        terminate!();
    }
    let w = weights[i];
    terms[i] = f32::abs(w) * l1 + w * w * l2_half;
}

/// The max-norm constraint on `matrix` (`[rows, columns]`, `f32`): units
/// are its columns when `columns_are_units`, else its rows.
pub(crate) fn max_norm(matrix: CubeTensor, columns_are_units: bool, max_norm: f32) -> CubeTensor {
    let matrix = into_contiguous(matrix);
    let [rows, columns] = [matrix.meta.shape()[0], matrix.meta.shape()[1]];
    let out = empty_like(
        &matrix,
        matrix.meta.shape().clone(),
        burn::tensor::DType::F32,
    );
    let (units, unit_length, unit_stride, element_stride) = if columns_are_units {
        (columns, rows, 1, columns)
    } else {
        (rows, columns, columns, 1)
    };
    if units == 0 || unit_length == 0 {
        return out;
    }
    let client = matrix.client.clone();
    // Safety: `matrix` is contiguous `[rows, columns]` and `out` has its
    // shape; cube `u < units` reads and writes only unit `u`'s elements,
    // `u * unit_stride + k * element_stride` for `k < unit_length`, all
    // inside the matrix.
    unsafe {
        max_norm_kernel::launch_unchecked(
            &client,
            CubeCount::new_1d(units as u32),
            CubeDim::new_1d(UNIT_THREADS as u32),
            matrix.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            unit_length as u32,
            unit_stride as u32,
            element_stride as u32,
            max_norm,
        );
    }
    out
}

/// Each weight's `l1 |w| + l2_half w²`, the shape of `weights` (`f32`).
pub(crate) fn elastic_net_terms(weights: CubeTensor, l1: f32, l2_half: f32) -> CubeTensor {
    let weights = into_contiguous(weights);
    let elements = weights.meta.num_elements();
    let terms = empty_like(
        &weights,
        weights.meta.shape().clone(),
        burn::tensor::DType::F32,
    );
    let (cube_count, cube_dim) = grid(&weights, elements);
    let client = weights.client.clone();
    // Safety: both tensors are contiguous with `elements` elements, and
    // each thread checks its index.
    unsafe {
        elastic_net_terms_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            weights.into_tensor_arg(),
            terms.clone().into_tensor_arg(),
            l1,
            l2_half,
        );
    }
    terms
}
