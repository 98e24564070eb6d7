//! A Burn metric whose per-step numbers stay on the device until several
//! steps are read back together: what it reads is a [`StepReading`].

use burn::tensor::{Tensor, TensorReadError};
use burn::train::metric::state::FormatOptions;
use burn::train::metric::{
    Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes, NumericEntry,
    SerializedEntry,
};

use crate::deferred_mean::DeferredMean;

/// Steps between reads of a [`DeferredMetric`] unless told otherwise (as
/// Lightning's `log_every_n_steps`).
pub const READ_METRICS_EVERY: usize = 50;

/// What a [`DeferredMetric`] takes from each step and how the numbers, once
/// read, become the step's value. Implement it for a metric of your own;
/// recipe's loss, accuracy and penalty metrics are implementations.
pub trait StepReading: Clone + Send + Sync + 'static {
    /// The step's input, adapted from the model's output by Burn's
    /// `Adaptor`.
    type Input: Send + Sync;

    /// The metric's name in Burn's metric store.
    fn name(&self) -> MetricName;

    /// Its unit and direction.
    fn attributes(&self) -> NumericAttributes;

    /// Decimals shown by Burn's renderers.
    fn precision(&self) -> usize {
        2
    }

    /// The step's numbers, left on the device (shape `[1]` each; none for
    /// a step with nothing to read), and its item count.
    fn numbers(&self, input: &Self::Input) -> (Vec<Tensor<1>>, usize);

    /// The step's value and its weight in the epoch mean (Burn's
    /// `NumericMetricState::update`), from its numbers as read (in their
    /// order) and its item count.
    fn value(&self, numbers: &[f64], items: usize) -> (f64, usize);
}

/// The epoch mean of a [`StepReading`]'s step values, read from the
/// device every [`Self::read_every`] steps and at the end of the epoch in
/// one transaction per device instead of once per step. On a GPU each read
/// waits for the device's queue, and since Burn's Learner hands each step
/// to its metric thread through a channel of one item, the training thread
/// waits with it. The epoch value does not depend on the cadence: the steps
/// are replayed into Burn's `NumericMetricState` in their order.
///
/// Its entries in Burn's store: one aggregated entry per read (the steps
/// read, weighted), Burn's "not available" placeholder at the other steps,
/// and the epoch's final value.
#[derive(Clone)]
pub struct DeferredMetric<R> {
    reading: R,
    mean: DeferredMean,
}

impl<R: StepReading> DeferredMetric<R> {
    /// The metric of `reading`, read every [`READ_METRICS_EVERY`] steps.
    pub fn from_reading(reading: R) -> Self {
        Self {
            reading,
            mean: DeferredMean::new(READ_METRICS_EVERY),
        }
    }

    /// Reads every `steps` steps (1: every step, as Burn's own metrics; 0:
    /// only at the end of the epoch).
    pub fn read_every(mut self, steps: usize) -> Self {
        self.mean = DeferredMean::new(steps);
        self
    }

    /// What it reads.
    pub fn reading(&self) -> &R {
        &self.reading
    }

    pub(crate) fn reading_mut(&mut self) -> &mut R {
        &mut self.reading
    }

    fn format(&self) -> FormatOptions {
        let attributes = self.reading.attributes();
        let format = FormatOptions::new(self.reading.name()).precision(self.reading.precision());
        match &attributes.unit {
            Some(unit) => format.unit(unit),
            None => format,
        }
    }
}

impl<R: StepReading> Metric for DeferredMetric<R> {
    type Input = R::Input;

    fn update(
        &mut self,
        input: &R::Input,
        _metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let (numbers, items) = self.reading.numbers(input);
        let format = self.format();
        let reading = &self.reading;
        self.mean.update(numbers, items, format, |read, items| {
            reading.value(read, items)
        })
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        let format = self.format();
        let reading = &self.reading;
        self.mean
            .compute(format, |read, items| reading.value(read, items))
    }

    fn clear(&mut self) {
        self.mean.clear()
    }

    fn name(&self) -> MetricName {
        self.reading.name()
    }

    fn attributes(&self) -> MetricAttributes {
        self.reading.attributes().into()
    }
}

impl<R: StepReading> Numeric for DeferredMetric<R> {
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
