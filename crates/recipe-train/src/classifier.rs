//! Any network that maps images to logits, made trainable on Burn's Learner.

use burn::module::{Module, ModuleDisplay};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::Tensor;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use recipe_data::ImageBatch;
use recipe_models::Mlp;

/// A network that maps a batch of flattened images to class logits.
///
/// Implement it for your own module (a new activation, a new block) and
/// [`train`](crate::train) trains it like recipe's own [`Mlp`]:
///
/// ```ignore
/// impl Classify for MyNet {
///     fn forward(&self, images: Tensor<2>) -> Tensor<2> { self.forward(images) }
/// }
/// ```
pub trait Classify: Module + ModuleDisplay + core::fmt::Display + 'static {
    /// # Shapes
    /// - images: `[batch, features]`
    /// - output: `[batch, classes]` logits
    fn logits(&self, images: Tensor<2>) -> Tensor<2>;
}

impl Classify for Mlp {
    fn logits(&self, images: Tensor<2>) -> Tensor<2> {
        self.forward(images)
    }
}

/// Wraps a [`Classify`] network with a cross-entropy loss so that Burn's
/// Learner can train it.
#[derive(Module, Debug)]
pub struct Classifier<N> {
    /// The network.
    pub net: N,
}

impl<N: Classify> Classifier<N> {
    /// Wraps `net`.
    pub fn new(net: N) -> Self {
        Self { net }
    }

    /// Logits, mean cross-entropy loss and targets of a batch.
    pub fn forward_classification(&self, batch: ImageBatch) -> ClassificationOutput {
        let output = self.net.logits(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&output.device())
            .forward(output.clone(), batch.targets.clone());
        ClassificationOutput {
            loss,
            output,
            targets: batch.targets,
        }
    }
}

impl<N: Classify> TrainStep for Classifier<N> {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<ClassificationOutput> {
        let item = self.forward_classification(batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl<N: Classify> InferenceStep for Classifier<N> {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}
