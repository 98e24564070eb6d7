//! The state of a [`DeferredMetric`](crate::DeferredMetric): the steps
//! queued on the device, the epoch's mean of those read, and the entry of
//! the last read. The epoch's value is Burn's, bit for bit: the steps are
//! replayed into Burn's `NumericMetricState` in their order, with the
//! values Burn's metric would have read.

use burn::tensor::{Tensor, TensorReadError};
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{NumericEntry, SerializedEntry};

use crate::scalar_reads::read_scalars;

/// The running state of a metric that reads the device every
/// `read_every` steps: the queued steps, the epoch's mean so far and the
/// entry of the last read.
#[derive(Clone)]
pub(crate) struct DeferredMean {
    read_every: usize,
    queued: Vec<QueuedStep>,
    epoch: NumericMetricState,
    /// The steps read by the last update, as one aggregated entry; `None`
    /// after an update that read nothing.
    window: Option<NumericEntry>,
    read_any: bool,
}

/// One step's numbers, still on the device (shape `[1]` each).
#[derive(Clone)]
struct QueuedStep {
    numbers: Vec<Tensor<1>>,
    items: usize,
}

impl DeferredMean {
    /// Reads every `read_every` steps (1: every step, as Burn's metrics
    /// do; 0: only when the epoch ends).
    pub fn new(read_every: usize) -> Self {
        Self {
            read_every,
            queued: Vec::new(),
            epoch: NumericMetricState::new(),
            window: None,
            read_any: false,
        }
    }

    /// Queues one step of `items` items and its `numbers` (shape `[1]`
    /// each; none for a step with nothing to read), reading the queue when
    /// it holds `read_every` steps; `value` turns a step's numbers read (in
    /// their order) and its item count into its value and weight. Returns
    /// the entry to log: the steps just read, or Burn's "not available"
    /// placeholder when nothing was read.
    ///
    /// # Errors
    /// A failed read of the device; the steps it held are dropped.
    pub fn update(
        &mut self,
        numbers: Vec<Tensor<1>>,
        items: usize,
        format: FormatOptions,
        value: impl Fn(&[f64], usize) -> (f64, usize),
    ) -> Result<SerializedEntry, TensorReadError> {
        self.queued.push(QueuedStep { numbers, items });
        self.window = None;
        if self.read_every == 0 || self.queued.len() < self.read_every {
            return Ok(SerializedEntry::not_available(
                format.unit_value().as_deref(),
            ));
        }
        self.read_queue(value)?;
        Ok(self.window_entry(&format))
    }

    /// Reads what is still queued and returns the epoch's final entry.
    ///
    /// # Errors
    /// A failed read of the device.
    pub fn compute(
        &mut self,
        format: FormatOptions,
        value: impl Fn(&[f64], usize) -> (f64, usize),
    ) -> Result<SerializedEntry, TensorReadError> {
        self.read_queue(value)?;
        Ok(self.epoch.compute_final(format))
    }

    /// Forgets the epoch, queued steps included.
    pub fn clear(&mut self) {
        self.queued.clear();
        self.epoch.reset();
        self.window = None;
        self.read_any = false;
    }

    /// The steps the last update read, as one aggregated entry (their
    /// weighted mean and total weight); `None` when it read nothing.
    pub fn value(&self) -> Option<NumericEntry> {
        self.window.clone()
    }

    /// The epoch's mean over the steps read so far; `None` before the
    /// first read.
    pub fn running_value(&self) -> Option<NumericEntry> {
        self.read_any.then(|| self.epoch.running_value())
    }

    /// The epoch's mean over all its steps, after [`Self::compute`].
    pub fn final_value(&self) -> NumericEntry {
        self.epoch.final_value()
    }

    fn read_queue(
        &mut self,
        value: impl Fn(&[f64], usize) -> (f64, usize),
    ) -> Result<(), TensorReadError> {
        let steps = std::mem::take(&mut self.queued);
        if steps.is_empty() {
            return Ok(());
        }
        let numbers = read_scalars(steps.iter().flat_map(|step| step.numbers.iter()))?;
        let mut numbers = numbers.into_iter();
        let (mut sum, mut weight) = (0.0, 0);
        for step in &steps {
            let read: Vec<f64> = numbers.by_ref().take(step.numbers.len()).collect();
            let (step_value, count) = value(&read, step.items);
            self.epoch.update(step_value, count);
            if count > 0 {
                sum += step_value * count as f64;
                weight += count;
            }
        }
        // Steps that all weigh nothing (none clipped) make no entry.
        self.window = (weight > 0).then(|| NumericEntry::Aggregated {
            aggregated_value: sum / weight as f64,
            count: weight,
        });
        self.read_any |= weight > 0;
        Ok(())
    }

    fn window_entry(&self, format: &FormatOptions) -> SerializedEntry {
        let Some(window) = &self.window else {
            return SerializedEntry::not_available(format.unit_value().as_deref());
        };
        let shown = |value: f64| match format.precision_value() {
            Some(precision) => format!("{value:.precision$}"),
            None => format!("{value}"),
        };
        let unit = format
            .unit_value()
            .as_ref()
            .map(|unit| format!(" {unit}"))
            .unwrap_or_default();
        let running = self.epoch.running_value().current();
        let formatted = format!(
            "epoch {}{unit} - batch {}{unit}",
            shown(running),
            shown(window.current())
        );
        SerializedEntry::new(formatted, window.serialize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use burn::train::metric::MetricName;

    fn format() -> FormatOptions {
        FormatOptions::new(MetricName::new("Test".to_string())).precision(3)
    }

    fn as_is(numbers: &[f64], items: usize) -> (f64, usize) {
        (numbers[0], items)
    }

    fn steps() -> Vec<(f32, usize)> {
        // Values with no short binary form, so that a different order or
        // grouping of the sums would show in the last bits.
        (0..11)
            .map(|i| (0.1 + 0.37 * i as f32 / 3.0, 7 + (i * 5) % 9))
            .collect()
    }

    /// Burn's own arithmetic: one `update` per step with the value read
    /// back as `f64`.
    fn burn_mean() -> f64 {
        let mut state = NumericMetricState::new();
        for (value, items) in steps() {
            state.update(value as f64, items);
        }
        state.final_value().current()
    }

    #[test]
    fn the_epoch_mean_is_burns_bit_for_bit_whatever_the_reading_cadence() {
        let device = Device::flex();
        for read_every in [0, 1, 3, 11, 50] {
            let mut mean = DeferredMean::new(read_every);
            for (value, items) in steps() {
                let number = Tensor::<1>::from_floats([value], &device);
                mean.update(vec![number], items, format(), as_is).unwrap();
            }
            mean.compute(format(), as_is).unwrap();
            assert_eq!(
                mean.final_value().current().to_bits(),
                burn_mean().to_bits(),
                "read every {read_every}"
            );
        }
    }

    #[test]
    fn only_a_reading_step_has_a_value_and_it_weighs_the_steps_it_read() {
        let device = Device::flex();
        let mut mean = DeferredMean::new(2);
        let update = |mean: &mut DeferredMean, value: f32, items| {
            let number = Tensor::<1>::from_floats([value], &device);
            mean.update(vec![number], items, format(), as_is).unwrap()
        };
        let first = update(&mut mean, 1.0, 1);
        assert!(first.is_not_available());
        let second = update(&mut mean, 4.0, 3);
        assert_eq!(second.serialized, "3.25,4");
        assert_eq!(second.formatted, "epoch 3.250 - batch 3.250");
        assert!(mean.value().is_some());
        let third = update(&mut mean, 2.0, 4);
        assert!(third.is_not_available());
        assert!(mean.value().is_none());
        // The running value lags: it holds the steps read so far.
        assert_eq!(mean.running_value().unwrap().current(), 3.25);
        mean.compute(format(), as_is).unwrap();
        assert_eq!(mean.final_value().current(), 21.0 / 8.0);
    }

    #[test]
    fn steps_without_numbers_still_count_in_their_place() {
        let device = Device::flex();
        let zero_without =
            |numbers: &[f64], _items: usize| (numbers.first().copied().unwrap_or(0.0), 1);
        let mut mean = DeferredMean::new(0);
        mean.update(Vec::new(), 5, format(), zero_without).unwrap();
        let number = Tensor::<1>::from_floats([3.0], &device);
        mean.update(vec![number], 5, format(), zero_without)
            .unwrap();
        mean.compute(format(), zero_without).unwrap();
        assert_eq!(mean.final_value().current(), 1.5);
    }

    /// Steps that weigh nothing (batches that ended no optimizer step, for
    /// the gradient norm) make no entry of their own, not a NaN one, and
    /// leave the mean to the steps that weigh.
    #[test]
    fn a_read_of_weightless_steps_has_no_value() {
        let device = Device::flex();
        let weightless_without =
            |numbers: &[f64], _items: usize| numbers.first().map_or((0.0, 0), |&n| (n, 1));
        let mut mean = DeferredMean::new(2);
        let entry = mean
            .update(Vec::new(), 5, format(), weightless_without)
            .unwrap();
        assert!(entry.is_not_available());
        let entry = mean
            .update(Vec::new(), 5, format(), weightless_without)
            .unwrap();
        assert!(entry.is_not_available(), "{}", entry.serialized);
        assert!(mean.value().is_none() && mean.running_value().is_none());
        let number = Tensor::<1>::from_floats([3.0], &device);
        mean.update(vec![number], 5, format(), weightless_without)
            .unwrap();
        mean.compute(format(), weightless_without).unwrap();
        assert_eq!(mean.final_value().current(), 3.0);
    }

    #[test]
    fn clear_forgets_queued_steps() {
        let device = Device::flex();
        let mut mean = DeferredMean::new(0);
        let number = Tensor::<1>::from_floats([9.0], &device);
        mean.update(vec![number], 1, format(), as_is).unwrap();
        mean.clear();
        let number = Tensor::<1>::from_floats([1.0], &device);
        mean.update(vec![number], 1, format(), as_is).unwrap();
        mean.compute(format(), as_is).unwrap();
        assert_eq!(mean.final_value().current(), 1.0);
        assert!(mean.running_value().is_some());
    }
}
