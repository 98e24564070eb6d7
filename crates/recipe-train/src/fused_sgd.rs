//! SGD, with momentum or Nesterov momentum, whose per-parameter update is
//! one call to the installed optimizer kernels.
//!
//! Burn's SGD with momentum updates a parameter with five tensor operations
//! (scale the gradient, scale the velocity, add them, scale by the learning
//! rate, subtract), each reading and writing every element and allocating
//! its result. [`FusedSgd`] hands each parameter's whole update, as one
//! [`SgdUpdate`], to the installed kernels
//! ([`OptimizerKernels::sgd_update`](crate::OptimizerKernels::sgd_update)):
//! recipe-flex's in-place loop on the CPU, recipe-cube's one kernel on a
//! GPU, or a user's. Where none takes it (no kernels installed, another
//! element type) it runs the same arithmetic as tensor operations, in
//! Burn's order: the numbers are Burn's SGD's either way, and its state is
//! recorded under the names Burn's `SgdState` uses (`momentum.velocity`),
//! so checkpoints are interchangeable with Burn's SGD.
//!
//! With a [`MomentumRamp`] the momentum of each update is the ramp's after
//! the parameter's updates so far (counted in its state, recorded as
//! `momentum.updates`), as [`RampedSgd`](crate::RampedSgd) computes it.

use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource, join_path};
use burn::tensor::{Device, Tensor};

use crate::MomentumRamp;
use crate::optimizer_kernels::{SgdMomentum, SgdTensors, SgdUpdate, installed_sgd_update};
use crate::penalty_gradient::FoldedStrengths;

/// SGD's momentum settings, as Burn's `Momentum` holds them.
#[derive(Debug, Clone, Copy)]
struct MomentumRule {
    /// The velocity's decay, `momentum` in f32 (Burn converts it once).
    momentum: f32,
    /// The momentum as given, in f64: what a ramp rises to (as
    /// [`RampedSgd`](crate::RampedSgd) computes it, before the conversion).
    given: f64,
    /// `1 - dampening`, the gradient's weight in the velocity (Burn scales
    /// by it in f64, converted to the element type).
    gradient_weight: f32,
    /// The dampening is each update's momentum (`gradient_weight` follows
    /// a ramp).
    dampened_by_momentum: bool,
    /// Nesterov's look-ahead: the step is `momentum * velocity + gradient`.
    nesterov: bool,
}

impl MomentumRule {
    fn as_update(self) -> SgdMomentum {
        SgdMomentum {
            momentum: self.momentum,
            gradient_weight: self.gradient_weight,
            nesterov: self.nesterov,
        }
    }
}

/// SGD whose update is one call to the installed kernels; see the module
/// documentation. Turn it into a `ModuleOptimizer` with `.into()`.
#[derive(Debug, Clone)]
pub struct FusedSgd {
    momentum: Option<MomentumRule>,
    /// How the momentum rises to the one given.
    ramp: Option<MomentumRamp>,
    /// An L1/L2 penalty whose gradient each step adds to the loss's.
    penalty: Option<FoldedStrengths>,
}

impl FusedSgd {
    /// Plain SGD: `w -= lr * g`.
    pub fn plain() -> Self {
        Self {
            momentum: None,
            ramp: None,
            penalty: None,
        }
    }

    /// The same SGD with the gradient of `l1 Σ|w| + l2/2 Σw²` added to each
    /// parameter's gradient inside the update (one pass over memory for
    /// both where a kernel takes it), for parameters whose training step
    /// left the penalty out of the gradient
    /// ([`OptimizerKernels::build_folded`](crate::OptimizerKernels::build_folded)).
    pub fn with_elastic_net(self, l1: f64, l2: f64) -> Self {
        Self {
            penalty: Some(FoldedStrengths { l1, l2 }),
            ..self
        }
    }

    /// SGD with `momentum` (`v = (1 - dampening) * g + momentum * v`, the
    /// first velocity being the gradient), as Burn's `MomentumConfig`.
    pub fn with_momentum(momentum: f64, dampening: f64, nesterov: bool) -> Self {
        Self {
            momentum: Some(MomentumRule {
                momentum: momentum as f32,
                given: momentum,
                gradient_weight: (1.0 - dampening) as f32,
                dampened_by_momentum: false,
                nesterov,
            }),
            ramp: None,
            penalty: None,
        }
    }

    /// The same SGD with its momentum rising along `ramp` to the momentum
    /// given to [`FusedSgd::with_momentum`] (no change without momentum).
    pub fn with_ramp(self, ramp: MomentumRamp) -> Self {
        Self {
            ramp: self.momentum.map(|_| ramp),
            ..self
        }
    }

    /// The same SGD with each gradient weighted by `1 -` its update's
    /// momentum (`v = m v + (1 - m) g`, following a ramp; the
    /// [`OptimizerConfig::Sgd`](crate::OptimizerConfig::Sgd)'s `dampened`),
    /// in place of the dampening given to [`FusedSgd::with_momentum`].
    pub fn dampened_by_momentum(self) -> Self {
        Self {
            momentum: self.momentum.map(|rule| MomentumRule {
                dampened_by_momentum: true,
                gradient_weight: (1.0 - rule.given) as f32,
                ..rule
            }),
            ..self
        }
    }

    /// The momentum rule of the update after `done` updates.
    fn rule_after(&self, done: u64) -> Option<MomentumRule> {
        let rule = self.momentum?;
        let Some(ramp) = self.ramp else {
            return Some(rule);
        };
        let momentum = ramp.momentum(done, rule.given);
        Some(MomentumRule {
            momentum: momentum as f32,
            gradient_weight: if rule.dampened_by_momentum {
                (1.0 - momentum) as f32
            } else {
                rule.gradient_weight
            },
            ..rule
        })
    }

    /// The update of learning rate `lr` after `done` updates.
    fn update_after(&self, done: u64, lr: LearningRate) -> SgdUpdate {
        SgdUpdate {
            learning_rate: lr as f32,
            momentum: self.rule_after(done).map(MomentumRule::as_update),
            l1: self.penalty.map_or(0.0, |p| p.l1 as f32),
            l2: self.penalty.map_or(0.0, |p| p.l2 as f32),
        }
    }
}

/// The velocity of one parameter, if the optimizer has momentum.
#[derive(Debug, Clone)]
pub struct FusedSgdState<const D: usize> {
    /// `None` without momentum.
    pub velocity: Option<Tensor<D>>,
    /// Updates so far (what a [`MomentumRamp`] follows).
    pub updates: u64,
}

/// The same names as Burn's `SgdState { momentum: Option<MomentumState {
/// velocity } > }`.
impl<const D: usize> RecordState for FusedSgdState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        if let Some(velocity) = &self.velocity {
            out.push_tensor(
                &join_path(prefix, "momentum"),
                "velocity",
                velocity.to_data(),
            );
            out.push_scalar(
                &join_path(prefix, "momentum"),
                "updates",
                self.updates.into(),
            );
        }
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let velocity = src
            .take_tensor(&join_path(prefix, "momentum"), "velocity")
            .map(|data| Tensor::from_data(data, device));
        // A velocity recorded by Burn's SGD, without a count, has had at
        // least one update.
        let updates = src
            .take_scalar(&join_path(prefix, "momentum"), "updates")
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(u64::from(velocity.is_some()));
        Some(Self { velocity, updates })
    }
}

impl Optimizer for FusedSgd {
    type State<const D: usize> = FusedSgdState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let done = state.as_ref().map_or(0, |s| s.updates);
        let update = self.update_after(done, lr);
        let velocity = state.and_then(|s| s.velocity);
        let (tensor, velocity) = match installed_step(&update, tensor, grad, velocity) {
            Ok(done) => done,
            Err(untouched) => {
                let (tensor, grad, velocity) = *untouched;
                let grad = match self.penalty {
                    Some(penalty) => penalty.add_to(&tensor, grad),
                    None => grad,
                };
                tensor_step(self.rule_after(done), lr, tensor, grad, velocity)
            }
        };
        let updates = done + 1;
        (tensor, Some(FusedSgdState { velocity, updates }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        FusedSgdState {
            velocity: state.velocity.map(|v| v.to_device(device)),
            updates: state.updates,
        }
    }
}

/// The arguments handed back untouched (boxed: three tensors make a large
/// `Err`).
type Untouched<const D: usize> = Box<(Tensor<D>, Tensor<D>, Option<Tensor<D>>)>;

/// The step by the installed kernels' `sgd_update`, on the flattened
/// tensors; the tensors back, unchanged, where no kernel takes them.
fn installed_step<const D: usize>(
    update: &SgdUpdate,
    tensor: Tensor<D>,
    grad: Tensor<D>,
    velocity: Option<Tensor<D>>,
) -> Result<(Tensor<D>, Option<Tensor<D>>), Untouched<D>> {
    let shape = tensor.shape();
    let flat = [shape.num_elements()];
    let tensors = SgdTensors {
        param: tensor.reshape(flat),
        grad: grad.reshape(flat),
        velocity: velocity.map(|v| v.reshape(flat)),
    };
    let unflat = |t: Tensor<1>| t.reshape(shape.clone());
    match installed_sgd_update(update, tensors) {
        Ok(done) => Ok((unflat(done.param), done.velocity.map(unflat))),
        Err(back) => Err(Box::new((
            unflat(back.param),
            unflat(back.grad),
            back.velocity.map(unflat),
        ))),
    }
}

/// The step as Burn's SGD writes it, in tensor operations (for tensors no
/// installed kernel takes).
fn tensor_step<const D: usize>(
    momentum: Option<MomentumRule>,
    lr: LearningRate,
    tensor: Tensor<D>,
    grad: Tensor<D>,
    velocity: Option<Tensor<D>>,
) -> (Tensor<D>, Option<Tensor<D>>) {
    let Some(rule) = momentum else {
        return (tensor - grad.mul_scalar(lr), None);
    };
    let velocity = match velocity {
        Some(velocity) => grad
            .clone()
            .mul_scalar(rule.gradient_weight)
            .add(velocity.mul_scalar(rule.momentum)),
        None => grad.clone(),
    };
    let step = if rule.nesterov {
        velocity.clone().mul_scalar(rule.momentum).add(grad)
    } else {
        velocity.clone()
    };
    (tensor - step.mul_scalar(lr), Some(velocity))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RampedSgd;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{SgdConfig, SgdState};
    use burn::tensor::{DType, Distribution, TensorData};

    fn bits(tensor: &Tensor<2>) -> Vec<u32> {
        tensor
            .to_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect()
    }

    fn burn_sgd(momentum: Option<(f64, bool)>) -> burn::optim::Sgd {
        SgdConfig::new()
            .with_momentum(momentum.map(|(m, nesterov)| {
                MomentumConfig::new()
                    .with_momentum(m)
                    .with_dampening(0.0)
                    .with_nesterov(nesterov)
            }))
            .build()
    }

    /// Without installed kernels (none in this crate's tests), five steps
    /// of the tensor code and of Burn's SGD from the same weights and
    /// gradients (a zero gradient in one step) end in the same bits,
    /// weights and velocity alike, and the velocity is recorded under
    /// Burn's names.
    #[test]
    fn matches_burns_sgd_bit_for_bit() {
        let device = Device::flex();
        let cases = [None, Some((0.9, false)), Some((0.9, true))];
        for momentum in cases {
            let fused = match momentum {
                None => FusedSgd::plain(),
                Some((m, nesterov)) => FusedSgd::with_momentum(m, 0.0, nesterov),
            };
            let burn = burn_sgd(momentum);
            let start = Tensor::<2>::random([30, 17], Distribution::Normal(0.0, 1.0), &device);
            let (mut a, mut b) = (start.clone(), start.clone() + 0.0);
            let (mut sa, mut sb): (Option<FusedSgdState<2>>, Option<SgdState<2>>) = (None, None);
            for step in 0..5 {
                let mut grad =
                    Tensor::<2>::random([30, 17], Distribution::Normal(0.0, 1.0), &device);
                if step == 1 {
                    grad = grad.mul_scalar(0.0);
                }
                (a, sa) = fused.step(0.05, a, grad.clone() + 0.0, sa);
                (b, sb) = burn.step(0.05, b, grad + 0.0, sb);
                assert_eq!(bits(&a), bits(&b), "{momentum:?}, step {step}");
            }
            assert_ne!(bits(&a), bits(&start), "the weights moved");
            let (mut ours, mut burns) = (StateSink::default(), StateSink::default());
            sa.unwrap().state_flatten("p", &mut ours);
            sb.unwrap().state_flatten("p", &mut burns);
            assert_eq!(ours.tensors.len(), usize::from(momentum.is_some()));
            let names =
                |s: &StateSink| s.tensors.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
            assert_eq!(names(&ours), names(&burns));
            for ((_, x), (_, y)) in ours.tensors.iter().zip(&burns.tensors) {
                assert_eq!(x, y, "velocity, {momentum:?}");
            }
        }
    }

    /// With a momentum ramp, the same bits as [`RampedSgd`] at every update
    /// of the ramp and after it; the ramp does change the result.
    #[test]
    fn a_ramp_matches_ramped_sgd_bit_for_bit() {
        let device = Device::flex();
        let ramp = MomentumRamp::new(0.5, 3).unwrap();
        for nesterov in [false, true] {
            let fused = FusedSgd::with_momentum(0.9, 0.0, nesterov).with_ramp(ramp);
            let unramped = FusedSgd::with_momentum(0.9, 0.0, nesterov);
            let reference = RampedSgd {
                momentum: 0.9,
                ramp,
                nesterov,
                dampened: false,
            };
            let start = Tensor::<2>::random([3, 5], Distribution::Normal(0.0, 1.0), &device);
            let (mut a, mut b, mut c) = (start.clone(), start.clone() + 0.0, start + 0.0);
            let (mut sa, mut sb, mut sc) = (None, None, None);
            for step in 0..6 {
                let grad = Tensor::<2>::random([3, 5], Distribution::Normal(0.0, 1.0), &device);
                (a, sa) = fused.step(0.05, a, grad.clone() + 0.0, sa);
                (b, sb) = reference.step(0.05, b, grad.clone() + 0.0, sb);
                (c, sc) = unramped.step(0.05, c, grad + 0.0, sc);
                let what = format!("nesterov {nesterov}, step {step}");
                assert_eq!(bits(&a), bits(&b), "fused vs RampedSgd: {what}");
                if step >= 1 {
                    assert_ne!(bits(&a), bits(&c), "the ramp made no difference: {what}");
                }
            }
            assert_eq!(sa.unwrap().updates, 6);
            assert_eq!(sb.unwrap().updates, 6);
        }
    }

    /// Dampened by the momentum: without a ramp the bits of Burn's SGD with
    /// `dampening = momentum`, with one the bits of a dampened
    /// [`RampedSgd`]; dampening changes the result.
    #[test]
    fn dampened_matches_burn_and_ramped_sgd_bit_for_bit() {
        let device = Device::flex();
        let ramp = MomentumRamp::new(0.5, 3).unwrap();
        let dampened = FusedSgd::with_momentum(0.9, 0.0, false).dampened_by_momentum();
        let ramped = dampened.clone().with_ramp(ramp);
        let undampened = FusedSgd::with_momentum(0.9, 0.0, false);
        let burn = SgdConfig::new()
            .with_momentum(Some(
                MomentumConfig::new().with_momentum(0.9).with_dampening(0.9),
            ))
            .build();
        let ramped_reference = RampedSgd {
            momentum: 0.9,
            ramp,
            nesterov: false,
            dampened: true,
        };
        let start = Tensor::<2>::random([3, 5], Distribution::Normal(0.0, 1.0), &device);
        let mut w: [Tensor<2>; 5] = std::array::from_fn(|_| start.clone() + 0.0);
        let (mut s0, mut s1, mut s2, mut s3, mut s4) = (None, None, None, None, None);
        for step in 0..6 {
            let grad = Tensor::<2>::random([3, 5], Distribution::Normal(0.0, 1.0), &device);
            let [mut a, mut b, mut c, mut d, mut e] = w;
            let g = || grad.clone() + 0.0;
            (a, s0) = dampened.step(0.05, a, g(), s0);
            (b, s1) = burn.step(0.05, b, g(), s1);
            (c, s2) = ramped.step(0.05, c, g(), s2);
            (d, s3) = ramped_reference.step(0.05, d, g(), s3);
            (e, s4) = undampened.step(0.05, e, g(), s4);
            assert_eq!(bits(&a), bits(&b), "dampened vs Burn, step {step}");
            assert_eq!(bits(&c), bits(&d), "ramped vs RampedSgd, step {step}");
            if step >= 1 {
                assert_ne!(bits(&a), bits(&e), "dampening made no difference");
                assert_ne!(bits(&a), bits(&c), "the ramp made no difference");
            }
            w = [a, b, c, d, e];
        }
    }

    /// A folded penalty's gradient is added before the step: one plain step
    /// of `l1 = 0.25`, `l2 = 0.5` by hand.
    #[test]
    fn a_folded_penalty_is_added_to_the_gradient() {
        let device = Device::flex();
        let sgd = FusedSgd::plain().with_elastic_net(0.25, 0.5);
        let param = Tensor::<2>::from_floats([[1.0, -2.0], [0.0, 4.0]], &device);
        let grad = Tensor::<2>::from_floats([[0.5, 0.5], [-1.0, 0.0]], &device);
        let (stepped, _) = sgd.step(0.1, param, grad, None);
        // w - 0.1 * (g + 0.25 sign(w) + 0.5 w)
        let expected = [0.875, -1.925, 0.1, 3.775];
        let found = stepped.into_data().try_to_vec::<f32>().unwrap();
        for (found, expected) in found.iter().zip(expected) {
            assert!((found - expected).abs() < 1e-6, "{found} vs {expected}");
        }
    }

    /// A recorded velocity reads back into the state it came from.
    #[test]
    fn the_state_round_trips_through_its_record() {
        let device = Device::flex();
        let velocity = Tensor::<2>::from_floats([[1.0, -2.0], [0.5, 0.0]], &device);
        let state = FusedSgdState {
            velocity: Some(velocity.clone()),
            updates: 7,
        };
        let mut sink = StateSink::default();
        state.state_flatten("layer", &mut sink);
        let mut source = StateSource::new(sink.scalars.into_iter().collect());
        for (name, data) in sink.tensors {
            source.insert_tensor(name, data);
        }
        let back = FusedSgdState::<2>::state_unflatten("layer", &mut source, &device).unwrap();
        assert_eq!(back.updates, 7);
        assert_eq!(bits(&back.velocity.unwrap()), bits(&velocity));
    }

    /// A parameter of another element type takes the tensor code.
    #[test]
    fn other_float_types_take_the_tensor_code() {
        let device = Device::flex();
        let fused = FusedSgd::with_momentum(0.9, 0.0, false);
        let param = Tensor::<1>::from_data(
            TensorData::new(vec![1.0f64, -2.0], [2]),
            (&device, DType::F64),
        );
        let grad = param.clone().mul_scalar(0.5);
        let (stepped, state) = fused.step(0.1, param, grad, None);
        assert!(state.unwrap().velocity.is_some());
        let values = stepped.to_data().try_to_vec::<f64>().unwrap();
        assert!(
            (values[0] - 0.95).abs() < 1e-12 && (values[1] + 1.9).abs() < 1e-12,
            "{values:?}"
        );
    }
}
