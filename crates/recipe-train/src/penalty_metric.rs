//! The penalty as a Burn metric: what the penalties added to the loss,
//! recorded per step like the loss, so it reaches Burn's metric store,
//! loggers and renderers, and recipe's history reads it from there.

use std::sync::Arc;

use burn::tensor::{ExecutionError, Tensor, TensorReadError};
use burn::train::ClassificationOutput;
use burn::train::metric::state::FormatOptions;
use burn::train::metric::{
    AccuracyInput, Adaptor, ItemLazy, LossInput, Metric, MetricAttributes, MetricMetadata,
    MetricName, Numeric, NumericAttributes, NumericEntry, SerializedEntry,
};

use crate::{DeferredMean, READ_METRICS_EVERY};

/// The name of [`PenaltyMetric`] in Burn's metric store.
pub const PENALTY_METRIC: &str = "Penalty";

/// The name of the gradient-norm metric ([`PenaltyMetric::grad_norm`]) in
/// Burn's metric store.
pub const GRAD_NORM_METRIC: &str = "Gradient norm";

/// One number per training step from [`PenalizedOutput`], averaged over
/// the epoch's steps: the penalty added to the loss (0 without one), or,
/// as [`PenaltyMetric::grad_norm`], the global gradient norm before
/// clipping. Register it for the training split:
/// `SupervisedTraining::metric_train_numeric(PenaltyMetric::new())`. Like
/// [`DeferredLossMetric`](crate::DeferredLossMetric) it reads the device
/// every [`READ_METRICS_EVERY`] steps ([`PenaltyMetric::read_every`]).
#[derive(Clone)]
pub struct PenaltyMetric {
    name: Arc<String>,
    reads: StepNumber,
    mean: DeferredMean,
}

/// A step's number, 0 at a step without one; each step weighs 1.
fn step_number(numbers: &[f64], _items: usize) -> (f64, usize) {
    (numbers.first().copied().unwrap_or(0.0), 1)
}

/// Which number of the step a [`PenaltyMetric`] records.
#[derive(Clone, Copy)]
enum StepNumber {
    Penalty,
    GradNorm,
}

impl PenaltyMetric {
    /// The penalty, named [`PENALTY_METRIC`].
    pub fn new() -> Self {
        Self {
            name: Arc::new(PENALTY_METRIC.to_string()),
            reads: StepNumber::Penalty,
            mean: DeferredMean::new(READ_METRICS_EVERY, step_number),
        }
    }

    /// The global gradient norm before clipping, named [`GRAD_NORM_METRIC`]
    /// (0 at steps that do not clip). Its entries are means over the steps
    /// of a read: register [`GradNormMaxMetric`](crate::GradNormMaxMetric)
    /// beside it for the largest norm of the epoch (recipe's history takes
    /// it from there).
    pub fn grad_norm() -> Self {
        Self {
            name: Arc::new(GRAD_NORM_METRIC.to_string()),
            reads: StepNumber::GradNorm,
            mean: DeferredMean::new(READ_METRICS_EVERY, step_number),
        }
    }

    /// Reads every `steps` steps (1: every step; 0: only at the end of the
    /// epoch).
    pub fn read_every(mut self, steps: usize) -> Self {
        self.mean = DeferredMean::new(steps, step_number);
        self
    }

    fn format(&self) -> FormatOptions {
        FormatOptions::new(self.name()).precision(4)
    }
}

impl Default for PenaltyMetric {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`PenaltyMetric`] reads: one step's total penalty and its gradient
/// norm, shape `[1]` each, where the step has them (0 otherwise, with
/// nothing read from the device: on a GPU each read waits for the queue).
pub struct PenaltyInput {
    penalty: Option<Tensor<1>>,
    grad_norm: Option<Tensor<1>>,
}

impl PenaltyInput {
    /// A step's penalty and gradient norm, each where the step has one.
    pub fn new(penalty: Option<Tensor<1>>, grad_norm: Option<Tensor<1>>) -> Self {
        Self { penalty, grad_norm }
    }

    /// The step's global gradient norm before clipping, where it clipped.
    pub fn grad_norm(&self) -> Option<&Tensor<1>> {
        self.grad_norm.as_ref()
    }
}

impl Metric for PenaltyMetric {
    type Input = PenaltyInput;

    fn update(
        &mut self,
        input: &PenaltyInput,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let value = match self.reads {
            StepNumber::Penalty => &input.penalty,
            StepNumber::GradNorm => &input.grad_norm,
        };
        // Nothing to read at a step without the number: it records 0.
        let numbers = value.iter().map(|value| value.clone().sum()).collect();
        let format = self.format();
        self.mean.update(numbers, 1, format)
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

impl Numeric for PenaltyMetric {
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

/// A training step's output: Burn's classification output (for accuracy,
/// loss and the other classification metrics) and the penalty added to
/// the loss (`None` without one).
pub struct PenalizedOutput {
    /// Logits, data loss and targets.
    pub classification: ClassificationOutput,
    /// The penalty of the step, detached, shape `[1]`.
    pub penalty: Option<Tensor<1>>,
    /// The global gradient norm of the step before clipping, shape `[1]`
    /// (`None` when the step does not clip).
    pub grad_norm: Option<Tensor<1>>,
}

impl ItemLazy for PenalizedOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        Ok(Self {
            classification: self.classification.sync()?,
            penalty: self.penalty.map(|p| p.without_autodiff()),
            grad_norm: self.grad_norm,
        })
    }
}

impl Adaptor<AccuracyInput> for PenalizedOutput {
    fn adapt(&self) -> AccuracyInput {
        self.classification.adapt()
    }
}

impl Adaptor<LossInput> for PenalizedOutput {
    fn adapt(&self) -> LossInput {
        self.classification.adapt()
    }
}

impl Adaptor<PenaltyInput> for PenalizedOutput {
    fn adapt(&self) -> PenaltyInput {
        PenaltyInput {
            penalty: self.penalty.clone(),
            grad_norm: self.grad_norm.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric_test_support::metadata;
    use burn::tensor::{Device, Int};

    fn output(penalty: Option<f32>, grad_norm: Option<f32>) -> PenalizedOutput {
        let device = Device::flex();
        let scalar = |value: f32| Tensor::<1>::from_floats([value], &device);
        PenalizedOutput {
            classification: ClassificationOutput::new(
                scalar(0.7),
                Tensor::zeros([2, 3], &device),
                Tensor::<1, Int>::from_ints([0, 1], &device),
            ),
            penalty: penalty.map(scalar),
            grad_norm: grad_norm.map(scalar),
        }
    }

    /// A step without a penalty (or without clipping) records 0, read from
    /// no tensor; a step with one records its value; the epoch's value is
    /// the mean over its steps.
    #[test]
    fn each_step_records_its_number_and_zero_without_one() {
        let steps = [output(None, Some(2.0)), output(Some(0.5), None)];
        for (mut metric, expected) in [
            (PenaltyMetric::new(), 0.25),
            (PenaltyMetric::grad_norm(), 1.0),
        ] {
            for step in &steps {
                metric.update(&step.adapt(), &metadata()).unwrap();
            }
            metric.compute().unwrap();
            assert_eq!(metric.final_value().current(), expected);
        }
    }
}
