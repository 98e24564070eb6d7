//! Weight averaging end to end on real MNIST: SWA's saved model is the mean
//! of the kept end-of-epoch weights, and the history records the average's
//! validation figures from the epoch it starts; validating with the average
//! makes it what early stopping and restore-best go by.
//!
//! The tests hold [`SERIAL`]: one compares two runs bit for bit, and Burn's
//! random generator is process-wide, so a run training in another test
//! thread would draw from it between a run's seeding and its initialization.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use recipe::models::{ActivationConfig, MlpConfig};
use recipe::train::{
    EarlyStoppingConfig, Metric, OptimizerConfig, TrainConfig, TrainOptions, train_mlp,
};

mod common;
use common::{device, fresh_dir, quiet, tensors};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// Each tensor of a safetensors file as `f32` values.
fn floats(path: &Path) -> BTreeMap<String, Vec<f32>> {
    tensors(path)
        .into_iter()
        .map(|(name, (_, bytes))| {
            let values = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (name, values)
        })
        .collect()
}

/// SWA from epoch 2 of 4, used as the model: `model.safetensors` is the
/// mean of epochs 2, 3 and 4's weights (kept with `top_k=4`); epoch 1 has no
/// average (`NaN` in `history.csv`); the last epoch's averaged validation
/// figures are the final model's on the validation split.
#[test]
fn swa_saves_the_mean_of_the_end_of_epoch_weights() {
    let _serial = serial();
    let dir = fresh_dir("swa");
    let mut config = TrainConfig::new(
        MlpConfig::new(784, vec![64], 10).with_activation(vec![ActivationConfig::relu()]),
    );
    config.data.split.train_limit = Some(2_000);
    config.data.split.valid_size = 1_000;
    config.fit.epochs = 4;
    config.fit.optimizer = OptimizerConfig::default();
    config.fit.learning_rate = 0.1;
    config.fit.weight_averaging = Some("swa:2".parse().unwrap());
    config.fit.use_averaged_weights = true;
    config.fit.keep_checkpoints = Some("top_k=4".parse().unwrap());
    let options = TrainOptions {
        out_dir: Some(dir.clone()),
        ..quiet()
    };
    let trained = train_mlp(&config, &device(), &options).unwrap();

    let epochs: Vec<_> = (2..=4)
        .map(|e| floats(&dir.join(format!("checkpoints/epoch-{e}.safetensors"))))
        .collect();
    let model = floats(&dir.join("model.safetensors"));
    assert_eq!(model.len(), 4);
    for (name, values) in &model {
        for (i, &value) in values.iter().enumerate() {
            let mean = epochs.iter().map(|e| e[name][i]).sum::<f32>() / 3.0;
            assert!(
                (value - mean).abs() <= 1e-6 * (1.0 + mean.abs()),
                "{name}[{i}]: {value} against the mean {mean}"
            );
        }
    }
    assert!(
        !dir.join("averaged.bpk").exists(),
        "the average is the model"
    );

    let history = &trained.history.epochs;
    assert!(history[0].averaged.is_none());
    let csv = std::fs::read_to_string(dir.join("history.csv")).unwrap();
    assert!(
        csv.contains("averaged_valid_loss,averaged_valid_accuracy"),
        "{csv}"
    );
    assert!(csv.lines().nth(1).unwrap().contains(",NaN,NaN,"), "{csv}");
    let last = history[3].averaged.unwrap();
    let summary = &trained.summary;
    assert!(
        (last.valid_loss - summary.valid_loss).abs() < 1e-5 * summary.valid_loss,
        "{} against {}",
        last.valid_loss,
        summary.valid_loss
    );
    assert_eq!(last.valid_accuracy, summary.valid_accuracy);
    assert!(
        summary
            .weight_averaging
            .as_deref()
            .unwrap()
            .starts_with("swa:2")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Validating with an EMA (Lightning's `WeightAveraging`): every epoch's
/// validation figures are the average's, so they differ from the same run's
/// without the swap (whose trained weights are the same: averaging draws no
/// random numbers); early stopping picks the best epoch by them, and with
/// restore-best that epoch's average, read back from its kept file, is the
/// model.
#[test]
fn validating_with_the_average_restores_the_best_epochs_average() {
    let _serial = serial();
    let dir = fresh_dir("validate-average");
    let mut config = TrainConfig::new(
        MlpConfig::new(784, vec![256], 10).with_activation(vec![ActivationConfig::relu()]),
    );
    config.data.split.train_limit = Some(500);
    config.data.split.valid_size = 1_000;
    // Adam on 500 images overfits within a few epochs: the validation
    // loss turns up well before the end.
    config.fit.epochs = 12;
    config.fit.batch_size = 50;
    config.fit.optimizer = OptimizerConfig::adam();
    config.fit.learning_rate = 1e-3;
    config.fit.weight_averaging = Some("ema:0.8".parse().unwrap());
    config.fit.early_stopping = Some(EarlyStoppingConfig {
        monitor: Metric::ValidLoss,
        patience: 12,
        restore_best_weights: true,
        ..EarlyStoppingConfig::default()
    });
    let plain = train_mlp(&config, &device(), &quiet()).unwrap();

    config.fit.validate_with_average = true;
    let options = TrainOptions {
        out_dir: Some(dir.clone()),
        ..quiet()
    };
    let swapped = train_mlp(&config, &device(), &options).unwrap();

    let epochs = &swapped.history.epochs;
    for (record, trained) in epochs.iter().zip(&plain.history.epochs) {
        let average = record.averaged.expect("an EMA from the first step");
        // The same count of right answers; Burn's figure went through percent.
        assert!(
            (record.valid_accuracy - average.valid_accuracy).abs() < 1e-9,
            "epoch {}: validation accuracy {} against the average's {}",
            record.epoch,
            record.valid_accuracy,
            average.valid_accuracy
        );
        assert!(
            (record.valid_loss - average.valid_loss).abs() <= 1e-6 * average.valid_loss,
            "epoch {}: validation loss {} against the average's {}",
            record.epoch,
            record.valid_loss,
            average.valid_loss
        );
        assert_eq!(record.train_loss, trained.train_loss, "the same training");
        assert_eq!(trained.averaged, record.averaged, "the same average");
    }
    assert!(
        epochs
            .iter()
            .zip(&plain.history.epochs)
            .any(|(swapped, trained)| swapped.valid_loss != trained.valid_loss),
        "validation saw the trained weights"
    );

    let best = epochs
        .iter()
        .min_by(|a, b| a.valid_loss.total_cmp(&b.valid_loss))
        .unwrap();
    let summary = &swapped.summary;
    assert!(
        best.epoch + 3 <= epochs.len(),
        "the test needs a best epoch whose average is no longer among the newest: \
         best {} of {}",
        best.epoch,
        epochs.len()
    );
    assert_eq!(summary.best_epoch, best.epoch);
    assert_eq!(summary.weights_from_epoch, best.epoch);
    assert!((summary.valid_accuracy - best.valid_accuracy).abs() < 1e-9);
    assert!(
        (summary.valid_loss - best.valid_loss).abs() <= 1e-5 * best.valid_loss,
        "the model's validation loss {} against the best epoch's {}",
        summary.valid_loss,
        best.valid_loss
    );
    assert!(
        !dir.join("averaged.bpk").exists(),
        "the average is the model"
    );
    assert!(!dir.join("checkpoint").exists(), "removed at the end");
    std::fs::remove_dir_all(dir).unwrap();

    // Without an output folder the averages go to the Learner's temporary
    // one, and the same average comes back.
    let unsaved = train_mlp(&config, &device(), &quiet()).unwrap();
    assert_eq!(unsaved.summary.weights_from_epoch, best.epoch);
    assert_eq!(unsaved.summary.valid_loss, summary.valid_loss);
    assert_eq!(unsaved.summary.test_loss, summary.test_loss);
}
