//! The paper runs' report: the results table, each run's mean test error
//! beside the paper's, and the chart of phase 1's validation error.

use super::PaperRow;
use crate::plots::{LineChart, Series};

/// Phase 1's validation error per epoch of every run and seed, one colour
/// per run, with the run's paper figure (a test error) as a dashed line.
/// Errors above a ceiling (5%, or twice the runs' median best validation
/// error if that is higher: a net at chance level for its first epochs
/// would flatten every curve) are drawn at the ceiling, as the axis says.
pub fn paper_chart(rows: &[PaperRow]) -> LineChart {
    let mut best: Vec<f64> = rows.iter().map(|r| r.valid_error).collect();
    best.sort_by(f64::total_cmp);
    let median = best.get(best.len() / 2).copied().unwrap_or(0.0);
    let ceiling = (2.0 * median).max(5.0);
    let mut chart = LineChart::new(
        "Validation error per epoch (dashed: the paper's test error)",
        "epoch",
        format!("validation error, % (above {ceiling:.1}% drawn at it)"),
    );
    let mut names: Vec<&str> = Vec::new();
    for row in rows {
        let color = match names.iter().position(|&n| n == row.name) {
            Some(index) => index,
            None => {
                names.push(&row.name);
                let last_epoch = rows
                    .iter()
                    .filter(|r| r.name == row.name)
                    .map(|r| r.epochs_run.max(1))
                    .max()
                    .unwrap_or(1);
                let paper = vec![
                    (1.0, row.paper_test_error),
                    (last_epoch as f64, row.paper_test_error),
                ];
                let label = format!("{} (paper {:.2}%)", row.name, row.paper_test_error);
                chart = chart.with(Series::new(label, paper).dashed().colored(names.len() - 1));
                names.len() - 1
            }
        };
        let points = row
            .valid_errors
            .iter()
            .map(|&(epoch, error)| (epoch as f64, error.min(ceiling)))
            .collect();
        let curve = Series::new(format!("{} seed {}", row.name, row.seed), points);
        chart = chart.with(curve.colored(color).unlabelled());
    }
    chart
}

/// The rows of each run, runs in the order of their first row.
fn seeds_by_run(rows: &[PaperRow]) -> Vec<Vec<&PaperRow>> {
    let mut runs: Vec<Vec<&PaperRow>> = Vec::new();
    for row in rows {
        match runs.iter_mut().find(|seeds| seeds[0].name == row.name) {
            Some(seeds) => seeds.push(row),
            None => runs.push(vec![row]),
        }
    }
    runs
}

/// A run's test errors over its seeds: their mean and range.
struct TestErrors {
    seeds: usize,
    mean: f64,
    lowest: f64,
    highest: f64,
}

impl TestErrors {
    /// The figures of one run's rows (at least one).
    fn of(seeds: &[&PaperRow]) -> Self {
        let errors = seeds.iter().map(|r| r.test_error);
        Self {
            seeds: seeds.len(),
            mean: errors.clone().sum::<f64>() / seeds.len() as f64,
            lowest: errors.clone().fold(f64::INFINITY, f64::min),
            highest: errors.fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// The results table: per run, the paper's figure beside recipe's mean test
/// error over its seeds with their range.
pub fn paper_table(rows: &[PaperRow]) -> String {
    let mut table = String::from(
        "| run | source | paper test error | recipe test error (mean; seeds: range) | seeds \
         | best epoch | training time, all seeds | phase 1's model (mean) \
         | the seed phase 1's validation picks |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for runs in seeds_by_run(rows) {
        let TestErrors {
            seeds,
            mean,
            lowest,
            highest,
        } = TestErrors::of(&runs);
        let range = if seeds > 1 {
            format!("{} ({lowest:.2} to {highest:.2})", percent(mean))
        } else {
            percent(mean)
        };
        let best_epochs: Vec<String> = runs.iter().map(|r| r.best_epoch.to_string()).collect();
        let seconds: f64 = runs.iter().map(|r| r.seconds).sum();
        let phase_one = runs.iter().map(|r| r.phase_one_test_error).sum::<f64>() / seeds as f64;
        table.push_str(&format!(
            "| {} | {} | {:.2}% | {range} | {seeds} | {} | {:.0} s | {} | {} |\n",
            runs[0].name,
            runs[0].source,
            runs[0].paper_test_error,
            best_epochs.join(", "),
            seconds,
            percent(phase_one),
            picked_by_validation(&runs)
        ));
    }
    table
}

/// The single model that phase 1's validation error picks among a run's
/// seeds, as a paper reports the run it chose on validation data: the
/// seed of the lowest validation error with its test error, or every seed
/// tied at it.
fn picked_by_validation(seeds: &[&PaperRow]) -> String {
    // Validation errors count images (0.01% each of 10,000): equal counts
    // are equal errors, which float sums may leave a rounding apart.
    let thousandths = |row: &PaperRow| (row.valid_error * 1000.0).round() as i64;
    let lowest = seeds.iter().map(|row| thousandths(row)).min();
    let picked: Vec<&PaperRow> = seeds
        .iter()
        .copied()
        .filter(|row| Some(thousandths(row)) == lowest)
        .collect();
    match picked.as_slice() {
        [] => String::new(),
        [one] => format!(
            "seed {}: {:.2}% (validation {:.2}%)",
            one.seed, one.test_error, one.valid_error
        ),
        tied => {
            let list = |figure: fn(&PaperRow) -> String| {
                tied.iter()
                    .map(|row| figure(row))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            format!(
                "seeds {} tied (validation {:.2}%): {}%",
                list(|row| row.seed.to_string()),
                tied[0].valid_error,
                list(|row| format!("{:.2}", row.test_error))
            )
        }
    }
}

/// A test error in percent, to the thousandth where the hundredths do not
/// hold it: one test image in 10,000 is 0.01%, but a mean over seeds falls
/// between hundredths (1.09, 1.03 and 1.04% make 1.053%), and rounding it
/// to a paper's two decimals (1.05%) would claim a figure the seeds did
/// not reach.
fn percent(error: f64) -> String {
    let thousandths = format!("{error:.3}");
    match thousandths.strip_suffix('0') {
        Some(hundredths) => format!("{hundredths}%"),
        None => format!("{thousandths}%"),
    }
}

/// Each paper's ranking beside recipe's: for every source whose paper
/// gives its runs different figures, the runs ordered by the paper's test
/// error and by recipe's mean, and the pairs the paper orders that
/// recipe's means order the other way. `None` when no paper orders two of
/// the runs.
pub fn paper_ranking(rows: &[PaperRow]) -> Option<String> {
    let runs = seeds_by_run(rows);
    let mut sources: Vec<&str> = Vec::new();
    for seeds in &runs {
        if !sources.contains(&seeds[0].source.as_str()) {
            sources.push(&seeds[0].source);
        }
    }
    let rankings: Vec<String> = sources
        .into_iter()
        .filter_map(|source| source_ranking(source, &runs))
        .collect();
    (!rankings.is_empty()).then(|| rankings.join("\n"))
}

/// One run in a ranking: its paper's test error and recipe's test errors.
struct Ranked<'a> {
    name: &'a str,
    paper: f64,
    errors: TestErrors,
}

impl Ranked<'_> {
    /// recipe's mean test error.
    fn mean(&self) -> f64 {
        self.errors.mean
    }

    /// Whether every seed of `self` has a lower test error than every seed
    /// of `other`, with at least two seeds each: a reversal no seed of
    /// either run contradicts.
    fn below_every_seed_of(&self, other: &Ranked) -> bool {
        self.errors.seeds > 1 && other.errors.seeds > 1 && self.errors.highest < other.errors.lowest
    }
}

/// The ranking line of one source, `None` when its paper orders none of
/// its runs (fewer than two, or all of one figure).
fn source_ranking(source: &str, runs: &[Vec<&PaperRow>]) -> Option<String> {
    let runs: Vec<Ranked> = runs
        .iter()
        .filter(|seeds| seeds[0].source == source)
        .map(|seeds| Ranked {
            name: &seeds[0].name,
            paper: seeds[0].paper_test_error,
            errors: TestErrors::of(seeds),
        })
        .collect();
    let by_paper = sorted_by(&runs, |r| r.paper);
    let (ordered, reversed) = reversed_pairs(&by_paper);
    if ordered == 0 {
        return None;
    }
    let agreement = match reversed.is_empty() {
        true => format!(
            "recipe's means order every pair as the paper does (pairs it orders: {ordered})"
        ),
        false => format!(
            "recipe's means reverse {} of the {ordered} pairs the paper orders: {}",
            reversed.len(),
            reversed.join("; ")
        ),
    };
    Some(format!(
        "- {source}: the paper's order: {}; recipe's, by mean test error: {}. {agreement}.",
        listed(&by_paper, |r| r.paper),
        listed(&sorted_by(&runs, |r| r.mean()), |r| r.mean()),
    ))
}

/// The runs sorted by a figure, best (lowest) first; ties keep their order.
fn sorted_by<'a, 'r>(runs: &'r [Ranked<'a>], figure: fn(&Ranked) -> f64) -> Vec<&'r Ranked<'a>> {
    let mut sorted: Vec<&Ranked> = runs.iter().collect();
    sorted.sort_by(|a, b| figure(a).total_cmp(&figure(b)));
    sorted
}

/// "name 1.23%, ..." in the given order.
fn listed(runs: &[&Ranked], figure: fn(&Ranked) -> f64) -> String {
    let names: Vec<String> = runs
        .iter()
        .map(|r| format!("{} {}", r.name, percent(figure(r))))
        .collect();
    names.join(", ")
}

/// How many pairs the paper orders (different figures), and those of them
/// whose means recipe orders the other way, in words: each says whether
/// the seeds' ranges overlap (a reversal within the spread between seeds)
/// or lie apart.
fn reversed_pairs(by_paper: &[&Ranked]) -> (usize, Vec<String>) {
    let mut ordered = 0;
    let mut reversed = Vec::new();
    for (i, better) in by_paper.iter().enumerate() {
        let worse_runs = by_paper[i + 1..].iter().filter(|w| w.paper > better.paper);
        for worse in worse_runs {
            ordered += 1;
            if worse.mean() < better.mean() {
                let spread = match (worse.errors.seeds, better.errors.seeds) {
                    (1, _) | (_, 1) => "",
                    _ if worse.below_every_seed_of(better) => ", every seed below every seed",
                    _ => ", within the seeds' ranges",
                };
                reversed.push(format!(
                    "{} below {} ({} against {}{spread})",
                    worse.name,
                    better.name,
                    percent(worse.mean()),
                    percent(better.mean())
                ));
            }
        }
    }
    (ordered, reversed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_averages_seeds_beside_the_paper() {
        let row = |seed, error| PaperRow {
            name: "dropout + max-norm".into(),
            source: "Srivastava et al. 2014, Table 9".into(),
            paper_test_error: 1.05,
            seed,
            test_error: error,
            valid_error: error + 0.05,
            epochs_run: 10,
            best_epoch: 8,
            phase_one_test_error: error + 0.1,
            retrain_epochs: None,
            seconds: 10.0,
            deviations: Vec::new(),
            valid_errors: Vec::new(),
        };
        let table = paper_table(&[row(1, 1.0), row(2, 1.2), row(3, 1.1)]);
        assert!(
            table.contains("| 1.05% | 1.10% (1.00 to 1.20) | 3 |"),
            "{table}"
        );
        assert!(
            table.ends_with("| 30 s | 1.20% | seed 1: 1.00% (validation 1.05%) |\n"),
            "{table}"
        );
        // Rounded to hundredths, this mean would read as the paper's 1.05%.
        let table = paper_table(&[row(1, 1.09), row(2, 1.03), row(3, 1.04)]);
        assert!(
            table.contains("| 1.05% | 1.053% (1.03 to 1.09) | 3 |"),
            "{table}"
        );
        assert!(
            table.ends_with("| 1.153% | seed 2: 1.03% (validation 1.08%) |\n"),
            "{table}"
        );
    }

    /// The lowest validation error picks the seed, whatever its test error;
    /// errors a float rounding apart are a tie, and every tied seed is named.
    #[test]
    fn validation_picks_a_seed_and_names_a_tie() {
        let row = |seed, valid_error, test_error| PaperRow {
            name: "Maxout".into(),
            source: "Goodfellow et al. 2013".into(),
            paper_test_error: 0.94,
            seed,
            test_error,
            valid_error,
            epochs_run: 10,
            best_epoch: 8,
            phase_one_test_error: test_error,
            retrain_epochs: None,
            seconds: 10.0,
            deviations: Vec::new(),
            valid_errors: Vec::new(),
        };
        let (one, two, three) = (row(1, 1.10, 1.01), row(2, 1.15, 0.90), row(3, 1.1, 1.04));
        let three = PaperRow {
            valid_error: 1.0999999999999988,
            ..three
        };
        assert_eq!(
            picked_by_validation(&[&one, &two, &three]),
            "seeds 1, 3 tied (validation 1.10%): 1.01, 1.04%"
        );
        assert_eq!(
            picked_by_validation(&[&two, &one]),
            "seed 1: 1.01% (validation 1.10%)"
        );
        assert_eq!(
            picked_by_validation(&[&two]),
            "seed 2: 0.90% (validation 1.15%)"
        );
        assert_eq!(picked_by_validation(&[]), "");
    }

    /// The README's records table quotes these: the committed reports'
    /// rows, each run's seeds picked by phase 1's validation error.
    #[test]
    fn validation_picks_the_committed_records_seeds() {
        let picked = |file: &str, run: &str| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
            let rows: Vec<serde_json::Value> = super::super::paper_records::read_paper_rows(&path)
                .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            let rows: Vec<PaperRow> = rows
                .into_iter()
                .filter(|row| row["name"] == run)
                .map(|mut row| {
                    // Reports older than phase 1's own test error lack it.
                    if row.get("phase_one_test_error").is_none() {
                        row["phase_one_test_error"] = row["test_error"].clone();
                    }
                    serde_json::from_value(row).unwrap()
                })
                .collect();
            picked_by_validation(&rows.iter().collect::<Vec<_>>())
        };
        let ema = "Maxout + dropout + max-norm + validated EMA";
        let committed = [
            (
                "dmn-radius-5seeds",
                "dropout + max-norm, the paper's radius",
                "seed 2: 1.03% (validation 1.07%)",
            ),
            ("maxout-target", ema, "seed 4: 0.98% (validation 1.06%)"),
            (
                "maxout-target",
                "Maxout + dropout + max-norm",
                "seed 4: 1.04% (validation 1.07%)",
            ),
            ("maxout-ema-p200", ema, "seed 3: 0.94% (validation 1.02%)"),
            (
                "maxout-ema-p200-6seeds",
                ema,
                "seed 6: 1.01% (validation 1.01%)",
            ),
            (
                "maxout-ema-p200-8seeds",
                ema,
                "seed 7: 1.02% (validation 0.99%)",
            ),
            (
                "maxout-ema-p200-9seeds",
                ema,
                "seed 7: 1.02% (validation 0.99%)",
            ),
            (
                "maxout-ema-p200-10seeds",
                ema,
                "seed 7: 1.02% (validation 0.99%)",
            ),
        ];
        for (folder, run, pick) in committed {
            let file = format!("docs/paper/{folder}/results.json");
            assert_eq!(picked(&file, run), pick, "{file}, {run}");
        }
    }

    /// Pairs of equal paper figures are not ranked; a pair recipe's means
    /// order the other way is named; a source of one run has no ranking.
    #[test]
    fn the_ranking_names_the_pairs_recipe_orders_otherwise() {
        let row = |name: &str, source: &str, paper, seed, error| PaperRow {
            name: name.into(),
            source: source.into(),
            paper_test_error: paper,
            seed,
            test_error: error,
            valid_error: 1.0,
            epochs_run: 10,
            best_epoch: 8,
            phase_one_test_error: error,
            retrain_epochs: None,
            seconds: 1.0,
            deviations: Vec::new(),
            valid_errors: Vec::new(),
        };
        let rows = [
            row("L2", "Table 9", 1.62, 1, 1.70),
            row("L2", "Table 9", 1.62, 2, 1.60),
            row("max-norm", "Table 9", 1.35, 1, 1.70),
            row("max-norm", "Table 9", 1.35, 2, 1.72),
            row("dropout", "Table 9", 1.05, 1, 1.40),
            row("dropout, slower", "Table 9", 1.05, 1, 1.30),
            row("Maxout", "Goodfellow", 0.94, 1, 1.0),
        ];
        let ranking = paper_ranking(&rows).expect("Table 9 has four runs");
        assert_eq!(
            ranking,
            "- Table 9: the paper's order: dropout 1.05%, dropout, slower 1.05%, max-norm \
             1.35%, L2 1.62%; recipe's, by mean test error: dropout, slower 1.30%, dropout \
             1.40%, L2 1.65%, max-norm 1.71%. recipe's means reverse 1 of the 5 pairs the \
             paper orders: L2 below max-norm (1.65% against 1.71%, within the seeds' ranges)."
        );
        assert_eq!(paper_ranking(&rows[6..]), None);
        assert_eq!(paper_ranking(&rows[4..6]), None, "one figure: no order");
        // Every seed of b below every seed of a; with one seed, no range.
        let apart = [
            row("a", "T", 1.0, 1, 1.5),
            row("a", "T", 1.0, 2, 1.6),
            row("b", "T", 2.0, 1, 1.0),
            row("b", "T", 2.0, 2, 1.1),
        ];
        assert!(
            paper_ranking(&apart)
                .unwrap()
                .ends_with("b below a (1.05% against 1.55%, every seed below every seed).")
        );
        assert!(
            paper_ranking(&apart[1..])
                .unwrap()
                .ends_with("b below a (1.05% against 1.60%).")
        );
        let in_order = [row("a", "T", 1.0, 1, 1.1), row("b", "T", 2.0, 1, 2.1)];
        assert!(
            paper_ranking(&in_order)
                .unwrap()
                .contains("recipe's means order every pair as the paper does (pairs it orders: 1)")
        );
    }

    /// One dashed paper line per run in the run's colour, one curve per
    /// seed in the same colour, errors above the ceiling drawn at it.
    #[test]
    fn the_chart_has_a_paper_line_per_run_and_a_curve_per_seed() {
        let row = |name: &str, seed, errors: &[f64]| PaperRow {
            name: name.into(),
            source: "a paper".into(),
            paper_test_error: if name == "a" { 1.05 } else { 0.94 },
            seed,
            test_error: 1.2,
            valid_error: 1.1,
            epochs_run: errors.len(),
            best_epoch: 1,
            phase_one_test_error: 1.2,
            retrain_epochs: None,
            seconds: 1.0,
            deviations: Vec::new(),
            valid_errors: errors
                .iter()
                .enumerate()
                .map(|(i, &e)| (i + 1, e))
                .collect(),
        };
        let rows = [
            row("a", 1, &[90.0, 3.0, 1.2]),
            row("b", 1, &[4.0, 1.1]),
            row("a", 2, &[2.5, 1.3, 1.1, 1.0]),
        ];
        let chart = paper_chart(&rows);
        let drawn: Vec<(bool, Option<usize>, bool)> = chart
            .series
            .iter()
            .map(|s| (s.dashed, s.color, s.in_legend))
            .collect();
        assert_eq!(
            drawn,
            [
                (true, Some(0), true),
                (false, Some(0), false),
                (true, Some(1), true),
                (false, Some(1), false),
                (false, Some(0), false),
            ]
        );
        // The paper line spans the run's longest phase 1 (seed 2's 4 epochs).
        assert_eq!(chart.series[0].points, [(1.0, 1.05), (4.0, 1.05)]);
        // A net at chance in its first epoch is drawn at the 5% ceiling.
        assert_eq!(chart.series[1].points, [(1.0, 5.0), (2.0, 3.0), (3.0, 1.2)]);
        assert!(chart.y_label.contains("5.0%"), "{}", chart.y_label);
    }
}
