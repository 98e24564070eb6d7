//! A linear layer's `f(x · W + b)` as a Burn backend extension for Flex,
//! with its own backward pass, on [`crate::split_gemm`]'s products; `f` is
//! the identity or an activation whose derivative is a function of its
//! output (sigmoid, tanh, ReLU).
//!
//! The forward pass adds the bias to each thread's block of the output
//! right after its product and applies `f` in the same pass, while the block
//! is in the cache (no separate pass over the output, no second fork of the
//! thread pool, and Burn's order of operations); it keeps the output for
//! `f`'s derivative, not the pre-activation. The backward pass is one loop
//! for `f'` written over the incoming gradient, then three products' worth:
//! `grad · Wᵀ` for the input, `xᵀ · grad` for the weights (both transposes
//! read in place), and the column sums of `grad` for the bias.

use burn::backend::autodiff::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};

use recipe_models::kernels::FusedActivation;

use crate::flex_loops;
use crate::pointwise::Pointwise;
use crate::split_gemm::{self, MatrixView};

/// The fused linear map. Called through Burn's `Dispatch` on `f32` tensors
/// of Flex (with or without autodiff) only, with an activation this crate
/// has a kernel for; [`crate::FlexActivations`] checks that before it calls.
#[backend_extension(Flex, Autodiff)]
pub trait FusedLinearOps: Backend {
    /// `f(x · weight + bias)`, `f` the identity when `activation` is `None`:
    /// x `[batch, d_input]`, weight `[d_input, d_output]`, bias
    /// `[d_output]`, output `[batch, d_output]`.
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Option<FusedActivation>,
    ) -> FloatTensor<Self>;
}

/// The kernel's function for `activation` (checked by the caller).
fn pointwise(activation: Option<FusedActivation>) -> Pointwise {
    match activation {
        None => Pointwise::Identity,
        Some(activation) => Pointwise::of(activation)
            .expect("FlexActivations passes only the activations it has kernels for"),
    }
}

/// The forward pass on Flex's tensors.
fn forward(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor, f: Pointwise) -> FlexTensor {
    flex_loops::with_values(bias, |bias| {
        split_gemm::product(MatrixView::of(x), MatrixView::of(weight), Some(bias), f)
    })
}

impl FusedLinearOps for Flex {
    fn fused_linear(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Option<FusedActivation>,
    ) -> FloatTensor<Self> {
        forward(&x, &weight, &bias, pointwise(activation))
    }
}

/// The backward pass: what the forward pass read is what it needs, and its
/// output when there is a function to differentiate.
#[derive(Debug)]
struct LinearBackward;

/// What [`LinearBackward`] keeps from the forward pass.
#[derive(Debug, Clone)]
struct LinearState {
    x: FlexTensor,
    weight: FlexTensor,
    /// The output and its function, unless the function is the identity.
    output: Option<(FlexTensor, Pointwise)>,
}

impl Backward<Flex, 3> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node, weight_node, bias_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let LinearState { x, weight, output } = ops.state;
        let grad = match output {
            Some((y, f)) => {
                flex_loops::update_with(&y, grad, |y, grad| f.derivative_in_place(y, grad))
            }
            None => grad,
        };
        let grad_view = MatrixView::of(&grad);
        if let Some(node) = x_node {
            let grad_x = split_gemm::product(
                grad_view,
                MatrixView::of(&weight).transposed(),
                None,
                Pointwise::Identity,
            );
            grads.register::<Flex>(node.id, grad_x);
        }
        if let Some(node) = weight_node {
            let grad_weight = split_gemm::product(
                MatrixView::of(&x).transposed(),
                grad_view,
                None,
                Pointwise::Identity,
            );
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
        activation: Option<FusedActivation>,
    ) -> FloatTensor<Self> {
        let f = pointwise(activation);
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
                let y = forward(&x, &weight, &bias, f);
                let output = (f != Pointwise::Identity).then(|| (y.clone(), f));
                prep.finish(LinearState { x, weight, output }, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&x, &weight, &bias, f)),
        }
    }
}
