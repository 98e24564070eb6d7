//! Sigmoid, tanh and Maxout's max over pieces as a Burn backend extension
//! for Flex, with their own backward passes.
//!
//! Burn's autodiff keeps sigmoid's *input* and recomputes the sigmoid in
//! the backward pass before `grad * y * (1 - y)`; Maxout's max is a
//! `max_dim` whose backward scatters the gradient through a tensor of
//! indices. Here the forward pass keeps what the backward needs (the output
//! `y` for sigmoid and tanh, the winning piece of each unit for Maxout), and
//! each backward pass is one loop: `grad * y * (1 - y)`, `grad * (1 - y^2)`,
//! or the gradient written to the winners of a zeroed buffer.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};

use crate::flex_loops;
use crate::pointwise::{FromItsOutput, Sigmoid, Tanh};

/// The fused operations. Called through Burn's `Dispatch` on tensors of
/// Flex (with or without autodiff) only; [`crate::FlexActivations`] checks
/// that before it calls.
#[backend_extension(Flex, Autodiff)]
pub trait FusedActivationOps: Backend {
    /// Element-wise sigmoid.
    fn fused_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Element-wise tanh.
    fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `[batch, units * pieces]` to `[batch, units]`, the max of each
    /// unit's consecutive pieces.
    fn fused_max_over_pieces(x: FloatTensor<Self>, pieces: usize) -> FloatTensor<Self>;
}

impl FusedActivationOps for Flex {
    fn fused_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_loops::map(x, Sigmoid::forward)
    }

    fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        flex_loops::map(x, Tanh::forward)
    }

    fn fused_max_over_pieces(x: FloatTensor<Self>, pieces: usize) -> FloatTensor<Self> {
        flex_loops::max_over_pieces(x, pieces).0
    }
}

/// The backward pass of `F`: one loop over the kept output and the
/// gradient.
#[derive(Debug, Default)]
struct FromOutput<F>(F);

impl<F: FromItsOutput> Backward<Flex, 1> for FromOutput<F> {
    /// The forward pass's output.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(parent) = parent {
            let grad_in = flex_loops::zip(ops.state, grad, F::derivative);
            grads.register::<Flex>(parent.id, grad_in);
        }
    }
}

/// The backward pass of Maxout's max: the gradient goes to the winners.
#[derive(Debug)]
struct ToWinners;

impl Backward<Flex, 1> for ToWinners {
    type State = flex_loops::Winners;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(parent) = parent {
            grads.register::<Flex>(parent.id, flex_loops::to_winners(grad, &ops.state));
        }
    }
}

/// Runs `F` and records its backward pass when `x` is tracked.
fn from_output<F: FromItsOutput, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
) -> FloatTensor<Autodiff<Flex, C>> {
    match FromOutput::<F>::default()
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = flex_loops::map(x.into_primitive(), F::forward);
            prep.finish(y.clone(), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(flex_loops::map(x.into_primitive(), F::forward)),
    }
}

impl<C: CheckpointStrategy> FusedActivationOps for Autodiff<Flex, C> {
    fn fused_sigmoid(x: FloatTensor<Self>) -> FloatTensor<Self> {
        from_output::<Sigmoid, C>(x)
    }

    fn fused_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        from_output::<Tanh, C>(x)
    }

    fn fused_max_over_pieces(x: FloatTensor<Self>, pieces: usize) -> FloatTensor<Self> {
        match ToWinners
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (max, winners) = flex_loops::max_over_pieces(x.into_primitive(), pieces);
                prep.finish(winners, max)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(flex_loops::max_over_pieces(x.into_primitive(), pieces).0)
            }
        }
    }
}
