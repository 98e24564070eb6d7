//! Adam and AdamW with their whole per-parameter update in one pass over
//! memory on the CPU.
//!
//! Burn's Adam updates a parameter with about a dozen separate tensor
//! operations (decay the moments, square the gradient, take the root, divide,
//! scale, subtract), each reading and writing every element and allocating
//! its result. On the 784-512-512-10 MLP of the benchmarks that was 30% of a
//! training step on the CPU (1.45 ms of 4.7 ms at batch 128), while plain SGD
//! cost nearly nothing. [`FusedAdam`] and [`FusedAdamW`] do the same
//! arithmetic as Burn's `Adam` and `AdamW`, in the same order, in one loop
//! over the parameter, its gradient and both moments, in place. The results
//! are bit for bit Burn's (tests below check it), and the states are Burn's
//! [`AdamState`] and [`AdamWState`], so checkpoints are interchangeable.
//!
//! The loop runs where the tensors live in host memory and can be borrowed
//! without a copy: the Flex backend and `f32` parameters. Everywhere else
//! the installed optimizer kernels are asked first
//! ([`recipe_train::OptimizerKernels::adam_update`]: recipe-cube's one
//! kernel on a GPU), and where none takes the step (NdArray, other float
//! types, AMSGrad) it is handed to Burn's own optimizer unchanged. The
//! constants of each update come from [`recipe_train::AdamUpdate::factors`],
//! which the GPU kernel uses too.

use burn::optim::{
    AdamConfig, AdamState, AdamWConfig, AdamWState, AdaptiveMomentumState, LearningRate, Optimizer,
};
use burn::tensor::{Device, Tensor};
use recipe_train::{AdamMoments, AdamRule, AdamTensors, AdamUpdate, installed_adam_update};

use crate::elastic_net::Penalty;

/// The moment settings both optimizers share.
#[derive(Debug, Clone, Copy)]
struct Moments {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// An L1/L2 penalty whose gradient each step adds to the loss's.
    penalty: Option<Penalty>,
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

/// Adam whose update runs as one fused, in-place loop on the CPU; see the
/// module documentation. Build it with [`FusedAdam::new`] and turn it into a
/// `ModuleOptimizer` with `.into()`.
#[derive(Clone)]
pub struct FusedAdam {
    moments: Moments,
    /// Burn's Adam with the same settings, for tensors the loop cannot take.
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
    /// parameter's gradient inside the update loop, as
    /// [`FusedSgd::with_elastic_net`](crate::FusedSgd::with_elastic_net).
    pub fn with_elastic_net(mut self, l1: f64, l2: f64) -> Self {
        self.moments.penalty = Some(Penalty::new(l1, l2));
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

/// AdamW (decoupled weight decay) whose update runs as one fused, in-place
/// loop on the CPU; see the module documentation.
#[derive(Clone)]
pub struct FusedAdamW {
    moments: Moments,
    /// `AdamRule::AdamW` with its weight decay.
    rule: AdamRule,
    /// Burn's AdamW with the same settings, for tensors the loop cannot take.
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
    /// The same AdamW with an L1/L2 penalty's gradient added in its loop, as
    /// [`FusedAdam::with_elastic_net`].
    pub fn with_elastic_net(mut self, l1: f64, l2: f64) -> Self {
        self.moments.penalty = Some(Penalty::new(l1, l2));
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

/// The arguments of one optimizer step: learning rate, weights, gradient,
/// state.
type StepArgs<const D: usize, S> = (LearningRate, Tensor<D>, Tensor<D>, Option<S>);

/// How to take the moments out of an optimizer's state `S` and put them back.
type StateMoments<const D: usize, S> = (fn(S) -> MomentState<D>, fn(MomentState<D>) -> S);

/// The fused step where it applies, else `fallback` (Burn's optimizer) with
/// the arguments untouched.
fn fused_or_fallback<const D: usize, S>(
    (moments, rule): (Moments, AdamRule),
    (lr, tensor, grad, state): StepArgs<D, S>,
    state_moments: StateMoments<D, S>,
    fallback: impl FnOnce(Tensor<D>, Tensor<D>, Option<S>) -> (Tensor<D>, Option<S>),
) -> (Tensor<D>, Option<S>) {
    let (take, wrap) = state_moments;
    let state = state.map(take);
    let (tensor, grad, state) = match host::try_step(moments, rule, lr, tensor, grad, state) {
        Ok((tensor, moments)) => return (tensor, Some(wrap(moments))),
        Err(untouched) => *untouched,
    };
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

/// The step by the installed kernels'
/// [`recipe_train::OptimizerKernels::adam_update`] (e.g. recipe-cube's one
/// kernel on a GPU), for tensors the loop cannot take; the tensors back,
/// unchanged, where no kernel takes them.
fn installed_step<const D: usize>(
    (moments, rule): (Moments, AdamRule),
    lr: LearningRate,
    tensor: Tensor<D>,
    grad: Tensor<D>,
    state: Option<MomentState<D>>,
) -> Result<(Tensor<D>, MomentState<D>), host::Untouched<D>> {
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

/// The fused loop over tensors in Flex's host memory.
mod host {
    use burn::optim::{AdaptiveMomentumState, LearningRate};
    use burn::tensor::{DType, Device, Tensor, TensorData};

    use recipe_train::{AdamFactors, AdamRule, AdamRuleFactors};

    use super::{MomentState, Moments};
    use crate::elastic_net::{self, Strengths};

    /// Below this many elements a parameter is updated on one thread
    /// (handing work to the thread pool costs more than it saves).
    const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

    /// The per-step constants of the rule, computed exactly as Burn
    /// computes them, and the penalty.
    #[derive(Debug, Clone, Copy)]
    struct StepFactors {
        adam: AdamFactors,
        /// Added to the gradient first, block by block.
        penalty: Option<Strengths>,
    }

    impl StepFactors {
        fn new(moments: Moments, rule: AdamRule, time: usize, learning_rate: LearningRate) -> Self {
            Self {
                adam: moments.update(rule, time, learning_rate).factors(),
                penalty: moments.penalty.map(|p| p.strengths),
            }
        }
    }

    /// The four arrays of one parameter (or one stretch of it), all of one
    /// length.
    struct Buffers<'a> {
        param: &'a mut [f32],
        grad: &'a mut [f32],
        moment_1: &'a mut [f32],
        moment_2: &'a mut [f32],
    }

    /// One update of `b`. The operations and their order are Burn's, so the
    /// results are identical.
    #[inline(always)]
    fn update(f: &StepFactors, b: Buffers<'_>) {
        if let Some(penalty) = f.penalty {
            elastic_net::add_gradient(b.param, b.grad, penalty);
        }
        let n = b.param.len();
        let (grad, moment_1, moment_2) = (&b.grad[..n], &mut b.moment_1[..n], &mut b.moment_2[..n]);
        let adam = &f.adam;
        match adam.rule {
            AdamRuleFactors::Adam(step) => {
                for i in 0..n {
                    let (m, v) = adam.moments(grad[i], moment_1[i], moment_2[i]);
                    moment_1[i] = m;
                    moment_2[i] = v;
                    b.param[i] = step.weight(b.param[i], m, v, adam.learning_rate);
                }
            }
            AdamRuleFactors::AdamW(step) => {
                for i in 0..n {
                    let (m, v) = adam.moments(grad[i], moment_1[i], moment_2[i]);
                    moment_1[i] = m;
                    moment_2[i] = v;
                    b.param[i] = step.weight(b.param[i], m, v, adam.learning_rate);
                }
            }
        }
    }

    /// [`update`], also compiled for AVX2 and picked at run time where the
    /// CPU has it (wider vectors; Rust never contracts `a * b + c` into an
    /// FMA, so the results do not change).
    fn update_simd(f: &StepFactors, b: Buffers<'_>) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[target_feature(enable = "avx2")]
            fn update_avx2(f: &StepFactors, b: Buffers<'_>) {
                update(f, b)
            }
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { update_avx2(f, b) };
        }
        update(f, b)
    }

    /// [`update_simd`] on all of `b`, or block by block with a penalty (its
    /// gradient added to a block that is then updated while in the cache).
    fn update_dispatch(f: &StepFactors, b: Buffers<'_>) {
        if f.penalty.is_none() {
            return update_simd(f, b);
        }
        const BLOCK: usize = 4096;
        let blocks = b
            .param
            .chunks_mut(BLOCK)
            .zip(b.grad.chunks_mut(BLOCK))
            .zip(b.moment_1.chunks_mut(BLOCK))
            .zip(b.moment_2.chunks_mut(BLOCK));
        for (((param, grad), moment_1), moment_2) in blocks {
            let block = Buffers {
                param,
                grad,
                moment_1,
                moment_2,
            };
            update_simd(f, block);
        }
    }

    /// The update of a whole parameter, split across the thread pool when it
    /// is large.
    fn update_all(f: &StepFactors, b: Buffers<'_>) {
        if b.param.len() < PARALLEL_MIN_ELEMENTS {
            return update_dispatch(f, b);
        }
        let chunk = b
            .param
            .len()
            .div_ceil(rayon::current_num_threads())
            .max(4096);
        let parts = b
            .param
            .chunks_mut(chunk)
            .zip(b.grad.chunks_mut(chunk))
            .zip(b.moment_1.chunks_mut(chunk))
            .zip(b.moment_2.chunks_mut(chunk))
            .map(|(((param, grad), moment_1), moment_2)| Buffers {
                param,
                grad,
                moment_1,
                moment_2,
            })
            .collect();
        crate::spin_pool::for_each(parts, |part| update_dispatch(f, part));
    }

    /// Whether the loop can take a parameter on `device`: host memory that
    /// Flex hands out without a copy.
    pub(super) fn applies_on(device: &Device) -> bool {
        device.clone().inner() == Device::flex()
    }

    /// The arguments of a step handed back untouched (boxed: three tensors
    /// make a large `Err`).
    pub(super) type Untouched<const D: usize> = Box<(Tensor<D>, Tensor<D>, Option<MomentState<D>>)>;

    /// The fused step, or the arguments back, untouched, when it does not
    /// apply.
    pub(super) fn try_step<const D: usize>(
        moments: Moments,
        rule: AdamRule,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<MomentState<D>>,
    ) -> Result<(Tensor<D>, MomentState<D>), Untouched<D>> {
        let all_f32 = tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && state.as_ref().is_none_or(|s| {
                s.moment_1.dtype() == DType::F32
                    && s.moment_2.dtype() == DType::F32
                    && s.max_moment_2.is_none()
            });
        let device = tensor.device();
        let shape = tensor.shape();
        if !all_f32 || !applies_on(&device) || shape != grad.shape() {
            return Err(Box::new((tensor, grad, state)));
        }
        // Zero-copy where Flex holds the only reference, a copy otherwise.
        let mut param = tensor.into_data();
        let mut grad_data = grad.into_data();
        let (time, mut moment_1, mut moment_2) = match state {
            Some(state) => (
                state.time + 1,
                state.moment_1.into_data(),
                state.moment_2.into_data(),
            ),
            None => {
                let zeros = || TensorData::new(vec![0.0f32; shape.num_elements()], shape.clone());
                (1, zeros(), zeros())
            }
        };
        let applied = match (
            param.as_mut_slice::<f32>(),
            grad_data.as_mut_slice::<f32>(),
            moment_1.as_mut_slice::<f32>(),
            moment_2.as_mut_slice::<f32>(),
        ) {
            (Ok(param), Ok(grad), Ok(moment_1), Ok(moment_2))
                if grad.len() == param.len()
                    && moment_1.len() == param.len()
                    && moment_2.len() == param.len() =>
            {
                let buffers = Buffers {
                    param,
                    grad,
                    moment_1,
                    moment_2,
                };
                update_all(&StepFactors::new(moments, rule, time, lr), buffers);
                true
            }
            _ => false,
        };
        let rebuild = |data: TensorData| Tensor::<D>::from_data(data, (&device, DType::F32));
        if !applied {
            // Nothing was written: Burn's optimizer gets the values as they were.
            let state = (time > 1).then(|| {
                AdaptiveMomentumState::new(time - 1, rebuild(moment_1), rebuild(moment_2))
            });
            return Err(Box::new((rebuild(param), rebuild(grad_data), state)));
        }
        let state = AdaptiveMomentumState::new(time, rebuild(moment_1), rebuild(moment_2));
        Ok((rebuild(param), state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{DType, Distribution, TensorData};

    fn random(shape: [usize; 2], device: &Device) -> Tensor<2> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    fn bits(tensor: &Tensor<2>) -> Vec<u32> {
        tensor
            .to_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect()
    }

    /// Panics at the first element whose bits differ, naming it.
    fn assert_same_bits(fused: &Tensor<2>, burn: &Tensor<2>, what: &str) {
        let (fused, burn) = (bits(fused), bits(burn));
        assert_eq!(fused.len(), burn.len(), "{what}: element count");
        if let Some(i) = (0..fused.len()).find(|&i| fused[i] != burn[i]) {
            panic!(
                "{what}: element {i} is {} fused, {} in Burn's ({} of {} elements differ)",
                f32::from_bits(fused[i]),
                f32::from_bits(burn[i]),
                (0..fused.len()).filter(|&i| fused[i] != burn[i]).count(),
                fused.len()
            );
        }
    }

    #[test]
    fn the_fused_loop_runs_on_flex() {
        assert!(host::applies_on(&Device::flex()));
        assert!(host::applies_on(&Device::flex().autodiff()));
    }

    /// Five steps of `fused` and of Burn's `burn` from the same weights and
    /// gradients (one small tensor on one thread, one large enough to be
    /// split across threads, zeros of both signs in one step's gradient) end
    /// in the same bits, and so do the moments.
    fn assert_same_steps<A: Optimizer, B: Optimizer>(
        fused: &A,
        burn: &B,
        fused_moments: fn(A::State<2>) -> AdaptiveMomentumState<2>,
        burn_moments: fn(B::State<2>) -> AdaptiveMomentumState<2>,
    ) {
        let device = Device::flex();
        device.seed(7);
        for shape in [[3, 5], [300, 512]] {
            let start = random(shape, &device);
            // `+ 0.0` gives Burn's side a buffer of its own.
            let (mut a, mut b) = (start.clone(), start.clone() + 0.0);
            let (mut state_a, mut state_b) = (None, None);
            for step in 0..5 {
                let mut grad = random(shape, &device);
                if step == 1 {
                    grad = grad.mul_scalar(0.0); // +0 and -0 alike
                }
                let (next_a, next_state_a) = fused.step(1e-3, a, grad.clone(), state_a);
                let (next_b, next_state_b) = burn.step(1e-3, b, grad.clone() + 0.0, state_b);
                (a, b, state_a, state_b) = (next_a, next_b, next_state_a, next_state_b);
                assert_same_bits(&a, &b, &format!("weights, shape {shape:?}, step {step}"));
            }
            let sa = fused_moments(state_a.unwrap());
            let sb = burn_moments(state_b.unwrap());
            assert_eq!(sa.time, sb.time);
            assert_same_bits(&sa.moment_1, &sb.moment_1, "first moment");
            assert_same_bits(&sa.moment_2, &sb.moment_2, "second moment");
            assert_ne!(bits(&a), bits(&start), "the weights moved");
        }
    }

    #[test]
    fn matches_burns_adam_bit_for_bit() {
        let burn_adam = AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .build();
        assert_same_steps(
            &FusedAdam::new(0.9, 0.999, 1e-8),
            &burn_adam,
            |s| s.momentum,
            |s| s.momentum,
        );
    }

    /// With weight decay, and without (Burn skips the decay when
    /// `lr * weight_decay` is 0).
    #[test]
    fn matches_burns_adamw_bit_for_bit() {
        for weight_decay in [0.01, 0.0] {
            let burn_adamw = AdamWConfig::new()
                .with_beta_1(0.9)
                .with_beta_2(0.999)
                .with_epsilon(1e-8)
                .with_weight_decay(weight_decay)
                .build();
            assert_same_steps(
                &FusedAdamW::new(0.9, 0.999, 1e-8, weight_decay),
                &burn_adamw,
                |s| s.momentum,
                |s| s.momentum,
            );
        }
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
