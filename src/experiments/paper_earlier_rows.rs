//! Seeds of a paper run trained by an earlier `recipe reproduce paper`,
//! read from its `results.json` to join this invocation's report: a run
//! trained in pieces (one seed a machine, or a seed lost and trained
//! again) reports all its seeds in one table, each figure as measured.

use std::path::{Path, PathBuf};

use recipe_train::TrainError;

use super::paper_records::read_paper_rows;
use super::{PaperRow, PaperRun};

/// The flag that merges earlier rows, named in the departure it lists.
const MERGE_FLAG: &str = "--merge-results";
/// The flag that picks fewer seeds, named in the departure it lists.
const SEEDS_FLAG: &str = "--seeds";

/// The rows of earlier `results.json` files.
#[derive(Debug, Clone, Default)]
pub struct EarlierRows {
    files: Vec<(PathBuf, Vec<PaperRow>)>,
}

impl EarlierRows {
    /// The rows of each of `files`, each a `results.json` of `recipe
    /// reproduce paper`.
    pub fn read(files: &[PathBuf]) -> Result<Self, TrainError> {
        let files = files
            .iter()
            .map(|file| Ok((file.clone(), read_paper_rows(file)?)))
            .collect::<Result<_, TrainError>>()?;
        Ok(Self { files })
    }

    /// The rows of `run` for the seeds it does not train itself, as
    /// recorded, sorted by seed, after checking that they were trained with
    /// the same departures from the paper (the lines that only say how the
    /// seeds came together aside): a record of other settings, a seed that
    /// `run` trains too, or one seed in two files is refused in words.
    pub fn rows_of(&self, run: &PaperRun) -> Result<Vec<PaperRow>, TrainError> {
        let settings = settings_departures(&run.deviations);
        let mut joining: Vec<PaperRow> = Vec::new();
        for (file, rows) in &self.files {
            let refuse = |why: String| TrainError::Io {
                path: file.clone(),
                reason: why.into(),
            };
            for row in rows.iter().filter(|row| row.name == run.name) {
                if run.seeds.contains(&row.seed) {
                    return Err(refuse(format!(
                        "`{}` seed {} is trained by this command too: leave it out of {SEEDS_FLAG} \
                         or out of {MERGE_FLAG}",
                        run.name, row.seed
                    )));
                }
                if joining.iter().any(|other| other.seed == row.seed) {
                    return Err(refuse(format!(
                        "`{}` seed {} is in two of the {MERGE_FLAG} files",
                        run.name, row.seed
                    )));
                }
                if settings_departures(&row.deviations) != settings {
                    return Err(refuse(format!(
                        "`{}` seed {} was trained with other departures from the paper than \
                         this command's: {:?} where this command has {:?}",
                        run.name,
                        row.seed,
                        settings_departures(&row.deviations),
                        settings
                    )));
                }
                joining.push(row.clone());
            }
        }
        joining.sort_by_key(|row| row.seed);
        Ok(joining)
    }

    /// Whether any file holds a row of one of `runs`.
    pub fn has_rows_of(&self, runs: &[PaperRun]) -> bool {
        self.files.iter().any(|(_, rows)| {
            rows.iter()
                .any(|row| runs.iter().any(|run| run.name == row.name))
        })
    }

    /// The files read, for the departure that names them.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.files.iter().map(|(file, _)| file.as_path())
    }
}

/// The departure of a run reported with fewer seeds than its protocol's.
pub fn fewer_seeds_departure(seeds: usize, protocol: usize) -> String {
    format!("{seeds} seed(s) ({SEEDS_FLAG}) where the protocol reports {protocol}")
}

/// The departure of a run some of whose seeds an earlier command trained.
pub fn merged_seeds_departure(seeds: &[u64], files: &[&Path]) -> String {
    let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    format!(
        "seed(s) {} trained by an earlier command, with the same departures: their rows are \
         read from {} ({MERGE_FLAG}; its results.md names the command), and have no curve in \
         the chart",
        seeds.join(", "),
        files.join(", ")
    )
}

/// `deviations` without the lines that say how a report's seeds came
/// together (how many, and which were merged), which differ between the
/// pieces of one run.
fn settings_departures(deviations: &[String]) -> Vec<&str> {
    let seeds_only = |line: &str| {
        line.contains(&format!("({SEEDS_FLAG})")) || line.contains(&format!("({MERGE_FLAG};"))
    };
    deviations
        .iter()
        .map(String::as_str)
        .filter(|line| !seeds_only(line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiments::paper_records::written_results;
    use crate::experiments::{PaperBudget, paper_runs};

    /// The paper's-radius run training `seeds` of a protocol of 3.
    fn radius_run(seeds: &[u64]) -> PaperRun {
        let mut run = paper_runs(PaperBudget::Full)
            .unwrap()
            .into_iter()
            .find(|run| run.name == "dropout + max-norm, the paper's radius")
            .unwrap();
        run.deviations
            .push(fewer_seeds_departure(seeds.len(), run.seeds.len()));
        run.seeds = seeds.to_vec();
        run
    }

    /// A row of `run` for `seed`, as `results.json` records it.
    fn row(run: &PaperRun, seed: u64, test_error: f64) -> serde_json::Value {
        serde_json::json!({
            "name": run.name, "source": run.source, "paper_test_error": run.paper_test_error,
            "seed": seed, "test_error": test_error, "phase_one_test_error": 1.2,
            "valid_error": 1.1, "epochs_run": 300, "best_epoch": 200, "retrain_epochs": 167,
            "seconds": 1000.0, "deviations": run.deviations,
        })
    }

    /// `rows` as `results.json` in a folder of its own (`test` names it).
    fn written(test: &str, rows: &[serde_json::Value]) -> PathBuf {
        written_results(test, &serde_json::to_string(rows).unwrap())
    }

    /// Asserts that `error` names `file` and says `why`.
    fn assert_refuses(error: TrainError, file: &Path, why: &str) {
        let error = error.to_string();
        assert!(
            error.contains(&file.display().to_string()) && error.contains(why),
            "{error}"
        );
    }

    #[test]
    fn seeds_trained_earlier_join_with_their_figures_in_seed_order() {
        let earlier = radius_run(&[1, 3]);
        let file = written(
            "merge-join",
            &[row(&earlier, 3, 1.04), row(&earlier, 1, 1.09)],
        );
        let rows = EarlierRows::read(&[file]).unwrap();
        let mut run = radius_run(&[2]);
        let merged = rows.rows_of(&run).unwrap();
        let joined: Vec<(u64, f64)> = merged.iter().map(|r| (r.seed, r.test_error)).collect();
        assert_eq!(joined, [(1, 1.09), (3, 1.04)]);
        // Another run's rows are not this run's.
        run.name = "dropout + max-norm".into();
        assert!(rows.rows_of(&run).unwrap().is_empty());
        assert!(!rows.has_rows_of(&[run]));
    }

    #[test]
    fn a_record_of_other_settings_is_refused_naming_the_file() {
        let mut other = radius_run(&[1]);
        other.deviations[0].push_str(", at another learning rate");
        let file = written("merge-other", &[row(&other, 1, 1.0)]);
        let error = EarlierRows::read(std::slice::from_ref(&file))
            .unwrap()
            .rows_of(&radius_run(&[2]))
            .unwrap_err();
        assert_refuses(error, &file, "seed 1 was trained with other departures");
    }

    #[test]
    fn a_seed_trained_twice_is_refused() {
        let earlier = radius_run(&[1, 2]);
        let file = written("merge-twice", &[row(&earlier, 2, 1.0)]);
        let rows = EarlierRows::read(std::slice::from_ref(&file)).unwrap();
        let error = rows.rows_of(&radius_run(&[2])).unwrap_err().to_string();
        assert!(
            error.contains("seed 2 is trained by this command too"),
            "{error}"
        );
        let both = EarlierRows::read(&[file.clone(), file]).unwrap();
        let error = both.rows_of(&radius_run(&[3])).unwrap_err().to_string();
        assert!(error.contains("seed 2 is in two of the"), "{error}");
    }

    #[test]
    fn a_file_that_is_no_results_json_is_refused_by_name() {
        let file = written_results("merge-bad", "[{\"name\": 3}]");
        let error = EarlierRows::read(std::slice::from_ref(&file)).unwrap_err();
        assert_refuses(error, &file, "expected the results.json");
    }

    #[test]
    fn the_lines_on_how_seeds_came_together_are_no_settings() {
        let lines = vec![
            "max-norm c = 2".to_string(),
            fewer_seeds_departure(2, 3),
            merged_seeds_departure(&[1, 3], &[Path::new("a/results.json")]),
        ];
        assert_eq!(settings_departures(&lines), ["max-norm c = 2"]);
    }
}
