//! Runs made up for the tests of what reads runs (the diagnosis, its
//! checks): a summary and a history with chosen figures.

use crate::{EpochRecord, History, Summary};

/// A finished MNIST run with these training and validation accuracies.
pub(crate) fn summary(train_accuracy: f64, valid_accuracy: f64) -> Summary {
    Summary {
        dataset: "mnist".into(),
        model: "784-500-10 sigmoid".into(),
        device: "cpu".into(),
        devices: 1,
        train_accuracy,
        train_loss: 0.1,
        valid_accuracy,
        valid_loss: 0.2,
        test_accuracy: valid_accuracy,
        test_loss: 0.2,
        epochs_run: 5,
        best_epoch: 5,
        weights_from_epoch: 5,
        stopped_early: false,
        stop_reason: String::new(),
        train_seconds: 1.0,
        resumed_after_epoch: None,
        parameters: 1,
        loss: "cross-entropy".into(),
        weight_averaging: None,
        monte_carlo: None,
        initial_loss: None,
        units: Vec::new(),
        data: recipe_data::DataInfo {
            name: "MNIST".into(),
            input_shape: vec![784],
            classes: 10,
            class_names: Vec::new(),
            split_sizes: [50_000, 10_000, 10_000],
            preprocessing: serde_json::Value::Null,
        },
        metrics: Default::default(),
    }
}

/// A history whose epochs have these training and validation losses.
pub(crate) fn history(train_losses: &[f64], valid_losses: &[f64]) -> History {
    History {
        epochs: train_losses
            .iter()
            .zip(valid_losses)
            .enumerate()
            .map(|(i, (&train_loss, &valid_loss))| EpochRecord {
                epoch: i + 1,
                train_loss,
                train_penalty: 0.0,
                train_accuracy: 0.9,
                valid_loss,
                valid_accuracy: 0.9,
                learning_rate: 0.1,
                seconds: 1.0,
                grad_norm: None,
                averaged: None,
                metrics: Default::default(),
            })
            .collect(),
        loss: "cross-entropy".to_string(),
    }
}
