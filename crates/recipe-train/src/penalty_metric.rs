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

use crate::{DeferredMetric, StepGradNorm, StepReading};

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
    /// (batches that ended no clipping optimizer step do not count). Its
    /// entries are means over the steps
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

    /// The step's number, each step weighing 1. A batch without a penalty
    /// counts as 0; a batch without a gradient norm (one whose gradient
    /// went into a later optimizer step) does not count.
    fn value(&self, numbers: &[f64], _items: usize) -> (f64, usize) {
        match (numbers.first(), self.reads) {
            (Some(&number), _) => (number, 1),
            (None, StepNumber::Penalty) => (0.0, 1),
            (None, StepNumber::GradNorm) => (0.0, 0),
        }
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
    /// The global gradient norm before clipping of the optimizer step
    /// this batch ended, filled by that step (empty when the run does not
    /// clip, or the batch's gradient went into a later step).
    pub grad_norm: StepGradNorm,
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
            grad_norm: self.grad_norm.get(),
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
            grad_norm: grad_norm.map_or_else(StepGradNorm::default, |norm| {
                StepGradNorm::known(scalar(norm))
            }),
        }
    }

    /// A batch without a penalty records 0, read from no tensor; a batch
    /// without a gradient norm (its gradient went into a later optimizer
    /// step) records nothing, so the norm's epoch value is the mean over
    /// the steps, not the batches.
    #[test]
    fn penalties_count_every_batch_and_norms_every_step() {
        let steps = [
            output(None, Some(2.0)),
            output(Some(0.5), None),
            output(None, Some(4.0)),
        ];
        for (mut metric, expected) in [
            (PenaltyMetric::new(), 0.5 / 3.0),
            (PenaltyMetric::grad_norm(), 3.0),
        ] {
            for step in &steps {
                metric.update(&step.adapt(), &metadata()).unwrap();
            }
            metric.compute().unwrap();
            assert_eq!(metric.final_value().current(), expected);
        }
    }
}
