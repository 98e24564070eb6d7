//! Element-wise loops for sigmoid and tanh that the compiler vectorizes.
//!
//! Burn's Flex backend calls the C library's scalar `expf` once per element
//! (twice per training step for sigmoid: the backward pass recomputes the
//! forward). Here `exp` is Cephes' `expf` written in plain arithmetic
//! (range reduction by `ln 2`, a degree-5 polynomial, the exponent set by
//! bit manipulation), so every loop below compiles to SIMD code; on x86-64
//! each loop is also compiled for AVX2 + FMA and for AVX-512, and the
//! widest the CPU has is picked at run time (`crate::simd`). Accuracy:
//! within 2 ulp of the correctly rounded `exp` over the whole range used
//! (tests below compare with `f32::exp`), so sigmoid and tanh differ from
//! Burn's by a few ulp, not bit for bit.

// The polynomials' constants are Cephes' as published (a few digits more
// than f32 holds; they round to the same f32).
#![allow(clippy::excessive_precision)]

use crate::simd::simd_dispatch;
use crate::spin_pool;

/// Below this many elements a loop runs on one thread.
const PARALLEL_MIN_ELEMENTS: usize = 1 << 15;

/// `e^x` for `x` in `[-87, 88]`, where the result is a normal `f32`
/// (callers clamp).
#[inline(always)]
fn exp_in_range(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `n * LN2_HI` is exact (Cephes).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let n = (x * LOG2_E + 0.5).floor();
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5.000_000_1e-1;
    let e_r = p * (r * r) + r + 1.0;
    e_r * two_to_the(n)
}

/// `2^n` for a whole `n` in `[-126, 127]` (`exp_in_range`'s range): `n +
/// 127` in the exponent bits. The integer is read off the bits of `n +
/// 127 + 2^23`, whose lowest bits it is (exact for a whole number below
/// 2^23), because `n as i32` is a saturating conversion that the compiler
/// does not vectorize: it moved each lane through a scalar register.
#[inline(always)]
fn two_to_the(n: f32) -> f32 {
    const TWO_TO_23: f32 = 8_388_608.0;
    let biased = (n + (127.0 + TWO_TO_23)).to_bits() - TWO_TO_23.to_bits();
    f32::from_bits(biased << 23)
}

/// `1 / (1 + e^-x)`, computed from `e^-|x|` so that it neither overflows
/// nor loses the small tail. Below `x = -87`, where the exact value is
/// under 2e-38 (subnormal), it returns 0.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    let e = exp_in_range((-x.abs()).max(-87.0));
    let positive = 1.0 / (1.0 + e);
    let negative = if x < -87.0 { 0.0 } else { e * positive };
    let value = if x >= 0.0 { positive } else { negative };
    // NaN in, NaN out (the comparisons above would pick a number).
    if x.is_nan() { x } else { value }
}

/// `tanh(x)`: Cephes' odd polynomial for `|x| < 0.625` (where `1 - e` would
/// cancel), `1 - 2 / (e^{2|x|} + 1)` with the sign of `x` beyond.
#[inline(always)]
pub(crate) fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let z = x * x;
    let odd = (((-5.704_988_7e-3 * z + 2.063_908_9e-2) * z - 5.373_971_6e-2) * z + 1.333_144_2e-1)
        * z
        - 3.333_328_2e-1;
    // Computed on |x| and signed at the end, so that tanh(-0) is -0.
    let small = (odd * z * a + a).copysign(x);
    let e = exp_in_range((2.0 * a).min(88.0));
    let large = (1.0 - 2.0 / (e + 1.0)).copysign(x);
    let value = if a < 0.625 { small } else { large };
    if x.is_nan() { x } else { value }
}

/// Applies `f` to every element of `values`, in place, on the thread pool
/// for large slices and with the widest vectors the CPU has (`crate::simd`).
pub(crate) fn map_in_place<F: Fn(f32) -> f32 + Copy + Send + Sync>(values: &mut [f32], f: F) {
    if values.len() < PARALLEL_MIN_ELEMENTS {
        return map_dispatch(values, f);
    }
    let chunk = chunk_len(values.len());
    let parts = values.chunks_mut(chunk).collect();
    spin_pool::for_each(parts, |part| map_dispatch(part, f));
}

/// `b[i] = f(a[i], b[i])`, the same way as [`map_in_place`].
pub(crate) fn zip_in_place<F: Fn(f32, f32) -> f32 + Copy + Send + Sync>(
    a: &[f32],
    b: &mut [f32],
    f: F,
) {
    assert_eq!(a.len(), b.len(), "zip of slices of different lengths");
    if b.len() < PARALLEL_MIN_ELEMENTS {
        return zip_dispatch(a, b, f);
    }
    let chunk = chunk_len(b.len());
    let parts = a.chunks(chunk).zip(b.chunks_mut(chunk)).collect();
    spin_pool::for_each(parts, |(a, b)| zip_dispatch(a, b, f));
}

fn chunk_len(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads()).max(4096)
}

#[inline(always)]
fn map<F: Fn(f32) -> f32>(values: &mut [f32], f: F) {
    for v in values {
        *v = f(*v);
    }
}

#[inline(always)]
fn zip<F: Fn(f32, f32) -> f32>(a: &[f32], b: &mut [f32], f: F) {
    for (&a, b) in a.iter().zip(b) {
        *b = f(a, *b);
    }
}

simd_dispatch! {
    /// `values[i] = f(values[i])` on this thread, compiled for the widest
    /// vectors the CPU has. Generic over `f`, so each function gets its own
    /// loop with `f` inlined (a function pointer would be a call per
    /// element, and no SIMD).
    pub(crate) fn map_dispatch / map_at [F: Fn(f32) -> f32](values: &mut [f32], f: F) => map
}

simd_dispatch! {
    /// `b[i] = f(a[i], b[i])` on this thread, as [`map_dispatch`].
    pub(crate) fn zip_dispatch / zip_at [F: Fn(f32, f32) -> f32](a: &[f32], b: &mut [f32], f: F) => zip
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(a: f32, b: f32) -> u32 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
    }

    /// Every 997th f32 bit pattern in [-87, 88] (about 2 million values).
    fn sample() -> impl Iterator<Item = f32> {
        (0..u32::MAX)
            .step_by(997)
            .map(f32::from_bits)
            .filter(|x| (-87.0..=88.0).contains(x))
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_library() {
        let worst = sample()
            .map(|x| ulps(exp_in_range(x), (x as f64).exp() as f32))
            .max()
            .unwrap();
        assert!(worst <= 2, "exp off by {worst} ulp");
    }

    #[test]
    fn sigmoid_and_tanh_match_f64_references() {
        for x in sample().chain([0.0, -0.0, 1e-30, -1e-30, 100.0, -100.0, 1e30, -1e30]) {
            let exact_sigmoid = (1.0 / (1.0 + (-(x as f64)).exp())) as f32;
            let flushed = exact_sigmoid < 2e-38 && sigmoid(x) == 0.0;
            assert!(
                ulps(sigmoid(x), exact_sigmoid) <= 4 || flushed,
                "sigmoid({x})"
            );
            let exact_tanh = (x as f64).tanh() as f32;
            assert!(ulps(tanh(x), exact_tanh) <= 4, "tanh({x})");
        }
        assert!(sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert_eq!((tanh(f32::INFINITY), tanh(f32::NEG_INFINITY)), (1.0, -1.0));
    }

    #[test]
    fn loops_cover_every_element_on_and_off_the_thread_pool() {
        for n in [0, 1, 7, PARALLEL_MIN_ELEMENTS + 5] {
            let mut values: Vec<f32> = (0..n).map(|i| i as f32 * 1e-3 - 1.0).collect();
            let expected: Vec<f32> = values.iter().map(|&x| sigmoid(x)).collect();
            map_in_place(&mut values, sigmoid);
            assert_eq!(values, expected);
            let mut out = expected.clone();
            zip_in_place(&values, &mut out, |a, b| a - b);
            assert!(out.iter().all(|&d| d == 0.0));
        }
    }

    #[test]
    fn powers_of_two_match_the_exponent_bits_over_the_whole_range() {
        for n in -126..=127 {
            let expected = f32::from_bits(((n + 127) as u32) << 23);
            assert_eq!(two_to_the(n as f32).to_bits(), expected.to_bits(), "2^{n}");
            assert_eq!(two_to_the(n as f32), 2f32.powi(n), "2^{n}");
        }
    }

    /// The lanes are independent and the arithmetic IEEE, so the width of
    /// the vectors must not change a bit (a kernel compiled with a
    /// contracted FMA, or a lane mix-up, would).
    #[test]
    fn every_vector_width_gives_the_same_bits() {
        let inputs: Vec<f32> = sample()
            .chain([0.0, -0.0, 1e-30, -87.5, 88.5, 1e30, f32::NAN, f32::INFINITY])
            .chain((0..1000).map(|i| (i as f32 * 0.618_034).sin() * 20.0))
            .collect();
        let bits = |values: &[f32]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        let mut reference = None;
        for level in crate::simd::levels_of_cpu() {
            let mut sig = inputs.clone();
            map_at(level, &mut sig, sigmoid);
            let mut tan = inputs.clone();
            map_at(level, &mut tan, tanh);
            let mut grad = inputs.clone();
            zip_at(level, &sig, &mut grad, |y, g| g * y * (1.0 - y));
            let results = (bits(&sig), bits(&tan), bits(&grad));
            match &reference {
                None => reference = Some(results),
                Some(first) => assert!(*first == results, "{level:?} differs from the baseline"),
            }
        }
    }
}
