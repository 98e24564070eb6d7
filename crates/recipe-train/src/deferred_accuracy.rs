//! Burn's accuracy metric with its reads deferred ([`DeferredMean`]): the
//! same epoch value under the same name, one read of the device per
//! `read_every` steps instead of one per step.

use burn::tensor::{Int, Tensor, TensorReadError};
use burn::train::ClassificationOutput;
use burn::train::metric::state::FormatOptions;
use burn::train::metric::{
    AccuracyMetric, Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};

use crate::penalty_metric::PenalizedOutput;
use crate::{DeferredMean, READ_METRICS_EVERY};

/// The epoch's accuracy in percent, as Burn's `AccuracyMetric` computes it
/// (the arg-max class against the target, items whose target is the pad
/// token left out) and under its name; the counts are read from the device
/// every [`Self::read_every`] steps.
#[derive(Clone)]
pub struct DeferredAccuracyMetric {
    name: MetricName,
    pad_token: Option<usize>,
    mean: DeferredMean,
}

/// What [`DeferredAccuracyMetric`] reads: one step's outputs and targets.
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

/// A step's accuracy in percent from its number of matches (and, with a
/// pad token, of padded items), weighted by the items that count.
fn step_accuracy(numbers: &[f64], items: usize) -> (f64, usize) {
    let padded = numbers.get(1).map_or(0, |&padded| padded as usize);
    let counted = items - padded;
    (100.0 * (numbers[0] / counted as f64), counted)
}

impl DeferredAccuracyMetric {
    /// Reads every [`READ_METRICS_EVERY`] steps.
    pub fn new() -> Self {
        Self {
            name: AccuracyMetric::new().name(),
            pad_token: None,
            mean: DeferredMean::new(READ_METRICS_EVERY, step_accuracy),
        }
    }

    /// Reads every `steps` steps (1: every step, as Burn's metric; 0: only
    /// at the end of the epoch).
    pub fn read_every(mut self, steps: usize) -> Self {
        self.mean = DeferredMean::new(steps, step_accuracy);
        self
    }

    /// Leaves out the items whose target is `index`.
    pub fn with_pad_token(mut self, index: usize) -> Self {
        self.pad_token = Some(index);
        self
    }

    fn format(&self) -> FormatOptions {
        FormatOptions::new(self.name.clone()).unit("%").precision(2)
    }
}

impl Default for DeferredAccuracyMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for DeferredAccuracyMetric {
    type Input = DeferredAccuracyInput;

    fn update(
        &mut self,
        input: &DeferredAccuracyInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
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
        let format = self.format();
        self.mean.update(numbers, batch, format)
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let format = self.format();
        self.mean.compute(format)
    }

    fn clear(&mut self) {
        self.mean.clear()
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".to_string()),
            higher_is_better: true,
        }
        .into()
    }
}

impl Numeric for DeferredAccuracyMetric {
    fn value(&self) -> Option<NumericEntry> {
        self.mean.value()
    }

    fn running_value(&self) -> Option<NumericEntry> {
        self.mean.running_value()
    }

    fn final_value(&self) -> NumericEntry {
        self.mean.final_value()
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
