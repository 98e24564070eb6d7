//! A tiny end-to-end `recipe reproduce all` on a thousand images: every
//! experiment runs, writes its results, and the report judges every claim.

mod common;

/// `recipe reproduce ARGS --out OUT`.
fn reproduce(args: &[&str], out: &std::path::Path) -> std::process::Output {
    common::recipe()
        .arg("reproduce")
        .args(args)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn reproduce_all_writes_results_and_a_report() {
    let out = common::fresh_dir("reproduce");
    let small = ["all", "--train-limit", "1000", "--epochs", "1"];
    let output = reproduce(&[&small[..], &["--jobs", "1"]].concat(), &out);
    common::assert_success(&output);
    for experiment in [
        "vanishing-gradient",
        "early-stopping",
        "regularization",
        "penalties",
        "dropout",
    ] {
        let results = std::fs::read_to_string(out.join(experiment).join("results.md")).unwrap();
        assert!(results.contains("| "), "{experiment}: {results}");
        let json = std::fs::read_to_string(out.join(experiment).join("results.json")).unwrap();
        let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
        let rows = rows.get("series").unwrap_or(&rows);
        assert!(!rows.as_array().unwrap().is_empty(), "{experiment}");
    }
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let verdicts = report
        .lines()
        .filter(|l| l.ends_with("| reproduced |") || l.ends_with("| NOT reproduced |"))
        .count();
    assert_eq!(verdicts, 18, "{report}");
    for chart in [
        "vanishing-gradient/depth",
        "vanishing-gradient/gradients",
        "vanishing-gradient/movement",
        "maxout/units",
        "maxout/curves",
        "activations/curves",
        "early-stopping/curves",
        "regularization/weights",
        "penalties/trace",
        "dropout/curves",
        "dropout/ensemble",
    ] {
        let png = std::fs::read(out.join(format!("{chart}.png"))).unwrap();
        assert_eq!(&png[1..4], b"PNG", "{chart}");
        assert!(out.join(format!("{chart}.svg")).is_file(), "{chart}");
    }
    // Each depth-sweep run keeps its own artifacts, the layers' gradients too.
    assert!(out.join("vanishing-gradient/relu-9/summary.json").is_file());
    assert!(
        out.join("vanishing-gradient/sigmoid-9/layers.csv")
            .is_file()
    );
    // So does every variant of the overfitting experiments, with its config.
    assert!(out.join("regularization/l2-1e-4/config.json").is_file());
    assert!(
        out.join("early-stopping/whole-budget/history.csv")
            .is_file()
    );
    // Judged again from the results alone: the same verdicts and evidence,
    // and a report that says so.
    let table = |report: &str| -> Vec<String> {
        report
            .lines()
            .filter(|l| l.starts_with("| "))
            .map(str::to_string)
            .collect()
    };
    let judged = reproduce(&["all", "--from-results"], &out);
    common::assert_success(&judged);
    let again = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(table(&again), table(&report));
    assert!(again.contains("judged again"), "{again}");
    // The experiments side by side, in processes of their own: the same
    // figures (each process seeds its own generator), each log kept.
    let side_by_side = common::fresh_dir("reproduce-jobs");
    let output = reproduce(&[&small[..], &["--jobs", "2"]].concat(), &side_by_side);
    common::assert_success(&output);
    let parallel = std::fs::read_to_string(side_by_side.join("report.md")).unwrap();
    assert_eq!(table(&parallel), table(&report));
    assert!(!parallel.contains("judged again"), "{parallel}");
    let log = std::fs::read_to_string(side_by_side.join("logs/dropout.txt")).unwrap();
    assert!(log.contains("dropout"), "{log}");
    std::fs::remove_dir_all(side_by_side).unwrap();
    std::fs::remove_dir_all(out).unwrap();
}

/// `reproduce paper` at its quick budget: every run of the ladder, the
/// Maxout record, plain and with a validated weight average, the dampened
/// dropout + max-norm record and the 2x8192 net trains, learns, retrains on
/// all the training images as its paper does, and stands beside its
/// paper's figure.
#[test]
fn reproduce_paper_quick_runs_every_protocol() {
    let out = common::fresh_dir("reproduce-paper");
    let output = reproduce(&["paper", "--profile", "quick"], &out);
    let stdout = common::assert_success(&output);
    // Each retraining says in the log what it does: 5,000 + 10,000 images.
    for phase_two in [
        "== retraining on all 15000 images, afresh for as many updates as phase 1 made (",
        "== retraining on all 15000 images, from phase 1's model until its dropout objective",
    ] {
        assert!(stdout.contains(phase_two), "{phase_two}: {stdout}");
    }
    let json = std::fs::read_to_string(out.join("paper").join("results.json")).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 10, "{json}");
    // Every run's validation curve, in one chart beside the table.
    let markdown = std::fs::read_to_string(out.join("paper").join("results.md")).unwrap();
    assert!(markdown.contains("](validation.png)"), "{markdown}");
    assert!(out.join("paper").join("validation.png").exists());
    // Table 9's ladder ranked by the paper and by recipe, below the table.
    let ranking = markdown
        .lines()
        .find(|line| line.starts_with("- Srivastava et al. 2014, Table 9: the paper's order: "))
        .unwrap_or_else(|| panic!("no ranking of Table 9: {markdown}"));
    assert!(
        ranking.contains("recipe's, by mean test error: "),
        "{ranking}"
    );
    for row in &rows {
        for error in [&row["test_error"], &row["phase_one_test_error"]] {
            let error = error.as_f64().unwrap();
            assert!(error > 0.0 && error < 50.0, "{row}");
        }
        assert!(row["retrain_epochs"].as_u64().unwrap() >= 1, "{row}");
    }
    // Srivastava et al.'s runs retrain afresh, for phase 1's updates up to
    // its kept epoch: 3 epochs of 5,000 images are 1 of 15,000.
    let ladder = std::fs::read_to_string(out.join("paper/l2-seed1/retrain/config.json")).unwrap();
    let ladder: serde_json::Value = serde_json::from_str(&ladder).unwrap();
    assert!(ladder["fit"]["early_stopping"].is_null(), "{ladder}");
    assert_eq!(
        rows[0]["retrain_epochs"],
        (rows[0]["best_epoch"].as_u64().unwrap() as f64 / 3.0)
            .round()
            .max(1.0) as u64,
        "{}",
        rows[0]
    );
    for (maxout, folder) in rows[5..7].iter().zip([
        "maxout-dropout-max-norm-seed1",
        "maxout-dropout-max-norm-validated-ema-seed1",
    ]) {
        assert!(maxout["retrain_epochs"].as_u64().unwrap() >= 1, "{maxout}");
        let retrained = out.join("paper").join(folder).join("retrain");
        assert!(retrained.join("summary.json").exists(), "{folder}");
        // The averaged run's retraining validated its average.
        let history = std::fs::read_to_string(retrained.join("history.csv")).unwrap();
        assert_eq!(
            history.lines().next().unwrap().contains("average"),
            folder.contains("ema"),
            "{folder}: {history}"
        );
    }
    let results = std::fs::read_to_string(out.join("paper").join("results.md")).unwrap();
    for figure in ["| 1.05% |", "| 0.94% |", "Goodfellow et al. 2013"] {
        assert!(results.contains(figure), "{figure}: {results}");
    }

    // Again into the same folder: every run is read back, not trained again.
    let again = reproduce(&["paper", "--profile", "quick"], &out);
    let stdout = common::assert_success(&again);
    assert_eq!(stdout.matches("(done earlier").count(), 20, "{stdout}");
    let json = std::fs::read_to_string(out.join("paper").join("results.json")).unwrap();
    let rows_again: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    for (row, again) in rows.iter().zip(&rows_again) {
        assert_eq!(row["test_error"], again["test_error"]);
    }
    // A run of other settings in the folder is neither continued nor overwritten.
    let other = reproduce(&["paper", "--only", "maxout", "--epochs", "1"], &out);
    common::assert_refused(&other, "holds a run of other settings");
    std::fs::remove_dir_all(out).unwrap();

    // A run's whole name picks it alone (not the two records whose names
    // contain it), several names pick several runs, --seeds replaces the
    // protocol's seeds, and a budget cut or a new patience on the command
    // line is listed with the departures.
    let cut = common::fresh_dir("reproduce-paper-cut");
    let unknown = reproduce(&["paper", "--only", "L2,no such run"], &cut);
    common::assert_refused(&unknown, "no run of `paper` has `no such run` in its name");
    let output = reproduce(
        &[
            "paper",
            "--only",
            "Max-Norm, L2",
            "--seeds",
            "2",
            "--epochs",
            "1",
            "--patience",
            "1",
        ],
        &cut,
    );
    common::assert_success(&output);
    let json = std::fs::read_to_string(cut.join("paper").join("results.json")).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["L2", "max-norm"]);
    assert!(rows.iter().all(|row| row["seed"] == 2), "{json}");
    assert!(cut.join("paper/max-norm-seed2").is_dir());
    let results = std::fs::read_to_string(cut.join("paper").join("results.md")).unwrap();
    assert!(
        results
            .contains("a reduced budget: at most 1 epochs (--epochs) where the protocol allows 3"),
        "{results}"
    );
    assert!(
        results.contains(
            "phase 1 stops after 1 epochs without a better `valid_accuracy` (--patience) \
             where the protocol waits 2"
        ),
        "{results}"
    );
    // Only `paper`'s runs have a patience the command line may change.
    let other = reproduce(&["maxout", "--patience", "3"], &cut);
    common::assert_refused(&other, "--merge-results pick and change runs of `paper`");
    std::fs::remove_dir_all(cut).unwrap();
}

/// A phase 1 row as an earlier `results.json` records it.
fn phase_one_row(name: &str, seed: u64) -> serde_json::Value {
    serde_json::json!({
        "name": name, "source": "a test", "paper_test_error": 1.0, "seed": seed,
        "test_error": 2.5, "phase_one_test_error": 2.5, "valid_error": 2.4, "epochs_run": 3,
        "best_epoch": 3, "retrain_epochs": null, "seconds": 10.0, "deviations": []
    })
}

/// `reproduce paper --phase-one`: no phase 1 is trained, the retraining
/// afresh runs for the recorded epoch's updates, and the row keeps the
/// record's phase 1 figures; a retraining that needs phase 1's weights,
/// or a seed the record lacks, is refused in words.
#[test]
fn reproduce_paper_retrains_a_recorded_phase_one() {
    let out = common::fresh_dir("reproduce-paper-recorded");
    std::fs::create_dir_all(&out).unwrap();
    let record = out.join("phase-one.json");
    let rows = serde_json::json!([
        phase_one_row("max-norm", 1),
        phase_one_row("Maxout + dropout + max-norm", 1)
    ]);
    std::fs::write(&record, rows.to_string()).unwrap();
    let record = record.to_str().unwrap();
    let picked = [
        "paper",
        "--profile",
        "quick",
        "--only",
        "max-norm",
        "--seeds",
    ];
    let output = reproduce(&[&picked[..], &["1", "--phase-one", record]].concat(), &out);
    let stdout = common::assert_success(&output);
    assert!(
        stdout.contains("max-norm seed 1: phase 1 from the record"),
        "{stdout}"
    );
    let json = std::fs::read_to_string(out.join("paper").join("results.json")).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 1, "{json}");
    let row = &rows[0];
    assert_eq!(row["phase_one_test_error"], 2.5);
    assert_eq!(row["best_epoch"], 3);
    // 3 epochs of 50 updates are 1 epoch of 150 on all 15,000 quick images.
    assert_eq!(row["retrain_epochs"], 1, "{json}");
    assert!(
        row["seconds"].as_f64().unwrap() > 10.0,
        "the retraining adds its time"
    );
    let folder = out.join("paper/max-norm-seed1");
    assert!(!folder.join("summary.json").exists(), "phase 1 was trained");
    assert!(folder.join("retrain/summary.json").exists());
    let results = std::fs::read_to_string(out.join("paper").join("results.md")).unwrap();
    assert!(
        results.contains("phase 1 not trained by this command") && results.contains(record),
        "{results}"
    );
    assert!(
        !out.join("paper/validation.png").exists(),
        "no phase 1 curve to draw"
    );

    let other_seed = reproduce(&[&picked[..], &["2", "--phase-one", record]].concat(), &out);
    common::assert_refused(&other_seed, "no row of `max-norm` with seed 2");
    let maxout = [
        "paper",
        "--profile",
        "quick",
        "--only",
        "Maxout + dropout + max-norm",
    ];
    let from_weights = reproduce(
        &[&maxout[..], &["--seeds", "1", "--phase-one", record]].concat(),
        &out,
    );
    common::assert_refused(&from_weights, "its trained model");
    std::fs::remove_dir_all(out).unwrap();
}

/// `reproduce paper --merge-results`: the seeds an earlier command trained
/// join the report with their figures as recorded, beside the seeds
/// trained here, listed with the departures; a record of other settings is
/// refused before anything is trained.
#[test]
fn reproduce_paper_merges_seeds_trained_earlier() {
    let out = common::fresh_dir("reproduce-paper-merge");
    let cut = ["paper", "--only", "L2", "--epochs", "1", "--patience", "1"];
    let earlier = out.join("earlier");
    common::assert_success(&reproduce(
        &[&cut[..], &["--seeds", "2"]].concat(),
        &earlier,
    ));
    let record = earlier.join("paper").join("results.json");
    let recorded: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    let record = record.to_str().unwrap();

    let merged_out = out.join("merged");
    let merged = reproduce(
        &[&cut[..], &["--seeds", "1", "--merge-results", record]].concat(),
        &merged_out,
    );
    common::assert_success(&merged);
    let json = std::fs::read_to_string(merged_out.join("paper/results.json")).unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let seeds: Vec<u64> = rows.iter().map(|r| r["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, [1, 2], "{json}");
    assert_eq!(rows[1]["test_error"], recorded[0]["test_error"]);
    assert_eq!(rows[1]["seconds"], recorded[0]["seconds"]);
    assert!(
        !merged_out.join("paper/L2-seed2").exists(),
        "seed 2 was trained again"
    );
    let results = std::fs::read_to_string(merged_out.join("paper/results.md")).unwrap();
    assert!(
        results.contains("seed(s) 2 trained by an earlier command") && results.contains(record),
        "{results}"
    );
    assert!(
        results.contains("| L2 |") && results.contains("| 2 |"),
        "{results}"
    );

    // The protocol's own patience (2) is another setting than the record's.
    let other_out = out.join("other");
    let other_patience = [
        "paper",
        "--only",
        "L2",
        "--epochs",
        "1",
        "--patience",
        "2",
        "--seeds",
        "1",
    ];
    let other = reproduce(
        &[&other_patience[..], &["--merge-results", record]].concat(),
        &other_out,
    );
    common::assert_refused(&other, "seed 2 was trained with other departures");
    assert!(
        !other_out.join("paper/L2-seed1").exists(),
        "trained before refusing"
    );
    let other_run = reproduce(
        &["paper", "--only", "max-norm", "--merge-results", record],
        &other_out,
    );
    common::assert_refused(&other_run, "no file holds a row of the runs");
    std::fs::remove_dir_all(out).unwrap();
}
