//! Learning-rate schedules, stated in epochs and applied at every step, as
//! a Burn [`LrScheduler`] (so Burn checkpoints its position and `--resume`
//! continues it exactly).

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use serde::{Deserialize, Serialize};

use crate::{CustomLrSchedule, LrScheduleFn, Plateau, TrainError};

/// The text names of the built-in schedules (a schedule of your own cannot
/// take one).
pub(crate) const BUILT_IN_NAMES: [&str; 6] = [
    "constant",
    "step",
    "exponential",
    "inverse-time",
    "cosine",
    "one-cycle",
];

/// How the learning rate changes over a run; `learning_rate` in the
/// [`FitConfig`](crate::FitConfig) is its peak (its start, but for warm-up
/// and one-cycle). A schedule of your own is [`LrSchedule::Custom`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LrSchedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Multiplied by `factor` every `every` epochs (Keras/PyTorch `StepLR`).
    Step {
        /// Epochs between two drops.
        every: usize,
        /// What each drop multiplies the rate by, in (0, 1].
        factor: f64,
    },
    /// Multiplied by `factor` after every epoch (`ExponentialLR`).
    Exponential {
        /// The factor per epoch, in (0, 1].
        factor: f64,
    },
    /// `peak / (1 + t / half_life)` at `t` epochs into the run, counted in
    /// steps (Keras' `InverseTimeDecay` with `decay_rate` 1; the schedule of
    /// Srivastava's deepnet, `INVERSE_T`): half the peak after `half_life`
    /// epochs, a third after twice that.
    InverseTime {
        /// Epochs until the rate is half the peak, above 0 (fractions allowed).
        half_life: f64,
    },
    /// Linear warm-up from near 0 over `warmup` epochs, then a half cosine
    /// down to `min_lr` at the last step (SGDR without restarts).
    Cosine {
        /// Warm-up epochs (0: none), fewer than the run's epochs.
        warmup: usize,
        /// The rate at the end, below the peak.
        min_lr: f64,
    },
    /// Smith's one-cycle (PyTorch's `OneCycleLR` defaults): a cosine rise
    /// from peak/25 to the peak over the first 30% of the steps, then a
    /// cosine fall to peak/25/1e4.
    OneCycle,
    /// A schedule of your own ([`LrScheduleFn`]), registered with
    /// [`register_lr_schedule`](crate::register_lr_schedule) so that
    /// `config.json` can name it and resume rebuild it.
    Custom(CustomLrSchedule),
}

impl LrSchedule {
    /// Whether it is [`LrSchedule::Constant`].
    pub fn is_constant(&self) -> bool {
        matches!(self, Self::Constant)
    }

    /// `schedule`, a schedule of your own.
    pub fn custom(schedule: impl LrScheduleFn + 'static) -> Self {
        Self::Custom(CustomLrSchedule(std::sync::Arc::new(schedule)))
    }

    /// Fails, naming the setting, when the schedule makes no sense for a run
    /// of `epochs` epochs peaking at `learning_rate`.
    pub fn validate(&self, learning_rate: f64, epochs: usize) -> Result<(), TrainError> {
        let factor_ok = |factor: f64| factor > 0.0 && factor <= 1.0;
        match *self {
            Self::Custom(CustomLrSchedule(ref schedule)) => {
                schedule.check(learning_rate, epochs).map_err(|why| {
                    TrainError::invalid(
                        "lr_schedule",
                        format!("a `{}` schedule that fits the run", schedule.name()),
                        why,
                    )
                })
            }
            Self::Step { every, .. } if every == 0 => Err(TrainError::invalid(
                "lr_schedule.step.every",
                "at least 1 epoch",
                every,
            )),
            Self::Step { factor, .. } | Self::Exponential { factor } if !factor_ok(factor) => Err(
                TrainError::invalid("lr_schedule factor", "a number in (0, 1]", factor),
            ),
            Self::InverseTime { half_life } if !(half_life > 0.0 && half_life.is_finite()) => {
                Err(TrainError::invalid(
                    "lr_schedule.inverse_time.half_life",
                    "a number of epochs above 0",
                    half_life,
                ))
            }
            Self::Cosine { warmup, .. } if warmup >= epochs => Err(TrainError::invalid(
                "lr_schedule.cosine.warmup",
                format!("fewer epochs than the run's {epochs}"),
                warmup,
            )),
            Self::Cosine { min_lr, .. } if !(0.0..learning_rate).contains(&min_lr) => {
                Err(TrainError::invalid(
                    "lr_schedule.cosine.min_lr",
                    format!("at least 0 and below the learning rate ({learning_rate})"),
                    min_lr,
                ))
            }
            _ => Ok(()),
        }
    }

    /// The rate at `step` (0-based) of a run of `epochs` epochs of
    /// `steps_per_epoch` steps, peaking at `peak`.
    pub fn rate(&self, peak: f64, step: usize, steps_per_epoch: usize, epochs: usize) -> f64 {
        let steps_per_epoch = steps_per_epoch.max(1);
        let total = (steps_per_epoch * epochs).max(1);
        let epoch = (step / steps_per_epoch) as i32;
        let half_cosine = |from: f64, to: f64, progress: f64| {
            to + (from - to) * (1.0 + (PI * progress.clamp(0.0, 1.0)).cos()) / 2.0
        };
        match *self {
            Self::Constant => peak,
            Self::Step { every, factor } => peak * factor.powi(epoch / every.max(1) as i32),
            Self::Exponential { factor } => peak * factor.powi(epoch),
            Self::InverseTime { half_life } => {
                peak / (1.0 + step as f64 / (half_life * steps_per_epoch as f64))
            }
            Self::Cosine { warmup, min_lr } => {
                let warmup_steps = warmup * steps_per_epoch;
                if step < warmup_steps {
                    return peak * (step + 1) as f64 / warmup_steps as f64;
                }
                let span = (total - warmup_steps).saturating_sub(1).max(1);
                half_cosine(peak, min_lr, (step - warmup_steps) as f64 / span as f64)
            }
            Self::Custom(ref custom) => custom.0.rate(peak, step, steps_per_epoch, epochs),
            Self::OneCycle => {
                let rise = ((0.3 * total as f64) as usize).max(1);
                let start = peak / 25.0;
                if step < rise {
                    half_cosine(start, peak, step as f64 / rise as f64)
                } else {
                    let span = (total - rise).saturating_sub(1).max(1);
                    half_cosine(peak, start / 1e4, (step - rise) as f64 / span as f64)
                }
            }
        }
    }
}

impl fmt::Display for LrSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Constant => write!(f, "constant"),
            Self::Step { every, factor } => write!(f, "step:{every}:{factor}"),
            Self::Exponential { factor } => write!(f, "exponential:{factor}"),
            Self::InverseTime { half_life } => write!(f, "inverse-time:{half_life}"),
            Self::Cosine { warmup, min_lr } => write!(f, "cosine:{warmup}:{min_lr}"),
            Self::OneCycle => write!(f, "one-cycle"),
            Self::Custom(custom) => write!(f, "{custom}"),
        }
    }
}

impl FromStr for LrSchedule {
    type Err = TrainError;

    /// `constant`, `step:EVERY:FACTOR`, `exponential:FACTOR`,
    /// `inverse-time:HALF_LIFE`, `cosine[:WARMUP[:MIN_LR]]`, `one-cycle`,
    /// or a registered schedule of your own as `NAME` or
    /// `NAME:{json settings}`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            TrainError::invalid(
                "learning-rate schedule",
                "constant, step:EVERY:FACTOR, exponential:FACTOR, inverse-time:HALF_LIFE, \
                 cosine[:WARMUP[:MIN_LR]], one-cycle, or a registered schedule's \
                 NAME[:{json settings}]",
                text,
            )
        };
        if let Some(custom) = CustomLrSchedule::parse(text) {
            return custom
                .map(Self::Custom)
                .map_err(|why| TrainError::invalid("learning-rate schedule", "its settings", why));
        }
        let parts: Vec<&str> = text.split(':').map(str::trim).collect();
        let number = |i: usize| -> Result<f64, TrainError> {
            parts.get(i).ok_or_else(bad)?.parse().map_err(|_| bad())
        };
        let count = |i: usize| -> Result<usize, TrainError> {
            parts.get(i).map_or(Ok(0), |p| p.parse().map_err(|_| bad()))
        };
        match (parts[0], parts.len()) {
            ("constant", 1) => Ok(Self::Constant),
            ("one-cycle", 1) => Ok(Self::OneCycle),
            ("step", 3) => Ok(Self::Step {
                every: count(1)?,
                factor: number(2)?,
            }),
            ("exponential", 2) => Ok(Self::Exponential { factor: number(1)? }),
            ("inverse-time", 2) => Ok(Self::InverseTime {
                half_life: number(1)?,
            }),
            ("cosine", 1..=3) => Ok(Self::Cosine {
                warmup: count(1)?,
                min_lr: if parts.len() == 3 { number(2)? } else { 0.0 },
            }),
            _ => Err(bad()),
        }
    }
}

/// A [`LrSchedule`] as Burn's scheduler: one `step` per optimizer step; its
/// record is the number of steps taken. With a [`Plateau`], the peak is the
/// plateau rule's current rate (a constant schedule: that rate itself).
#[derive(Debug, Clone)]
pub struct ScheduledLr {
    schedule: LrSchedule,
    peak: f64,
    steps_per_epoch: usize,
    epochs: usize,
    steps: usize,
    plateau: Option<Plateau>,
}

impl ScheduledLr {
    /// `schedule` peaking at `peak`, over `epochs` epochs of
    /// `steps_per_epoch` steps.
    pub fn new(schedule: LrSchedule, peak: f64, steps_per_epoch: usize, epochs: usize) -> Self {
        Self {
            schedule,
            peak,
            steps_per_epoch,
            epochs,
            steps: 0,
            plateau: None,
        }
    }

    /// Takes its peak from `plateau`, which lowers it when the monitored
    /// metric stops improving.
    pub fn with_plateau(mut self, plateau: Plateau) -> Self {
        self.plateau = Some(plateau);
        self
    }

    fn peak(&self) -> f64 {
        self.plateau
            .as_ref()
            .map_or(self.peak, Plateau::learning_rate)
    }

    /// The rate of the first step of `epoch` (1-based), as `history.csv`
    /// records it (with a plateau rule: at the peak in effect now, so ask
    /// during the epoch or at its end, before the rule sees it).
    pub fn rate_of_epoch(&self, epoch: usize) -> f64 {
        let step = epoch.saturating_sub(1) * self.steps_per_epoch;
        self.schedule
            .rate(self.peak(), step, self.steps_per_epoch, self.epochs)
    }
}

impl LrScheduler for ScheduledLr {
    fn step(&mut self) -> LearningRate {
        let rate = self
            .schedule
            .rate(self.peak(), self.steps, self.steps_per_epoch, self.epochs);
        self.steps += 1;
        rate
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new()
            .with_scalar("steps", self.steps as u64)
            .with_scalar("steps_per_epoch", self.steps_per_epoch as u64)
    }

    /// A run resumed on another number of devices takes another number of
    /// steps an epoch: the steps taken are counted again in the new
    /// epoch's length, so that the schedule goes on from the same epoch (a
    /// record without the length, written before recipe saved it, is taken
    /// as it is).
    fn load_record(&mut self, record: LrSchedulerRecord) {
        let Some(steps) = record.scalar::<u64>("steps") else {
            return;
        };
        self.steps = match record.scalar::<u64>("steps_per_epoch") {
            Some(then) if then > 0 && then as usize != self.steps_per_epoch => {
                (u128::from(steps) * self.steps_per_epoch as u128 / u128::from(then)) as usize
            }
            _ => steps as usize,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two epochs of 4 steps, halving every epoch, then resumed where an
    /// epoch takes 2 steps (twice the devices): the next step is the third
    /// epoch's first, at a quarter of the peak, not the fifth epoch's.
    #[test]
    fn a_resume_with_another_epoch_length_goes_on_from_the_same_epoch() {
        let halving = LrSchedule::Step {
            every: 1,
            factor: 0.5,
        };
        let mut before = ScheduledLr::new(halving.clone(), 1.0, 4, 10);
        for _ in 0..8 {
            before.step();
        }
        let mut resumed = ScheduledLr::new(halving.clone(), 1.0, 2, 10);
        resumed.load_record(before.to_record());
        assert_eq!(resumed.step(), 0.25);
        // The same length: the count as it was.
        let mut same = ScheduledLr::new(halving, 1.0, 4, 10);
        same.load_record(before.to_record());
        assert_eq!(same.step(), 0.25);
        assert_eq!(same.to_record().scalar::<u64>("steps"), Some(9));
    }

    /// By hand, peak 0.1, 10 steps per epoch, 4 epochs.
    #[test]
    fn rates_follow_their_formulas() {
        let rate = |schedule: &LrSchedule, step: usize| schedule.rate(0.1, step, 10, 4);
        let step = LrSchedule::Step {
            every: 2,
            factor: 0.5,
        };
        assert_eq!(
            [rate(&step, 0), rate(&step, 19), rate(&step, 20)],
            [0.1, 0.1, 0.05]
        );
        let exponential = LrSchedule::Exponential { factor: 0.5 };
        assert!((rate(&exponential, 35) - 0.0125).abs() < 1e-12);
        // Half-life 1.5 epochs = 15 steps: 0.1 at step 0, 0.05 at step 15,
        // 0.1 / 3 at step 30; between steps too, not only at epoch ends.
        let inverse_time = LrSchedule::InverseTime { half_life: 1.5 };
        assert_eq!(rate(&inverse_time, 0), 0.1);
        assert!((rate(&inverse_time, 15) - 0.05).abs() < 1e-12);
        assert!((rate(&inverse_time, 30) - 0.1 / 3.0).abs() < 1e-12);
        assert!((rate(&inverse_time, 5) - 0.075).abs() < 1e-12);
        let cosine = LrSchedule::Cosine {
            warmup: 1,
            min_lr: 0.0,
        };
        // Warm-up: 0.01, 0.02, ..., 0.1 over epoch 1; then 0.1 at step 10,
        // half way (step 10 + 14.5 of 29) 0.05, 0 at the last step (39).
        assert!((rate(&cosine, 0) - 0.01).abs() < 1e-12);
        assert!((rate(&cosine, 9) - 0.1).abs() < 1e-12);
        assert!((rate(&cosine, 10) - 0.1).abs() < 1e-12);
        assert!(rate(&cosine, 39).abs() < 1e-12);
        // One-cycle: 0.004 at step 0, 0.1 at step 12 (30% of 40), 0.1 / 25 / 1e4 at 39.
        assert!((rate(&LrSchedule::OneCycle, 0) - 0.004).abs() < 1e-12);
        assert!((rate(&LrSchedule::OneCycle, 12) - 0.1).abs() < 1e-12);
        assert!((rate(&LrSchedule::OneCycle, 39) - 4e-7).abs() < 1e-15);
        assert_eq!(rate(&LrSchedule::Constant, 39), 0.1);
    }

    #[test]
    fn the_scheduler_resumes_from_its_record() {
        let schedule = LrSchedule::Cosine {
            warmup: 1,
            min_lr: 0.001,
        };
        let mut unbroken = ScheduledLr::new(schedule.clone(), 0.1, 10, 4);
        let all: Vec<f64> = (0..40).map(|_| unbroken.step()).collect();
        let mut first = ScheduledLr::new(schedule.clone(), 0.1, 10, 4);
        (0..17).for_each(|_| {
            first.step();
        });
        let mut resumed = ScheduledLr::new(schedule, 0.1, 10, 4);
        resumed.load_record(first.to_record());
        let rest: Vec<f64> = (17..40).map(|_| resumed.step()).collect();
        assert_eq!(rest, all[17..]);
        assert_eq!(unbroken.rate_of_epoch(2), all[10]);
    }

    #[test]
    fn text_forms_and_impossible_schedules() {
        for text in [
            "constant",
            "step:2:0.5",
            "exponential:0.9",
            "inverse-time:20",
            "inverse-time:2.5",
            "cosine:1:0.001",
            "one-cycle",
        ] {
            let schedule: LrSchedule = text.parse().unwrap();
            assert_eq!(schedule.to_string(), text);
        }
        assert_eq!(
            "cosine".parse::<LrSchedule>().unwrap(),
            LrSchedule::Cosine {
                warmup: 0,
                min_lr: 0.0
            }
        );
        assert!("linear:3".parse::<LrSchedule>().is_err());
        let cases = [
            ("exponential:-0.5", "factor"),
            ("inverse-time:0", "half_life"),
            ("inverse-time:-3", "half_life"),
            ("step:0:0.5", "every"),
            ("cosine:5", "warmup"),
            ("cosine:0:0.5", "min_lr"),
        ];
        for (text, field) in cases {
            let schedule: LrSchedule = text.parse().unwrap();
            let error = schedule.validate(0.1, 5).unwrap_err().to_string();
            assert!(error.contains(field), "{text}: {error}");
        }
    }
}
