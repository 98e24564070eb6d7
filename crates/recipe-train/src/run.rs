//! One training run in named phases: check, set up the data, set up Burn's
//! Learner with recipe's hooks, launch it, conclude (divergence, restore
//! best), evaluate, save.

use std::path::PathBuf;
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

use crate::checkpoint::{
    AtomicFileCheckpointer, RetainCheckpoints, checkpoint_dir, checkpoint_file,
};
use crate::monitor::{EpochMonitor, Session, StopReason};
use crate::progress::QuietRenderer;
use crate::resume::{EpochLoader, ResumePoint, last_good_checkpoint, seed_epoch};
use crate::trainer::autodiff;
use crate::{
    Classifier, Classify, EarlyStopping, Evaluation, History, PenaltyMetric, RunArtifacts, Summary,
    TrainConfig, TrainError, TrainOptions, TrainedModel, evaluate,
};

/// Trains `net` (a fresh run, or one resumed at `resume_from`), evaluates
/// it and writes its artifacts.
pub(crate) fn run<N: Classify>(
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
    let artifacts = options.out_dir.as_ref().map(RunArtifacts::new);
    if let Some(artifacts) = &artifacts
        && resume_from.is_none()
    {
        artifacts.write_json(&artifacts.config(), config)?;
    }
    let data = RunData::new(config, splits)?;
    let hooks = config.step_hooks();
    let setup = LearnerSetup::new(config, artifacts.as_ref(), options, &device, resume_from)?;
    let outcome = setup.launch(config, &data, Classifier::with_hooks(net, hooks), options)?;
    let concluded = setup.conclude(config, outcome)?;
    let net = concluded.model.net.valid();
    let summary = data.summarize(
        &net,
        config,
        options,
        &device,
        &concluded,
        setup.start_epoch,
    )?;
    if let Some(artifacts) = &artifacts {
        save(artifacts, &net, &summary, setup.checkpointing)?;
    }
    Ok(TrainedModel {
        net,
        history: concluded.history,
        summary,
    })
}

/// The data side of a run: the pixel normalization and the three splits.
struct RunData {
    normalization: Normalization,
    batcher: ImageBatcher,
    train: Arc<ImageSet>,
    valid: Arc<ImageSet>,
    test: Arc<ImageSet>,
    kind: String,
}

impl RunData {
    fn new(config: &TrainConfig, splits: &Splits) -> Result<Self, TrainError> {
        let normalization = if config.standardize {
            Normalization::standardize_from(&splits.train)?
        } else {
            Normalization::Unit
        };
        Ok(Self {
            normalization,
            batcher: ImageBatcher::new(normalization),
            train: Arc::new(splits.train.clone()),
            valid: Arc::new(splits.valid.clone()),
            test: Arc::new(splits.test.clone()),
            kind: splits.kind.to_string(),
        })
    }

    /// Shuffled training batches, starting at the shuffle of epoch
    /// `start_epoch + 1`, seeding `device` for each later epoch as it starts.
    fn train_loader(
        &self,
        config: &TrainConfig,
        start_epoch: usize,
        device: &Device,
    ) -> Arc<dyn DataLoader<ImageBatch>> {
        let loader = DataLoaderBuilder::new(self.batcher.clone())
            .batch_size(config.batch_size)
            .shuffle(config.seed)
            .build(ImageDataset::new(self.train.clone()));
        Arc::new(EpochLoader::new(
            loader,
            start_epoch,
            Some((device.clone(), config.seed)),
        ))
    }

    fn valid_loader(&self, config: &TrainConfig) -> Arc<dyn DataLoader<ImageBatch>> {
        DataLoaderBuilder::new(self.batcher.clone())
            .batch_size(config.eval_batch_size)
            .build(ImageDataset::new(self.valid.clone()))
    }

    /// The final network on the training, validation and test splits.
    fn evaluate_all<N: Classify>(
        &self,
        net: &N,
        config: &TrainConfig,
        device: &Device,
    ) -> Result<[Evaluation; 3], TrainError> {
        let eval_device = device.clone().inner();
        let loader = |set: &Arc<ImageSet>| -> Arc<dyn DataLoader<ImageBatch>> {
            DataLoaderBuilder::new(self.batcher.clone())
                .batch_size(config.eval_batch_size)
                .set_device(eval_device.clone())
                .build(ImageDataset::new(set.clone()))
        };
        Ok([
            evaluate(net, &loader(&self.train))?,
            evaluate(net, &loader(&self.valid))?,
            evaluate(net, &loader(&self.test))?,
        ])
    }

    fn summarize<N: Classify>(
        &self,
        net: &N,
        config: &TrainConfig,
        options: &TrainOptions,
        device: &Device,
        concluded: &Concluded<N>,
        start_epoch: usize,
    ) -> Result<Summary, TrainError> {
        let [on_train, on_valid, on_test] = self.evaluate_all(net, config, device)?;
        let epochs_run = concluded.history.epochs.len();
        Ok(Summary {
            dataset: self.kind.clone(),
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
            best_epoch: concluded.best_epoch.unwrap_or(0),
            weights_from_epoch: concluded.weights_from_epoch,
            stopped_early: epochs_run < config.epochs,
            stop_reason: concluded.stop_reason.clone(),
            train_seconds: concluded.train_seconds,
            resumed_after_epoch: (start_epoch > 0).then_some(start_epoch),
            parameters: Module::num_params(net),
            normalization: self.normalization,
        })
    }
}

/// Burn's Learner as recipe sets it up: the epoch monitor (history, early
/// stopping, divergence), the training loader (resume, per-epoch seeds)
/// and, when asked, atomic checkpoints.
struct LearnerSetup {
    monitor: EpochMonitor,
    device: Device,
    learner_dir: LearnerDir,
    start_epoch: usize,
    resume_from: Option<ResumePoint>,
    already_stopped: bool,
    checkpointing: bool,
    restore_best: bool,
}

/// What launching the Learner gave back.
struct Outcome<N: Classify> {
    model: Classifier<N>,
    train_seconds: f64,
}

/// The run after its epochs: the weights to keep and why it ended.
struct Concluded<N: Classify> {
    model: Classifier<N>,
    history: History,
    stop_reason: String,
    best_epoch: Option<usize>,
    weights_from_epoch: usize,
    train_seconds: f64,
}

impl LearnerSetup {
    fn new(
        config: &TrainConfig,
        artifacts: Option<&RunArtifacts>,
        options: &TrainOptions,
        device: &Device,
        resume_from: Option<ResumePoint>,
    ) -> Result<Self, TrainError> {
        let start_epoch = resume_from.as_ref().map_or(0, |point| point.epoch);
        let restore_best = config
            .early_stopping
            .as_ref()
            .is_some_and(|e| e.restore_best_weights);
        let monitor = EpochMonitor::new(
            config.epochs,
            config.learning_rate,
            config.early_stopping.clone().map(EarlyStopping::new),
            artifacts.map(|a| a.history()),
            options.print_epochs,
            Session {
                epochs_done: start_epoch,
            },
        );
        let already_stopped = match &resume_from {
            Some(point) => monitor.replay(&point.history)?,
            None => false,
        };
        Ok(Self {
            monitor,
            device: device.clone(),
            learner_dir: LearnerDir::new(options.out_dir.as_ref()),
            start_epoch,
            resume_from,
            already_stopped,
            checkpointing: restore_best || (options.checkpoints && artifacts.is_some()),
            restore_best,
        })
    }

    /// Builds Burn's `SupervisedTraining` with recipe's hooks and runs it.
    fn launch<N: Classify>(
        &self,
        config: &TrainConfig,
        data: &RunData,
        model: Classifier<N>,
        options: &TrainOptions,
    ) -> Result<Outcome<N>, TrainError> {
        let start_epoch = self.start_epoch;
        let epochs = if self.already_stopped {
            start_epoch
        } else {
            config.epochs
        };
        let dir = self.learner_dir.path();
        let mut training = SupervisedTraining::new(
            dir,
            data.train_loader(config, start_epoch, &self.device),
            data.valid_loader(config),
        )
        .metrics((AccuracyMetric::new(), LossMetric::new()))
        .metric_train_numeric(PenaltyMetric::new())
        .with_metric_logger(InMemoryMetricLogger::default())
        .with_application_logger(None)
        .renderer(Box::new(QuietRenderer::new(options.show_progress)))
        .early_stopping(self.monitor.clone())
        .num_epochs(epochs);
        if self.checkpointing {
            let saved = self
                .resume_from
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
                    self.restore_best.then(|| self.monitor.best_epoch()),
                    start_epoch,
                ));
            if start_epoch > 0 {
                // Burn's loader panics on a bad file: read the three records first.
                AtomicFileCheckpointer::check(dir, start_epoch)?;
                training = training.checkpoint(start_epoch);
            }
        }
        let learner = Learner::new(model, config.optimizer.init(), config.learning_rate);
        if options.print_epochs && start_epoch > 0 {
            println!(
                "resuming after epoch {start_epoch}/{} from {}",
                config.epochs,
                checkpoint_dir(dir).display()
            );
        }
        // Later epochs are seeded by the training loader as they start.
        seed_epoch(&self.device, config.seed, start_epoch + 1);
        self.monitor.start();
        let started = Instant::now();
        let result = training.launch(learner);
        let train_seconds = started.elapsed().as_secs_f64();
        if let Some(error) = result.error {
            return Err(TrainError::Learner(format!("{error:?}")));
        }
        Ok(Outcome {
            model: result.model,
            train_seconds,
        })
    }

    /// Why the run ended (a divergence is an error naming the last good
    /// checkpoint) and which weights it keeps (the best epoch's with
    /// restore-best).
    fn conclude<N: Classify>(
        &self,
        config: &TrainConfig,
        outcome: Outcome<N>,
    ) -> Result<Concluded<N>, TrainError> {
        let (history, stop, best_epoch, write_error) = self.monitor.finish();
        if let Some(error) = write_error {
            return Err(error);
        }
        let stop_reason = match stop {
            StopReason::Diverged { epoch, loss } => {
                let last_good = if self.checkpointing && !self.learner_dir.temporary {
                    last_good_checkpoint(self.learner_dir.path())
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
        let mut model = outcome.model;
        let mut weights_from_epoch = epochs_run;
        if let Some(best) = best_epoch
            && self.restore_best
            && best != epochs_run
        {
            let path = checkpoint_file(self.learner_dir.path(), "model", best);
            model = model
                .try_load_file(&path)
                .map_err(|e| TrainError::io(&path, format!("restoring the best epoch: {e:?}")))?;
            weights_from_epoch = best;
        }
        Ok(Concluded {
            model,
            history,
            stop_reason,
            best_epoch,
            weights_from_epoch,
            train_seconds: outcome.train_seconds,
        })
    }
}

/// Writes the weights and `summary.json`, then removes the checkpoints of a
/// run that ended normally.
fn save<N: Classify>(
    artifacts: &RunArtifacts,
    net: &N,
    summary: &Summary,
    checkpointing: bool,
) -> Result<(), TrainError> {
    artifacts.write_model(net)?;
    artifacts.write_json(&artifacts.summary(), summary)?;
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
    Ok(())
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
