//! Matrix products of Flex's `f32` tensors, split across the threads by
//! blocks of output columns, each block one single-threaded `gemm` call.
//!
//! Flex hands a product of more than 192³ multiply-adds to `gemm` with
//! `Parallelism::Rayon`, whose split of a 100-row product across two threads
//! is slower than one thread: on the 2-core machine, `[100, 500] x [500,
//! 500]` takes 354-402 µs on two threads and 287-309 µs on one, where
//! PyTorch takes 184-187 µs on two. Two column blocks, one per thread, take
//! 203-208 µs (BENCHMARKS.md). Every element of the output is the same dot
//! product in the same order whatever the split, so the split changes no
//! bit of the result.

use crate::pointwise::Pointwise;
use crate::spin_pool;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Shape, TensorData};

/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MIN_MULTIPLY_ADDS: usize = 1 << 20;
/// Column blocks are multiples of this (one AVX-512 register of `f32`).
const COLUMN_ALIGN: usize = 16;

/// A matrix inside a buffer of `f32`: its first element, its shape and the
/// distance (in elements) between rows and between columns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatrixView {
    first: *const f32,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

// SAFETY: a view only reads, and every view is used while the tensor it
// points into is alive (within the functions of this module).
unsafe impl Send for MatrixView {}
unsafe impl Sync for MatrixView {}

impl MatrixView {
    /// The view of a 2-D `f32` tensor, with its own strides (a transposed
    /// tensor is read in place).
    pub(crate) fn of(tensor: &FlexTensor) -> Self {
        assert_eq!(tensor.dtype(), DType::F32, "split_gemm takes f32 tensors");
        let layout = tensor.layout();
        let dims = layout.shape();
        assert_eq!(dims.num_dims(), 2, "split_gemm takes matrices");
        let storage: &[f32] = tensor.storage();
        let strides = layout.strides();
        Self {
            // SAFETY: the layout's start offset is inside the storage.
            first: unsafe { storage.as_ptr().add(layout.start_offset()) },
            rows: dims[0],
            cols: dims[1],
            row_stride: strides[0],
            col_stride: strides[1],
        }
    }

    /// The transpose, reading the same elements.
    pub(crate) fn transposed(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// A raw pointer to the output, shared by the column blocks, which write
/// disjoint columns.
#[derive(Clone, Copy)]
struct Output(*mut f32);

// SAFETY: each block writes only its own columns of the output.
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

/// `f(a · b + bias)` as a new row-major `[a.rows, b.cols]` tensor: `bias`
/// added to every row after the product (as Burn adds it: the same bits),
/// then `f`, by each thread to its own columns while they are in its cache.
pub(crate) fn product(
    a: MatrixView,
    b: MatrixView,
    bias: Option<&[f32]>,
    f: Pointwise,
) -> FlexTensor {
    assert_eq!(a.cols, b.rows, "split_gemm: inner dimensions differ");
    let (m, n) = (a.rows, b.cols);
    if let Some(bias) = bias {
        assert_eq!(bias.len(), n, "split_gemm: one bias per column");
    }
    // Not zeroed: `gemm` without `read_dst` writes every element of each
    // block before anything reads it (a memset was 4% of case B's step).
    let mut out: Vec<f32> = Vec::with_capacity(m * n);
    let output = Output(out.as_mut_ptr());
    let blocks = column_blocks(m, n, a.cols);
    let run = |&(first, last): &(usize, usize)| {
        // SAFETY: `out` is `m x n`, row-major, alive until the blocks are
        // done; `a` and `b` point into tensors the caller holds; the blocks
        // write disjoint columns.
        unsafe {
            block_product(output, n, a, b, first, last);
            if bias.is_some() || f != Pointwise::Identity {
                finish_columns(output, m, n, first..last, bias, f);
            }
        }
    };
    spin_pool::for_each(blocks, |block| run(&block));
    // SAFETY: the blocks cover every column of every row (`column_blocks`),
    // and each wrote its elements.
    unsafe { out.set_len(m * n) };
    FlexTensor::from_data(TensorData::new(out, Shape::from(vec![m, n])))
}

/// The output's columns `[first, last)`: `out[:, first..last] = a · b[:, first..last]`.
///
/// # Safety
/// `out` points to a row-major `[a.rows, n]` buffer; `a` and `b` to live
/// matrices of the shapes they state.
unsafe fn block_product(
    out: Output,
    n: usize,
    a: MatrixView,
    b: MatrixView,
    first: usize,
    last: usize,
) {
    // SAFETY: the caller's; offsets stay inside the matrices.
    unsafe {
        gemm::gemm(
            a.rows,
            last - first,
            a.cols,
            out.0.add(first),
            1,
            n as isize,
            false,
            a.first,
            a.col_stride,
            a.row_stride,
            b.first.offset(first as isize * b.col_stride),
            b.col_stride,
            b.row_stride,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `out[row, j] = f(out[row, j] + bias[j])` for every row and each column
/// `j` of `columns`.
///
/// # Safety
/// `out` points to a row-major `[m, n]` buffer, `columns.end <= n`, and no
/// other thread touches these columns.
unsafe fn finish_columns(
    out: Output,
    m: usize,
    n: usize,
    columns: std::ops::Range<usize>,
    bias: Option<&[f32]>,
    f: Pointwise,
) {
    let bias = bias.map(|bias| &bias[columns.clone()]);
    for row in 0..m {
        // SAFETY: the caller's; the slice is inside row `row`.
        let values = unsafe {
            std::slice::from_raw_parts_mut(out.0.add(row * n + columns.start), columns.len())
        };
        f.finish_row(values, bias);
    }
}

/// The blocks of output columns, one per thread for a large enough product,
/// each a multiple of [`COLUMN_ALIGN`] wide but the last.
fn column_blocks(m: usize, n: usize, k: usize) -> Vec<(usize, usize)> {
    let threads = rayon::current_num_threads();
    let work = m.saturating_mul(n).saturating_mul(k);
    if threads == 1 || work < PARALLEL_MIN_MULTIPLY_ADDS || n < 2 * COLUMN_ALIGN {
        return vec![(0, n)];
    }
    let width = n.div_ceil(threads).div_ceil(COLUMN_ALIGN) * COLUMN_ALIGN;
    (0..n)
        .step_by(width)
        .map(|first| (first, (first + width).min(n)))
        .collect()
}

/// The sum of each column of a 2-D tensor (a bias's gradient), adding the
/// rows in order.
pub(crate) fn column_sums(tensor: &FlexTensor) -> FlexTensor {
    let n = tensor.layout().shape()[1];
    let mut sums = vec![0.0f32; n];
    crate::flex_loops::with_values(tensor, |values| {
        for row in values.chunks_exact(n) {
            for (sum, &value) in sums.iter_mut().zip(row) {
                *sum += value;
            }
        }
    });
    FlexTensor::from_data(TensorData::new(sums, Shape::from(vec![n])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize, seed: u32) -> FlexTensor {
        let values = (0..rows * cols)
            .map(|i| {
                ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) % 1000) as f32 / 500.0
                    - 1.0
            })
            .collect();
        FlexTensor::from_data(TensorData::new(values, Shape::from(vec![rows, cols])))
    }

    /// The product, element by element in f64 (the reference).
    fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|l| a[i * k + l] as f64 * b[l * n + j] as f64)
                    .sum();
            }
        }
        out
    }

    /// Split across threads or not, with a row start or not, read in place
    /// or transposed: the product is the reference's within f32 rounding,
    /// and the split itself changes no bit.
    #[test]
    fn products_match_the_reference_and_the_split_changes_no_bit() {
        let (m, k, n) = (100, 300, 200);
        let (a, b) = (matrix(m, k, 1), matrix(k, n, 2));
        let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
        let want = reference(a.as_slice().unwrap(), b.as_slice().unwrap(), m, k, n);
        let split = product(
            MatrixView::of(&a),
            MatrixView::of(&b),
            Some(&bias),
            Pointwise::Identity,
        );
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let alone = pool.install(|| {
            product(
                MatrixView::of(&a),
                MatrixView::of(&b),
                Some(&bias),
                Pointwise::Identity,
            )
        });
        assert!(column_blocks(m, n, k).len() > 1 || rayon::current_num_threads() == 1);
        let bits = |t: &FlexTensor| {
            t.as_slice::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect::<Vec<_>>()
        };
        assert_eq!(bits(&split), bits(&alone), "the split changed the result");
        for (index, (&got, want)) in split
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .zip(&want)
            .enumerate()
        {
            let want = want + bias[index % n] as f64;
            assert!((got as f64 - want).abs() < 1e-4, "{index}: {got} vs {want}");
        }
        // aᵀ read in place: (aᵀ)ᵀ · b = a · b.
        let a_t = FlexTensor::from_data(TensorData::new(
            (0..k * m)
                .map(|i| a.as_slice::<f32>().unwrap()[(i % m) * k + i / m])
                .collect::<Vec<f32>>(),
            Shape::from(vec![k, m]),
        ));
        let again = product(
            MatrixView::of(&a_t).transposed(),
            MatrixView::of(&b),
            None,
            Pointwise::Identity,
        );
        for ((&got, want), index) in again.as_slice::<f32>().unwrap().iter().zip(&want).zip(0..) {
            assert!((got as f64 - want).abs() < 1e-4, "{index}: {got} vs {want}");
        }
    }

    #[test]
    fn blocks_cover_every_column_once() {
        for n in [1, 31, 32, 33, 500, 1200] {
            let blocks = column_blocks(100, n, 500);
            assert_eq!(blocks.first().unwrap().0, 0);
            assert_eq!(blocks.last().unwrap().1, n);
            for pair in blocks.windows(2) {
                assert_eq!(pair[0].1, pair[1].0);
                assert_eq!(pair[0].1 % COLUMN_ALIGN, 0);
            }
        }
    }

    #[test]
    fn column_sums_add_the_rows() {
        let t = FlexTensor::from_data(TensorData::new(
            vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0],
            Shape::from(vec![3, 2]),
        ));
        assert_eq!(column_sums(&t).as_slice::<f32>().unwrap(), &[9.0, 12.0]);
    }
}
