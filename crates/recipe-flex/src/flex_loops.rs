//! The loops behind [`crate::activation_ops`], on Flex's host tensors of
//! `f32` (callers check the element type).

use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorData};

use crate::simd::simd_dispatch;
use crate::vector_math;

/// Below this many units the max over pieces runs on one thread.
const PARALLEL_MIN_UNITS: usize = 1 << 14;

fn assert_f32(tensor: &FlexTensor) {
    assert_eq!(
        tensor.dtype(),
        DType::F32,
        "recipe-flex's fused kernels take f32 tensors (FlexActivations checks before calling)"
    );
}

/// The elements in row-major order, borrowed where the tensor is contiguous.
pub(crate) fn with_values<R>(tensor: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
    assert_f32(tensor);
    match tensor.as_slice::<f32>() {
        Some(values) => f(values),
        None => f(tensor.to_contiguous().as_slice::<f32>().unwrap_or_default()),
    }
}

/// The tensor's own buffer, when it may be overwritten: Flex holds the only
/// reference and the elements fill it from the start, in order.
fn writable(tensor: &mut FlexTensor) -> Option<&mut [f32]> {
    let n = tensor.layout().num_elements();
    if !(tensor.is_contiguous() && tensor.layout().start_offset() == 0) {
        return None;
    }
    tensor
        .try_storage_mut::<f32>()
        .map(|values| &mut values[..n])
}

fn from_values(values: Vec<f32>, shape: Shape) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// `f` of every element, in place when the buffer is the tensor's alone.
pub(crate) fn map<F: Fn(f32) -> f32 + Copy + Send + Sync>(mut x: FlexTensor, f: F) -> FlexTensor {
    assert_f32(&x);
    if let Some(values) = writable(&mut x) {
        vector_math::map_in_place(values, f);
        return x;
    }
    let shape = x.layout().shape().clone();
    let mut out = with_values(&x, <[f32]>::to_vec);
    vector_math::map_in_place(&mut out, f);
    from_values(out, shape)
}

/// `f(a, b)` element by element (the shapes must agree), written over `b`
/// when its buffer is its alone.
pub(crate) fn zip<F: Fn(f32, f32) -> f32 + Copy + Send + Sync>(
    a: FlexTensor,
    b: FlexTensor,
    f: F,
) -> FlexTensor {
    update_with(&a, b, |a, b| vector_math::zip_in_place(a, b, f))
}

/// Runs `update(a, b)` on `a`'s elements and `b`'s buffer (written over
/// where it is `b`'s alone, a copy otherwise) and returns `b`.
pub(crate) fn update_with(
    a: &FlexTensor,
    mut b: FlexTensor,
    update: impl FnOnce(&[f32], &mut [f32]),
) -> FlexTensor {
    assert_f32(&b);
    assert_eq!(
        a.layout().shape(),
        b.layout().shape(),
        "update of a different shape"
    );
    if let Some(out) = writable(&mut b) {
        with_values(a, |a| update(a, out));
        return b;
    }
    let mut out = with_values(&b, <[f32]>::to_vec);
    with_values(a, |a| update(a, &mut out));
    from_values(out, b.layout().shape().clone())
}

/// Which piece won each unit of a Maxout layer's forward pass.
#[derive(Debug, Clone)]
pub(crate) struct Winners {
    /// Per unit, `[batch * units]` in row-major order.
    winners: Vec<u32>,
    pieces: usize,
    /// The input's shape, `[batch, units * pieces]`.
    input_shape: Shape,
}

/// The max over each unit's consecutive `pieces` columns and the winning
/// piece (the first of equal maxima; NaN wins, so it propagates).
pub(crate) fn max_over_pieces(x: FlexTensor, pieces: usize) -> (FlexTensor, Winners) {
    let input_shape = x.layout().shape().clone();
    let [batch, columns] = input_shape.dims::<2>();
    assert!(
        pieces > 0 && columns % pieces == 0,
        "max over pieces: {columns} columns are not units of {pieces} pieces"
    );
    let units = batch * (columns / pieces);
    let mut max = vec![0.0f32; units];
    let mut winners = vec![0u32; units];
    with_values(&x, |values| {
        if units < PARALLEL_MIN_UNITS {
            return max_of_units(values, pieces, &mut max, &mut winners);
        }
        let chunk = units.div_ceil(rayon::current_num_threads());
        let parts = max
            .chunks_mut(chunk)
            .zip(winners.chunks_mut(chunk))
            .zip(values.chunks(chunk * pieces))
            .collect();
        crate::spin_pool::for_each(parts, |((max, winners), values)| {
            max_of_units(values, pieces, max, winners)
        });
    });
    let max = from_values(max, Shape::new([batch, columns / pieces]));
    let winners = Winners {
        winners,
        pieces,
        input_shape,
    };
    (max, winners)
}

/// Units handled side by side: independent chains of comparisons, which
/// the compiler turns into SIMD lanes.
const LANES: usize = 8;

simd_dispatch! {
    /// [`max_of_units_any`], compiled for the widest vectors the CPU has
    /// (`crate::simd`).
    fn max_of_units / max_of_units_at [](
        values: &[f32],
        pieces: usize,
        max: &mut [f32],
        winners: &mut [u32],
    ) => max_of_units_any
}

/// A loop compiled for each common number of pieces (known at compile
/// time, the block's indices need no bounds checks and vectorize), and one
/// for any number.
#[inline(always)]
fn max_of_units_any(values: &[f32], pieces: usize, max: &mut [f32], winners: &mut [u32]) {
    let whole = match pieces {
        2 => max_of_unit_blocks::<2>(values, max, winners),
        3 => max_of_unit_blocks::<3>(values, max, winners),
        4 => max_of_unit_blocks::<4>(values, max, winners),
        5 => max_of_unit_blocks::<5>(values, max, winners),
        6 => max_of_unit_blocks::<6>(values, max, winners),
        _ => 0,
    };
    let rest = values[whole * pieces..].chunks_exact(pieces);
    for ((unit, max), winner) in rest.zip(&mut max[whole..]).zip(&mut winners[whole..]) {
        let (mut best, mut best_piece) = (unit[0], 0u32);
        for (piece, &value) in (1u32..).zip(&unit[1..]) {
            take_if_larger(value, piece, &mut best, &mut best_piece);
        }
        (*max, *winner) = (best, best_piece);
    }
}

/// `LANES` units at a time, `P` pieces each; returns how many units it did
/// (the rest, fewer than `LANES`, are left to the caller).
#[inline(always)]
fn max_of_unit_blocks<const P: usize>(
    values: &[f32],
    max: &mut [f32],
    winners: &mut [u32],
) -> usize {
    let whole = max.len() / LANES * LANES;
    let blocks = values[..whole * P]
        .chunks_exact(P * LANES)
        .zip(max[..whole].chunks_exact_mut(LANES))
        .zip(winners[..whole].chunks_exact_mut(LANES));
    for ((block, max), winners) in blocks {
        let mut best: [f32; LANES] = std::array::from_fn(|k| block[k * P]);
        let mut best_piece = [0u32; LANES];
        for piece in 1..P {
            for k in 0..LANES {
                let value = block[k * P + piece];
                take_if_larger(value, piece as u32, &mut best[k], &mut best_piece[k]);
            }
        }
        max.copy_from_slice(&best);
        winners.copy_from_slice(&best_piece);
    }
    whole
}

/// Branch-free (a random winner would mispredict every other branch): a
/// larger value wins, and so does a NaN over a number.
#[inline(always)]
fn take_if_larger(value: f32, piece: u32, best: &mut f32, best_piece: &mut u32) {
    let take = ((value > *best) | value.is_nan()) & !best.is_nan();
    *best = if take { value } else { *best };
    *best_piece = if take { piece } else { *best_piece };
}

/// The gradient of the max: `grad` of each unit at its winning piece,
/// zero at the others.
pub(crate) fn to_winners(grad: FlexTensor, winners: &Winners) -> FlexTensor {
    let mut out = vec![0.0f32; winners.input_shape.num_elements()];
    let pieces = winners.pieces;
    with_values(&grad, |grad| {
        let units = out.chunks_exact_mut(pieces).zip(&winners.winners);
        for ((unit, &winner), &g) in units.zip(grad) {
            unit[winner as usize] = g;
        }
    });
    from_values(out, winners.input_shape.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(values: Vec<f32>, shape: [usize; 2]) -> FlexTensor {
        from_values(values, Shape::new(shape))
    }

    fn values(tensor: &FlexTensor) -> Vec<f32> {
        with_values(tensor, <[f32]>::to_vec)
    }

    #[test]
    fn max_picks_the_first_of_equals_and_propagates_nan() {
        let x = tensor(vec![1.0, 3.0, 3.0, -1.0, -2.0, f32::NAN, 0.5, 0.25], [2, 4]);
        let (max, winners) = max_over_pieces(x, 2);
        let max = values(&max);
        assert_eq!((max[0], max[1], max[3]), (3.0, 3.0, 0.5));
        assert!(max[2].is_nan());
        assert_eq!(winners.winners, vec![1, 0, 1, 0]);
        // A NaN first piece keeps winning.
        let x = tensor(vec![f32::NAN, 4.0], [1, 2]);
        let (max, winners) = max_over_pieces(x, 2);
        assert!(values(&max)[0].is_nan());
        assert_eq!(winners.winners, vec![0]);
    }

    #[test]
    fn gradient_lands_on_the_winners_only() {
        let x = tensor(vec![1.0, 5.0, 2.0, 7.0, 0.0, 9.0], [2, 3]);
        let (_, winners) = max_over_pieces(x, 3);
        let grad = to_winners(tensor(vec![10.0, 20.0], [2, 1]), &winners);
        assert_eq!(values(&grad), vec![0.0, 10.0, 0.0, 0.0, 0.0, 20.0]);
    }

    #[test]
    fn max_is_the_same_on_and_off_the_thread_pool() {
        // Not a multiple of LANES: the last units take the one-at-a-time loop.
        let units = PARALLEL_MIN_UNITS + 3;
        let data: Vec<f32> = (0..units * 3).map(|i| ((i * 7919) % 1000) as f32).collect();
        let (max, winners) = max_over_pieces(tensor(data.clone(), [units, 3]), 3);
        // The first of the largest values, the obvious way.
        let reference: (Vec<f32>, Vec<u32>) = data
            .chunks(3)
            .map(|unit| {
                let best = unit.iter().copied().fold(f32::MIN, f32::max);
                let piece = unit.iter().position(|&v| v == best).unwrap();
                (best, piece as u32)
            })
            .unzip();
        assert_eq!((values(&max), winners.winners), reference);
    }

    #[test]
    fn map_and_zip_leave_shared_buffers_alone() {
        let x = tensor(vec![0.0, 1.0, -1.0, 2.0], [2, 2]);
        let kept = x.clone();
        let y = map(x, |v| v * 2.0);
        assert_eq!(values(&kept), vec![0.0, 1.0, -1.0, 2.0]);
        assert_eq!(values(&y), vec![0.0, 2.0, -2.0, 4.0]);
        let kept_y = y.clone();
        let z = zip(kept.clone(), y, |a, b| a + b);
        assert_eq!(values(&kept_y), vec![0.0, 2.0, -2.0, 4.0]);
        assert_eq!(values(&z), vec![0.0, 3.0, -3.0, 6.0]);
        // An unshared buffer is written in place, with the same result.
        let z = zip(kept, tensor(vec![1.0; 4], [2, 2]), |a, b| a + b);
        assert_eq!(values(&z), vec![1.0, 2.0, 0.0, 3.0]);
    }
}
