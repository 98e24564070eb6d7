//! A linear layer's `x · W + b` as a Burn backend extension for Flex, with
//! its own backward pass, on [`crate::split_gemm`]'s products.
//!
//! The forward pass adds the bias to each thread's block of the output
//! right after its product, while the block is in the cache (no separate
//! pass over the output, and Burn's order of additions); the backward pass is
//! three products' worth: `grad · Wᵀ` for the input, `xᵀ · grad` for the
//! weights (both transposes read in place), and the column sums of `grad`
//! for the bias.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};

use crate::flex_loops;
use crate::split_gemm::{self, MatrixView};

/// The fused linear map. Called through Burn's `Dispatch` on `f32` tensors
/// of Flex (with or without autodiff) only; [`crate::FlexActivations`]
/// checks that before it calls.
#[backend_extension(Flex, Autodiff)]
pub trait FusedLinearOps: Backend {
    /// `x · weight + bias`: x `[batch, d_input]`, weight `[d_input,
    /// d_output]`, bias `[d_output]`, output `[batch, d_output]`.
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// The forward pass on Flex's tensors.
fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> FlexTensor {
    flex_loops::with_values(bias, |bias| {
        split_gemm::product(MatrixView::of(x), MatrixView::of(weight), Some(bias))
    })
}

impl FusedLinearOps for Flex {
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        forward(&x, &weight, &bias)
    }
}

/// The backward pass: what the forward pass read is what it needs.
#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    /// The input and the weights.
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node, bias_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight) = ops.state;
        let grad_view = MatrixView::of(&grad);
        if let Some(node) = x_node {
            let grad_x = split_gemm::product(grad_view, MatrixView::of(&weight).transposed(), None);
            grads.register::<Flex>(node.id, grad_x);
        }
        if let Some(node) = weight_node {
            let grad_weight = split_gemm::product(MatrixView::of(&x).transposed(), grad_view, None);
            grads.register::<Flex>(node.id, grad_weight);
        }
        if let Some(node) = bias_node {
            grads.register::<Flex>(node.id, split_gemm::column_sums(&grad));
        }
    }
}

impl<C: CheckpointStrategy> FusedLinearOps for Autodiff<Flex, C> {
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let nodes = [x.node(), weight.node(), bias.node()];
        let (x, weight, bias) = (
            x.into_primitive(),
            weight.into_primitive(),
            bias.into_primitive(),
        );
        match LinearBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward(&x, &weight, &bias);
                prep.finish((x, weight), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &weight, &bias)),
        }
    }
}
