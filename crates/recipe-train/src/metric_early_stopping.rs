//! recipe's early stopping as Burn's own `EarlyStoppingStrategy`, for a
//! `SupervisedTraining` you build yourself, on any metric the Learner records.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use burn::module::Module;
use burn::train::EarlyStoppingStrategy;
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};

use crate::{
    Decision, EarlyStopping, EarlyStoppingConfig, History, Metric, Plateau, TrainError,
    checkpoint_file,
};

/// [`EarlyStopping`]'s rule (Keras' `min_delta`, `patience`,
/// `start_from_epoch`, `baseline`, plus Lightning's thresholds) on a metric
/// of Burn's metric store, e.g. `Loss` or `Accuracy` on [`Split::Valid`].
///
/// `config.monitor` is not used: the metric is named here, and its
/// direction is `config.mode` (`None` means smaller is better; set
/// `Some(Mode::Max)` for an accuracy). With `restore_best_weights`, pair it
/// with [`RetainCheckpoints`](crate::RetainCheckpoints) given
/// [`MetricEarlyStopping::best_epoch_handle`] so the best epoch's checkpoint
/// is kept, and call [`MetricEarlyStopping::restore_best`] after `launch`.
///
/// A metric that the store does not hold for an epoch stops the run, with
/// the reason in [`MetricEarlyStopping::stop_reason`]: a misspelt name must
/// not silently train the whole budget.
#[derive(Clone)]
pub struct MetricEarlyStopping {
    state: Arc<Mutex<EarlyStopping>>,
    metric: String,
    split: Split,
    /// Divides the store's value: Burn records accuracy in percent, recipe's
    /// history and thresholds use a fraction.
    divisor: f64,
    /// Names the metric in the stop reason.
    label: String,
    best_epoch: Arc<AtomicUsize>,
    reason: Arc<Mutex<Option<String>>>,
    /// Restarts the patience at the epochs where it lowered the rate.
    plateau: Option<Plateau>,
}

impl MetricEarlyStopping {
    /// Early stopping on the epoch mean of Burn metric `metric` for `split`.
    pub fn new(
        config: EarlyStoppingConfig,
        metric: impl Into<String>,
        split: Split,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let mut config = config;
        config.mode = Some(config.mode.unwrap_or(crate::Mode::Min));
        let metric = metric.into();
        Ok(Self {
            state: Arc::new(Mutex::new(EarlyStopping::new(config))),
            label: format!("{metric} ({split:?})"),
            metric,
            split,
            divisor: 1.0,
            best_epoch: Arc::new(AtomicUsize::new(0)),
            reason: Arc::new(Mutex::new(None)),
            plateau: None,
        })
    }

    /// Early stopping on `config.monitor`, one of the [`History`]'s metrics,
    /// read from the Burn metric that records it (`Loss` or `Accuracy` on the
    /// split it names, accuracy as a fraction; a [`Metric::Recorded`] under
    /// its own name, as it computes it), with `config.mode` inferred from
    /// the metric when it is `None` (a recorded metric needs it given).
    /// This is what recipe's own trainer uses.
    pub fn on_history_metric(config: EarlyStoppingConfig) -> Result<Self, TrainError> {
        let (metric, split, divisor) = burn_metric(&config.monitor);
        let label = config.monitor.to_string();
        let mut config = config;
        config.mode = Some(config.mode());
        Ok(Self {
            divisor,
            label,
            ..Self::new(config, metric, split)?
        })
    }

    /// Restarts the patience (keeping the best value) at every epoch whose
    /// end `plateau` lowered the learning rate at, so the lower rate gets
    /// the full patience. `plateau` must see each epoch first (recipe's
    /// [`HistoryLogger`](crate::HistoryLogger) feeds it when the epoch's
    /// validation ends, before Burn asks this strategy).
    pub fn restarting_on(mut self, plateau: Plateau) -> Self {
        self.plateau = Some(plateau);
        self
    }

    /// The rule's decision for `epoch`, after a restart if the plateau rule
    /// lowered the rate at its end.
    fn decide(&self, state: &mut EarlyStopping, epoch: usize, value: f64) -> Decision {
        if self
            .plateau
            .as_ref()
            .is_some_and(|plateau| plateau.reduced_at(epoch))
        {
            state.restart_patience_at(epoch);
        }
        state.update_value(epoch, value, &self.label)
    }

    /// Feeds the epochs a resumed run already did, as [`History`] recorded
    /// them, so the rule continues where it was. Returns the reason if the
    /// rule had already stopped the run (the epochs after it are ignored).
    /// Only for [`MetricEarlyStopping::on_history_metric`]: other metrics are
    /// not in the history.
    pub fn replay(&self, history: &History) -> Option<String> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let monitor = state.config().monitor.clone();
        for record in &history.epochs {
            let decision = self.decide(&mut state, record.epoch, monitor.of(record));
            if let Some((best, _)) = state.best() {
                self.best_epoch.store(best, Ordering::SeqCst);
            }
            if let Decision::Stop(reason) = decision {
                drop(state);
                self.stop(reason.clone());
                return Some(reason);
            }
        }
        None
    }

    /// The best epoch so far (`None` before one counted).
    pub fn best_epoch(&self) -> Option<usize> {
        Some(self.best_epoch.load(Ordering::SeqCst)).filter(|&e| e > 0)
    }

    /// The best epoch as the shared counter [`RetainCheckpoints`](crate::RetainCheckpoints) reads.
    pub fn best_epoch_handle(&self) -> Arc<AtomicUsize> {
        self.best_epoch.clone()
    }

    /// Why it stopped the run, if it did.
    pub fn stop_reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Loads the best epoch's weights into `model` from the checkpoints that
    /// [`AtomicFileCheckpointer`](crate::AtomicFileCheckpointer)s wrote in
    /// `run_dir` (the model unchanged when no epoch counted yet).
    pub fn restore_best<M: Module>(&self, model: M, run_dir: &Path) -> Result<M, TrainError> {
        let Some(best) = self.best_epoch() else {
            return Ok(model);
        };
        let path = checkpoint_file(run_dir, "model", best);
        model
            .try_load_file(&path)
            .map_err(|e| TrainError::io(&path, format!("restoring the best epoch: {e:?}")))
    }

    fn stop(&self, reason: String) -> bool {
        *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        true
    }
}

/// Where Burn's metric store keeps one of the [`History`]'s metrics: the
/// metric's name, its split, and what divides the stored value (Burn
/// records accuracy in percent, the history a fraction).
pub(crate) fn burn_metric(metric: &Metric) -> (String, Split, f64) {
    let split = metric.split();
    match metric {
        Metric::ValidLoss | Metric::TrainLoss => ("Loss".to_string(), split, 1.0),
        Metric::ValidAccuracy | Metric::TrainAccuracy => ("Accuracy".to_string(), split, 100.0),
        // A recorded metric is stored under its own name, as it computes it.
        _ => (
            metric.recorded_name().unwrap_or_default().to_string(),
            split,
            1.0,
        ),
    }
}

impl EarlyStoppingStrategy for MetricEarlyStopping {
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        let Some(value) = store.find_metric(&self.metric, epoch, Aggregate::Mean, &self.split)
        else {
            return self.stop(format!(
                "the metric {} is not recorded at epoch {epoch}: register it with \
                 SupervisedTraining::metrics",
                self.label
            ));
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let decision = self.decide(&mut state, epoch, value / self.divisor);
        if let Some((best, _)) = state.best() {
            self.best_epoch.store(best, Ordering::SeqCst);
        }
        drop(state);
        match decision {
            Decision::Continue => false,
            Decision::Stop(reason) => self.stop(reason),
        }
    }
}
