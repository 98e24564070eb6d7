//! One training run, end to end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::module::Module;
use burn::tensor::Device;
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Learner, SupervisedTraining};
use recipe_data::{ImageBatch, ImageBatcher, ImageDataset, ImageSet, Normalization, Splits};
use recipe_models::Mlp;

use crate::checkpoint::{
    AtomicFileCheckpointer, RetainCheckpoints, checkpoint_dir, checkpoint_file,
};
use crate::monitor::{EpochMonitor, Session, StopReason};
use crate::progress::QuietRenderer;
use crate::resume::{ResumePoint, SkipEpochs, last_good_checkpoint, read_run_config};
use crate::{
    Classifier, Classify, EarlyStopping, History, RunArtifacts, Summary, TrainConfig, TrainError,
    evaluate,
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

fn autodiff(device: &Device) -> Device {
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

fn run<N: Classify>(
    config: &TrainConfig,
    net: N,
    splits: &Splits,
    device: &Device,
    options: &TrainOptions,
    resume_from: Option<ResumePoint>,
) -> Result<TrainedModel<N>, TrainError> {
    config.validate()?;
    config.check_hooks(&net)?;
    let device = autodiff(device);
    let start_epoch = resume_from.as_ref().map_or(0, |point| point.epoch);
    let artifacts = options.out_dir.as_ref().map(RunArtifacts::new);
    if let Some(artifacts) = &artifacts
        && resume_from.is_none()
    {
        artifacts.write_json(&artifacts.config(), config)?;
    }
    let normalization = if config.standardize {
        Normalization::standardize_from(&splits.train)?
    } else {
        Normalization::Unit
    };
    let batcher = ImageBatcher::new(normalization);
    let train_set = Arc::new(splits.train.clone());
    let valid_set = Arc::new(splits.valid.clone());
    let train_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(config.batch_size)
        .shuffle(config.seed)
        .build(ImageDataset::new(train_set.clone()));
    let train_loader: Arc<dyn DataLoader<ImageBatch>> =
        Arc::new(SkipEpochs::new(train_loader, start_epoch));
    let valid_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(config.eval_batch_size)
        .build(ImageDataset::new(valid_set.clone()));

    let hooks = config.step_hooks();
    let restore_best = config
        .early_stopping
        .as_ref()
        .is_some_and(|e| e.restore_best_weights);
    let monitor = EpochMonitor::new(
        config.epochs,
        config.learning_rate,
        config.early_stopping.clone().map(EarlyStopping::new),
        hooks.clone(),
        artifacts.as_ref().map(|a| a.history()),
        options.print_epochs,
        Session {
            device: device.clone(),
            seed: config.seed,
            epochs_done: start_epoch,
        },
    );
    let already_stopped = match &resume_from {
        Some(point) => monitor.replay(&point.history)?,
        None => false,
    };
    let learner_dir = LearnerDir::new(options.out_dir.as_ref());
    let checkpointing = restore_best || (options.checkpoints && artifacts.is_some());
    let epochs = if already_stopped {
        start_epoch
    } else {
        config.epochs
    };
    let mut training = SupervisedTraining::new(learner_dir.path(), train_loader, valid_loader)
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .with_metric_logger(InMemoryMetricLogger::default())
        .with_application_logger(None)
        .renderer(Box::new(QuietRenderer::new(options.show_progress)))
        .early_stopping(monitor.clone())
        .num_epochs(epochs);
    if checkpointing {
        let dir = learner_dir.path();
        let saved = resume_from
            .as_ref()
            .map(|point| point.checkpoints.clone())
            .unwrap_or_default();
        training = training
            .with_custom_checkpointers(
                AtomicFileCheckpointer::new(dir, "model"),
                AtomicFileCheckpointer::new(dir, "optim"),
                AtomicFileCheckpointer::new(dir, "scheduler"),
            )
            .with_checkpointing_strategy(RetainCheckpoints::new(
                saved,
                restore_best.then(|| monitor.best_epoch()),
                start_epoch,
            ));
        if start_epoch > 0 {
            // Burn's loader panics on a bad file: read the three records first.
            AtomicFileCheckpointer::check(dir, start_epoch)?;
            training = training.checkpoint(start_epoch);
        }
    }
    let learner = Learner::new(
        Classifier::with_hooks(net, hooks),
        config.optimizer.init(),
        config.learning_rate,
    );
    if options.print_epochs && start_epoch > 0 {
        println!(
            "resuming after epoch {start_epoch}/{} from {}",
            config.epochs,
            checkpoint_dir(learner_dir.path()).display()
        );
    }
    monitor.seed_epoch(start_epoch + 1);
    monitor.start();
    let started = Instant::now();
    let result = training.launch(learner);
    let train_seconds = started.elapsed().as_secs_f64();
    if let Some(error) = result.error {
        return Err(TrainError::Learner(format!("{error:?}")));
    }
    let (history, stop, best_epoch, write_error) = monitor.finish();
    if let Some(error) = write_error {
        return Err(error);
    }
    let stop_reason = match stop {
        StopReason::Diverged { epoch, loss } => {
            let last_good = if checkpointing && !learner_dir.temporary {
                last_good_checkpoint(learner_dir.path())
            } else {
                None
            };
            return Err(TrainError::Diverged {
                epoch,
                loss,
                learning_rate: config.learning_rate,
                last_good,
            });
        }
        StopReason::Completed => "completed the epoch budget".to_string(),
        StopReason::EarlyStopped(reason) => reason,
    };
    let epochs_run = history.epochs.len();
    let mut model = result.model;
    let mut weights_from_epoch = epochs_run;
    if let Some(best) = best_epoch
        && restore_best
        && best != epochs_run
    {
        let path = checkpoint_file(learner_dir.path(), "model", best);
        model = model
            .try_load_file(&path)
            .map_err(|e| TrainError::io(&path, format!("restoring the best epoch: {e:?}")))?;
        weights_from_epoch = best;
    }
    let net = model.net.valid();

    let eval_device = device.clone().inner();
    let loader = |set: &Arc<ImageSet>| -> Arc<dyn DataLoader<ImageBatch>> {
        DataLoaderBuilder::new(batcher.clone())
            .batch_size(config.eval_batch_size)
            .set_device(eval_device.clone())
            .build(ImageDataset::new(set.clone()))
    };
    let on_train = evaluate(&net, &loader(&train_set))?;
    let on_valid = evaluate(&net, &loader(&valid_set))?;
    let on_test = evaluate(&net, &loader(&Arc::new(splits.test.clone())))?;
    let summary = Summary {
        dataset: splits.kind.to_string(),
        model: options
            .model_name
            .clone()
            .unwrap_or_else(|| "custom network".to_string()),
        device: format!("{:?}", device.clone().inner()),
        train_accuracy: on_train.accuracy,
        train_loss: on_train.loss,
        valid_accuracy: on_valid.accuracy,
        valid_loss: on_valid.loss,
        test_accuracy: on_test.accuracy,
        test_loss: on_test.loss,
        epochs_run,
        best_epoch: best_epoch.unwrap_or(0),
        weights_from_epoch,
        stopped_early: epochs_run < config.epochs,
        stop_reason,
        train_seconds,
        resumed_after_epoch: (start_epoch > 0).then_some(start_epoch),
        parameters: Module::num_params(&net),
        normalization,
    };
    if let Some(artifacts) = &artifacts {
        artifacts.write_model(&net)?;
        artifacts.write_json(&artifacts.summary(), &summary)?;
        if checkpointing {
            let dir = checkpoint_dir(&artifacts.dir);
            std::fs::remove_dir_all(&dir).or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(TrainError::io(&dir, e))
                }
            })?;
        }
    }
    Ok(TrainedModel {
        net,
        history,
        summary,
    })
}

/// The folder Burn's Learner is given. With the in-memory metric logger and no
/// checkpointer it writes nothing there, but it wants one: the run's output
/// folder, or a temporary folder removed afterwards.
struct LearnerDir {
    path: PathBuf,
    temporary: bool,
}

impl LearnerDir {
    fn new(out_dir: Option<&PathBuf>) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        match out_dir {
            Some(dir) => Self {
                path: dir.clone(),
                temporary: false,
            },
            None => Self {
                path: std::env::temp_dir().join(format!(
                    "recipe-learner-{}-{}",
                    std::process::id(),
                    RUNS.fetch_add(1, Ordering::Relaxed)
                )),
                temporary: true,
            },
        }
    }

    fn path(&self) -> &PathBuf {
        &self.path
    }
}

impl Drop for LearnerDir {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
