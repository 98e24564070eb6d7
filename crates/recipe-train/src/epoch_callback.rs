//! Code of your own at the end of each epoch of recipe's trainer, which may
//! stop the run: Keras' `Callback.on_epoch_end` with `model.stop_training`,
//! Lightning's `Callback` with `trainer.should_stop`.

use std::fmt;
use std::sync::{Arc, Mutex};

use burn::train::EarlyStoppingStrategy;
use burn::train::metric::store::EventStoreClient;

use crate::{Decision, History, HistoryHandle};

/// Called at the end of every epoch of a run with the history so far, for
/// [`TrainOptions::callbacks`](crate::TrainOptions::callbacks): a stopping
/// rule of your own (Prechelt's generalization loss, a time budget, a target
/// accuracy), a logger to a service of your own, a progress report.
///
/// A closure `Fn(&History) -> Decision` is one.
pub trait EpochCallback: Send + Sync {
    /// The epoch `history.epochs.last()` has ended: its record is complete
    /// (training and validation figures, learning rate, the run's own
    /// metrics) and its checkpoint written. `history` holds every epoch of
    /// the run, a resumed run's earlier ones included, so a rule that
    /// decides from it decides the same after a resume (earlier epochs are
    /// not replayed to it). [`Decision::Stop`] ends the run after this
    /// epoch, its reason becoming `summary.json`'s `stop_reason`; the
    /// other callbacks still see the epoch.
    fn on_epoch_end(&self, history: &History) -> Decision;
}

impl<F> EpochCallback for F
where
    F: Fn(&History) -> Decision + Send + Sync,
{
    fn on_epoch_end(&self, history: &History) -> Decision {
        self(history)
    }
}

impl fmt::Debug for dyn EpochCallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EpochCallback")
    }
}

/// A run's [`EpochCallback`]s as one of Burn's early-stopping strategies:
/// Burn asks it after the epoch's validation, once recipe's
/// [`HistoryLogger`](crate::HistoryLogger) has recorded the epoch (read
/// through its [`HistoryHandle`]).
#[derive(Clone)]
pub struct StopOnCallback {
    callbacks: Vec<Arc<dyn EpochCallback>>,
    history: HistoryHandle,
    reason: Arc<Mutex<Option<String>>>,
}

impl StopOnCallback {
    /// Asks `callbacks`, in order, at the end of each epoch that `history`
    /// records.
    pub fn new(callbacks: Vec<Arc<dyn EpochCallback>>, history: HistoryHandle) -> Self {
        Self {
            callbacks,
            history,
            reason: Arc::new(Mutex::new(None)),
        }
    }

    /// Why a callback stopped the run, if one did (the first to say so).
    pub fn stop_reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl EarlyStoppingStrategy for StopOnCallback {
    fn should_stop(&mut self, _epoch: usize, _store: &EventStoreClient) -> bool {
        let history = self.history.history();
        if history.epochs.is_empty() {
            return false;
        }
        let mut first_reason = None;
        for callback in &self.callbacks {
            if let Decision::Stop(reason) = callback.on_epoch_end(&history) {
                first_reason.get_or_insert(reason);
            }
        }
        let Some(reason) = first_reason else {
            return false;
        };
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(reason);
        true
    }
}
