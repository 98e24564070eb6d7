//! `recipe train`: the settings of one run, from flags and a TOML file.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use recipe::data::{CsvSource, DataSource, DatasetKind};
use recipe::models::{ActivationConfig, DropoutForm, InitConfig, MlpConfig};
use recipe::train::{
    DataConfig, DropoutInference, EarlyStoppingConfig, FitConfig, GradientClipping, GroupLasso,
    KeepCheckpoints, LrScale, LrSchedule, MaxNormConfig, Metric, Mode, MomentumRamp,
    OptimizerConfig, ParamSelector, ReduceLrOnPlateau, Regularizer, TrainConfig, WeightAveraging,
    WeightConstraint, WeightPenalty,
};
use serde::Deserialize;

use super::text;

/// Settings of `recipe train`. Every flag can also be a key of the `--config`
/// TOML file (same name, e.g. `batch-size = 64`); flags win over the file.
#[derive(Debug, Default, Clone, PartialEq, Args, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TrainArgs {
    /// Dataset: mnist or fashion-mnist
    #[arg(long)]
    #[serde(default, deserialize_with = "text::option")]
    pub dataset: Option<DatasetKind>,
    /// Folder holding the dataset's four IDX files (default: data/<dataset>, then system folders)
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Train on a CSV table instead: a header, numeric feature columns
    /// (standardized) and the --label column; 20% of the rows for test and
    /// 20% of the rest for validation, unless --test-csv is given
    #[arg(long, value_name = "FILE", conflicts_with_all = ["dataset", "data_dir"], requires = "label")]
    pub data_csv: Option<PathBuf>,
    /// The label column of --data-csv (integers 0.. or class names)
    #[arg(long, value_name = "COLUMN", requires = "data_csv")]
    pub label: Option<String>,
    /// A test table with the same columns as --data-csv
    #[arg(long, value_name = "FILE", requires = "data_csv")]
    pub test_csv: Option<PathBuf>,
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, env = "RECIPE_DEVICE")]
    pub device: Option<String>,
    /// Train data-parallel on these devices, e.g. cpu,cpu or wgpu,wgpu
    /// (instead of --device): each takes its own batches of --batch-size
    /// from its share of the training images, and a step averages their
    /// gradients, so it sees devices x batch-size images
    #[arg(long, value_delimiter = ',', value_name = "DEVICE,DEVICE,...")]
    #[serde(default)]
    pub devices: Option<Vec<String>>,
    /// Steps between reads of the loss, accuracy and penalty from the
    /// device (default 50; 1: every step, 0: once per epoch). The epoch's
    /// figures do not depend on it; on a GPU each read stalls training
    /// until the device's queue drains
    #[arg(long, value_name = "STEPS")]
    pub read_metrics_every: Option<usize>,
    /// Hidden layer widths, input side first, e.g. 500,500,500
    #[arg(long, value_delimiter = ',')]
    pub hidden: Option<Vec<usize>>,
    /// Hidden activation(s): one for all layers or one per layer, e.g. relu or sigmoid,relu (see below)
    #[arg(long, value_delimiter = ',')]
    #[serde(default, deserialize_with = "text::list")]
    pub activation: Option<Vec<ActivationConfig>>,
    /// Linear pieces per Maxout unit (with --activation maxout)
    #[arg(long)]
    pub pieces: Option<usize>,
    /// Initializer: auto, default, xavier-uniform, xavier-normal, kaiming-uniform, kaiming-normal, lecun-normal, uniform:BOUND
    #[arg(long)]
    #[serde(default, deserialize_with = "text::option")]
    pub init: Option<InitConfig>,
    /// Optimizer: sgd, adam, adamw or rmsprop
    #[arg(long)]
    #[serde(default, deserialize_with = "text::option")]
    pub optimizer: Option<OptimizerConfig>,
    /// Learning rate
    #[arg(long, allow_negative_numbers = true)]
    pub lr: Option<f64>,
    /// Momentum (sgd and rmsprop)
    #[arg(long, allow_negative_numbers = true)]
    pub momentum: Option<f64>,
    /// Momentum rising linearly from START to --momentum over the first
    /// UPDATES updates (sgd; an epoch is ceil(training images / batch size)
    /// updates), e.g. 0.5:125000; with :exponential, approaching --momentum
    /// with time constant UPDATES (deepnet's ramp), e.g. 0.5:100000:exponential
    #[arg(long, value_name = "START:UPDATES[:exponential]")]
    #[serde(default, deserialize_with = "text::option")]
    pub momentum_ramp: Option<MomentumRamp>,
    /// Dampen SGD's momentum: each gradient enters the velocity times
    /// 1 - that update's momentum (Hinton et al. 2012), so the step stays
    /// the size of a gradient step as the momentum rises
    #[arg(long)]
    #[serde(default)]
    pub dampened: bool,
    /// Examples per training step
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Sum the gradients of N batches into each optimizer step, each
    /// batch's loss divided by N (Lightning's accumulate_grad_batches): a
    /// step sees N x batch-size images; schedules count these steps
    #[arg(long, value_name = "N")]
    pub accumulate_grad_batches: Option<usize>,
    /// Passes over the training data
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Seed for initialization, shuffling and dropout
    #[arg(long)]
    pub seed: Option<u64>,
    /// Training images held out for validation (taken from the end of the training file)
    #[arg(long)]
    pub valid_size: Option<usize>,
    /// Use only the first N of the remaining training images
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Probability of dropping a hidden unit while training
    #[arg(long, allow_negative_numbers = true)]
    pub dropout: Option<f64>,
    /// Probability of dropping an input pixel while training
    #[arg(long, allow_negative_numbers = true)]
    pub input_dropout: Option<f64>,
    /// Alpha dropout after each hidden layer (for SELU nets; instead of --dropout)
    #[arg(long, allow_negative_numbers = true)]
    pub alpha_dropout: Option<f64>,
    /// Where dropout puts its 1 - p: inverted (kept units scaled up while
    /// training; the default) or lecture (no scaling in training, outputs
    /// times 1 - p at test time, the same as scaling the next weights) or
    /// unscaled (neither)
    #[arg(long, value_name = "inverted|lecture|unscaled")]
    #[serde(default, deserialize_with = "text::option")]
    pub dropout_form: Option<DropoutForm>,
    /// The form of --input-dropout alone, when it differs from
    /// --dropout-form: e.g. unscaled (no scaling in training nor at test
    /// time, pylearn2's input dropout in Goodfellow et al.'s Maxout nets)
    #[arg(long, value_name = "inverted|lecture|unscaled")]
    #[serde(default, deserialize_with = "text::option")]
    pub input_dropout_form: Option<DropoutForm>,
    /// How the final evaluation treats dropout: weight-scaling (one
    /// deterministic pass; the default) or monte-carlo:K (the average of K
    /// sampled thinned nets, K passes over every split)
    #[arg(long, value_name = "weight-scaling|monte-carlo:K")]
    #[serde(default, deserialize_with = "text::option")]
    pub dropout_inference: Option<DropoutInference>,
    /// Probability of dropping each hidden-layer weight while training (DropConnect)
    #[arg(long, allow_negative_numbers = true)]
    pub dropconnect: Option<f64>,
    /// L1 penalty strength: adds l1 * sum|w| to the loss (sparse weights)
    #[arg(long, allow_negative_numbers = true)]
    pub l1: Option<f64>,
    /// L2 penalty strength: adds l2/2 * sum w^2 to the loss (weights shrink by a factor each step)
    #[arg(long, allow_negative_numbers = true)]
    pub l2: Option<f64>,
    /// Group lasso strength: adds lambda * sum over units of |w_unit|_2 (switches whole units off)
    #[arg(long, value_name = "LAMBDA", allow_negative_numbers = true)]
    pub group_lasso: Option<f64>,
    /// A constraint after each step: max-norm:C, unit-norm[:N] or non-neg (repeatable);
    /// `@LAYERS` after it picks its own layers (max-norm:1.6@layers.0), else --regularize-layers'
    #[arg(long, value_name = "NAME[:ARG][@LAYERS]")]
    #[serde(default)]
    pub constraint: Vec<String>,
    /// Decoupled weight decay of AdamW (needs --optimizer adamw; not an L2 penalty)
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// Apply --l1/--l2 to biases too (weights only by default)
    #[arg(long)]
    #[serde(default)]
    pub regularize_bias: bool,
    /// Apply --l1/--l2/--max-norm only to these layers, e.g. layers.0,output
    #[arg(long, value_delimiter = ',')]
    pub regularize_layers: Option<Vec<String>>,
    /// Max-norm constraint: after each step, rescale each unit's incoming weights to norm <= C
    #[arg(long, value_name = "C", allow_negative_numbers = true)]
    pub max_norm: Option<f64>,
    /// Label smoothing of the training loss, in (0, 1): each target becomes 1 - A on its class plus A / classes on all
    #[arg(long, value_name = "A")]
    pub label_smoothing: Option<f32>,
    /// Clip gradients before each step: norm:MAX (global L2 norm over all
    /// parameters, as Lightning's and Keras' global_clipnorm) or value:MAX;
    /// history.csv then records the norm before clipping (mean, max)
    #[arg(long, value_name = "norm:MAX|value:MAX")]
    #[serde(default, deserialize_with = "text::option")]
    pub clip: Option<GradientClipping>,
    /// Learning-rate schedule (--lr is its peak): constant, step:EVERY:FACTOR,
    /// exponential:FACTOR, inverse-time:HALF_LIFE_EPOCHS,
    /// cosine[:WARMUP_EPOCHS[:MIN_LR]] or one-cycle
    #[arg(long, value_name = "SCHEDULE")]
    #[serde(default, deserialize_with = "text::option")]
    pub lr_schedule: Option<LrSchedule>,
    /// A learning rate of their own for some layers: FACTOR@LAYER[,LAYER...]
    /// multiplies the rate (under any schedule) for all their parameters
    /// (weights, biases, PReLU's slopes), 0 freezes them (repeatable; a
    /// later one wins where two pick a layer)
    #[arg(long, value_name = "FACTOR@LAYERS", allow_hyphen_values = true)]
    #[serde(default, deserialize_with = "text::list")]
    pub lr_scale: Option<Vec<LrScale>>,
    /// Lower the learning rate (the schedule's peak) when a metric stops
    /// improving, with Keras' ReduceLROnPlateau rules: KEY=VALUE pairs of
    /// monitor, mode, factor, patience, min_delta, cooldown, min_lr,
    /// reset_early_stopping; keys not given keep Keras' defaults (valid_loss,
    /// factor 0.1, patience 10, min_delta 1e-4, cooldown 0, min_lr 0);
    /// `keras`: all defaults
    #[arg(long, value_name = "KEY=VALUE,...")]
    #[serde(default, deserialize_with = "text::option")]
    pub reduce_lr_on_plateau: Option<ReduceLrOnPlateau>,
    /// Keep the weights of the best epochs in DIR/checkpoints/ (listed with
    /// their metrics in checkpoints.csv), as Lightning's save_top_k and
    /// save_last: KEY=VALUE pairs of top_k (1), monitor (valid_loss), mode,
    /// last (false); `best`: the best epoch by validation loss
    #[arg(long, value_name = "KEY=VALUE,...")]
    #[serde(default, deserialize_with = "text::option")]
    pub keep_checkpoints: Option<KeepCheckpoints>,
    /// Average the weights as they train: ema:DECAY (after every step,
    /// average = DECAY * average + (1 - DECAY) * weights) or swa:START (the
    /// mean of the end-of-epoch weights from epoch START on); history.csv
    /// records the average's validation loss and accuracy every epoch, and
    /// the average is saved as averaged.bpk (or as the model with --use-averaged)
    #[arg(long, value_name = "ema:DECAY|swa:START")]
    #[serde(default, deserialize_with = "text::option")]
    pub average_weights: Option<WeightAveraging>,
    /// Evaluate and save the averaged weights (--average-weights) as the model
    #[arg(long)]
    #[serde(default)]
    pub use_averaged: bool,
    /// Validate with the averaged weights (--average-weights) in place of the trained
    /// ones, as Lightning's WeightAveraging does: early stopping, the plateau rule and
    /// the kept checkpoints go by the average's figures, and the average is the model
    /// (with --restore-best, the best epoch's average)
    #[arg(long)]
    #[serde(default)]
    pub validate_averaged: bool,
    /// Validate one sampled thinned net per example (dropout's masks drawn, as in
    /// training) instead of the weight-scaled net: the validation loss is the dropout
    /// objective (pylearn2's monitor with a Dropout cost), and early stopping goes by it;
    /// summary.json stays the weight-scaled evaluation
    #[arg(long)]
    #[serde(default)]
    pub validate_thinned: bool,
    /// Record each weight's gradient norm per epoch (first step, mean) in layers.csv
    #[arg(long)]
    #[serde(default)]
    pub record_layers: bool,
    /// Stop when the monitored metric stops improving (any option below turns it on too)
    #[arg(long)]
    #[serde(default)]
    pub early_stopping: bool,
    /// Metric watched by early stopping: valid_loss (default), valid_accuracy, train_loss, train_accuracy
    #[arg(long)]
    #[serde(default, deserialize_with = "text::option")]
    pub monitor: Option<Metric>,
    /// min or max (default: inferred from the metric)
    #[arg(long)]
    #[serde(default, deserialize_with = "text::option")]
    pub mode: Option<Mode>,
    /// Epochs without improvement before stopping (default 5)
    #[arg(long)]
    pub patience: Option<usize>,
    /// A change smaller than this is not an improvement (default 0)
    #[arg(long, allow_negative_numbers = true)]
    pub min_delta: Option<f64>,
    /// Ignore the first N epochs (warm-up)
    #[arg(long)]
    pub start_from_epoch: Option<usize>,
    /// Stop if the metric has not beaten this value within --patience epochs
    #[arg(long, allow_negative_numbers = true)]
    pub baseline: Option<f64>,
    /// Keep, save and evaluate the best epoch's weights instead of the last
    #[arg(long)]
    #[serde(default)]
    pub restore_best: bool,
    /// Stop at once when the metric gets worse than this
    #[arg(long, allow_negative_numbers = true)]
    pub divergence_threshold: Option<f64>,
    /// Stop at once when the metric gets at least this good
    #[arg(long, allow_negative_numbers = true)]
    pub stopping_threshold: Option<f64>,
    /// Standardize pixels with the training split's mean and std (default: scale to [0, 1])
    #[arg(long)]
    #[serde(default)]
    pub standardize: bool,
    /// Output folder for config.json, history.csv, summary.json and the weights
    /// (default: a new runs/train-<time>); one that holds a run is refused
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the run in the --out folder (its config.json, history.csv,
    /// summary.json, weights and checkpoints; other files stay)
    #[arg(long)]
    #[serde(default)]
    pub overwrite: bool,
    /// TOML file with any of these settings
    #[arg(long, value_name = "FILE.toml")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

macro_rules! prefer_flags {
    ($flags:expr, $file:expr, [$($field:ident),* $(,)?]) => {
        $( if $flags.$field.is_none() { $flags.$field = $file.$field.take(); } )*
    };
}

impl TrainArgs {
    /// Reads a TOML file of settings; unknown keys are errors naming the key.
    pub fn from_toml_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }

    /// These flags, completed by the `--config` file when there is one.
    pub fn merged(mut self) -> Result<Self> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let mut file = Self::from_toml_file(&path)?;
        prefer_flags!(
            self,
            file,
            [
                dataset,
                data_dir,
                data_csv,
                label,
                test_csv,
                device,
                devices,
                read_metrics_every,
                label_smoothing,
                clip,
                lr_schedule,
                lr_scale,
                reduce_lr_on_plateau,
                keep_checkpoints,
                average_weights,
                hidden,
                activation,
                pieces,
                init,
                optimizer,
                lr,
                momentum,
                momentum_ramp,
                batch_size,
                accumulate_grad_batches,
                epochs,
                seed,
                valid_size,
                train_limit,
                dropout,
                input_dropout,
                alpha_dropout,
                dropout_form,
                input_dropout_form,
                dropout_inference,
                dropconnect,
                l1,
                l2,
                weight_decay,
                regularize_layers,
                max_norm,
                monitor,
                mode,
                patience,
                min_delta,
                start_from_epoch,
                baseline,
                divergence_threshold,
                stopping_threshold,
                out
            ]
        );
        if self.constraint.is_empty() {
            self.constraint = std::mem::take(&mut file.constraint);
        }
        self.standardize |= file.standardize;
        self.dampened |= file.dampened;
        self.overwrite |= file.overwrite;
        self.record_layers |= file.record_layers;
        self.use_averaged |= file.use_averaged;
        self.validate_averaged |= file.validate_averaged;
        self.validate_thinned |= file.validate_thinned;
        self.regularize_bias |= file.regularize_bias;
        self.early_stopping |= file.early_stopping;
        self.restore_best |= file.restore_best;
        Ok(self)
    }

    /// Early stopping, when `--early-stopping` or any of its options is given.
    fn early_stopping_config(&self) -> Result<Option<EarlyStoppingConfig>> {
        let wanted = self.early_stopping
            || self.restore_best
            || self.monitor.is_some()
            || self.mode.is_some()
            || self.patience.is_some()
            || self.min_delta.is_some()
            || self.start_from_epoch.is_some()
            || self.baseline.is_some()
            || self.divergence_threshold.is_some()
            || self.stopping_threshold.is_some();
        if !wanted {
            return Ok(None);
        }
        let defaults = EarlyStoppingConfig::default();
        Ok(Some(EarlyStoppingConfig {
            monitor: self.monitor.clone().unwrap_or(defaults.monitor),
            mode: self.mode,
            min_delta: self.min_delta.unwrap_or(defaults.min_delta),
            patience: self.patience.unwrap_or(defaults.patience),
            start_from_epoch: self.start_from_epoch.unwrap_or(defaults.start_from_epoch),
            baseline: self.baseline,
            restore_best_weights: self.restore_best,
            divergence_threshold: self.divergence_threshold,
            stopping_threshold: self.stopping_threshold,
        }))
    }

    /// `--out`, or a new `runs/<command>-<seconds since 1970>`.
    pub fn out_or(&self, command: &str) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            format!("runs/{command}-{seconds}").into()
        })
    }

    /// The device name, `cpu` by default.
    pub fn device_name(&self) -> &str {
        match &self.devices {
            Some(devices) if !devices.is_empty() => &devices[0],
            _ => self.device.as_deref().unwrap_or("cpu"),
        }
    }

    /// Steps between metric reads (`--read-metrics-every`, else recipe's default).
    pub fn read_metrics_every(&self) -> usize {
        self.read_metrics_every
            .unwrap_or(recipe::train::READ_METRICS_EVERY)
    }

    /// The data-parallel devices' names (`--devices`), none without it.
    pub fn device_names(&self) -> &[String] {
        self.devices.as_deref().unwrap_or_default()
    }

    /// The data these settings name, with the input size and class count
    /// an MLP needs (read from the table for a CSV file).
    fn data_source(&self) -> Result<(DataSource, usize, usize)> {
        if let Some(path) = &self.data_csv {
            if self.dataset.is_some() || self.data_dir.is_some() {
                bail!("--data-csv names the data: give no --dataset or --data-dir with it");
            }
            let Some(label) = &self.label else {
                bail!("--data-csv needs --label COLUMN (the column that holds the classes)");
            };
            let mut source = CsvSource::new(path, label);
            source.test_path = self.test_csv.clone();
            let info = source.load()?.info;
            let features = info.input_shape.iter().product();
            return Ok((source.into(), features, info.classes));
        }
        let kind = self.dataset.unwrap_or_default();
        Ok((kind.into(), kind.pixels(), kind.classes()))
    }

    /// How the network is fitted: the library's defaults
    /// ([`FitConfig::with_optimizer`], the optimizer's own default learning
    /// rate) where no option is given.
    fn fit_config(&self) -> Result<FitConfig> {
        let mut optimizer = self.optimizer.clone().unwrap_or_default();
        if let Some(momentum) = self.momentum {
            optimizer = optimizer.with_momentum(momentum)?;
        }
        if let Some(ramp) = self.momentum_ramp {
            optimizer = optimizer.with_momentum_ramp(ramp)?;
        }
        if self.dampened {
            optimizer = optimizer.with_dampening()?;
        }
        if let Some(decay) = self.weight_decay {
            optimizer = optimizer.with_weight_decay(decay)?;
        }
        let mut config = FitConfig::with_optimizer(optimizer);
        config.regularizer = Regularizer::from_strengths(self.l1, self.l2)?;
        config.label_smoothing = self.label_smoothing;
        config.gradient_clipping = self.clip;
        config.record_layer_gradients = self.record_layers;
        config.lr_schedule = self.lr_schedule.clone().unwrap_or_default();
        config.lr_scales = self.lr_scale.clone().unwrap_or_default();
        config.reduce_lr_on_plateau = self.reduce_lr_on_plateau.clone();
        config.keep_checkpoints = self.keep_checkpoints.clone();
        config.weight_averaging = self.average_weights;
        config.use_averaged_weights = self.use_averaged;
        config.validate_with_average = self.validate_averaged;
        config.validate_thinned = self.validate_thinned;
        config.dropout_inference = self.dropout_inference.unwrap_or_default();
        config.devices = self.device_names().len().max(1);
        let layers = self.regularize_layers.clone().unwrap_or_default();
        let selector = if self.regularize_bias {
            ParamSelector::weights_and_biases(layers)
        } else {
            ParamSelector::weights(layers)
        };
        config.regularize = selector.clone();
        if let Some(lambda) = self.group_lasso {
            config.penalties.push(WeightPenalty::new(
                GroupLasso::new(lambda)?,
                selector.clone(),
            ));
        }
        for text in &self.constraint {
            let (constraint, layers) = constraint_and_layers(text)?;
            let selector = match layers {
                Some(layers) => ParamSelector {
                    layers,
                    ..selector.clone()
                },
                None => selector.clone(),
            };
            config
                .constraints
                .push(WeightConstraint::parse(constraint, selector)?);
        }
        if let Some(max_norm) = self.max_norm {
            let mut max_norm = MaxNormConfig::new(max_norm)?;
            max_norm.selector.layers = selector.layers;
            config.max_norm = Some(max_norm);
        }
        config.early_stopping = self.early_stopping_config()?;
        macro_rules! set {
            ($($flag:ident => $field:ident),* $(,)?) => {
                $( if let Some(value) = self.$flag { config.$field = value; } )*
            };
        }
        set!(
            lr => learning_rate,
            batch_size => batch_size,
            accumulate_grad_batches => accumulate_grad_batches,
            epochs => epochs,
            seed => seed,
        );
        Ok(config)
    }

    /// The training configuration these settings describe.
    pub fn to_config(&self) -> Result<TrainConfig> {
        let (dataset, features, classes) = self.data_source()?;
        let hidden = self.hidden.clone().unwrap_or_else(|| vec![500, 500, 500]);
        let mut activations = self
            .activation
            .clone()
            .unwrap_or_else(|| vec![ActivationConfig::relu()]);
        if let Some(pieces) = self.pieces {
            let mut applied = false;
            for activation in &mut activations {
                if activation.spec_name() == "maxout" {
                    *activation = ActivationConfig::maxout(pieces);
                    applied = true;
                }
            }
            if !applied {
                bail!("--pieces {pieces} needs --activation maxout");
            }
        }
        let mut model = MlpConfig::new(features, hidden, classes)
            .with_activation(activations)
            .with_dropout(self.dropout.unwrap_or(0.0))
            .with_input_dropout(self.input_dropout.unwrap_or(0.0))
            .with_alpha_dropout(self.alpha_dropout.unwrap_or(0.0))
            .with_dropconnect(self.dropconnect.unwrap_or(0.0))
            .with_dropout_form(self.dropout_form.unwrap_or_default())
            .with_input_dropout_form(self.input_dropout_form);
        if let Some(init) = self.init {
            model = model.with_initializer(init);
        }
        let mut data = DataConfig::new(dataset);
        data.data_dir = self.data_dir.clone();
        data.standardize = self.standardize;
        if let Some(valid_size) = self.valid_size {
            data.split.valid_size = valid_size;
        }
        data.split.train_limit = self.train_limit;
        let config = TrainConfig {
            data,
            network: model.into(),
            fit: self.fit_config()?,
        };
        config.validate()?;
        Ok(config)
    }
}

/// `--constraint`'s text split at its last `@`: the constraint, and the
/// layers it alone applies to (`max-norm:1.6@layers.0,layers.1`), if any.
fn constraint_and_layers(text: &str) -> Result<(&str, Option<Vec<String>>)> {
    let Some((constraint, layers)) = text.rsplit_once('@') else {
        return Ok((text, None));
    };
    let layers = ParamSelector::layers_from_text(layers);
    if layers.is_empty() {
        bail!("--constraint {text}: name the layers after `@` (e.g. max-norm:1.6@layers.0)");
    }
    Ok((constraint, Some(layers)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--dampened` (or `dampened = true` in the file) dampens SGD's
    /// momentum; with Adam it is an error that names it.
    #[test]
    fn dampened_goes_on_sgd_only() {
        let args = TrainArgs {
            momentum: Some(0.9),
            dampened: true,
            ..TrainArgs::default()
        };
        let optimizer = args.to_config().unwrap().fit.optimizer;
        assert!(
            matches!(optimizer, OptimizerConfig::Sgd { dampened: true, momentum, .. } if momentum == 0.9),
            "{optimizer:?}"
        );
        let adam = TrainArgs {
            optimizer: Some(OptimizerConfig::adam()),
            dampened: true,
            ..TrainArgs::default()
        };
        let error = format!("{:#}", adam.to_config().unwrap_err());
        assert!(error.contains("dampened"), "{error}");
    }

    /// `@LAYERS` gives one constraint its own layers; without it the
    /// constraint takes --regularize-layers'; an empty list is an error.
    #[test]
    fn a_constraint_can_pick_its_own_layers() {
        let args = TrainArgs {
            constraint: vec![
                "max-norm:1.6@layers.0".into(),
                "max-norm:1@layers.1, output".into(),
                "non-neg".into(),
            ],
            regularize_layers: Some(vec!["layers.2".into()]),
            ..TrainArgs::default()
        };
        let constraints = args.to_config().unwrap().fit.constraints;
        let layers: Vec<Vec<String>> = constraints
            .iter()
            .map(|c| c.selector.layers.clone())
            .collect();
        assert_eq!(
            layers,
            [
                vec!["layers.0"],
                vec!["layers.1", "output"],
                vec!["layers.2"]
            ]
        );
        let empty = TrainArgs {
            constraint: vec!["max-norm:1@ ,".into()],
            ..TrainArgs::default()
        };
        let error = format!("{:#}", empty.to_config().unwrap_err());
        assert!(error.contains("name the layers after `@`"), "{error}");
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = std::env::temp_dir().join(format!("recipe-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("run.toml");
        std::fs::write(
            &path,
            "epochs = 3\nlr = 0.05\nhidden = [100, 50]\nactivation = [\"maxout\"]\npieces = 3\n\
             reduce-lr-on-plateau = \"factor=0.5,patience=2\"\n\
             average-weights = \"ema:0.99\"\nuse-averaged = true\nvalidate-averaged = true\n\
             validate-thinned = true\naccumulate-grad-batches = 4\n\
             constraint = [\"max-norm:2@layers.0\"]\nlr-scale = [\"0.5@layers.0,layers.1\", \"0@output\"]\n",
        )
        .unwrap();
        let args = TrainArgs {
            epochs: Some(7),
            config: Some(path.clone()),
            ..TrainArgs::default()
        };
        let config = args.merged().unwrap().to_config().unwrap();
        assert_eq!(config.fit.epochs, 7);
        assert_eq!(config.fit.learning_rate, 0.05);
        assert_eq!(config.mlp().unwrap().hidden, vec![100, 50]);
        assert_eq!(
            config.mlp().unwrap().activation,
            vec![ActivationConfig::maxout(3)]
        );
        let plateau = config.fit.reduce_lr_on_plateau.unwrap();
        assert_eq!((plateau.factor, plateau.patience), (0.5, 2));
        assert_eq!(
            config.fit.weight_averaging,
            Some(WeightAveraging::Ema { decay: 0.99 })
        );
        assert!(config.fit.use_averaged_weights);
        assert!(config.fit.validate_with_average);
        assert!(config.fit.validate_thinned);
        assert_eq!(config.fit.accumulate_grad_batches, 4);
        assert_eq!(config.fit.constraints.len(), 1, "the file's constraints");
        let scales: Vec<String> = config.fit.lr_scales.iter().map(|s| s.to_string()).collect();
        assert_eq!(scales, ["0.5@layers.0,layers.1", "0@output"]);
        // Flags given replace the file's lists rather than join them.
        let flagged = TrainArgs {
            constraint: vec!["non-neg".into()],
            lr_scale: Some(vec!["2@layers.1".parse().unwrap()]),
            config: Some(path.clone()),
            ..TrainArgs::default()
        };
        let config = flagged.merged().unwrap().to_config().unwrap();
        assert_eq!(config.fit.constraints[0].constraint.name(), "non-neg");
        assert_eq!(config.fit.constraints.len(), 1);
        assert_eq!(config.fit.lr_scales.len(), 1);

        std::fs::write(&path, "epoch = 3\n").unwrap();
        let err = TrainArgs::from_toml_file(&path).unwrap_err();
        assert!(
            format!("{err:#}").contains("unknown field `epoch`"),
            "{err:#}"
        );
        // Words in the file go through the flags' own parsers.
        for (text, word) in [
            ("activation = [\"relux\"]\n", "relux"),
            ("optimizer = \"adamm\"\n", "adamm"),
            ("monitor = \"test_loss\"\n", "test_loss"),
            ("reduce-lr-on-plateau = \"factr=0.5\"\n", "factr"),
            ("average-weights = \"sma:3\"\n", "sma:3"),
            ("lr-scale = [\"half@layers.0\"]\n", "half@layers.0"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = format!("{:#}", TrainArgs::from_toml_file(&path).unwrap_err());
            assert!(err.contains(word) && err.contains("run.toml"), "{err}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn overfitting_remedies_reach_the_config() {
        let args = TrainArgs {
            l1: Some(1e-5),
            l2: Some(1e-4),
            regularize_bias: true,
            max_norm: Some(3.0),
            patience: Some(3),
            restore_best: true,
            dropconnect: Some(0.2),
            ..TrainArgs::default()
        };
        let config = args.to_config().unwrap();
        assert_eq!(
            config.fit.regularizer,
            Some(Regularizer::L1L2 { l1: 1e-5, l2: 1e-4 })
        );
        assert!(config.fit.regularize.include_bias);
        assert_eq!(config.fit.max_norm.as_ref().unwrap().max_norm, 3.0);
        let early = config.fit.early_stopping.clone().unwrap();
        assert_eq!((early.patience, early.restore_best_weights), (3, true));
        assert_eq!(early.monitor, Metric::ValidLoss);
        assert_eq!(config.mlp().unwrap().dropconnect, 0.2);
        assert!(
            TrainArgs::default()
                .to_config()
                .unwrap()
                .fit
                .early_stopping
                .is_none()
        );
    }

    #[test]
    fn impossible_values_name_the_option() {
        let cases = [
            (
                TrainArgs {
                    lr: Some(-1.0),
                    ..Default::default()
                },
                "learning_rate",
            ),
            (
                TrainArgs {
                    dropout: Some(1.0),
                    ..Default::default()
                },
                "dropout",
            ),
            (
                TrainArgs {
                    hidden: Some(vec![]),
                    ..Default::default()
                },
                "hidden",
            ),
            (
                TrainArgs {
                    batch_size: Some(0),
                    ..Default::default()
                },
                "batch_size",
            ),
            (
                TrainArgs {
                    pieces: Some(3),
                    ..Default::default()
                },
                "--pieces",
            ),
        ];
        for (args, name) in cases {
            let err = format!("{:#}", args.to_config().unwrap_err());
            assert!(err.contains(name), "{err} should name {name}");
        }
    }
}
