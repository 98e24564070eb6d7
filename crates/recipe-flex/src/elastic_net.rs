//! An L1/L2 (elastic-net) penalty on one weight tensor in one pass: its
//! value and its gradient added to the loss's, in place.
//!
//! The tensor code of `recipe_train::PenaltyGradient::elastic_net_tensors`
//! reads the weights four times and allocates three tensors; this loop
//! reads the weights and the gradient once and writes the gradient once.
//! The gradient is bit for bit the tensor code's (same operations, same
//! order); the value is summed in `f64`, so it may differ from an `f32`
//! sum in the last digits.

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::flex_loops;

/// Elements per piece of work on the thread pool.
const CHUNK: usize = 1 << 15;

/// The penalty's strengths as the loops use them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Strengths {
    l1: f32,
    l2: f32,
    scale: f32,
}

impl Strengths {
    /// `l1` and `l2` as `f32` (as Burn's `mul_scalar` converts them), the
    /// gradient times `scale`.
    /// The penalty an optimizer's update folds in (`l1`, `l2` of an
    /// `SgdUpdate` or `AdamUpdate`), or `None` when both are 0.
    pub(crate) fn folded(l1: f32, l2: f32) -> Option<Self> {
        (l1 != 0.0 || l2 != 0.0).then(|| Self::new(l1.into(), l2.into(), 1.0))
    }

    pub(crate) fn new(l1: f64, l2: f64, scale: f32) -> Self {
        Self {
            l1: l1 as f32,
            l2: l2 as f32,
            scale,
        }
    }
}

/// Adds the penalty's gradient to `grad` (no sums): what a fused optimizer
/// runs on each block of a parameter just before updating it.
#[inline(always)]
pub(crate) fn add_gradient(weights: &[f32], grad: &mut [f32], s: Strengths) {
    for (&w, g) in weights.iter().zip(grad.iter_mut()) {
        *g += penalty_gradient(w, s);
    }
}

/// `l1 sign(w) + l2 w`, in the tensor code's order, times `scale`.
#[inline(always)]
pub(crate) fn penalty_gradient(w: f32, s: Strengths) -> f32 {
    let mut gradient = 0.0;
    if s.l1 != 0.0 {
        let sign = if w > 0.0 {
            1.0
        } else if w < 0.0 {
            -1.0
        } else {
            0.0
        };
        gradient += sign * s.l1;
    }
    if s.l2 != 0.0 {
        gradient += w * s.l2;
    }
    gradient * s.scale
}

/// Elements summed side by side: four AVX registers of independent chains
/// (one would wait on the latency of each addition).
const LANES: usize = 32;

/// Adds the penalty's gradient to `grad`; returns `(Σ|w|, Σw²)`, summed in
/// `LANES` lanes of `f32` within the chunk and in `f64` across chunks.
#[inline(always)]
fn add_in_place(weights: &[f32], grad: &mut [f32], s: Strengths) -> (f64, f64) {
    let mut abs = [0.0f32; LANES];
    let mut squares = [0.0f32; LANES];
    let lanes = weights
        .chunks_exact(LANES)
        .zip(grad.chunks_exact_mut(LANES));
    for (w, g) in lanes {
        for k in 0..LANES {
            g[k] += penalty_gradient(w[k], s);
            abs[k] += w[k].abs();
            squares[k] += w[k] * w[k];
        }
    }
    let whole = weights.len() / LANES * LANES;
    for (&w, g) in weights[whole..].iter().zip(&mut grad[whole..]) {
        *g += penalty_gradient(w, s);
        abs[0] += w.abs();
        squares[0] += w * w;
    }
    let total = |lanes: [f32; LANES]| lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
    (total(abs), total(squares))
}

/// `(Σ|w|, Σw²)` alone, in lanes as [`add_in_place`].
#[inline(always)]
fn sums(weights: &[f32]) -> (f64, f64) {
    let mut abs = [0.0f32; LANES];
    let mut squares = [0.0f32; LANES];
    for w in weights.chunks_exact(LANES) {
        for k in 0..LANES {
            abs[k] += w[k].abs();
            squares[k] += w[k] * w[k];
        }
    }
    let whole = weights.len() / LANES * LANES;
    for &w in &weights[whole..] {
        abs[0] += w.abs();
        squares[0] += w * w;
    }
    let total = |lanes: [f32; LANES]| lanes.iter().map(|&v| f64::from(v)).sum::<f64>();
    (total(abs), total(squares))
}

fn sums_dispatch(weights: &[f32]) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn sums_avx2(weights: &[f32]) -> (f64, f64) {
            sums(weights)
        }
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { sums_avx2(weights) };
    }
    sums(weights)
}

fn add_in_place_dispatch(weights: &[f32], grad: &mut [f32], s: Strengths) -> (f64, f64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[target_feature(enable = "avx2")]
        fn add_in_place_avx2(weights: &[f32], grad: &mut [f32], s: Strengths) -> (f64, f64) {
            add_in_place(weights, grad, s)
        }
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { add_in_place_avx2(weights, grad, s) };
    }
    add_in_place(weights, grad, s)
}

/// The Flex side: `grad` overwritten in place where Flex holds its only
/// reference, the weights read where they lie.
#[backend_extension(Flex)]
pub trait FusedPenaltyOps: Backend {
    /// `(grad + scale * (l1 sign(w) + l2 w), [l1 Σ|w| + l2/2 Σw²])`.
    fn fused_elastic_net(
        weights: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        l1: f64,
        l2: f64,
        scale: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// `[l1 Σ|w| + l2/2 Σw²]` alone (for a penalty whose gradient an
    /// optimizer adds).
    fn fused_elastic_net_value(weights: FloatTensor<Self>, l1: f64, l2: f64) -> FloatTensor<Self>;
}

impl FusedPenaltyOps for Flex {
    fn fused_elastic_net(
        weights: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        l1: f64,
        l2: f64,
        scale: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let strengths = Strengths::new(l1, l2, scale);
        let mut sums = (0.0, 0.0);
        let grad = flex_loops::update_with(&weights, grad, |w, g| {
            sums = parallel_pieces(w, Some(g), strengths);
        });
        (grad, value_tensor(l1, l2, sums))
    }

    fn fused_elastic_net_value(weights: FloatTensor<Self>, l1: f64, l2: f64) -> FloatTensor<Self> {
        let no_penalty = Strengths::new(0.0, 0.0, 0.0);
        let sums = flex_loops::with_values(&weights, |w| parallel_pieces(w, None, no_penalty));
        value_tensor(l1, l2, sums)
    }
}

/// `(Σ|w|, Σw²)`.
type Sums = (f64, f64);

fn add_sums(a: Sums, b: Sums) -> Sums {
    (a.0 + b.0, a.1 + b.1)
}

/// How many elements each thread takes, in whole `CHUNK`-long pieces, or
/// `None` when one thread takes them all. The runs go to recipe-flex's
/// resident helpers: a read of a weight matrix takes tens of microseconds,
/// about what waking rayon's pool costs.
fn run_length(len: usize) -> Option<usize> {
    let threads = rayon::current_num_threads();
    let pieces = len.div_ceil(CHUNK);
    (pieces >= 2 && threads >= 2).then(|| pieces.div_ceil(threads) * CHUNK)
}

/// One thread's run of the weights (and of the gradient), and its sums.
struct Run<'a> {
    weights: &'a [f32],
    grad: Option<&'a mut [f32]>,
    total: &'a mut Sums,
}

/// [`sums`] of each `CHUNK`-long piece, or [`add_in_place`] on it with
/// `grad`, added in `f64` in order within each thread's run and then
/// across runs.
fn parallel_pieces(weights: &[f32], grad: Option<&mut [f32]>, s: Strengths) -> Sums {
    let run_sums = |run: Run<'_>| {
        *run.total = match run.grad {
            Some(grad) => (run.weights.chunks(CHUNK).zip(grad.chunks_mut(CHUNK)))
                .map(|(w, g)| add_in_place_dispatch(w, g, s))
                .fold((0.0, 0.0), add_sums),
            None => run
                .weights
                .chunks(CHUNK)
                .map(sums_dispatch)
                .fold((0.0, 0.0), add_sums),
        }
    };
    let run = run_length(weights.len()).unwrap_or(weights.len().max(1));
    let mut totals = vec![(0.0, 0.0); weights.len().div_ceil(run)];
    let mut grads = grad.map(|g| g.chunks_mut(run));
    let runs = weights
        .chunks(run)
        .zip(totals.iter_mut())
        .map(|(weights, total)| Run {
            weights,
            grad: grads.as_mut().and_then(Iterator::next),
            total,
        })
        .collect();
    crate::spin_pool::for_each(runs, run_sums);
    totals.into_iter().fold((0.0, 0.0), add_sums)
}

fn value_tensor(l1: f64, l2: f64, (abs_sum, square_sum): (f64, f64)) -> FlexTensor {
    let value = l1 * abs_sum + l2 / 2.0 * square_sum;
    FlexTensor::from_data(TensorData::from([value as f32]))
}

/// The penalty's value alone on Flex, or `None` elsewhere.
pub(crate) fn elastic_net_value(weights: &Tensor<1>, l1: f64, l2: f64) -> Option<Tensor<1>> {
    let on_flex = weights.dtype() == DType::F32 && weights.device().inner() == Device::flex();
    if !on_flex {
        return None;
    }
    let weights = weights.clone().inner().into_dispatch();
    let value = <Dispatch as FusedPenaltyOps>::fused_elastic_net_value(weights, l1, l2);
    Some(Tensor::from_dispatch(value))
}

/// [`recipe_train::OptimizerKernels::elastic_net`] for `f32` tensors on
/// Flex; anything else is handed back.
#[allow(clippy::result_large_err)]
pub(crate) fn elastic_net(
    weights: &Tensor<1>,
    grad: Tensor<1>,
    l1: f64,
    l2: f64,
    scale: f32,
) -> Result<(Tensor<1>, Tensor<1>), Tensor<1>> {
    let on_flex = |t: &Tensor<1>| t.dtype() == DType::F32 && t.device().inner() == Device::flex();
    if !on_flex(weights) || !on_flex(&grad) || weights.dims() != grad.dims() {
        return Err(grad);
    }
    // Without autodiff: the weights are a constant here.
    let weights = weights.clone().inner().into_dispatch();
    let (grad, value) = <Dispatch as FusedPenaltyOps>::fused_elastic_net(
        weights,
        grad.inner().into_dispatch(),
        l1,
        l2,
        scale,
    );
    Ok((Tensor::from_dispatch(value), Tensor::from_dispatch(grad)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn bits(t: Tensor<1>) -> Vec<u32> {
        let values = t.into_data().try_to_vec::<f32>().unwrap();
        values.into_iter().map(f32::to_bits).collect()
    }

    /// Against the tensor code it replaces: the gradient bit for bit, the
    /// value to f32 rounding; with zeros among the weights (sign 0), both
    /// terms, each alone, and a scale (data parallel's 1/K).
    #[test]
    fn matches_the_tensor_code() {
        let device = Device::flex();
        let n = 3 * CHUNK + 17;
        let weights = Tensor::<1>::random([n], Distribution::Normal(0.0, 0.1), &device);
        let weights = weights.slice_assign(0..5, Tensor::zeros([5], &device));
        let grad = Tensor::<1>::random([n], Distribution::Normal(0.0, 1.0), &device);
        for (l1, l2, scale) in [(1e-4, 1e-3, 1.0), (1e-4, 0.0, 0.5), (0.0, 1e-3, 1.0)] {
            let (value, fused) = elastic_net(&weights, grad.clone(), l1, l2, scale).unwrap();
            // The value alone (what a folded penalty reports) is the same sum.
            let alone = elastic_net_value(&weights, l1, l2).unwrap();
            assert_eq!(
                alone.to_data(),
                value.to_data(),
                "l1 {l1} l2 {l2}: value alone"
            );
            let matrix = weights.clone().unsqueeze_dim::<2>(0);
            let (expected_value, gradient) =
                recipe_train::PenaltyGradient::elastic_net_tensors(matrix, l1, l2);
            let expected = grad.clone() + gradient.flatten::<1>(0, 1).mul_scalar(scale);
            assert_eq!(bits(fused), bits(expected), "l1 {l1} l2 {l2}");
            let (value, expected_value): (f32, f32) =
                (value.into_scalar(), expected_value.into_scalar());
            assert!(
                (value - expected_value).abs() <= 1e-5 * expected_value.abs(),
                "{value} vs {expected_value}"
            );
        }
    }

    #[test]
    fn other_element_types_are_handed_back() {
        let device = Device::flex();
        let weights = Tensor::<1>::from_data(TensorData::from([1.0f64]), (&device, DType::F64));
        let grad = Tensor::<1>::from_data(TensorData::from([1.0f64]), (&device, DType::F64));
        assert!(elastic_net(&weights, grad, 0.1, 0.1, 1.0).is_err());
    }
}
