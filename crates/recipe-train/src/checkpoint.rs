//! Per-epoch checkpoints of a run (model, optimizer and learning-rate
//! scheduler), written atomically so that a killed run can be resumed.
//!
//! Layout: `<run>/checkpoint/{model,optim,scheduler}-<epoch>.bpk`, Burn's
//! burnpack records. A checkpoint is *complete* when all three files exist;
//! since each is renamed into place only once fully written and synced, a file
//! that exists is whole.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::Bytes;
use burn::train::checkpoint::{
    Checkpoint, Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};
use burn::train::metric::{LossMetric, Metric};

use burn::lr_scheduler::LrSchedulerRecord;
use burn::optim::OptimizerRecord;
use burn::store::ModuleRecord;

use crate::metric_early_stopping::burn_metric;
use crate::{History, KeepCheckpoints, TrainError, write_atomic};

/// The three records a checkpoint is made of, by file-name prefix.
pub(crate) const RECORDS: [&str; 3] = ["model", "optim", "scheduler"];

/// The checkpoint folder of a run folder.
pub fn checkpoint_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("checkpoint")
}

/// The file of one record (`model`, `optim` or `scheduler`) of one epoch.
pub fn checkpoint_file(run_dir: &Path, record: &str, epoch: usize) -> PathBuf {
    checkpoint_dir(run_dir).join(format!("{record}-{epoch}.bpk"))
}

/// The epochs of `run_dir` that have a complete checkpoint, in increasing order.
pub fn complete_checkpoints(run_dir: &Path) -> Vec<usize> {
    let Ok(entries) = fs::read_dir(checkpoint_dir(run_dir)) else {
        return Vec::new();
    };
    let mut epochs: Vec<usize> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_prefix("model-")?
                .strip_suffix(".bpk")?
                .parse()
                .ok()
        })
        .filter(|&epoch| {
            RECORDS
                .iter()
                .all(|record| checkpoint_file(run_dir, record, epoch).is_file())
        })
        .collect();
    epochs.sort_unstable();
    epochs
}

/// A Burn [`Checkpointer`] that writes each record with [`write_atomic`]
/// (temporary file, fsync, rename), unlike Burn's `FileCheckpointer`, which
/// writes in place and can leave a truncated file when the process is killed.
///
/// Use it from your own `SupervisedTraining` with
/// `.with_custom_checkpointers(..)`; see [`atomic_checkpointers`].
#[derive(Debug, Clone)]
pub struct AtomicFileCheckpointer {
    run_dir: PathBuf,
    record: &'static str,
}

impl AtomicFileCheckpointer {
    /// Writes `<run_dir>/checkpoint/<record>-<epoch>.bpk`, as Burn's
    /// `FileCheckpointer` names them (`record`: `model`, `optim` or `scheduler`).
    pub fn new(run_dir: &Path, record: &'static str) -> Self {
        Self {
            run_dir: run_dir.to_path_buf(),
            record,
        }
    }

    fn path(&self, epoch: usize) -> PathBuf {
        checkpoint_file(&self.run_dir, self.record, epoch)
    }

    /// Reads the three records of `epoch`, so that a damaged checkpoint is an
    /// error naming its file (Burn's own loading panics on one).
    pub(crate) fn check(run_dir: &Path, epoch: usize) -> Result<(), TrainError> {
        let fail = |record: &'static str, e: CheckpointerError| {
            TrainError::io(
                checkpoint_file(run_dir, record, epoch),
                format!("cannot read this checkpoint: {e}"),
            )
        };
        let model = Self::new(run_dir, "model");
        Checkpointer::<ModuleRecord>::restore(&model, epoch).map_err(|e| fail("model", e))?;
        let optim = Self::new(run_dir, "optim");
        Checkpointer::<OptimizerRecord>::restore(&optim, epoch).map_err(|e| fail("optim", e))?;
        let scheduler = Self::new(run_dir, "scheduler");
        Checkpointer::<LrSchedulerRecord>::restore(&scheduler, epoch)
            .map_err(|e| fail("scheduler", e))?;
        Ok(())
    }
}

fn io_error(error: impl std::fmt::Display) -> CheckpointerError {
    CheckpointerError::IOError(std::io::Error::other(error.to_string()))
}

impl<R: Checkpoint> Checkpointer<R> for AtomicFileCheckpointer {
    fn save(&self, epoch: usize, record: R) -> Result<(), CheckpointerError> {
        let bytes = record
            .checkpoint_into_bytes()
            .map_err(CheckpointerError::Record)?;
        write_atomic(&self.path(epoch), &bytes).map_err(io_error)
    }

    fn delete(&self, epoch: usize) -> Result<(), CheckpointerError> {
        match fs::remove_file(self.path(epoch)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(CheckpointerError::IOError(error))
            }
            _ => Ok(()),
        }
    }

    fn restore(&self, epoch: usize) -> Result<R, CheckpointerError> {
        let path = self.path(epoch);
        let bytes = fs::read(&path).map_err(|e| io_error(format!("{}: {e}", path.display())))?;
        R::checkpoint_from_bytes(Bytes::from_bytes_vec(bytes)).map_err(CheckpointerError::Record)
    }
}

/// Which checkpoints to keep: the last `keep_last` epochs whose losses were
/// finite (a resume point even when the newest files were being written at the
/// moment of a kill), for restore-best the best epoch so far, and with
/// [`KeepCheckpoints`] the best `top_k` by its monitor.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Retention {
    keep_last: usize,
    saved: Vec<usize>,
    top_k: Option<(KeepCheckpoints, Vec<(usize, f64)>)>,
}

impl Retention {
    /// Two recent checkpoints: Burn saves epoch `e` before the epoch's line
    /// reaches `history.csv`, so a kill in between must still find `e - 1`.
    pub(crate) fn new(already_saved: Vec<usize>) -> Self {
        Self {
            keep_last: 2,
            saved: already_saved,
            top_k: None,
        }
    }

    /// Also keeps the best `keep.top_k` epochs, ranked by `scores` (epoch,
    /// monitored value) so far and those [`Retention::plan`] is given.
    pub(crate) fn keeping(mut self, keep: KeepCheckpoints, scores: Vec<(usize, f64)>) -> Self {
        self.top_k = Some((keep, scores));
        self
    }

    /// The actions for `epoch`: save it unless its loss was not finite (the
    /// last good checkpoint must survive a divergence), then delete what is
    /// neither recent nor `best`.
    pub(crate) fn plan(
        &mut self,
        epoch: usize,
        finite: bool,
        best: Option<usize>,
        score: Option<f64>,
    ) -> Vec<CheckpointingAction> {
        if !finite {
            return Vec::new();
        }
        let mut actions = vec![CheckpointingAction::Save];
        self.saved.retain(|&e| e != epoch);
        self.saved.push(epoch);
        let recent_from = self.saved.len().saturating_sub(self.keep_last);
        let recent: Vec<usize> = self.saved[recent_from..].to_vec();
        let top: Vec<usize> = match &mut self.top_k {
            Some((keep, scores)) => {
                scores.retain(|&(e, _)| e != epoch);
                scores.push((epoch, score.unwrap_or(f64::NAN)));
                keep.rank(scores)
            }
            None => Vec::new(),
        };
        self.saved.retain(|&e| {
            let keep = recent.contains(&e) || Some(e) == best || top.contains(&e);
            if !keep {
                actions.push(CheckpointingAction::Delete(e));
            }
            keep
        });
        actions
    }
}

/// The three atomic checkpointers (model, optimizer, scheduler) for
/// `SupervisedTraining::with_custom_checkpointers`, writing into `run_dir/checkpoint`.
pub fn atomic_checkpointers(
    run_dir: &Path,
) -> (
    AtomicFileCheckpointer,
    AtomicFileCheckpointer,
    AtomicFileCheckpointer,
) {
    (
        AtomicFileCheckpointer::new(run_dir, "model"),
        AtomicFileCheckpointer::new(run_dir, "optim"),
        AtomicFileCheckpointer::new(run_dir, "scheduler"),
    )
}

/// Burn's checkpointing hook: keeps the last two epochs whose losses were
/// finite (a resume point even when a kill interrupted the newest) and the
/// best epoch that an early-stopping strategy publishes, and deletes the rest.
/// An epoch whose `Loss` metric is not finite is not saved; one without a
/// `Loss` metric counts as finite.
pub struct RetainCheckpoints {
    retention: Retention,
    best_epoch: Option<Arc<AtomicUsize>>,
    epochs_done: usize,
    loss_name: String,
    /// Where the store keeps the metric that ranks the top-k epochs.
    ranking: Option<(String, Split, f64)>,
}

impl RetainCheckpoints {
    /// `best_epoch`: the epoch to keep for restore-best (0 = none yet), or
    /// `None` when the run does not restore its best epoch. `epochs_done`:
    /// epochs before this session (Burn's metric store counts from 1 in each).
    pub fn new(
        already_saved: Vec<usize>,
        best_epoch: Option<Arc<AtomicUsize>>,
        epochs_done: usize,
    ) -> Self {
        Self {
            retention: Retention::new(already_saved),
            best_epoch,
            epochs_done,
            loss_name: LossMetric::new().name().to_string(),
            ranking: None,
        }
    }

    /// Also keeps the checkpoints of the best `keep.top_k` epochs by
    /// `keep.monitor` (read from Burn's metric store: `Loss` or `Accuracy`
    /// on its split, or a recorded metric by its name), ranking the epochs of `earlier` (a resumed run's) by
    /// their recorded values. Copy them out with
    /// [`KeepCheckpoints::select`] when the run ends.
    pub fn keeping(mut self, keep: KeepCheckpoints, earlier: &History) -> Self {
        let scores = earlier
            .epochs
            .iter()
            .filter(|record| self.retention.saved.contains(&record.epoch))
            .map(|record| (record.epoch, keep.monitor.of(record)))
            .collect();
        self.ranking = Some(burn_metric(&keep.monitor));
        self.retention = self.retention.keeping(keep, scores);
        self
    }
}

impl CheckpointingStrategy for RetainCheckpoints {
    fn checkpointing(
        &mut self,
        epoch: usize,
        store: &EventStoreClient,
    ) -> Vec<CheckpointingAction> {
        let finite = [Split::Train, Split::Valid].iter().all(|split| {
            store
                .find_metric(
                    &self.loss_name,
                    epoch - self.epochs_done,
                    Aggregate::Mean,
                    split,
                )
                .is_none_or(f64::is_finite)
        });
        let best = self
            .best_epoch
            .as_ref()
            .map(|best| best.load(Ordering::SeqCst))
            .filter(|&best| best > 0);
        let score = self.ranking.as_ref().and_then(|(name, split, divisor)| {
            store
                .find_metric(name, epoch - self.epochs_done, Aggregate::Mean, split)
                .map(|value| value / divisor)
        });
        self.retention.plan(epoch, finite, best, score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deleted(actions: &[CheckpointingAction]) -> Vec<usize> {
        actions
            .iter()
            .filter_map(|a| match a {
                CheckpointingAction::Delete(e) => Some(*e),
                CheckpointingAction::Save => None,
            })
            .collect()
    }

    fn saves(actions: &[CheckpointingAction]) -> bool {
        matches!(actions.first(), Some(CheckpointingAction::Save))
    }

    #[test]
    fn keeps_the_two_latest_and_the_best() {
        let mut retention = Retention::new(Vec::new());
        assert!(deleted(&retention.plan(1, true, None, None)).is_empty());
        assert!(deleted(&retention.plan(2, true, Some(1), None)).is_empty());
        // Epoch 1 is the best: it stays although it is no longer recent.
        assert!(deleted(&retention.plan(3, true, Some(1), None)).is_empty());
        assert_eq!(deleted(&retention.plan(4, true, Some(1), None)), vec![2]);
        // The best moves to 4: 1 goes.
        assert_eq!(deleted(&retention.plan(5, true, Some(4), None)), vec![1, 3]);
        assert_eq!(retention.saved, vec![4, 5]);
    }

    /// Top 2 by validation loss besides the two latest: an epoch leaves
    /// when two better ones and two later ones exist.
    #[test]
    fn keeps_the_top_k_by_their_scores() {
        let keep: KeepCheckpoints = "top_k=2".parse().unwrap();
        let mut retention = Retention::new(vec![1]).keeping(keep, vec![(1, 0.9)]);
        let losses = [(2, 0.5), (3, 0.7), (4, 0.6), (5, 0.4), (6, 0.8)];
        let deletions: Vec<Vec<usize>> = losses
            .iter()
            .map(|&(epoch, loss)| deleted(&retention.plan(epoch, true, None, Some(loss))))
            .collect();
        // 3: 1 goes (0.9: 0.5 and 0.7 are better; 2 and 3 are recent).
        // 4: 3 stays (recent), 2 is top. 5: 3 goes (0.7; top is 5 and 2).
        // 6: 4 goes (0.6; not top, 5 and 6 recent).
        assert_eq!(deletions, [vec![], vec![1], vec![], vec![3], vec![4]]);
        assert_eq!(retention.saved, vec![2, 5, 6]);
    }

    #[test]
    fn a_diverged_epoch_is_not_saved_and_deletes_nothing() {
        let mut retention = Retention::new(vec![1, 2]);
        let actions = retention.plan(3, false, None, None);
        assert!(actions.is_empty(), "{actions:?}");
        assert_eq!(retention.saved, vec![1, 2]);
        let actions = retention.plan(4, true, None, None);
        assert!(saves(&actions));
        assert_eq!(deleted(&actions), vec![1]);
    }

    #[test]
    fn only_complete_checkpoints_count() {
        let dir = std::env::temp_dir().join(format!("recipe-ckpt-{}", std::process::id()));
        for record in RECORDS {
            write_atomic(&checkpoint_file(&dir, record, 3), b"x").unwrap();
            write_atomic(&checkpoint_file(&dir, record, 12), b"x").unwrap();
        }
        // Epoch 13 was being written when the run was killed: no scheduler file.
        write_atomic(&checkpoint_file(&dir, "model", 13), b"x").unwrap();
        write_atomic(&checkpoint_file(&dir, "optim", 13), b"x").unwrap();
        assert_eq!(complete_checkpoints(&dir), vec![3, 12]);
        fs::remove_dir_all(&dir).unwrap();
        assert!(complete_checkpoints(&dir).is_empty());
    }
}
