//! recipe's per-epoch record as a Burn metric logger: one CSV row per epoch
//! with the epoch mean of every numeric metric the Learner records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{MetricDefinition, NumericEntry};

use crate::session_memory::{SessionMemory, epoch_mean};
use crate::{TrainError, write_atomic};

/// A Burn `MetricLogger` (for `SupervisedTraining::with_metric_logger`)
/// that keeps every entry in memory, like Burn's `InMemoryMetricLogger`
/// (in a [`SessionMemory`], so a resumed run's epochs are found too),
/// and at the end of each epoch's split rewrites a CSV file atomically: a
/// row per epoch, a column `<split>_<metric>` per numeric metric
/// (`train_Loss`, `valid_Accuracy`, ...) holding its epoch mean, computed
/// as Burn's metric store computes `Aggregate::Mean`.
///
/// A failed write does not stop training (Burn's logger cannot report
/// one); it is kept for [`EpochCsvLogger::error`].
pub struct EpochCsvLogger {
    memory: SessionMemory,
    path: PathBuf,
    names: Vec<String>,
    rows: BTreeMap<usize, BTreeMap<String, f64>>,
    columns: Vec<String>,
    error: Arc<Mutex<Option<TrainError>>>,
}

impl EpochCsvLogger {
    /// A logger writing `path` (created or replaced at the first epoch's end).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            memory: SessionMemory::default(),
            path: path.as_ref().to_path_buf(),
            names: Vec::new(),
            rows: BTreeMap::new(),
            columns: Vec::new(),
            error: Arc::new(Mutex::new(None)),
        }
    }

    /// Where the first failed write, if any, is kept (readable after `launch`).
    pub fn error(&self) -> Arc<Mutex<Option<TrainError>>> {
        self.error.clone()
    }

    fn to_csv(&self) -> String {
        let mut csv = format!("epoch,{}\n", self.columns.join(","));
        for (epoch, values) in &self.rows {
            let cells: Vec<String> = self
                .columns
                .iter()
                .map(|column| values.get(column).map_or(String::new(), f64::to_string))
                .collect();
            csv.push_str(&format!("{epoch},{}\n", cells.join(",")));
        }
        csv
    }
}

impl MetricLogger for EpochCsvLogger {
    fn log(&mut self, update: MetricsUpdate, epoch: usize, split: &Split) {
        self.memory.log(update, epoch, split);
    }

    fn read_numeric(
        &mut self,
        name: &str,
        epoch: usize,
        split: &Split,
    ) -> Result<Vec<NumericEntry>, String> {
        self.memory.read_numeric(name, epoch, split)
    }

    fn log_metric_definition(&mut self, definition: MetricDefinition) {
        let name = definition.name.to_string();
        if !self.names.contains(&name) {
            self.names.push(name);
        }
        self.memory.log_metric_definition(definition);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        let epoch = summary.epoch_number;
        for name in self.names.clone() {
            let points = self.memory.entries(&name, epoch, &summary.split);
            let Some(mean) = epoch_mean(&points) else {
                continue;
            };
            let column = format!("{}_{name}", summary.split);
            if !self.columns.contains(&column) {
                self.columns.push(column.clone());
            }
            self.rows.entry(epoch).or_default().insert(column, mean);
        }
        if let Err(error) = write_atomic(&self.path, self.to_csv().as_bytes()) {
            self.error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(error);
        }
    }
}
