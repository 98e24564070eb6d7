//! Resuming a run from its last complete epoch, exactly as if it had never
//! stopped.
//!
//! What a run's state is made of, and where each part comes back from:
//! - weights, optimizer moments and the learning-rate schedule: the epoch's
//!   checkpoint (see [`crate::checkpoint`]);
//! - early stopping and the history: replayed from `history.csv`;
//! - the order of the training data: Burn's loader draws a new shuffle each
//!   time an epoch starts, so the resumed loader draws (and drops) the
//!   shuffles of the epochs already done;
//! - dropout's random numbers: the backend is re-seeded at the start of every
//!   epoch from the run's seed and the epoch number ([`epoch_seed`]), in every
//!   run, so epoch `e` draws the same masks whether or not the run stopped
//!   before it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::data::dataloader::{DataLoader, DataLoaderIterator};
use burn::tensor::Device;

use crate::checkpoint::complete_checkpoints;
use crate::{History, RunArtifacts, TrainConfig, TrainError};

/// The seed of the backend's random numbers (dropout masks) for `epoch` of a
/// run seeded with `seed`: SplitMix64 of the pair, so neighbouring epochs and
/// seeds get unrelated streams.
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    let mut z = seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Seeds `device`'s random numbers for `epoch` of a run seeded with `seed`.
pub(crate) fn seed_epoch(device: &Device, seed: u64, epoch: usize) {
    device.seed(epoch_seed(seed, epoch));
}

/// Where a stopped run picks up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResumePoint {
    /// The last epoch with both a complete checkpoint and a line in
    /// `history.csv` (0: none, the run starts over with its own settings).
    pub(crate) epoch: usize,
    /// The first `epoch` lines of `history.csv`.
    pub(crate) history: History,
    /// Epochs with a complete checkpoint on disk (including any newer than
    /// `epoch`, which the resumed run overwrites or deletes).
    pub(crate) checkpoints: Vec<usize>,
}

impl ResumePoint {
    /// Reads the state of the run in `run_dir`.
    pub(crate) fn find(run_dir: &Path) -> Result<Self, TrainError> {
        let artifacts = RunArtifacts::new(run_dir);
        if artifacts.summary().is_file() {
            return Err(TrainError::NothingToResume {
                dir: run_dir.to_path_buf(),
                reason: "the run has finished (summary.json exists)".into(),
            });
        }
        let history_path = artifacts.history();
        let mut history = match std::fs::read_to_string(&history_path) {
            Ok(text) => History::from_csv(&text).map_err(|e| TrainError::io(&history_path, e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => History::default(),
            Err(e) => return Err(TrainError::io(&history_path, e)),
        };
        for (index, record) in history.epochs.iter().enumerate() {
            if record.epoch != index + 1 {
                return Err(TrainError::io(
                    &history_path,
                    format!(
                        "line {} is epoch {}, expected epoch {}",
                        index + 2,
                        record.epoch,
                        index + 1
                    ),
                ));
            }
        }
        let checkpoints = complete_checkpoints(run_dir);
        let epoch = checkpoints
            .iter()
            .copied()
            .filter(|&epoch| epoch <= history.epochs.len())
            .max()
            .unwrap_or(0);
        history.epochs.truncate(epoch);
        Ok(Self {
            epoch,
            history,
            checkpoints,
        })
    }
}

/// Reads `config.json` of the run in `run_dir`.
pub fn read_run_config(run_dir: &Path) -> Result<TrainConfig, TrainError> {
    let path = RunArtifacts::new(run_dir).config();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        TrainError::io(
            &path,
            format!("{e} (is {} the folder of a run?)", run_dir.display()),
        )
    })?;
    serde_json::from_str(&text).map_err(|e| TrainError::io(&path, e))
}

/// The training loader of a run: it numbers the epochs, starts at a later
/// one on resume, and seeds the backend's random numbers for each epoch as
/// the epoch starts.
///
/// - Resume: its first iteration yields the shuffle that the wrapped
///   loader's iteration number `epochs_done + 1` would have. It relies on
///   Burn's `BatchDataLoader` drawing one shuffle per call of `iter`
///   (documented on `DataLoaderBuilder::shuffle`) and on `to_device` forking
///   its generator deterministically.
/// - Seeding: each call of `iter` (one per epoch: Burn's single-device
///   strategy makes the iterator when the epoch's training split starts)
///   seeds `device` with [`epoch_seed`] of the run's seed and the epoch, so
///   epoch `e` draws the same dropout masks whether or not the run stopped
///   before it, and no other hook's timing matters. The session's first
///   epoch is the exception: the caller seeds it before launching Burn's
///   Learner ([`seed_epoch`]), because Burn may initialize the network's
///   lazy parameters, which draw from the same generator, before the first
///   iteration.
///
/// The resume test checks the outcome end to end.
pub(crate) struct EpochLoader<O> {
    inner: Arc<dyn DataLoader<O>>,
    epochs_done: usize,
    skipped: AtomicBool,
    seeding: Option<(Device, u64)>,
    first_epoch: usize,
    next_epoch: AtomicUsize,
    counter: Option<Arc<AtomicUsize>>,
}

impl<O: Send + 'static> EpochLoader<O> {
    /// Wraps `inner` for a run that has done `epochs_done` epochs; with
    /// `seeding`, seeds that device from that seed at each epoch's start.
    pub(crate) fn new(
        inner: Arc<dyn DataLoader<O>>,
        epochs_done: usize,
        seeding: Option<(Device, u64)>,
    ) -> Self {
        Self::resuming_at(
            inner,
            epochs_done,
            seeding,
            epochs_done + 1,
            epochs_done + 1,
        )
    }

    fn resuming_at(
        inner: Arc<dyn DataLoader<O>>,
        pending_skips: usize,
        seeding: Option<(Device, u64)>,
        first_epoch: usize,
        next_epoch: usize,
    ) -> Self {
        Self {
            inner,
            epochs_done: pending_skips,
            skipped: AtomicBool::new(pending_skips == 0),
            seeding,
            first_epoch,
            next_epoch: AtomicUsize::new(next_epoch),
            counter: None,
        }
    }

    /// Also stores each epoch's number in `counter` as the epoch starts (for
    /// recorders that file training steps by epoch).
    pub(crate) fn counting_into(mut self, counter: Option<Arc<AtomicUsize>>) -> Self {
        self.counter = counter;
        self
    }

    fn pending(&self) -> usize {
        if self.skipped.load(Ordering::SeqCst) {
            0
        } else {
            self.epochs_done
        }
    }

    fn derived(&self, inner: Arc<dyn DataLoader<O>>) -> Arc<dyn DataLoader<O>> {
        Arc::new(
            Self::resuming_at(
                inner,
                self.pending(),
                self.seeding.clone(),
                self.first_epoch,
                self.next_epoch.load(Ordering::SeqCst),
            )
            .counting_into(self.counter.clone()),
        )
    }
}

impl<O: Send + 'static> DataLoader<O> for EpochLoader<O> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<O> + 'a> {
        if !self.skipped.swap(true, Ordering::SeqCst) {
            for _ in 0..self.epochs_done {
                // Creating the iterator draws the epoch's shuffle; no batch is built.
                drop(self.inner.iter());
            }
        }
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        if let Some(counter) = &self.counter {
            counter.store(epoch, Ordering::SeqCst);
        }
        if let Some((device, seed)) = &self.seeding
            && epoch > self.first_epoch
        {
            seed_epoch(device, *seed, epoch);
        }
        self.inner.iter()
    }

    fn num_items(&self) -> usize {
        self.inner.num_items()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<O>> {
        self.derived(self.inner.to_device(device))
    }

    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<O>> {
        self.derived(self.inner.slice(start, end))
    }
}

/// The checkpoint folder of a run that stopped, for messages.
pub(crate) fn last_good_checkpoint(run_dir: &Path) -> Option<(usize, PathBuf)> {
    complete_checkpoints(run_dir).last().map(|&epoch| {
        (
            epoch,
            crate::checkpoint::checkpoint_file(run_dir, "model", epoch),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use burn::data::dataloader::DataLoaderBuilder;
    use recipe_data::{ImageBatch, ImageBatcher, ImageDataset, ImageSet};

    use super::*;

    fn loader(epochs_done: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        let set = ImageSet {
            pixels: (0..=255).collect(),
            labels: (0..=255).map(|i| (i % 10) as u8).collect(),
            rows: 1,
            cols: 1,
        };
        let inner = DataLoaderBuilder::new(ImageBatcher::default())
            .batch_size(256)
            .shuffle(7)
            .build(ImageDataset::new(set));
        Arc::new(EpochLoader::new(inner, epochs_done, None)).to_device(&Device::flex())
    }

    fn epoch_order(loader: &Arc<dyn DataLoader<ImageBatch>>) -> Vec<f32> {
        let batch = loader.iter().next().unwrap().unwrap();
        batch.inputs.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn a_resumed_loader_continues_the_shuffle_sequence() {
        let fresh = loader(0);
        let orders: Vec<Vec<f32>> = (0..4).map(|_| epoch_order(&fresh)).collect();
        assert_ne!(orders[0], orders[1], "each epoch must draw a new shuffle");
        let resumed = loader(2);
        assert_eq!(epoch_order(&resumed), orders[2]);
        assert_eq!(epoch_order(&resumed), orders[3]);
    }

    #[test]
    fn epoch_seeds_differ_by_epoch_and_seed() {
        let seeds = [
            epoch_seed(0, 1),
            epoch_seed(0, 2),
            epoch_seed(1, 1),
            epoch_seed(1, 2),
        ];
        for (i, a) in seeds.iter().enumerate() {
            for b in &seeds[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(epoch_seed(42, 3), epoch_seed(42, 3));
    }
}
