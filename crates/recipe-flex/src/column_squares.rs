//! Each column's sum of squares of a row-major matrix, added down the rows
//! in order (the bits of one thread's loop and of Flex's `sum_dim(0)`),
//! with the rows shared out among the threads as a pipeline.
//!
//! The loop keeps a tile of 64 columns' running sums in registers while it
//! goes down the rows (through a slice of sums, every weight cost a load
//! and a store of its column's sum).
//!
//! Why a pipeline: the max-norm constraint reads a weight matrix just after
//! the fused optimizer wrote it, each thread its own band of rows, which is
//! still in that core's cache. One thread summing every column read half of
//! the matrix from the other core (max-norm cost 7.5-11% of case A's step
//! on a 2-core Intel host; BENCHMARKS.md has the figures after both
//! changes). The threads cannot each sum their own band from
//! zero and add the results: that adds in another order and moves the
//! figures of every max-norm run. So the columns go in blocks: the first
//! thread sums a block down its band and hands the partial sums on to the
//! next thread, which goes on down its own band while the first starts the
//! next block. Each thread reads its own band; the bits are the serial
//! loop's.

use std::ops::Range;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::simd::simd_dispatch;
use crate::spin_pool;

/// Below this many weights one thread sums them (a hand-off costs more).
pub(crate) const PARALLEL_MIN_WEIGHTS: usize = 1 << 15;

/// Columns per block handed from stage to stage: one tile (a 512-column
/// matrix goes in 8 blocks, so the pipeline fills in an eighth of a stage).
/// Measured on the 2-core Intel host, 784x512: 20 µs a call at 64 and 128
/// columns, 62 µs at 32 (narrower than a tile, the untiled loop).
const BLOCK_COLUMNS: usize = TILE;

/// A thread's band needs this many rows to be worth a hand-off.
const MIN_ROWS_PER_THREAD: usize = 16;

/// A stage's progress when it stopped early (it panicked): the stages after
/// it stop waiting for it.
const ABANDONED: usize = usize::MAX;

/// The sum of `w * w` over each column of `values` (`[rows, columns]`,
/// row-major), each column added from the first row to the last.
pub(crate) fn column_sums_of_squares(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    debug_assert_eq!(values.len(), rows * columns, "a [rows, columns] matrix");
    let mut sums = vec![0.0f32; columns];
    let stages = stage_count(values.len(), rows);
    if stages > 1 && Pipeline::new(values, columns, &mut sums, stages).run(rows) {
        return sums;
    }
    add_squares(values, columns, 0..rows, 0, &mut sums);
    sums
}

/// How many threads share the rows: one when the matrix is small.
fn stage_count(weights: usize, rows: usize) -> usize {
    if weights < PARALLEL_MIN_WEIGHTS {
        return 1;
    }
    spin_pool::threads().min(rows / MIN_ROWS_PER_THREAD).max(1)
}

/// Columns summed at once, held in registers while the loop goes down the
/// rows (four AVX-512 registers, eight AVX2, sixteen SSE).
const TILE: usize = 64;

/// Adds the squares of `rows` to `sums`, the running sums of the columns
/// from `first_column` on. Each column is added row after row, whatever the
/// tiling and the vector width (lanes are columns).
#[inline(always)]
fn add_squares_any(
    values: &[f32],
    columns: usize,
    rows: Range<usize>,
    first_column: usize,
    sums: &mut [f32],
) {
    let mut tiles = sums.chunks_exact_mut(TILE);
    let mut column = first_column;
    for tile in &mut tiles {
        let tile: &mut [f32; TILE] = tile.try_into().expect("chunks_exact");
        // A local copy, so that the sums stay in registers down the rows
        // (through the slice they would be stored and loaded every row).
        let mut acc = *tile;
        for row in rows.clone() {
            let start = row * columns + column;
            let w: &[f32; TILE] = values[start..start + TILE].try_into().expect("a tile");
            for (sum, w) in acc.iter_mut().zip(w) {
                *sum += w * w;
            }
        }
        *tile = acc;
        column += TILE;
    }
    let rest = tiles.into_remainder();
    let width = rest.len();
    for row in rows {
        let start = row * columns + column;
        for (sum, w) in rest.iter_mut().zip(&values[start..start + width]) {
            *sum += w * w;
        }
    }
}

simd_dispatch! {
    /// [`add_squares_any`], compiled for the widest vectors the CPU has
    /// (`crate::simd`: the lanes are columns, so the width does not change
    /// the order of any column's additions).
    fn add_squares / add_squares_at [](
        values: &[f32],
        columns: usize,
        rows: Range<usize>,
        first_column: usize,
        sums: &mut [f32],
    ) => add_squares_any
}

/// The matrix, the running sums by block of columns, and how far each stage
/// (a band of rows, one thread) has come.
struct Pipeline<'a> {
    values: &'a [f32],
    columns: usize,
    /// Taken by one stage at a time, in stage order (`finished` says when).
    blocks: Vec<Mutex<&'a mut [f32]>>,
    /// Per stage, how many blocks it has finished (or [`ABANDONED`]).
    finished: Vec<AtomicUsize>,
}

impl<'a> Pipeline<'a> {
    fn new(values: &'a [f32], columns: usize, sums: &'a mut [f32], stages: usize) -> Self {
        Self {
            values,
            columns,
            blocks: sums.chunks_mut(BLOCK_COLUMNS).map(Mutex::new).collect(),
            finished: (0..stages).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Runs the stages on recipe-flex's threads, one each (or, for a
    /// thread late to start, after the stages before it on the caller's),
    /// the rows split evenly (as the fused optimizer splits them); `false`,
    /// having added nothing, when the threads are not free.
    fn run(self, rows: usize) -> bool {
        let stages = self.finished.len();
        let bands: Vec<(usize, Range<usize>)> = (0..stages)
            .map(|stage| (stage, stage * rows / stages..(stage + 1) * rows / stages))
            .collect();
        spin_pool::for_each_at_once(bands, |(stage, band)| self.run_stage(stage, band)).is_ok()
    }

    fn run_stage(&self, stage: usize, band: Range<usize>) {
        let progress = Progress(&self.finished[stage]);
        for (index, block) in self.blocks.iter().enumerate() {
            if stage > 0 && !self.wait_for(stage - 1, index) {
                return;
            }
            let Ok(mut sums) = block.lock() else {
                return;
            };
            add_squares(
                self.values,
                self.columns,
                band.clone(),
                index * BLOCK_COLUMNS,
                &mut sums,
            );
            drop(sums);
            progress.finished(index + 1);
        }
        std::mem::forget(progress);
    }

    /// Waits until `stage` has finished `block`; `false` if it never will.
    fn wait_for(&self, stage: usize, block: usize) -> bool {
        let mut backoff = spin_pool::Backoff::default();
        loop {
            match self.finished[stage].load(Ordering::Acquire) {
                ABANDONED => return false,
                done if done > block => return true,
                _ => backoff.wait(),
            }
        }
    }
}

/// A stage's count of finished blocks, set to [`ABANDONED`] if the stage
/// stops before its last block (dropped on the way out of a panic).
struct Progress<'a>(&'a AtomicUsize);

impl Progress<'_> {
    fn finished(&self, blocks: usize) {
        self.0.store(blocks, Ordering::Release);
    }
}

impl Drop for Progress<'_> {
    fn drop(&mut self) {
        self.0.store(ABANDONED, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::SimdLevel;

    fn bits(values: &[f32]) -> Vec<u32> {
        values.iter().map(|v| v.to_bits()).collect()
    }

    /// A matrix whose squares do not add exactly in `f32`, so that another
    /// order of addition would show in the last bits.
    fn matrix(rows: usize, columns: usize) -> Vec<f32> {
        (0..rows * columns)
            .map(|i| ((i * 7919) % 1009) as f32 / 97.0 - 5.0 + 1e-3 * (i % 13) as f32)
            .collect()
    }

    /// The reference: each column folded down the rows, one at a time.
    fn serial(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
        (0..columns)
            .map(|column| {
                (0..rows).fold(0.0f32, |sum, row| {
                    let w = values[row * columns + column];
                    sum + w * w
                })
            })
            .collect()
    }

    /// Split across the threads (the shapes of case A's and the paper nets'
    /// weights, and ragged ones: a last block narrower than a tile, rows
    /// that do not split evenly) the sums are the plain row-order sums, bit
    /// for bit, and so are the tiled loop's at every vector width.
    #[test]
    fn the_pipeline_adds_in_row_order() {
        for (rows, columns) in [(784, 512), (512, 512), (1024, 2048), (999, 65), (64, 600)] {
            let values = matrix(rows, columns);
            let found = column_sums_of_squares(&values, rows, columns);
            let expected = serial(&values, rows, columns);
            assert_eq!(bits(&found), bits(&expected), "[{rows}, {columns}]");
            for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
                let mut sums = vec![0.0f32; columns];
                add_squares_at(level, &values, columns, 0..rows, 0, &mut sums);
                assert_eq!(
                    bits(&sums),
                    bits(&expected),
                    "{level:?}, [{rows}, {columns}]"
                );
            }
            // The test can tell the orders apart: two halves summed apart
            // and then added differ from the row order in some column.
            let (top, bottom) = values.split_at(rows / 2 * columns);
            let halves: Vec<f32> = serial(top, rows / 2, columns)
                .iter()
                .zip(serial(bottom, rows - rows / 2, columns))
                .map(|(a, b)| a + b)
                .collect();
            assert_ne!(bits(&halves), bits(&expected), "[{rows}, {columns}]");
        }
    }

    /// Each stage in the pipeline, run by hand on its own thread, gives the
    /// serial sums; this holds however many stages the host has threads for.
    #[test]
    fn any_number_of_stages_gives_the_serial_sums() {
        let (rows, columns) = (300, 200);
        let values = matrix(rows, columns);
        let expected = serial(&values, rows, columns);
        for stages in 1..=5 {
            let mut sums = vec![0.0f32; columns];
            let pipeline = Pipeline::new(&values, columns, &mut sums, stages);
            std::thread::scope(|scope| {
                // Started last stage first: each waits for the one before.
                for stage in (0..stages).rev() {
                    let pipeline = &pipeline;
                    scope.spawn(move || {
                        pipeline
                            .run_stage(stage, stage * rows / stages..(stage + 1) * rows / stages)
                    });
                }
            });
            drop(pipeline);
            assert_eq!(bits(&sums), bits(&expected), "{stages} stages");
        }
    }

    /// A stage that stops early does not leave the next one waiting.
    #[test]
    fn an_abandoned_stage_releases_the_next() {
        let values = matrix(64, 128);
        let mut sums = vec![0.0f32; 128];
        let pipeline = Pipeline::new(&values, 128, &mut sums, 2);
        drop(Progress(&pipeline.finished[0]));
        assert!(!pipeline.wait_for(0, 0));
        pipeline.run_stage(1, 32..64);
        assert_eq!(pipeline.finished[1].load(Ordering::Relaxed), ABANDONED);
    }

    /// Many callers at once (the pool busy, so some run serially): every
    /// result is the serial one.
    #[test]
    fn concurrent_callers_all_get_the_serial_sums() {
        let (rows, columns) = (256, 256);
        let values = matrix(rows, columns);
        let expected = bits(&serial(&values, rows, columns));
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let found = column_sums_of_squares(&values, rows, columns);
                        assert_eq!(bits(&found), expected);
                    }
                });
            }
        });
    }
}
