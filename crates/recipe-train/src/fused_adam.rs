//! Adam and AdamW whose per-parameter update is one call to the installed
//! optimizer kernels.
//!
//! Burn's Adam updates a parameter with about a dozen separate tensor
//! operations (decay the moments, square the gradient, take the root, divide,
//! scale, subtract), each reading and writing every element and allocating
//! its result. On the 784-512-512-10 MLP of the benchmarks that was 30% of a
//! training step on the CPU (1.45 ms of 4.7 ms at batch 128), while plain SGD
//! cost nearly nothing. [`FusedAdam`] and [`FusedAdamW`] hand each
//! parameter's whole update, as one [`AdamUpdate`], to the installed kernels
//! ([`OptimizerKernels::adam_update`](crate::OptimizerKernels::adam_update)):
//! recipe-flex's in-place loop on the CPU, recipe-cube's one kernel on a
//! GPU, or a user's, each computing its constants with
//! [`AdamUpdate::factors`] as Burn does. Where none takes it (no kernels
//! installed, another element type, AMSGrad's state) Burn's own `Adam` or
//! `AdamW` runs, unchanged. The states are Burn's [`AdamState`] and
//! [`AdamWState`], so checkpoints are interchangeable.

use crate::adam_update::{AdamMoments, AdamRule, AdamTensors, AdamUpdate};
use crate::optimizer_kernels::installed_adam_update;
use crate::penalty_gradient::FoldedStrengths;
use burn::optim::{
    AdamConfig, AdamState, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer,
};
use burn::tensor::{Device, Tensor};

/// The moment settings both optimizers share.
#[derive(Debug, Clone, Copy)]
struct Moments {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// An L1/L2 penalty whose gradient each step adds to the loss's.
    penalty: Option<FoldedStrengths>,
}

impl Moments {
    /// The update of time `time` (counting from 1) under `rule`.
    fn update(&self, rule: AdamRule, time: usize, learning_rate: LearningRate) -> AdamUpdate {
        let penalty = self.penalty.map(|p| (p.l1 as f32, p.l2 as f32));
        AdamUpdate {
            learning_rate,
            beta_1: self.beta_1,
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            time,
            rule,
            l1: penalty.map_or(0.0, |(l1, _)| l1),
            l2: penalty.map_or(0.0, |(_, l2)| l2),
        }
    }
}

/// Adam whose update is one call to the installed kernels; see the module
/// documentation. Build it with [`FusedAdam::new`] and turn it into a
/// `ModuleOptimizer` with `.into()`.
#[derive(Clone)]
pub struct FusedAdam {
    moments: Moments,
    /// Burn's Adam with the same settings, for tensors no kernel takes.
    fallback: burn::optim::Adam,
}

impl FusedAdam {
    /// Adam with decay rates `beta_1`, `beta_2` for the first and second
    /// moments and `epsilon` added to the denominator.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        Self {
            moments: Moments {
                beta_1,
                beta_2,
                epsilon,
                penalty: None,
            },
            fallback: AdamConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .build(),
        }
    }
}

impl FusedAdam {
    /// The same Adam with the gradient of `l1 Σ|w| + l2/2 Σw²` added to each
    /// parameter's gradient inside the update, as
    /// [`FusedSgd::with_elastic_net`](crate::FusedSgd::with_elastic_net).
    pub fn with_elastic_net(mut self, l1: f64, l2: f64) -> Self {
        self.moments.penalty = Some(FoldedStrengths { l1, l2 });
        self
    }
}

impl Optimizer for FusedAdam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        fused_or_fallback(
            (self.moments, AdamRule::Adam),
            (lr, tensor, grad, state),
            (|s| s.momentum, AdamState::new),
            |tensor, grad, state| self.fallback.step(lr, tensor, grad, state),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        burn::optim::Adam::to_device(state, device)
    }
}

/// AdamW (decoupled weight decay) whose update is one call to the installed
/// kernels; see the module documentation.
#[derive(Clone)]
pub struct FusedAdamW {
    moments: Moments,
    /// `AdamRule::AdamW` with its weight decay.
    rule: AdamRule,
    /// Burn's AdamW with the same settings, for tensors no kernel takes.
    fallback: burn::optim::AdamW,
}

impl FusedAdamW {
    /// AdamW with decay rates `beta_1`, `beta_2`, `epsilon` added to the
    /// denominator and decoupled `weight_decay`.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        Self {
            moments: Moments {
                beta_1,
                beta_2,
                epsilon,
                penalty: None,
            },
            rule: AdamRule::AdamW { weight_decay },
            fallback: AdamWConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .with_weight_decay(weight_decay)
                .build(),
        }
    }
}

impl FusedAdamW {
    /// The same AdamW with an L1/L2 penalty's gradient added in its update, as
    /// [`FusedAdam::with_elastic_net`].
    pub fn with_elastic_net(mut self, l1: f64, l2: f64) -> Self {
        self.moments.penalty = Some(FoldedStrengths { l1, l2 });
        self
    }
}

impl Optimizer for FusedAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        fused_or_fallback(
            (self.moments, self.rule),
            (lr, tensor, grad, state),
            (|s| s.momentum, |momentum| AdamWState { momentum }),
            |tensor, grad, state| self.fallback.step(lr, tensor, grad, state),
        )
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        AdamWState {
            momentum: state.momentum.to_device(device),
        }
    }
}

/// The moments of a step, handed back with the weights (kept by the states
/// of both optimizers).
type MomentState<const D: usize> = AdaptiveMomentumState<D>;

/// The arguments of a step handed back untouched (boxed: three tensors make
/// a large `Err`).
type Untouched<const D: usize> = Box<(Tensor<D>, Tensor<D>, Option<MomentState<D>>)>;

/// The arguments of one optimizer step: learning rate, weights, gradient,
/// state.
type StepArgs<const D: usize, S> = (LearningRate, Tensor<D>, Tensor<D>, Option<S>);

/// How to take the moments out of an optimizer's state `S` and put them back.
type StateMoments<const D: usize, S> = (fn(S) -> MomentState<D>, fn(MomentState<D>) -> S);

/// The installed kernels' step where one takes it, else `fallback` (Burn's
/// optimizer) with the arguments untouched.
fn fused_or_fallback<const D: usize, S>(
    (moments, rule): (Moments, AdamRule),
    (lr, tensor, grad, state): StepArgs<D, S>,
    state_moments: StateMoments<D, S>,
    fallback: impl FnOnce(Tensor<D>, Tensor<D>, Option<S>) -> (Tensor<D>, Option<S>),
) -> (Tensor<D>, Option<S>) {
    let (take, wrap) = state_moments;
    let state = state.map(take);
    let (tensor, grad, state) = match installed_step((moments, rule), lr, tensor, grad, state) {
        Ok((tensor, moments)) => return (tensor, Some(wrap(moments))),
        Err(untouched) => *untouched,
    };
    let grad = match &moments.penalty {
        Some(penalty) => penalty.add_to(&tensor, grad),
        None => grad,
    };
    fallback(tensor, grad, state.map(wrap))
}

/// The step by the installed kernels' `adam_update`, on the flattened
/// tensors; the tensors back, unchanged, where no kernel takes them (or the
/// state is AMSGrad's).
fn installed_step<const D: usize>(
    (moments, rule): (Moments, AdamRule),
    lr: LearningRate,
    tensor: Tensor<D>,
    grad: Tensor<D>,
    state: Option<MomentState<D>>,
) -> Result<(Tensor<D>, MomentState<D>), Untouched<D>> {
    if state.as_ref().is_some_and(|s| s.max_moment_2.is_some()) {
        return Err(Box::new((tensor, grad, state)));
    }
    let update = moments.update(rule, state.as_ref().map_or(1, |s| s.time + 1), lr);
    let shape = tensor.shape();
    let flat = [shape.num_elements()];
    let tensors = AdamTensors {
        param: tensor.reshape(flat),
        grad: grad.reshape(flat),
        moments: state.map(|s| AdamMoments {
            moment_1: s.moment_1.reshape(flat),
            moment_2: s.moment_2.reshape(flat),
        }),
    };
    let unflat = |t: Tensor<1>| t.reshape(shape.clone());
    let state = |time, moments: AdamMoments| {
        MomentState::new(time, unflat(moments.moment_1), unflat(moments.moment_2))
    };
    match installed_adam_update(&update, tensors) {
        Ok(done) => Ok((unflat(done.param), state(update.time, done.moments))),
        Err(back) => Err(Box::new((
            unflat(back.param),
            unflat(back.grad),
            back.moments.map(|m| state(update.time - 1, m)),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    /// Without installed kernels (none in this crate's tests) a folded
    /// penalty's gradient is added before Burn's own AdamW step: three
    /// steps give the bits of Burn's AdamW on the gradient plus
    /// `l1 sign(w) + l2 w`, and not those without it.
    #[test]
    fn a_folded_penalty_goes_before_burns_step() {
        let device = Device::flex();
        let fused = FusedAdamW::new(0.9, 0.999, 1e-8, 0.01).with_elastic_net(0.25, 0.5);
        let burn = AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(0.01)
            .build();
        let start = Tensor::<2>::random([4, 6], Distribution::Normal(0.0, 1.0), &device);
        let (mut a, mut b, mut c) = (start.clone(), start.clone() + 0.0, start + 0.0);
        let (mut sa, mut sb, mut sc) = (None, None, None);
        for _ in 0..3 {
            let grad = Tensor::<2>::random([4, 6], Distribution::Normal(0.0, 1.0), &device);
            // The tensor code's order: the penalty's gradient summed first.
            let penalty = b.zeros_like() + b.clone().sign().mul_scalar(0.25);
            let with_penalty = grad.clone() + (penalty + b.clone().mul_scalar(0.5));
            (a, sa) = fused.step(1e-2, a, grad.clone() + 0.0, sa);
            (b, sb) = burn.step(1e-2, b, with_penalty, sb);
            (c, sc) = burn.step(1e-2, c, grad, sc);
        }
        assert_eq!(bits(&a), bits(&b));
        assert_ne!(bits(&a), bits(&c), "the penalty changed nothing");
        let (sa, sb) = (sa.unwrap().momentum, sb.unwrap().momentum);
        assert_eq!(sa.time, 3);
        assert_eq!(bits(&sa.moment_2), bits(&sb.moment_2));
        let _ = sc;
    }

    /// A parameter of another element type goes to Burn's Adam.
    #[test]
    fn other_float_types_fall_back() {
        let device = Device::flex();
        let fused = FusedAdam::new(0.9, 0.999, 1e-8);
        let param = Tensor::<1>::from_data(
            TensorData::new(vec![1.0f64, -2.0], [2]),
            (&device, DType::F64),
        );
        let grad = param.clone().mul_scalar(0.5);
        let (stepped, state) = fused.step(0.1, param, grad, None);
        assert_eq!(state.unwrap().momentum.time, 1);
        let values = stepped.to_data().try_to_vec::<f64>().unwrap();
        // Adam's first step moves each weight by about lr against its gradient's sign.
        assert!((values[0] - 0.9).abs() < 1e-6, "{values:?}");
        assert!((values[1] + 1.9).abs() < 1e-6, "{values:?}");
    }
}
