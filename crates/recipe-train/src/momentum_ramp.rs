//! Momentum that rises during training, as the dropout and Maxout papers
//! train (Hinton et al. 2012: 0.5 rising to 0.99 over 500 epochs;
//! Goodfellow et al. 2013: 0.5 rising to 0.7 over 250 epochs; Srivastava's
//! deepnet: 0.5 approaching 0.99 exponentially), and the SGD that follows
//! it.
//!
//! Burn's SGD holds one momentum for the whole run and its `Learner` only
//! schedules the learning rate, so the ramp lives in the optimizer: each
//! parameter's state counts its updates, and the momentum of the next one is
//! read off the ramp. The count is recorded with the velocity, so a resumed
//! run continues the ramp where it stopped.

use std::fmt;
use std::str::FromStr;

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource, join_path};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// A rise of SGD's momentum from `start` to the optimizer's momentum,
/// counted in updates rather than epochs (an epoch is
/// [`FitConfig::updates_per_epoch`](crate::FitConfig::updates_per_epoch)
/// updates: `ceil(training examples / batch size)` on one device without
/// accumulation): linear over the first
/// `updates` updates and constant after them (pylearn2's
/// `MomentumAdjustor`), or, with [`RampShape::Exponential`], approaching
/// it with time constant `updates`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MomentumRamp {
    /// The momentum of the first update, in [0, 1).
    pub start: f64,
    /// Updates until the momentum reaches its final value (linear), or the
    /// time constant of its approach (exponential); at least 1.
    pub updates: u64,
    /// How it rises.
    #[serde(default, skip_serializing_if = "RampShape::is_linear")]
    pub shape: RampShape,
}

/// How a [`MomentumRamp`] rises from its start to the final momentum `end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RampShape {
    /// In a straight line, reaching `end` after `updates` updates.
    #[default]
    Linear,
    /// `end - (end - start) exp(-t / updates)` after `t` updates: 63% of the
    /// way after `updates`, 86% after twice as many, never quite there
    /// (the ramp of Nitish Srivastava's deepnet library).
    Exponential,
}

impl RampShape {
    /// Whether it is [`RampShape::Linear`].
    pub fn is_linear(&self) -> bool {
        matches!(self, Self::Linear)
    }
}

impl MomentumRamp {
    /// A linear ramp, checked.
    pub fn new(start: f64, updates: u64) -> Result<Self, TrainError> {
        let ramp = Self {
            start,
            updates,
            shape: RampShape::Linear,
        };
        ramp.validate()?;
        Ok(ramp)
    }

    /// The same ramp with another shape.
    pub fn with_shape(self, shape: RampShape) -> Self {
        Self { shape, ..self }
    }

    /// Fails, naming the field, unless `start` is in [0, 1) and `updates` at
    /// least 1.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(0.0..1.0).contains(&self.start) {
            return Err(TrainError::invalid(
                "optimizer.ramp.start",
                "a momentum in [0, 1)",
                self.start,
            ));
        }
        if self.updates == 0 {
            return Err(TrainError::invalid(
                "optimizer.ramp.updates",
                "at least 1 update",
                self.updates,
            ));
        }
        Ok(())
    }

    /// The momentum of the update that follows `done` updates, rising to
    /// `end`.
    pub fn momentum(&self, done: u64, end: f64) -> f64 {
        let progress = match self.shape {
            RampShape::Linear => (done as f64 / self.updates as f64).min(1.0),
            RampShape::Exponential => 1.0 - (-(done as f64) / self.updates as f64).exp(),
        };
        self.start + (end - self.start) * progress
    }
}

/// `START:UPDATES`, with `:exponential` after it for that shape.
impl fmt::Display for MomentumRamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.start, self.updates)?;
        match self.shape {
            RampShape::Linear => Ok(()),
            RampShape::Exponential => f.write_str(":exponential"),
        }
    }
}

/// `START:UPDATES[:linear|:exponential]`, e.g. `0.5:125000`.
impl FromStr for MomentumRamp {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = "START:UPDATES[:exponential], a momentum in [0, 1) and a number of \
                        updates, e.g. 0.5:125000";
        let invalid = || TrainError::invalid("momentum ramp", expected, text);
        let parts: Vec<&str> = text.split(':').map(str::trim).collect();
        let (start, updates, shape) = match parts[..] {
            [start, updates] | [start, updates, "linear"] => (start, updates, RampShape::Linear),
            [start, updates, "exponential"] => (start, updates, RampShape::Exponential),
            _ => return Err(invalid()),
        };
        let start = start.parse().map_err(|_| invalid())?;
        let updates = updates.parse().map_err(|_| invalid())?;
        Ok(Self::new(start, updates)?.with_shape(shape))
    }
}

/// SGD with (optionally Nesterov) momentum following a [`MomentumRamp`],
/// in Burn's tensor operations on any backend: the velocity is
/// `v = m_t v + g` (dampened: `v = m_t v + (1 - m_t) g`; the first one is
/// the gradient, as in Burn's SGD) and the step `lr v` (Nesterov:
/// `lr (m_t v + g)`), where `m_t` is the ramp's momentum after the
/// parameter's `t` updates so far.
#[derive(Debug, Clone, Copy)]
pub struct RampedSgd {
    /// The momentum at the end of the ramp.
    pub momentum: f64,
    /// How it gets there.
    pub ramp: MomentumRamp,
    /// Nesterov's look-ahead.
    pub nesterov: bool,
    /// Each gradient weighted by `1 - m_t` (see [`OptimizerConfig::Sgd`](crate::OptimizerConfig::Sgd)).
    pub dampened: bool,
}

/// One parameter's velocity and the number of updates it has had.
#[derive(Debug, Clone)]
pub struct RampedSgdState<const D: usize> {
    /// The velocity (the first gradient after one update).
    pub velocity: Tensor<D>,
    /// Updates so far.
    pub updates: u64,
}

/// Recorded as Burn's SGD names its velocity (`momentum.velocity`), with
/// the count beside it (`momentum.updates`).
impl<const D: usize> RecordState for RampedSgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        let prefix = join_path(prefix, "momentum");
        out.push_tensor(&prefix, "velocity", self.velocity.to_data());
        out.push_scalar(&prefix, "updates", self.updates.into());
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let prefix = join_path(prefix, "momentum");
        let velocity = Tensor::from_data(src.take_tensor(&prefix, "velocity")?, device);
        let updates = src
            .take_scalar(&prefix, "updates")
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(1);
        Some(Self { velocity, updates })
    }
}

impl RampedSgd {
    /// The momentum (as the `f32` the arithmetic uses) of the update after
    /// `done` updates.
    pub fn momentum_after(&self, done: u64) -> f32 {
        self.ramp.momentum(done, self.momentum) as f32
    }

    /// The gradient's weight in the velocity of the update after `done`
    /// updates: `1 - m_t` dampened, else 1.
    pub fn gradient_weight_after(&self, done: u64) -> f32 {
        if self.dampened {
            (1.0 - self.ramp.momentum(done, self.momentum)) as f32
        } else {
            1.0
        }
    }
}

impl Optimizer for RampedSgd {
    type State<const D: usize> = RampedSgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let done = state.as_ref().map_or(0, |s| s.updates);
        let momentum = self.momentum_after(done);
        let velocity = match state {
            Some(state) if self.dampened => grad
                .clone()
                .mul_scalar(self.gradient_weight_after(done))
                .add(state.velocity.mul_scalar(momentum)),
            Some(state) => grad.clone().add(state.velocity.mul_scalar(momentum)),
            None => grad.clone(),
        };
        let step = if self.nesterov {
            velocity.clone().mul_scalar(momentum).add(grad)
        } else {
            velocity.clone()
        };
        let state = RampedSgdState {
            velocity,
            updates: done + 1,
        };
        (tensor - step.mul_scalar(lr), Some(state))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        RampedSgdState {
            velocity: state.velocity.to_device(device),
            updates: state.updates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_momentum_rises_linearly_then_stays() {
        let ramp = MomentumRamp::new(0.5, 4).unwrap();
        let seen: Vec<f64> = (0..7).map(|t| ramp.momentum(t, 0.7)).collect();
        let expected = [0.5, 0.55, 0.6, 0.65, 0.7, 0.7, 0.7];
        for (got, want) in seen.iter().zip(expected) {
            assert!((got - want).abs() < 1e-12, "{seen:?}");
        }
    }

    /// deepnet's `final - (final - initial) exp(-t / steps)`, by hand.
    #[test]
    fn the_exponential_momentum_approaches_its_end() {
        let ramp = MomentumRamp::new(0.5, 100_000)
            .unwrap()
            .with_shape(RampShape::Exponential);
        assert_eq!(ramp.momentum(0, 0.99), 0.5);
        let after = |t: u64| 0.99 - 0.49 * (-(t as f64) / 100_000.0).exp();
        for t in [1, 50_000, 100_000, 1_000_000] {
            assert!((ramp.momentum(t, 0.99) - after(t)).abs() < 1e-12, "{t}");
        }
        assert!((ramp.momentum(100_000, 0.99) - 0.8097).abs() < 1e-4);
        assert!(ramp.momentum(1_000_000, 0.99) < 0.99);
    }

    #[test]
    fn ramps_parse_and_bad_ones_are_named() {
        let ramp: MomentumRamp = "0.5:125000".parse().unwrap();
        assert_eq!(ramp, MomentumRamp::new(0.5, 125_000).unwrap());
        assert_eq!(ramp.to_string().parse::<MomentumRamp>().unwrap(), ramp);
        assert_eq!("0.5:125000:linear".parse::<MomentumRamp>().unwrap(), ramp);
        let exponential: MomentumRamp = "0.5:100000:exponential".parse().unwrap();
        assert_eq!(exponential.shape, RampShape::Exponential);
        assert_eq!(exponential.to_string(), "0.5:100000:exponential");
        // config.json: a linear ramp is written as before the shape existed.
        assert_eq!(
            serde_json::to_string(&ramp).unwrap(),
            r#"{"start":0.5,"updates":125000}"#
        );
        let json = serde_json::to_string(&exponential).unwrap();
        assert_eq!(
            serde_json::from_str::<MomentumRamp>(&json).unwrap(),
            exponential
        );
        for bad in [
            "0.5",
            "1.5:10",
            "0.5:0",
            "x:10",
            "0.5:-3",
            "0.5:10:cubic",
            "0.5:10:exponential:2",
        ] {
            let error = bad.parse::<MomentumRamp>().unwrap_err().to_string();
            assert!(error.contains("ramp"), "{bad}: {error}");
        }
    }

    /// Three updates by hand: the velocity decays by the ramp's momentum of
    /// each update, not by the final one.
    #[test]
    fn each_update_uses_the_ramps_momentum_of_its_turn() {
        let device = Device::flex();
        let sgd = RampedSgd {
            momentum: 0.9,
            ramp: MomentumRamp::new(0.5, 2).unwrap(),
            nesterov: false,
            dampened: false,
        };
        let mut weights = Tensor::<1>::from_floats([1.0], &device);
        let mut state = None;
        for _ in 0..3 {
            let grad = Tensor::<1>::from_floats([1.0], &device);
            (weights, state) = sgd.step(0.1, weights, grad, state);
        }
        // Velocities: 1; 1 + 0.7 * 1 = 1.7; 1 + 0.9 * 1.7 = 2.53.
        let velocity = state
            .as_ref()
            .unwrap()
            .velocity
            .to_data()
            .try_to_vec::<f32>();
        assert!((velocity.unwrap()[0] - 2.53).abs() < 1e-6);
        let w = weights.to_data().try_to_vec::<f32>().unwrap()[0];
        assert!((w - (1.0 - 0.1 * (1.0 + 1.7 + 2.53))).abs() < 1e-6, "{w}");
        assert_eq!(state.unwrap().updates, 3);
    }

    /// Dampened, each gradient enters times `1 - m_t` of its own update
    /// (the first velocity is the gradient).
    #[test]
    fn dampening_follows_the_ramp() {
        let device = Device::flex();
        let sgd = RampedSgd {
            momentum: 0.9,
            ramp: MomentumRamp::new(0.5, 2).unwrap(),
            nesterov: false,
            dampened: true,
        };
        let mut weights = Tensor::<1>::from_floats([1.0], &device);
        let mut state = None;
        for _ in 0..3 {
            let grad = Tensor::<1>::from_floats([1.0], &device);
            (weights, state) = sgd.step(0.1, weights, grad, state);
        }
        // Velocities: 1; 0.7 * 1 + 0.3 * 1 = 1; 0.9 * 1 + 0.1 * 1 = 1.
        let velocity = state.unwrap().velocity.to_data().try_to_vec::<f32>();
        assert!((velocity.unwrap()[0] - 1.0).abs() < 1e-6);
        let w = weights.to_data().try_to_vec::<f32>().unwrap()[0];
        assert!((w - 0.7).abs() < 1e-6, "{w}");
        assert_eq!(sgd.gradient_weight_after(1), 0.3);
        assert_eq!(sgd.gradient_weight_after(5), (1.0f64 - 0.9) as f32);
    }

    #[test]
    fn nesterov_looks_ahead_with_the_same_momentum() {
        let device = Device::flex();
        let sgd = RampedSgd {
            momentum: 0.9,
            ramp: MomentumRamp::new(0.5, 10).unwrap(),
            nesterov: true,
            dampened: false,
        };
        let grad = || Tensor::<1>::from_floats([2.0], &device);
        let (weights, _) = sgd.step(1.0, Tensor::from_floats([0.0], &device), grad(), None);
        // v = g = 2, step = 0.5 * 2 + 2 = 3.
        assert_eq!(weights.to_data().try_to_vec::<f32>().unwrap(), vec![-3.0]);
    }

    #[test]
    fn the_count_is_recorded_with_the_velocity() {
        let device = Device::flex();
        let state = RampedSgdState {
            velocity: Tensor::<1>::from_floats([1.5, -2.0], &device),
            updates: 41,
        };
        let mut sink = StateSink::default();
        state.state_flatten("p", &mut sink);
        assert_eq!(sink.tensors[0].0, "p.momentum.velocity");
        let scalars = sink.scalars.iter().cloned().collect();
        let mut source = StateSource::new(scalars);
        for (name, data) in sink.tensors {
            source.insert_tensor(name, data);
        }
        let back = RampedSgdState::<1>::state_unflatten("p", &mut source, &device).unwrap();
        assert_eq!(back.updates, 41);
        assert_eq!(
            back.velocity.to_data().try_to_vec::<f32>().unwrap(),
            vec![1.5, -2.0]
        );
    }
}
