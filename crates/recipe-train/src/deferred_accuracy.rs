//! Burn's accuracy metric read the deferred way ([`DeferredMetric`]): the
//! same epoch value under the same name, one read of the device per
//! `read_every` steps instead of one per step.

use burn::tensor::{Int, Tensor};
use burn::train::ClassificationOutput;
use burn::train::metric::{AccuracyMetric, Adaptor, Metric, MetricName, NumericAttributes};

use crate::penalty_metric::PenalizedOutput;
use crate::{DeferredMetric, StepReading};

/// The epoch's accuracy in percent, as Burn's `AccuracyMetric` computes it
/// (the arg-max class against the target, items whose target is the pad
/// token left out) and under its name.
pub type DeferredAccuracyMetric = DeferredMetric<AccuracyReading>;

/// What [`DeferredAccuracyMetric`] reads: each step's count of right
/// answers (and of padded items, with a pad token).
#[derive(Clone)]
pub struct AccuracyReading {
    name: MetricName,
    pad_token: Option<usize>,
}

/// A step's outputs and targets, the input of [`DeferredAccuracyMetric`].
pub struct DeferredAccuracyInput {
    outputs: Tensor<2>,
    targets: Tensor<1, Int>,
}

impl DeferredAccuracyInput {
    /// Outputs `[batch, classes]` and target classes `[batch]`.
    pub fn new(outputs: Tensor<2>, targets: Tensor<1, Int>) -> Self {
        Self { outputs, targets }
    }
}

impl DeferredAccuracyMetric {
    /// Reads every [`READ_METRICS_EVERY`](crate::READ_METRICS_EVERY) steps.
    pub fn new() -> Self {
        Self::from_reading(AccuracyReading {
            name: AccuracyMetric::new().name(),
            pad_token: None,
        })
    }

    /// Leaves out the items whose target is `index`.
    pub fn with_pad_token(mut self, index: usize) -> Self {
        self.reading_mut().pad_token = Some(index);
        self
    }
}

impl Default for DeferredAccuracyMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl StepReading for AccuracyReading {
    type Input = DeferredAccuracyInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> NumericAttributes {
        NumericAttributes {
            unit: Some("%".to_string()),
            higher_is_better: true,
        }
    }

    fn numbers(&self, input: &DeferredAccuracyInput) -> (Vec<Tensor<1>>, usize) {
        let [batch, _classes] = input.outputs.dims();
        let predicted = input.outputs.clone().argmax(1).reshape([batch]);
        let matches = predicted.equal(input.targets.clone()).float();
        // Counts up to 2^24 are exact in f32: a batch's count is.
        let numbers = match self.pad_token {
            Some(pad) => {
                let padded = input.targets.clone().equal_scalar(pad as i64);
                let matches = matches.mask_fill(padded.clone(), 0);
                vec![matches.sum(), padded.float().sum()]
            }
            None => vec![matches.sum()],
        };
        (numbers, batch)
    }

    /// The step's accuracy in percent, weighted by the items that count.
    fn value(&self, numbers: &[f64], items: usize) -> (f64, usize) {
        let padded = numbers.get(1).map_or(0, |&padded| padded as usize);
        let counted = items - padded;
        (100.0 * (numbers[0] / counted as f64), counted)
    }
}

impl Adaptor<DeferredAccuracyInput> for ClassificationOutput {
    fn adapt(&self) -> DeferredAccuracyInput {
        DeferredAccuracyInput::new(self.output.clone(), self.targets.clone())
    }
}

impl Adaptor<DeferredAccuracyInput> for PenalizedOutput {
    fn adapt(&self) -> DeferredAccuracyInput {
        self.classification.adapt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric_test_support::{classification_steps, metadata};
    use burn::train::metric::Numeric;

    #[test]
    fn matches_burns_accuracy_metric_bit_for_bit_under_its_name() {
        for (read_every, pad) in [(0, None), (1, None), (3, None), (2, Some(1)), (0, Some(4))] {
            let (mut burn, mut deferred) = (
                AccuracyMetric::new(),
                DeferredAccuracyMetric::new().read_every(read_every),
            );
            if let Some(pad) = pad {
                burn = burn.with_pad_token(pad);
                deferred = deferred.with_pad_token(pad);
            }
            assert_eq!(deferred.name(), burn.name());
            for step in classification_steps() {
                burn.update(&step.adapt(), &metadata()).unwrap();
                deferred.update(&step.adapt(), &metadata()).unwrap();
            }
            burn.compute().unwrap();
            deferred.compute().unwrap();
            let (burn, deferred) = (
                burn.final_value().current(),
                deferred.final_value().current(),
            );
            assert!(
                burn > 0.0 && burn < 100.0,
                "a test of a trivial accuracy: {burn}"
            );
            assert_eq!(
                deferred.to_bits(),
                burn.to_bits(),
                "read every {read_every}, pad {pad:?}"
            );
        }
    }
}
