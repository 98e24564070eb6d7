//! The largest global gradient norm of an epoch's steps, kept on the
//! device and read once at the end of the epoch.

use std::sync::Arc;

use burn::tensor::{Tensor, TensorReadError};
use burn::train::metric::{
    Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry,
    SerializedEntry,
};

use crate::PenaltyInput;

/// The name of [`GradNormMaxMetric`] in Burn's metric store.
pub const GRAD_NORM_MAX_METRIC: &str = "Gradient norm max";

/// The largest global gradient norm before clipping over the epoch's
/// steps (0 for an epoch whose steps did not clip), as the epoch's final
/// value; no value per step. Register it beside
/// [`PenaltyMetric::grad_norm`](crate::PenaltyMetric::grad_norm):
/// `SupervisedTraining::metric_train_numeric(GradNormMaxMetric::new())`.
/// The running maximum stays on the device: one read per epoch.
#[derive(Clone)]
pub struct GradNormMaxMetric {
    name: MetricName,
    running: Option<Tensor<1>>,
    max: f64,
}

impl GradNormMaxMetric {
    /// A maximum over no step yet.
    pub fn new() -> Self {
        Self {
            name: Arc::new(GRAD_NORM_MAX_METRIC.to_string()),
            running: None,
            max: 0.0,
        }
    }
}

impl Default for GradNormMaxMetric {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for GradNormMaxMetric {
    type Input = PenaltyInput;

    fn update(
        &mut self,
        input: &PenaltyInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        if let Some(norm) = input.grad_norm() {
            // Shape `[1]` already: no reduction to launch.
            let norm = norm.clone();
            self.running = Some(match self.running.take() {
                Some(running) => running.max_pair(norm),
                None => norm,
            });
        }
        Ok(SerializedEntry::not_available(None))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        if let Some(running) = self.running.take() {
            self.max = self.max.max(running.try_into_scalar::<f64>()?);
        }
        let entry = NumericEntry::Final(self.max);
        Ok(SerializedEntry::new(
            format!("epoch {:.4}", self.max),
            entry.serialize(),
        ))
    }

    fn clear(&mut self) {
        self.running = None;
        self.max = 0.0;
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

impl Numeric for GradNormMaxMetric {
    fn value(&self) -> Option<NumericEntry> {
        None
    }

    fn running_value(&self) -> Option<NumericEntry> {
        None
    }

    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric_test_support::metadata;
    use burn::tensor::Device;

    fn input(norm: Option<f32>) -> PenaltyInput {
        let device = Device::flex();
        PenaltyInput::new(None, norm.map(|norm| Tensor::from_floats([norm], &device)))
    }

    #[test]
    fn the_epoch_value_is_the_largest_step_and_zero_without_one() {
        let mut metric = GradNormMaxMetric::new();
        for norm in [Some(2.5), None, Some(7.25), Some(1.0)] {
            let entry = metric.update(&input(norm), &metadata()).unwrap();
            assert!(entry.is_not_available());
        }
        metric.compute().unwrap();
        assert_eq!(metric.final_value().current(), 7.25);
        metric.clear();
        metric.update(&input(None), &metadata()).unwrap();
        metric.compute().unwrap();
        assert_eq!(metric.final_value().current(), 0.0);
    }
}
