//! `recipe reproduce paper`: the published records beside recipe's runs,
//! and what the command line picks (runs, seeds) and changes (images,
//! epochs, patience, a recorded phase 1), each change listed with the
//! run's departures.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use recipe::experiments::{
    EarlierRows, PaperBudget, PaperRow, PaperRun, PhaseOne, PhaseOneRecords, fewer_seeds_departure,
    merged_seeds_departure, paper_chart, paper_ranking, paper_runs, paper_table, run_paper,
};

use super::{Context, Profile};

/// What `reproduce paper`'s command line picks and changes beyond the
/// profile's cuts.
#[derive(Debug, Clone, Copy)]
pub(super) struct PaperSelection<'a> {
    /// `--only`: whole names, or text in the names, of the runs to train.
    pub only: Option<&'a str>,
    /// `--seeds`: the seeds to train in place of each protocol's.
    pub seeds: Option<&'a [u64]>,
    /// `--patience`: epochs without improvement before phase 1 stops, in
    /// place of each protocol's.
    pub patience: Option<usize>,
    /// `--phase-one`: an earlier results.json whose phase 1 figures the
    /// retraining starts from, in place of training phase 1.
    pub phase_one: Option<&'a Path>,
    /// `--merge-results`: earlier results.json files whose rows of the
    /// picked runs join the report, for the seeds this command does not
    /// train.
    pub merge_results: &'a [PathBuf],
}

/// `reproduce paper`: the published records beside recipe's runs.
pub(super) fn paper(context: &Context, selection: PaperSelection) -> Result<()> {
    let budget = match context.profile {
        Profile::Quick => PaperBudget::Quick,
        Profile::Full => PaperBudget::Full,
    };
    let earlier = EarlierRows::read(selection.merge_results)?;
    let mut runs = Vec::new();
    let mut merged = Vec::new();
    for protocol in picked_runs(paper_runs(budget)?, selection.only)? {
        let protocol_seeds = protocol.seeds.len();
        let mut run = with_overrides(context, protocol, selection)?;
        if let Some(file) = selection.phase_one {
            run = with_recorded_phase_one(run, file);
        }
        let (run, earlier_rows) = with_earlier_seeds(run, protocol_seeds, &earlier)?;
        merged.extend(earlier_rows);
        runs.push(run);
    }
    if !selection.merge_results.is_empty() && !earlier.has_rows_of(&runs) {
        bail!("--merge-results: no file holds a row of the runs this command picks");
    }
    let phase_one = match selection.phase_one {
        Some(file) => PhaseOne::Recorded(PhaseOneRecords::read(file)?),
        None => PhaseOne::Train,
    };
    let out = context.out.join("paper");
    let trained = run_paper(&runs, &phase_one, &context.device, &out, print_row)?;
    let rows = by_run_and_seed(&runs, trained.into_iter().chain(merged).collect());
    let body = report_body(&rows, &runs, &out)?;
    context.write(
        "paper",
        "The published permutation-invariant MNIST records",
        &body,
        &rows,
    )
}

/// One trained seed's line, as it ends.
fn print_row(row: &PaperRow) {
    println!(
        "   {} seed {}: test error {:.2}% (phase 1's model {:.2}%; paper {:.2}%), best epoch \
         {} of {} ({:.0}s)",
        row.name,
        row.seed,
        row.test_error,
        row.phase_one_test_error,
        row.paper_test_error,
        row.best_epoch,
        row.epochs_run,
        row.seconds
    );
}

/// results.md's text: the table, the rankings, each protocol's departures
/// and the validation chart (written into `out`, for the rows that have
/// curves).
fn report_body(rows: &[PaperRow], runs: &[PaperRun], out: &Path) -> Result<String> {
    let mut body = format!(
        "Test error on the 10,000 test images, each run's model chosen on the validation \
         split (the last 10,000 training images) only, then retrained on all the training \
         images as its paper does (\"phase 1's model\": before that). The last column is the \
         single model among the seeds that phase 1's validation error picks, as a paper \
         reports the run it chose on validation data. The papers' figures are on MNIST.\n\n{}",
        paper_table(rows)
    );
    if let Some(ranking) = paper_ranking(rows) {
        body.push_str(&format!(
            "\nEach paper's ranking beside recipe's:\n\n{ranking}\n"
        ));
    }
    body.push_str(&departures(runs));
    // A recorded phase 1 or a merged seed has no curve to draw: its own
    // folder has the chart.
    let charted: Vec<PaperRow> = rows
        .iter()
        .filter(|row| !row.valid_errors.is_empty())
        .cloned()
        .collect();
    if !charted.is_empty() {
        paper_chart(&charted).write(&out.join("validation"))?;
        body.push_str("\n![phase 1's validation error per epoch](validation.png)\n");
    }
    Ok(body)
}

/// Where each protocol departs from its paper, the runs that share a
/// source and departures listed once.
fn departures(runs: &[PaperRun]) -> String {
    let mut protocols: Vec<(Vec<&str>, &PaperRun)> = Vec::new();
    for run in runs {
        let same = |(_, other): &&mut (Vec<&str>, &PaperRun)| {
            other.source == run.source && other.deviations == run.deviations
        };
        match protocols.iter_mut().find(same) {
            Some((names, _)) => names.push(&run.name),
            None => protocols.push((vec![&run.name], run)),
        }
    }
    let mut text = String::from("\nWhere each protocol departs from its paper:\n");
    for (names, run) in protocols {
        text.push_str(&format!("\n- {} ({}):\n", names.join(", "), run.source));
        for deviation in &run.deviations {
            text.push_str(&format!("  - {deviation}\n"));
        }
    }
    text
}

/// `run` with its seeds listed with the departures (which the earlier
/// files trained; fewer in all than the protocol's `protocol_seeds`), and
/// the earlier rows that join it, whose departures become the run's.
fn with_earlier_seeds(
    mut run: PaperRun,
    protocol_seeds: usize,
    earlier: &EarlierRows,
) -> Result<(PaperRun, Vec<PaperRow>)> {
    let earlier_rows = earlier.rows_of(&run)?;
    if !earlier_rows.is_empty() {
        let seeds: Vec<u64> = earlier_rows.iter().map(|row| row.seed).collect();
        let files: Vec<&Path> = earlier.files().collect();
        run.deviations.push(merged_seeds_departure(&seeds, &files));
    }
    let seeds = run.seeds.len() + earlier_rows.len();
    if seeds < protocol_seeds {
        run.deviations
            .push(fewer_seeds_departure(seeds, protocol_seeds));
    }
    let rows = earlier_rows
        .into_iter()
        .map(|row| PaperRow {
            deviations: run.deviations.clone(),
            ..row
        })
        .collect();
    Ok((run, rows))
}

/// `rows` in the order of `runs`, each run's seeds in ascending order.
fn by_run_and_seed(runs: &[PaperRun], mut rows: Vec<PaperRow>) -> Vec<PaperRow> {
    let run_index = |row: &PaperRow| runs.iter().position(|run| run.name == row.name);
    rows.sort_by_key(|row| (run_index(row), row.seed));
    rows
}

/// The runs `--only` names: each comma-separated item picks the run of that
/// whole name alone (`max-norm`, not the two records whose names contain
/// it), or else every run whose name contains it.
fn picked_runs(all: Vec<PaperRun>, only: Option<&str>) -> Result<Vec<PaperRun>> {
    let Some(only) = only else {
        return Ok(all);
    };
    let items: Vec<String> = only
        .split(',')
        .map(|item| item.trim().to_lowercase())
        .filter(|item| !item.is_empty())
        .collect();
    let names: Vec<String> = all.iter().map(|run| run.name.to_lowercase()).collect();
    let picks = |item: &str, name: &str| {
        let name = name.to_lowercase();
        match names.iter().any(|whole| whole == item) {
            true => name == item,
            false => name.contains(item),
        }
    };
    if let Some(item) = items
        .iter()
        .find(|item| !all.iter().any(|run| picks(item, &run.name)))
    {
        bail!("--only {only}: no run of `paper` has `{item}` in its name");
    }
    if items.is_empty() {
        bail!("--only: give a run's name, or text in the names of the runs to train");
    }
    Ok(all
        .into_iter()
        .filter(|run| items.iter().any(|item| picks(item, &run.name)))
        .collect())
}

/// `run` on the chosen dataset with the command line's cuts and changes
/// (images, epochs, seeds, patience), each listed with the run's
/// departures but the seeds (listed once the merged ones are known).
fn with_overrides(
    context: &Context,
    mut run: PaperRun,
    selection: PaperSelection,
) -> Result<PaperRun> {
    let protocol_epochs = run.config.fit.epochs;
    let protocol_images = run.config.data.split.train_limit;
    run.config = context.on_dataset(run.config);
    if run.config.data.split.train_limit != protocol_images {
        run.deviations.push(format!(
            "fewer training images: the first {} (--train-limit)",
            run.config.data.split.train_limit.unwrap_or_default()
        ));
    }
    if run.config.fit.epochs != protocol_epochs {
        run.deviations.push(format!(
            "a reduced budget: at most {} epochs (--epochs) where the protocol allows {}",
            run.config.fit.epochs, protocol_epochs
        ));
    }
    if let Some(seeds) = selection.seeds {
        run.seeds = seeds.to_vec();
    }
    match selection.patience {
        Some(patience) => with_patience(run, patience),
        None => Ok(run),
    }
}

/// `run` with its phase 1 taken from `file`, listed with its departures.
fn with_recorded_phase_one(mut run: PaperRun, file: &Path) -> PaperRun {
    run.deviations.push(format!(
        "phase 1 not trained by this command: its figures and the epoch it kept are those \
         {} records (--phase-one; its results.md names the command that trained it)",
        file.display()
    ));
    run
}

/// `run` stopping after `patience` epochs without improvement, where its
/// protocol waits another number of epochs (listed with the departures):
/// the length of phase 1 is a choice the validation split may make, as a
/// longer patience only keeps or raises the validation score of the epoch
/// kept.
fn with_patience(mut run: PaperRun, patience: usize) -> Result<PaperRun> {
    let Some(stopping) = run.config.fit.early_stopping.as_mut() else {
        bail!(
            "--patience {patience}: `{}` stops by no validation rule, so it has no patience to change",
            run.name
        );
    };
    let protocol = stopping.patience;
    if protocol == patience {
        return Ok(run);
    }
    stopping.patience = patience;
    stopping
        .validate()
        .map_err(|error| anyhow!("--patience {patience}: {error}"))?;
    run.deviations.push(format!(
        "phase 1 stops after {patience} epochs without a better `{}` (--patience) where the \
         protocol waits {protocol}",
        stopping.monitor
    ));
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_runs() -> Vec<PaperRun> {
        paper_runs(PaperBudget::Full).unwrap()
    }

    fn names(runs: &[PaperRun]) -> Vec<&str> {
        runs.iter().map(|run| run.name.as_str()).collect()
    }

    #[test]
    fn a_whole_name_picks_its_run_alone_and_text_picks_every_run_containing_it() {
        let alone = picked_runs(full_runs(), Some("Maxout + dropout + max-norm")).unwrap();
        assert_eq!(names(&alone), ["Maxout + dropout + max-norm"]);
        let both = picked_runs(full_runs(), Some("maxout")).unwrap();
        assert_eq!(
            names(&both),
            [
                "Maxout + dropout + max-norm",
                "Maxout + dropout + max-norm + validated EMA"
            ]
        );
        let error = picked_runs(full_runs(), Some("L2, nothing")).unwrap_err();
        assert!(error.to_string().contains("`nothing`"), "{error}");
    }

    #[test]
    fn a_new_patience_replaces_the_protocols_and_is_listed_with_the_departures() {
        let maxout = full_runs().swap_remove(5);
        let protocol = maxout.config.fit.early_stopping.clone().unwrap().patience;
        assert_eq!(protocol, 100, "Goodfellow et al.'s patience");
        let longer = with_patience(maxout.clone(), 200).unwrap();
        assert_eq!(longer.config.fit.early_stopping.unwrap().patience, 200);
        let listed = longer.deviations.last().unwrap();
        assert!(
            listed.contains("after 200 epochs") && listed.contains("waits 100"),
            "{listed}"
        );
        // The protocol's own patience is no departure.
        let same = with_patience(maxout.clone(), 100).unwrap();
        assert_eq!(same.deviations, maxout.deviations);
    }

    #[test]
    fn seeds_are_counted_with_those_merged_from_earlier_files() {
        let radius = |seeds: &[u64]| {
            let mut run = full_runs()
                .into_iter()
                .find(|run| run.name.contains("the paper's radius"))
                .unwrap();
            run.seeds = seeds.to_vec();
            run
        };
        let alone = with_earlier_seeds(radius(&[2]), 3, &EarlierRows::default()).unwrap();
        assert!(alone.1.is_empty());
        assert_eq!(
            alone.0.deviations.last().unwrap(),
            &fewer_seeds_departure(1, 3)
        );

        let dir = std::env::temp_dir().join(format!("recipe-seeds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("results.json");
        let earlier_run = alone.0.clone();
        let rows: Vec<serde_json::Value> = [1, 3]
            .iter()
            .map(|seed| {
                serde_json::json!({
                    "name": earlier_run.name, "source": earlier_run.source,
                    "paper_test_error": 1.05, "seed": seed, "test_error": 1.0,
                    "phase_one_test_error": 1.1, "valid_error": 1.1, "epochs_run": 300,
                    "best_epoch": 200, "retrain_epochs": 167, "seconds": 1.0,
                    "deviations": earlier_run.deviations,
                })
            })
            .collect();
        std::fs::write(&file, serde_json::to_string(&rows).unwrap()).unwrap();
        let earlier = EarlierRows::read(std::slice::from_ref(&file)).unwrap();
        let (run, merged) = with_earlier_seeds(radius(&[2]), 3, &earlier).unwrap();
        let listed = run.deviations.last().unwrap();
        assert!(
            listed.contains("seed(s) 1, 3 trained by an earlier command"),
            "{listed}"
        );
        assert!(
            !run.deviations.iter().any(|line| line.contains("(--seeds)")),
            "three seeds in all: {:?}",
            run.deviations
        );
        assert!(merged.iter().all(|row| row.deviations == run.deviations));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn an_impossible_patience_is_refused_in_words() {
        let mut runs = full_runs();
        let error = with_patience(runs[0].clone(), 0).unwrap_err().to_string();
        assert!(
            error.contains("--patience 0") && error.contains("at least 1"),
            "{error}"
        );
        runs[0].config.fit.early_stopping = None;
        let error = with_patience(runs.swap_remove(0), 5)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`L2` stops by no validation rule"),
            "{error}"
        );
    }
}
