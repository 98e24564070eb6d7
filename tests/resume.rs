//! `recipe train --resume`: a run killed with SIGKILL partway and resumed ends
//! with the same `history.csv` (but for the seconds column) and the same
//! weights as the same run left alone, on the CPU backend.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// Adam (moment estimates in the optimizer state), dropout (random masks),
/// shuffled batches, and epochs long enough to be killed in the middle.
const RUN: &[&str] = &[
    "train",
    "--hidden",
    "256,256",
    "--optimizer",
    "adam",
    "--lr",
    "1e-3",
    "--dropout",
    "0.3",
    "--input-dropout",
    "0.1",
    "--train-limit",
    "4000",
    "--valid-size",
    "1000",
    "--epochs",
    "10",
    "--seed",
    "11",
];

mod common;
use common::{assert_refused, assert_success, recipe, tensors};

/// `recipe train [EXTRA...] --resume DIR`.
fn resume(dir: &Path, extra: &[&str]) -> Output {
    recipe()
        .arg("train")
        .args(extra)
        .arg("--resume")
        .arg(dir)
        .output()
        .expect("the recipe binary runs")
}

fn run_dir(name: &str) -> PathBuf {
    common::fresh_dir(&format!("resume-{name}"))
}

fn run_to_end(dir: &Path) -> Output {
    recipe()
        .args(RUN)
        .arg("--out")
        .arg(dir)
        .output()
        .expect("the recipe binary runs")
}

fn epochs_in_history(dir: &Path) -> usize {
    fs::read_to_string(dir.join("history.csv")).map_or(0, |text| text.lines().count() - 1)
}

/// history.csv without its last column (wall-clock seconds).
fn history_without_seconds(dir: &Path) -> Vec<String> {
    fs::read_to_string(dir.join("history.csv"))
        .unwrap()
        .lines()
        .map(|line| line.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn a_killed_run_resumes_to_the_same_history_and_weights() {
    let alone = run_dir("alone");
    assert_success(&run_to_end(&alone));

    let killed = run_dir("killed");
    let mut child = recipe()
        .args(RUN)
        .arg("--out")
        .arg(&killed)
        .stdout(Stdio::null())
        .spawn()
        .expect("the recipe binary runs");
    let started = Instant::now();
    while epochs_in_history(&killed) < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(600), "no progress");
        sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    let done = epochs_in_history(&killed);
    assert!(
        done < 10 && !killed.join("summary.json").exists(),
        "the kill came too late to test anything ({done} epochs done)"
    );

    // A damaged checkpoint (written by something else: recipe's own writes
    // are atomic) is an error naming the file, in a copy of the run. Damage
    // the one a resume starts from: the newest epoch also in history.csv.
    let damaged = run_dir("damaged");
    fs::create_dir_all(damaged.join("checkpoint")).unwrap();
    for entry in ["config.json", "history.csv"] {
        fs::copy(killed.join(entry), damaged.join(entry)).unwrap();
    }
    let mut newest = None;
    for entry in fs::read_dir(killed.join("checkpoint")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        fs::copy(&path, damaged.join("checkpoint").join(&name)).unwrap();
        let name = name.into_string().unwrap();
        if let Some(epoch) = name.strip_prefix("model-") {
            let epoch: usize = epoch.trim_end_matches(".bpk").parse().unwrap();
            if epoch <= done {
                newest = newest.max(Some(epoch));
            }
        }
    }
    let newest = format!("model-{}.bpk", newest.expect("a model checkpoint"));
    let bytes = fs::read(damaged.join("checkpoint").join(&newest)).unwrap();
    fs::write(
        damaged.join("checkpoint").join(&newest),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    assert_refused(&resume(&damaged, &[]), &newest);
    fs::remove_dir_all(damaged).unwrap();

    let resumed = resume(&killed, &[]);
    assert_success(&resumed);
    let stdout = String::from_utf8_lossy(&resumed.stdout);
    assert!(stdout.contains("resuming after epoch"), "{stdout}");

    assert_eq!(
        history_without_seconds(&alone),
        history_without_seconds(&killed)
    );
    assert_eq!(history_without_seconds(&alone).len(), 11);
    let weights = tensors(&alone.join("model.safetensors"));
    assert_eq!(weights.len(), 6);
    assert!(
        weights == tensors(&killed.join("model.safetensors")),
        "the resumed run's weights differ"
    );
    // A finished run keeps no checkpoints, and cannot be resumed again.
    assert!(!killed.join("checkpoint").exists());
    assert_refused(&resume(&killed, &[]), "the run has finished");

    fs::remove_dir_all(alone).unwrap();
    fs::remove_dir_all(killed).unwrap();
}

#[test]
fn resume_refuses_other_options_and_missing_runs() {
    let missing = run_dir("missing");
    assert_refused(&resume(&missing, &[]), "config.json");
    assert_refused(
        &resume(&missing, &["--epochs", "3"]),
        "give no other option",
    );
}
