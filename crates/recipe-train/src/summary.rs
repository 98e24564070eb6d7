//! The final numbers of a run, written as `summary.json`.

use std::collections::BTreeMap;

use recipe_data::DataInfo;
use serde::{Deserialize, Serialize};

/// What a run achieved. Train, validation and test figures are the final
/// model evaluated on each whole split without dropout, or, with
/// [`DropoutInference::MonteCarlo`](crate::DropoutInference), as the average
/// of sampled thinned nets (see `monte_carlo`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Dataset name.
    pub dataset: String,
    /// Short description of the network, e.g. `784-500x3-10 relu`.
    pub model: String,
    /// Device the run trained on (the first, for a data-parallel run).
    pub device: String,
    /// Devices the run's last session trained on, data-parallel when more
    /// than one; a resumed run may have continued on fewer or more than
    /// `config.json`'s `devices`.
    #[serde(default = "one_device", skip_serializing_if = "is_one_device")]
    pub devices: usize,
    /// Accuracy on the training images used.
    pub train_accuracy: f64,
    /// Mean cross-entropy on the training images used.
    pub train_loss: f64,
    /// Accuracy on the validation split.
    pub valid_accuracy: f64,
    /// Mean cross-entropy on the validation split.
    pub valid_loss: f64,
    /// Accuracy on the test set.
    pub test_accuracy: f64,
    /// Mean cross-entropy on the test set.
    pub test_loss: f64,
    /// Epochs completed.
    pub epochs_run: usize,
    /// Best epoch: by the early-stopping monitor when there is one, else by validation loss.
    pub best_epoch: usize,
    /// The epoch whose weights were evaluated and saved (the best one with
    /// `restore_best_weights`, else the last).
    pub weights_from_epoch: usize,
    /// Whether training stopped before its epoch budget.
    pub stopped_early: bool,
    /// Why training stopped.
    pub stop_reason: String,
    /// Wall-clock seconds of training (without the final evaluation); of the
    /// last session only, for a resumed run.
    pub train_seconds: f64,
    /// The epoch after which the run was resumed, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_after_epoch: Option<usize>,
    /// Number of trainable parameters.
    pub parameters: usize,
    /// The loss that `*_loss` measure: the network's own (`cross-entropy`
    /// unless it supplies another), and in training the label smoothing if
    /// one was asked.
    #[serde(default)]
    pub loss: String,
    /// The run's weight averaging (`ema:DECAY` or `swa:START`) and whether
    /// the figures above are the averaged weights'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_averaging: Option<String>,
    /// Present when the figures above average sampled thinned nets
    /// (`dropout_inference: monte_carlo`), with the deterministic pass's
    /// test figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monte_carlo: Option<crate::MonteCarloFigures>,
    /// The loss of the first training step, before any update (absent for
    /// a resumed run): about ln(classes) for a sound start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_loss: Option<f64>,
    /// The final network's hidden units on the first validation batch, per
    /// layer (empty when the network does not measure them, see
    /// [`Classify::unit_health`](crate::Classify::unit_health)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub units: Vec<crate::LayerUnits>,
    /// What the data was, as its provider reports it: name, input shape,
    /// class count (and names), split sizes, and how raw values became
    /// inputs (needed to use the saved weights).
    #[serde(default)]
    pub data: DataInfo,
    /// The run's own metrics ([`TrainOptions::metrics`](crate::TrainOptions::metrics))
    /// of the final network on each split, by `train_NAME`, `valid_NAME`
    /// and `test_NAME` (the weight-scaled network's, with Monte Carlo
    /// dropout); empty without any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

fn one_device() -> usize {
    1
}

fn is_one_device(devices: &usize) -> bool {
    *devices == 1
}
