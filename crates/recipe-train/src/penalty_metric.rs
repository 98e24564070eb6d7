//! The penalty as a Burn metric: what the penalties added to the loss,
//! recorded per step like the loss, so it reaches Burn's metric store,
//! loggers and renderers, and recipe's history reads it from there.

use std::sync::Arc;

use burn::tensor::{ExecutionError, Tensor};
use burn::train::ClassificationOutput;
use burn::train::metric::{
    AccuracyInput, Adaptor, ConfusionStatsInput, ItemLazy, LossInput, MetricName,
    NumericAttributes, PerplexityInput, TopKAccuracyInput,
};

use crate::{DeferredMetric, StepReading};

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
/// every [`DeferredMetric`] it reads the device every
/// [`READ_METRICS_EVERY`](crate::READ_METRICS_EVERY) steps
/// ([`DeferredMetric::read_every`]).
pub type PenaltyMetric = DeferredMetric<PenaltyReading>;

/// What [`PenaltyMetric`] reads: one number of each step.
#[derive(Clone)]
pub struct PenaltyReading {
    name: MetricName,
    reads: StepNumber,
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
        Self::from_reading(PenaltyReading {
            name: Arc::new(PENALTY_METRIC.to_string()),
            reads: StepNumber::Penalty,
        })
    }

    /// The global gradient norm before clipping, named [`GRAD_NORM_METRIC`]
    /// (0 at steps that do not clip). Its entries are means over the steps
    /// of a read: register [`GradNormMaxMetric`](crate::GradNormMaxMetric)
    /// beside it for the largest norm of the epoch (recipe's history takes
    /// it from there).
    pub fn grad_norm() -> Self {
        Self::from_reading(PenaltyReading {
            name: Arc::new(GRAD_NORM_METRIC.to_string()),
            reads: StepNumber::GradNorm,
        })
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

impl StepReading for PenaltyReading {
    type Input = PenaltyInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> NumericAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
    }

    fn precision(&self) -> usize {
        4
    }

    fn numbers(&self, input: &PenaltyInput) -> (Vec<Tensor<1>>, usize) {
        let number = match self.reads {
            StepNumber::Penalty => &input.penalty,
            StepNumber::GradNorm => &input.grad_norm,
        };
        // Nothing to read at a step without the number: it records 0.
        (number.iter().cloned().collect(), 1)
    }

    /// The step's number, 0 at a step without one; each step weighs 1.
    fn value(&self, numbers: &[f64], _items: usize) -> (f64, usize) {
        (numbers.first().copied().unwrap_or(0.0), 1)
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

/// Burn's classification inputs, so that a `SupervisedTraining` of
/// recipe's [`Classifier`](crate::Classifier) takes Burn's loss, accuracy,
/// top-k accuracy, precision, recall, F-score and perplexity on its
/// training split as on its validation split.
macro_rules! adapt_as_classification {
    ($($input:ty),*) => {$(
        impl Adaptor<$input> for PenalizedOutput {
            fn adapt(&self) -> $input {
                self.classification.adapt()
            }
        }
    )*};
}

adapt_as_classification!(
    AccuracyInput,
    LossInput,
    TopKAccuracyInput,
    ConfusionStatsInput,
    PerplexityInput
);

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
    use burn::train::metric::{Metric, Numeric};

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
