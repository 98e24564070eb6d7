//! A batch for classification: inputs of any shape, one class per example.

use burn::tensor::{Int, Tensor};

/// What a [`Batcher`](burn::data::dataloader::batcher::Batcher) hands a
/// classifier: `inputs` (any type: `Tensor<2>` for an MLP,
/// `Tensor<4>` `[batch, channels, rows, cols]` for a convolutional net, or
/// a struct of several tensors) and their classes.
#[derive(Debug, Clone)]
pub struct ClassBatch<X> {
    /// The network's input for the batch; its first dimension is the batch.
    pub inputs: X,
    /// `[batch]` class indices, in `0..classes`.
    pub targets: Tensor<1, Int>,
}
