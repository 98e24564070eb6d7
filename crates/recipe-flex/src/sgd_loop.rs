//! SGD's update (momentum, Nesterov, a folded L1/L2 penalty) as one
//! in-place loop over Flex's host memory:
//! [`FlexKernels`](crate::FlexKernels)' `sgd_update`, which recipe-train's
//! `FusedSgd` asks for every parameter.
//!
//! Burn's SGD with momentum updates a parameter with five tensor operations,
//! each reading and writing every element and allocating its result. The
//! loop does the same arithmetic, in the same order, in one pass over the
//! parameter, its gradient and its velocity, in place (the first step's
//! velocity is the gradient's own buffer; the weights go into a new buffer
//! where another holder shares theirs: [`ParamValues`]): bit for bit
//! Burn's (tests below).

use burn::tensor::{DType, Device, Tensor, TensorData};
use recipe_train::{SgdMomentum, SgdTensors, SgdUpdate, SgdUpdated};

use crate::elastic_net::{self, Strengths};
use crate::param_values::{ParamValues, Weights};
use crate::simd::simd_dispatch;

/// What one step of the loop does.
#[derive(Debug, Clone, Copy)]
struct Rule {
    momentum: Option<SgdMomentum>,
    /// Added to the gradient first, block by block.
    penalty: Option<Strengths>,
}

impl Rule {
    fn of(update: &SgdUpdate) -> Self {
        Self {
            momentum: update.momentum,
            penalty: Strengths::folded(update.l1, update.l2),
        }
    }
}

/// With a penalty, a parameter is updated in blocks this long: the
/// penalty's gradient is added to a block and the block updated while
/// it is still in the cache.
const BLOCK: usize = 4096;

/// Below this many elements a parameter is updated on one thread.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

/// One stretch of a parameter: the weights, the gradient, and the
/// velocity (`None` without momentum, or on the first step, when the
/// gradient's buffer becomes the velocity).
struct Stretch<'a> {
    param: Weights<'a>,
    grad: &'a mut [f32],
    velocity: Option<&'a mut [f32]>,
}

/// One update of `s`, with Burn's operations in Burn's order (Rust
/// never contracts `a * b + c` into an FMA, so the bits are Burn's).
#[inline(always)]
fn update(rule: Rule, lr: f32, s: Stretch<'_>) {
    if let Some(penalty) = rule.penalty {
        elastic_net::add_gradient(s.param.old(), s.grad, penalty);
    }
    let n = s.param.len();
    let grad = &s.grad[..n];
    match (rule.momentum, s.velocity) {
        (None, _) => s.param.rewrite(
            #[inline(always)]
            |i, w| w - grad[i] * lr,
        ),
        // The first step: the velocity is the gradient, kept in place.
        (Some(rule), None) => s.param.rewrite(
            #[inline(always)]
            |i, w| {
                let g = grad[i];
                let step = if rule.nesterov {
                    g * rule.momentum + g
                } else {
                    g
                };
                w - step * lr
            },
        ),
        (Some(rule), Some(velocity)) => {
            let velocity = &mut velocity[..n];
            s.param.rewrite(
                #[inline(always)]
                |i, w| {
                    let g = grad[i];
                    let v = g * rule.gradient_weight + velocity[i] * rule.momentum;
                    velocity[i] = v;
                    let step = if rule.nesterov {
                        v * rule.momentum + g
                    } else {
                        v
                    };
                    w - step * lr
                },
            )
        }
    }
}

simd_dispatch! {
    /// [`update`], compiled for the widest vectors the CPU has
    /// (`crate::simd`).
    fn update_simd / update_at [](rule: Rule, lr: f32, s: Stretch<'_>) => update
}

/// [`update_simd`] on the whole stretch, or block by block with a
/// penalty.
fn update_dispatch(rule: Rule, lr: f32, s: Stretch<'_>) {
    if rule.penalty.is_none() {
        return update_simd(rule, lr, s);
    }
    let mut velocity = s.velocity.map(|v| v.chunks_mut(BLOCK));
    let blocks = s
        .param
        .chunks(BLOCK)
        .into_iter()
        .zip(s.grad.chunks_mut(BLOCK));
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
        let (param_here, param_rest) = param.split_at(take);
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

/// The update in the loop, or the tensors back, untouched, when it does
/// not apply (another device, another element type, lengths that differ).
pub(crate) fn sgd_update(
    update: &SgdUpdate,
    tensors: SgdTensors,
) -> Result<SgdUpdated, Box<SgdTensors>> {
    let SgdTensors {
        param,
        grad,
        velocity,
    } = tensors;
    let device = param.device();
    let n = param.dims()[0];
    let all_f32 = param.dtype() == DType::F32
        && grad.dtype() == DType::F32
        && velocity.as_ref().is_none_or(|v| v.dtype() == DType::F32);
    let same_length = grad.dims()[0] == n && velocity.as_ref().is_none_or(|v| v.dims()[0] == n);
    if !all_f32 || !same_length || device.clone().inner() != Device::flex() {
        return Err(Box::new(SgdTensors {
            param,
            grad,
            velocity,
        }));
    }
    let rule = Rule::of(update);
    // The velocity is read only with momentum, after the first update.
    let velocity = velocity.filter(|_| rule.momentum.is_some());
    // The gradient and the velocity: zero-copy where Flex holds the only
    // reference (as it does), a copy otherwise; the weights are read where
    // they are shared (`ParamValues`).
    let mut param = ParamValues::of(param);
    let mut grad_data = grad.into_data();
    let mut velocity_data = velocity.map(Tensor::into_data);
    let velocity_slice = match velocity_data.as_mut().map(|v| v.as_mut_slice::<f32>()) {
        Some(Ok(velocity)) => Ok(Some(velocity)),
        Some(Err(e)) => Err(e),
        None => Ok(None),
    };
    let applied = match (
        param.weights(),
        grad_data.as_mut_slice::<f32>(),
        velocity_slice,
    ) {
        (Some(param), Ok(grad), Ok(velocity)) => {
            let stretch = Stretch {
                param,
                grad,
                velocity,
            };
            update_all(rule, update.learning_rate, stretch);
            true
        }
        _ => false,
    };
    let rebuild = |data: TensorData| Tensor::<1>::from_data(data, (&device, DType::F32));
    if !applied {
        // Nothing was written: the next kernel gets the values as they were.
        return Err(Box::new(SgdTensors {
            param: param.into_unchanged(&device),
            grad: rebuild(grad_data),
            velocity: velocity_data.map(rebuild),
        }));
    }
    // SAFETY: `update_all` rewrote every weight of `param.weights()`, on
    // the whole view or on pieces that cover it.
    let param = unsafe { param.into_written(&device) };
    let velocity = match (rule.momentum, velocity_data) {
        (None, _) => None,
        (Some(_), Some(velocity)) => Some(rebuild(velocity)),
        // The first step's velocity is the gradient, untouched by the loop.
        (Some(_), None) => Some(rebuild(grad_data)),
    };
    Ok(SgdUpdated { param, velocity })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::momentum::MomentumConfig;
    use burn::optim::{Optimizer, RecordState, SgdConfig, StateSink};
    use burn::tensor::Distribution;

    fn bits(tensor: &Tensor<1>) -> Vec<u32> {
        tensor
            .to_data()
            .try_to_vec::<f32>()
            .unwrap()
            .into_iter()
            .map(f32::to_bits)
            .collect()
    }

    /// Burn's SGD with `momentum` and `dampening`.
    fn burn_sgd(momentum: Option<SgdMomentum>, dampening: f64) -> burn::optim::Sgd {
        SgdConfig::new()
            .with_momentum(momentum.map(|m| {
                MomentumConfig::new()
                    .with_momentum(m.momentum.into())
                    .with_dampening(dampening)
                    .with_nesterov(m.nesterov)
            }))
            .build()
    }

    /// Five updates by the loop and by Burn's SGD from the same weights and
    /// gradients (a small tensor on one thread, a large one split across
    /// threads, a zero gradient in one step) end in the same bits, weights
    /// and velocity alike, with and without dampening; also when, as in
    /// Burn's `Learner`, another holder keeps the weights each step hands
    /// in (whose values the loop leaves as they were).
    #[test]
    fn matches_burns_sgd_bit_for_bit() {
        let device = Device::flex();
        let with = |momentum: f64, dampening: f64, nesterov| {
            let rule = SgdMomentum {
                momentum: momentum as f32,
                gradient_weight: (1.0 - dampening) as f32,
                nesterov,
            };
            (Some(rule), dampening)
        };
        let cases = [
            (None, 0.0),
            with(0.9, 0.0, false),
            with(0.9, 0.0, true),
            with(0.9, 0.9, false),
        ];
        for (momentum, dampening) in cases {
            let burn = burn_sgd(momentum, dampening);
            let update = SgdUpdate {
                learning_rate: 0.05,
                momentum,
                l1: 0.0,
                l2: 0.0,
            };
            for (n, shared) in [
                (15, false),
                (300 * 512, false),
                (15, true),
                (300 * 512, true),
            ] {
                let start = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
                let (mut a, mut b) = (start.clone(), start.clone() + 0.0);
                let (mut velocity, mut burn_state) = (None, None);
                for step in 0..5 {
                    let mut grad =
                        Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
                    if step == 1 {
                        grad = grad.mul_scalar(0.0);
                    }
                    let holder = shared.then(|| (a.clone(), bits(&a)));
                    let tensors = SgdTensors {
                        param: a,
                        grad: grad.clone() + 0.0,
                        velocity,
                    };
                    let done = sgd_update(&update, tensors).expect("the loop takes Flex f32");
                    (a, velocity) = (done.param, done.velocity);
                    (b, burn_state) = burn.step(0.05, b, grad + 0.0, burn_state);
                    let what = format!(
                        "{momentum:?} dampening {dampening}, {n} elements, shared {shared}, step {step}"
                    );
                    assert_eq!(bits(&a), bits(&b), "{what}");
                    if let Some((holder, before)) = holder {
                        assert_eq!(bits(&holder), before, "the holder's weights, {what}");
                    }
                    // Burn's velocity, read through its record.
                    let mut sink = StateSink::default();
                    burn_state.as_ref().unwrap().state_flatten("p", &mut sink);
                    let burns = sink.tensors.first().map(|(_, data)| data.clone());
                    assert_eq!(
                        velocity.as_ref().map(Tensor::to_data),
                        burns,
                        "velocity, {what}"
                    );
                }
                assert_ne!(bits(&a), bits(&start), "the weights moved");
            }
        }
    }

    /// With a penalty the loop adds `l1 sign(w) + l2 w` to the gradient
    /// first: the same bits as recipe-train's `FusedSgd` where no kernel is
    /// installed (the tensor code), in one block and in several.
    #[test]
    fn a_folded_penalty_matches_the_tensor_code() {
        let device = Device::flex();
        let reference =
            recipe_train::FusedSgd::with_momentum(0.9, 0.0, false).with_elastic_net(1e-3, 1e-2);
        let update = SgdUpdate {
            learning_rate: 0.05,
            momentum: Some(SgdMomentum {
                momentum: 0.9,
                gradient_weight: 1.0,
                nesterov: false,
            }),
            l1: 1e-3,
            l2: 1e-2,
        };
        for (n, shared) in [(15, false), (10_000, false), (10_000, true)] {
            let start = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
            let (mut a, mut b) = (start.clone(), start + 0.0);
            let (mut velocity, mut state) = (None, None);
            for step in 0..3 {
                let grad = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
                // As in Burn's `Learner`, someone else may hold the weights.
                let _holder = shared.then(|| a.clone());
                let tensors = SgdTensors {
                    param: a,
                    grad: grad.clone() + 0.0,
                    velocity,
                };
                let done = sgd_update(&update, tensors).expect("the loop takes Flex f32");
                (a, velocity) = (done.param, done.velocity);
                (b, state) = reference.step(0.05, b, grad, state);
                assert_eq!(
                    bits(&a),
                    bits(&b),
                    "{n} elements, shared {shared}, step {step}"
                );
            }
        }
    }

    /// `f64` tensors are handed back untouched.
    #[test]
    fn other_float_types_are_handed_back() {
        let device = Device::flex();
        let param = Tensor::<1>::from_data(
            TensorData::new(vec![1.0f64, -2.0], [2]),
            (&device, DType::F64),
        );
        let update = SgdUpdate {
            learning_rate: 0.1,
            momentum: None,
            l1: 0.0,
            l2: 0.0,
        };
        let tensors = SgdTensors {
            param: param.clone(),
            grad: param.clone(),
            velocity: None,
        };
        let back = sgd_update(&update, tensors).expect_err("f64 is not the loop's");
        assert_eq!(back.param.to_data(), param.to_data());
    }
}
