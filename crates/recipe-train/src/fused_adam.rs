//! Adam with its whole per-parameter update in one pass over memory on the
//! CPU.
//!
//! Burn's Adam updates a parameter with about a dozen separate tensor
//! operations (decay the moments, square the gradient, take the root, divide,
//! scale, subtract), each reading and writing every element and allocating
//! its result. On the 784-512-512-10 MLP of the benchmarks that was 30% of a
//! training step on the CPU (1.45 ms of 4.7 ms at batch 128), while plain SGD
//! cost nearly nothing. [`FusedAdam`] does the same arithmetic, in the same
//! order, in one loop over the parameter, its gradient and both moments, in
//! place. The results are bit for bit those of Burn's Adam (a test below
//! checks it), and the state is Burn's [`AdamState`], so checkpoints are
//! interchangeable.
//!
//! The loop runs where the tensors live in host memory and can be borrowed
//! without a copy: the Flex backend (with this crate's `flex` feature) and
//! `f32` parameters. Everywhere else (a GPU, NdArray, other float types,
//! AMSGrad) each step is handed to Burn's own Adam unchanged.

use burn::optim::{AdamConfig, AdamState, LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

/// Adam whose update runs as one fused, in-place loop on the CPU; see the
/// module documentation. Build it with [`FusedAdam::new`] and turn it into a
/// `ModuleOptimizer` with `.into()`.
#[derive(Clone)]
// Without the `flex` feature only the fallback reads its settings.
#[cfg_attr(not(feature = "flex"), allow(dead_code))]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    /// Burn's Adam with the same settings, for tensors the loop cannot take.
    fallback: burn::optim::Adam,
}

impl FusedAdam {
    /// Adam with decay rates `beta_1`, `beta_2` for the first and second
    /// moments and `epsilon` added to the denominator.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        Self {
            beta_1,
            beta_2,
            epsilon,
            fallback: AdamConfig::new()
                .with_beta_1(beta_1)
                .with_beta_2(beta_2)
                .with_epsilon(epsilon)
                .build(),
        }
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
        #[cfg(feature = "flex")]
        let (tensor, grad, state) = match host::try_step(self, lr, tensor, grad, state) {
            Ok((tensor, state)) => return (tensor, Some(state)),
            Err(untouched) => *untouched,
        };
        self.fallback.step(lr, tensor, grad, state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        burn::optim::Adam::to_device(state, device)
    }
}

/// The fused loop over tensors in Flex's host memory.
#[cfg(feature = "flex")]
mod host {
    use burn::optim::{AdamState, AdaptiveMomentumState, LearningRate};
    use burn::tensor::{DType, Device, Tensor, TensorData};
    use rayon::prelude::*;

    use super::FusedAdam;

    /// Below this many elements a parameter is updated on one thread
    /// (handing work to the thread pool costs more than it saves).
    const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

    /// The per-step constants of Adam, computed exactly as Burn computes them.
    #[derive(Debug, Clone, Copy)]
    struct StepFactors {
        /// The moments start from the gradient instead of decaying: Burn does
        /// not decay zeros on the first step, which matters for the sign of
        /// zero.
        first: bool,
        beta_1: f32,
        beta_2: f32,
        one_minus_beta_1: f32,
        one_minus_beta_2: f32,
        /// `sqrt(1 - beta_2^t) / (1 - beta_1^t)`.
        combined: f32,
        /// `epsilon * sqrt(1 - beta_2^t)`.
        epsilon: f32,
        learning_rate: f32,
    }

    impl StepFactors {
        fn new(adam: &FusedAdam, time: usize, learning_rate: LearningRate) -> Self {
            let t = time as i32;
            let bias_correction2_sqrt = (1.0 - adam.beta_2.powi(t)).sqrt();
            Self {
                first: time == 1,
                beta_1: adam.beta_1,
                beta_2: adam.beta_2,
                one_minus_beta_1: 1.0 - adam.beta_1,
                one_minus_beta_2: 1.0 - adam.beta_2,
                combined: bias_correction2_sqrt / (1.0 - adam.beta_1.powi(t)),
                epsilon: adam.epsilon * bias_correction2_sqrt,
                learning_rate: learning_rate as f32,
            }
        }
    }

    /// The four arrays of one parameter (or one stretch of it), all of one
    /// length.
    struct Buffers<'a> {
        param: &'a mut [f32],
        grad: &'a [f32],
        moment_1: &'a mut [f32],
        moment_2: &'a mut [f32],
    }

    /// One Adam update of `b`. The operations and their order are Burn's, so
    /// the results are identical.
    #[inline(always)]
    fn update(f: &StepFactors, b: Buffers<'_>) {
        let n = b.param.len();
        let (grad, moment_1, moment_2) = (&b.grad[..n], &mut b.moment_1[..n], &mut b.moment_2[..n]);
        for i in 0..n {
            let g = grad[i];
            let (m, v) = if f.first {
                (g * f.one_minus_beta_1, (g * g) * f.one_minus_beta_2)
            } else {
                (
                    moment_1[i] * f.beta_1 + g * f.one_minus_beta_1,
                    moment_2[i] * f.beta_2 + (g * g) * f.one_minus_beta_2,
                )
            };
            moment_1[i] = m;
            moment_2[i] = v;
            let step = (m * f.combined) / (v.sqrt() + f.epsilon);
            b.param[i] -= step * f.learning_rate;
        }
    }

    /// [`update`], also compiled for AVX2 and picked at run time where the
    /// CPU has it (wider vectors; Rust never contracts `a * b + c` into an
    /// FMA, so the results do not change).
    fn update_dispatch(f: &StepFactors, b: Buffers<'_>) {
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
        b.param
            .par_chunks_mut(chunk)
            .zip(b.grad.par_chunks(chunk))
            .zip(b.moment_1.par_chunks_mut(chunk))
            .zip(b.moment_2.par_chunks_mut(chunk))
            .for_each(|(((param, grad), moment_1), moment_2)| {
                update_dispatch(
                    f,
                    Buffers {
                        param,
                        grad,
                        moment_1,
                        moment_2,
                    },
                )
            });
    }

    /// Whether the loop can take a parameter on `device`: host memory that
    /// Flex hands out without a copy.
    pub(super) fn applies_on(device: &Device) -> bool {
        device.clone().inner() == Device::flex()
    }

    /// The arguments of a step handed back untouched (boxed: three tensors
    /// make a large `Err`).
    type Untouched<const D: usize> = Box<(Tensor<D>, Tensor<D>, Option<AdamState<D>>)>;

    /// The fused step, or the arguments back, untouched, when it does not
    /// apply.
    pub(super) fn try_step<const D: usize>(
        adam: &FusedAdam,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<AdamState<D>>,
    ) -> Result<(Tensor<D>, AdamState<D>), Untouched<D>> {
        let all_f32 = tensor.dtype() == DType::F32
            && grad.dtype() == DType::F32
            && state.as_ref().is_none_or(|s| {
                s.momentum.moment_1.dtype() == DType::F32
                    && s.momentum.moment_2.dtype() == DType::F32
                    && s.momentum.max_moment_2.is_none()
            });
        let device = tensor.device();
        if !all_f32 || !applies_on(&device) || tensor.shape() != grad.shape() {
            return Err(Box::new((tensor, grad, state)));
        }
        let shape = tensor.shape();
        // Zero-copy where Flex holds the only reference, a copy otherwise.
        let mut param = tensor.into_data();
        let mut grad_data = grad.into_data();
        let (time, mut moment_1, mut moment_2) = match state {
            Some(state) => (
                state.momentum.time + 1,
                state.momentum.moment_1.into_data(),
                state.momentum.moment_2.into_data(),
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
                update_all(&StepFactors::new(adam, time, lr), buffers);
                true
            }
            _ => false,
        };
        let rebuild = |data: TensorData| Tensor::<D>::from_data(data, (&device, DType::F32));
        if !applied {
            // Nothing was written: Burn's Adam gets the values as they were.
            let state = (time > 1).then(|| {
                AdamState::new(AdaptiveMomentumState::new(
                    time - 1,
                    rebuild(moment_1),
                    rebuild(moment_2),
                ))
            });
            return Err(Box::new((rebuild(param), rebuild(grad_data), state)));
        }
        let state = AdamState::new(AdaptiveMomentumState::new(
            time,
            rebuild(moment_1),
            rebuild(moment_2),
        ));
        Ok((rebuild(param), state))
    }
}

#[cfg(all(test, feature = "flex"))]
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
                "{what}: element {i} is {} fused, {} in Burn's Adam ({} of {} elements differ)",
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

    /// Five steps of both optimizers from the same weights and gradients
    /// (one small tensor on one thread, one large enough to be split across
    /// threads, one with zeros of both signs in the gradient) end in the
    /// same bits, and so do the moments.
    #[test]
    fn matches_burns_adam_bit_for_bit() {
        let device = Device::flex();
        device.seed(7);
        let fused = FusedAdam::new(0.9, 0.999, 1e-8);
        let burn_adam = AdamConfig::new()
            .with_beta_1(0.9)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .build();
        for shape in [[3, 5], [300, 512]] {
            let start = random(shape, &device);
            let (mut a, mut b) = (start.clone(), start.clone() + 0.0);
            let (mut state_a, mut state_b) = (None, None);
            for step in 0..5 {
                let mut grad = random(shape, &device);
                if step == 1 {
                    grad = grad.mul_scalar(0.0); // +0 and -0 alike
                }
                let (next_a, next_state_a) = fused.step(1e-3, a, grad.clone(), state_a);
                let (next_b, next_state_b) = burn_adam.step(1e-3, b, grad.clone() + 0.0, state_b);
                (a, b, state_a, state_b) = (next_a, next_b, next_state_a, next_state_b);
                assert_same_bits(&a, &b, &format!("weights, shape {shape:?}, step {step}"));
            }
            let (sa, sb) = (state_a.unwrap().momentum, state_b.unwrap().momentum);
            assert_eq!(sa.time, sb.time);
            assert_same_bits(&sa.moment_1, &sb.moment_1, "first moment");
            assert_same_bits(&sa.moment_2, &sb.moment_2, "second moment");
            assert_ne!(bits(&a), bits(&start), "the weights moved");
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
