//! The per-epoch hook: Burn calls it once per epoch, after validation.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use burn::train::EarlyStoppingStrategy;
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};
use burn::train::metric::{AccuracyMetric, LossMetric, Metric};

use crate::{EpochRecord, History, TrainError, write_atomic};

/// Why a run ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StopReason {
    /// It ran its whole epoch budget.
    Completed,
    /// The training loss became NaN or infinite.
    Diverged {
        /// The epoch.
        epoch: usize,
        /// The loss.
        loss: f64,
    },
}

#[derive(Debug)]
struct MonitorState {
    history: History,
    epoch_started: Instant,
    stop: StopReason,
    write_error: Option<TrainError>,
}

/// Records each epoch's metrics into a [`History`], prints one line per
/// epoch, rewrites `history.csv` atomically, and stops the run when the loss
/// is no longer finite.
///
/// It is registered as Burn's `EarlyStoppingStrategy` because that is the
/// Learner's one per-epoch hook that sees the metric store.
#[derive(Clone)]
pub(crate) struct EpochMonitor {
    state: Arc<Mutex<MonitorState>>,
    total_epochs: usize,
    learning_rate: f64,
    history_path: Option<PathBuf>,
    print: bool,
    loss_name: String,
    accuracy_name: String,
}

impl EpochMonitor {
    pub(crate) fn new(
        total_epochs: usize,
        learning_rate: f64,
        history_path: Option<PathBuf>,
        print: bool,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(MonitorState {
                history: History::default(),
                epoch_started: Instant::now(),
                stop: StopReason::Completed,
                write_error: None,
            })),
            total_epochs,
            learning_rate,
            history_path,
            print,
            loss_name: LossMetric::new().name().to_string(),
            accuracy_name: AccuracyMetric::new().name().to_string(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, MonitorState> {
        // A panic elsewhere cannot leave the history half-updated: recover it.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Restarts the epoch clock (call right before training starts).
    pub(crate) fn start(&self) {
        self.lock().epoch_started = Instant::now();
    }

    /// The history so far, why the run stopped, and any error writing it.
    pub(crate) fn finish(&self) -> (History, StopReason, Option<TrainError>) {
        let mut state = self.lock();
        (
            state.history.clone(),
            state.stop.clone(),
            state.write_error.take(),
        )
    }

    fn record(&self, epoch: usize, store: &EventStoreClient) -> EpochRecord {
        let metric = |name: &str, split: Split| {
            store
                .find_metric(name, epoch, Aggregate::Mean, &split)
                .unwrap_or(f64::NAN)
        };
        let mut state = self.lock();
        let now = Instant::now();
        let seconds = (now - state.epoch_started).as_secs_f64();
        state.epoch_started = now;
        EpochRecord {
            epoch,
            train_loss: metric(&self.loss_name, Split::Train),
            train_accuracy: metric(&self.accuracy_name, Split::Train) / 100.0,
            valid_loss: metric(&self.loss_name, Split::Valid),
            valid_accuracy: metric(&self.accuracy_name, Split::Valid) / 100.0,
            learning_rate: self.learning_rate,
            seconds,
        }
    }
}

impl EarlyStoppingStrategy for EpochMonitor {
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        let record = self.record(epoch, store);
        if self.print {
            println!(
                "epoch {:>3}/{}  train loss {:.4} acc {:.4}  valid loss {:.4} acc {:.4}  {:.1}s",
                record.epoch,
                self.total_epochs,
                record.train_loss,
                record.train_accuracy,
                record.valid_loss,
                record.valid_accuracy,
                record.seconds
            );
            let _ = std::io::stdout().flush();
        }
        let mut state = self.lock();
        state.history.epochs.push(record);
        if let Some(path) = &self.history_path
            && let Err(error) = write_atomic(path, state.history.to_csv().as_bytes())
        {
            state.write_error.get_or_insert(error);
            return true;
        }
        if !record.train_loss.is_finite() || !record.valid_loss.is_finite() {
            let loss = if record.train_loss.is_finite() {
                record.valid_loss
            } else {
                record.train_loss
            };
            state.stop = StopReason::Diverged { epoch, loss };
            return true;
        }
        false
    }
}
