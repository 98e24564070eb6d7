//! Burn's in-memory metric store, answering by the Learner's own epoch
//! numbers even in a run resumed past epoch 1.

use burn::train::logger::{InMemoryMetricLogger, MetricLogger};
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, NumericEntry};

/// Burn's `InMemoryMetricLogger` keeps one slot per epoch *it has seen*, and
/// reads epoch `e` from slot `e - 1`. A Learner resumed from the checkpoint
/// of epoch 4 logs its first epoch as 5 into slot 0, so Burn's store would
/// answer "epoch 5" with nothing (and early stopping on it would never
/// fire). This wrapper learns the offset from the first epoch logged and
/// translates reads, so the store answers by the Learner's epoch numbers.
#[derive(Default)]
pub struct SessionMemory {
    memory: InMemoryMetricLogger,
    first_epoch: Option<usize>,
}

impl SessionMemory {
    /// The epoch's entries of metric `name` for `split` (empty when the
    /// metric or the epoch was not logged in this session).
    pub fn entries(&mut self, name: &str, epoch: usize, split: &Split) -> Vec<NumericEntry> {
        self.read_numeric(name, epoch, split).unwrap_or_default()
    }
}

impl MetricLogger for SessionMemory {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        self.first_epoch.get_or_insert(epoch);
        self.memory.log(update, epoch, split);
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        match self.first_epoch {
            Some(first) if epoch >= first => {
                self.memory.read_numeric(name, epoch + 1 - first, split)
            }
            _ => Ok(Vec::new()),
        }
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        self.memory.log_metric_definition(definition);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        self.memory.log_epoch_summary(summary);
    }
}

/// The epoch mean of `points`, as Burn's `NumericMetricsAggregate` computes
/// `Aggregate::Mean`: values weigh 1, aggregated entries by their count, and
/// a final value replaces the rest.
pub(crate) fn epoch_mean(points: &[NumericEntry]) -> Option<f64> {
    if let Some(NumericEntry::Final(value)) = points.last() {
        return Some(*value);
    }
    let (sum, count) = points
        .iter()
        .fold((0.0, 0usize), |(sum, count), entry| match entry {
            NumericEntry::Value(v) => (sum + v, count + 1),
            NumericEntry::Aggregated {
                aggregated_value,
                count: n,
            } => (sum + aggregated_value * *n as f64, count + n),
            NumericEntry::Final(v) => (sum + v, count + 1),
        });
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values weigh 1, aggregated entries by their count, a final value wins
    /// (by hand: (1 + 2 + 3 * 4) / 6 = 2.5).
    #[test]
    fn means_follow_burns_aggregate() {
        let points = [
            NumericEntry::Value(1.0),
            NumericEntry::Value(2.0),
            NumericEntry::Aggregated {
                aggregated_value: 3.0,
                count: 4,
            },
        ];
        assert_eq!(epoch_mean(&points), Some(2.5));
        assert_eq!(
            epoch_mean(&[NumericEntry::Value(1.0), NumericEntry::Final(7.0)]),
            Some(7.0)
        );
        assert_eq!(epoch_mean(&[]), None);
    }
}
