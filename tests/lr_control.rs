//! Learning-rate controls end to end on real MNIST: a schedule and
//! ReduceLROnPlateau change the rate from the right epoch on, the plateau
//! rule restarts early stopping only when asked, and a learning-rate scale
//! changes its layers' rate only.
//!
//! The tests compare whole runs bit for bit, so they hold [`SERIAL`]: Burn's
//! random generator is process-wide, and a run training in another test
//! thread would draw from it between one run's seeding and its
//! initialization.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use recipe::models::{ActivationConfig, Mlp, MlpConfig};
use recipe::train::{
    EarlyStoppingConfig, EpochRecord, OptimizerConfig, TrainConfig, train_mlp, visit_params,
};

mod common;
use common::{device, quiet};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// SGD at 0.1 on 3,000 images, batches of 50, `epochs` epochs.
fn small_run(epochs: usize) -> TrainConfig {
    small_run_of(epochs, ActivationConfig::relu())
}

fn small_run_of(epochs: usize, activation: ActivationConfig) -> TrainConfig {
    let mut config =
        TrainConfig::new(MlpConfig::new(784, vec![64, 64], 10).with_activation(vec![activation]));
    config.data.split.train_limit = Some(3_000);
    config.data.split.valid_size = 2_000;
    config.fit.epochs = epochs;
    config.fit.optimizer = OptimizerConfig::default();
    config.fit.learning_rate = 0.1;
    config.fit.batch_size = 50;
    config
}

fn rates(epochs: &[EpochRecord]) -> Vec<f64> {
    epochs.iter().map(|e| e.learning_rate).collect()
}

/// The numbers of an epoch but its wall-clock seconds.
fn figures(record: &EpochRecord) -> EpochRecord {
    EpochRecord {
        seconds: 0.0,
        ..record.clone()
    }
}

/// `step:1:0.5` halves the rate every epoch: `history.csv` records the
/// rate of each epoch's first step (0.1, 0.05, 0.025), and the run differs
/// from the constant-rate run from its second epoch on (not before).
#[test]
fn learning_rate_schedule_is_applied_and_recorded() {
    let _serial = serial();
    let device = device();
    let mut config = small_run(3);
    let constant = train_mlp(&config, &device, &quiet()).unwrap().history;
    config.fit.lr_schedule = "step:1:0.5".parse().unwrap();
    let stepped = train_mlp(&config, &device, &quiet()).unwrap().history;
    assert_eq!(rates(&stepped.epochs), [0.1, 0.05, 0.025]);
    assert_eq!(figures(&constant.epochs[0]), figures(&stepped.epochs[0]));
    assert_ne!(constant.epochs[1].train_loss, stepped.epochs[1].train_loss);
}

/// ReduceLROnPlateau with a `min_delta` no epoch can beat and patience 0:
/// epoch 1 improves (on infinity), every later epoch lowers the rate at its
/// end, so the epochs train at 0.1, 0.1, 0.05, 0.025; the run equals the
/// constant-rate run until the first lowered epoch (3), not after.
#[test]
fn plateau_lowers_the_rate_from_the_epoch_after_a_plateau() {
    let _serial = serial();
    let device = device();
    let mut config = small_run(4);
    let constant = train_mlp(&config, &device, &quiet()).unwrap().history;
    config.fit.reduce_lr_on_plateau = Some("factor=0.5,patience=0,min_delta=10".parse().unwrap());
    let lowered = train_mlp(&config, &device, &quiet()).unwrap().history;
    assert_eq!(rates(&lowered.epochs), [0.1, 0.1, 0.05, 0.025]);
    for epoch in 0..2 {
        assert_eq!(
            figures(&constant.epochs[epoch]),
            figures(&lowered.epochs[epoch])
        );
    }
    assert_ne!(constant.epochs[2].train_loss, lowered.epochs[2].train_loss);
}

/// Early stopping with patience 1 on a `min_delta` no epoch beats stops
/// after epoch 2. A plateau rule that lowers the rate at the end of epoch 2
/// (patience 0, then a cooldown: Keras counts it down before it looks, so
/// a cooldown of 2 spares the next epoch) restarts that patience only when
/// asked: the run then stops after epoch 3.
#[test]
fn a_plateau_restarts_early_stopping_only_when_asked() {
    let _serial = serial();
    let device = device();
    let mut config = small_run(6);
    config.fit.early_stopping = Some(EarlyStoppingConfig {
        min_delta: 10.0,
        patience: 1,
        ..Default::default()
    });
    let rule = "factor=0.5,patience=0,min_delta=10,cooldown=2";
    config.fit.reduce_lr_on_plateau = Some(rule.parse().unwrap());
    let kept = train_mlp(&config, &device, &quiet()).unwrap();
    assert_eq!(kept.summary.epochs_run, 2, "{}", kept.summary.stop_reason);
    let restarting = format!("{rule},reset_early_stopping=true");
    config.fit.reduce_lr_on_plateau = Some(restarting.parse().unwrap());
    let restarted = train_mlp(&config, &device, &quiet()).unwrap();
    let summary = &restarted.summary;
    assert_eq!(summary.epochs_run, 3, "{}", summary.stop_reason);
    assert_eq!(rates(&restarted.history.epochs), [0.1, 0.1, 0.05]);
    config.fit.early_stopping = None;
    let error = config.validate().unwrap_err().to_string();
    assert!(error.contains("reset_early_stopping"), "{error}");
}

/// Every parameter's values by path.
fn parameters(net: &Mlp) -> BTreeMap<String, Vec<f32>> {
    let mut values = BTreeMap::new();
    visit_params(
        net,
        |_| true,
        |param| {
            let flat = param.flat().to_data().try_to_vec::<f32>().unwrap();
            values.insert(param.info.path, flat);
        },
    );
    values
}

/// A scale of 1 on the first layer is the unscaled run bit for bit; a
/// scale of 0 freezes it: runs at two rates end with the same first layer
/// (its initialization, unmoved), its PReLU slopes included, and different
/// others, and that layer is not the unscaled run's.
#[test]
fn a_learning_rate_scale_changes_its_layers_rate_only() {
    let _serial = serial();
    let device = device();
    let mut config = small_run_of(2, "prelu-per-unit".parse().unwrap());
    let plain = train_mlp(&config, &device, &quiet()).unwrap();
    config.fit.lr_scales = vec!["1@layers.0".parse().unwrap()];
    let unit = train_mlp(&config, &device, &quiet()).unwrap();
    for (a, b) in plain.history.epochs.iter().zip(&unit.history.epochs) {
        assert_eq!(figures(a), figures(b));
    }
    assert_eq!(parameters(&plain.net), parameters(&unit.net));

    config.fit.lr_scales = vec!["0@layers.0".parse().unwrap()];
    let frozen_fast = parameters(&train_mlp(&config, &device, &quiet()).unwrap().net);
    config.fit.learning_rate = 0.05;
    let frozen_slow = parameters(&train_mlp(&config, &device, &quiet()).unwrap().net);
    let moved = parameters(&plain.net);
    for path in [
        "layers.0.linear.weight",
        "layers.0.linear.bias",
        "layers.0.activation.params.0",
    ] {
        assert_eq!(frozen_fast[path], frozen_slow[path], "{path}");
        assert_ne!(frozen_fast[path], moved[path], "{path}");
    }
    for path in [
        "layers.1.linear.weight",
        "layers.1.activation.params.0",
        "output.weight",
    ] {
        assert_ne!(frozen_fast[path], frozen_slow[path], "{path}");
    }
}
