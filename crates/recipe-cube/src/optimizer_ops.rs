//! SGD's and Adam's updates, max-norm and the L1/L2 penalty's value as a
//! Burn backend extension for the CubeCL backend. The optimizer and the
//! constraint run on tensors without autodiff, and the penalty's value is
//! reported, not differentiated (its gradient is the optimizer's), so
//! there is no backward pass.

use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Cube, backend_extension};

use crate::adam_kernel::{self, AdamForm, AdamNumbers};
use crate::norm_kernels;
use crate::sgd_kernel::{self, SgdForm, SgdNumbers};

/// The fused update. Called through Burn's `Dispatch` on `f32` tensors of
/// the Cube backend without autodiff only; [`crate::CubeOptimizers`]
/// checks that before it calls.
#[backend_extension(Cube)]
pub trait FusedCubeOptimizerOps: Backend {
    /// One SGD update (see `recipe_train::SgdUpdate`): the new parameter
    /// and velocity; `velocity` is read only when `reads_velocity` (pass
    /// the gradient otherwise), and without `momentum` the velocity
    /// returned is a one-element placeholder. `numbers` holds the learning
    /// rate, the momentum, the gradient's weight, L1 and L2; `flags`
    /// momentum, reads_velocity and nesterov.
    fn fused_sgd_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        numbers: [f32; 5],
        flags: [bool; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// One Adam or AdamW update (see `recipe_train::AdamUpdate`): the new
    /// parameter and moments; the moments are read only when not `first`
    /// (pass the gradient otherwise). `numbers` holds beta_1, beta_2,
    /// 1 - beta_1, 1 - beta_2, the learning rate, the rule's two factors
    /// (Adam: the combined bias correction and the scaled epsilon; AdamW:
    /// the two bias corrections), epsilon, AdamW's decay factor, L1 and L2;
    /// `flags` first, adamw and decay.
    fn fused_adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        numbers: [f32; 11],
        flags: [bool; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);

    /// The max-norm constraint on a `[rows, columns]` matrix in one
    /// launch: each unit (a column when `columns_are_units`, else a row)
    /// whose L2 norm exceeds `max_norm` rescaled to it.
    fn fused_max_norm(
        matrix: FloatTensor<Self>,
        max_norm: f32,
        columns_are_units: bool,
    ) -> FloatTensor<Self>;

    /// `l1 |w| + l2_half w²` of each weight (summed, the penalty's value).
    fn elastic_net_terms(weights: FloatTensor<Self>, l1: f32, l2_half: f32) -> FloatTensor<Self>;
}

impl FusedCubeOptimizerOps for Cube {
    fn fused_sgd_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        velocity: FloatTensor<Self>,
        numbers: [f32; 5],
        flags: [bool; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let [learning_rate, momentum, gradient_weight, l1, l2] = numbers;
        let [with_momentum, reads_velocity, nesterov] = flags;
        let form = SgdForm {
            momentum: with_momentum,
            reads_velocity: with_momentum && reads_velocity,
            nesterov: with_momentum && nesterov,
            l1: l1 != 0.0,
            l2: l2 != 0.0,
        };
        let numbers = SgdNumbers {
            learning_rate,
            momentum,
            gradient_weight,
            l1,
            l2,
        };
        sgd_kernel::sgd_update(param, grad, velocity, numbers, form)
    }

    fn fused_adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        numbers: [f32; 11],
        flags: [bool; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let numbers = AdamNumbers::from_array(numbers);
        let [first, adamw, decay] = flags;
        let form = AdamForm {
            first,
            adamw,
            decay: adamw && decay,
            l1: numbers.l1 != 0.0,
            l2: numbers.l2 != 0.0,
        };
        adam_kernel::adam_update(param, grad, (moment_1, moment_2), numbers, form)
    }

    fn fused_max_norm(
        matrix: FloatTensor<Self>,
        max_norm: f32,
        columns_are_units: bool,
    ) -> FloatTensor<Self> {
        norm_kernels::max_norm(matrix, columns_are_units, max_norm)
    }

    fn elastic_net_terms(weights: FloatTensor<Self>, l1: f32, l2_half: f32) -> FloatTensor<Self> {
        norm_kernels::elastic_net_terms(weights, l1, l2_half)
    }
}
