//! One training run, end to end.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use recipe_data::Splits;
use recipe_models::Mlp;

use crate::resume::{ResumePoint, read_run_config};
use crate::run::run;
use crate::{Classify, History, Summary, TrainConfig, TrainError};

/// How a run reports and what it keeps.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Folder for `config.json`, `history.csv`, `summary.json` and the weights;
    /// `None` keeps nothing on disk.
    pub out_dir: Option<PathBuf>,
    /// Print one line per epoch on stdout.
    pub print_epochs: bool,
    /// Show a progress counter on stderr when it is a terminal.
    pub show_progress: bool,
    /// Name of the network in `summary.json` (e.g. `784-500x3-10 relu`).
    pub model_name: Option<String>,
    /// With an `out_dir`, checkpoint every epoch into `out_dir/checkpoint` so
    /// that a killed run can be resumed ([`resume`]). The folder is removed
    /// when the run ends normally and kept when it fails.
    pub checkpoints: bool,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            out_dir: None,
            print_epochs: true,
            show_progress: true,
            model_name: None,
            checkpoints: true,
        }
    }
}

/// A trained network and the record of its training.
#[derive(Debug)]
pub struct TrainedModel<N> {
    /// The final network, in evaluation mode (no dropout, no autodiff).
    pub net: N,
    /// One record per epoch.
    pub history: History,
    /// The final evaluation.
    pub summary: Summary,
}

/// Loads the data, builds the [`Mlp`] of `config.model` and trains it.
pub fn train_mlp(
    config: &TrainConfig,
    device: &Device,
    options: &TrainOptions,
) -> Result<TrainedModel<Mlp>, TrainError> {
    let (net, splits, options) = prepare_mlp(config, device, options)?;
    run(config, net, &splits, device, &options, None)
}

/// Continues the [`Mlp`] run whose output folder is `run_dir` from its last
/// complete epoch, with the settings of its `config.json`, and finishes it as
/// if it had never stopped: same `history.csv` (but for the seconds), same
/// weights. `options.out_dir` is ignored (the run's folder is used).
pub fn resume_mlp(
    run_dir: &Path,
    device: &Device,
    options: &TrainOptions,
) -> Result<TrainedModel<Mlp>, TrainError> {
    let config = read_run_config(run_dir)?;
    let (net, splits, options) = prepare_mlp(&config, device, options)?;
    continue_run(run_dir, &config, net, &splits, device, options)
}

/// [`resume_mlp`] for a network of your own: `net` must be built as the
/// interrupted run built it (its weights are then replaced by the checkpoint's).
pub fn resume<N: Classify>(
    run_dir: &Path,
    net: N,
    splits: &Splits,
    device: &Device,
    options: &TrainOptions,
) -> Result<TrainedModel<N>, TrainError> {
    let config = read_run_config(run_dir)?;
    continue_run(run_dir, &config, net, splits, device, options.clone())
}

fn continue_run<N: Classify>(
    run_dir: &Path,
    config: &TrainConfig,
    net: N,
    splits: &Splits,
    device: &Device,
    options: TrainOptions,
) -> Result<TrainedModel<N>, TrainError> {
    let point = ResumePoint::find(run_dir)?;
    let options = TrainOptions {
        out_dir: Some(run_dir.to_path_buf()),
        ..options
    };
    run(config, net, splits, device, &options, Some(point))
}

fn prepare_mlp(
    config: &TrainConfig,
    device: &Device,
    options: &TrainOptions,
) -> Result<(Mlp, Splits, TrainOptions), TrainError> {
    config.validate()?;
    let splits =
        recipe_data::load_splits(config.dataset, config.data_dir.as_deref(), &config.split)?;
    let features = splits.train.image_size();
    if config.model.d_input != features {
        return Err(TrainError::invalid(
            "model.d_input",
            format!("{features} (the pixels of one {} image)", splits.kind),
            config.model.d_input,
        ));
    }
    let classes = splits.kind.classes();
    if config.model.d_output < classes {
        return Err(TrainError::invalid(
            "model.d_output",
            format!("at least {classes} (the classes of {})", splits.kind),
            config.model.d_output,
        ));
    }
    let device = autodiff(device);
    device.seed(config.seed);
    let net = config.model.init(&device)?;
    let options = TrainOptions {
        model_name: Some(
            options
                .model_name
                .clone()
                .unwrap_or_else(|| config.model.describe()),
        ),
        ..options.clone()
    };
    Ok((net, splits, options))
}

pub(crate) fn autodiff(device: &Device) -> Device {
    if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    }
}

/// Trains `net` on `splits` with Burn's Learner, then evaluates the final
/// network on the training, validation and test splits.
///
/// `config.model` is not used here (the network is given); everything else
/// is. `net` should live on `device` with autodiff.
pub fn train<N: Classify>(
    config: &TrainConfig,
    net: N,
    splits: &Splits,
    device: &Device,
    options: &TrainOptions,
) -> Result<TrainedModel<N>, TrainError> {
    run(config, net, splits, device, options, None)
}
