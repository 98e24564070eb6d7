//! The lecture's remedies for overfitting on real MNIST, through the library
//! API: early stopping with restore-best, L1/L2 penalties, max-norm, dropout.

use recipe::models::Mlp;
use recipe::models::MlpConfig;
use recipe::train::{
    EarlyStoppingConfig, MaxNormConfig, OptimizerConfig, Regularizer, TrainConfig, TrainOptions,
    TrainedModel, column_norms, train_mlp,
};

/// A net that overfits: wide, few images, Adam.
fn overfitting(epochs: usize) -> TrainConfig {
    let mut config = TrainConfig::new(MlpConfig::new(784, vec![256, 256], 10));
    config.data.split.train_limit = Some(2_000);
    config.data.split.valid_size = 2_000;
    config.fit.optimizer = OptimizerConfig::adam();
    config.fit.learning_rate = 1e-3;
    config.fit.batch_size = 50;
    config.fit.epochs = epochs;
    config
}

mod common;
use common::{device, quiet};

fn run(config: &TrainConfig, options: &TrainOptions) -> TrainedModel<Mlp> {
    train_mlp(config, &device(), options).unwrap()
}

fn weights(mlp: &Mlp) -> Vec<f32> {
    common::mlp_weights(mlp, false)
}

#[test]
fn early_stopping_restores_the_best_epoch() {
    let dir = std::env::temp_dir().join(format!("recipe-es-{}", std::process::id()));
    let mut config = overfitting(30);
    config.fit.early_stopping = Some(EarlyStoppingConfig {
        patience: 2,
        restore_best_weights: true,
        ..EarlyStoppingConfig::default()
    });
    let options = TrainOptions {
        out_dir: Some(dir.clone()),
        ..quiet()
    };
    let trained = run(&config, &options);
    let summary = &trained.summary;
    assert!(summary.stopped_early, "{summary:?}");
    assert!(summary.epochs_run < 30);
    let best = trained
        .history
        .epochs
        .iter()
        .min_by(|a, b| a.valid_loss.total_cmp(&b.valid_loss))
        .unwrap();
    assert_eq!(summary.best_epoch, best.epoch);
    assert_eq!(summary.weights_from_epoch, best.epoch);
    assert!(
        best.epoch < summary.epochs_run,
        "the last epoch was not the best"
    );
    // The returned model is the best epoch's: its validation loss is the minimum of the history.
    let relative = (summary.valid_loss - best.valid_loss).abs() / best.valid_loss;
    assert!(
        relative < 1e-6,
        "{} vs {}",
        summary.valid_loss,
        best.valid_loss
    );
    // The checkpoints served their purpose: a run that ends normally keeps
    // only its final files.
    assert!(dir.join("model.bpk").is_file());
    assert!(!dir.join("checkpoint").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn l2_shrinks_and_l1_sparsifies_the_weights() {
    let plain = run(&overfitting(3), &quiet());
    let mut l2 = overfitting(3);
    l2.fit.regularizer = Some(Regularizer::L2 { lambda: 1e-2 });
    let l2 = run(&l2, &quiet());
    let mut l1 = overfitting(3);
    l1.fit.regularizer = Some(Regularizer::L1 { lambda: 1e-3 });
    let l1 = run(&l1, &quiet());

    let norm = |w: &[f32]| w.iter().map(|v| (v * v) as f64).sum::<f64>().sqrt();
    let tiny = |w: &[f32]| w.iter().filter(|v| v.abs() < 1e-3).count() as f64 / w.len() as f64;
    let (w_plain, w_l2, w_l1) = (weights(&plain.net), weights(&l2.net), weights(&l1.net));
    assert!(
        norm(&w_l2) < 0.8 * norm(&w_plain),
        "{} vs {}",
        norm(&w_l2),
        norm(&w_plain)
    );
    assert!(
        tiny(&w_l1) > 2.0 * tiny(&w_plain),
        "{} vs {}",
        tiny(&w_l1),
        tiny(&w_plain)
    );
    // The history keeps the data loss and the penalty apart.
    assert!(plain.history.epochs.iter().all(|r| r.train_penalty == 0.0));
    assert!(l2.history.epochs.iter().all(|r| r.train_penalty > 0.0));
}

#[test]
fn max_norm_holds_after_training() {
    let mut config = overfitting(2);
    config.fit.max_norm = Some(MaxNormConfig::new(0.5).unwrap());
    let trained = run(&config, &quiet());
    for layer in &trained.net.layers {
        let norms: Vec<f32> = column_norms(layer.linear().weight.val())
            .into_data()
            .try_to_vec()
            .unwrap();
        assert!(
            norms.iter().all(|&n| n <= 0.5 + 1e-5),
            "max {:?}",
            norms.iter().cloned().fold(0.0, f32::max)
        );
    }
}

#[test]
fn dropout_lowers_training_fit_but_not_evaluation() {
    let mut config = overfitting(3);
    let mlp = config.mlp_mut().unwrap();
    *mlp = mlp.clone().with_dropout(0.5).with_input_dropout(0.2);
    let trained = run(&config, &quiet());
    let last = trained.history.epochs.last().unwrap();
    // While training, dropout hides units; the final evaluation runs without it.
    assert!(trained.summary.train_accuracy > last.train_accuracy);
    assert!(trained.summary.test_accuracy > 0.8);
}
