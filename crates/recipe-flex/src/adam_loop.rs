//! Adam's and AdamW's update (a folded L1/L2 penalty included) as one
//! in-place loop over Flex's host memory: [`FlexKernels`](crate::FlexKernels)'
//! `adam_update`, which recipe-train's `FusedAdam` and `FusedAdamW` ask for
//! every parameter.
//!
//! Burn's Adam updates a parameter with about a dozen tensor operations,
//! each reading and writing every element and allocating its result (30% of
//! a training step of the benchmarks' 784-512-512-10 MLP on the CPU). The
//! loop does the same arithmetic, with the constants of
//! [`AdamUpdate::factors`] in Burn's order of operations, in one pass over
//! the parameter, its gradient and both moments, in place (the weights
//! into a new buffer where another holder shares theirs:
//! [`ParamValues`]): bit for bit Burn's (tests below).

use burn::tensor::{DType, Device, Tensor, TensorData};
use recipe_train::{
    AdamFactors, AdamMoments, AdamRuleFactors, AdamTensors, AdamUpdate, AdamUpdated,
};

use crate::elastic_net::{self, Strengths};
use crate::param_values::{ParamValues, Weights};
use crate::simd::simd_dispatch;

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
    fn of(update: &AdamUpdate) -> Self {
        Self {
            adam: update.factors(),
            penalty: Strengths::folded(update.l1, update.l2),
        }
    }
}

/// The four arrays of one parameter (or one stretch of it), all of one
/// length.
struct Buffers<'a> {
    param: Weights<'a>,
    grad: &'a [f32],
    moment_1: &'a mut [f32],
    moment_2: &'a mut [f32],
}

/// One update of `b`, a folded penalty's gradient added to each gradient
/// as it is read (one pass: the gradient is not written back). The
/// operations and their order are Burn's, so the results are identical.
#[inline(always)]
fn update(f: &StepFactors, b: Buffers<'_>) {
    match f.penalty {
        Some(penalty) => update_with(
            f,
            b,
            #[inline(always)]
            |w, g| g + elastic_net::penalty_gradient(w, penalty),
        ),
        None => update_with(
            f,
            b,
            #[inline(always)]
            |_, g| g,
        ),
    }
}

/// [`update`] with `gradient(w, g)` as each weight's gradient.
#[inline(always)]
fn update_with(f: &StepFactors, b: Buffers<'_>, gradient: impl Fn(f32, f32) -> f32) {
    let n = b.param.len();
    let (grad, moment_1, moment_2) = (&b.grad[..n], &mut b.moment_1[..n], &mut b.moment_2[..n]);
    let adam = &f.adam;
    match adam.rule {
        AdamRuleFactors::Adam(step) => b.param.rewrite(
            #[inline(always)]
            |i, w| {
                let g = gradient(w, grad[i]);
                let (m, v) = adam.moments(g, moment_1[i], moment_2[i]);
                moment_1[i] = m;
                moment_2[i] = v;
                step.weight(w, m, v, adam.learning_rate)
            },
        ),
        AdamRuleFactors::AdamW(step) => b.param.rewrite(
            #[inline(always)]
            |i, w| {
                let g = gradient(w, grad[i]);
                let (m, v) = adam.moments(g, moment_1[i], moment_2[i]);
                moment_1[i] = m;
                moment_2[i] = v;
                step.weight(w, m, v, adam.learning_rate)
            },
        ),
    }
}

simd_dispatch! {
    /// [`update`], compiled for the widest vectors the CPU has
    /// (`crate::simd`; Rust never contracts `a * b + c` into an FMA, so
    /// the width does not change the results).
    fn update_simd / update_at [](f: &StepFactors, b: Buffers<'_>) => update
}

/// The update of a whole parameter, split across the thread pool when it
/// is large.
fn update_all(f: &StepFactors, b: Buffers<'_>) {
    if b.param.len() < PARALLEL_MIN_ELEMENTS {
        return update_simd(f, b);
    }
    let chunk = b
        .param
        .len()
        .div_ceil(rayon::current_num_threads())
        .max(4096);
    let parts = b
        .param
        .chunks(chunk)
        .into_iter()
        .zip(b.grad.chunks(chunk))
        .zip(b.moment_1.chunks_mut(chunk))
        .zip(b.moment_2.chunks_mut(chunk))
        .map(|(((param, grad), moment_1), moment_2)| Buffers {
            param,
            grad,
            moment_1,
            moment_2,
        })
        .collect();
    crate::spin_pool::for_each(parts, |part| update_simd(f, part));
}

/// Whether the loop can take a parameter on `device`: host memory that
/// Flex hands out without a copy.
fn applies_on(device: &Device) -> bool {
    device.clone().inner() == Device::flex()
}

/// The update in the loop, or the tensors back, untouched, when it does
/// not apply (another device, another element type, lengths that differ).
pub(crate) fn adam_update(
    update: &AdamUpdate,
    tensors: AdamTensors,
) -> Result<AdamUpdated, Box<AdamTensors>> {
    let n = tensors.param.dims()[0];
    let fits = |t: &Tensor<1>| t.dtype() == DType::F32 && t.dims()[0] == n;
    let takes = fits(&tensors.param)
        && fits(&tensors.grad)
        && tensors
            .moments
            .as_ref()
            .is_none_or(|m| fits(&m.moment_1) && fits(&m.moment_2))
        && applies_on(&tensors.param.device());
    if !takes {
        return Err(Box::new(tensors));
    }
    let device = tensors.param.device();
    let had_moments = tensors.moments.is_some();
    // The gradient and the moments: zero-copy where Flex holds the only
    // reference (as it does), a copy otherwise; the weights are read where
    // they are shared (`ParamValues`).
    let mut param = ParamValues::of(tensors.param);
    let grad = tensors.grad.into_data();
    let (mut moment_1, mut moment_2) = match tensors.moments {
        Some(moments) => (moments.moment_1.into_data(), moments.moment_2.into_data()),
        None => {
            let zeros = || TensorData::new(vec![0.0f32; n], [n]);
            (zeros(), zeros())
        }
    };
    let applied = match (
        param.weights(),
        grad.as_slice::<f32>(),
        moment_1.as_mut_slice::<f32>(),
        moment_2.as_mut_slice::<f32>(),
    ) {
        (Some(param), Ok(grad), Ok(moment_1), Ok(moment_2)) => {
            let buffers = Buffers {
                param,
                grad,
                moment_1,
                moment_2,
            };
            update_all(&StepFactors::of(update), buffers);
            true
        }
        _ => false,
    };
    let rebuild = |data: TensorData| Tensor::<1>::from_data(data, (&device, DType::F32));
    let moments = AdamMoments {
        moment_1: rebuild(moment_1),
        moment_2: rebuild(moment_2),
    };
    if !applied {
        // Nothing was written: the next kernel gets the values as they were.
        return Err(Box::new(AdamTensors {
            param: param.into_unchanged(&device),
            grad: rebuild(grad),
            moments: had_moments.then_some(moments),
        }));
    }
    // SAFETY: `update_all` rewrote every weight of `param.weights()`, on
    // the whole view or on pieces that cover it.
    let param = unsafe { param.into_written(&device) };
    Ok(AdamUpdated { param, moments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamConfig, AdamWConfig, AdaptiveMomentumState, Optimizer};
    use burn::tensor::Distribution;
    use recipe_train::AdamRule;

    fn bits(tensor: &Tensor<1>) -> Vec<u32> {
        tensor
            .to_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect()
    }

    /// Panics at the first element whose bits differ, naming it.
    fn assert_same_bits(fused: &Tensor<1>, burn: &Tensor<1>, what: &str) {
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
    fn the_loop_runs_on_flex() {
        assert!(applies_on(&Device::flex()));
        assert!(applies_on(&Device::flex().autodiff()));
    }

    /// Update `time` of the loop (rule `rule`, learning rate 1e-3, Burn's
    /// default betas and epsilon, a folded `l1`/`l2`) on `param`, whose
    /// gradient is a copy of `grad`.
    fn loop_step(
        rule: AdamRule,
        (l1, l2): (f32, f32),
        time: usize,
        (param, grad, moments): (Tensor<1>, &Tensor<1>, Option<AdamMoments>),
    ) -> (Tensor<1>, Option<AdamMoments>) {
        let update = AdamUpdate {
            learning_rate: 1e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            time,
            rule,
            l1,
            l2,
        };
        let tensors = AdamTensors {
            param,
            grad: grad.clone() + 0.0,
            moments,
        };
        let done = adam_update(&update, tensors).expect("the loop takes Flex f32");
        (done.param, Some(done.moments))
    }

    /// Five updates by the loop (rule `rule`) and by Burn's `burn` from the
    /// same weights and gradients (one small tensor on one thread, one
    /// large enough to be split across threads, zeros of both signs in one
    /// step's gradient) end in the same bits, and so do the moments; also
    /// when, as in Burn's `Learner`, another holder keeps the weights each
    /// step hands in (whose values the loop leaves as they were).
    fn assert_same_steps<B: Optimizer>(
        rule: AdamRule,
        burn: &B,
        burn_moments: fn(B::State<1>) -> AdaptiveMomentumState<1>,
    ) {
        let device = Device::flex();
        device.seed(7);
        for (n, shared) in [
            (15, false),
            (300 * 512, false),
            (15, true),
            (300 * 512, true),
        ] {
            let start = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
            // `+ 0.0` gives Burn's side a buffer of its own.
            let (mut a, mut b) = (start.clone(), start.clone() + 0.0);
            let (mut moments, mut state_b) = (None, None);
            for step in 0..5 {
                let mut grad = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
                if step == 1 {
                    grad = grad.mul_scalar(0.0); // +0 and -0 alike
                }
                let holder = shared.then(|| (a.clone(), bits(&a)));
                (a, moments) = loop_step(rule, (0.0, 0.0), step + 1, (a, &grad, moments));
                (b, state_b) = burn.step(1e-3, b, grad + 0.0, state_b);
                let what = format!("weights, {n} elements, shared {shared}, step {step}");
                assert_same_bits(&a, &b, &what);
                if let Some((holder, before)) = holder {
                    assert_eq!(bits(&holder), before, "the holder's weights, {what}");
                }
            }
            let (ours, burns) = (moments.unwrap(), burn_moments(state_b.unwrap()));
            assert_eq!(burns.time, 5);
            assert_same_bits(&ours.moment_1, &burns.moment_1, "first moment");
            assert_same_bits(&ours.moment_2, &burns.moment_2, "second moment");
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
        assert_same_steps(AdamRule::Adam, &burn_adam, |s| s.momentum);
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
            assert_same_steps(AdamRule::AdamW { weight_decay }, &burn_adamw, |s| {
                s.momentum
            });
        }
    }

    /// With an L1 + L2 penalty folded in (its gradient added to each
    /// gradient as the loop reads it), the same bits as recipe-train's
    /// `FusedAdam` and `FusedAdamW` where no kernel is installed (the
    /// tensor code: the penalty's gradient added first, then Burn's
    /// arithmetic), on one thread and split across threads, zeros of both
    /// signs among the weights.
    #[test]
    fn a_folded_penalty_matches_the_tensor_code() {
        let device = Device::flex();
        let rules = [AdamRule::Adam, AdamRule::AdamW { weight_decay: 0.01 }];
        for rule in rules {
            let (l1, l2) = (1e-3, 1e-2);
            for (n, shared) in [(15, false), (300 * 512, false), (300 * 512, true)] {
                let mut values = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device)
                    .into_data()
                    .try_to_vec::<f32>()
                    .unwrap();
                values[0] = 0.0;
                values[1] = -0.0;
                let start = Tensor::<1>::from_data(TensorData::new(values, [n]), &device);
                let (mut a, mut b) = (start.clone(), start + 0.0);
                let mut moments: Option<AdamMoments> = None;
                let mut adam_state = None;
                let mut adamw_state = None;
                for time in 1..=3 {
                    let grad = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
                    let strengths = (l1 as f32, l2 as f32);
                    // As in Burn's `Learner`, someone else may hold the weights.
                    let _holder = shared.then(|| a.clone());
                    (a, moments) = loop_step(rule, strengths, time, (a, &grad, moments));
                    match rule {
                        AdamRule::Adam => {
                            let reference = recipe_train::FusedAdam::new(0.9, 0.999, 1e-8)
                                .with_elastic_net(l1, l2);
                            (b, adam_state) = reference.step(1e-3, b, grad, adam_state);
                        }
                        AdamRule::AdamW { weight_decay } => {
                            let reference =
                                recipe_train::FusedAdamW::new(0.9, 0.999, 1e-8, weight_decay)
                                    .with_elastic_net(l1, l2);
                            (b, adamw_state) = reference.step(1e-3, b, grad, adamw_state);
                        }
                    }
                    let what = format!("{rule:?}, {n} elements, shared {shared}, update {time}");
                    assert_same_bits(&a, &b, &what);
                }
            }
        }
    }

    /// `f64` tensors are handed back untouched, without moments before the
    /// first update.
    #[test]
    fn other_float_types_are_handed_back() {
        let device = Device::flex();
        let param = Tensor::<1>::from_data(
            TensorData::new(vec![1.0f64, -2.0], [2]),
            (&device, DType::F64),
        );
        let update = AdamUpdate {
            learning_rate: 0.1,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            time: 1,
            rule: AdamRule::Adam,
            l1: 0.0,
            l2: 0.0,
        };
        let tensors = AdamTensors {
            param: param.clone(),
            grad: param.clone(),
            moments: None,
        };
        let back = adam_update(&update, tensors).expect_err("f64 is not the loop's");
        assert_eq!(back.param.to_data(), param.to_data());
        assert!(back.moments.is_none());
    }
}
