//! One training run, end to end.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use burn::tensor::Tensor;
use recipe_data::{ClassData, DataInfo, DataSource, FeatureItem, ImageItem, load_splits};
use recipe_models::Mlp;

use crate::resume::{ResumePoint, read_run_config};
use crate::run::{DataItem, run};
use crate::{
    ClassMetric, Classify, EpochCallback, History, LayerGradient, LrFindConfig, LrFindResult,
    RunFolderLock, Summary, TrainConfig, TrainError, lr_find,
};

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
    /// Start a new run in an `out_dir` that already holds the files of a
    /// run, removing them first (without it such a folder is refused; see
    /// [`RunFolderLock::prepare_new_run`](crate::RunFolderLock::prepare_new_run)).
    pub overwrite: bool,
    /// The devices of a data-parallel run, as many as
    /// [`FitConfig::devices`](crate::FitConfig::devices), the first being
    /// the run's `device` (where the optimizer steps, validation runs and
    /// the final evaluation happens). Empty for a run on one device. A
    /// resumed run continues on the devices given here, however many the run
    /// had: each keeps its batch, so a step averages `devices x batch_size`
    /// images.
    pub devices: Vec<Device>,
    /// Steps between reads of the metrics (loss, accuracy, penalty) from
    /// the device: each read waits for the device's queue, which on a GPU
    /// stalls the training thread. The epoch values do not depend on it
    /// (see [`DeferredMetric`](crate::DeferredMetric)); 1 reads every step, 0
    /// only at the end of each epoch.
    pub read_metrics_every: usize,
    /// Metrics of your own, recorded per epoch on both splits (or the
    /// validation split alone) in the history and `history.csv` as
    /// `train_NAME`/`valid_NAME`, printed on the epoch line, and watched by
    /// early stopping, the plateau rule and the kept checkpoints when their
    /// `monitor` names them (a monitor's unset `mode` is taken from the
    /// metric). A resumed run needs the same metrics given again.
    pub metrics: Vec<ClassMetric>,
    /// Code of your own called at the end of every epoch with the history
    /// so far, which may stop the run ([`EpochCallback`]); a resumed run
    /// needs them given again.
    pub callbacks: Vec<Arc<dyn EpochCallback>>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            out_dir: None,
            print_epochs: true,
            show_progress: true,
            model_name: None,
            checkpoints: true,
            overwrite: false,
            devices: Vec::new(),
            read_metrics_every: crate::READ_METRICS_EVERY,
            metrics: Vec::new(),
            callbacks: Vec::new(),
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
    /// Per-layer gradient norms per epoch (empty unless
    /// `FitConfig::record_layer_gradients`).
    pub layer_gradients: Vec<LayerGradient>,
}

/// Loads the data of `config.data`, builds the [`Mlp`] of `config.network`
/// and trains it.
pub fn train_mlp(
    config: &TrainConfig,
    device: &Device,
    options: &TrainOptions,
) -> Result<TrainedModel<Mlp>, TrainError> {
    let (net, data, options) = prepare_mlp(config, device, options)?;
    match &data {
        MlpData::Images(data) => run(config, net, data, device, &options, None),
        MlpData::Table(data) => run(config, net, data, device, &options, None),
    }
}

/// Continues the [`Mlp`] run whose output folder is `run_dir` from its last
/// complete epoch, with the settings of its `config.json`, and finishes it as
/// if it had never stopped: same `history.csv` (but for the seconds), same
/// weights. `options.out_dir` is ignored (the run's folder is used).
/// `options.devices` are the devices it continues on, as many as the run
/// had or not (none: `device` alone); see [`TrainOptions::devices`].
pub fn resume_mlp(
    run_dir: &Path,
    device: &Device,
    options: &TrainOptions,
) -> Result<TrainedModel<Mlp>, TrainError> {
    let config = read_run_config(run_dir)?;
    let (net, data, options) = prepare_mlp(&config, device, options)?;
    match &data {
        MlpData::Images(data) => continue_run(run_dir, &config, net, data, device, options),
        MlpData::Table(data) => continue_run(run_dir, &config, net, data, device, options),
    }
}

/// [`resume_mlp`] for a network of your own: `net` must be built as the
/// interrupted run built it (its weights are then replaced by the checkpoint's).
pub fn resume<N, I>(
    run_dir: &Path,
    net: N,
    data: &ClassData<I, N::Input>,
    device: &Device,
    options: &TrainOptions,
) -> Result<TrainedModel<N>, TrainError>
where
    N: Classify,
    I: DataItem,
{
    let config = read_run_config(run_dir)?;
    continue_run(run_dir, &config, net, data, device, options.clone())
}

fn continue_run<N, I>(
    run_dir: &Path,
    config: &TrainConfig,
    net: N,
    data: &ClassData<I, N::Input>,
    device: &Device,
    options: TrainOptions,
) -> Result<TrainedModel<N>, TrainError>
where
    N: Classify,
    I: DataItem,
{
    // Held from before the folder is read until the run has written its last file.
    let _lock = RunFolderLock::acquire(run_dir)?;
    let point = ResumePoint::find(run_dir)?;
    let options = TrainOptions {
        out_dir: Some(run_dir.to_path_buf()),
        ..options
    };
    let config = on_devices_given(config, &options);
    run(&config, net, data, device, &options, Some(point))
}

/// The run's settings on the devices a resume was given, which may be
/// fewer or more than the run had (a worker died, another was added): each
/// device keeps its batch, so a step then averages `devices x batch_size`
/// images, as PyTorch's elastic launcher does.
fn on_devices_given(config: &TrainConfig, options: &TrainOptions) -> TrainConfig {
    let mut config = config.clone();
    let devices = options.devices.len().max(1);
    if devices != config.fit.devices && options.print_epochs {
        println!(
            "the run trained on {} devices and continues on {devices}: a step now averages \
             {devices} x {} images",
            config.fit.devices, config.fit.batch_size
        );
    }
    config.fit.devices = devices;
    config
}

/// A learning-rate range test ([`lr_find`](crate::lr_find)) of the [`Mlp`]
/// and data of `config`, with `config.fit`'s optimizer, batch size, seed and
/// step hooks.
pub fn lr_find_mlp(
    config: &TrainConfig,
    test: &LrFindConfig,
    device: &Device,
) -> Result<LrFindResult, TrainError> {
    test.validate()?;
    let (net, data, _) = prepare_mlp(config, device, &TrainOptions::default())?;
    match &data {
        MlpData::Images(data) => lr_find(&config.fit, test, net, data, device),
        MlpData::Table(data) => lr_find(&config.fit, test, net, data, device),
    }
}

/// The data of a [`DataSource`], batched for an MLP.
pub(crate) enum MlpData {
    Images(ClassData<ImageItem, Tensor<2>>),
    Table(ClassData<FeatureItem, Tensor<2>>),
}

impl MlpData {
    pub(crate) fn load(config: &TrainConfig) -> Result<Self, TrainError> {
        let data = &config.data;
        Ok(match &data.dataset {
            DataSource::Idx(kind) => {
                let splits = load_splits(*kind, data.data_dir.as_deref(), &data.split)?;
                MlpData::Images(splits.flat_data(data.standardize)?)
            }
            DataSource::Csv(source) => MlpData::Table(source.load()?),
            other => {
                return Err(TrainError::invalid(
                    "data.dataset",
                    "an image set or a CSV table (data provided in code goes through `train`)",
                    other,
                ));
            }
        })
    }

    fn info(&self) -> &DataInfo {
        match self {
            MlpData::Images(data) => &data.info,
            MlpData::Table(data) => &data.info,
        }
    }
}

fn prepare_mlp(
    config: &TrainConfig,
    device: &Device,
    options: &TrainOptions,
) -> Result<(Mlp, MlpData, TrainOptions), TrainError> {
    config.validate()?;
    let model = config.mlp()?;
    let data = MlpData::load(config)?;
    let info = data.info();
    let features: usize = info.input_shape.iter().product();
    if model.d_input != features {
        return Err(TrainError::invalid(
            "network.mlp.d_input",
            format!("{features} (the inputs of one {} example)", info.name),
            model.d_input,
        ));
    }
    if model.d_output != info.classes {
        return Err(TrainError::invalid(
            "network.mlp.d_output",
            format!("{} (the classes of {})", info.classes, info.name),
            model.d_output,
        ));
    }
    let device = autodiff(device);
    device.seed(config.fit.seed);
    let net = model.init(&device)?;
    let options = TrainOptions {
        model_name: Some(
            options
                .model_name
                .clone()
                .unwrap_or_else(|| model.describe()),
        ),
        ..options.clone()
    };
    Ok((net, data, options))
}

pub(crate) fn autodiff(device: &Device) -> Device {
    if device.is_autodiff() {
        device.clone()
    } else {
        device.clone().autodiff()
    }
}

/// Trains `net` on `data` with Burn's Learner, then evaluates the final
/// network on the training, validation and test splits.
///
/// `data` is any [`ClassData`]: recipe's providers (MNIST, Fashion-MNIST,
/// images or features in memory) or your own Burn datasets and batcher,
/// with inputs of any shape that `net` takes. The data and `net`, not
/// `config`, say what is trained: `config.fit` says how, and
/// `config.network` and `config.data` say what `config.json` records (see
/// [`TrainConfig::for_network`]: your network by its name, own config,
/// structure and parameter count; provided data by its [`DataInfo`]). A
/// record of recipe's MLP for another network is refused. `net` should live
/// on `device` with autodiff. Before training, the data is checked and the
/// network's output width compared with the class count.
pub fn train<N, I>(
    config: &TrainConfig,
    net: N,
    data: &ClassData<I, N::Input>,
    device: &Device,
    options: &TrainOptions,
) -> Result<TrainedModel<N>, TrainError>
where
    N: Classify,
    I: DataItem,
{
    run(config, net, data, device, options, None)
}
