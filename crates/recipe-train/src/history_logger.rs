//! recipe's [`History`] as a Burn metric logger: one [`EpochRecord`] per
//! epoch, `history.csv` rewritten atomically, and the epoch line on stdout.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use burn::train::Interrupter;
use burn::train::logger::MetricLogger;
use burn::train::metric::store::{EpochSummary, MetricsUpdate, Split};
use burn::train::metric::{AccuracyMetric, LossMetric, Metric, MetricDefinition, NumericEntry};

use crate::session_memory::{SessionMemory, epoch_mean};
use crate::{
    ClassMetric, EpochRecord, GRAD_NORM_MAX_METRIC, GRAD_NORM_METRIC, GradNorm, History,
    LayerGradients, PENALTY_METRIC, Plateau, ScheduledLr, TrainError, WeightAverager, write_atomic,
};

/// What the logger shares with whoever launched the Learner.
#[derive(Debug, Default)]
struct Shared {
    history: History,
    write_error: Option<TrainError>,
}

/// A Burn `MetricLogger` (for `SupervisedTraining::with_metric_logger`)
/// that turns each epoch's metrics into an [`EpochRecord`]: the epoch means
/// of Burn's `Loss` and `Accuracy` on both splits and of recipe's
/// [`PENALTY_METRIC`] (0 when the Learner does not record it), the learning
/// rate and the epoch's seconds.
///
/// The record is complete when Burn closes the epoch's validation split,
/// which Burn does before it checkpoints or asks its early-stopping
/// strategy, so both see the epoch's record. It keeps the entries it is
/// given in a [`SessionMemory`], so it is also the store Burn's strategies
/// read from.
///
/// With a path it rewrites `history.csv` atomically after every epoch; a
/// failed write stops the Learner through the [`Interrupter`] given to
/// [`HistoryLogger::stop_on_write_error`] and is kept for
/// [`HistoryHandle::take_write_error`]. With `print` it prints one line
/// per epoch.
pub struct HistoryLogger {
    memory: SessionMemory,
    shared: Arc<Mutex<Shared>>,
    path: Option<PathBuf>,
    print: Option<usize>,
    learning_rate: f64,
    epoch_started: Instant,
    interrupter: Option<Interrupter>,
    loss: String,
    accuracy: String,
    layer_gradients: Option<LayerGradients>,
    rates: Option<ScheduledLr>,
    plateau: Option<Plateau>,
    averager: Option<(WeightAverager, Option<PathBuf>)>,
    /// The run's own metrics and the splits each is recorded on.
    recorded: Vec<(String, Vec<Split>)>,
}

/// Reads what a [`HistoryLogger`] recorded, after (or during) `launch`.
#[derive(Clone, Debug)]
pub struct HistoryHandle {
    shared: Arc<Mutex<Shared>>,
}

impl HistoryHandle {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        // A panic elsewhere cannot leave the history half-updated: recover it.
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The epochs recorded so far (those of a resumed run first).
    pub fn history(&self) -> History {
        self.lock().history.clone()
    }

    /// The first error writing `history.csv`, if any (taken).
    pub fn take_write_error(&self) -> Option<TrainError> {
        self.lock().write_error.take()
    }
}

impl HistoryLogger {
    /// A logger that starts from `earlier` (the epochs a resumed run already
    /// did; empty for a fresh run) and records at `learning_rate`.
    pub fn new(earlier: History, learning_rate: f64) -> Self {
        Self {
            memory: SessionMemory::default(),
            shared: Arc::new(Mutex::new(Shared {
                history: earlier,
                write_error: None,
            })),
            path: None,
            print: None,
            learning_rate,
            epoch_started: Instant::now(),
            interrupter: None,
            loss: LossMetric::new().name().to_string(),
            accuracy: AccuracyMetric::new().name().to_string(),
            layer_gradients: None,
            rates: None,
            plateau: None,
            averager: None,
            recorded: Vec::new(),
        }
    }

    /// Records the epoch means of `metrics` (registered with the Learner
    /// on the splits they name) in each [`EpochRecord::metrics`], and prints
    /// them on the epoch line.
    pub fn with_recorded_metrics(mut self, metrics: &[ClassMetric]) -> Self {
        self.recorded = metrics
            .iter()
            .map(|metric| (metric.name().to_string(), metric.splits()))
            .collect();
        self
    }

    /// Rewrites `path` as CSV after every epoch, and now (so a resumed run's
    /// file holds exactly the epochs it continues from).
    pub fn write_csv(mut self, path: impl Into<PathBuf>) -> Result<Self, TrainError> {
        let path = path.into();
        write_atomic(&path, self.handle().history().to_csv().as_bytes())?;
        self.path = Some(path);
        Ok(self)
    }

    /// Prints one line per epoch (`epoch 3/20  train loss ...`).
    pub fn print_epochs(mut self, total_epochs: usize) -> Self {
        self.print = Some(total_epochs);
        self
    }

    /// Records each epoch's learning rate from `schedule` (the rate of the
    /// epoch's first step) instead of the fixed rate.
    pub fn with_schedule(mut self, schedule: ScheduledLr) -> Self {
        self.rates = Some(schedule);
        self
    }

    /// Feeds each epoch's record to `plateau` once it is recorded (the rate
    /// recorded is the one the epoch trained at), so the next epoch trains
    /// at the rate the rule chose.
    pub fn with_plateau(mut self, plateau: Plateau) -> Self {
        self.plateau = Some(plateau);
        self
    }

    /// Records the averaged weights' validation figures of each epoch from
    /// `averager`, and, with a `run_dir`, saves the average into its
    /// checkpoint folder after each epoch (before Burn checkpoints the
    /// epoch, so every checkpoint has its average for a resume).
    pub fn with_averager(mut self, averager: WeightAverager, run_dir: Option<PathBuf>) -> Self {
        self.averager = Some((averager, run_dir));
        self
    }

    /// Closes each epoch of `recorder` too (its `layers.csv` is rewritten
    /// with `history.csv`; a failed write stops the Learner the same way).
    pub fn with_layer_gradients(mut self, recorder: LayerGradients) -> Self {
        self.layer_gradients = Some(recorder);
        self
    }

    /// Stops the Learner (the one launched with this interrupter, see
    /// `SupervisedTraining::with_interrupter`) when `history.csv` cannot be
    /// written, instead of training on without a record.
    pub fn stop_on_write_error(mut self, interrupter: Interrupter) -> Self {
        self.interrupter = Some(interrupter);
        self
    }

    /// The handle to read the history with once the logger is moved into
    /// the Learner.
    pub fn handle(&self) -> HistoryHandle {
        HistoryHandle {
            shared: self.shared.clone(),
        }
    }

    fn mean(&mut self, name: &str, epoch: usize, split: Split) -> Option<f64> {
        epoch_mean(&self.memory.entries(name, epoch, &split))
    }

    fn record(&mut self, epoch: usize) -> EpochRecord {
        let (loss, accuracy) = (self.loss.clone(), self.accuracy.clone());
        let mut metric = |name: &str, split| self.mean(name, epoch, split).unwrap_or(f64::NAN);
        let train_loss = metric(&loss, Split::Train);
        let train_accuracy = metric(&accuracy, Split::Train) / 100.0;
        let valid_loss = metric(&loss, Split::Valid);
        let valid_accuracy = metric(&accuracy, Split::Valid) / 100.0;
        // Without a penalty the metric records zeros; a Learner without the
        // metric has no penalty to report either.
        let train_penalty = self
            .mean(PENALTY_METRIC, epoch, Split::Train)
            .unwrap_or(0.0);
        let norms = self.memory.entries(GRAD_NORM_METRIC, epoch, &Split::Train);
        // The largest norm is its own metric's: with reads deferred, the
        // entries of the norm metric are means over several steps.
        let largest = self.mean(GRAD_NORM_MAX_METRIC, epoch, Split::Train);
        let grad_norm = epoch_mean(&norms).map(|mean| GradNorm {
            mean,
            max: largest.unwrap_or_else(|| {
                norms
                    .iter()
                    .map(|entry| entry.current())
                    .fold(f64::NEG_INFINITY, f64::max)
            }),
        });
        let averaged = self
            .averager
            .as_ref()
            .and_then(|(averager, _)| averager.finish_validation());
        let mut metrics = BTreeMap::new();
        for (name, splits) in self.recorded.clone() {
            for split in splits {
                if let Some(value) = self.mean(&name, epoch, split.clone()) {
                    metrics.insert(crate::Metric::recorded(&name, split).to_string(), value);
                }
            }
        }
        let now = Instant::now();
        let seconds = (now - self.epoch_started).as_secs_f64();
        self.epoch_started = now;
        EpochRecord {
            epoch,
            train_loss,
            train_penalty,
            train_accuracy,
            valid_loss,
            valid_accuracy,
            learning_rate: self
                .rates
                .as_ref()
                .map_or(self.learning_rate, |rates| rates.rate_of_epoch(epoch)),
            seconds,
            grad_norm,
            averaged,
            metrics,
        }
    }

    fn print(&self, record: &EpochRecord, total_epochs: usize) {
        let penalty = if record.train_penalty > 0.0 {
            format!(" (+penalty {:.4})", record.train_penalty)
        } else {
            String::new()
        };
        let norm = record.grad_norm.map_or(String::new(), |norm| {
            format!("  grad norm {:.3} (max {:.3})", norm.mean, norm.max)
        });
        let averaged = record.averaged.map_or(String::new(), |a| {
            format!(
                "  averaged: valid loss {:.4} acc {:.4}",
                a.valid_loss, a.valid_accuracy
            )
        });
        let recorded: String = record
            .metrics
            .iter()
            .map(|(column, value)| format!("  {column} {value:.4}"))
            .collect();
        println!(
            "epoch {:>3}/{total_epochs}  train loss {:.4}{penalty} acc {:.4}  valid loss {:.4} acc {:.4}{norm}{averaged}{recorded}  {:.1}s",
            record.epoch,
            record.train_loss,
            record.train_accuracy,
            record.valid_loss,
            record.valid_accuracy,
            record.seconds
        );
        let _ = std::io::stdout().flush();
    }

    fn append(&mut self, record: EpochRecord) {
        let handle = self.handle();
        let mut shared = handle.lock();
        let epoch = record.epoch;
        shared.history.epochs.push(record);
        let layers = match &self.layer_gradients {
            Some(recorder) => recorder.finish_epoch(epoch),
            None => Ok(()),
        };
        let written = match &self.path {
            Some(path) => write_atomic(path, shared.history.to_csv().as_bytes()),
            None => Ok(()),
        };
        let average = match &self.averager {
            Some((averager, Some(run_dir))) => averager.save(run_dir, epoch),
            _ => Ok(()),
        };
        if let Err(error) = layers.and(written).and(average) {
            if let Some(interrupter) = &self.interrupter {
                interrupter.stop(Some(&error.to_string()));
            }
            shared.write_error.get_or_insert(error);
        }
    }
}

impl MetricLogger for HistoryLogger {
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
        self.memory.log_metric_definition(definition);
    }

    fn log_epoch_summary(&mut self, summary: EpochSummary) {
        let is_valid = summary.split == Split::Valid;
        let epoch = summary.epoch_number;
        self.memory.log_epoch_summary(summary);
        if !is_valid {
            return;
        }
        let record = self.record(epoch);
        if let Some(total_epochs) = self.print {
            self.print(&record, total_epochs);
        }
        let lowered = self.plateau.as_ref().and_then(|p| p.end_record(&record));
        if let (Some(rate), Some(_)) = (lowered, self.print) {
            println!("          plateau: learning rate lowered to {rate:.3e}");
        }
        self.append(record);
    }
}
