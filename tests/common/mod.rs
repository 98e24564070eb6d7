//! What the integration tests share: the device they train on, quiet
//! training options, fresh temporary folders, and the `recipe` binary.
//!
//! The device is the one `RECIPE_DEVICE` names (the CPU where it is unset),
//! and the `recipe` processes the tests start inherit the variable, so
//! `RECIPE_DEVICE=wgpu cargo test --release --features wgpu` runs the same
//! tests on the GPU code path.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use recipe::backend::device_from_env;
use recipe::data::{ClassData, FeatureItem, FeatureSet};
use recipe::models::{ActivationConfig, Mlp, MlpConfig};
use recipe::train::{DataConfig, OptimizerConfig, TrainConfig, TrainOptions, TrainedModel, train};

/// The device named by `RECIPE_DEVICE`, or the CPU.
pub fn device() -> Device {
    device_from_env().expect("RECIPE_DEVICE names a device compiled into this build")
}

/// Training options that print nothing.
pub fn quiet() -> TrainOptions {
    TrainOptions {
        print_epochs: false,
        show_progress: false,
        ..TrainOptions::default()
    }
}

/// A temporary folder for `name` that does not exist yet (one per process,
/// so that test binaries running side by side never share one).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("recipe-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The `recipe` binary of this build, run from the repository root (where
/// `data/mnist` is).
pub fn recipe() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_recipe"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

/// Exit status 0; returns stdout. On failure shows stdout and stderr.
pub fn assert_success(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Exit status 2 and `needle` in stderr, without a panic, and an error
/// message that says each of its parts once.
pub fn assert_refused(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains(needle),
        "stderr should mention {needle:?}: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_no_part_repeated(&stderr);
}

/// The `error:` line of a refusal is a chain of causes joined by ": "; an
/// error whose message already holds its cause's text, and that also gives
/// that cause as its `source`, shows up as the same part twice in a row.
fn assert_no_part_repeated(stderr: &str) {
    for line in stderr.lines().filter(|line| line.starts_with("error: ")) {
        let parts: Vec<&str> = line.split(": ").collect();
        assert!(
            parts.windows(2).all(|pair| pair[0] != pair[1]),
            "the error says a part twice: {line}"
        );
    }
}

/// Each tensor's name, shape and raw bytes in a safetensors file (its JSON
/// header's key order varies from run to run, so the files differ as bytes).
pub fn tensors(path: &Path) -> BTreeMap<String, (String, Vec<u8>)> {
    let bytes = fs::read(path).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let data = &bytes[8 + header_len..];
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, entry)| {
            let offsets = &entry["data_offsets"];
            let (start, end) = (
                offsets[0].as_u64().unwrap() as usize,
                offsets[1].as_u64().unwrap() as usize,
            );
            (
                name,
                (entry["shape"].to_string(), data[start..end].to_vec()),
            )
        })
        .collect()
}

/// Epochs recorded in `dir/history.csv` (0 before the file exists).
pub fn epochs_in_history(dir: &Path) -> usize {
    fs::read_to_string(dir.join("history.csv")).map_or(0, |text| text.lines().count() - 1)
}

/// `dir/history.csv` without its `seconds` column (wall-clock time).
pub fn history_without_seconds(dir: &Path) -> Vec<String> {
    csv_without_seconds(&fs::read_to_string(dir.join("history.csv")).unwrap())
}

/// The lines of a `history.csv` text without its `seconds` column.
pub fn csv_without_seconds(csv: &str) -> Vec<String> {
    let header = csv.lines().next().unwrap_or_default();
    let seconds = header
        .split(',')
        .position(|column| column == "seconds")
        .unwrap_or_else(|| panic!("no seconds column in `{header}`"));
    csv.lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split(',').collect();
            fields.remove(seconds);
            fields.join(",")
        })
        .collect()
}

/// Whether the tests run on a CPU backend (`RECIPE_DEVICE` unset, `cpu`,
/// `flex` or `ndarray`), where a resumed run repeats the unbroken one bit
/// for bit.
pub fn on_cpu() -> bool {
    matches!(
        std::env::var("RECIPE_DEVICE").as_deref(),
        Err(_) | Ok("cpu" | "flex" | "ndarray")
    )
}

/// The epoch a resumed run's stdout says it resumed after
/// ("resuming after epoch N/M ...").
pub fn resumed_after(stdout: &str) -> usize {
    let rest = stdout
        .split("resuming after epoch ")
        .nth(1)
        .unwrap_or_else(|| panic!("no resume line in: {stdout}"));
    rest.split('/').next().unwrap().parse().unwrap()
}

/// `resumed` (killed, then resumed after epoch `resumed_after`) has the
/// history of `alone`, the same run left alone.
///
/// On the CPU: every line but the seconds, bit for bit. On a GPU backend
/// the resumed process rounds differently (measured on wgpu over lavapipe:
/// SGD without dropout agreed to 1e-9 relative, Adam with dropout drifted by
/// up to 2.5% in one epoch's training loss, since Adam's normalized step
/// magnifies rounding in small gradients): the epochs before the resume
/// bit for bit, the later ones within 5% training loss and 0.02 validation
/// accuracy, and the same number of epochs.
pub fn assert_resumed_history(alone: &Path, resumed: &Path, resumed_after: usize) {
    let (expected, found) = (
        history_without_seconds(alone),
        history_without_seconds(resumed),
    );
    if on_cpu() {
        assert_eq!(expected, found);
        return;
    }
    assert_eq!(expected.len(), found.len(), "{expected:?}\n{found:?}");
    assert_eq!(expected[..=resumed_after], found[..=resumed_after]);
    let history = |dir: &Path| {
        recipe::train::History::from_csv(&fs::read_to_string(dir.join("history.csv")).unwrap())
            .unwrap()
            .epochs
    };
    for (a, b) in history(alone)
        .iter()
        .zip(history(resumed))
        .skip(resumed_after)
    {
        let loss_gap = (a.train_loss - b.train_loss).abs() / a.train_loss;
        let accuracy_gap = (a.valid_accuracy - b.valid_accuracy).abs();
        assert!(
            loss_gap <= 0.05 && accuracy_gap <= 0.02,
            "epoch {}: {a:?} left alone, {b:?} resumed",
            a.epoch
        );
    }
}

/// Starts `run` (a training command writing into `dir`) and kills it with
/// SIGKILL once `history.csv` holds `epochs` epochs; returns the epochs it
/// had done.
pub fn kill_after_epochs(run: &mut Command, dir: &Path, epochs: usize) -> usize {
    let mut child = run
        .stdout(Stdio::null())
        .spawn()
        .expect("the training binary runs");
    let started = Instant::now();
    while epochs_in_history(dir) < epochs {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be killed"
        );
        assert!(started.elapsed() < Duration::from_secs(600), "no progress");
        sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        !dir.join("summary.json").exists(),
        "the run finished before the kill"
    );
    epochs_in_history(dir)
}

/// `count` points of two classes in the plane, on either side of the line
/// x = y, from a fixed linear congruential sequence starting at `start` (no
/// RNG crate needed).
pub fn two_classes(count: usize, start: u64) -> FeatureSet {
    let mut state = start;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f32 / (1u64 << 31) as f32 * 2.0 - 1.0
    };
    let mut values = Vec::with_capacity(count * 2);
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        let (x, y) = (next(), next());
        values.extend([x, y]);
        labels.push(usize::from(x > y));
    }
    FeatureSet::new(values, &[2], labels).unwrap()
}

/// Every weight of `mlp`'s hidden layers, then of its output layer if
/// `with_output`, in order.
pub fn mlp_weights(mlp: &Mlp, with_output: bool) -> Vec<f32> {
    let hidden = mlp.layers.iter().map(|layer| &layer.linear.weight);
    let output = with_output.then_some(&mlp.output.weight);
    hidden
        .chain(output)
        .flat_map(|weight| weight.val().into_data().try_to_vec::<f32>().unwrap())
        .collect()
}

/// 100 training points (one batch of 100, or two devices' batches of 50),
/// 40 validation and 40 test points, for the data-parallel tests.
pub fn points() -> ClassData<FeatureItem, Tensor<2>> {
    FeatureSet::class_data::<2>(
        "points",
        [two_classes(100, 1), two_classes(40, 2), two_classes(40, 3)],
        2,
        Vec::new(),
        serde_json::Value::Null,
    )
    .unwrap()
}

/// One epoch of plain SGD (learning rate 0.5) of a 2-16-2 ReLU MLP on
/// [`points`], with batches of `batch_size` on each of `devices` devices.
pub fn points_config(batch_size: usize, devices: usize) -> TrainConfig {
    let mut config = TrainConfig::new(
        MlpConfig::new(2, vec![16], 2).with_activation(vec![ActivationConfig::relu()]),
    );
    config.data = DataConfig::provided();
    config.fit.optimizer = OptimizerConfig::sgd(0.0);
    config.fit.learning_rate = 0.5;
    config.fit.batch_size = batch_size;
    config.fit.epochs = 1;
    config.fit.devices = devices;
    config
}

/// Two runs on [`points`] from the same weights (`whole`'s MLP, drawn once
/// after seeding 7): `whole` on one device, `split` on `devices` copies of
/// it. Returns the weights before, and the two runs.
pub fn trained_both_ways(
    whole: &TrainConfig,
    split: &TrainConfig,
    devices: usize,
) -> (Mlp, TrainedModel<Mlp>, TrainedModel<Mlp>) {
    let device = device().autodiff();
    device.seed(7);
    let net = whole.mlp().unwrap().init(&device).unwrap();
    // Burn draws weights at the first forward pass: draw them once, here.
    let _ = net.forward(Tensor::zeros([1, 2], &device));
    let data = points();
    let one = train(whole, net.clone(), &data, &device, &quiet()).unwrap();
    let options = TrainOptions {
        devices: if devices > 1 {
            vec![device.clone(); devices]
        } else {
            Vec::new()
        },
        ..quiet()
    };
    let two = train(split, net.clone(), &data, &device, &options).unwrap();
    (net.valid(), one, two)
}

/// `one` and `two` are `before` after the same step taken two ways (one
/// device with the whole batch, several with its parts): the step moved
/// the weights, and both ways agree to 1e-5 (the order of the float sums).
pub fn assert_same_step(before: &Mlp, one: &Mlp, two: &Mlp) {
    let (before, one, two) = (
        mlp_weights(before, true),
        mlp_weights(one, true),
        mlp_weights(two, true),
    );
    let moved = before
        .iter()
        .zip(&one)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(moved > 1e-3, "the step changed the weights: {moved}");
    for (a, b) in one.iter().zip(&two) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

/// The L2 norm of each unit's incoming weights (each column) of the linear
/// weight `name` (`[d_input, d_output]`, f32) in `tensors`.
pub fn unit_norms(tensors: &BTreeMap<String, (String, Vec<u8>)>, name: &str) -> Vec<f32> {
    let (shape, bytes) = &tensors[name];
    let dims: Vec<usize> = shape
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .map(|d| d.parse().unwrap())
        .collect();
    let w: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (0..dims[1])
        .map(|unit| {
            (0..dims[0])
                .map(|i| w[i * dims[1] + unit].powi(2))
                .sum::<f32>()
                .sqrt()
        })
        .collect()
}
