//! A metric of its own, read the deferred way: the network's confidence.

use burn::tensor::Tensor;
use burn::tensor::activation::softmax;
use burn::train::ClassificationOutput;
use burn::train::metric::{Adaptor, MetricName, NumericAttributes};
use recipe_train::{PenalizedOutput, StepReading};

/// The mean over the items of the largest softmax probability, in percent:
/// how sure the network is, whether or not it is right. Wrap it in recipe's
/// `DeferredMetric::from_reading(Confidence)` for a Burn metric that reads
/// the device every 50 steps.
#[derive(Debug, Clone, Copy)]
pub struct Confidence;

/// A step's logits `[batch, classes]`, the input of [`Confidence`].
pub struct ConfidenceInput {
    logits: Tensor<2>,
}

impl StepReading for Confidence {
    type Input = ConfidenceInput;

    fn name(&self) -> MetricName {
        MetricName::new("Confidence".to_string())
    }

    fn attributes(&self) -> NumericAttributes {
        NumericAttributes {
            unit: Some("%".to_string()),
            higher_is_better: true,
        }
    }

    fn numbers(&self, input: &ConfidenceInput) -> (Vec<Tensor<1>>, usize) {
        let [batch, _classes] = input.logits.dims();
        let largest = softmax(input.logits.clone(), 1).max_dim(1);
        (vec![largest.mean().reshape([1])], batch)
    }

    fn value(&self, numbers: &[f64], items: usize) -> (f64, usize) {
        (100.0 * numbers[0], items)
    }
}

impl Adaptor<ConfidenceInput> for ClassificationOutput {
    fn adapt(&self) -> ConfidenceInput {
        ConfidenceInput {
            logits: self.output.clone(),
        }
    }
}

/// The training split's output.
impl Adaptor<ConfidenceInput> for PenalizedOutput {
    fn adapt(&self) -> ConfidenceInput {
        self.classification.adapt()
    }
}
