//! The learning-rate range test (Smith 2017, "Cyclical Learning Rates",
//! section 3.3; fastai's `lr_find`): train for a few hundred steps while the
//! learning rate grows exponentially, and watch where the loss falls
//! fastest and where it blows up.

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use burn::tensor::Device;
use burn::train::{TrainOutput, TrainStep};
use recipe_data::ClassData;
use serde::{Deserialize, Serialize};

use crate::resume::seed_epoch;
use crate::run::DataItem;
use crate::{Classifier, Classify, FitConfig, TrainError, scaled_lr_scheduler};

/// Settings of a range test. The optimizer, batch size, seed and step hooks
/// (penalties, constraints, clipping) come from the [`FitConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrFindConfig {
    /// The learning rate of the first step.
    pub start_lr: f64,
    /// The learning rate of the last step.
    pub end_lr: f64,
    /// Steps from `start_lr` to `end_lr` (the training data is reshuffled
    /// when one pass is not enough).
    pub steps: usize,
    /// Weight of the past in the smoothed loss, as fastai's `beta` (0: no
    /// smoothing); the smoothed loss is bias-corrected like Adam's moments.
    pub smoothing: f64,
    /// The test stops once the smoothed loss exceeds this many times its
    /// lowest value (the loss has blown up; later steps say nothing).
    pub stop_factor: f64,
}

impl Default for LrFindConfig {
    /// 1e-7 to 10 in 200 steps, smoothing 0.9, stopping at 4 times the
    /// lowest loss. fastai takes 100 steps and smoothing 0.98; on MNIST
    /// (784-256-256-10 ReLU, SGD) that average of about 50 steps lagged half
    /// a decade behind the raw loss, and put its minimum past the raw one.
    fn default() -> Self {
        Self {
            start_lr: 1e-7,
            end_lr: 10.0,
            steps: 200,
            smoothing: 0.9,
            stop_factor: 4.0,
        }
    }
}

impl LrFindConfig {
    /// Fails, naming the field, on an impossible setting.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.start_lr > 0.0 && self.start_lr.is_finite()) {
            return Err(TrainError::invalid(
                "start_lr",
                "a finite number > 0",
                self.start_lr,
            ));
        }
        if !(self.end_lr > self.start_lr && self.end_lr.is_finite()) {
            return Err(TrainError::invalid(
                "end_lr",
                format!("a finite number above start_lr ({})", self.start_lr),
                self.end_lr,
            ));
        }
        if self.steps < 2 {
            return Err(TrainError::invalid("steps", "at least 2", self.steps));
        }
        if !(0.0..1.0).contains(&self.smoothing) {
            return Err(TrainError::invalid(
                "smoothing",
                "a number in [0, 1)",
                self.smoothing,
            ));
        }
        if self.stop_factor.is_nan() || self.stop_factor <= 1.0 {
            return Err(TrainError::invalid(
                "stop_factor",
                "a number > 1",
                self.stop_factor,
            ));
        }
        Ok(())
    }

    /// The learning rate of step `step` (0-based): `start_lr` times
    /// `(end_lr / start_lr)` to the power `step / (steps - 1)`.
    pub fn learning_rate(&self, step: usize) -> f64 {
        let progress = step as f64 / (self.steps - 1) as f64;
        self.start_lr * (self.end_lr / self.start_lr).powf(progress)
    }
}

/// The range test's rates as Burn's scheduler: `test`'s rate of each step
/// in turn (the test is never resumed, so it records nothing).
#[derive(Debug, Clone)]
struct RangeTestRates {
    test: LrFindConfig,
    step: usize,
}

impl RangeTestRates {
    fn new(test: LrFindConfig) -> Self {
        Self { test, step: 0 }
    }
}

impl LrScheduler for RangeTestRates {
    fn step(&mut self) -> LearningRate {
        let rate = self.test.learning_rate(self.step);
        self.step += 1;
        rate
    }

    fn to_record(&self) -> LrSchedulerRecord {
        LrSchedulerRecord::new()
    }

    fn load_record(&mut self, _record: LrSchedulerRecord) {}
}

/// One step of a range test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LrFindPoint {
    /// 0-based step.
    pub step: usize,
    /// The learning rate of the step.
    pub learning_rate: f64,
    /// The step's training loss (the data loss, before the update).
    pub loss: f64,
    /// The bias-corrected exponential moving average of the loss.
    pub smoothed_loss: f64,
}

/// What a range test measured and suggests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LrFindResult {
    /// Every step taken.
    pub points: Vec<LrFindPoint>,
    /// The learning rate where the smoothed loss falls fastest against
    /// log(learning rate), over half a decade, before its minimum
    /// ([`steepest_descent`]).
    pub steepest: Option<f64>,
    /// The learning rate of the lowest smoothed loss, divided by 10 (the
    /// rule of Smith's and fastai's first versions).
    pub min_loss_over_10: Option<f64>,
    /// Whether the test stopped before its last step because the loss blew up.
    pub stopped_early: bool,
}

/// Runs a range test on `net` with `data`'s training split: `fit`'s
/// optimizer, batch size, seed, hooks and learning-rate scales, learning
/// rates from `test`.
/// `net` is trained by it; build a fresh one for the real run.
pub fn lr_find<N, I>(
    fit: &FitConfig,
    test: &LrFindConfig,
    net: N,
    data: &ClassData<I, N::Input>,
    device: &Device,
) -> Result<LrFindResult, TrainError>
where
    N: Classify,
    I: DataItem,
{
    fit.validate()?;
    check_one_batch_a_step(fit)?;
    test.validate()?;
    let device = device.clone().autodiff();
    data.check(&device.clone().inner())?;
    let loader = data.loader(
        &data.train,
        fit.batch_size,
        Some(fit.seed),
        Some(device.clone()),
    );
    seed_epoch(&device, fit.seed, 1);
    let mut model = Classifier::with_hooks(net, fit.step_hooks());
    let mut optimizer = fit.optimizer.init();
    // The parameters each learning-rate scale picks, found once.
    let mut rates = scaled_lr_scheduler(RangeTestRates::new(*test), &fit.lr_scales, &model)?;
    let mut smoother = Smoother::new(test.smoothing);
    let mut points = Vec::with_capacity(test.steps);
    let mut best = f64::INFINITY;
    let mut stopped_early = false;
    'passes: loop {
        for batch in loader.iter() {
            let batch = batch.map_err(|e| TrainError::Learner(format!("reading a batch: {e}")))?;
            let step = points.len();
            let learning_rate = test.learning_rate(step);
            let TrainOutput { grads, item } = model.step(batch);
            let loss = item.classification.loss.into_scalar::<f64>();
            let smoothed_loss = smoother.add(loss);
            points.push(LrFindPoint {
                step,
                learning_rate,
                loss,
                smoothed_loss,
            });
            best = best.min(smoothed_loss);
            if !smoothed_loss.is_finite() || smoothed_loss > test.stop_factor * best {
                stopped_early = step + 1 < test.steps;
                break 'passes;
            }
            if step + 1 == test.steps {
                break 'passes;
            }
            model = model.optimize(&mut optimizer, rates.step(), grads);
        }
        if points.is_empty() {
            return Err(TrainError::invalid(
                "data.train",
                "at least one training batch",
                "none",
            ));
        }
    }
    Ok(LrFindResult {
        steepest: steepest_descent(&points),
        min_loss_over_10: min_loss(&points).map(|point| point.learning_rate / 10.0),
        points,
        stopped_early,
    })
}

/// The range test takes one batch a step on one device: a config that
/// asks for more is refused rather than tested at another batch.
fn check_one_batch_a_step(fit: &FitConfig) -> Result<(), TrainError> {
    for (field, value) in [
        ("devices", fit.devices),
        ("accumulate_grad_batches", fit.accumulate_grad_batches),
    ] {
        if value != 1 {
            return Err(TrainError::invalid(
                field,
                "1 for a learning-rate range test, which takes one batch a step on one \
                 device (for the rate of a larger step, raise batch_size)",
                value,
            ));
        }
    }
    Ok(())
}

/// The bias-corrected exponential moving average of a sequence.
struct Smoother {
    beta: f64,
    average: f64,
    count: i32,
}

impl Smoother {
    fn new(beta: f64) -> Self {
        Self {
            beta,
            average: 0.0,
            count: 0,
        }
    }

    fn add(&mut self, value: f64) -> f64 {
        self.count += 1;
        self.average = self.beta * self.average + (1.0 - self.beta) * value;
        self.average / (1.0 - self.beta.powi(self.count))
    }
}

fn min_loss(points: &[LrFindPoint]) -> Option<&LrFindPoint> {
    points
        .iter()
        .filter(|p| p.smoothed_loss.is_finite())
        .min_by(|a, b| a.smoothed_loss.total_cmp(&b.smoothed_loss))
}

/// The learning rate at which the smoothed loss falls fastest against
/// log10(learning rate), among the points up to the lowest smoothed loss.
/// Each slope spans half a decade (a quarter on each side, at least one
/// step), so a bounce of a few steps near the minimum does not win over the
/// long descent before it; `None` with fewer than 3 such points.
pub fn steepest_descent(points: &[LrFindPoint]) -> Option<f64> {
    let lowest = min_loss(points)?.step;
    let usable = &points[..=lowest.min(points.len() - 1)];
    if usable.len() < 3 {
        return None;
    }
    let decades_per_step = usable[1].learning_rate.log10() - usable[0].learning_rate.log10();
    let reach = ((0.25 / decades_per_step).round() as usize).max(1);
    if usable.len() < 2 * reach + 1 {
        return None;
    }
    (reach..usable.len() - reach)
        .map(|i| {
            let (before, after) = (&usable[i - reach], &usable[i + reach]);
            let run = after.learning_rate.log10() - before.learning_rate.log10();
            let slope = (after.smoothed_loss - before.smoothed_loss) / run;
            (slope, usable[i].learning_rate)
        })
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, learning_rate)| learning_rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(losses: &[f64]) -> Vec<LrFindPoint> {
        let config = LrFindConfig {
            start_lr: 1e-4,
            end_lr: 1.0,
            steps: losses.len(),
            ..LrFindConfig::default()
        };
        losses
            .iter()
            .enumerate()
            .map(|(step, &loss)| LrFindPoint {
                step,
                learning_rate: config.learning_rate(step),
                loss,
                smoothed_loss: loss,
            })
            .collect()
    }

    /// Five learning rates 1e-4, 1e-3, ..., 1 with losses 2.4, 2.2, 1.0,
    /// 0.9, 5.0. Central differences per decade: at 1e-3 (1.0 - 2.4) / 2 =
    /// -0.7, at 1e-2 (0.9 - 2.2) / 2 = -0.65, so the steepest is 1e-3; the
    /// lowest loss is at 1e-1, so the older rule says 1e-2.
    #[test]
    fn suggestions_follow_their_stated_rules() {
        let found = points(&[2.4, 2.2, 1.0, 0.9, 5.0]);
        let steepest = steepest_descent(&found).unwrap();
        assert!((steepest / 1e-3 - 1.0).abs() < 1e-9, "{steepest}");
        let lowest = min_loss(&found).unwrap();
        assert!((lowest.learning_rate / 1e-1 - 1.0).abs() < 1e-9);
        assert!(steepest_descent(&points(&[1.0, 2.0])).is_none());
    }

    /// 42 steps over 4 decades (0.098 decade per step, so each slope spans
    /// 3 steps on each side): a long descent of 0.1 per step, a plateau,
    /// then a short bounce (1.1, 1.2, 1.3, 1.0, 0.95: the lowest) before the
    /// loss blows up. Slopes of one step each side would pick the bounce
    /// (1.3 -> 0.95 over 0.2 decade: -1.8 per decade, against the descent's
    /// -1.0); over half a decade the descent wins.
    #[test]
    fn a_short_bounce_near_the_minimum_does_not_win() {
        let mut losses: Vec<f64> = (0..=20).map(|i| 3.0 - 0.1 * i as f64).collect();
        losses.extend(std::iter::repeat_n(1.0, 14));
        losses.extend([1.1, 1.2, 1.3, 1.0, 0.95, 3.0, 9.0]);
        let found = points(&losses);
        let steepest = steepest_descent(&found).unwrap();
        assert!(steepest > 1e-4 && steepest < 1e-2, "{steepest}");
    }

    #[test]
    fn learning_rates_grow_exponentially_from_start_to_end() {
        let config = LrFindConfig {
            start_lr: 1e-6,
            end_lr: 1.0,
            steps: 7,
            ..LrFindConfig::default()
        };
        for step in 0..7 {
            let expected = 10f64.powi(step as i32 - 6);
            assert!((config.learning_rate(step) / expected - 1.0).abs() < 1e-9);
        }
    }

    #[test]
    fn smoothing_is_bias_corrected() {
        let mut smoother = Smoother::new(0.9);
        assert!((smoother.add(2.0) - 2.0).abs() < 1e-12);
        // (0.9 * 0.2 + 0.1 * 4) / (1 - 0.81) = 0.58 / 0.19
        assert!((smoother.add(4.0) - 0.58 / 0.19).abs() < 1e-12);
    }

    #[test]
    fn steps_of_several_batches_are_refused() {
        assert!(check_one_batch_a_step(&FitConfig::default()).is_ok());
        for (fit, field) in [
            (
                FitConfig {
                    devices: 2,
                    ..FitConfig::default()
                },
                "`devices`",
            ),
            (
                FitConfig {
                    accumulate_grad_batches: 4,
                    ..FitConfig::default()
                },
                "`accumulate_grad_batches`",
            ),
        ] {
            let error = check_one_batch_a_step(&fit).unwrap_err().to_string();
            assert!(error.contains(field), "{error}");
            assert!(error.contains("raise batch_size"), "{error}");
        }
    }

    #[test]
    fn impossible_settings_name_the_field() {
        let bad = [
            LrFindConfig {
                start_lr: 0.0,
                ..LrFindConfig::default()
            },
            LrFindConfig {
                end_lr: 1e-8,
                ..LrFindConfig::default()
            },
            LrFindConfig {
                steps: 1,
                ..LrFindConfig::default()
            },
            LrFindConfig {
                smoothing: 1.0,
                ..LrFindConfig::default()
            },
            LrFindConfig {
                stop_factor: 1.0,
                ..LrFindConfig::default()
            },
        ];
        for (config, field) in
            bad.iter()
                .zip(["start_lr", "end_lr", "steps", "smoothing", "stop_factor"])
        {
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(&format!("`{field}`")), "{error}");
        }
    }
}
