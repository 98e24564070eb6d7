//! The `recipe` binary: help, and clear errors with exit status 2 on bad input.

use std::process::Output;

mod common;
use common::{assert_refused as assert_clean_failure, fresh_dir};

fn recipe(args: &[&str]) -> Output {
    common::recipe()
        .args(args)
        .output()
        .expect("the recipe binary runs")
}

/// `recipe train ARGS --out DIR`, with DIR a fresh temporary folder named after `name`.
fn train_into(name: &str, args: &[&str]) -> (Output, std::path::PathBuf) {
    let dir = fresh_dir(&format!("cli-{name}"));
    let mut all = vec!["train"];
    all.extend_from_slice(args);
    all.extend(["--out", dir.to_str().unwrap()]);
    (recipe(&all), dir)
}

#[test]
fn help_explains_every_train_option() {
    let output = recipe(&["train", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--dataset",
        "--data-dir",
        "--device",
        "--hidden",
        "--activation",
        "--pieces",
        "--init",
        "--optimizer",
        "--lr",
        "--momentum",
        "--batch-size",
        "--epochs",
        "--seed",
        "--valid-size",
        "--train-limit",
        "--dropout",
        "--input-dropout",
        "--out",
        "--config",
        "--group-lasso",
        "--constraint",
        "--clip",
        "--overwrite",
        "--lr-schedule",
        "--lr-scale",
        "--reduce-lr-on-plateau",
        "--keep-checkpoints",
        "--average-weights",
        "--use-averaged",
        "--validate-averaged",
    ] {
        assert!(help.contains(option), "train --help lacks {option}");
    }
    assert!(help.contains("maxout[:pieces]"));
    assert!(
        help.contains("prelu-per-unit[:alpha]"),
        "the registry's list"
    );
}

#[test]
fn impossible_settings_exit_2_naming_the_option() {
    assert_clean_failure(&recipe(&["train", "--dropout", "1.5"]), "`dropout`");
    assert_clean_failure(&recipe(&["train", "--lr", "-0.1"]), "`learning_rate`");
    assert_clean_failure(
        &recipe(&["train", "--activation", "relux"]),
        "unknown activation `relux`",
    );
    assert_clean_failure(
        &recipe(&["train", "--activation", "maxout", "--pieces", "0"]),
        "pieces",
    );
    assert_clean_failure(&recipe(&["train", "--batch-size", "0"]), "`batch_size`");
    assert_clean_failure(
        &recipe(&["train", "--constraint", "max-norm"]),
        "max-norm:NUMBER",
    );
    assert_clean_failure(
        &recipe(&["train", "--constraint", "clamp:1"]),
        "constraint `clamp` is not registered",
    );
    assert_clean_failure(&recipe(&["train", "--group-lasso", "-1"]), "`group_lasso`");
    assert_clean_failure(
        &recipe(&["reproduce", "penalties", "--jobs", "2"]),
        "one experiment runs alone",
    );
    assert_clean_failure(
        &recipe(&["train", "--dropout-inference", "monte-carlo:0"]),
        "monte-carlo:K",
    );
    assert_clean_failure(
        &recipe(&["train", "--dropout-form", "scaled"]),
        "inverted, lecture",
    );
    let clip = recipe(&["train", "--clip", "norm:0"]);
    let said = "`gradient_clipping.global_norm` must be a finite number > 0";
    assert_clean_failure(&clip, said);
    // Once: the setting is the error's words, not also its cause.
    assert_eq!(
        String::from_utf8_lossy(&clip.stderr).matches(said).count(),
        1
    );
    assert_clean_failure(
        &recipe(&["train", "--clip", "size:3"]),
        "norm:MAX or value:MAX",
    );
    assert_clean_failure(
        &recipe(&["train", "--epochs", "3", "--lr-schedule", "cosine:3"]),
        "`lr_schedule.cosine.warmup` must be fewer epochs than the run's 3",
    );
    assert_clean_failure(
        &recipe(&["train", "--lr-schedule", "exponential:-0.5"]),
        "a number in (0, 1]",
    );
    assert_clean_failure(&recipe(&["train", "--lr-schedule", "linear"]), "one-cycle");
    assert_clean_failure(
        &recipe(&[
            "train",
            "--lr",
            "0.1",
            "--reduce-lr-on-plateau",
            "min_lr=0.5",
        ]),
        "`reduce_lr_on_plateau.min_lr` must be at least 0 and below the learning rate (0.1)",
    );
    assert_clean_failure(
        &recipe(&["train", "--reduce-lr-on-plateau", "monitor=valid_acc"]),
        "valid_loss, valid_accuracy, train_loss or train_accuracy",
    );
    assert_clean_failure(
        &recipe(&[
            "train",
            "--reduce-lr-on-plateau",
            "reset_early_stopping=true",
        ]),
        "`reduce_lr_on_plateau.reset_early_stopping` must be false in a run without early stopping",
    );
    assert_clean_failure(
        &recipe(&["train", "--keep-checkpoints", "top_k=0"]),
        "`keep_checkpoints.top_k`",
    );
    assert_clean_failure(
        &recipe(&["train", "--use-averaged"]),
        "`use_averaged_weights`",
    );
    assert_clean_failure(
        &recipe(&["train", "--validate-averaged"]),
        "`validate_with_average` must be false in a run without weight_averaging",
    );
    let (output, dir) = train_into(
        "validate-keep",
        &[
            "--average-weights",
            "ema:0.9",
            "--validate-averaged",
            "--keep-checkpoints",
            "top_k=2",
        ],
    );
    assert_clean_failure(
        &output,
        "`keep_checkpoints` must be none with validate_with_average",
    );
    assert!(!dir.exists(), "nothing written for a refused setting");
    assert_clean_failure(
        &recipe(&["train", "--epochs", "3", "--average-weights", "swa:4"]),
        "`weight_averaging.swa.start_epoch` must be an epoch of the run, 1 to 3",
    );
    assert_clean_failure(
        &recipe(&[
            "train",
            "--epochs",
            "1",
            "--l2",
            "1e-4",
            "--regularize-layers",
            "layer.0",
        ]),
        "`regularize.selector`",
    );
    assert_clean_failure(
        &recipe(&["train", "--epochs", "1", "--lr-scale", "0.5@layer.0"]),
        "`lr_scales[0].selector` must be a selection of at least one parameter",
    );
    assert_clean_failure(
        &recipe(&["train", "--lr-scale", "-1@layers.0"]),
        "`lr_scales.factor` must be a finite number >= 0",
    );
    assert_clean_failure(
        &recipe(&["train", "--lr-scale", "0.5"]),
        "FACTOR@LAYER[,LAYER...]",
    );
    assert_clean_failure(
        &recipe(&["train", "--device", "tpu"]),
        "unknown device `tpu`",
    );
}

/// A device named by RECIPE_DEVICE that this build lacks: the error says
/// where the name came from.
#[test]
fn a_device_from_the_environment_is_named_as_such() {
    let with_env = |args: &[&str]| {
        let output = common::recipe()
            .args(args)
            .env("RECIPE_DEVICE", "tpu")
            .output()
            .unwrap();
        assert_clean_failure(&output, "unknown device `tpu`");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = with_env(&["train", "--epochs", "1"]);
    assert!(
        stderr.contains("named by the environment: RECIPE_DEVICE=tpu"),
        "{stderr}"
    );
    // Given on the command line, the name needs no such note.
    let stderr = with_env(&["train", "--device", "tpu"]);
    assert!(!stderr.contains("environment"), "{stderr}");
}

/// RECIPE_KERNELS chooses recipe's fused kernels or Burn's own code; the
/// bench says which ran, and a value that is neither is refused by name.
#[test]
fn the_kernels_are_chosen_by_the_environment() {
    let bench = |kernels: &str| {
        common::recipe()
            .args(["bench", "--json", "--cases-only", "--case", "b"])
            .args(["--repeats", "1", "--steps", "1"])
            .env("RECIPE_KERNELS", kernels)
            .output()
            .unwrap()
    };
    for kernels in ["burn", "recipe"] {
        let output = bench(kernels);
        let stdout = common::assert_success(&output);
        let object: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(object["kernels"], kernels, "{object}");
    }
    assert_clean_failure(&bench("fast"), "RECIPE_KERNELS=fast");
}

#[test]
fn missing_data_and_bad_config_files_are_named() {
    assert_clean_failure(
        &recipe(&["train", "--data-dir", "/nonexistent/mnist", "--epochs", "1"]),
        "/nonexistent/mnist",
    );
    let dir = std::env::temp_dir().join(format!("recipe-cli-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cut_short = dir.join("mnist");
    std::fs::create_dir_all(&cut_short).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist")).unwrap() {
        let from = entry.unwrap().path();
        std::fs::copy(&from, cut_short.join(from.file_name().unwrap())).unwrap();
    }
    let images = cut_short.join("train-images-idx3-ubyte.gz");
    let bytes = std::fs::read(&images).unwrap();
    std::fs::write(&images, &bytes[..1000]).unwrap();
    assert_clean_failure(
        &recipe(&["train", "--data-dir", cut_short.to_str().unwrap()]),
        "train-images-idx3-ubyte.gz: corrupt gzip stream",
    );
    let config = dir.join("bad.toml");
    std::fs::write(&config, "epochs = 2\nlearning-rate = 0.1\n").unwrap();
    assert_clean_failure(
        &recipe(&["train", "--config", config.to_str().unwrap()]),
        "unknown field `learning-rate`",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn train_writes_its_artifacts() {
    let (output, dir) = train_into(
        "train",
        &["--hidden", "32", "--epochs", "1", "--train-limit", "2000"],
    );
    let stdout = common::assert_success(&output);
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("epoch ")).count(),
        1,
        "{stdout}"
    );
    for file in [
        "config.json",
        "history.csv",
        "summary.json",
        "model.bpk",
        "model.safetensors",
    ] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn diagnose_tells_an_optimization_problem_from_overfitting() {
    // Five sigmoid layers: two would not vanish (first / last 0.15).
    let output = recipe(&[
        "diagnose",
        "--hidden",
        "64,64,64,64,64",
        "--activation",
        "sigmoid",
        "--train-limit",
        "1000",
        "--epochs",
        "1",
        "--no-baseline",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("diagnosis: optimization problem"),
        "{stdout}"
    );
    assert!(stdout.contains("--activation relu"), "{stdout}");
    // The mechanism, not only the symptom: the first layer's gradient, named.
    assert!(stdout.contains("gradient ratio [FOUND]"), "{stdout}");
    assert!(
        stdout.contains("vanishing gradient: layers.0.linear.weight gets"),
        "{stdout}"
    );
    assert!(stdout.contains("loss at initialization [ok]"), "{stdout}");

    // A learning rate that makes the loss NaN is diagnosed, not only refused.
    let output = recipe(&[
        "diagnose",
        "--hidden",
        "64",
        "--lr",
        "1e8",
        "--train-limit",
        "1000",
        "--epochs",
        "2",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("divergence [FOUND]"), "{stdout}");
    assert!(stdout.contains("(--lr 10000000)"), "{stdout}");

    // A wide net on few images for many epochs fits its training data and overfits.
    let (output, dir) = train_into(
        "diag",
        &[
            "--hidden",
            "256",
            "--optimizer",
            "adam",
            "--train-limit",
            "500",
            "--valid-size",
            "2000",
            "--epochs",
            "15",
        ],
    );
    common::assert_success(&output);
    let summary = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    assert!(summary.contains("\"initial_loss\""), "{summary}");
    assert!(summary.contains("\"dead_share\""), "{summary}");
    let output = recipe(&["diagnose", "--run", dir.to_str().unwrap(), "--no-baseline"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("diagnosis: overfitting"), "{stdout}");
    assert!(stdout.contains("--early-stopping"), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--dropout-inference monte-carlo:K` evaluates the final net as the
/// average of K thinned nets and keeps the weight-scaled test figures
/// beside them; `--dropout-form lecture` trains the lecture's form and
/// records it, and `--input-dropout-form` the inputs' own.
#[test]
fn dropout_inference_and_form_are_chosen_and_recorded() {
    let (output, dir) = train_into(
        "monte-carlo",
        &[
            "--hidden",
            "64",
            "--dropout",
            "0.5",
            "--dropout-form",
            "lecture",
            "--input-dropout",
            "0.2",
            "--input-dropout-form",
            "unscaled",
            "--dropout-inference",
            "monte-carlo:4",
            "--epochs",
            "1",
            "--train-limit",
            "1000",
        ],
    );
    common::assert_success(&output);
    let read = |file: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap()
    };
    let summary = read("summary.json");
    let monte_carlo = &summary["monte_carlo"];
    assert_eq!(monte_carlo["samples"], 4, "{summary}");
    let sampled = summary["test_loss"].as_f64().unwrap();
    let scaled = monte_carlo["weight_scaled_test_loss"].as_f64().unwrap();
    assert!((sampled - scaled).abs() > 1e-6, "{sampled} vs {scaled}");
    let config = read("config.json");
    assert_eq!(
        config["network"]["mlp"]["dropout_form"], "lecture",
        "{config}"
    );
    assert_eq!(
        config["network"]["mlp"]["input_dropout_form"], "unscaled",
        "{config}"
    );
    assert_eq!(
        config["fit"]["dropout_inference"]["monte_carlo"]["samples"], 4,
        "{config}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A finished 784-64-10 run with dropout 0.5 (one epoch on 1,000 images,
/// 1,000 validation images) and `extra` options, in a fresh folder.
fn small_dropout_run(name: &str, extra: &[&str]) -> std::path::PathBuf {
    let mut args = vec![
        "--hidden",
        "64",
        "--dropout",
        "0.5",
        "--epochs",
        "1",
        "--train-limit",
        "1000",
        "--valid-size",
        "1000",
    ];
    args.extend_from_slice(extra);
    let (output, dir) = train_into(name, &args);
    common::assert_success(&output);
    dir
}

fn read_json(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `--validate-thinned`: history.csv's validation figures are a thinned
/// net's (another loss than the weight-scaled evaluation of the same final
/// weights in summary.json), and config.json records the choice.
#[test]
fn validate_thinned_records_the_dropout_objective() {
    let dir = small_dropout_run("validate-thinned", &["--validate-thinned"]);
    let read = |file: &str| read_json(&dir.join(file));
    assert_eq!(read("config.json")["fit"]["validate_thinned"], true);
    let history = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    let last = history.lines().last().unwrap();
    let thinned: f64 = last.split(',').nth(4).unwrap().parse().unwrap();
    let scaled = read("summary.json")["valid_loss"].as_f64().unwrap();
    assert!(
        thinned > scaled + 1e-3,
        "a thinned net's loss is above the weight-scaled net's: {thinned} vs {scaled}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `recipe evaluate DIR`: the weight-scaled figures are the run's own,
/// the sampled thinned nets draw their masks from the seed (each command is
/// a process of its own, so Burn's one generator per process is not shared
/// with another test), and bad requests are refused by name.
#[test]
fn evaluate_repeats_a_runs_figures_and_samples_by_seed() {
    let dir = small_dropout_run("evaluate", &[]);
    let read = read_json;
    let evaluate = |json: &str, extra: &[&str]| -> serde_json::Value {
        let path = dir.join(json);
        let mut args = vec!["evaluate", dir.to_str().unwrap(), "--json"];
        args.push(path.to_str().unwrap());
        args.extend_from_slice(extra);
        let stdout = common::assert_success(&recipe(&args));
        assert!(stdout.contains("| weight-scaled net |"), "{stdout}");
        read(&path)
    };
    let summary = read(&dir.join("summary.json"));
    let plain = evaluate("plain.json", &[]);
    assert_eq!(plain["splits"][0]["split"], "valid");
    assert_eq!(plain["splits"][0]["weight_scaled"]["examples"], 1000);
    assert_eq!(
        plain["splits"][0]["weight_scaled"]["accuracy"], summary["valid_accuracy"],
        "{plain}"
    );
    assert_eq!(
        plain["splits"][1]["weight_scaled"]["accuracy"], summary["test_accuracy"],
        "{plain}"
    );
    assert_eq!(plain["splits"][1]["monte_carlo"], serde_json::json!([]));
    let one = evaluate("one.json", &["--monte-carlo", "1,8"]);
    let two = evaluate("two.json", &["--monte-carlo", "1,8"]);
    let other = evaluate("other.json", &["--monte-carlo", "1,8", "--seed", "9"]);
    assert_eq!(one, two, "the run's seed, the same masks");
    assert_eq!(one["splits"][1]["monte_carlo"][1]["samples"], 8);
    assert_ne!(
        one["splits"][1]["monte_carlo"], other["splits"][1]["monte_carlo"],
        "another seed, other masks"
    );
    let dir_arg = dir.to_str().unwrap();
    assert_clean_failure(
        &recipe(&["evaluate", dir_arg, "--weights", "averaged.bpk"]),
        "averaged.bpk",
    );
    assert_clean_failure(
        &recipe(&["evaluate", dir_arg, "--monte-carlo", "10,0"]),
        "1 or more",
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// With `--keep-checkpoints top_k=2,last=true`, `checkpoints/` keeps the two
/// epochs of lowest validation loss and the last, listed best first; the
/// best one's weights are the restored model's.
#[test]
fn early_stopping_keeps_the_epoch_with_the_lowest_validation_loss() {
    let (output, dir) = train_into(
        "es",
        &[
            "--hidden",
            "256,256",
            "--optimizer",
            "adam",
            "--train-limit",
            "1000",
            "--valid-size",
            "2000",
            "--epochs",
            "40",
            "--early-stopping",
            "--patience",
            "3",
            "--restore-best",
            "--keep-checkpoints",
            "top_k=2,last=true",
        ],
    );
    common::assert_success(&output);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let history = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    let valid_losses: Vec<f64> = history
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(4).unwrap().parse().unwrap())
        .collect();
    assert!(summary["stopped_early"].as_bool().unwrap());
    assert!(valid_losses.len() < 40);
    let minimum = valid_losses.iter().cloned().fold(f64::INFINITY, f64::min);
    let saved = summary["valid_loss"].as_f64().unwrap();
    assert!(
        (saved - minimum).abs() <= 1e-9 * minimum,
        "{saved} vs {minimum}"
    );
    let mut by_loss: Vec<(f64, usize)> = valid_losses.iter().copied().zip(1..).collect();
    by_loss.sort_by(|a, b| a.0.total_cmp(&b.0));
    let kept = std::fs::read_to_string(dir.join("checkpoints/checkpoints.csv")).unwrap();
    let kept: Vec<Vec<String>> = kept
        .lines()
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(kept.len(), 4, "{kept:?}");
    let (best, second, last) = (by_loss[0].1, by_loss[1].1, valid_losses.len());
    let files: Vec<(&str, &str, String)> = kept[1..]
        .iter()
        .map(|row| (row[0].as_str(), row[1].as_str(), row[2].clone()))
        .collect();
    assert_eq!(
        files,
        [
            (
                format!("epoch-{best}.bpk").as_str(),
                "top-1",
                best.to_string()
            ),
            (
                format!("epoch-{second}.bpk").as_str(),
                "top-2",
                second.to_string()
            ),
            ("last.bpk", "last", last.to_string()),
        ]
    );
    let weights = |path: &str| common::tensors(&dir.join(path));
    assert_eq!(
        weights(&format!("checkpoints/epoch-{best}.safetensors")),
        weights("model.safetensors"),
        "the best epoch's kept weights are the restored model's"
    );
    assert_ne!(
        weights("checkpoints/last.safetensors"),
        weights("model.safetensors")
    );
    assert!(dir.join("checkpoints/last.bpk").is_file());
    assert!(
        !dir.join("checkpoint").exists(),
        "the resume points are gone"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn data_info_lists_the_files_with_their_checksums() {
    let output = recipe(&["data", "info"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("60000 x 28 x 28"), "{stdout}");
    assert!(stdout.contains("10000  "), "{stdout}");
    // The checksums the vendored files were published with.
    let sums = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist/SHA256SUMS"),
    )
    .unwrap();
    for line in sums.lines() {
        let sum = line.split_whitespace().next().unwrap();
        assert!(stdout.contains(sum), "{sum} missing from {stdout}");
    }
    assert_clean_failure(
        &recipe(&["data", "info", "--dataset", "cifar"]),
        "`dataset`",
    );
}

/// `recipe data info | head -1`: a reader that goes away ends recipe by
/// SIGPIPE, as any Unix tool, not with a panic.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn a_closed_output_pipe_ends_recipe_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader); // no one will ever read: the first write fails
    let output = common::recipe()
        .args(["data", "info"])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        output.status.signal(),
        Some(13),
        "SIGPIPE; stderr: {stderr}"
    );
}

#[test]
fn a_diverging_loss_stops_with_a_hint_and_keeps_the_history() {
    let (output, dir) = train_into(
        "nan",
        &[
            "--hidden",
            "64",
            "--lr",
            "1e8",
            "--epochs",
            "3",
            "--train-limit",
            "2000",
        ],
    );
    assert_clean_failure(&output, "training diverged at epoch 1");
    assert_clean_failure(&output, "learning rate");
    let history = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bench_prints_one_json_object_per_case() {
    let output = recipe(&[
        "bench",
        "--json",
        "--cases-only",
        "--case",
        "a,c",
        "--repeats",
        "1",
        "--steps",
        "1",
    ]);
    let stdout = common::assert_success(&output);
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), 2, "{stdout}");
    for (object, (letter, batch)) in objects.iter().zip([("A", 128), ("C", 100)]) {
        assert!(
            object["case"].as_str().unwrap().starts_with(letter),
            "{object}"
        );
        assert_eq!(object["batch_size"], batch);
        assert_eq!(
            object["device"].as_str().unwrap(),
            format!("{:?}", common::device()),
            "the device RECIPE_DEVICE names, or the CPU"
        );
        for key in ["train_samples_per_sec", "infer_samples_per_sec"] {
            assert!(object[key].as_f64().unwrap() > 0.0, "{key} in {object}");
        }
    }
    // Without --cases-only: the data path, the loop comparison and the cost
    // of each hook follow, one object each.
    let output = recipe(&[
        "bench",
        "--json",
        "--case",
        "a",
        "--repeats",
        "1",
        "--steps",
        "1",
    ]);
    assert!(output.status.success(), "{output:?}");
    let measurements: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .skip(1)
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let names: Vec<&str> = measurements
        .iter()
        .map(|m| m["measurement"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["data_path", "loop_overhead"]
            .into_iter()
            .chain(["hook_cost"; 5])
            .collect::<Vec<_>>()
    );
    assert!(measurements[0]["batches_per_sec"].as_f64().unwrap() > 0.0);
    let hooks: Vec<&str> = measurements[2..]
        .iter()
        .map(|m| m["hooks"].as_str().unwrap())
        .collect();
    assert_eq!(hooks[0], "no hook");
    assert!(hooks.contains(&"L1 1e-5") && hooks.contains(&"max-norm 3"));

    let output = recipe(&["bench", "--case", "d"]);
    assert_clean_failure(&output, "--case d");
}

/// `--group-lasso`, `--constraint` and `--clip` reach the run and its
/// `config.json`, the constraints hold on the saved weights, and the
/// gradient norm's columns are in `history.csv`.
#[test]
fn group_lasso_and_constraints_are_recorded_and_applied() {
    let (output, dir) = train_into(
        "constraints",
        &[
            "--hidden",
            "32",
            "--epochs",
            "1",
            "--train-limit",
            "1000",
            "--group-lasso",
            "1e-3",
            "--constraint",
            "non-neg",
            "--constraint",
            "unit-norm",
            "--clip",
            "norm:5",
        ],
    );
    common::assert_success(&output);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["fit"]["penalties"][0]["name"], "group-lasso");
    assert_eq!(config["fit"]["penalties"][0]["settings"]["lambda"], 1e-3);
    assert_eq!(config["fit"]["constraints"][0]["name"], "non-neg");
    assert_eq!(config["fit"]["constraints"][1]["name"], "unit-norm");
    assert_eq!(config["fit"]["constraints"][1]["settings"]["norm"], 1.0);
    assert_eq!(config["fit"]["gradient_clipping"]["global_norm"], 5.0);
    let history = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    assert!(
        history.starts_with("epoch,train_loss,train_penalty,train_accuracy,valid_loss,valid_accuracy,learning_rate,grad_norm_mean,grad_norm_max,seconds,loss\n"),
        "{history}"
    );
    let tensors = common::tensors(&dir.join("model.safetensors"));
    let (shape, bytes) = &tensors["layers.0.linear.weight"];
    assert_eq!(shape, "[784,32]");
    let w: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert!(w.iter().all(|&v| v >= 0.0), "non-neg held");
    let norms = common::unit_norms(&tensors, "layers.0.linear.weight");
    assert_eq!(norms.len(), 32);
    for (unit, norm) in norms.into_iter().enumerate() {
        assert!(
            (norm - 1.0).abs() < 1e-4 || norm == 0.0,
            "unit {unit}: norm {norm}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// A whole parameter path after `@` selects that parameter whatever its
/// kind: PReLU slopes that start at -0.5 are non-negative in the first
/// layer, which names them, and stay negative in the second.
#[test]
fn a_constraint_on_a_parameter_named_by_its_whole_path() {
    let (output, dir) = train_into(
        "slope-constraint",
        &[
            "--hidden",
            "32,16",
            "--activation",
            "prelu-per-unit:-0.5",
            "--epochs",
            "1",
            "--train-limit",
            "1000",
            "--constraint",
            "non-neg@layers.0.activation.params.0",
        ],
    );
    common::assert_success(&output);
    let tensors = common::tensors(&dir.join("model.safetensors"));
    let values = |path: &str| -> Vec<f32> {
        tensors[path]
            .1
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect()
    };
    let first = values("layers.0.activation.params.0");
    assert_eq!(first.len(), 32);
    assert!(first.iter().all(|&slope| slope >= 0.0), "{first:?}");
    let second = values("layers.1.activation.params.0");
    assert!(second.iter().all(|&slope| slope < 0.0), "{second:?}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// `--constraint NAME:ARG@LAYERS` bounds only its layers: each one its own
/// radius (the paper's c = 2 under inverted dropout is 1.6 on the first
/// layer and 1.0 on the rest), the layer none names left free.
#[test]
fn each_constraint_can_take_its_own_layers() {
    let (output, dir) = train_into(
        "layer-constraints",
        &[
            "--hidden",
            "32,16",
            "--epochs",
            "1",
            "--train-limit",
            "1000",
            "--constraint",
            "max-norm:0.5@layers.0",
            "--constraint",
            "max-norm:0.2@output",
        ],
    );
    common::assert_success(&output);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        config["fit"]["constraints"][1]["selector"]["layers"],
        serde_json::json!(["output"]),
        "{config}"
    );
    let tensors = common::tensors(&dir.join("model.safetensors"));
    let largest_unit_norm = |name: &str| {
        common::unit_norms(&tensors, name)
            .into_iter()
            .fold(0.0f32, f32::max)
    };
    assert!(largest_unit_norm("layers.0.linear.weight") <= 0.5 + 1e-4);
    assert!(largest_unit_norm("output.weight") <= 0.2 + 1e-4);
    let free = largest_unit_norm("layers.1.linear.weight");
    assert!(free > 0.5, "layers.1 is named by no constraint: {free}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A run folder is never shared or silently replaced: a second run into a
/// folder that holds a run is refused (and leaves the first run's files as
/// they were) unless `--overwrite`; a run started while another writes
/// there is refused naming the other's process.
#[test]
fn a_run_folder_is_never_shared_or_overwritten_silently() {
    let short = ["--hidden", "16", "--epochs", "1", "--train-limit", "500"];
    let (output, dir) = train_into("held", &short);
    common::assert_success(&output);
    let summary = std::fs::read(dir.join("summary.json")).unwrap();
    let out = dir.to_str().unwrap();
    let again = [&["train"][..], &short, &["--seed", "7", "--out", out]].concat();
    common::assert_refused(&recipe(&again), "already holds a run");
    assert_eq!(std::fs::read(dir.join("summary.json")).unwrap(), summary);

    common::assert_success(&recipe(&[&again[..], &["--overwrite"]].concat()));
    assert_ne!(std::fs::read(dir.join("summary.json")).unwrap(), summary);

    // A long run holds the folder; a second one is refused while it runs.
    let busy = fresh_dir("cli-busy");
    let mut first = common::recipe()
        .args(["train", "--hidden", "256,256", "--epochs", "50"])
        .args(["--out", busy.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !busy.join("config.json").exists() {
        assert!(first.try_wait().unwrap().is_none(), "the first run ended");
        assert!(started.elapsed().as_secs() < 120, "no config.json");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let second = recipe(&["train", "--overwrite", "--out", busy.to_str().unwrap()]);
    first.kill().unwrap();
    first.wait().unwrap();
    common::assert_refused(&second, &format!("process {}", first.id()));
    // The killed run's folder is free again: the OS dropped its lock.
    let busy_out = busy.to_str().unwrap();
    common::assert_success(&recipe(
        &[&["train"][..], &short, &["--overwrite", "--out", busy_out]].concat(),
    ));
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(busy).unwrap();
}

/// `recipe lr-find`: the range test writes its steps, its JSON and its
/// chart, and suggests a learning rate that SGD on MNIST can use (measured
/// 0.14 for 784-256-256-10 with the defaults; the bounds here are wide).
#[test]
fn lr_find_writes_the_curve_and_suggests_a_rate() {
    let dir = fresh_dir("cli-lr-find");
    let output = recipe(&[
        "lr-find",
        "--hidden",
        "64",
        "--train-limit",
        "5000",
        "--steps",
        "120",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stdout = common::assert_success(&output);
    let suggested: f64 = stdout
        .lines()
        .find(|l| l.ends_with("(suggested)"))
        .and_then(|l| l.split("learning rate ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no suggestion in: {stdout}"));
    assert!((1e-3..=2.0).contains(&suggested), "{suggested}");
    let csv = std::fs::read_to_string(dir.join("lr_find.csv")).unwrap();
    let steps = csv.lines().count() - 1;
    assert!((30..=120).contains(&steps), "{steps} steps");
    for file in ["lr_find.json", "lr_find.png", "lr_find.svg"] {
        assert!(dir.join(file).is_file(), "{file} missing");
    }
    assert_clean_failure(&recipe(&["lr-find", "--start-lr", "0"]), "`start_lr`");
    assert_clean_failure(&recipe(&["lr-find", "--steps", "1"]), "`steps`");
    std::fs::remove_dir_all(dir).unwrap();
}
