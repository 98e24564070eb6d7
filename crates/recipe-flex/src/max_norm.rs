//! The max-norm constraint on one weight matrix in one read, and one write
//! only when some unit is over the bound.
//!
//! The tensor code of `recipe_train::MaxNorm` squares every weight into a
//! new tensor, sums the squares per unit, and multiplies every weight by
//! its unit's factor into another new tensor (three passes over the
//! weights, two allocations of their size) after every optimizer step.
//! This loop sums the squares per unit in one read and, where a unit is
//! over the bound, writes the rescaled matrix in one more pass; when no
//! unit is over it (most steps of a net whose weights sit inside the
//! ball), the matrix is returned as it is. The factors are the tensor
//! code's (`max_norm / norm` in `f32`, 1 for units at or under the bound),
//! and the sums of squares are added row after row: for units in columns
//! (linear weights) that is Flex's `sum_dim(0)` order, bit for bit
//! (`crate::column_squares`, which shares the rows out among the threads
//! without changing that order); for units in rows (convolution kernels)
//! Flex adds in vector lanes, so the norms may differ in the last bits
//! (within 2e-6 relative in the tests). The rescaled matrix is written by
//! bands of rows, one per thread.

use std::mem::MaybeUninit;

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Dispatch, Flex, backend_extension};
use burn::tensor::{DType, Device, Tensor, TensorData};

use crate::{column_squares, flex_loops, spin_pool};

/// The Flex side of the constraint.
#[backend_extension(Flex)]
pub trait FusedMaxNormOps: Backend {
    /// `matrix` (`[rows, columns]`) with each unit (a row when `unit_dim`
    /// is 0, a column when it is 1) whose L2 norm exceeds `max_norm`
    /// rescaled to norm `max_norm`.
    fn fused_max_norm(
        matrix: FloatTensor<Self>,
        unit_dim: usize,
        max_norm: f64,
    ) -> FloatTensor<Self>;
}

impl FusedMaxNormOps for Flex {
    fn fused_max_norm(matrix: FlexTensor, unit_dim: usize, max_norm: f64) -> FlexTensor {
        let shape = matrix.layout().shape().clone();
        let [rows, columns] = shape.dims::<2>();
        let rescaled = flex_loops::with_values(&matrix, |values| {
            let units = Units {
                rows,
                columns,
                by_row: unit_dim == 0,
            };
            let factors = units.factors(values, max_norm)?;
            Some(units.rescale(values, &factors))
        });
        match rescaled {
            Some(values) => FlexTensor::from_data(TensorData::new(values, shape)),
            None => matrix,
        }
    }
}

/// How the units lie in a row-major `[rows, columns]` matrix.
#[derive(Debug, Clone, Copy)]
struct Units {
    rows: usize,
    columns: usize,
    /// Units are rows (convolution kernels); else columns (linear weights).
    by_row: bool,
}

impl Units {
    /// Each unit's factor, or `None` when no unit is over the bound.
    fn factors(self, values: &[f32], max_norm: f64) -> Option<Vec<f32>> {
        let squares = self.sums_of_squares(values);
        let bound = max_norm as f32;
        let mut over = false;
        let factors = squares
            .into_iter()
            .map(|sum| {
                let norm = sum.sqrt();
                // The tensor code's factor: `recip(norm) * max_norm`, and
                // exactly 1 at or under the bound (NaN norms stay NaN).
                if norm <= bound {
                    1.0
                } else {
                    over = true;
                    (1.0 / norm * bound).min(1.0)
                }
            })
            .collect();
        over.then_some(factors)
    }

    fn sums_of_squares(self, values: &[f32]) -> Vec<f32> {
        if self.by_row {
            return values
                .chunks(self.columns.max(1))
                .map(|row| row.iter().map(|w| w * w).sum())
                .collect();
        }
        column_squares::column_sums_of_squares(values, self.rows, self.columns)
    }

    /// Every weight times its unit's factor, written once, each thread its
    /// own band of rows (the band the fused optimizer wrote, so local to
    /// its core).
    fn rescale(self, values: &[f32], factors: &[f32]) -> Vec<f32> {
        let columns = self.columns.max(1);
        let threads = if values.len() < column_squares::PARALLEL_MIN_WEIGHTS {
            1
        } else {
            spin_pool::threads()
        };
        let band = self.rows.div_ceil(threads).max(1) * columns;
        let mut out: Vec<f32> = Vec::with_capacity(values.len());
        let new = &mut out.spare_capacity_mut()[..values.len()];
        let parts: Vec<_> = values
            .chunks(band)
            .zip(new.chunks_mut(band))
            .enumerate()
            .collect();
        spin_pool::for_each(parts, |(index, (old, new))| {
            self.rescale_rows(index * band / columns, old, new, factors);
        });
        // SAFETY: the bands cover the first `values.len()` elements of the
        // spare capacity, and `rescale_rows` writes every element of its
        // band (a panic in one goes on from `for_each`, before this line).
        unsafe { out.set_len(values.len()) };
        out
    }

    /// Writes `new[i] = old[i] * factor` for the rows of one band, the
    /// first of them row `first_row` of the matrix.
    fn rescale_rows(
        self,
        first_row: usize,
        old: &[f32],
        new: &mut [MaybeUninit<f32>],
        factors: &[f32],
    ) {
        let columns = self.columns.max(1);
        for (row, (old, new)) in old.chunks(columns).zip(new.chunks_mut(columns)).enumerate() {
            if self.by_row {
                let factor = factors[first_row + row];
                for (new, w) in new.iter_mut().zip(old) {
                    new.write(w * factor);
                }
            } else {
                for ((new, w), factor) in new.iter_mut().zip(old).zip(factors) {
                    new.write(w * factor);
                }
            }
        }
    }
}

/// [`recipe_train::OptimizerKernels::max_norm`] for `f32` matrices on Flex
/// without autodiff; `None` elsewhere.
pub(crate) fn max_norm(matrix: &Tensor<2>, unit_dim: usize, max_norm: f64) -> Option<Tensor<2>> {
    let device = matrix.device();
    let on_flex = matrix.dtype() == DType::F32 && !device.is_autodiff() && device == Device::flex();
    if !on_flex || unit_dim > 1 {
        return None;
    }
    let values = matrix.clone().into_dispatch();
    let rescaled = <Dispatch as FusedMaxNormOps>::fused_max_norm(values, unit_dim, max_norm);
    Some(Tensor::from_dispatch(rescaled))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;
    use recipe_train::{column_norms, renorm_columns};

    fn values(t: &Tensor<2>) -> Vec<f32> {
        t.to_data().try_to_vec::<f32>().unwrap()
    }

    /// Columns scaled so that some are over the bound and some under: the
    /// kernel's matrix is recipe-train's tensor code's bit for bit (Flex's
    /// `sum_dim(0)` adds the rows in order, as this loop does, so a
    /// training's figures do not move), the columns under the bound are
    /// untouched, and the rescaled ones end at the bound.
    #[test]
    fn matches_the_tensor_code_by_columns() {
        let device = Device::flex();
        let w = Tensor::<2>::random([784, 64], Distribution::Normal(0.0, 0.1), &device);
        // Column norms about 2.8 times the column's factor (0.25 to 2).
        let spread: Vec<f32> = (0..64).map(|j| 0.25 + j as f32 / 36.0).collect();
        let w = w * Tensor::<1>::from_floats(spread.as_slice(), &device).unsqueeze_dim::<2>(0);
        let bound = 3.0;
        let ours = max_norm(&w, 1, bound).expect("f32 on Flex");
        let theirs = renorm_columns(w.clone(), bound);
        let (a, b, before) = (values(&ours), values(&theirs), values(&w));
        let norms = values(&column_norms(w.clone()));
        let mut rescaled = 0;
        for (i, ((x, y), w)) in a.iter().zip(&b).zip(&before).enumerate() {
            let column = i % 64;
            if norms[column] <= 3.0 {
                assert_eq!(
                    x.to_bits(),
                    w.to_bits(),
                    "element {i}: a column under the bound moved"
                );
            } else {
                rescaled += 1;
            }
            assert_eq!(x.to_bits(), y.to_bits(), "element {i}: {x} vs {y}");
        }
        assert!(
            rescaled > 0 && rescaled < a.len(),
            "{rescaled} rescaled: not a mixed case"
        );
        let after = values(&column_norms(ours));
        // At the bound up to the rounding of an f32 sum of 784 squares.
        assert!(after.iter().all(|n| *n <= 3.0 * (1.0 + 1e-5)), "{after:?}");
    }

    /// Units as rows (a convolution kernel's `[out, rest]` layout), by hand:
    /// row 0 is (3, 4), norm 5, rescaled to (1.2, 1.6) at bound 2; row 1,
    /// norm 0.5, stays.
    #[test]
    fn rows_are_units_when_unit_dim_is_zero() {
        let device = Device::flex();
        let w = Tensor::<2>::from_floats([[3.0, 4.0], [0.3, 0.4]], &device);
        let found = values(&max_norm(&w, 0, 2.0).unwrap());
        let expected = [1.2, 1.6, 0.3, 0.4];
        for (x, y) in found.iter().zip(expected) {
            assert!((x - y).abs() < 1e-6, "{found:?}");
        }
    }

    /// Units as rows on a larger matrix (large enough to be rescaled by
    /// bands of rows on several threads) against the tensor code's
    /// arithmetic for rows (`sum_dim(1)`), within 2e-6 relative.
    #[test]
    fn matches_the_tensor_code_by_rows() {
        let device = Device::flex();
        device.seed(11);
        let w = Tensor::<2>::random([256, 300], Distribution::Normal(0.0, 0.2), &device);
        let spread: Vec<f32> = (0..256).map(|j| 0.25 + j as f32 / 96.0).collect();
        let w = w * Tensor::<1>::from_floats(spread.as_slice(), &device).unsqueeze_dim::<2>(1);
        let ours = values(&max_norm(&w, 0, 3.0).unwrap());
        let norms = w.clone().powi_scalar(2).sum_dim(1).sqrt();
        let scale = norms.clone().recip().mul_scalar(3.0).clamp_max(1.0);
        let scale = scale.mask_fill(norms.lower_equal_elem(3.0), 1.0);
        let theirs = values(&(w * scale));
        // Flex's `sum_dim(1)` adds a row in vector lanes, this loop in
        // order: about half the rescaled weights differ, by a few ulp (two
        // f32 sums of 300 squares, each off by up to about 300 * eps / 2 in
        // the worst case).
        for (i, (x, y)) in ours.iter().zip(&theirs).enumerate() {
            assert!((x - y).abs() <= 2e-6 * y.abs(), "element {i}: {x} vs {y}");
        }
    }

    /// Nothing over the bound: the same tensor back, no pass written.
    #[test]
    fn a_matrix_inside_the_bound_comes_back_as_it_is() {
        let device = Device::flex();
        let w = Tensor::<2>::from_floats([[0.3, 0.0], [0.4, 2.0]], &device);
        let found = max_norm(&w, 1, 2.0).unwrap();
        assert_eq!(found.to_data(), w.to_data());
    }

    /// Autodiff tensors and other element types are left to the tensor code.
    #[test]
    fn other_tensors_are_declined() {
        let device = Device::flex();
        let tracked = Tensor::<2>::ones([2, 2], &device.clone().autodiff());
        assert!(max_norm(&tracked, 1, 1.0).is_none());
        let f64s = Tensor::<2>::from_data(
            TensorData::new(vec![1.0f64; 4], [2, 2]),
            (&device, DType::F64),
        );
        assert!(max_norm(&f64s, 1, 1.0).is_none());
    }
}
