//! Burn's loss metric with its reads deferred ([`DeferredMean`]): the same
//! epoch value under the same name, one read of the device per
//! `read_every` steps instead of one per step.

use burn::tensor::{Tensor, TensorReadError};
use burn::train::ClassificationOutput;
use burn::train::metric::state::FormatOptions;
use burn::train::metric::{
    Adaptor, LossMetric, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};

use crate::DeferredMean;
use crate::penalty_metric::PenalizedOutput;

/// Steps between reads of [`DeferredLossMetric`],
/// [`DeferredAccuracyMetric`](crate::DeferredAccuracyMetric) and
/// [`PenaltyMetric`](crate::PenaltyMetric)
/// unless told otherwise (as Lightning's `log_every_n_steps`).
pub const READ_METRICS_EVERY: usize = 50;

/// The mean loss of the epoch, as Burn's `LossMetric` computes it (each
/// step's mean loss, weighted by the length of the loss tensor) and under
/// its name, so that early stopping, checkpoint selection and recipe's
/// history find it; the loss is read from the device every
/// [`Self::read_every`] steps.
#[derive(Clone)]
pub struct DeferredLossMetric {
    name: MetricName,
    mean: DeferredMean,
}

/// What [`DeferredLossMetric`] reads: one step's loss.
pub struct DeferredLossInput {
    loss: Tensor<1>,
}

impl DeferredLossInput {
    /// The step's loss, on the device it was computed on.
    pub fn new(loss: Tensor<1>) -> Self {
        Self { loss }
    }
}

impl DeferredLossMetric {
    /// Reads every [`READ_METRICS_EVERY`] steps.
    pub fn new() -> Self {
        Self {
            name: LossMetric::new().name(),
            mean: DeferredMean::new(READ_METRICS_EVERY, |numbers, items| (numbers[0], items)),
        }
    }

    /// Reads every `steps` steps (1: every step, as Burn's metric; 0: only
    /// at the end of the epoch).
    pub fn read_every(mut self, steps: usize) -> Self {
        self.mean = DeferredMean::new(steps, |numbers, items| (numbers[0], items));
        self
    }

    fn format(&self) -> FormatOptions {
        FormatOptions::new(self.name.clone()).precision(2)
    }
}

impl Default for DeferredLossMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for DeferredLossMetric {
    type Input = DeferredLossInput;

    fn update(
        &mut self,
        input: &DeferredLossInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let [items] = input.loss.dims();
        let format = self.format();
        self.mean
            .update(vec![input.loss.clone().mean()], items, format)
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
            unit: None,
            higher_is_better: false,
        }
        .into()
    }
}

impl Numeric for DeferredLossMetric {
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

impl Adaptor<DeferredLossInput> for ClassificationOutput {
    fn adapt(&self) -> DeferredLossInput {
        DeferredLossInput::new(self.loss.clone())
    }
}

impl Adaptor<DeferredLossInput> for PenalizedOutput {
    fn adapt(&self) -> DeferredLossInput {
        self.classification.adapt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric_test_support::{classification_steps, metadata};

    #[test]
    fn matches_burns_loss_metric_bit_for_bit_under_its_name() {
        for read_every in [0, 1, 4] {
            let mut burn = LossMetric::new();
            let mut deferred = DeferredLossMetric::new().read_every(read_every);
            assert_eq!(deferred.name(), burn.name());
            for step in classification_steps() {
                burn.update(&step.adapt(), &metadata()).unwrap();
                deferred.update(&step.adapt(), &metadata()).unwrap();
            }
            burn.compute().unwrap();
            deferred.compute().unwrap();
            assert_eq!(
                deferred.final_value().current().to_bits(),
                burn.final_value().current().to_bits(),
                "read every {read_every}"
            );
        }
    }
}
