//! Weight averaging end to end on real MNIST: SWA's saved model is the mean
//! of the kept end-of-epoch weights, and the history records the average's
//! validation figures from the epoch it starts.

use std::collections::BTreeMap;
use std::path::Path;

use recipe::models::{ActivationConfig, MlpConfig};
use recipe::train::{OptimizerConfig, TrainConfig, TrainOptions, train_mlp};

mod common;
use common::{device, fresh_dir, quiet, tensors};

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
