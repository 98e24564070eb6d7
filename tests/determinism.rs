//! The same seed on the same CPU backend gives the same run, bit for bit.
//!
//! This test has a binary of its own: Burn's random generator is per
//! backend, process-wide, so a training running concurrently in another test
//! thread would draw from it too.

mod common;
use common::{csv_without_seconds, device, quiet};
use recipe::models::MlpConfig;
use recipe::train::{OptimizerConfig, TrainConfig, train_mlp};

#[test]
fn same_seed_same_history_and_weights() {
    let device = device();
    let mut config = TrainConfig::new(
        MlpConfig::new(784, vec![64, 64], 10)
            .with_dropout(0.2)
            .with_input_dropout(0.1),
    );
    config.data.split.train_limit = Some(2_000);
    config.data.split.valid_size = 2_000;
    config.fit.epochs = 2;
    config.fit.optimizer = OptimizerConfig::adam();
    config.fit.learning_rate = 1e-3;
    let options = quiet();
    let first = train_mlp(&config, &device, &options).unwrap();
    let second = train_mlp(&config, &device, &options).unwrap();
    assert_eq!(
        csv_without_seconds(&first.history.to_csv()),
        csv_without_seconds(&second.history.to_csv())
    );
    let weights = |trained: &recipe::train::TrainedModel<recipe::models::Mlp>| {
        trained.net.output.weight.val().into_data()
    };
    assert_eq!(weights(&first), weights(&second));

    config.fit.seed += 1;
    let other = train_mlp(&config, &device, &options).unwrap();
    assert_ne!(weights(&first), weights(&other), "the seed matters");
}
