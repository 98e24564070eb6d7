//! The `recipe` binary: help, and clear errors with exit status 2 on bad input.

use std::process::{Command, Output};

fn recipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recipe"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the recipe binary runs")
}

fn assert_clean_failure(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "stderr should mention {needle:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
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
    ] {
        assert!(help.contains(option), "train --help lacks {option}");
    }
    assert!(help.contains("maxout[:pieces]"));
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
        &recipe(&["train", "--device", "tpu"]),
        "unknown device `tpu`",
    );
}

#[test]
fn missing_data_and_bad_config_files_are_named() {
    assert_clean_failure(
        &recipe(&["train", "--data-dir", "/nonexistent/mnist", "--epochs", "1"]),
        "/nonexistent/mnist",
    );
    let dir = std::env::temp_dir().join(format!("recipe-cli-it-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
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
    let dir = std::env::temp_dir().join(format!("recipe-cli-train-{}", std::process::id()));
    let output = recipe(&[
        "train",
        "--hidden",
        "32",
        "--epochs",
        "1",
        "--train-limit",
        "2000",
        "--out",
        dir.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
