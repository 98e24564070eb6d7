//! Data and networks that are not MNIST MLPs through recipe's trainer:
//! features from memory, and the convolutional example (images that keep
//! their `[1, 28, 28]` shape) trained, killed with SIGKILL and resumed.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Tensor;
use recipe::data::FeatureSet;
use recipe::models::{ActivationConfig, MlpConfig};
use recipe::train::{
    Classify, DataConfig, NetworkConfig, OptimizerConfig, TrainConfig, TrainError, TrainOptions,
    train,
};

mod common;
use common::{
    assert_success, device, fresh_dir, history_without_seconds, kill_after_epochs, quiet, tensors,
    two_classes,
};

fn point_data() -> recipe::data::ClassData<recipe::data::FeatureItem, burn::tensor::Tensor<2>> {
    FeatureSet::class_data::<2>(
        "points",
        [
            two_classes(2_000, 1),
            two_classes(500, 2),
            two_classes(500, 3),
        ],
        2,
        vec!["below".into(), "above".into()],
        serde_json::Value::Null,
    )
    .unwrap()
}

fn point_config() -> TrainConfig {
    let mut config = TrainConfig::new(
        MlpConfig::new(2, vec![16], 2).with_activation(vec![ActivationConfig::relu()]),
    );
    config.data = DataConfig::provided();
    config.fit.optimizer = OptimizerConfig::adam();
    config.fit.learning_rate = 1e-2;
    config.fit.batch_size = 50;
    config.fit.epochs = 10;
    config
}

/// Features from memory train recipe's MLP; the summary names the data as
/// its provider describes it.
#[test]
fn features_from_memory_train_an_mlp() {
    let config = point_config();
    let device = device().autodiff();
    device.seed(config.fit.seed);
    let net = config.mlp().unwrap().init(&device).unwrap();
    let trained = train(&config, net, &point_data(), &device, &quiet()).unwrap();
    let summary = &trained.summary;
    // A line through the origin: a 16-unit ReLU net separates it almost
    // perfectly; chance is 0.5.
    assert!(summary.test_accuracy > 0.95, "{}", summary.test_accuracy);
    assert_eq!(summary.dataset, "points");
    assert_eq!(summary.data.input_shape, [2]);
    assert_eq!(summary.data.classes, 2);
    assert_eq!(summary.data.class_names, ["below", "above"]);
    assert_eq!(summary.data.split_sizes, [2_000, 500, 500]);
}

/// A linear classifier of the test's own: not recipe's MLP.
#[derive(Module, Debug)]
struct LinearProbe {
    linear: Linear,
}

impl Classify for LinearProbe {
    type Input = Tensor<2>;

    /// # Shapes
    /// - inputs: `[batch, 2]`
    /// - output: `[batch, 2]`
    fn logits(&self, inputs: Tensor<2>) -> Tensor<2> {
        self.linear.forward(inputs)
    }
}

/// `config.json` records the network and the data actually trained: a
/// network of one's own by its name, structure and parameter count, data
/// provided in code by its provider's description. A config that names
/// recipe's MLP for another network, or MNIST for other data, is refused
/// before anything is written.
#[test]
fn config_json_records_the_network_and_data_trained() {
    let device = device().autodiff();
    let probe = || LinearProbe {
        linear: LinearConfig::new(2, 2).init(&device),
    };
    let dir = fresh_dir("probe");
    let options = TrainOptions {
        out_dir: Some(dir.clone()),
        ..quiet()
    };
    let config =
        TrainConfig::for_network(NetworkConfig::custom("linear-probe"), point_config().fit);
    let trained = train(&config, probe(), &point_data(), &device, &options).unwrap();
    assert_eq!(trained.summary.model, "linear-probe");
    let recorded: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let network = &recorded["network"]["custom"];
    assert_eq!(network["name"], "linear-probe");
    assert_eq!(network["parameters"], 6, "{network}");
    assert!(
        network["structure"].as_str().unwrap().contains("Linear"),
        "{network}"
    );
    let data = &recorded["data"]["dataset"];
    assert_eq!(data["name"], "points");
    assert_eq!(data["input_shape"], serde_json::json!([2]));
    assert_eq!(data["class_names"], serde_json::json!(["below", "above"]));
    fs::remove_dir_all(&dir).unwrap();

    let not_an_mlp = train(&point_config(), probe(), &point_data(), &device, &options);
    let message = not_an_mlp.unwrap_err().to_string();
    assert!(message.contains("`network`"), "{message}");
    let mut says_mnist = point_config();
    says_mnist.data = DataConfig::new(recipe::data::DatasetKind::Mnist);
    let net = says_mnist.mlp().unwrap().init(&device).unwrap();
    let message = train(&says_mnist, net, &point_data(), &device, &options)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("`data.dataset`") && message.contains("(points)"),
        "{message}"
    );
    assert!(!dir.exists(), "nothing is written for a refused run");
}

/// A network whose output width is not the class count is refused, naming
/// both, before an epoch completes: wider, or narrower (whose targets the
/// cross-entropy could not even index).
#[test]
fn a_network_of_the_wrong_width_is_refused() {
    for width in [3, 1] {
        let mut config = point_config();
        config.mlp_mut().unwrap().d_output = width;
        let device = device().autodiff();
        let net = config.mlp().unwrap().init(&device).unwrap();
        let dir = fresh_dir(&format!("width-{width}"));
        let options = recipe::train::TrainOptions {
            out_dir: Some(dir.clone()),
            ..quiet()
        };
        let error = train(&config, net, &point_data(), &device, &options).unwrap_err();
        assert!(matches!(error, TrainError::InvalidConfig(_)), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains("network output")
                && message.contains("2 logits per example (the classes of points)")
                && message.contains(&format!("found {width}")),
            "{message}"
        );
        let history = fs::read_to_string(dir.join("history.csv")).unwrap();
        assert_eq!(history.lines().count(), 1, "no epoch recorded: {history}");
        fs::remove_dir_all(dir).unwrap();
    }
}

/// The `conv_mnist` example, which `cargo test` builds beside this test.
fn conv_example() -> Command {
    let deps = std::env::current_exe().unwrap();
    let path: PathBuf = deps
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples")
        .join(format!("conv_mnist{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: `cargo test` builds the examples",
        path.display()
    );
    let mut command = Command::new(path);
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

const CONV_RUN: &[&str] = &[
    "--epochs",
    "4",
    "--train-limit",
    "1500",
    "--valid-size",
    "500",
];

/// A convolutional network (inputs `[batch, 1, 28, 28]`) through the
/// trainer with early stopping and restore-best: killed with SIGKILL after
/// two epochs and resumed, it ends with the history, weights and summary
/// of the run left alone.
#[test]
fn a_conv_net_resumes_after_sigkill_as_if_never_killed() {
    let alone = fresh_dir("conv-alone");
    let output = conv_example()
        .args(CONV_RUN)
        .arg("--out")
        .arg(&alone)
        .output()
        .unwrap();
    let stdout = assert_success(&output);
    assert!(stdout.contains("test accuracy"), "{stdout}");

    let killed = fresh_dir("conv-killed");
    let done = kill_after_epochs(
        conv_example().args(CONV_RUN).arg("--out").arg(&killed),
        &killed,
        2,
    );
    assert!(done < 4, "the kill came too late ({done} epochs done)");
    assert_success(
        &conv_example()
            .arg("--resume")
            .arg(&killed)
            .output()
            .unwrap(),
    );
    assert_eq!(
        history_without_seconds(&alone),
        history_without_seconds(&killed)
    );
    assert!(
        tensors(&alone.join("model.safetensors")) == tensors(&killed.join("model.safetensors")),
        "the resumed conv net's weights differ"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(killed.join("summary.json")).unwrap()).unwrap();
    assert_eq!(
        summary["data"]["input_shape"],
        serde_json::json!([1, 28, 28])
    );
    assert_eq!(summary["data"]["classes"], 10);
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(killed.join("config.json")).unwrap()).unwrap();
    let network = &config["network"]["custom"];
    assert_eq!(
        network["config"],
        serde_json::json!({"channels": [16, 32], "hidden": 128, "dropout": 0.3})
    );
    assert_eq!(network["parameters"], summary["parameters"]);
    assert!(network["structure"].as_str().unwrap().contains("Conv2d"));
    assert_eq!(config["data"]["dataset"], "mnist");
    assert_eq!(config["data"]["split"]["train_limit"], 1500);
    // Chance is 0.1; 1,500 images and four epochs give well above 0.8.
    assert!(
        summary["test_accuracy"].as_f64().unwrap() > 0.8,
        "{summary}"
    );
    fs::remove_dir_all(alone).unwrap();
    fs::remove_dir_all(killed).unwrap();
}

/// `recipe train --data-csv FILE --label COLUMN`: recipe's MLP on the
/// repository's small table (`data/csv/make_blobs.py`), with the usual
/// artifacts; `config.json` names the table, and the summary its classes
/// and the loss (label smoothing in training).
#[test]
fn the_cli_trains_an_mlp_on_a_csv_table() {
    let dir = fresh_dir("csv-cli");
    let output = common::recipe()
        .args([
            "train",
            "--data-csv",
            "data/csv/blobs.csv",
            "--label",
            "species",
            "--hidden",
            "32",
            "--optimizer",
            "adam",
            "--lr",
            "0.01",
            "--epochs",
            "20",
            "--label-smoothing",
            "0.1",
            "--out",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_success(&output);
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    let summary = read("summary.json");
    // Three Gaussian blobs three standard deviations apart: chance is 1/3.
    assert!(
        summary["test_accuracy"].as_f64().unwrap() > 0.9,
        "{summary}"
    );
    assert_eq!(
        summary["data"]["class_names"],
        serde_json::json!(["east", "north", "west"])
    );
    assert_eq!(
        summary["data"]["split_sizes"],
        serde_json::json!([154, 38, 48])
    );
    assert_eq!(summary["model"], "4-32-3 relu");
    assert_eq!(
        summary["loss"],
        "cross-entropy (training: cross-entropy with label smoothing 0.1)"
    );
    let config = read("config.json");
    assert_eq!(config["data"]["dataset"]["label"], "species");
    assert_eq!(config["network"]["mlp"]["d_input"], 4);
    assert!((config["fit"]["label_smoothing"].as_f64().unwrap() - 0.1).abs() < 1e-6);
    assert!(dir.join("model.safetensors").is_file());
    let history = fs::read_to_string(dir.join("history.csv")).unwrap();
    let first_epoch = history.lines().nth(1).unwrap();
    assert!(
        first_epoch.ends_with(",cross-entropy (training: cross-entropy with label smoothing 0.1)"),
        "history.csv names the loss on every line: {history}"
    );
    fs::remove_dir_all(dir).unwrap();

    let refused = common::recipe()
        .args([
            "train",
            "--data-csv",
            "data/csv/blobs.csv",
            "--label",
            "kind",
        ])
        .output()
        .unwrap();
    common::assert_refused(&refused, "a label column named `kind`");
}
