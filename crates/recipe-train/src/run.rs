//! One training run in named phases: check, set up the data, set up Burn's
//! Learner with recipe's hooks, launch it, conclude (divergence, restore
//! best), evaluate, save.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::tensor::Device;
use burn::train::{ExecutionStrategy, Interrupter, Learner, MultiDeviceOptim, SupervisedTraining};
use recipe_data::{BatchInputs, ClassBatch, ClassData};

use crate::checkpoint::{
    AtomicFileCheckpointer, RetainCheckpoints, checkpoint_dir, checkpoint_file,
};
use crate::class_metric::settle_recorded_monitors;
use crate::metric_evaluation::evaluate_with_metrics;
use crate::progress::QuietRenderer;
use crate::resume::{EpochLoader, ResumePoint, last_good_checkpoint, seed_epoch};
use crate::trainer::autodiff;
use crate::{
    ClassMetric, Classifier, Classify, DeferredAccuracyMetric, DeferredLossMetric, Divergence,
    DropoutInference, Evaluation, FitConfig, GradNormMaxMetric, History, HistoryHandle,
    HistoryLogger, InitialLoss, KeepCheckpoints, LayerGradients, MetricEarlyStopping,
    MonteCarloFigures, OutputCheck, PenaltyMetric, Plateau, RunArtifacts, RunFolderLock,
    ScheduledLr, StepHooks, StopOnAny, StopOnCallback, StopOnDivergence, Summary, TrainConfig,
    TrainError, TrainOptions, TrainedModel, WeightAverager, evaluate_monte_carlo,
    scaled_lr_scheduler, thinned_copy,
};

/// The bounds a data item needs to go through Burn's loaders.
pub trait DataItem: Send + Sync + Clone + std::fmt::Debug + 'static {}

impl<T: Send + Sync + Clone + std::fmt::Debug + 'static> DataItem for T {}

/// Trains `net` (a fresh run, or one resumed at `resume_from`), evaluates
/// it and writes its artifacts.
pub(crate) fn run<N, I>(
    config: &TrainConfig,
    net: N,
    data: &ClassData<I, N::Input>,
    device: &Device,
    options: &TrainOptions,
    resume_from: Option<ResumePoint>,
) -> Result<TrainedModel<N>, TrainError>
where
    N: Classify,
    I: DataItem,
{
    let (record, options) = checked_record(config, &net, data, options)?;
    let (config, options) = (&record.fit, &options);
    let devices = data_parallel_devices(config, options, device)?;
    let device = autodiff(device);
    let data = RunData { data };
    data.check(config, &device)?;
    let artifacts = options.out_dir.as_ref().map(RunArtifacts::new);
    // A resumed run's caller holds the folder already (it read it first).
    let _lock = match (&artifacts, &resume_from) {
        (Some(artifacts), None) => Some(claim_run_folder(artifacts, &record, options.overwrite)?),
        _ => None,
    };
    // A resumed run's first step is not the start.
    let initial_loss = resume_from.is_none().then(InitialLoss::new);
    let loss = loss_description(&net, config);
    let setup = LearnerSetup::new(
        config,
        artifacts.as_ref(),
        options,
        &device,
        resume_from,
        loss,
    )?;
    let concluded = setup.train(config, &data, net, options, devices, initial_loss.clone())?;
    let trained = concluded.model.net.valid();
    let averaged = setup.final_average(trained.clone(), &concluded)?;
    // The average is either the model or a second set of weights beside it.
    let (net, averaged_beside) = match averaged {
        Some(averaged) if config.average_is_model() => (averaged, None),
        averaged => (trained, averaged),
    };
    let mut summary = data.summarize(
        &net,
        config,
        options,
        &device,
        &concluded,
        setup.start_epoch,
    )?;
    summary.initial_loss = initial_loss.and_then(|recorder| recorder.value());
    summary.units = data.unit_health(&net, config, &device)?;
    if let Some(artifacts) = &artifacts {
        write_artifacts(
            artifacts,
            config,
            &concluded,
            averaged_beside,
            &net,
            &summary,
            setup.checkpointing,
        )?;
    }
    Ok(TrainedModel {
        net,
        history: concluded.history,
        summary,
        layer_gradients: setup
            .layer_gradients
            .as_ref()
            .map(LayerGradients::records)
            .unwrap_or_default(),
    })
}

/// The run's record (its settings as they will be written, monitors
/// settled against `options.metrics`) and its options (the model named),
/// once both are checked against each other and against `net`.
fn checked_record<N: Classify, I>(
    config: &TrainConfig,
    net: &N,
    data: &ClassData<I, N::Input>,
    options: &TrainOptions,
) -> Result<(TrainConfig, TrainOptions), TrainError> {
    let mut record = config.recorded_for(net, &data.info)?;
    settle_recorded_monitors(&mut record.fit, &options.metrics)?;
    let options = TrainOptions {
        model_name: Some(
            options
                .model_name
                .clone()
                .unwrap_or_else(|| record.network.describe()),
        ),
        ..options.clone()
    };
    record.fit.validate()?;
    record.fit.check_hooks(net)?;
    if record.fit.keep_checkpoints.is_some() && options.out_dir.is_none() {
        return Err(TrainError::invalid(
            "keep_checkpoints",
            "a run with an output folder (TrainOptions::out_dir, --out) to keep them in",
            "no output folder",
        ));
    }
    Ok((record, options))
}

/// Locks a fresh run's folder, clears it for the run (as `overwrite`
/// allows) and writes the run's settings there first.
fn claim_run_folder(
    artifacts: &RunArtifacts,
    record: &TrainConfig,
    overwrite: bool,
) -> Result<RunFolderLock, TrainError> {
    let lock = RunFolderLock::acquire(&artifacts.dir)?;
    lock.prepare_new_run(overwrite)?;
    artifacts.write_json(&artifacts.config(), record)?;
    Ok(lock)
}

/// Writes what a finished run leaves in its folder: the kept checkpoints,
/// the weight average when it is not the model itself (`averaged_beside`),
/// the model and its summary.
fn write_artifacts<N: Classify>(
    artifacts: &RunArtifacts,
    config: &FitConfig,
    concluded: &Concluded<N>,
    averaged_beside: Option<N>,
    net: &N,
    summary: &Summary,
    checkpointing: bool,
) -> Result<(), TrainError> {
    if let Some(keep) = &config.keep_checkpoints {
        write_kept_checkpoints(artifacts, keep, concluded)?;
    }
    if let Some(averaged) = averaged_beside {
        artifacts.write_averaged_model(&averaged)?;
    }
    save(artifacts, net, summary, checkpointing)
}

/// A panic's message, as its payload carries it.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// The devices a run trains on: `device` alone, or the data-parallel
/// devices of `options`, which must be as many as `config.devices` and
/// start with `device`.
fn data_parallel_devices(
    config: &FitConfig,
    options: &TrainOptions,
    device: &Device,
) -> Result<Vec<Device>, TrainError> {
    let given = &options.devices;
    if config.devices == 1 && given.len() <= 1 {
        return Ok(vec![device.clone()]);
    }
    if given.len() != config.devices {
        return Err(TrainError::invalid(
            "devices",
            format!(
                "as many devices (TrainOptions::devices) as the run's {} (FitConfig::devices)",
                config.devices
            ),
            format!("{} devices", given.len()),
        ));
    }
    if given[0].clone().inner() != device.clone().inner() {
        return Err(TrainError::invalid(
            "devices",
            format!("the run's device ({device:?}) first"),
            format!("{:?} first", given[0]),
        ));
    }
    Ok(given.clone())
}

/// The data side of a run: loaders over the three splits of the data.
struct RunData<'a, I, X> {
    data: &'a ClassData<I, X>,
}

impl<I: DataItem, X: BatchInputs + Clone + Send + Sync + std::fmt::Debug + 'static>
    RunData<'_, I, X>
{
    /// Checks the data against the device (its batches build there), the
    /// accumulation (enough training items for one step) and
    /// [`FitConfig::validate_thinned`].
    fn check(&self, config: &FitConfig, device: &Device) -> Result<(), TrainError> {
        self.data.check(&device.clone().inner())?;
        config.check_accumulation(self.data.train.len())?;
        if config.validate_thinned {
            self.check_thinnable(device)?;
        }
        Ok(())
    }

    /// Refuses [`FitConfig::validate_thinned`] for inputs that cannot
    /// enable autodiff, where dropout would draw no masks.
    fn check_thinnable(&self, device: &Device) -> Result<(), TrainError> {
        let sample = self.data.sample_batch(&device.clone().inner())?;
        if sample.inputs.with_autodiff().is_none() {
            return Err(TrainError::invalid(
                "validate_thinned",
                "inputs that enable autodiff (BatchInputs::with_autodiff), where dropout draws masks",
                format!("{}'s inputs, which do not say how", self.data.info.name),
            ));
        }
        Ok(())
    }

    /// Shuffled training batches, starting at the shuffle of epoch
    /// `start_epoch + 1`, seeding `device` for each later epoch as it starts.
    fn train_loader(
        &self,
        config: &FitConfig,
        start_epoch: usize,
        device: &Device,
        epoch_counter: Option<Arc<AtomicUsize>>,
    ) -> Arc<dyn DataLoader<ClassBatch<X>>> {
        let loader = self
            .data
            .loader(&self.data.train, config.batch_size, Some(config.seed), None);
        Arc::new(
            EpochLoader::new(loader, start_epoch, Some((device.clone(), config.seed)))
                .counting_into(epoch_counter),
        )
    }

    fn valid_loader(&self, config: &FitConfig) -> Arc<dyn DataLoader<ClassBatch<X>>> {
        self.data
            .loader(&self.data.valid, config.eval_batch_size, None, None)
    }

    /// The first validation batch, on the device without autodiff.
    fn first_valid_batch(
        &self,
        config: &FitConfig,
        device: &Device,
    ) -> Result<Option<ClassBatch<X>>, TrainError> {
        let loader = self.data.loader(
            &self.data.valid,
            config.eval_batch_size,
            None,
            Some(device.clone().inner()),
        );
        loader
            .iter()
            .next()
            .transpose()
            .map_err(|e| TrainError::Learner(format!("reading a validation batch: {e}")))
    }

    /// The trained network's hidden units on the first validation batch.
    fn unit_health<N: Classify<Input = X>>(
        &self,
        net: &N,
        config: &FitConfig,
        device: &Device,
    ) -> Result<Vec<crate::LayerUnits>, TrainError> {
        Ok(self
            .first_valid_batch(config, device)?
            .map(|batch| net.unit_health(batch.inputs))
            .unwrap_or_default())
    }

    /// The final network on the training, validation and test splits,
    /// with the run's own `metrics` of each split by `train_NAME`,
    /// `valid_NAME` and `test_NAME` (read in the same pass).
    fn evaluate_all<N: Classify<Input = X>>(
        &self,
        net: &N,
        config: &FitConfig,
        device: &Device,
        metrics: &[ClassMetric],
    ) -> Result<([Evaluation; 3], BTreeMap<String, f64>), TrainError> {
        let eval_device = device.clone().inner();
        let mut figures = BTreeMap::new();
        let mut evaluate_split = |split: &str, set| {
            let loader =
                self.data
                    .loader(set, config.eval_batch_size, None, Some(eval_device.clone()));
            let (evaluation, values) = evaluate_with_metrics(net, &loader, metrics)?;
            for (metric, value) in metrics.iter().zip(values) {
                figures.insert(format!("{split}_{}", metric.name()), value);
            }
            Ok::<_, TrainError>(evaluation)
        };
        let evaluations = [
            evaluate_split("train", &self.data.train)?,
            evaluate_split("valid", &self.data.valid)?,
            evaluate_split("test", &self.data.test)?,
        ];
        Ok((evaluations, figures))
    }

    fn summarize<N: Classify<Input = X>>(
        &self,
        net: &N,
        config: &FitConfig,
        options: &TrainOptions,
        device: &Device,
        concluded: &Concluded<N>,
        start_epoch: usize,
    ) -> Result<Summary, TrainError> {
        let ([mut on_train, mut on_valid, mut on_test], metrics) =
            self.evaluate_all(net, config, device, &options.metrics)?;
        let monte_carlo = match config.dropout_inference {
            DropoutInference::MonteCarlo { samples } => {
                let figures = MonteCarloFigures {
                    samples,
                    weight_scaled_test_accuracy: on_test.accuracy,
                    weight_scaled_test_loss: on_test.loss,
                };
                [on_train, on_valid, on_test] =
                    self.evaluate_sampled(net, config, device, samples)?;
                Some(figures)
            }
            _ => None,
        };
        let epochs_run = concluded.history.epochs.len();
        Ok(Summary {
            dataset: self.data.info.name.clone(),
            model: options
                .model_name
                .clone()
                .unwrap_or_else(|| "unnamed network".to_string()),
            device: format!("{:?}", device.clone().inner()),
            devices: config.devices,
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
            loss: concluded.history.loss.clone(),
            weight_averaging: config.weight_averaging.map(|method| {
                if config.validate_with_average {
                    format!("{method} (validated with the average, which is the model)")
                } else if config.use_averaged_weights {
                    format!("{method} (the averaged weights are the model)")
                } else {
                    format!("{method} (the averaged weights are in averaged.bpk)")
                }
            }),
            monte_carlo,
            // Filled in by the run, which measures them on its own batches.
            initial_loss: None,
            units: Vec::new(),
            data: self.data.info.clone(),
            metrics,
        })
    }

    /// The final network on the three splits as the average of `samples`
    /// thinned nets (dropout on, a new mask per pass, seeded by the run's
    /// seed).
    fn evaluate_sampled<N: Classify<Input = X>>(
        &self,
        net: &N,
        config: &FitConfig,
        device: &Device,
        samples: usize,
    ) -> Result<[Evaluation; 3], TrainError> {
        let (thinned, device) = thinned_copy(net, device, config.seed);
        let split = |set| -> Result<Evaluation, TrainError> {
            let loader = self
                .data
                .loader(set, config.eval_batch_size, None, Some(device.clone()));
            let sampled = evaluate_monte_carlo(&thinned, &loader, &[samples])?;
            Ok(Evaluation {
                loss: sampled[0].loss,
                accuracy: sampled[0].accuracy,
                examples: set.len(),
            })
        };
        Ok([
            split(&self.data.train)?,
            split(&self.data.valid)?,
            split(&self.data.test)?,
        ])
    }
}

/// The loss a run's `*_loss` figures measure, for `summary.json` and
/// `history.csv`: the network's own, and the label smoothing in training.
fn loss_description<N: Classify>(net: &N, config: &FitConfig) -> String {
    match config.label_smoothing {
        Some(alpha) => format!(
            "{} (training: cross-entropy with label smoothing {alpha})",
            net.loss_name()
        ),
        None => net.loss_name(),
    }
}

/// Burn's Learner as recipe sets it up, each concern in Burn's own place:
/// the [`HistoryLogger`] (history, `history.csv`, the epoch line) as the
/// metric logger, [`StopOnDivergence`] and [`MetricEarlyStopping`] in the
/// early-stopping slot, [`RetainCheckpoints`] with the atomic checkpointers,
/// and the [`EpochLoader`] (resume, per-epoch seeds) as the training loader.
struct LearnerSetup {
    /// Stops the Learner from recipe's hooks (a failed history write, a
    /// network of the wrong width).
    interrupter: Interrupter,
    earlier: History,
    early_stopping: Option<MetricEarlyStopping>,
    divergence: StopOnDivergence,
    device: Device,
    learner_dir: LearnerDir,
    history_path: Option<PathBuf>,
    start_epoch: usize,
    resume_from: Option<ResumePoint>,
    /// Why early stopping had already ended a resumed run, if it had.
    already_stopped: Option<String>,
    checkpointing: bool,
    restore_best: bool,
    /// Per-layer gradient norms, when the run records them.
    layer_gradients: Option<LayerGradients>,
    /// The ReduceLROnPlateau rule, when the run has one.
    plateau: Option<Plateau>,
    /// The weight average, when the run keeps one.
    averager: Option<WeightAverager>,
}

/// What launching the Learner gave back.
struct Outcome<N: Classify> {
    model: Classifier<N>,
    history: HistoryHandle,
    train_seconds: f64,
    /// The run's callbacks, holding why one stopped the run if one did.
    callbacks: Option<StopOnCallback>,
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
        config: &FitConfig,
        artifacts: Option<&RunArtifacts>,
        options: &TrainOptions,
        device: &Device,
        resume_from: Option<ResumePoint>,
        loss: String,
    ) -> Result<Self, TrainError> {
        let start_epoch = resume_from.as_ref().map_or(0, |point| point.epoch);
        let restore_best = config
            .early_stopping
            .as_ref()
            .is_some_and(|e| e.restore_best_weights);
        let mut earlier = resume_from
            .as_ref()
            .map(|point| point.history.clone())
            .unwrap_or_default();
        earlier.loss = loss;
        // Replayed over the earlier epochs first: early stopping's replay
        // asks it where it lowered the rate.
        let plateau = config
            .reduce_lr_on_plateau
            .clone()
            .map(|rule| Plateau::new(rule, config.learning_rate, &earlier));
        let mut early_stopping = config
            .early_stopping
            .clone()
            .map(MetricEarlyStopping::on_history_metric)
            .transpose()?;
        if let Some(plateau) = plateau.as_ref().filter(|p| p.resets_early_stopping()) {
            early_stopping = early_stopping.map(|e| e.restarting_on(plateau.clone()));
        }
        let already_stopped = early_stopping
            .as_ref()
            .and_then(|early_stopping| early_stopping.replay(&earlier));
        let checkpointing = restore_best
            || ((options.checkpoints || config.keep_checkpoints.is_some()) && artifacts.is_some());
        let best_epoch = early_stopping
            .as_ref()
            .filter(|_| restore_best)
            .map(MetricEarlyStopping::best_epoch_handle);
        Ok(Self {
            interrupter: Interrupter::new(),
            earlier,
            early_stopping,
            divergence: StopOnDivergence::new(),
            device: device.clone(),
            learner_dir: LearnerDir::new(options.out_dir.as_ref()),
            history_path: artifacts.map(|a| a.history()),
            start_epoch,
            resume_from,
            already_stopped,
            checkpointing,
            restore_best,
            layer_gradients: Self::layer_gradients(
                config,
                artifacts,
                checkpointing,
                start_epoch,
                device,
            )?,
            plateau,
            averager: Self::averager(config, artifacts, device, start_epoch, best_epoch)?,
        })
    }

    /// The weight averager `config` asks for, holding a resumed run's
    /// average as it was after `start_epoch`; validating with the average
    /// and restoring the best epoch, it keeps the average of `best_epoch`.
    fn averager(
        config: &FitConfig,
        artifacts: Option<&RunArtifacts>,
        device: &Device,
        start_epoch: usize,
        best_epoch: Option<Arc<AtomicUsize>>,
    ) -> Result<Option<WeightAverager>, TrainError> {
        let Some(method) = config.weight_averaging else {
            return Ok(None);
        };
        let mut averager = WeightAverager::new(method);
        if config.validate_with_average {
            averager = averager.validating_with_average();
            if let Some(best_epoch) = best_epoch {
                averager = averager.keeping_best(best_epoch);
            }
        }
        if let Some(artifacts) = artifacts.filter(|_| start_epoch > 0) {
            averager.load(&artifacts.dir, start_epoch, &device.clone().inner())?;
        }
        Ok(Some(averager))
    }

    /// The per-layer gradient recorder, when `config` asks for one; with
    /// `artifacts` it writes `layers.csv` and continues a resumed run's
    /// record, and in a run that checkpoints it keeps the initial weights
    /// beside the checkpoints (the resumed run's movement starts there).
    fn layer_gradients(
        config: &FitConfig,
        artifacts: Option<&RunArtifacts>,
        checkpointing: bool,
        start_epoch: usize,
        device: &Device,
    ) -> Result<Option<LayerGradients>, TrainError> {
        if !config.record_layer_gradients {
            return Ok(None);
        }
        let Some(artifacts) = artifacts else {
            return Ok(Some(LayerGradients::new(Vec::new())));
        };
        let path = artifacts.layers();
        let earlier = LayerGradients::read(&path, start_epoch)?;
        let mut recorder = LayerGradients::new(earlier);
        if checkpointing {
            recorder = recorder.keeping_initial_weights(
                &artifacts.dir,
                start_epoch > 0,
                &device.clone().inner(),
            )?;
        }
        recorder.write_csv(path).map(Some)
    }

    /// The scheduler of `config`'s learning-rate schedule and plateau rule,
    /// which the learning-rate scales multiply (`None` for one constant
    /// rate, which Burn takes as a number).
    fn schedule<I: DataItem, X>(
        &self,
        config: &FitConfig,
        data: &RunData<'_, I, X>,
    ) -> Option<ScheduledLr> {
        if config.lr_schedule.is_constant() && self.plateau.is_none() && config.lr_scales.is_empty()
        {
            return None;
        }
        let schedule = ScheduledLr::new(
            config.lr_schedule.clone(),
            config.learning_rate,
            config.updates_per_epoch(data.data.train.len()),
            config.epochs,
        );
        Some(match &self.plateau {
            Some(plateau) => schedule.with_plateau(plateau.clone()),
            None => schedule,
        })
    }

    /// The history logger: it continues a resumed run's history, stops the
    /// Learner through `interrupter` when `history.csv` cannot be written.
    fn history_logger(
        &self,
        config: &FitConfig,
        options: &TrainOptions,
        interrupter: &Interrupter,
        schedule: Option<ScheduledLr>,
    ) -> Result<HistoryLogger, TrainError> {
        let mut logger = HistoryLogger::new(self.earlier.clone(), config.learning_rate)
            .stop_on_write_error(interrupter.clone())
            .with_recorded_metrics(&options.metrics);
        if let Some(schedule) = schedule {
            logger = logger.with_schedule(schedule);
        }
        if let Some(plateau) = &self.plateau {
            logger = logger.with_plateau(plateau.clone());
        }
        if let Some(averager) = &self.averager {
            // A temporary folder holds averages only for a restore-best of
            // the average; otherwise they serve --resume, which needs --out.
            let restores_average = self.restore_best && averager.validates_with_average();
            let run_dir = (self.checkpointing && (!self.learner_dir.temporary || restores_average))
                .then(|| self.learner_dir.path().to_path_buf());
            logger = logger.with_averager(averager.clone(), run_dir);
        }
        if let Some(path) = &self.history_path {
            logger = logger.write_csv(path)?;
        }
        if options.print_epochs {
            logger = logger.print_epochs(config.epochs);
        }
        if let Some(recorder) = &self.layer_gradients {
            logger = logger.with_layer_gradients(recorder.clone());
        }
        Ok(logger)
    }

    /// The step hooks of `config` with this run's recorders: the output
    /// check, the per-layer gradients, the weight average and the initial
    /// loss. Burn sums the gradients of a step's batches (one per device,
    /// over `accumulate_grad_batches` rounds): each loss is scaled so that
    /// the step takes their mean.
    fn step_hooks(
        &self,
        config: &FitConfig,
        output_check: &OutputCheck,
        initial_loss: Option<InitialLoss>,
        devices: usize,
    ) -> StepHooks {
        let mut hooks = config.step_hooks().with_output_check(output_check.clone());
        hooks.layer_gradients = self.layer_gradients.clone();
        hooks.averager = self.averager.clone();
        hooks.initial_loss = initial_loss;
        let batches_per_step = devices * config.accumulate_grad_batches;
        if batches_per_step > 1 {
            hooks.gradient_scale = Some(1.0 / batches_per_step as f32);
        }
        hooks
    }

    /// Divergence first, then early stopping, then the run's callbacks:
    /// all see every epoch.
    fn stopping(&self, callbacks: Option<&StopOnCallback>) -> StopOnAny {
        let mut stop = StopOnAny::new().with(self.divergence.clone());
        if let Some(early_stopping) = &self.early_stopping {
            stop = stop.with(early_stopping.clone());
        }
        match callbacks {
            Some(callbacks) => stop.with(callbacks.clone()),
            None => stop,
        }
    }

    /// Launches the Learner on `net` with recipe's step hooks and concludes
    /// the run; a network whose output failed the output check is that
    /// error, whatever else the Learner reported.
    fn train<N: Classify, I: DataItem>(
        &self,
        config: &FitConfig,
        data: &RunData<'_, I, N::Input>,
        net: N,
        options: &TrainOptions,
        devices: Vec<Device>,
        initial_loss: Option<InitialLoss>,
    ) -> Result<Concluded<N>, TrainError> {
        let output_check = OutputCheck::new(
            data.data.info.classes,
            &data.data.info.name,
            self.interrupter.clone(),
        );
        let hooks = self.step_hooks(config, &output_check, initial_loss, devices.len());
        let outcome = self.launch(
            config,
            data,
            Classifier::with_hooks(net, hooks),
            options,
            devices,
        );
        if let Some(error) = output_check.take_error() {
            return Err(error);
        }
        self.conclude(config, options, outcome?)
    }

    /// Builds Burn's `SupervisedTraining` with recipe's hooks and runs it.
    fn launch<N: Classify, I: DataItem>(
        &self,
        config: &FitConfig,
        data: &RunData<'_, I, N::Input>,
        model: Classifier<N>,
        options: &TrainOptions,
        devices: Vec<Device>,
    ) -> Result<Outcome<N>, TrainError> {
        let start_epoch = self.start_epoch;
        let dir = self.learner_dir.path();
        let schedule = self.schedule(config, data);
        let logger = self.history_logger(config, options, &self.interrupter, schedule.clone())?;
        let history = logger.handle();
        let callbacks = (!options.callbacks.is_empty())
            .then(|| StopOnCallback::new(options.callbacks.clone(), history.clone()));
        let training =
            self.supervised_training(config, data, options, logger, callbacks.as_ref(), devices)?;
        let (optimizer, model) = crate::fold_hooks(&config.optimizer, model);
        let learner = match schedule {
            Some(schedule) => {
                let scheduler = scaled_lr_scheduler(schedule, &config.lr_scales, &model)?;
                Learner::new(model, optimizer, scheduler)
            }
            None => Learner::new(model, optimizer, config.learning_rate),
        };
        if options.print_epochs && start_epoch > 0 {
            println!(
                "resuming after epoch {start_epoch}/{} from {}",
                config.epochs,
                checkpoint_dir(dir).display()
            );
        }
        // Later epochs are seeded by the training loader as they start.
        seed_epoch(&self.device, config.seed, start_epoch + 1);
        let started = Instant::now();
        // A device that fails mid-step (a remote worker gone, a GPU out of
        // memory) panics inside Burn; the run ends with an error, its
        // checkpoints kept for --resume.
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| training.launch(learner)))
                .map_err(|panic| TrainError::Learner(panic_text(&*panic)))?;
        let train_seconds = started.elapsed().as_secs_f64();
        if let Some(error) = history.take_write_error() {
            return Err(error);
        }
        if let Some(error) = result.error {
            return Err(TrainError::Learner(error.to_string()));
        }
        Ok(Outcome {
            model: result.model,
            history,
            train_seconds,
            callbacks,
        })
    }

    /// Burn's `SupervisedTraining` for this run: its loaders, recipe's
    /// metrics and the run's own, the history logger, the stopping rules,
    /// gradient accumulation, several devices and checkpoints as `config`
    /// asks. A run resumed after it had stopped trains no further epoch.
    fn supervised_training<N: Classify, I: DataItem>(
        &self,
        config: &FitConfig,
        data: &RunData<'_, I, N::Input>,
        options: &TrainOptions,
        logger: HistoryLogger,
        callbacks: Option<&StopOnCallback>,
        devices: Vec<Device>,
    ) -> Result<SupervisedTraining<Classifier<N>>, TrainError> {
        let epochs = if self.already_stopped.is_some() {
            self.start_epoch
        } else {
            config.epochs
        };
        let mut training = SupervisedTraining::new(
            self.learner_dir.path(),
            data.train_loader(
                config,
                self.start_epoch,
                &self.device,
                self.layer_gradients
                    .as_ref()
                    .map(LayerGradients::epoch_counter),
            ),
            data.valid_loader(config),
        )
        .metrics((
            DeferredAccuracyMetric::new().read_every(options.read_metrics_every),
            DeferredLossMetric::new().read_every(options.read_metrics_every),
        ))
        .metric_train_numeric(PenaltyMetric::new().read_every(options.read_metrics_every));
        for metric in &options.metrics {
            if metric.on_train() {
                training = training.metric_train_numeric(metric.clone());
            }
            training = training.metric_valid_numeric(metric.clone());
        }
        training = training
            .with_metric_logger(logger)
            .with_application_logger(None)
            .with_interrupter(self.interrupter.clone())
            .renderer(Box::new(QuietRenderer::new(options.show_progress)))
            .early_stopping(self.stopping(callbacks))
            .num_epochs(epochs);
        if config.gradient_clipping.is_some() {
            training = training
                .metric_train_numeric(
                    PenaltyMetric::grad_norm().read_every(options.read_metrics_every),
                )
                .metric_train_numeric(GradNormMaxMetric::new());
        }
        if config.accumulate_grad_batches > 1 {
            training = training.grads_accumulation(config.accumulate_grad_batches);
        }
        if devices.len() > 1 {
            // The optimizer steps on the main device, where validation runs.
            let strategy = ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice);
            training = training.with_training_strategy(strategy.into());
        }
        if self.checkpointing {
            training = self.with_checkpoints(config, training)?;
        }
        Ok(training)
    }

    /// Atomic checkpoints every epoch, retaining the best epoch's for
    /// restore-best, and the resumed epoch's records loaded first.
    fn with_checkpoints<N: Classify>(
        &self,
        config: &FitConfig,
        training: SupervisedTraining<Classifier<N>>,
    ) -> Result<SupervisedTraining<Classifier<N>>, TrainError> {
        let dir = self.learner_dir.path();
        let saved = self
            .resume_from
            .as_ref()
            .map(|point| point.checkpoints.clone())
            .unwrap_or_default();
        let best_epoch = self
            .early_stopping
            .as_ref()
            .filter(|_| self.restore_best)
            .map(MetricEarlyStopping::best_epoch_handle);
        let training = training
            .with_custom_checkpointers(
                AtomicFileCheckpointer::new(dir, "model"),
                AtomicFileCheckpointer::new(dir, "optim"),
                AtomicFileCheckpointer::new(dir, "scheduler"),
            )
            .with_checkpointing_strategy(self.retention(config, saved, best_epoch));
        if self.start_epoch == 0 {
            return Ok(training);
        }
        // Burn's loader panics on a bad file: read the three records first.
        AtomicFileCheckpointer::check(dir, self.start_epoch)?;
        Ok(training.checkpoint(self.start_epoch))
    }

    /// Which checkpoints Burn keeps: the two latest, the best for
    /// restore-best, and the best k that `config.keep_checkpoints` asks for.
    fn retention(
        &self,
        config: &FitConfig,
        saved: Vec<usize>,
        best_epoch: Option<Arc<AtomicUsize>>,
    ) -> RetainCheckpoints {
        let retain = RetainCheckpoints::new(saved, best_epoch, self.start_epoch);
        match &config.keep_checkpoints {
            Some(keep) => retain.keeping(keep.clone(), &self.earlier),
            None => retain,
        }
    }

    /// The run's average applied to `net`, `None` without one: the average
    /// after the last epoch, or, validating with the average and restoring
    /// the best epoch, that epoch's average.
    fn final_average<N: Classify>(
        &self,
        net: N,
        concluded: &Concluded<N>,
    ) -> Result<Option<N>, TrainError> {
        let Some(averager) = &self.averager else {
            return Ok(None);
        };
        let restored = concluded.weights_from_epoch != concluded.history.epochs.len();
        if averager.validates_with_average() && self.restore_best && restored {
            averager.load(
                self.learner_dir.path(),
                concluded.weights_from_epoch,
                &self.device.clone().inner(),
            )?;
        }
        Ok(Some(averager.apply(net)))
    }

    /// Why the run ended (a divergence is an error naming the last good
    /// checkpoint) and which weights it keeps (the best epoch's with
    /// restore-best).
    fn conclude<N: Classify>(
        &self,
        config: &FitConfig,
        options: &TrainOptions,
        outcome: Outcome<N>,
    ) -> Result<Concluded<N>, TrainError> {
        if let Some(Divergence { epoch, loss }) = self.divergence.divergence() {
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
        let history = outcome.history.history();
        let stopped_early = self
            .early_stopping
            .as_ref()
            .and_then(MetricEarlyStopping::stop_reason);
        let epoch = history.epochs.last().map_or(0, |r| r.epoch);
        if let Some(reason) = &stopped_early
            && options.print_epochs
            && self.already_stopped.is_none()
        {
            println!("early stopping at epoch {epoch}: {reason}");
        }
        let stopped_by_callback = outcome
            .callbacks
            .as_ref()
            .and_then(StopOnCallback::stop_reason)
            .filter(|_| stopped_early.is_none());
        if let Some(reason) = &stopped_by_callback
            && options.print_epochs
        {
            println!("stopped at epoch {epoch} by a callback: {reason}");
        }
        let stopped_early = stopped_early.or(stopped_by_callback);
        let stop_reason = stopped_early.unwrap_or_else(|| "completed the epoch budget".to_string());
        let best_epoch = match &self.early_stopping {
            Some(early_stopping) => early_stopping.best_epoch(),
            None => history.best_epoch().map(|r| r.epoch),
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

/// Copies the weights of the epochs `keep` selects out of the run's
/// checkpoints into `checkpoints/` (as `model.bpk` is written: the network
/// alone, in both formats), then lists them in `checkpoints.csv`.
fn write_kept_checkpoints<N: Classify>(
    artifacts: &RunArtifacts,
    keep: &KeepCheckpoints,
    concluded: &Concluded<N>,
) -> Result<(), TrainError> {
    let kept = keep.select(&concluded.history);
    for entry in &kept {
        let path = checkpoint_file(&artifacts.dir, "model", entry.epoch);
        let model =
            concluded.model.clone().try_load_file(&path).map_err(|e| {
                TrainError::io(&path, format!("keeping epoch {}: {e:?}", entry.epoch))
            })?;
        artifacts.write_kept_model(&model.net.valid(), &entry.stem())?;
    }
    keep.write_listing(&artifacts.kept_checkpoints(), &kept, &concluded.history)?;
    Ok(())
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
