//! Burn's loss metric read the deferred way ([`DeferredMetric`]): the same
//! epoch value under the same name, one read of the device per
//! `read_every` steps instead of one per step.

use burn::tensor::Tensor;
use burn::train::ClassificationOutput;
use burn::train::metric::{Adaptor, LossMetric, Metric, MetricName, NumericAttributes};

use crate::penalty_metric::PenalizedOutput;
use crate::{DeferredMetric, StepReading};

/// The mean loss of the epoch, as Burn's `LossMetric` computes it (each
/// step's mean loss, weighted by the length of the loss tensor) and under
/// its name, so that early stopping, checkpoint selection and recipe's
/// history find it.
pub type DeferredLossMetric = DeferredMetric<LossReading>;

/// What [`DeferredLossMetric`] reads: each step's mean loss.
#[derive(Clone)]
pub struct LossReading {
    name: MetricName,
}

/// A step's loss, the input of [`DeferredLossMetric`].
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
    /// Reads every [`READ_METRICS_EVERY`](crate::READ_METRICS_EVERY) steps.
    pub fn new() -> Self {
        Self::from_reading(LossReading {
            name: LossMetric::new().name(),
        })
    }
}

impl Default for DeferredLossMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl StepReading for LossReading {
    type Input = DeferredLossInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> NumericAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
    }

    fn numbers(&self, input: &DeferredLossInput) -> (Vec<Tensor<1>>, usize) {
        let [items] = input.loss.dims();
        (vec![input.loss.clone().mean()], items)
    }

    fn value(&self, numbers: &[f64], items: usize) -> (f64, usize) {
        (numbers[0], items)
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
    use burn::train::metric::Numeric;

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
