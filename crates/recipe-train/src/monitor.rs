//! The per-epoch hook: Burn calls it once per epoch, after validation.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use burn::train::EarlyStoppingStrategy;
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};
use burn::train::metric::{AccuracyMetric, LossMetric, Metric};

use crate::{
    Decision, EarlyStopping, EpochRecord, History, PENALTY_METRIC, TrainError, write_atomic,
};

/// Why a run ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StopReason {
    /// It ran its whole epoch budget.
    Completed,
    /// Early stopping decided, for this reason.
    EarlyStopped(String),
    /// The loss became NaN or infinite.
    Diverged {
        /// The epoch.
        epoch: usize,
        /// The loss.
        loss: f64,
    },
}

/// Where this training session starts.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Epochs done before this session (0 unless resumed): Burn's in-memory
    /// metric store counts epochs from 1 in each session.
    pub(crate) epochs_done: usize,
}

#[derive(Debug)]
struct MonitorState {
    history: History,
    epoch_started: Instant,
    stop: StopReason,
    early_stopping: Option<EarlyStopping>,
    write_error: Option<TrainError>,
}

/// Records each epoch's metrics into a [`History`], prints one line per
/// epoch, rewrites `history.csv` atomically, applies early stopping, and
/// stops the run when the loss is no longer finite. (The training loader,
/// not this hook, seeds each epoch's random numbers.)
///
/// It is registered as Burn's `EarlyStoppingStrategy` because that is the
/// Learner's one per-epoch hook that sees the metric store.
#[derive(Clone)]
pub(crate) struct EpochMonitor {
    state: Arc<Mutex<MonitorState>>,
    best_epoch: Arc<AtomicUsize>,
    total_epochs: usize,
    learning_rate: f64,
    history_path: Option<PathBuf>,
    print: bool,
    session: Session,
    loss_name: String,
    accuracy_name: String,
}

impl EpochMonitor {
    pub(crate) fn new(
        total_epochs: usize,
        learning_rate: f64,
        early_stopping: Option<EarlyStopping>,
        history_path: Option<PathBuf>,
        print: bool,
        session: Session,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(MonitorState {
                history: History::default(),
                epoch_started: Instant::now(),
                stop: StopReason::Completed,
                early_stopping,
                write_error: None,
            })),
            best_epoch: Arc::new(AtomicUsize::new(0)),
            total_epochs,
            learning_rate,
            history_path,
            print,
            session,
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

    /// The best epoch so far by early stopping (0: none yet), shared with
    /// the checkpointing strategy. Burn checkpoints an epoch before it asks
    /// the early-stopping hook, so at epoch `e` it holds the best of `1..e`.
    pub(crate) fn best_epoch(&self) -> Arc<AtomicUsize> {
        self.best_epoch.clone()
    }

    /// Takes over the epochs a resumed run already did: their records, and
    /// early stopping's state as those records leave it. Returns whether early
    /// stopping had already ended the run.
    pub(crate) fn replay(&self, history: &History) -> Result<bool, TrainError> {
        let mut state = self.lock();
        for record in &history.epochs {
            state.history.epochs.push(*record);
            if let Decision::Stop(reason) = self.update_early_stopping(&mut state, record) {
                state.stop = StopReason::EarlyStopped(reason);
                break;
            }
        }
        if let Some(path) = &self.history_path {
            write_atomic(path, state.history.to_csv().as_bytes())?;
        }
        Ok(state.stop != StopReason::Completed)
    }

    /// Feeds `record` to early stopping (if any) and publishes its best epoch
    /// to the checkpointing strategy.
    fn update_early_stopping(&self, state: &mut MonitorState, record: &EpochRecord) -> Decision {
        let Some(early_stopping) = &mut state.early_stopping else {
            return Decision::Continue;
        };
        let decision = early_stopping.update(record);
        if let Some((best, _)) = early_stopping.best() {
            self.best_epoch.store(best, Ordering::SeqCst);
        }
        decision
    }

    /// The history so far, why the run stopped, the best epoch by the
    /// early-stopping monitor (by validation loss without it), and any error
    /// writing the history.
    pub(crate) fn finish(&self) -> (History, StopReason, Option<usize>, Option<TrainError>) {
        let mut state = self.lock();
        let best = match &state.early_stopping {
            Some(early_stopping) => early_stopping.best().map(|(epoch, _)| epoch),
            None => state.history.best_epoch().map(|r| r.epoch),
        };
        (
            state.history.clone(),
            state.stop.clone(),
            best,
            state.write_error.take(),
        )
    }

    fn record(&self, epoch: usize, store: &EventStoreClient) -> EpochRecord {
        let metric = |name: &str, split: Split| {
            store
                .find_metric(
                    name,
                    epoch - self.session.epochs_done,
                    Aggregate::Mean,
                    &split,
                )
                .unwrap_or(f64::NAN)
        };
        // Without a penalty the metric records zeros; a run whose Learner
        // lacks the metric has no penalty to report either.
        let train_penalty = store
            .find_metric(
                PENALTY_METRIC,
                epoch - self.session.epochs_done,
                Aggregate::Mean,
                &Split::Train,
            )
            .unwrap_or(0.0);
        let mut state = self.lock();
        let now = Instant::now();
        let seconds = (now - state.epoch_started).as_secs_f64();
        state.epoch_started = now;
        EpochRecord {
            epoch,
            train_loss: metric(&self.loss_name, Split::Train),
            train_penalty,
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
            let penalty = if record.train_penalty > 0.0 {
                format!(" (+penalty {:.4})", record.train_penalty)
            } else {
                String::new()
            };
            println!(
                "epoch {:>3}/{}  train loss {:.4}{penalty} acc {:.4}  valid loss {:.4} acc {:.4}  {:.1}s",
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
        match self.update_early_stopping(&mut state, &record) {
            Decision::Continue => false,
            Decision::Stop(reason) => {
                if self.print {
                    println!("early stopping at epoch {epoch}: {reason}");
                }
                state.stop = StopReason::EarlyStopped(reason);
                true
            }
        }
    }
}
