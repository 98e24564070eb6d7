//! Keras' `ReduceLROnPlateau`: lower the learning rate when a per-epoch
//! metric has stopped improving.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::key_values::key_values;
use crate::{EpochRecord, History, Metric, Mode, TrainError};

/// When and how far to lower the learning rate, with Keras' rules and
/// defaults (`keras.callbacks.ReduceLROnPlateau`): after `patience` epochs
/// in which `monitor` did not improve by more than `min_delta`, the rate
/// becomes `max(rate * factor, min_lr)`, then `cooldown` epochs pass in
/// which nothing is counted.
///
/// With a [`LrSchedule`](crate::LrSchedule) other than constant, the
/// reduction lowers the schedule's peak (the schedule's shape is kept); with
/// a constant rate it is Keras' behaviour exactly. Early stopping watches
/// its own metric and is not reset by a reduction unless
/// `reset_early_stopping` asks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReduceLrOnPlateau {
    /// The metric watched (Keras' default `val_loss`).
    #[serde(default)]
    pub monitor: Metric,
    /// Whether it should go down or up; `None` infers it from the metric
    /// (Keras' `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// What a reduction multiplies the rate by, in (0, 1).
    pub factor: f64,
    /// Epochs without improvement before a reduction (0: every epoch that
    /// does not improve).
    pub patience: usize,
    /// A change of at most this much is no improvement.
    pub min_delta: f64,
    /// Epochs after a reduction in which no epoch counts as waiting.
    pub cooldown: usize,
    /// The rate is never lowered below this.
    pub min_lr: f64,
    /// Whether a reduction restarts early stopping's patience (its best
    /// value is kept), so the lower rate gets its full patience.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reset_early_stopping: bool,
}

impl Default for ReduceLrOnPlateau {
    /// Keras' defaults: `val_loss`, factor 0.1, patience 10, min_delta
    /// 1e-4, cooldown 0, min_lr 0.
    fn default() -> Self {
        Self {
            monitor: Metric::ValidLoss,
            mode: None,
            factor: 0.1,
            patience: 10,
            min_delta: 1e-4,
            cooldown: 0,
            min_lr: 0.0,
            reset_early_stopping: false,
        }
    }
}

impl ReduceLrOnPlateau {
    /// The direction of improvement: `mode`, or the monitor's own (`Min`
    /// for a recorded metric without a `mode`, which `validate` refuses).
    pub fn mode(&self) -> Mode {
        self.mode
            .or(self.monitor.natural_mode())
            .unwrap_or(Mode::Min)
    }

    /// Fails, naming the setting, when the settings make no sense for a run
    /// starting at `learning_rate`.
    pub fn validate(&self, learning_rate: f64) -> Result<(), TrainError> {
        let field = |name: &str| format!("reduce_lr_on_plateau.{name}");
        self.monitor
            .mode_in_force(self.mode, "reduce_lr_on_plateau")?;
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(TrainError::invalid(
                field("factor"),
                "a number in (0, 1) (Keras refuses a factor of 1 or more)",
                self.factor,
            ));
        }
        if !(self.min_delta >= 0.0 && self.min_delta.is_finite()) {
            return Err(TrainError::invalid(
                field("min_delta"),
                "a finite number of at least 0",
                self.min_delta,
            ));
        }
        if !(0.0..learning_rate).contains(&self.min_lr) {
            return Err(TrainError::invalid(
                field("min_lr"),
                format!("at least 0 and below the learning rate ({learning_rate})"),
                self.min_lr,
            ));
        }
        Ok(())
    }
}

impl fmt::Display for ReduceLrOnPlateau {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "monitor={},mode={},factor={},patience={},min_delta={},cooldown={},min_lr={}",
            self.monitor,
            match self.mode() {
                Mode::Min => "min",
                Mode::Max => "max",
            },
            self.factor,
            self.patience,
            self.min_delta,
            self.cooldown,
            self.min_lr
        )?;
        if self.reset_early_stopping {
            write!(f, ",reset_early_stopping=true")?;
        }
        Ok(())
    }
}

impl FromStr for ReduceLrOnPlateau {
    type Err = TrainError;

    /// `KEY=VALUE` pairs separated by commas, any of `monitor`, `mode`,
    /// `factor`, `patience`, `min_delta`, `cooldown`, `min_lr`,
    /// `reset_early_stopping`; the others keep Keras' defaults (`keras` or
    /// an empty text: all defaults).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut plateau = Self::default();
        let pairs = key_values(
            text,
            "reduce-lr-on-plateau",
            "keras",
            "factor=0.5,patience=2",
        )?;
        for pair in pairs {
            match pair.key {
                "monitor" => plateau.monitor = pair.value.parse()?,
                "mode" => plateau.mode = Some(pair.value.parse()?),
                "factor" => plateau.factor = pair.parse("a number")?,
                "patience" => plateau.patience = pair.parse("a whole number")?,
                "min_delta" => plateau.min_delta = pair.parse("a number")?,
                "cooldown" => plateau.cooldown = pair.parse("a whole number")?,
                "min_lr" => plateau.min_lr = pair.parse("a number")?,
                "reset_early_stopping" => {
                    plateau.reset_early_stopping = pair.parse("true or false")?
                }
                _ => {
                    return Err(pair.unknown(
                        "reduce-lr-on-plateau",
                        "monitor, mode, factor, patience, min_delta, cooldown, min_lr or reset_early_stopping",
                    ));
                }
            }
        }
        Ok(plateau)
    }
}

/// The rule's state between epochs, exactly Keras' `best`, `wait` and
/// `cooldown_counter`, plus the rate and the epochs that lowered it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateauState {
    config: ReduceLrOnPlateau,
    best: f64,
    wait: usize,
    cooldown_counter: usize,
    learning_rate: f64,
    reductions: Vec<usize>,
}

impl PlateauState {
    /// The state before the first epoch of a run starting at `learning_rate`.
    pub fn new(config: ReduceLrOnPlateau, learning_rate: f64) -> Self {
        let best = match config.mode() {
            Mode::Min => f64::INFINITY,
            Mode::Max => f64::NEG_INFINITY,
        };
        Self {
            config,
            best,
            wait: 0,
            cooldown_counter: 0,
            learning_rate,
            reductions: Vec::new(),
        }
    }

    /// The rate (or, with a schedule, the schedule's peak) in effect now.
    pub fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    /// The epochs at whose end the rate was lowered.
    pub fn reductions(&self) -> &[usize] {
        &self.reductions
    }

    /// Feeds the end of `epoch` with the monitored `value`, as Keras'
    /// `on_epoch_end` does; returns the new rate if this epoch lowered it.
    /// A value that is not a number never counts as an improvement.
    pub fn end_epoch(&mut self, epoch: usize, value: f64) -> Option<f64> {
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        let delta = self.config.min_delta;
        let improved = match self.config.mode() {
            Mode::Min => value < self.best - delta,
            Mode::Max => value > self.best + delta,
        };
        if improved {
            self.best = value;
            self.wait = 0;
            return None;
        }
        if self.cooldown_counter > 0 {
            return None;
        }
        self.wait += 1;
        // Keras compares with min_lr in float32 and keeps waiting when
        // the rate is already at the floor.
        if self.wait < self.config.patience || self.learning_rate <= self.config.min_lr {
            return None;
        }
        self.learning_rate = (self.learning_rate * self.config.factor).max(self.config.min_lr);
        self.cooldown_counter = self.config.cooldown;
        self.wait = 0;
        self.reductions.push(epoch);
        Some(self.learning_rate)
    }

    /// Feeds one epoch's record (its monitored metric).
    pub fn end_record(&mut self, record: &EpochRecord) -> Option<f64> {
        self.end_epoch(record.epoch, self.config.monitor.of(record))
    }
}

/// A [`PlateauState`] shared by the history logger (which feeds it each
/// epoch), the learning-rate scheduler (which reads the rate at every step)
/// and early stopping (which may restart its patience on a reduction).
#[derive(Debug, Clone)]
pub struct Plateau {
    state: Arc<Mutex<PlateauState>>,
}

impl Plateau {
    /// The rule for a run starting at `learning_rate`, after replaying the
    /// epochs a resumed run already did (`earlier`): the state is a function
    /// of the monitored values alone, so a resumed run continues exactly.
    pub fn new(config: ReduceLrOnPlateau, learning_rate: f64, earlier: &History) -> Self {
        let mut state = PlateauState::new(config, learning_rate);
        for record in &earlier.epochs {
            state.end_record(record);
        }
        Self {
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PlateauState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The rate (or the schedule's peak) in effect now.
    pub fn learning_rate(&self) -> f64 {
        self.lock().learning_rate()
    }

    /// Feeds the end of an epoch; returns the new rate if it lowered it.
    pub fn end_record(&self, record: &EpochRecord) -> Option<f64> {
        self.lock().end_record(record)
    }

    /// Whether the end of `epoch` lowered the rate.
    pub fn reduced_at(&self, epoch: usize) -> bool {
        self.lock().reductions().contains(&epoch)
    }

    /// Whether a reduction should restart early stopping's patience.
    pub fn resets_early_stopping(&self) -> bool {
        self.lock().config.reset_early_stopping
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(config: ReduceLrOnPlateau, values: &[f64]) -> Vec<f64> {
        let mut state = PlateauState::new(config, 1.0);
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| {
                state.end_epoch(i + 1, value);
                state.learning_rate()
            })
            .collect()
    }

    /// Worked by hand from Keras' `on_epoch_end` (keras/src/callbacks/
    /// reduce_lr_on_plateau.py): factor 0.5, patience 2, cooldown 1,
    /// min_delta 0.01, min_lr 0.2, mode min, rate 1.
    ///
    /// | epoch | value | cooldown before | improved | wait after | rate |
    /// |---|---|---|---|---|---|
    /// | 1 | 1.00 | 0 | yes (best inf) | 0 | 1 |
    /// | 2 | 0.995 | 0 | no (not below 1 - 0.01) | 1 | 1 |
    /// | 3 | 0.99 | 0 | no (0.99 < 0.99 is false) | 2: reduce, cooldown 1 | 0.5 |
    /// | 4 | 0.999 | 1 -> 0, wait 0 | no; not in cooldown now | 1 | 0.5 |
    /// | 5 | 0.98 | 0 | yes | 0 | 0.5 |
    /// | 6 | 0.98 | 0 | no | 1 | 0.5 |
    /// | 7 | 0.98 | 0 | no | 2: reduce to 0.25, cooldown 1 | 0.25 |
    /// | 8 | 0.98 | 1 -> 0, wait 0 | no | 1 | 0.25 |
    /// | 9 | 0.98 | 0 | no | 2: reduce to max(0.125, 0.2) | 0.2 |
    /// | 10 | 0.98 | 1 -> 0 | no | 1 | 0.2 |
    /// | 11 | 0.98 | 0 | no | 2, rate at min_lr: no reduction | 0.2 |
    /// | 12 | 0.98 | 0 | no | 3 (Keras keeps counting) | 0.2 |
    #[test]
    fn follows_keras_rules_worked_by_hand() {
        let config = ReduceLrOnPlateau {
            factor: 0.5,
            patience: 2,
            cooldown: 1,
            min_delta: 0.01,
            min_lr: 0.2,
            ..ReduceLrOnPlateau::default()
        };
        let values = [
            1.0, 0.995, 0.99, 0.999, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98, 0.98,
        ];
        assert_eq!(
            rates(config.clone(), &values),
            [1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]
        );
        let mut state = PlateauState::new(config, 1.0);
        for (i, &value) in values.iter().enumerate() {
            state.end_epoch(i + 1, value);
        }
        assert_eq!(state.reductions(), [3, 7, 9]);
        assert_eq!(state.wait, 3);
    }

    /// Mode max (inferred for an accuracy), patience 0: every epoch that
    /// does not beat the best by more than min_delta lowers the rate; NaN
    /// never improves.
    #[test]
    fn accuracy_goes_up_and_patience_zero_reduces_at_once() {
        let config = ReduceLrOnPlateau {
            monitor: Metric::ValidAccuracy,
            factor: 0.1,
            patience: 0,
            min_delta: 0.0,
            ..ReduceLrOnPlateau::default()
        };
        assert_eq!(config.mode(), Mode::Max);
        let got = rates(config, &[0.5, 0.6, 0.6, f64::NAN, 0.7]);
        let want = [1.0, 1.0, 0.1, 0.01, 0.01];
        for (got, want) in got.iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{got} {want}");
        }
    }

    #[test]
    fn replaying_a_history_gives_the_state_of_the_unbroken_run() {
        let config = ReduceLrOnPlateau {
            factor: 0.5,
            patience: 1,
            ..ReduceLrOnPlateau::default()
        };
        let values = [0.9, 0.8, 0.85, 0.86, 0.7, 0.75];
        let history = History::for_tests(&values);
        let mut unbroken = PlateauState::new(config.clone(), 0.1);
        history.epochs.iter().for_each(|r| {
            unbroken.end_record(r);
        });
        let replayed = Plateau::new(config, 0.1, &history);
        assert_eq!(*replayed.lock(), unbroken);
        // 0.85 and 0.86 do not beat 0.8, 0.75 does not beat 0.7.
        assert!(replayed.reduced_at(3) && replayed.reduced_at(4) && !replayed.reduced_at(5));
        assert!(replayed.reduced_at(6));
        assert!((replayed.learning_rate() - 0.0125).abs() < 1e-15);
    }

    #[test]
    fn text_form_and_impossible_settings() {
        let parsed: ReduceLrOnPlateau = "monitor=valid_accuracy, factor=0.5,patience=2,cooldown=1"
            .parse()
            .unwrap();
        assert_eq!(parsed.monitor, Metric::ValidAccuracy);
        assert_eq!(
            (parsed.factor, parsed.patience, parsed.cooldown),
            (0.5, 2, 1)
        );
        assert_eq!(parsed.min_delta, 1e-4, "the others keep Keras' defaults");
        assert_eq!(parsed.to_string().parse::<ReduceLrOnPlateau>().unwrap(), {
            let mut explicit = parsed.clone();
            explicit.mode = Some(Mode::Max);
            explicit
        });
        assert_eq!(
            "keras".parse::<ReduceLrOnPlateau>().unwrap(),
            ReduceLrOnPlateau::default()
        );
        for (text, words) in [
            ("patience=-1", "patience"),
            ("speed=2", "reduce-lr-on-plateau key"),
            ("factor", "KEY=VALUE"),
        ] {
            let error = text.parse::<ReduceLrOnPlateau>().unwrap_err().to_string();
            assert!(error.contains(words), "{text}: {error}");
        }
        for (text, field) in [
            ("monitor=valid_los", "monitor"),
            ("factor=1", "factor"),
            ("factor=-0.5", "factor"),
            ("min_lr=0.5", "min_lr"),
            ("min_delta=-1", "min_delta"),
        ] {
            let plateau: ReduceLrOnPlateau = text.parse().unwrap();
            let error = plateau.validate(0.1).unwrap_err().to_string();
            assert!(error.contains(field), "{text}: {error}");
        }
    }
}
