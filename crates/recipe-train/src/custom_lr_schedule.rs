//! Learning-rate schedules of your own, run by recipe's trainer exactly as
//! the built-in ones of [`LrSchedule`](crate::LrSchedule) are: at every
//! step, under a plateau rule, recorded in `config.json` and continued by
//! resume.

use std::fmt;
use std::sync::Arc;

use crate::registry::{Settings, registered_wrapper};

/// A learning-rate schedule. Implement it for your own, [register] it under
/// its [`LrScheduleFn::name`], and set
/// [`FitConfig::lr_schedule`](crate::FitConfig::lr_schedule) to
/// [`LrSchedule::custom`](crate::LrSchedule::custom)`(yours)`; its settings
/// (its `Serialize` form) are recorded in `config.json`, and a resumed run
/// rebuilds it from them and continues it at the step it had reached.
///
/// [register]: crate::register_lr_schedule
pub trait LrScheduleFn: Settings + Send + Sync + fmt::Debug {
    /// The name it is registered under.
    fn name(&self) -> &str;

    /// The rate of `step` (0-based, counted over the whole run) of a run of
    /// `epochs` epochs of `steps_per_epoch` steps, where `peak` is the
    /// run's learning rate (or, under a plateau rule, the rate that rule
    /// has lowered it to). A pure function of its arguments: resume
    /// replays it from the step count alone.
    fn rate(&self, peak: f64, step: usize, steps_per_epoch: usize, epochs: usize) -> f64;

    /// Whether it makes sense for a run of `epochs` epochs peaking at
    /// `learning_rate`; if not, why (checked before training starts).
    fn check(&self, learning_rate: f64, epochs: usize) -> Result<(), String> {
        let _ = (learning_rate, epochs);
        Ok(())
    }
}

/// A schedule of your own inside [`LrSchedule`](crate::LrSchedule): equal
/// to another when their names and settings are.
#[derive(Debug, Clone)]
pub struct CustomLrSchedule(pub Arc<dyn LrScheduleFn>);

registered_wrapper!(CustomLrSchedule, lr_schedules);

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::{LrSchedule, register_lr_schedule};

    /// Halves the rate every `every` epochs (a stand-in for a user's own).
    #[derive(Debug, Serialize, Deserialize)]
    struct Halving {
        every: f64,
    }

    impl LrScheduleFn for Halving {
        fn name(&self) -> &str {
            "test-halving"
        }

        fn rate(&self, peak: f64, step: usize, steps_per_epoch: usize, _epochs: usize) -> f64 {
            let epochs = step as f64 / steps_per_epoch as f64;
            peak * 0.5f64.powi((epochs / self.every).floor() as i32)
        }

        fn check(&self, _learning_rate: f64, _epochs: usize) -> Result<(), String> {
            (self.every > 0.0)
                .then_some(())
                .ok_or_else(|| format!("every must be above 0, found {}", self.every))
        }
    }

    #[test]
    fn a_registered_schedule_is_parsed_run_and_checked_like_a_built_in_one() {
        // Other tests in this process may have registered it already.
        let _ = register_lr_schedule::<Halving>("test-halving");
        let schedule: LrSchedule = r#"test-halving:{"every":2}"#.parse().unwrap();
        assert_eq!(schedule.to_string(), r#"test-halving:{"every":2.0}"#);
        // 10 steps an epoch: the peak for epochs 1-2, half for 3-4.
        assert_eq!(schedule.rate(0.1, 19, 10, 4), 0.1);
        assert_eq!(schedule.rate(0.1, 20, 10, 4), 0.05);
        schedule.validate(0.1, 4).unwrap();
        let never: LrSchedule = r#"test-halving:{"every":0}"#.parse().unwrap();
        let err = never.validate(0.1, 4).unwrap_err().to_string();
        assert!(
            err.contains("`lr_schedule`") && err.contains("test-halving") && err.contains("every"),
            "{err}"
        );
        let json = serde_json::to_string(&schedule).unwrap();
        assert_eq!(
            json,
            r#"{"custom":{"name":"test-halving","settings":{"every":2.0}}}"#
        );
        assert_eq!(serde_json::from_str::<LrSchedule>(&json).unwrap(), schedule);
    }

    #[test]
    fn names_taken_or_unknown_and_bad_settings_are_refused() {
        let _ = register_lr_schedule::<Halving>("test-halving");
        let err = register_lr_schedule::<Halving>("test-halving").unwrap_err();
        assert!(err.to_string().contains("not registered yet"), "{err}");
        let err = register_lr_schedule::<Halving>("cosine").unwrap_err();
        assert!(err.to_string().contains("built-in"), "{err}");
        for (text, needle) in [
            ("test-halving:{every}", "not JSON"),
            (r#"test-halving:{"each":2}"#, "its settings do not fit"),
            ("test-halving", "its settings do not fit"),
            ("unheard-of:3", "a registered schedule's NAME"),
        ] {
            let err = text.parse::<LrSchedule>().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let unknown = r#"{"custom":{"name":"unheard-of","settings":null}}"#;
        let err = serde_json::from_str::<LrSchedule>(unknown)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("learning-rate schedule `unheard-of` is not registered"),
            "{err}"
        );
    }
}
