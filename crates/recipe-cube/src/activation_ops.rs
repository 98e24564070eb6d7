//! Sigmoid, tanh and Maxout's max over pieces as a Burn backend extension
//! for the CubeCL backend (every GPU runtime), with their own backward
//! passes: the forward keeps the output (sigmoid, tanh) or the winning
//! piece of each unit (Maxout), and each backward pass is one kernel.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Cube, backend_extension};
use burn_cubecl::tensor::CubeTensor;

use crate::kernels::{self, FromItsOutput, Winners};

/// The fused operations. Called through Burn's `Dispatch` on `f32`
/// tensors of the Cube backend (with or without autodiff) only;
/// [`crate::CubeActivations`] checks that before it calls.
#[backend_extension(Cube, Autodiff)]
pub trait FusedCubeActivationOps: Backend {
    /// Element-wise sigmoid.
    fn fused_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Element-wise tanh.
    fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[batch, units * pieces]` to `[batch, units]`, the max of each
    /// unit's consecutive pieces.
    fn fused_max_over_pieces(x: FloatTensor<Self>, pieces: usize) -> FloatTensor<Self>;
}

impl FusedCubeActivationOps for Cube {
    fn fused_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        FromItsOutput::Sigmoid.forward(x)
    }

    fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        FromItsOutput::Tanh.forward(x)
    }

    fn fused_max_over_pieces(x: FloatTensor<Self>, pieces: usize) -> FloatTensor<Self> {
        kernels::max_over_pieces(x, pieces).0
    }
}

/// The backward pass of sigmoid or tanh, from the kept output.
#[derive(Debug, Default)]
struct FromOutput(FromItsOutput);

impl Backward<Cube, 1> for FromOutput {
    /// The forward pass's output.
    type State = CubeTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Cube>(&ops.node);
        if let Some(parent) = parent {
            grads.register::<Cube>(parent.id, self.0.backward(ops.state, grad));
        }
    }
}

/// The backward pass of Maxout's max: the gradient goes to the winners.
#[derive(Debug)]
struct ToWinners;

impl Backward<Cube, 1> for ToWinners {
    type State = Winners;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Cube>(&ops.node);
        if let Some(parent) = parent {
            grads.register::<Cube>(parent.id, kernels::to_winners(grad, ops.state));
        }
    }
}

/// Runs `function` and records its backward pass when `x` is tracked.
fn from_output<C: CheckpointStrategy>(
    function: FromItsOutput,
    x: FloatTensor<Autodiff<Cube, C>>,
) -> FloatTensor<Autodiff<Cube, C>> {
    match FromOutput(function)
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = function.forward(x.into_primitive());
            prep.finish(y.clone(), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(function.forward(x.into_primitive())),
    }
}

impl<C: CheckpointStrategy> FusedCubeActivationOps for Autodiff<Cube, C> {
    fn fused_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        from_output::<C>(FromItsOutput::Sigmoid, x)
    }

    fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        from_output::<C>(FromItsOutput::Tanh, x)
    }

    fn fused_max_over_pieces(x: FloatTensor<Self>, pieces: usize) -> FloatTensor<Self> {
        match ToWinners
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (max, winners) = kernels::max_over_pieces(x.into_primitive(), pieces);
                prep.finish(winners, max)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(kernels::max_over_pieces(x.into_primitive(), pieces).0)
            }
        }
    }
}
