//! What a run of recipe's own trainer watches, beyond loss and accuracy.
//!
//! Metrics no part of recipe names: Burn's top-k accuracy and this crate's
//! [`Confidence`] (with an input type and adaptor of its own, read the
//! deferred way), recorded per epoch in the history and `history.csv`,
//! watched by early stopping, the plateau rule and the kept checkpoints,
//! each taking its direction from the metric, and measured on every split
//! in the final evaluation. Then callbacks: a stopping rule recipe does not
//! have (Prechelt's generalization loss) and a closure that sees every
//! epoch.

use std::fs;
use std::sync::{Arc, Mutex};

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use burn::train::metric::TopKAccuracyMetric;
use burn::train::metric::store::Split;
use recipe_data::{ClassData, FeatureItem, FeatureSet};
use recipe_research::Confidence;
use recipe_train::{
    ClassMetric, Decision, DeferredMetric, EarlyStoppingConfig, EpochCallback, EpochRecord,
    FitConfig, History, KeepCheckpoints, Metric, Mode, NetworkConfig, OptimizerConfig,
    PlateauState, ReduceLrOnPlateau, TrainConfig, TrainOptions, read_run_config, train,
};
use serde::{Deserialize, Serialize};

mod common;
use common::{Lcg, fresh_dir, quiet};

const FEATURES: usize = 6;
const CLASSES: usize = 5;

/// A two-layer network of this crate's.
#[derive(Module, Debug)]
struct Probe {
    hidden: Linear,
    output: Linear,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ProbeConfig {
    hidden: usize,
}

impl ProbeConfig {
    fn init(&self, device: &Device) -> Probe {
        Probe {
            hidden: LinearConfig::new(FEATURES, self.hidden).init(device),
            output: LinearConfig::new(self.hidden, CLASSES).init(device),
        }
    }
}

impl recipe_train::Classify for Probe {
    type Input = Tensor<2>;

    /// # Shapes
    /// - inputs: `[batch, FEATURES]`
    /// - output: `[batch, CLASSES]`
    fn logits(&self, inputs: Tensor<2>) -> Tensor<2> {
        self.output.forward(relu(self.hidden.forward(inputs)))
    }
}

/// `count` noisy points whose class's feature is lifted by 0.5: hard
/// enough that the second guess is often right when the first is not.
fn points(count: usize, seed: u64) -> FeatureSet {
    let mut random = Lcg::new(seed);
    let mut values = Vec::with_capacity(count * FEATURES);
    let mut labels = Vec::with_capacity(count);
    for _ in 0..count {
        let class = random.below(CLASSES as u64) as usize;
        for feature in 0..FEATURES {
            let lift = if feature == class { 0.5 } else { 0.0 };
            values.push(random.uniform() + lift);
        }
        labels.push(class);
    }
    FeatureSet::new(values, &[FEATURES], labels).unwrap()
}

/// `train` training points, 300 validation and 300 test points.
fn data(train: usize) -> ClassData<FeatureItem, Tensor<2>> {
    FeatureSet::class_data::<2>(
        "lifted",
        [points(train, 1), points(300, 2), points(300, 3)],
        CLASSES,
        (0..CLASSES).map(|c| format!("class {c}")).collect(),
        serde_json::Value::Null,
    )
    .unwrap()
}

/// Burn's top-2 accuracy on both splits, the confidence on validation only.
fn metrics() -> Vec<ClassMetric> {
    vec![
        ClassMetric::new(TopKAccuracyMetric::new(2)).named("top2"),
        ClassMetric::new(DeferredMetric::from_reading(Confidence))
            .named("confidence")
            .valid_only(),
    ]
}

/// SGD for `epochs`, watching `valid_top2` (early stopping with
/// restore-best, the best kept checkpoint) and `valid_confidence` (the
/// plateau rule), no mode given.
fn watched_run(epochs: usize) -> TrainConfig {
    let mut fit = FitConfig::with_optimizer(OptimizerConfig::sgd(0.9));
    fit.learning_rate = 0.05;
    fit.batch_size = 40;
    fit.epochs = epochs;
    fit.seed = 3;
    fit.early_stopping = Some(EarlyStoppingConfig {
        monitor: "valid_top2".parse().unwrap(),
        patience: 4,
        restore_best_weights: true,
        ..EarlyStoppingConfig::default()
    });
    fit.reduce_lr_on_plateau = Some(ReduceLrOnPlateau {
        monitor: Metric::recorded("confidence", Split::Valid),
        patience: 1,
        factor: 0.5,
        ..ReduceLrOnPlateau::default()
    });
    fit.keep_checkpoints = Some(KeepCheckpoints {
        top_k: 1,
        monitor: "val_top2".parse().unwrap(),
        ..KeepCheckpoints::default()
    });
    TrainConfig::for_network(
        NetworkConfig::custom_with("probe", &ProbeConfig { hidden: 24 }).unwrap(),
        fit,
    )
}

#[test]
fn own_and_burns_metrics_are_recorded_and_watched() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let dir = fresh_dir("metrics");
    let options = TrainOptions {
        out_dir: Some(dir.clone()),
        metrics: metrics(),
        ..quiet()
    };
    let net = ProbeConfig { hidden: 24 }.init(&device);
    let trained = train(&watched_run(12), net, &data(800), &device, &options).unwrap();
    let history = &trained.history;

    // Recorded every epoch, on the splits asked, and in history.csv.
    for record in &history.epochs {
        let columns: Vec<&str> = record.metrics.keys().map(String::as_str).collect();
        assert_eq!(
            columns,
            ["train_top2", "valid_confidence", "valid_top2"],
            "epoch {}",
            record.epoch
        );
        // Burn's top-k accuracy is in percent; the second guess only adds.
        let top2 = record.metrics["valid_top2"];
        assert!(
            top2 >= 100.0 * record.valid_accuracy - 1e-6 && top2 <= 100.0,
            "epoch {}: top-2 {top2}, accuracy {}",
            record.epoch,
            record.valid_accuracy
        );
        let confidence = record.metrics["valid_confidence"];
        // In percent, at least a uniform guess's.
        assert!(
            (100.0 / CLASSES as f64..=100.0).contains(&confidence),
            "{confidence}"
        );
    }
    let csv = fs::read_to_string(dir.join("history.csv")).unwrap();
    let read_back = History::from_csv(&csv).unwrap();
    let recorded = |history: &History| -> Vec<_> {
        history.epochs.iter().map(|r| r.metrics.clone()).collect()
    };
    assert_eq!(recorded(&read_back), recorded(history));
    let top2 = |record: &recipe_train::EpochRecord| record.metrics["valid_top2"];
    let last = history.epochs.last().unwrap();
    assert!(
        top2(last) > 60.0,
        "the network learns: top-2 {}",
        top2(last)
    );

    // Each monitor took its direction from the metric, saved for a resume.
    let saved = read_run_config(&dir).unwrap().fit;
    assert_eq!(saved.early_stopping.unwrap().mode, Some(Mode::Max));
    let plateau = saved.reduce_lr_on_plateau.unwrap();
    assert_eq!(plateau.mode, Some(Mode::Max));
    assert_eq!(saved.keep_checkpoints.unwrap().mode, Some(Mode::Max));

    // Early stopping's best epoch is the first with the highest top-2
    // accuracy, and the best checkpoint kept is that epoch's.
    let best = history
        .epochs
        .iter()
        .fold(
            None::<&recipe_train::EpochRecord>,
            |best, record| match best {
                Some(best) if top2(best) >= top2(record) => Some(best),
                _ => Some(record),
            },
        )
        .unwrap()
        .epoch;
    assert_eq!(trained.summary.best_epoch, best);
    assert_eq!(trained.summary.weights_from_epoch, best);
    let listing = fs::read_to_string(dir.join("checkpoints").join("checkpoints.csv")).unwrap();
    assert!(
        listing
            .lines()
            .any(|line| line.starts_with(&format!("epoch-{best}.bpk,top-1,"))),
        "{listing}"
    );

    // The final evaluation measures them on every split: on validation,
    // the restored best epoch's figures as training recorded them.
    let summary = &trained.summary.metrics;
    let keys: Vec<&str> = summary.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "test_confidence",
            "test_top2",
            "train_confidence",
            "train_top2",
            "valid_confidence",
            "valid_top2"
        ]
    );
    let best_record = &history.epochs[best - 1];
    for column in ["valid_top2", "valid_confidence"] {
        let (final_value, recorded) = (summary[column], best_record.metrics[column]);
        assert!(
            (final_value - recorded).abs() < 1e-4,
            "{column}: {final_value} evaluated, {recorded} recorded"
        );
    }

    // The rate followed Keras' rule on the confidence, upwards.
    let mut rule = PlateauState::new(plateau, 0.05);
    for pair in history.epochs.windows(2) {
        rule.end_record(&pair[0]);
        assert_eq!(pair[1].learning_rate, rule.learning_rate(), "{:?}", pair[1]);
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_monitor_or_a_metric_the_run_cannot_record_is_refused_before_training() {
    let device = Device::flex().autodiff();
    let data = data(800);
    // The error of a run of `config` recording `metrics`.
    let refusal = |config: &TrainConfig, metrics: Vec<ClassMetric>| {
        let options = TrainOptions { metrics, ..quiet() };
        let net = ProbeConfig { hidden: 4 }.init(&device);
        train(config, net, &data, &device, &options)
            .unwrap_err()
            .to_string()
    };

    // A monitor naming a metric not given.
    let mut config = watched_run(1);
    config.fit.keep_checkpoints = None;
    config.fit.reduce_lr_on_plateau = None;
    let error = refusal(&config, Vec::new());
    assert!(
        error.contains("early_stopping.monitor") && error.contains("valid_top2"),
        "{error}"
    );

    // The confidence is not recorded on the training split.
    config.fit.early_stopping.as_mut().unwrap().monitor = "train_confidence".parse().unwrap();
    let error = refusal(&config, metrics());
    assert!(
        error.contains("train_top2, valid_top2, valid_confidence"),
        "{error}"
    );

    // A column without its split, or on the test split (which the history
    // has not), names nothing, even with a mode.
    for monitor in [
        Metric::Recorded("top2".to_string()),
        Metric::recorded("top2", Split::Test(None)),
    ] {
        let early_stopping = config.fit.early_stopping.as_mut().unwrap();
        early_stopping.monitor = monitor;
        early_stopping.mode = Some(Mode::Max);
        let error = refusal(&config, metrics());
        assert!(error.contains("early_stopping.monitor"), "{error}");
    }

    // Burn's name for top-k accuracy cannot be a column.
    let error = refusal(&config, vec![ClassMetric::new(TopKAccuracyMetric::new(2))]);
    assert!(
        error.contains("TrainOptions::metrics[0]") && error.contains("ClassMetric::named"),
        "{error}"
    );

    // Two metrics under one name.
    let error = refusal(&config, vec![metrics()[0].clone(), metrics()[0].clone()]);
    assert!(error.contains("TrainOptions::metrics[1]"), "{error}");
}

/// Prechelt's GL_alpha ("Early stopping - but when?", 1998): stop once the
/// generalization loss, 100 (E_va / E_opt - 1) with E_opt the lowest
/// validation loss so far, exceeds `alpha`.
struct GeneralizationLoss {
    alpha: f64,
}

fn generalization_loss(epochs: &[EpochRecord]) -> f64 {
    let lowest = epochs
        .iter()
        .map(|r| r.valid_loss)
        .fold(f64::INFINITY, f64::min);
    100.0 * (epochs.last().unwrap().valid_loss / lowest - 1.0)
}

impl EpochCallback for GeneralizationLoss {
    fn on_epoch_end(&self, history: &History) -> Decision {
        let loss = generalization_loss(&history.epochs);
        if loss > self.alpha {
            Decision::Stop(format!("generalization loss {loss:.1} > {}", self.alpha))
        } else {
            Decision::Continue
        }
    }
}

/// A wide network on 150 training points overfits; GL_5 stops it at the
/// first epoch whose validation loss is 5% above the lowest, and a closure
/// beside it sees every epoch, the last included.
#[test]
fn a_stopping_rule_of_ones_own_ends_the_run() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let mut fit = FitConfig::with_optimizer(OptimizerConfig::adam());
    fit.learning_rate = 0.01;
    fit.batch_size = 30;
    fit.epochs = 80;
    fit.seed = 5;
    let config = TrainConfig::for_network(
        NetworkConfig::custom_with("probe", &ProbeConfig { hidden: 128 }).unwrap(),
        fit,
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_closure = seen.clone();
    let options = TrainOptions {
        callbacks: vec![
            Arc::new(GeneralizationLoss { alpha: 5.0 }),
            Arc::new(move |history: &History| {
                let epoch = history.epochs.last().unwrap().epoch;
                seen_by_closure.lock().unwrap().push(epoch);
                Decision::Continue
            }),
        ],
        ..quiet()
    };
    let net = ProbeConfig { hidden: 128 }.init(&device);
    let trained = train(&config, net, &data(150), &device, &options).unwrap();

    let epochs = &trained.history.epochs;
    let summary = &trained.summary;
    assert!(summary.stopped_early && epochs.len() < 80, "{summary:?}");
    assert!(
        summary.stop_reason.starts_with("generalization loss"),
        "{}",
        summary.stop_reason
    );
    assert!(generalization_loss(epochs) > 5.0);
    for end in 1..epochs.len() {
        assert!(generalization_loss(&epochs[..end]) <= 5.0, "epoch {end}");
    }
    let every_epoch: Vec<usize> = (1..=epochs.len()).collect();
    assert_eq!(*seen.lock().unwrap(), every_epoch);
}
