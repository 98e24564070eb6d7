//! recipe extended from outside, through the library crates' public API:
//! (a) an activation of this crate inside recipe's `Mlp` with dropout,
//! trained on MNIST; (b) a penalty, a constraint, a learning-rate schedule
//! and an optimizer of this crate, recorded in `config.json`, surviving
//! SIGKILL and a resume; (c) Burn's own
//! `SupervisedTraining` with recipe's early stopping and restore-best, a
//! penalty, max-norm and atomic checkpoints.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use burn::data::dataloader::DataLoaderBuilder;
use burn::module::Module;
use burn::tensor::Device;
use burn::train::metric::TopKAccuracyMetric;
use burn::train::metric::store::Split;
use burn::train::{Learner, SupervisedTraining};
use recipe_data::{
    DatasetKind, ImageBatcher, ImageDataset, Normalization, SplitConfig, load_splits,
};
use recipe_models::{ActivationConfig, MlpConfig, ModelError};
use recipe_research::{Confidence, Orthogonality, register, research_config};
use recipe_train::{
    Classifier, DeferredAccuracyMetric, DeferredLossMetric, DeferredMetric, EarlyStoppingConfig,
    EpochCsvLogger, History, HistoryLogger, LrScale, LrSchedule, MaxNormConfig,
    MetricEarlyStopping, OptimizerConfig, ParamSelector, PenaltyMetric, QuietRenderer,
    RetainCheckpoints, StepHooks, StopOnAny, StopOnDivergence, TrainConfig, WeightPenalty,
    atomic_checkpointers, checkpoint_file, column_norms, read_run_config, resume_mlp,
    scaled_lr_scheduler, train_mlp,
};

mod common;
use common::{fresh_dir, quiet};

#[test]
fn own_activation_and_block_train_inside_recipes_mlp() {
    register();
    let model = MlpConfig::new(784, vec![64, 64], 10)
        .with_activation(vec![
            "learned-swish:1.5".parse().unwrap(),
            "residual-relu".parse().unwrap(),
        ])
        .with_dropout(0.2)
        .with_input_dropout(0.1);
    assert_eq!(
        model.describe(),
        "784-64x2-10 learned-swish:1.5,residual-relu"
    );
    let mut config = TrainConfig::new(model);
    config.fit.optimizer = OptimizerConfig::adam();
    config.fit.learning_rate = 1e-3;
    config.data.split = SplitConfig {
        valid_size: 500,
        train_limit: Some(2_000),
    };
    config.fit.epochs = 3;
    let json = serde_json::to_string(&config).unwrap();
    assert!(
        json.contains(r#""activation":["learned-swish:1.5","residual-relu"]"#),
        "{json}"
    );
    let back: TrainConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(
        back.mlp().unwrap().activation,
        config.mlp().unwrap().activation
    );

    let trained = train_mlp(&config, &Device::flex(), &quiet()).unwrap();
    assert!(trained.summary.test_accuracy > 0.8, "{:?}", trained.summary);
    // The learnable betas trained: they left their initial 1.5.
    let betas: Vec<f32> = trained.net.layers[0].activation.params[0]
        .val()
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_eq!(betas.len(), 64);
    assert!(betas.iter().any(|&b| (b - 1.5).abs() > 1e-3), "{betas:?}");
}

#[test]
fn a_residual_block_refuses_a_width_change() {
    register();
    let err = MlpConfig::new(784, vec![64, 32], 10)
        .with_activation(vec![
            "relu".parse().unwrap(),
            "residual-relu".parse().unwrap(),
        ])
        .init(&Device::flex())
        .unwrap_err();
    assert!(err.to_string().contains("activation[1].width"), "{err}");
    let unknown = "residual-tanh".parse::<ActivationConfig>().unwrap_err();
    assert!(matches!(unknown, ModelError::UnknownActivation { .. }));
    assert!(
        unknown.to_string().contains("learned-swish[:beta]"),
        "{unknown}"
    );
}

/// A numeric column of `dir/history.csv`.
fn column(dir: &Path, name: &str) -> Vec<f64> {
    let csv = fs::read_to_string(dir.join("history.csv")).unwrap();
    let mut lines = csv.lines();
    let index = lines
        .next()
        .and_then(|header| header.split(',').position(|column| column == name))
        .unwrap_or_else(|| panic!("no {name} column"));
    lines
        .map(|line| line.split(',').nth(index).unwrap().parse().unwrap())
        .collect()
}

fn research_train() -> Command {
    Command::new(env!("CARGO_BIN_EXE_research-train"))
}

fn epochs_in_history(dir: &Path) -> usize {
    fs::read_to_string(dir.join("history.csv")).map_or(0, |text| text.lines().count() - 1)
}

/// `dir/history.csv` without its `seconds` column (wall-clock time).
fn history_without_seconds(dir: &Path) -> Vec<String> {
    let csv = fs::read_to_string(dir.join("history.csv")).unwrap();
    let seconds = csv
        .lines()
        .next()
        .and_then(|header| header.split(',').position(|column| column == "seconds"))
        .expect("a seconds column");
    csv.lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split(',').collect();
            fields.remove(seconds);
            fields.join(",")
        })
        .collect()
}

/// Each tensor's shape and raw bytes in a safetensors file.
fn tensors(path: &Path) -> BTreeMap<String, (String, Vec<u8>)> {
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
            let range =
                offsets[0].as_u64().unwrap() as usize..offsets[1].as_u64().unwrap() as usize;
            (name, (entry["shape"].to_string(), data[range].to_vec()))
        })
        .collect()
}

fn succeed(command: &mut Command) {
    let output = command.output().expect("research-train runs");
    assert!(
        output.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn own_penalty_constraint_schedule_and_optimizer_survive_sigkill_and_resume() {
    let alone = fresh_dir("alone");
    succeed(research_train().arg("--out").arg(&alone));
    let config = fs::read_to_string(alone.join("config.json")).unwrap();
    for name in [
        "\"orthogonality\"",
        "\"clip-value\"",
        "\"warm-restarts\"",
        "\"signum\"",
        "learned-swish:1",
        "residual-relu",
    ] {
        assert!(config.contains(name), "config.json names {name}: {config}");
    }
    // The schedule ran: the rate of each epoch's first step falls within a
    // cycle and is back at the peak at the restarts (epochs 3 and 7).
    let rates = column(&alone, "learning_rate");
    assert_eq!(rates.len(), 10);
    for epoch in [1, 3, 7] {
        assert!((rates[epoch - 1] - 1e-3).abs() < 1e-12, "{rates:?}");
    }
    assert!(rates[1] < rates[0] && rates[5] < rates[4] && rates[4] < rates[3]);
    // The program's own metric was recorded every epoch, on both splits.
    for column_name in ["train_confidence", "valid_confidence"] {
        let values = column(&alone, column_name);
        assert_eq!(values.len(), 10, "{column_name}");
        assert!(
            values.iter().all(|v| (10.0..=100.0).contains(v)),
            "{values:?}"
        );
    }

    let killed = fresh_dir("killed");
    let mut child = research_train()
        .arg("--out")
        .arg(&killed)
        .stdout(Stdio::null())
        .spawn()
        .expect("research-train runs");
    let started = Instant::now();
    while epochs_in_history(&killed) < 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it was killed"
        );
        assert!(started.elapsed() < Duration::from_secs(600), "no progress");
        sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!killed.join("summary.json").exists());
    succeed(research_train().arg("--resume").arg(&killed));

    assert_eq!(
        history_without_seconds(&killed),
        history_without_seconds(&alone)
    );
    assert_eq!(
        tensors(&killed.join("model.safetensors")),
        tensors(&alone.join("model.safetensors")),
        "the resumed run ends with the same weights"
    );
    // The constraint held on every weight of the final model.
    for (name, (_, bytes)) in tensors(&alone.join("model.safetensors")) {
        if name.ends_with("weight") {
            let largest = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()).abs())
                .fold(0.0, f32::max);
            assert!(largest <= 0.5, "{name}: {largest}");
        }
    }
    fs::remove_dir_all(&alone).unwrap();
    fs::remove_dir_all(&killed).unwrap();
}

/// A run whose config names a penalty, a schedule or an optimizer that the
/// resuming program has not registered is refused, naming it, instead of
/// resuming without it.
#[test]
fn an_unregistered_penalty_schedule_or_optimizer_is_an_error_at_resume() {
    register();
    for (name, renamed, kind) in [
        ("orthogonality", "orthogonality-v2", "penalty"),
        (
            "warm-restarts",
            "warm-restarts-v2",
            "learning-rate schedule",
        ),
        ("signum", "signum-v2", "optimizer"),
    ] {
        let dir = fresh_dir(&format!("unregistered-{name}"));
        fs::create_dir_all(&dir).unwrap();
        let mut config = research_config().unwrap();
        config.fit.epochs = 1;
        let json = serde_json::to_string(&config)
            .unwrap()
            .replace(&format!("\"{name}\""), &format!("\"{renamed}\""));
        fs::write(dir.join("config.json"), json).unwrap();
        let err = read_run_config(&dir).unwrap_err().to_string();
        assert!(
            err.contains("config.json")
                && err.contains(&format!("{kind} `{renamed}` is not registered")),
            "{err}"
        );
        let err = resume_mlp(&dir, &Device::flex(), &quiet())
            .unwrap_err()
            .to_string();
        assert!(err.contains(renamed), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }
}

/// Burn's own `SupervisedTraining`, built here, with recipe's pieces:
/// early stopping on Burn's `Loss` metric with restore-best beside the
/// divergence guard, this crate's penalty, max-norm, atomic checkpoints,
/// recipe's history as a metric logger and the all-metrics CSV logger, and
/// recipe's per-layer rates as the Learner's scheduler.
#[test]
fn burns_supervised_training_with_recipes_hooks() {
    register();
    let dir = fresh_dir("burn-learner");
    let device = Device::flex().autodiff();
    device.seed(3);
    let splits = load_splits(
        DatasetKind::Mnist,
        None,
        &SplitConfig {
            valid_size: 500,
            train_limit: Some(1_000),
        },
    )
    .unwrap();
    let batcher = ImageBatcher::new(Normalization::Unit);
    let train = DataLoaderBuilder::new(batcher.clone())
        .batch_size(100)
        .shuffle(3)
        .build(ImageDataset::new(Arc::new(splits.train.clone())));
    let valid = DataLoaderBuilder::new(batcher)
        .batch_size(500)
        .build(ImageDataset::new(Arc::new(splits.valid.clone())));

    // min_delta 10: no epoch after the first improves, so the run stops
    // after epoch 1 + patience and the best epoch is 1.
    let stopping = MetricEarlyStopping::new(
        EarlyStoppingConfig {
            patience: 2,
            min_delta: 10.0,
            restore_best_weights: true,
            ..EarlyStoppingConfig::default()
        },
        "Loss",
        Split::Valid,
    )
    .unwrap();
    let (model_ckpt, optim_ckpt, scheduler_ckpt) = atomic_checkpointers(&dir);
    let max_norm = MaxNormConfig::new(0.8).unwrap();
    let hooks = StepHooks::new(
        vec![WeightPenalty::new(
            Orthogonality { lambda: 1e-4 },
            ParamSelector::default(),
        )],
        vec![max_norm.constraint()],
    );
    let net = MlpConfig::new(784, vec![64], 10)
        .with_activation(vec!["learned-swish".parse().unwrap()])
        .init(&device)
        .unwrap();
    let history_logger = HistoryLogger::new(History::default(), 1e-3)
        .write_csv(dir.join("history.csv"))
        .unwrap();
    let history = history_logger.handle();
    let training = SupervisedTraining::new(&dir, train, valid)
        // Burn's loss and accuracy (same names, same epoch values) reading
        // the device every 7 steps, a cadence that divides no epoch.
        .metrics((
            DeferredAccuracyMetric::new().read_every(7),
            DeferredLossMetric::new().read_every(7),
        ))
        .metric_train_numeric(PenaltyMetric::new().read_every(7))
        // Burn's own classification metrics take recipe's training output.
        .metric_train_numeric(TopKAccuracyMetric::new(2))
        .metric_valid_numeric(DeferredMetric::from_reading(Confidence).read_every(3))
        .renderer(Box::new(QuietRenderer::new(false)))
        .with_application_logger(None)
        .with_metric_logger(history_logger)
        .with_metric_logger(EpochCsvLogger::new(dir.join("epochs.csv")))
        .with_custom_checkpointers(model_ckpt, optim_ckpt, scheduler_ckpt)
        .with_checkpointing_strategy(RetainCheckpoints::new(
            Vec::new(),
            Some(stopping.best_epoch_handle()),
            0,
        ))
        .early_stopping(
            StopOnAny::new()
                .with(StopOnDivergence::new())
                .with(stopping.clone()),
        )
        .num_epochs(10);
    let optimizer = OptimizerConfig::adam().init();
    // recipe's per-layer rates as Burn's scheduler: the output layer frozen.
    let classifier = Classifier::with_hooks(net, hooks);
    let output_bias =
        |m: &Classifier<recipe_models::Mlp>| m.net.output.bias.as_ref().unwrap().val().into_data();
    let first_bias = |m: &Classifier<recipe_models::Mlp>| {
        m.net.layers[0]
            .linear
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
    };
    let (initial_output_bias, initial_first_bias) =
        (output_bias(&classifier), first_bias(&classifier));
    let frozen_output: [LrScale; 1] = ["0@output".parse().unwrap()];
    let scheduler = scaled_lr_scheduler(1e-3, &frozen_output, &classifier).unwrap();
    let result = training.launch(Learner::new(classifier, optimizer, scheduler));
    assert!(result.error.is_none(), "{:?}", result.error);

    assert_eq!(stopping.best_epoch(), Some(1));
    let reason = stopping
        .stop_reason()
        .expect("early stopping ended the run");
    assert!(reason.contains("Loss"), "{reason}");
    // recipe's per-epoch record, from Burn's metric logger: three epochs
    // (the first, then patience 2) with finite means.
    let csv = fs::read_to_string(dir.join("epochs.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    for column in [
        "epoch",
        "train_Loss",
        "valid_Loss",
        "train_Accuracy",
        "valid_Accuracy",
        "train_Top-K Accuracy @ TopK(2)",
    ] {
        assert!(header.contains(&column), "{header:?}");
    }
    let valid_loss = header.iter().position(|&c| c == "valid_Loss").unwrap();
    let losses: Vec<f64> = lines
        .map(|line| line.split(',').nth(valid_loss).unwrap().parse().unwrap())
        .collect();
    assert_eq!(losses.len(), 3, "{csv}");
    let penalty = header.iter().position(|&c| c == "train_Penalty").unwrap();
    let penalties: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|line| line.split(',').nth(penalty).unwrap().parse().unwrap())
        .collect();
    assert!(
        penalties.iter().all(|&p| p > 0.0),
        "the penalty reached Burn's metrics: {csv}"
    );
    assert!(losses.iter().all(|&l| l.is_finite() && l > 0.0), "{csv}");
    // A metric of this crate's own reached Burn's store: a confidence of
    // ten classes lies between 10% and 100%.
    let confidence = header
        .iter()
        .position(|&c| c == "valid_Confidence")
        .unwrap();
    for line in csv.lines().skip(1) {
        let value: f64 = line.split(',').nth(confidence).unwrap().parse().unwrap();
        assert!((10.0..=100.0).contains(&value), "{csv}");
    }
    // recipe's own history, from its metric logger: the same three epochs.
    let recorded = history.history();
    let epochs: Vec<usize> = recorded.epochs.iter().map(|r| r.epoch).collect();
    assert_eq!(epochs, [1, 2, 3]);
    for (record, loss) in recorded.epochs.iter().zip(&losses) {
        assert_eq!(record.valid_loss, *loss, "both loggers agree");
        assert!(record.train_penalty > 0.0 && (0.0..=1.0).contains(&record.valid_accuracy));
    }
    let on_disk = History::from_csv(&fs::read_to_string(dir.join("history.csv")).unwrap());
    assert_eq!(on_disk.unwrap().epochs.len(), 3);
    let best_file = checkpoint_file(&dir, "model", 1);
    assert!(best_file.is_file(), "the best epoch's checkpoint is kept");
    assert!(
        !checkpoint_file(&dir, "model", 2).is_file() || checkpoint_file(&dir, "model", 3).is_file()
    );

    let last = result.model;
    let restored = stopping.restore_best(last.clone(), &dir).unwrap();
    let reloaded = last.clone().try_load_file(&best_file).unwrap();
    let weight =
        |m: &Classifier<recipe_models::Mlp>| m.net.layers[0].linear.weight.val().into_data();
    assert_eq!(weight(&restored), weight(&reloaded));
    assert_ne!(
        weight(&restored),
        weight(&last),
        "restore-best changed the weights"
    );
    // The frozen layer's bias (neither penalized nor constrained) never
    // moved; the first layer's did.
    assert_eq!(output_bias(&last), initial_output_bias);
    assert_ne!(first_bias(&last), initial_first_bias);
    let largest = column_norms(restored.net.layers[0].linear.weight.val())
        .max()
        .into_scalar::<f32>();
    assert!(largest <= 0.8 + 1e-5, "max-norm held: {largest}");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn own_penalty_constraint_schedule_and_optimizer_round_trip_through_config_json() {
    register();
    let config = research_config().unwrap();
    let json = serde_json::to_string_pretty(&config).unwrap();
    let back: TrainConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back.fit.penalties, config.fit.penalties);
    assert_eq!(back.fit.constraints, config.fit.constraints);
    assert_eq!(back.fit.lr_schedule, config.fit.lr_schedule);
    assert_eq!(back.fit.optimizer, config.fit.optimizer);
    // The optimizer's text form, as `--optimizer` or a TOML config gives it.
    let optimizer = config.fit.optimizer.to_string();
    assert_eq!(optimizer, r#"signum:{"beta":0.9}"#);
    assert_eq!(
        optimizer.parse::<OptimizerConfig>().unwrap(),
        config.fit.optimizer
    );
    let mut unsteady = config.clone();
    unsteady.fit.optimizer = r#"signum:{"beta":1.0}"#.parse().unwrap();
    let err = unsteady.validate().unwrap_err().to_string();
    assert!(err.contains("optimizer") && err.contains("beta"), "{err}");
    // Its text form, as `--lr-schedule` or a TOML config would give it.
    let text = config.fit.lr_schedule.to_string();
    assert_eq!(
        text,
        r#"warm-restarts:{"min_lr":0.00001,"mult":2.0,"period":2.0}"#
    );
    assert_eq!(text.parse::<LrSchedule>().unwrap(), config.fit.lr_schedule);
    // A schedule that does not fit the run is refused, naming it and why.
    let mut too_low = config.clone();
    too_low.fit.learning_rate = 1e-6;
    let err = too_low.validate().unwrap_err().to_string();
    assert!(
        err.contains("lr_schedule") && err.contains("warm-restarts") && err.contains("min_lr"),
        "{err}"
    );
    let penalty = &back.fit.penalties[0];
    assert_eq!(penalty.penalty.name(), "orthogonality");
    assert_eq!(
        penalty.penalty.settings(),
        serde_json::json!({"lambda": 1e-4})
    );
    assert_eq!(
        back.fit.constraints[0].constraint.settings(),
        serde_json::json!({"limit": 0.5})
    );
    let bad = WeightPenalty::new(
        Orthogonality { lambda: 1e-4 },
        ParamSelector::weights(vec!["layer.7".into()]),
    );
    let net = back.mlp().unwrap().init(&Device::flex()).unwrap();
    let err = bad.check(&net, "penalties[0]").unwrap_err().to_string();
    assert!(
        err.contains("penalties[0].selector") && err.contains("layers.0.linear.weight"),
        "{err}"
    );
}
