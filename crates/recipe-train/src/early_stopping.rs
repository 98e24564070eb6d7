//! Early stopping: stop when the monitored metric stops improving, and keep
//! the best epoch's weights.
//!
//! The decision rule follows Keras' `EarlyStopping` (monitor, mode,
//! min_delta, patience, start_from_epoch, baseline, restore_best_weights)
//! plus Lightning's `divergence_threshold` and `stopping_threshold`, and stops
//! at once on a NaN or infinite value.

use std::fmt;
use std::str::FromStr;

use burn::train::metric::store::Split;
use serde::{Deserialize, Serialize};

use crate::{EpochRecord, TrainError};

/// A per-epoch metric of the [`History`](crate::History): the loss and
/// accuracy of either split, or a metric of your own, named by its
/// `history.csv` column.
///
/// Its text form is the column's name (`valid_loss`, `valid_top3`), as in
/// `config.json` and `--monitor`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
#[non_exhaustive]
pub enum Metric {
    /// Validation loss (the lecture's choice).
    #[default]
    ValidLoss,
    /// Validation accuracy.
    ValidAccuracy,
    /// Training loss (averaged over the epoch).
    TrainLoss,
    /// Training accuracy (averaged over the epoch).
    TrainAccuracy,
    /// A metric a run records besides loss and accuracy
    /// ([`ClassMetric`](crate::ClassMetric), registered with
    /// [`TrainOptions::metrics`](crate::TrainOptions::metrics)), by its
    /// column: `train_` or `valid_` then the metric's name.
    Recorded(String),
}

impl Metric {
    /// A recorded metric `name` (a [`ClassMetric`](crate::ClassMetric)'s
    /// name) on `split`.
    pub fn recorded(name: &str, split: Split) -> Self {
        Metric::Recorded(format!("{}_{name}", split_prefix(split)))
    }

    /// The metric's value in an epoch record (`NaN` for a recorded metric
    /// the record does not hold).
    pub fn of(&self, record: &EpochRecord) -> f64 {
        match self {
            Metric::ValidLoss => record.valid_loss,
            Metric::ValidAccuracy => record.valid_accuracy,
            Metric::TrainLoss => record.train_loss,
            Metric::TrainAccuracy => record.train_accuracy,
            Metric::Recorded(column) => record.metrics.get(column).copied().unwrap_or(f64::NAN),
        }
    }

    /// Losses improve downwards, accuracies upwards; a recorded metric's
    /// direction is its own (`None` here: recipe's trainer takes it from
    /// the metric, see [`ClassMetric::higher_is_better`](crate::ClassMetric::higher_is_better)).
    pub fn natural_mode(&self) -> Option<Mode> {
        match self {
            Metric::ValidLoss | Metric::TrainLoss => Some(Mode::Min),
            Metric::ValidAccuracy | Metric::TrainAccuracy => Some(Mode::Max),
            Metric::Recorded(_) => None,
        }
    }

    /// The split the metric is measured on.
    pub fn split(&self) -> Split {
        match self {
            Metric::ValidLoss | Metric::ValidAccuracy => Split::Valid,
            Metric::TrainLoss | Metric::TrainAccuracy => Split::Train,
            Metric::Recorded(column) if column.starts_with("train_") => Split::Train,
            Metric::Recorded(column) if column.starts_with("test_") => Split::Test(None),
            Metric::Recorded(_) => Split::Valid,
        }
    }

    /// A recorded metric's name, without its split (`None` for loss and
    /// accuracy).
    pub fn recorded_name(&self) -> Option<&str> {
        match self {
            Metric::Recorded(column) => column.split_once('_').map(|(_, name)| name),
            _ => None,
        }
    }

    /// The mode a monitor uses: `mode` when given, else the metric's own.
    /// A recorded metric without a `mode` is refused naming `owner`'s
    /// monitor (in recipe's trainer the mode comes from the metric; a
    /// misspelt `valid_los` ends here too).
    pub(crate) fn mode_in_force(
        &self,
        mode: Option<Mode>,
        owner: &str,
    ) -> Result<Mode, TrainError> {
        mode.or(self.natural_mode()).ok_or_else(|| {
            TrainError::invalid(
                format!("{owner}.monitor"),
                "valid_loss, valid_accuracy, train_loss or train_accuracy, or a metric of your \
                 own (TrainOptions::metrics, which gives its direction; otherwise set mode to \
                 min or max)",
                self,
            )
        })
    }
}

/// The column prefix of a split (the history has no `test_` columns: a
/// monitor on one names nothing a run records, and is refused).
fn split_prefix(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Valid => "valid",
        Split::Test(_) => "test",
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Metric::ValidLoss => "valid_loss",
            Metric::ValidAccuracy => "valid_accuracy",
            Metric::TrainLoss => "train_loss",
            Metric::TrainAccuracy => "train_accuracy",
            Metric::Recorded(column) => column,
        })
    }
}

impl From<Metric> for String {
    fn from(metric: Metric) -> Self {
        metric.to_string()
    }
}

impl TryFrom<String> for Metric {
    type Error = TrainError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl FromStr for Metric {
    type Err = TrainError;

    /// `valid_loss`, `valid_accuracy`, `train_loss`, `train_accuracy` (also
    /// Keras' `val_loss`, `loss`, ...), or `valid_NAME` / `train_NAME` (or
    /// `val_NAME`) for a recorded metric `NAME`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let normal = text.trim().to_ascii_lowercase().replace('-', "_");
        match normal.as_str() {
            "valid_loss" | "val_loss" => return Ok(Metric::ValidLoss),
            "valid_accuracy" | "val_accuracy" => return Ok(Metric::ValidAccuracy),
            "train_loss" | "loss" => return Ok(Metric::TrainLoss),
            "train_accuracy" | "accuracy" => return Ok(Metric::TrainAccuracy),
            _ => {}
        }
        // A recorded metric's name keeps its case: it is the metric's own.
        let text = text.trim();
        let recorded = [
            ("valid_", Split::Valid),
            ("val_", Split::Valid),
            ("train_", Split::Train),
        ]
        .into_iter()
        .find_map(|(prefix, split)| {
            let name = text
                .get(..prefix.len())?
                .eq_ignore_ascii_case(prefix)
                .then(|| &text[prefix.len()..])?;
            crate::class_metric::check_metric_name(name).ok()?;
            Some(Metric::recorded(name, split))
        });
        recorded.ok_or_else(|| {
            TrainError::invalid(
                "monitor",
                "valid_loss, valid_accuracy, train_loss, train_accuracy, or valid_NAME or \
                 train_NAME for a metric NAME the run records",
                text,
            )
        })
    }
}

/// Whether smaller or larger values of the monitored metric are better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Smaller is better.
    Min,
    /// Larger is better.
    Max,
}

impl FromStr for Mode {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "min" => Ok(Mode::Min),
            "max" => Ok(Mode::Max),
            _ => Err(TrainError::invalid("mode", "min or max", text)),
        }
    }
}

/// When to stop training early.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EarlyStoppingConfig {
    /// The metric watched.
    pub monitor: Metric,
    /// Whether it should go down or up; `None` infers it from the metric.
    pub mode: Option<Mode>,
    /// A change smaller than this does not count as an improvement.
    pub min_delta: f64,
    /// Epochs without improvement before stopping.
    pub patience: usize,
    /// Epochs `1..=start_from_epoch` are ignored entirely (warm-up).
    pub start_from_epoch: usize,
    /// Stop if the metric has not beaten this value within `patience` epochs.
    pub baseline: Option<f64>,
    /// Return, save and evaluate the best epoch's weights instead of the last.
    pub restore_best_weights: bool,
    /// Stop at once when the metric gets worse than this (e.g. a loss above 10).
    pub divergence_threshold: Option<f64>,
    /// Stop at once when the metric gets at least this good.
    pub stopping_threshold: Option<f64>,
}

impl Default for EarlyStoppingConfig {
    fn default() -> Self {
        Self {
            monitor: Metric::ValidLoss,
            mode: None,
            min_delta: 0.0,
            patience: 5,
            start_from_epoch: 0,
            baseline: None,
            restore_best_weights: false,
            divergence_threshold: None,
            stopping_threshold: None,
        }
    }
}

impl EarlyStoppingConfig {
    /// The mode in force (given, or inferred from the metric; `Min` for a
    /// recorded metric without one, which [`EarlyStoppingConfig::validate`]
    /// refuses).
    pub fn mode(&self) -> Mode {
        self.mode
            .or(self.monitor.natural_mode())
            .unwrap_or(Mode::Min)
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.monitor.mode_in_force(self.mode, "early_stopping")?;
        if !(self.min_delta >= 0.0 && self.min_delta.is_finite()) {
            return Err(TrainError::invalid(
                "early_stopping.min_delta",
                "a finite number >= 0",
                self.min_delta,
            ));
        }
        if self.patience == 0 {
            return Err(TrainError::invalid(
                "early_stopping.patience",
                "at least 1",
                0,
            ));
        }
        for (field, value) in [
            ("baseline", self.baseline),
            ("divergence_threshold", self.divergence_threshold),
            ("stopping_threshold", self.stopping_threshold),
        ] {
            if let Some(v) = value
                && !v.is_finite()
            {
                return Err(TrainError::invalid(
                    format!("early_stopping.{field}"),
                    "a finite number",
                    v,
                ));
            }
        }
        Ok(())
    }
}

/// What [`EarlyStopping::update`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Keep training.
    Continue,
    /// Stop now, for this reason.
    Stop(String),
}

/// The early-stopping state machine, fed one epoch at a time.
#[derive(Debug, Clone)]
pub struct EarlyStopping {
    config: EarlyStoppingConfig,
    best: Option<(usize, f64)>,
    wait: usize,
    restart_at: Option<usize>,
}

impl EarlyStopping {
    /// A fresh state for `config`.
    pub fn new(config: EarlyStoppingConfig) -> Self {
        Self {
            config,
            best: None,
            wait: 0,
            restart_at: None,
        }
    }

    /// Restarts the patience once `epoch` is counted (the best value is
    /// kept): the epochs after it get the full patience again. A learning
    /// rate lowered at the end of `epoch` asks for this.
    pub fn restart_patience_at(&mut self, epoch: usize) {
        self.restart_at = Some(epoch);
    }

    /// The settings.
    pub fn config(&self) -> &EarlyStoppingConfig {
        &self.config
    }

    /// The best epoch so far and its monitored value.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.best
    }

    fn better(&self, value: f64, than: f64, delta: f64) -> bool {
        match self.config.mode() {
            Mode::Min => value < than - delta,
            Mode::Max => value > than + delta,
        }
    }

    /// Feeds one epoch and says whether to stop.
    pub fn update(&mut self, record: &EpochRecord) -> Decision {
        let value = self.config.monitor.of(record);
        let name = self.config.monitor.to_string();
        self.update_value(record.epoch, value, &name)
    }

    /// Feeds one epoch's value of the monitored quantity (whatever it is:
    /// `name` only labels the reason) and says whether to stop.
    pub fn update_value(&mut self, epoch: usize, value: f64, name: &str) -> Decision {
        if !value.is_finite() {
            return Decision::Stop(format!("{name} is {value}, not a finite number"));
        }
        if epoch <= self.config.start_from_epoch {
            return Decision::Continue;
        }
        if let Some(threshold) = self.config.divergence_threshold
            && !self.better(value, threshold, 0.0)
            && value != threshold
        {
            return Decision::Stop(format!(
                "{name} {value:.6} crossed the divergence threshold {threshold}"
            ));
        }
        self.wait += 1;
        let improved = self
            .best
            .is_none_or(|(_, best)| self.better(value, best, self.config.min_delta));
        if improved {
            self.best = Some((epoch, value));
            let beats_baseline = self
                .config
                .baseline
                .is_none_or(|baseline| self.better(value, baseline, self.config.min_delta));
            if beats_baseline {
                self.wait = 0;
            }
        }
        if self.restart_at == Some(epoch) {
            self.wait = 0;
        }
        if let Some(threshold) = self.config.stopping_threshold
            && (self.better(value, threshold, 0.0) || value == threshold)
        {
            return Decision::Stop(format!(
                "{name} {value:.6} reached the stopping threshold {threshold}"
            ));
        }
        if self.wait >= self.config.patience {
            let (best_epoch, best) = self.best.expect("a best value once an epoch counted");
            return Decision::Stop(match self.config.baseline {
                Some(baseline) if !self.better(best, baseline, self.config.min_delta) => format!(
                    "{name} did not beat the baseline {baseline} within {} epochs",
                    self.config.patience
                ),
                _ => format!(
                    "{name} did not improve by more than {} for {} epochs (best {best:.6} at epoch {best_epoch})",
                    self.config.min_delta, self.config.patience
                ),
            });
        }
        Decision::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, valid_loss: f64) -> EpochRecord {
        EpochRecord::for_tests(epoch, valid_loss)
    }

    /// Runs the state machine over losses (epochs 1, 2, ...); returns the
    /// epoch it stopped at (if any) and the best epoch.
    fn run(config: EarlyStoppingConfig, losses: &[f64]) -> (Option<usize>, Option<usize>) {
        let mut stopping = EarlyStopping::new(config);
        for (i, &loss) in losses.iter().enumerate() {
            if let Decision::Stop(_) = stopping.update(&record(i + 1, loss)) {
                return (Some(i + 1), stopping.best().map(|b| b.0));
            }
        }
        (None, stopping.best().map(|b| b.0))
    }

    fn patience(patience: usize) -> EarlyStoppingConfig {
        EarlyStoppingConfig {
            patience,
            ..EarlyStoppingConfig::default()
        }
    }

    /// Expected decisions worked out from Keras 3's `EarlyStopping.on_epoch_end`:
    /// `wait += 1; if improved: best = current; if baseline is None or beats
    /// baseline: wait = 0; elif wait >= patience: stop`.
    #[test]
    fn patience_counts_epochs_without_improvement() {
        let losses = [0.5, 0.4, 0.45, 0.41, 0.42, 0.3];
        assert_eq!(run(patience(3), &losses), (Some(5), Some(2)));
        assert_eq!(run(patience(4), &losses), (None, Some(6)));
    }

    #[test]
    fn min_delta_ignores_small_improvements() {
        let config = EarlyStoppingConfig {
            min_delta: 0.05,
            ..patience(2)
        };
        // 0.48 and 0.46 improve on 0.5 by less than 0.05.
        assert_eq!(run(config, &[0.5, 0.48, 0.46, 0.3]), (Some(3), Some(1)));
    }

    #[test]
    fn accuracy_is_maximized_unless_told_otherwise() {
        let config = EarlyStoppingConfig {
            monitor: Metric::ValidAccuracy,
            ..patience(1)
        };
        // valid_accuracy = 1 - loss: 0.5, 0.6, 0.55 -> stops at 3, best 2.
        assert_eq!(run(config.clone(), &[0.5, 0.4, 0.45]), (Some(3), Some(2)));
        let inverted = EarlyStoppingConfig {
            mode: Some(Mode::Min),
            ..config
        };
        assert_eq!(run(inverted, &[0.5, 0.4, 0.45]), (Some(2), Some(1)));
    }

    #[test]
    fn warm_up_epochs_are_ignored() {
        let config = EarlyStoppingConfig {
            start_from_epoch: 2,
            ..patience(1)
        };
        // Epochs 1-2 do not count; 0.9 at epoch 3 is the first best.
        assert_eq!(run(config, &[0.1, 0.2, 0.9, 0.95]), (Some(4), Some(3)));
    }

    #[test]
    fn baseline_must_be_beaten_within_patience() {
        let config = EarlyStoppingConfig {
            baseline: Some(0.3),
            ..patience(2)
        };
        let mut stopping = EarlyStopping::new(config.clone());
        let mut last = Decision::Continue;
        for (i, loss) in [0.5, 0.4].into_iter().enumerate() {
            last = stopping.update(&record(i + 1, loss));
        }
        assert!(
            matches!(&last, Decision::Stop(r) if r.contains("baseline 0.3")),
            "{last:?}"
        );
        assert_eq!(run(config, &[0.5, 0.25, 0.26, 0.27]), (Some(4), Some(2)));
    }

    #[test]
    fn thresholds_and_non_finite_values_stop_at_once() {
        let diverge = EarlyStoppingConfig {
            divergence_threshold: Some(2.0),
            ..patience(10)
        };
        assert_eq!(run(diverge, &[0.5, 3.0, 0.1]), (Some(2), Some(1)));
        let good_enough = EarlyStoppingConfig {
            stopping_threshold: Some(0.2),
            ..patience(10)
        };
        assert_eq!(run(good_enough, &[0.5, 0.2, 0.1]), (Some(2), Some(2)));
        assert_eq!(run(patience(10), &[0.5, f64::NAN]), (Some(2), Some(1)));
        assert_eq!(run(patience(10), &[0.5, f64::INFINITY]), (Some(2), Some(1)));
    }

    #[test]
    fn impossible_settings_are_named() {
        let err = patience(0).validate().unwrap_err();
        assert!(err.to_string().contains("early_stopping.patience"), "{err}");
        let err = EarlyStoppingConfig {
            min_delta: -1.0,
            ..patience(1)
        }
        .validate()
        .unwrap_err();
        assert!(err.to_string().contains("min_delta"), "{err}");
        assert!("valid-loss".parse::<Metric>().is_ok());
        assert!("f1".parse::<Metric>().is_err());
    }

    /// A metric of the run's own is named by its column, keeps its case,
    /// and reads as it writes (in `config.json` too); without a mode it is
    /// refused, since only the metric knows its direction.
    #[test]
    fn a_recorded_metric_is_its_column() {
        let top3: Metric = "val_Top3".parse().unwrap();
        assert_eq!(top3, Metric::recorded("Top3", Split::Valid));
        assert_eq!(top3.to_string(), "valid_Top3");
        assert_eq!(top3.recorded_name(), Some("Top3"));
        assert_eq!(top3.natural_mode(), None);
        let train: Metric = "train_f1_macro".parse().unwrap();
        assert_eq!(
            (train.split(), train.recorded_name()),
            (Split::Train, Some("f1_macro"))
        );
        assert_eq!("Valid_Loss".parse::<Metric>().unwrap(), Metric::ValidLoss);
        for bad in ["valid_", "valid_top 3", "test_top3", "valid_penalty"] {
            assert!(bad.parse::<Metric>().is_err(), "{bad}");
        }
        let json = serde_json::to_string(&top3).unwrap();
        assert_eq!(json, "\"valid_Top3\"");
        assert_eq!(serde_json::from_str::<Metric>(&json).unwrap(), top3);
        assert!(serde_json::from_str::<Metric>("\"valid top\"").is_err());

        let watching = EarlyStoppingConfig {
            monitor: top3,
            ..patience(1)
        };
        let err = watching.validate().unwrap_err().to_string();
        assert!(err.contains("early_stopping.monitor"), "{err}");
        assert!(err.contains("set mode"), "{err}");
        let with_mode = EarlyStoppingConfig {
            mode: Some(Mode::Max),
            ..watching
        };
        assert!(with_mode.validate().is_ok());
    }
}
