//! Data-parallel training through Burn's multi-device strategy, on two
//! devices of one backend in one process (the CPU's device twice, or the
//! GPU's under RECIPE_DEVICE).

use burn::module::Module;
use burn::tensor::Tensor;
use recipe::data::{ClassData, FeatureItem, FeatureSet};
use recipe::models::{ActivationConfig, Mlp, MlpConfig};
use recipe::train::{
    DataConfig, EarlyStoppingConfig, MaxNormConfig, OptimizerConfig, Regularizer, TrainConfig,
    TrainOptions, column_norms, train,
};

mod common;
use common::{device, mlp_weights, quiet, two_classes};

/// 100 training points: one batch of 100, or two devices' batches of 50.
fn data() -> ClassData<FeatureItem, Tensor<2>> {
    FeatureSet::class_data::<2>(
        "points",
        [two_classes(100, 1), two_classes(40, 2), two_classes(40, 3)],
        2,
        Vec::new(),
        serde_json::Value::Null,
    )
    .unwrap()
}

fn config(batch_size: usize, devices: usize) -> TrainConfig {
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

fn weights(net: &Mlp) -> Vec<f32> {
    mlp_weights(net, true)
}

/// Burn sums the devices' gradients; recipe scales each device's loss by
/// 1/K, so one step on two devices with batches of 50 is one step on one
/// device with the batch of 100 (the mean gradient of the same 100
/// points), up to the order of the float sums.
#[test]
fn two_devices_with_half_batches_step_like_one_device_with_the_whole_batch() {
    let device = device().autodiff();
    device.seed(7);
    let net = config(100, 1).mlp().unwrap().init(&device).unwrap();
    // Burn draws weights at the first forward pass: draw them once, here.
    let _ = net.forward(Tensor::zeros([1, 2], &device));
    let data = data();
    let one = train(&config(100, 1), net.clone(), &data, &device, &quiet()).unwrap();
    let two_devices = TrainOptions {
        devices: vec![device.clone(), device.clone()],
        ..quiet()
    };
    let two = train(&config(50, 2), net.clone(), &data, &device, &two_devices).unwrap();
    let (before, one, two) = (weights(&net.valid()), weights(&one.net), weights(&two.net));
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

#[test]
fn a_device_count_that_does_not_match_is_named() {
    let device = device().autodiff();
    let net = config(50, 2).mlp().unwrap().init(&device).unwrap();
    let error = train(&config(50, 2), net, &data(), &device, &quiet())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("`devices`"), "{error}");
    assert!(error.contains("as many devices"), "{error}");
}

/// The run's other hooks behave as on one device: a penalty in each
/// device's loss, max-norm after the step, early stopping with the best
/// epoch's weights restored.
#[test]
fn penalties_constraints_and_early_stopping_work_on_two_devices() {
    let device = device().autodiff();
    let mut config = config(25, 2);
    config.fit.epochs = 30;
    config.fit.optimizer = OptimizerConfig::adam();
    config.fit.learning_rate = 0.05;
    config.fit.regularizer = Some(Regularizer::L2 { lambda: 1e-3 });
    config.fit.max_norm = Some(MaxNormConfig::new(0.5).unwrap());
    config.fit.early_stopping = Some(EarlyStoppingConfig {
        patience: 2,
        restore_best_weights: true,
        ..EarlyStoppingConfig::default()
    });
    let options = TrainOptions {
        devices: vec![device.clone(), device.clone()],
        ..quiet()
    };
    let net = config.mlp().unwrap().init(&device).unwrap();
    let trained = train(&config, net, &data(), &device, &options).unwrap();
    let summary = &trained.summary;
    assert!(summary.stopped_early, "{summary:?}");
    assert_eq!(summary.weights_from_epoch, summary.best_epoch);
    assert!(trained.history.epochs.iter().all(|e| e.train_penalty > 0.0));
    let norms: Vec<f32> = column_norms(trained.net.layers[0].linear.weight.val())
        .into_data()
        .try_to_vec()
        .unwrap();
    assert!(norms.iter().all(|&n| n <= 0.5 + 1e-5), "{norms:?}");
}
