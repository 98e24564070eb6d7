//! Adam's and AdamW's update, with an L1/L2 penalty folded in, as one
//! CubeCL kernel: each thread reads its weight, gradient and two moments
//! once and writes the weight and the moments once, where Burn's Adam
//! launches about a dozen element-wise kernels (decay each moment, square
//! the gradient, take the root, add epsilon, divide, scale, subtract), each
//! reading and writing the whole parameter.

use burn_cubecl::cubecl;
use burn_cubecl::cubecl::prelude::*;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;

use crate::kernels::{empty_f32, grid};
use crate::penalty_gradient::add_penalty;

/// What the kernel is compiled for (one kernel per combination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct AdamForm {
    /// The first update: the moments start from the gradient, none is read.
    pub(crate) first: bool,
    /// AdamW's arithmetic (bias corrections divided out) instead of Adam's
    /// (folded into one factor and into epsilon).
    pub(crate) adamw: bool,
    /// AdamW's decoupled decay `w * decay` before the step.
    pub(crate) decay: bool,
    /// Whether `l1 sign(w)` is added to the gradient.
    pub(crate) l1: bool,
    /// Whether `l2 w` is added to the gradient.
    pub(crate) l2: bool,
}

/// The update's numbers, as `recipe_train::AdamFactors` holds them: for
/// Adam `a` is the combined bias correction and `b` the scaled epsilon,
/// for AdamW `a` and `b` are the two bias corrections.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdamNumbers {
    pub(crate) beta_1: f32,
    pub(crate) beta_2: f32,
    pub(crate) one_minus_beta_1: f32,
    pub(crate) one_minus_beta_2: f32,
    pub(crate) learning_rate: f32,
    pub(crate) a: f32,
    pub(crate) b: f32,
    pub(crate) epsilon: f32,
    pub(crate) decay: f32,
    pub(crate) l1: f32,
    pub(crate) l2: f32,
}

impl AdamNumbers {
    /// In the order [`adam_update`]'s callers pass them.
    pub(crate) fn from_array(numbers: [f32; 11]) -> Self {
        let [
            beta_1,
            beta_2,
            one_minus_beta_1,
            one_minus_beta_2,
            learning_rate,
            a,
            b,
            epsilon,
            decay,
            l1,
            l2,
        ] = numbers;
        Self {
            beta_1,
            beta_2,
            one_minus_beta_1,
            one_minus_beta_2,
            learning_rate,
            a,
            b,
            epsilon,
            decay,
            l1,
            l2,
        }
    }
}

/// One thread per weight, in the tensor code's order of operations.
#[allow(clippy::too_many_arguments)]
#[cube(launch_unchecked)]
fn adam_kernel(
    param: &Tensor<f32>,
    grad: &Tensor<f32>,
    moment_1: &Tensor<f32>,
    moment_2: &Tensor<f32>,
    param_out: &mut Tensor<f32>,
    moment_1_out: &mut Tensor<f32>,
    moment_2_out: &mut Tensor<f32>,
    beta_1: f32,
    beta_2: f32,
    one_minus_beta_1: f32,
    one_minus_beta_2: f32,
    learning_rate: f32,
    a: f32,
    b: f32,
    epsilon: f32,
    decay: f32,
    l1: f32,
    l2: f32,
    #[comptime] form: AdamForm,
) {
    let i = ABSOLUTE_POS;
    if i >= param_out.len() {
        terminate!();
    }
    let w = param[i];
    let g = add_penalty(grad[i], w, l1, l2, form.l1, form.l2);
    let mut m = g * one_minus_beta_1;
    let mut v = (g * g) * one_minus_beta_2;
    if !form.first {
        m = moment_1[i] * beta_1 + g * one_minus_beta_1;
        v = moment_2[i] * beta_2 + (g * g) * one_minus_beta_2;
    }
    moment_1_out[i] = m;
    moment_2_out[i] = v;
    if form.adamw {
        let step = (m / a) / (f32::sqrt(v / b) + epsilon);
        let mut decayed = w;
        if form.decay {
            decayed = w * decay;
        }
        param_out[i] = decayed - step * learning_rate;
    } else {
        let step = (m * a) / (f32::sqrt(v) + b);
        param_out[i] = w - step * learning_rate;
    }
}

/// The updated parameter and moments. `param`, `grad` and the moments are
/// `f32` with the same number of elements; the moments are read only when
/// not `form.first`.
pub(crate) fn adam_update(
    param: CubeTensor,
    grad: CubeTensor,
    moments: (CubeTensor, CubeTensor),
    n: AdamNumbers,
    form: AdamForm,
) -> (CubeTensor, CubeTensor, CubeTensor) {
    let (param, grad) = (into_contiguous(param), into_contiguous(grad));
    let (moment_1, moment_2) = (into_contiguous(moments.0), into_contiguous(moments.1));
    let elements = param.meta.num_elements();
    let param_out = empty_f32(&param, elements);
    let moment_1_out = empty_f32(&param, elements);
    let moment_2_out = empty_f32(&param, elements);
    let (cube_count, cube_dim) = grid(&param, elements);
    let client = param.client.clone();
    // Safety: every tensor is contiguous and has `elements` elements (the
    // moments where they are read); each thread checks its index.
    unsafe {
        adam_kernel::launch_unchecked(
            &client,
            cube_count,
            cube_dim,
            param.into_tensor_arg(),
            grad.into_tensor_arg(),
            moment_1.into_tensor_arg(),
            moment_2.into_tensor_arg(),
            param_out.clone().into_tensor_arg(),
            moment_1_out.clone().into_tensor_arg(),
            moment_2_out.clone().into_tensor_arg(),
            n.beta_1,
            n.beta_2,
            n.one_minus_beta_1,
            n.one_minus_beta_2,
            n.learning_rate,
            n.a,
            n.b,
            n.epsilon,
            n.decay,
            n.l1,
            n.l2,
            form,
        );
    }
    (param_out, moment_1_out, moment_2_out)
}
