//! `recipe train --resume`: a run killed with SIGKILL partway and resumed ends
//! with the same `history.csv` (but for the seconds column) and the same
//! weights as the same run left alone: bit for bit on the CPU, within the
//! tolerance [`common::assert_resumed_history`] states on a GPU backend.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Adam (moment estimates in the optimizer state), a cosine learning-rate
/// schedule with warm-up (its position in Burn's scheduler record), dropout
/// (random masks), shuffled batches, per-layer gradient norms (`layers.csv`,
/// continued on resume), an exponential moving average of the weights
/// (saved beside each checkpoint, its validation figures in `history.csv`),
/// two batches accumulated into each step (the schedule and the average
/// count steps), and epochs long enough to be killed in the middle.
const RUN: &[&str] = &[
    "train",
    "--accumulate-grad-batches",
    "2",
    "--record-layers",
    "--average-weights",
    "ema:0.9",
    "--lr-schedule",
    "cosine:1:0.0001",
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
use common::{
    assert_refused, assert_resumed_history, assert_success, history_without_seconds,
    kill_after_epochs, on_cpu, recipe, resumed_after, tensors,
};

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
    run_to_end_with(RUN, dir)
}

fn run_to_end_with(run: &[&str], dir: &Path) -> Output {
    recipe()
        .args(run)
        .arg("--out")
        .arg(dir)
        .output()
        .expect("the recipe binary runs")
}

/// `RUN` for 6 epochs with early stopping on validation accuracy and
/// restore-best, plus `extra`. The worst epoch is "best" (`--mode min`): an
/// early one, as accuracy rises, so the kept weights come from a checkpoint
/// kept across a kill.
fn six_epochs_restoring_an_early_best<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    [
        &RUN[..RUN.len() - 4],
        &[
            "--epochs",
            "6",
            "--seed",
            "5",
            "--early-stopping",
            "--monitor",
            "valid_accuracy",
            "--mode",
            "min",
            "--patience",
            "20",
            "--restore-best",
        ],
        extra,
    ]
    .concat()
}

/// `run` left alone in `NAME-alone`, and killed after 2 epochs in
/// `NAME-killed`, resumed there to the same history; with the alone run's
/// output.
fn alone_and_killed_then_resumed(run: &[&str], name: &str) -> (PathBuf, PathBuf, String) {
    let alone = run_dir(&format!("{name}-alone"));
    let stdout = assert_success(&run_to_end_with(run, &alone));
    let killed = run_dir(&format!("{name}-killed"));
    let done = kill_after_epochs(recipe().args(run).arg("--out").arg(&killed), &killed, 2);
    assert!(done < 6, "the kill came too late ({done} epochs done)");
    let resumed = assert_success(&resume(&killed, &[]));
    assert_resumed_history(&alone, &killed, resumed_after(&resumed));
    (alone, killed, stdout)
}

/// A finished run's `summary.json`.
fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn a_killed_run_resumes_to_the_same_history_and_weights() {
    let alone = run_dir("alone");
    assert_success(&run_to_end(&alone));

    let killed = run_dir("killed");
    let done = kill_after_epochs(recipe().args(RUN).arg("--out").arg(&killed), &killed, 3);
    assert!(
        done < 10,
        "the kill came too late to test anything ({done} epochs done)"
    );

    // A damaged checkpoint (written by something else: recipe's own writes
    // are atomic) is an error naming the file, in a copy of the run. Damage
    // the one a resume starts from: the newest epoch with all its records
    // (the kill may land between an epoch's model and optimizer files) and
    // a line in history.csv.
    let damaged = run_dir("damaged");
    fs::create_dir_all(damaged.join("checkpoint")).unwrap();
    for entry in ["config.json", "history.csv"] {
        fs::copy(killed.join(entry), damaged.join(entry)).unwrap();
    }
    for entry in fs::read_dir(killed.join("checkpoint")).unwrap() {
        let path = entry.unwrap().path();
        fs::copy(
            &path,
            damaged.join("checkpoint").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    let newest = recipe::train::complete_checkpoints(&killed)
        .into_iter()
        .filter(|&epoch| epoch <= done)
        .max()
        .expect("a complete checkpoint");
    let newest = format!("model-{newest}.bpk");
    let bytes = fs::read(damaged.join("checkpoint").join(&newest)).unwrap();
    fs::write(
        damaged.join("checkpoint").join(&newest),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    assert_refused(&resume(&damaged, &[]), &newest);
    fs::remove_dir_all(damaged).unwrap();

    // A resume may change how often the metrics are read: no figure moves.
    let resumed = resume(&killed, &["--read-metrics-every", "3"]);
    let stdout = assert_success(&resumed);
    assert_resumed_history(&alone, &killed, resumed_after(&stdout));
    assert_eq!(history_without_seconds(&alone).len(), 11);
    let layers = |dir: &Path| fs::read_to_string(dir.join("layers.csv")).unwrap();
    assert_eq!(layers(&alone).lines().count(), 1 + 10 * 3);
    if on_cpu() {
        assert_eq!(layers(&alone), layers(&killed));
    }
    let weights = tensors(&alone.join("model.safetensors"));
    assert_eq!(weights.len(), 6);
    assert!(
        !on_cpu() || weights == tensors(&killed.join("model.safetensors")),
        "the resumed run's weights differ"
    );
    let averaged = tensors(&alone.join("averaged.safetensors"));
    assert_ne!(averaged, weights, "the average is not the last weights");
    assert!(
        !on_cpu() || averaged == tensors(&killed.join("averaged.safetensors")),
        "the resumed run's average differs"
    );
    // A finished run keeps no checkpoints, and cannot be resumed again.
    assert!(!killed.join("checkpoint").exists());
    assert_refused(&resume(&killed, &[]), "the run has finished");

    fs::remove_dir_all(alone).unwrap();
    fs::remove_dir_all(killed).unwrap();
}

#[test]
fn resume_refuses_other_options_and_missing_or_corrupt_runs() {
    let missing = run_dir("missing");
    assert_refused(&resume(&missing, &[]), "config.json");
    assert_refused(
        &resume(&missing, &["--epochs", "3"]),
        "give no other option",
    );
    let corrupt = run_dir("corrupt");
    fs::create_dir_all(&corrupt).unwrap();
    fs::write(corrupt.join("config.json"), "{not json").unwrap();
    assert_refused(&resume(&corrupt, &[]), "config.json: key must be a string");
    fs::remove_dir_all(corrupt).unwrap();
}

/// Early stopping on validation accuracy with restore-best, resumed: the
/// resumed Learner numbers its epochs from the checkpoint on, and early
/// stopping must find those epochs' metrics (Burn's in-memory store alone
/// would not: it would stop the resumed run at once, "not recorded"), keep
/// the best epoch's checkpoint across the kill, and restore it. A
/// ReduceLROnPlateau rule on the same metric lowers the rate at the end of
/// every epoch after the first and restarts early stopping's patience: the
/// resumed run must replay both to the same rates and decisions. The two
/// best epochs by validation loss and the last are kept in `checkpoints/`:
/// the ranking must continue across the kill.
#[test]
fn early_stopping_with_restore_best_resumes_as_if_never_killed() {
    let run = six_epochs_restoring_an_early_best(&[
        "--reduce-lr-on-plateau",
        "monitor=valid_accuracy,mode=min,factor=0.5,patience=1,reset_early_stopping=true",
        "--keep-checkpoints",
        "top_k=2,last=true",
    ]);
    let (alone, killed, stdout) = alone_and_killed_then_resumed(&run, "es");
    assert_eq!(
        stdout.matches("plateau: learning rate lowered").count(),
        5,
        "{stdout}"
    );
    assert_eq!(history_without_seconds(&alone).len(), 7);
    let (alone_summary, killed_summary) = (summary(&alone), summary(&killed));
    let restored = alone_summary["weights_from_epoch"].as_u64().unwrap();
    assert!(
        restored < 6,
        "the best epoch is the last one: nothing restored"
    );
    for field in [
        "best_epoch",
        "weights_from_epoch",
        "test_accuracy",
        "stop_reason",
    ] {
        assert_eq!(alone_summary[field], killed_summary[field], "{field}");
    }
    assert!(
        tensors(&alone.join("model.safetensors")) == tensors(&killed.join("model.safetensors")),
        "the resumed run's restored weights differ"
    );
    let kept = |dir: &Path| fs::read_to_string(dir.join("checkpoints/checkpoints.csv")).unwrap();
    assert_eq!(kept(&alone).lines().count(), 4, "{}", kept(&alone));
    let kept_files = |csv: String| -> Vec<String> {
        csv.lines()
            .map(|line| line.split(',').take(3).collect::<Vec<_>>().join(","))
            .collect()
    };
    assert_eq!(kept_files(kept(&alone)), kept_files(kept(&killed)));
    if on_cpu() {
        assert_eq!(kept(&alone), kept(&killed));
        for line in kept(&alone).lines().skip(1) {
            let stem = line
                .split(',')
                .next()
                .unwrap()
                .replace(".bpk", ".safetensors");
            let file = format!("checkpoints/{stem}");
            assert!(
                tensors(&alone.join(&file)) == tensors(&killed.join(&file)),
                "{file} differs"
            );
        }
    }
    fs::remove_dir_all(alone).unwrap();
    fs::remove_dir_all(killed).unwrap();
}

/// Validating with the average and restoring the best epoch, resumed: the
/// best epoch's average (an early epoch's, as above) must be kept beside the
/// checkpoints across the kill and become the model, the same weights as
/// the run left alone.
#[test]
fn validating_with_the_average_resumes_to_the_same_best_average() {
    let run = six_epochs_restoring_an_early_best(&["--validate-averaged"]);
    let (alone, killed, _) = alone_and_killed_then_resumed(&run, "average");
    let (alone_summary, killed_summary) = (summary(&alone), summary(&killed));
    let restored = alone_summary["weights_from_epoch"].as_u64().unwrap();
    assert!(
        restored + 3 <= 6,
        "the best average is among the newest: nothing kept for it ({restored})"
    );
    for field in ["weights_from_epoch", "test_accuracy"] {
        assert_eq!(alone_summary[field], killed_summary[field], "{field}");
    }
    if on_cpu() {
        assert_eq!(alone_summary["valid_loss"], killed_summary["valid_loss"]);
        assert!(
            tensors(&alone.join("model.safetensors")) == tensors(&killed.join("model.safetensors")),
            "the resumed run's restored average differs"
        );
    }
    fs::remove_dir_all(alone).unwrap();
    fs::remove_dir_all(killed).unwrap();
}

/// A data-parallel run on two devices (the CPU twice) killed and resumed
/// with the same `--devices` ends as the same run left alone. Without
/// dropout: two devices draw their masks from one generator in whichever
/// order their threads run. Without accumulation: Burn adds the devices'
/// gradients in the order their threads finish, which two gradients
/// survive (a + b = b + a) but four do not (two runs left alone differed
/// in the tenth digit of epoch 1's training loss).
#[test]
fn a_data_parallel_run_resumes_on_its_devices() {
    let run: Vec<&str> = RUN
        .iter()
        .copied()
        .filter(|a| {
            ![
                "--dropout",
                "0.3",
                "--input-dropout",
                "0.1",
                "--accumulate-grad-batches",
                "2",
            ]
            .contains(a)
        })
        .chain(["--devices", "cpu,cpu"])
        .collect();
    let alone = run_dir("parallel-alone");
    assert_success(&run_to_end_with(&run, &alone));
    let config = fs::read_to_string(alone.join("config.json")).unwrap();
    assert!(config.contains("\"devices\": 2"), "{config}");
    let summary = fs::read_to_string(alone.join("summary.json")).unwrap();
    assert!(summary.contains("\"devices\": 2"), "{summary}");

    let killed = run_dir("parallel-killed");
    let done = kill_after_epochs(recipe().args(&run).arg("--out").arg(&killed), &killed, 3);
    assert!(done < 10, "the kill came too late ({done} epochs done)");
    let resumed = resume(&killed, &["--devices", "cpu,cpu"]);
    let stdout = assert_success(&resumed);
    assert_resumed_history(&alone, &killed, resumed_after(&stdout));
    assert_eq!(
        tensors(&alone.join("model.safetensors")),
        tensors(&killed.join("model.safetensors")),
        "the resumed run's weights differ"
    );
    fs::remove_dir_all(alone).unwrap();
    fs::remove_dir_all(killed).unwrap();
}

/// L1 + L2 and max-norm on a run with SGD and momentum: on the CPU the
/// penalty's gradient and the constraint are folded into the fused
/// optimizer (parameter groups in Burn's optimizer record: one per
/// constrained weight, with its penalty, and one for the biases' penalty;
/// the bound is tight enough to rescale units), and the momentum rises
/// along a ramp that is
/// still rising at the kill (each parameter's update count is recorded with
/// its velocity), and the first layer and the output learn at half the
/// rate (a scheduler group each in Burn's scheduler record). Resumed, it
/// ends as if never killed: a resumed ramp that started again from 0.5
/// would end elsewhere.
///
/// CPU only: on a GPU backend the penalty's value is a reduction whose
/// kernel Burn's autotuner may choose differently in each process, so even
/// the epochs before the kill differ in the last digits of `train_penalty`
/// (seen on wgpu over lavapipe: 0.6439275950 against 0.6439275920), and the
/// fold itself is recipe-flex's, for the CPU.
#[test]
fn a_run_with_folded_hooks_a_momentum_ramp_and_layer_rates_resumes_bit_for_bit() {
    if !on_cpu() {
        return;
    }
    let run: &[&str] = &[
        "train",
        "--hidden",
        "256,256",
        "--optimizer",
        "sgd",
        "--momentum",
        "0.9",
        "--momentum-ramp",
        "0.5:200",
        "--lr",
        "0.05",
        "--lr-scale",
        "0.5@layers.0,output",
        "--l1",
        "1e-5",
        "--l2",
        "1e-3",
        "--max-norm",
        "0.8",
        "--train-limit",
        "4000",
        "--valid-size",
        "1000",
        "--epochs",
        "8",
        "--seed",
        "13",
    ];
    let alone = run_dir("folded-alone");
    assert_success(&run_to_end_with(run, &alone));
    let killed = run_dir("folded-killed");
    let done = kill_after_epochs(recipe().args(run).arg("--out").arg(&killed), &killed, 3);
    assert!(done < 8, "the kill came too late ({done} epochs done)");
    let stdout = assert_success(&resume(&killed, &[]));
    assert_resumed_history(&alone, &killed, resumed_after(&stdout));
    assert!(
        !on_cpu()
            || tensors(&alone.join("model.safetensors"))
                == tensors(&killed.join("model.safetensors")),
        "the resumed run's weights differ"
    );
    fs::remove_dir_all(alone).unwrap();
    fs::remove_dir_all(killed).unwrap();
}
