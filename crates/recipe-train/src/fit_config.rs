//! How a network is fitted: the part of a run's settings that any network on
//! any data uses.

use serde::{Deserialize, Serialize};

use crate::{
    DropoutInference, EarlyStoppingConfig, GradientClipping, KeepCheckpoints, LrScale, LrSchedule,
    MaxNormConfig, Metric, Mode, OptimizerConfig, ParamSelector, ReduceLrOnPlateau, Regularizer,
    StepHooks, TrainError, WeightAveraging, WeightConstraint, WeightPenalty,
};

/// How a network is fitted: optimizer, batches, epochs, seed, penalties,
/// constraints and early stopping. [`train`](crate::train) takes only this
/// from a [`TrainConfig`](crate::TrainConfig); the data and the network say
/// the rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitConfig {
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// Learning rate (constant).
    pub learning_rate: f64,
    /// Examples per training step.
    pub batch_size: usize,
    /// Examples per batch when evaluating.
    pub eval_batch_size: usize,
    /// Passes over the training data.
    pub epochs: usize,
    /// Seed for initialization, shuffling and dropout.
    pub seed: u64,
    /// A penalty added to the loss (L1, L2 or both).
    #[serde(default)]
    pub regularizer: Option<Regularizer>,
    /// Which parameters the penalty applies to (weights only by default).
    #[serde(default)]
    pub regularize: ParamSelector,
    /// A max-norm constraint applied after every optimizer step.
    #[serde(default)]
    pub max_norm: Option<MaxNormConfig>,
    /// More penalties (built-in or registered ones of your own), each with
    /// the parameters it applies to, added to the loss besides `regularizer`.
    #[serde(default)]
    pub penalties: Vec<WeightPenalty>,
    /// More constraints (built-in or registered ones of your own), applied
    /// in order after every optimizer step, after `max_norm`.
    #[serde(default)]
    pub constraints: Vec<WeightConstraint>,
    /// When to stop before the epoch budget.
    #[serde(default)]
    pub early_stopping: Option<EarlyStoppingConfig>,
    /// Label smoothing of the training cross-entropy: each target becomes
    /// `1 - a` on its class plus `a / classes` everywhere (Szegedy et al.
    /// 2016). Validation and test report the network's own loss, unsmoothed,
    /// so that runs with and without it compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_smoothing: Option<f32>,
    /// Gradient clipping before each optimizer step (global norm or value);
    /// the global norm before clipping is then recorded per epoch (mean
    /// and max) in `history.csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gradient_clipping: Option<GradientClipping>,
    /// Record each weight's gradient norm per epoch (at the first step, and
    /// the mean over the steps) into `layers.csv` and
    /// [`TrainedModel::layer_gradients`](crate::TrainedModel::layer_gradients).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub record_layer_gradients: bool,
    /// How the learning rate changes over the run (`learning_rate` is its
    /// peak); `history.csv` records the rate of each epoch's first step.
    #[serde(default, skip_serializing_if = "LrSchedule::is_constant")]
    pub lr_schedule: LrSchedule,
    /// Learning rates of their own for some parameters: the rate (under the
    /// schedule and any plateau rule) times each scale's factor for the
    /// parameters it picks, a later scale overriding an earlier one.
    /// `history.csv`'s `learning_rate` is the unscaled rate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lr_scales: Vec<LrScale>,
    /// Lower the learning rate (or the schedule's peak) when a metric stops
    /// improving, with Keras' `ReduceLROnPlateau` rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce_lr_on_plateau: Option<ReduceLrOnPlateau>,
    /// Keep the weights of the best epochs (and the last) in `checkpoints/`
    /// when the run ends, listed in `checkpoints/checkpoints.csv`; needs an
    /// output folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_checkpoints: Option<KeepCheckpoints>,
    /// Average the weights as they train (EMA or SWA); the average's
    /// validation figures are recorded every epoch in `history.csv`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_averaging: Option<WeightAveraging>,
    /// Evaluate and save the averaged weights as the run's model (else they
    /// are saved beside it as `averaged.bpk`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub use_averaged_weights: bool,
    /// Validate with the averaged weights in place of the trained ones
    /// (Lightning's `WeightAveraging`, Keras' `SwapEMAWeights`): the
    /// validation figures, and so early stopping, the plateau rule and the
    /// choice of checkpoints, are the average's, and the average is the
    /// run's model (with `restore_best_weights`, the best epoch's average).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validate_with_average: bool,
    /// Validate one sampled thinned net per example (dropout's masks drawn,
    /// as in training) instead of the weight-scaled net: the validation
    /// loss is then the dropout objective, what pylearn2's monitor reports
    /// for a `Dropout` cost, and early stopping, the plateau rule and the
    /// kept checkpoints go by it. The final evaluation (`summary.json`)
    /// stays the weight-scaled pass ([`FitConfig::dropout_inference`]), and
    /// so do a weight average's figures recorded beside the trained
    /// weights' (without `validate_with_average`).
    /// The data's inputs must enable autodiff
    /// ([`BatchInputs::with_autodiff`](recipe_data::BatchInputs::with_autodiff)).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub validate_thinned: bool,
    /// How the final evaluation treats dropout: the weight-scaled pass, or
    /// the average of K sampled thinned nets (K passes over every split).
    #[serde(default, skip_serializing_if = "DropoutInference::is_weight_scaling")]
    pub dropout_inference: DropoutInference,
    /// Devices the training is split over (data parallel, Burn's
    /// multi-device strategy): each takes its own batches of `batch_size`
    /// from its share of the training split, and one optimizer step uses
    /// the mean of their gradients, so it sees `devices * batch_size`
    /// examples at `learning_rate`. The devices themselves are given at run
    /// time ([`TrainOptions::devices`](crate::TrainOptions::devices)).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub devices: usize,
    /// Batches whose gradients one optimizer step takes together
    /// (Lightning's `accumulate_grad_batches`): each batch's loss is divided
    /// by this count before `backward` and Burn sums the gradients, so a
    /// step applies the mean gradient of `accumulate_grad_batches *
    /// batch_size` examples (on each device) at `learning_rate`. An epoch's
    /// last step takes the batches left, each still divided by the count,
    /// as in Lightning. Learning-rate schedules count optimizer steps
    /// ([`FitConfig::updates_per_epoch`]).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub accumulate_grad_batches: usize,
}

fn one() -> usize {
    1
}

fn is_one(count: &usize) -> bool {
    *count == 1
}

impl Default for FitConfig {
    /// recipe's defaults: SGD at learning rate 0.1, batch 100 (1000 when
    /// evaluating), 5 epochs, seed 42, no penalty, constraint or early
    /// stopping.
    fn default() -> Self {
        let optimizer = OptimizerConfig::default();
        Self {
            learning_rate: optimizer.default_learning_rate(),
            optimizer,
            batch_size: 100,
            eval_batch_size: 1000,
            epochs: 5,
            seed: 42,
            regularizer: None,
            regularize: ParamSelector::default(),
            max_norm: None,
            penalties: Vec::new(),
            constraints: Vec::new(),
            early_stopping: None,
            label_smoothing: None,
            gradient_clipping: None,
            record_layer_gradients: false,
            lr_schedule: LrSchedule::Constant,
            lr_scales: Vec::new(),
            reduce_lr_on_plateau: None,
            keep_checkpoints: None,
            weight_averaging: None,
            use_averaged_weights: false,
            validate_with_average: false,
            validate_thinned: false,
            dropout_inference: DropoutInference::WeightScaling,
            devices: 1,
            accumulate_grad_batches: 1,
        }
    }
}

impl FitConfig {
    /// Whether the averaged weights, not the trained ones, are the run's
    /// model (`use_averaged_weights`, or `validate_with_average`).
    pub fn average_is_model(&self) -> bool {
        self.weight_averaging.is_some() && (self.use_averaged_weights || self.validate_with_average)
    }

    /// `optimizer` at its own default learning rate
    /// ([`OptimizerConfig::default_learning_rate`]), everything else as
    /// [`FitConfig::default`].
    pub fn with_optimizer(optimizer: OptimizerConfig) -> Self {
        Self {
            learning_rate: optimizer.default_learning_rate(),
            optimizer,
            ..Self::default()
        }
    }

    /// The step hooks this config asks for: `regularizer` then `penalties`;
    /// `max_norm` then `constraints`.
    pub fn step_hooks(&self) -> StepHooks {
        let mut penalties = Vec::new();
        if let Some(regularizer) = self.regularizer {
            penalties.push(WeightPenalty::new(regularizer, self.regularize.clone()));
        }
        penalties.extend(self.penalties.iter().cloned());
        let mut constraints: Vec<WeightConstraint> = self
            .max_norm
            .iter()
            .map(MaxNormConfig::constraint)
            .collect();
        constraints.extend(self.constraints.iter().cloned());
        StepHooks {
            label_smoothing: self.label_smoothing,
            gradient_clipping: self.gradient_clipping,
            validate_thinned: self.validate_thinned,
            ..StepHooks::new(penalties, constraints)
        }
    }

    /// Fails, naming the field, when a penalty, constraint or learning-rate
    /// scale selects no parameter of `net` or a constraint cannot apply to
    /// one it selects.
    pub fn check_hooks<M: burn::module::Module>(&self, net: &M) -> Result<(), TrainError> {
        if let Some(regularizer) = self.regularizer {
            WeightPenalty::new(regularizer, self.regularize.clone()).check(net, "regularize")?;
        }
        for (index, penalty) in self.penalties.iter().enumerate() {
            penalty.check(net, &format!("penalties[{index}]"))?;
        }
        if let Some(max_norm) = &self.max_norm {
            max_norm.constraint().check(net, "max_norm")?;
        }
        for (index, constraint) in self.constraints.iter().enumerate() {
            constraint.check(net, &format!("constraints[{index}]"))?;
        }
        for (index, scale) in self.lr_scales.iter().enumerate() {
            scale
                .selector
                .selected(net, &format!("lr_scales[{index}]"))?;
        }
        Ok(())
    }

    /// The monitored metrics (early stopping's, the plateau rule's, the
    /// kept checkpoints'), each with its owner's name and its mode.
    pub(crate) fn monitors_mut(&mut self) -> Vec<(&'static str, &Metric, &mut Option<Mode>)> {
        [
            self.early_stopping
                .as_mut()
                .map(|c| ("early_stopping", &c.monitor, &mut c.mode)),
            self.reduce_lr_on_plateau
                .as_mut()
                .map(|c| ("reduce_lr_on_plateau", &c.monitor, &mut c.mode)),
            self.keep_checkpoints
                .as_mut()
                .map(|c| ("keep_checkpoints", &c.monitor, &mut c.mode)),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The batches each device takes in an epoch over `train_items`
    /// examples, as Burn's multi-device strategy shares them out: a
    /// contiguous share per device, the last one taking the remainder (the
    /// largest share, so the most batches).
    pub fn batches_per_epoch(&self, train_items: usize) -> usize {
        let devices = self.devices.max(1);
        let largest_share = train_items - (devices - 1) * (train_items / devices);
        largest_share.div_ceil(self.batch_size.max(1))
    }

    /// The optimizer steps in an epoch over `train_items` examples: Burn
    /// steps after every `accumulate_grad_batches` rounds of one batch per
    /// device, and after the epoch's last round. Learning-rate schedules
    /// and the learning rate recorded per epoch count in these steps.
    pub fn updates_per_epoch(&self, train_items: usize) -> usize {
        self.batches_per_epoch(train_items)
            .div_ceil(self.accumulate_grad_batches.max(1))
    }

    /// Refuses an `accumulate_grad_batches` above the batches of an epoch
    /// over `train_items` examples, where every step would take fewer
    /// batches than asked, each still divided by the count.
    pub fn check_accumulation(&self, train_items: usize) -> Result<(), TrainError> {
        let batches = self.batches_per_epoch(train_items);
        if self.accumulate_grad_batches > batches {
            return Err(TrainError::invalid(
                "accumulate_grad_batches",
                format!(
                    "at most {batches}, the batches each device takes in an epoch \
                     ({train_items} training examples in batches of {} on {} device(s))",
                    self.batch_size, self.devices
                ),
                self.accumulate_grad_batches,
            ));
        }
        Ok(())
    }

    /// Checks every setting, naming the first impossible one.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.validate_rate_and_counts()?;
        self.optimizer.validate()?;
        self.validate_parts()?;
        self.validate_averaging()?;
        if let Some(plateau) = &self.reduce_lr_on_plateau {
            plateau.validate(self.learning_rate)?;
            if plateau.reset_early_stopping && self.early_stopping.is_none() {
                return Err(TrainError::invalid(
                    "reduce_lr_on_plateau.reset_early_stopping",
                    "false in a run without early stopping (there is no patience to reset)",
                    true,
                ));
            }
        }
        if let Some(early_stopping) = &self.early_stopping {
            early_stopping.validate()?;
        }
        if let Some(regularizer) = self.regularizer {
            let (l1, l2) = match regularizer {
                Regularizer::L1 { lambda } => (Some(lambda), None),
                Regularizer::L2 { lambda } => (None, Some(lambda)),
                Regularizer::L1L2 { l1, l2 } => (Some(l1), Some(l2)),
            };
            Regularizer::from_strengths(l1, l2)?;
        }
        Ok(())
    }

    /// The learning rate is a finite positive number and every count at
    /// least 1.
    fn validate_rate_and_counts(&self) -> Result<(), TrainError> {
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(TrainError::invalid(
                "learning_rate",
                "a finite number > 0",
                self.learning_rate,
            ));
        }
        for (field, value) in [
            ("devices", self.devices),
            ("accumulate_grad_batches", self.accumulate_grad_batches),
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("epochs", self.epochs),
        ] {
            if value == 0 {
                return Err(TrainError::invalid(field, "at least 1", 0));
            }
        }
        Ok(())
    }

    /// Each optional part checks its own settings.
    fn validate_parts(&self) -> Result<(), TrainError> {
        if let Some(alpha) = self.label_smoothing
            && !(alpha > 0.0 && alpha < 1.0)
        {
            return Err(TrainError::invalid(
                "label_smoothing",
                "a share strictly between 0 and 1",
                alpha,
            ));
        }
        if let Some(max_norm) = &self.max_norm {
            max_norm.validate()?;
        }
        if let Some(clipping) = &self.gradient_clipping {
            clipping.validate()?;
        }
        self.lr_schedule.validate(self.learning_rate, self.epochs)?;
        for scale in &self.lr_scales {
            scale.validate()?;
        }
        if let Some(keep) = &self.keep_checkpoints {
            keep.validate()?;
        }
        if let Some(averaging) = &self.weight_averaging {
            averaging.validate(self.epochs)?;
        }
        self.dropout_inference.validate()
    }

    /// The weight average's switches need an average, and agree with the
    /// kept checkpoints and with restoring the best epoch.
    fn validate_averaging(&self) -> Result<(), TrainError> {
        for (field, set) in [
            ("use_averaged_weights", self.use_averaged_weights),
            ("validate_with_average", self.validate_with_average),
        ] {
            if set && self.weight_averaging.is_none() {
                return Err(TrainError::invalid(
                    field,
                    "false in a run without weight_averaging (there is no average to use)",
                    true,
                ));
            }
        }
        if self.validate_with_average && self.keep_checkpoints.is_some() {
            return Err(TrainError::invalid(
                "keep_checkpoints",
                "none with validate_with_average (the kept checkpoints would hold the trained \
                 weights, chosen by the average's figures; restore_best_weights keeps the best \
                 epoch's average)",
                self.keep_checkpoints
                    .as_ref()
                    .map_or(String::new(), ToString::to_string),
            ));
        }
        let restore_best = self
            .early_stopping
            .as_ref()
            .is_some_and(|e| e.restore_best_weights);
        if self.use_averaged_weights && !self.validate_with_average && restore_best {
            return Err(TrainError::invalid(
                "use_averaged_weights",
                "false with early_stopping.restore_best_weights (the model is either the \
                 best epoch's weights or the average, not both), unless \
                 validate_with_average chooses the best epoch by the average",
                true,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fit(batch_size: usize, devices: usize, accumulate_grad_batches: usize) -> FitConfig {
        FitConfig {
            batch_size,
            devices,
            accumulate_grad_batches,
            ..FitConfig::default()
        }
    }

    /// Worked by hand from Burn's `split_dataloader` (shares of
    /// floor(n / K), the last one the remainder) and its epoch loops (a
    /// step after every N rounds and after the last).
    #[test]
    fn updates_per_epoch_count_burns_optimizer_steps() {
        // MNIST's 50,000 in batches of 100: 500 batches.
        assert_eq!(fit(100, 1, 1).updates_per_epoch(50_000), 500);
        // Accumulating 3: steps after batches 3, 6, ..., 498 and 500.
        assert_eq!(fit(100, 1, 3).updates_per_epoch(50_000), 167);
        // Two devices of 25,000 each: 250 rounds.
        assert_eq!(fit(100, 2, 1).updates_per_epoch(50_000), 250);
        // Three devices: 33,333 + 33,333 + 33,334; the last takes 334
        // batches, so 334 rounds, 84 steps of 4.
        assert_eq!(fit(100, 3, 1).batches_per_epoch(100_000), 334);
        assert_eq!(fit(100, 3, 4).updates_per_epoch(100_000), 84);
    }

    #[test]
    fn accumulating_more_batches_than_an_epoch_has_is_refused() {
        assert!(fit(50, 1, 2).check_accumulation(100).is_ok());
        let error = fit(50, 1, 3)
            .check_accumulation(100)
            .unwrap_err()
            .to_string();
        assert!(error.contains("`accumulate_grad_batches`"), "{error}");
        assert!(error.contains("at most 2, the batches"), "{error}");
        // Two devices halve the batches each device takes.
        let error = fit(50, 2, 2)
            .check_accumulation(100)
            .unwrap_err()
            .to_string();
        assert!(error.contains("at most 1, the batches"), "{error}");
    }
}
