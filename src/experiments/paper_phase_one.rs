//! Phase 1 of the paper runs, trained here or taken from the
//! `results.json` of an earlier `recipe reproduce paper`: Srivastava et
//! al.'s retraining afresh needs nothing of phase 1 but the epoch it kept,
//! so a phase 1 measured once (hours on 2 cores) need not be trained again
//! to be retrained.

use std::path::{Path, PathBuf};

use recipe_models::Mlp;
use recipe_train::{InvalidSetting, TrainError, TrainedModel};
use serde::Deserialize;

use super::PaperRun;
use super::paper_records::read_paper_rows;
use super::paper_retraining::Retraining;

/// Where the paper runs' phase 1 comes from.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum PhaseOne {
    /// Trained in each run's folder (or read back or resumed there).
    #[default]
    Train,
    /// The figures an earlier invocation recorded, one row per run and seed.
    Recorded(PhaseOneRecords),
}

/// The rows of an earlier `results.json` that a retraining can start from.
#[derive(Debug, Clone)]
pub struct PhaseOneRecords {
    file: PathBuf,
    rows: Vec<RecordedPhaseOne>,
}

/// The part of a [`PaperRow`](super::PaperRow) that phase 1 decided.
#[derive(Debug, Clone, Deserialize)]
pub(super) struct RecordedPhaseOne {
    name: String,
    seed: u64,
    /// The test error of the model phase 1 kept: `test_error` of a row
    /// that did not retrain.
    test_error: f64,
    valid_error: f64,
    epochs_run: usize,
    best_epoch: usize,
    retrain_epochs: Option<usize>,
    seconds: f64,
}

impl PhaseOneRecords {
    /// The rows of `file`, a `results.json` of `recipe reproduce paper`
    /// whose runs did not retrain (a retrained row's seconds and test
    /// error are the retraining's).
    pub fn read(file: &Path) -> Result<Self, TrainError> {
        let rows: Vec<RecordedPhaseOne> = read_paper_rows(file)?;
        if let Some(row) = rows.iter().find(|row| row.retrain_epochs.is_some()) {
            return Err(TrainError::Io {
                path: file.to_path_buf(),
                reason: format!(
                    "`{}` seed {} was retrained on all images; a phase 1 record is a row of a \
                     run without retraining",
                    row.name, row.seed
                )
                .into(),
            });
        }
        Ok(Self {
            file: file.to_path_buf(),
            rows,
        })
    }

    /// Whether every seed of every run of `runs` has a row here, within
    /// the run's epoch budget (a row of the full profile is no phase 1 of
    /// the quick one), and a retraining that can start from it; the first
    /// that has not, in words.
    pub(super) fn cover(&self, runs: &[PaperRun]) -> Result<(), TrainError> {
        for run in runs {
            if run.retraining == Retraining::UntilObjectiveMatches {
                return Err(from_weights(&format!("phase 1 of `{}`", run.name)));
            }
            for &seed in &run.seeds {
                let row = self.find(&run.name, seed)?;
                let budget = run.config.fit.epochs;
                if row.epochs_run > budget || row.best_epoch > row.epochs_run {
                    return Err(self.refusal(format!(
                        "`{}` seed {seed} kept epoch {} of {}, where the run allows at most \
                         {budget} epochs: a record of other settings",
                        run.name, row.best_epoch, row.epochs_run
                    )));
                }
            }
        }
        Ok(())
    }

    /// The row of run `name`, seed `seed`.
    pub(super) fn find(&self, name: &str, seed: u64) -> Result<&RecordedPhaseOne, TrainError> {
        self.rows
            .iter()
            .find(|row| row.name == name && row.seed == seed)
            .ok_or_else(|| self.refusal(format!("no row of `{name}` with seed {seed}")))
    }

    /// The error that refuses this file, and why.
    fn refusal(&self, why: String) -> TrainError {
        TrainError::Io {
            path: self.file.clone(),
            reason: why.into(),
        }
    }
}

/// The refusal of a record for `phase_one` (`phase 1 of `NAME``), whose
/// retraining continues from phase 1's weights.
pub(super) fn from_weights(phase_one: &str) -> TrainError {
    TrainError::InvalidConfig(InvalidSetting::new(
        phase_one,
        "its trained model, which the retraining continues from",
        "a record of its figures only",
    ))
}

/// What a paper row takes from phase 1, however phase 1 came about.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PhaseOneFigures {
    /// The epoch whose weights phase 1 kept.
    pub best_epoch: usize,
    pub epochs_run: usize,
    /// Percent, of the kept model.
    pub test_error: f64,
    /// Percent, of the kept model.
    pub valid_error: f64,
    pub seconds: f64,
    /// Validation error per epoch, percent; none for a recorded phase 1.
    pub valid_errors: Vec<(usize, f64)>,
}

/// The seconds of every epoch a run trained, over all its pieces.
pub(super) fn epoch_seconds(run: &TrainedModel<Mlp>) -> f64 {
    run.history.epochs.iter().map(|e| e.seconds).sum()
}

impl PhaseOneFigures {
    pub(super) fn of_model(first: &TrainedModel<Mlp>) -> Self {
        Self {
            best_epoch: first.summary.weights_from_epoch,
            epochs_run: first.summary.epochs_run,
            test_error: 100.0 * (1.0 - first.summary.test_accuracy),
            valid_error: 100.0 * (1.0 - first.summary.valid_accuracy),
            seconds: epoch_seconds(first),
            valid_errors: first
                .history
                .epochs
                .iter()
                .map(|e| (e.epoch, 100.0 * (1.0 - e.valid_accuracy)))
                .collect(),
        }
    }

    pub(super) fn of_record(record: &RecordedPhaseOne) -> Self {
        Self {
            best_epoch: record.best_epoch,
            epochs_run: record.epochs_run,
            test_error: record.test_error,
            valid_error: record.valid_error,
            seconds: record.seconds,
            valid_errors: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::paper_records::written_results;
    use crate::experiments::{PaperBudget, paper_runs};

    const ROW: &str = r#"{"name": "dropout + max-norm", "source": "Srivastava et al. 2014, Table 9",
        "paper_test_error": 1.05, "seed": 2, "test_error": 1.28, "valid_error": 1.28,
        "epochs_run": 270, "best_epoch": 170, "retrain_epochs": null, "seconds": 7337.0,
        "deviations": []}"#;

    #[test]
    fn a_recorded_row_gives_phase_ones_figures_by_run_and_seed() {
        let file = written_results("phase-one-rows", &format!("[{ROW}]"));
        let records = PhaseOneRecords::read(&file).unwrap();
        let figures = PhaseOneFigures::of_record(records.find("dropout + max-norm", 2).unwrap());
        assert_eq!(figures.best_epoch, 170);
        assert_eq!(figures.epochs_run, 270);
        assert_eq!(figures.test_error, 1.28);
        assert_eq!(figures.seconds, 7337.0);
        let missing = records
            .find("dropout + max-norm", 3)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("results.json")
                && missing.contains("no row of `dropout + max-norm` with seed 3"),
            "{missing}"
        );
    }

    #[test]
    fn a_record_beyond_the_runs_budget_is_refused_as_other_settings() {
        let file = written_results("phase-one-budget", &format!("[{ROW}]"));
        let records = PhaseOneRecords::read(&file).unwrap();
        let run = |budget| {
            let runs = paper_runs(PaperBudget::Full).unwrap();
            let mut run = runs
                .into_iter()
                .find(|run| run.name == "dropout + max-norm")
                .unwrap();
            run.seeds = vec![2];
            run.config.fit.epochs = budget;
            run
        };
        records.cover(&[run(500)]).unwrap();
        let error = records.cover(&[run(3)]).unwrap_err().to_string();
        assert!(
            error.contains("kept epoch 170 of 270") && error.contains("at most 3 epochs"),
            "{error}"
        );
    }

    #[test]
    fn a_file_that_is_no_phase_one_record_is_refused_by_name() {
        let file = written_results("phase-one-not-rows", "{\"not\": \"rows\"}");
        let error = PhaseOneRecords::read(&file).unwrap_err().to_string();
        assert!(
            error.contains("results.json") && error.contains("expected the results.json"),
            "{error}"
        );
        let retrained = ROW.replace("\"retrain_epochs\": null", "\"retrain_epochs\": 142");
        let file = written_results("phase-one-retrained", &format!("[{retrained}]"));
        let error = PhaseOneRecords::read(&file).unwrap_err().to_string();
        assert!(error.contains("seed 2 was retrained"), "{error}");
        let absent = PhaseOneRecords::read(Path::new("/nonexistent/results.json"));
        assert!(
            absent
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/results.json"),
            "the missing file is named"
        );
    }
}
