//! SGD, with momentum or Nesterov momentum, as one in-place pass over
//! memory on the CPU.
//!
//! Burn's SGD with momentum updates a parameter with five tensor operations
//! (scale the gradient, scale the velocity, add them, scale by the learning
//! rate, subtract), each reading and writing every element and allocating
//! its result. [`FusedSgd`] does the same arithmetic, in the same order, in
//! one loop over the parameter, its gradient and its velocity, in place (the
//! first step's velocity is the gradient's own buffer). The results are bit
//! for bit Burn's (tests below check it), and its state is recorded under
//! the names Burn's `SgdState` uses (`momentum.velocity`), so checkpoints are
//! interchangeable with Burn's SGD.
//!
//! With a [`MomentumRamp`] the momentum of each update is the ramp's after
//! the parameter's updates so far (counted in its state, recorded as
//! `momentum.updates`), as `recipe_train::RampedSgd` computes it.
//!
//! The loop runs where the tensors live in Flex's host memory as `f32`;
//! everywhere else the installed optimizer kernels are asked first
//! ([`recipe_train::OptimizerKernels::sgd_update`]: recipe-cube's one kernel
//! on a GPU), and where none takes the step (other float types) it runs the
//! same arithmetic as tensor operations, as Burn's SGD does.

use crate::elastic_net::{self, Penalty, Strengths};
use burn::optim::{LearningRate, Optimizer, RecordState, StateSink, StateSource, join_path};
use burn::tensor::{DType, Device, Tensor, TensorData};
use recipe_train::{MomentumRamp, SgdMomentum, SgdTensors, SgdUpdate, installed_sgd_update};

/// SGD's momentum settings, as Burn's `Momentum` holds them.
#[derive(Debug, Clone, Copy)]
struct MomentumRule {
    /// The velocity's decay, `momentum` in f32 (Burn converts it once).
    momentum: f32,
    /// The momentum as given, in f64: what a ramp rises to (as
    /// `recipe_train::RampedSgd` computes it, before the conversion).
    given: f64,
    /// `1 - dampening`, the gradient's weight in the velocity (Burn scales
    /// by it in f64, converted to the element type).
    gradient_weight: f32,
    /// Nesterov's look-ahead: the step is `momentum * velocity + gradient`.
    nesterov: bool,
}

/// SGD whose update runs as one fused, in-place loop on the CPU; see the
/// module documentation. Turn it into a `ModuleOptimizer` with `.into()`.
#[derive(Debug, Clone)]
pub struct FusedSgd {
    momentum: Option<MomentumRule>,
    /// How the momentum rises to the one given.
    ramp: Option<MomentumRamp>,
    /// An L1/L2 penalty whose gradient each step adds to the loss's.
    penalty: Option<Penalty>,
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
    /// parameter's gradient inside the update loop (one pass over memory
    /// for both), for parameters whose training step left the penalty out
    /// of the gradient (`recipe_train::OptimizerKernels::build_folded`).
    pub fn with_elastic_net(self, l1: f64, l2: f64) -> Self {
        Self {
            penalty: Some(Penalty::new(l1, l2)),
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

    /// The momentum rule of the update after `done` updates.
    fn rule_after(&self, done: u64) -> Option<MomentumRule> {
        let rule = self.momentum?;
        Some(match self.ramp {
            Some(ramp) => MomentumRule {
                momentum: ramp.momentum(done, rule.given) as f32,
                ..rule
            },
            None => rule,
        })
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
        let momentum = self.rule_after(done);
        let velocity = state.and_then(|s| s.velocity);
        let rule = Rule {
            momentum,
            penalty: self.penalty.map(|p| p.strengths),
        };
        let (tensor, velocity) = match host::try_step(rule, lr, tensor, grad, velocity) {
            Ok(done) => done,
            Err(untouched) => {
                let (tensor, grad, velocity) = *untouched;
                match installed_step(momentum, self.penalty, lr, tensor, grad, velocity) {
                    Ok(done) => done,
                    Err(untouched) => {
                        let (tensor, grad, velocity) = *untouched;
                        let grad = match &self.penalty {
                            Some(penalty) => penalty.add_to(&tensor, grad),
                            None => grad,
                        };
                        tensor_step(momentum, lr, tensor, grad, velocity)
                    }
                }
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

/// The step by the installed kernels'
/// [`recipe_train::OptimizerKernels::sgd_update`] (e.g. recipe-cube's one
/// kernel on a GPU), for tensors the loop cannot take; the tensors back,
/// unchanged, where no kernel takes them.
fn installed_step<const D: usize>(
    momentum: Option<MomentumRule>,
    penalty: Option<Penalty>,
    lr: LearningRate,
    tensor: Tensor<D>,
    grad: Tensor<D>,
    velocity: Option<Tensor<D>>,
) -> Result<(Tensor<D>, Option<Tensor<D>>), host::Untouched<D>> {
    let shape = tensor.shape();
    let flat = [shape.num_elements()];
    let update = SgdUpdate {
        learning_rate: lr as f32,
        momentum: momentum.map(|rule| SgdMomentum {
            momentum: rule.momentum,
            gradient_weight: rule.gradient_weight,
            nesterov: rule.nesterov,
        }),
        l1: penalty.map_or(0.0, |p| p.l1 as f32),
        l2: penalty.map_or(0.0, |p| p.l2 as f32),
    };
    let tensors = SgdTensors {
        param: tensor.reshape(flat),
        grad: grad.reshape(flat),
        velocity: velocity.map(|v| v.reshape(flat)),
    };
    let unflat = |t: Tensor<1>| t.reshape(shape.clone());
    match installed_sgd_update(&update, tensors) {
        Ok(done) => Ok((unflat(done.param), done.velocity.map(unflat))),
        Err(back) => Err(Box::new((
            unflat(back.param),
            unflat(back.grad),
            back.velocity.map(unflat),
        ))),
    }
}

/// The step as Burn's SGD writes it, in tensor operations (for tensors
/// neither the loop nor an installed kernel takes).
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

/// What one step of the loop does.
#[derive(Debug, Clone, Copy)]
struct Rule {
    momentum: Option<MomentumRule>,
    /// Added to the gradient first, block by block.
    penalty: Option<Strengths>,
}

/// The fused loop over tensors in Flex's host memory.
mod host {
    use super::*;

    /// With a penalty, a parameter is updated in blocks this long: the
    /// penalty's gradient is added to a block and the block updated while
    /// it is still in the cache.
    const BLOCK: usize = 4096;

    /// Below this many elements a parameter is updated on one thread.
    const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

    /// The arguments handed back untouched (boxed: three tensors make a
    /// large `Err`).
    pub(super) type Untouched<const D: usize> = Box<(Tensor<D>, Tensor<D>, Option<Tensor<D>>)>;

    /// One stretch of a parameter: the weights, the gradient, and the
    /// velocity (`None` without momentum, or on the first step, when the
    /// gradient's buffer becomes the velocity).
    struct Stretch<'a> {
        param: &'a mut [f32],
        grad: &'a mut [f32],
        velocity: Option<&'a mut [f32]>,
    }

    /// One update of `s`, with Burn's operations in Burn's order (Rust
    /// never contracts `a * b + c` into an FMA, so the bits are Burn's).
    #[inline(always)]
    fn update(rule: Rule, lr: f32, s: Stretch<'_>) {
        if let Some(penalty) = rule.penalty {
            elastic_net::add_gradient(s.param, s.grad, penalty);
        }
        let weights_and_grads = s.param.iter_mut().zip(s.grad.iter());
        match (rule.momentum, s.velocity) {
            (None, _) => {
                for (w, &g) in weights_and_grads {
                    *w -= g * lr;
                }
            }
            // The first step: the velocity is the gradient, kept in place.
            (Some(rule), None) => {
                for (w, &g) in weights_and_grads {
                    let step = if rule.nesterov {
                        g * rule.momentum + g
                    } else {
                        g
                    };
                    *w -= step * lr;
                }
            }
            (Some(rule), Some(velocity)) => {
                for ((w, &g), v) in weights_and_grads.zip(velocity.iter_mut()) {
                    *v = g * rule.gradient_weight + *v * rule.momentum;
                    let step = if rule.nesterov {
                        *v * rule.momentum + g
                    } else {
                        *v
                    };
                    *w -= step * lr;
                }
            }
        }
    }

    /// [`update`], also compiled for AVX2 and picked at run time where the
    /// CPU has it.
    fn update_simd(rule: Rule, lr: f32, s: Stretch<'_>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            fn update_avx2(rule: Rule, lr: f32, s: Stretch<'_>) {
                update(rule, lr, s)
            }
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { update_avx2(rule, lr, s) };
        }
        update(rule, lr, s)
    }

    /// [`update_simd`] on the whole stretch, or block by block with a
    /// penalty.
    fn update_dispatch(rule: Rule, lr: f32, s: Stretch<'_>) {
        if rule.penalty.is_none() {
            return update_simd(rule, lr, s);
        }
        let mut velocity = s.velocity.map(|v| v.chunks_mut(BLOCK));
        let blocks = s.param.chunks_mut(BLOCK).zip(s.grad.chunks_mut(BLOCK));
        for (param, grad) in blocks {
            let velocity = velocity.as_mut().and_then(Iterator::next);
            update_simd(
                rule,
                lr,
                Stretch {
                    param,
                    grad,
                    velocity,
                },
            );
        }
    }

    /// The update of a whole parameter, split across the thread pool when
    /// it is large.
    fn update_all(rule: Rule, lr: f32, s: Stretch<'_>) {
        let n = s.param.len();
        if n < PARALLEL_MIN_ELEMENTS {
            return update_dispatch(rule, lr, s);
        }
        let chunk = n.div_ceil(rayon::current_num_threads()).max(4096);
        let (mut param, mut grad, mut velocity) = (s.param, s.grad, s.velocity);
        let mut stretches = Vec::with_capacity(n.div_ceil(chunk));
        while !param.is_empty() {
            let take = chunk.min(param.len());
            let (param_here, param_rest) = param.split_at_mut(take);
            let (grad_here, grad_rest) = grad.split_at_mut(take);
            let (velocity_here, velocity_rest) = match velocity {
                Some(v) => {
                    let (here, rest) = v.split_at_mut(take);
                    (Some(here), Some(rest))
                }
                None => (None, None),
            };
            stretches.push(Stretch {
                param: param_here,
                grad: grad_here,
                velocity: velocity_here,
            });
            (param, grad, velocity) = (param_rest, grad_rest, velocity_rest);
        }
        crate::spin_pool::for_each(stretches, |stretch| update_dispatch(rule, lr, stretch));
    }

    /// The fused step, or the arguments back, untouched, when it does not
    /// apply (another device, another element type).
    pub(super) fn try_step<const D: usize>(
        rule: Rule,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        velocity: Option<Tensor<D>>,
    ) -> Result<(Tensor<D>, Option<Tensor<D>>), Untouched<D>> {
        let device = tensor.device();
        let shape = tensor.shape();
        let all_f32 = tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && velocity.as_ref().is_none_or(|v| v.dtype() == DType::F32);
        let same_shape =
            grad.shape() == shape && velocity.as_ref().is_none_or(|v| v.shape() == shape);
        if !all_f32 || !same_shape || device.clone().inner() != Device::flex() {
            return Err(Box::new((tensor, grad, velocity)));
        }
        // Zero-copy where Flex holds the only reference, a copy otherwise.
        let mut param = tensor.into_data();
        let mut grad_data = grad.into_data();
        let mut velocity_data = velocity.map(Tensor::into_data);
        let applied = match (
            param.as_mut_slice::<f32>(),
            grad_data.as_mut_slice::<f32>(),
            velocity_data.as_mut().map(|v| v.as_mut_slice::<f32>()),
        ) {
            (Ok(param), Ok(grad), velocity) if grad.len() == param.len() => {
                let velocity = match velocity {
                    Some(Ok(velocity)) if velocity.len() == param.len() => Some(Some(velocity)),
                    Some(_) => None,
                    None => Some(None),
                };
                match velocity {
                    Some(velocity) => {
                        let stretch = Stretch {
                            param,
                            grad,
                            velocity,
                        };
                        update_all(rule, lr as f32, stretch);
                        true
                    }
                    None => false,
                }
            }
            _ => false,
        };
        let rebuild = |data: TensorData| Tensor::<D>::from_data(data, (&device, DType::F32));
        if !applied {
            // Nothing was written: the tensor code gets the values as they were.
            return Err(Box::new((
                rebuild(param),
                rebuild(grad_data),
                velocity_data.map(rebuild),
            )));
        }
        let velocity = match (rule.momentum, velocity_data) {
            (None, _) => None,
            (Some(_), Some(velocity)) => Some(rebuild(velocity)),
            // The first step's velocity is the gradient, untouched by the loop.
            (Some(_), None) => Some(rebuild(grad_data)),
        };
        Ok((rebuild(param), velocity))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{SgdConfig, SgdState};
    use burn::tensor::Distribution;

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

    /// Five steps of the fused loop, of the tensor code and of Burn's SGD
    /// from the same weights and gradients (a small tensor on one thread, a
    /// large one split across threads, a zero gradient in one step) end in
    /// the same bits, weights and velocity alike.
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
            for shape in [[3, 5], [300, 512]] {
                let start = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                let (mut a, mut b, mut c) =
                    (start.clone(), start.clone() + 0.0, start.clone() + 0.0);
                let (mut sa, mut sb, mut sc): (Option<FusedSgdState<2>>, Option<SgdState<2>>, _) =
                    (None, None, None);
                for step in 0..5 {
                    let mut grad =
                        Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                    if step == 1 {
                        grad = grad.mul_scalar(0.0);
                    }
                    (a, sa) = fused.step(0.05, a, grad.clone() + 0.0, sa);
                    (b, sb) = burn.step(0.05, b, grad.clone() + 0.0, sb);
                    let (next, velocity) = tensor_step(fused.momentum, 0.05, c, grad + 0.0, sc);
                    (c, sc) = (next, velocity);
                    let what = format!("{momentum:?}, shape {shape:?}, step {step}");
                    assert_eq!(bits(&a), bits(&b), "fused vs Burn: {what}");
                    assert_eq!(bits(&c), bits(&b), "tensor code vs Burn: {what}");
                }
                assert_ne!(bits(&a), bits(&start), "the weights moved");
                // The velocity, recorded under Burn's names, is Burn's.
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
    }

    /// With a momentum ramp, the fused loop and recipe-train's `RampedSgd`
    /// (tensor operations) agree bit for bit at every update of the ramp
    /// and after it, on one thread and across threads; the ramp does
    /// change the result (against the final momentum from the start).
    #[test]
    fn a_ramp_matches_recipe_trains_ramped_sgd_bit_for_bit() {
        use recipe_train::RampedSgd;
        let device = Device::flex();
        let ramp = MomentumRamp::new(0.5, 3).unwrap();
        for nesterov in [false, true] {
            let fused = FusedSgd::with_momentum(0.9, 0.0, nesterov).with_ramp(ramp);
            let unramped = FusedSgd::with_momentum(0.9, 0.0, nesterov);
            let reference = RampedSgd {
                momentum: 0.9,
                ramp,
                nesterov,
            };
            for shape in [[3, 5], [300, 512]] {
                let start = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                let (mut a, mut b, mut c) =
                    (start.clone(), start.clone() + 0.0, start.clone() + 0.0);
                let (mut sa, mut sb, mut sc) = (None, None, None);
                for step in 0..6 {
                    let grad = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                    (a, sa) = fused.step(0.05, a, grad.clone() + 0.0, sa);
                    (b, sb) = reference.step(0.05, b, grad.clone() + 0.0, sb);
                    (c, sc) = unramped.step(0.05, c, grad + 0.0, sc);
                    let what = format!("nesterov {nesterov}, shape {shape:?}, step {step}");
                    assert_eq!(bits(&a), bits(&b), "fused vs RampedSgd: {what}");
                    if step >= 1 {
                        assert_ne!(bits(&a), bits(&c), "the ramp made no difference: {what}");
                    }
                }
                assert_eq!(sa.unwrap().updates, 6);
                assert_eq!(sb.unwrap().updates, 6);
            }
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
