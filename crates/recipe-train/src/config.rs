//! Everything a training run needs, saved as `config.json`.

use std::path::PathBuf;

use recipe_data::{DataSource, DatasetKind, SplitConfig};
use recipe_models::MlpConfig;
use serde::{Deserialize, Serialize};

use crate::{
    EarlyStoppingConfig, MaxNormConfig, OptimizerConfig, ParamSelector, Regularizer, StepHooks,
    TrainError, WeightConstraint, WeightPenalty,
};

/// The settings of one training run. Saved next to its results as
/// `config.json`, which is enough to run it again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Which data: an image set by name (`"mnist"`) or a CSV table.
    pub dataset: DataSource,
    /// Where an image set's files are; `None` searches the default places.
    pub data_dir: Option<PathBuf>,
    /// How an image set's training file is split into training and
    /// validation data (a CSV table says its own split).
    pub split: SplitConfig,
    /// Standardize an image set's pixels with the training split's mean and
    /// std instead of scaling to [0, 1] (a CSV table says its own).
    pub standardize: bool,
    /// The network.
    pub model: MlpConfig,
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
}

impl burn::config::Config for TrainConfig {}

impl TrainConfig {
    /// A run of `model` on MNIST with recipe's defaults: SGD, learning rate
    /// 0.1, batch 100, 5 epochs, seed 42, the last 10,000 training images for
    /// validation.
    pub fn new(model: MlpConfig) -> Self {
        Self {
            dataset: DatasetKind::Mnist.into(),
            data_dir: None,
            split: SplitConfig::default(),
            standardize: false,
            model,
            optimizer: OptimizerConfig::default(),
            learning_rate: 0.1,
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
            ..StepHooks::new(penalties, constraints)
        }
    }

    /// Fails, naming the field, when a penalty or constraint selects no
    /// parameter of `net` or a constraint cannot apply to one it selects.
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
        Ok(())
    }

    /// The image set this config trains on; an error naming `dataset` for
    /// a CSV table (for what only runs on image sets, like the experiments).
    pub fn image_set(&self) -> Result<DatasetKind, TrainError> {
        self.dataset.idx().ok_or_else(|| {
            TrainError::invalid(
                "dataset",
                "an image set (mnist, fashion-mnist)",
                &self.dataset,
            )
        })
    }

    /// Checks every setting, naming the first impossible one.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.validate_fit()?;
        self.model.validate()?;
        Ok(())
    }

    /// Checks how the network is fitted (optimizer, schedule, penalties,
    /// constraints, early stopping), not `model`: what
    /// [`train`](crate::train) uses when it is given a network of its own.
    pub fn validate_fit(&self) -> Result<(), TrainError> {
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(TrainError::invalid(
                "learning_rate",
                "a finite number > 0",
                self.learning_rate,
            ));
        }
        for (field, value) in [
            ("batch_size", self.batch_size),
            ("eval_batch_size", self.eval_batch_size),
            ("epochs", self.epochs),
        ] {
            if value == 0 {
                return Err(TrainError::invalid(field, "at least 1", 0));
            }
        }
        self.optimizer.validate()?;
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::config::{Config, config_to_json};

    fn config() -> TrainConfig {
        TrainConfig::new(MlpConfig::new(784, vec![32], 10))
    }

    #[test]
    fn impossible_settings_name_the_field() {
        let mut cases = Vec::new();
        let mut c = config();
        c.learning_rate = -0.1;
        cases.push((c, "`learning_rate`"));
        let mut c = config();
        c.batch_size = 0;
        cases.push((c, "`batch_size`"));
        let mut c = config();
        c.epochs = 0;
        cases.push((c, "`epochs`"));
        let mut c = config();
        c.model.dropout = 1.0;
        cases.push((c, "`dropout`"));
        let mut c = config();
        c.label_smoothing = Some(1.0);
        cases.push((c, "`label_smoothing`"));
        let mut c = config();
        c.optimizer = OptimizerConfig::sgd(1.0);
        cases.push((c, "`optimizer.momentum`"));
        for (config, field) in cases {
            let err = config.validate().unwrap_err();
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn json_round_trip_rejects_unknown_keys() {
        let json = config_to_json(&config());
        let back = TrainConfig::load_binary(json.as_bytes()).unwrap();
        assert_eq!(config_to_json(&back), json);
        let typo = json.replacen("\"epochs\"", "\"epoch\"", 1);
        assert!(TrainConfig::load_binary(typo.as_bytes()).is_err());
    }

    #[test]
    fn penalties_and_constraints_are_recorded_and_rebuilt() {
        let mut c = config();
        c.penalties.push(WeightPenalty::new(
            crate::GroupLasso::new(1e-3).unwrap(),
            ParamSelector {
                include_bias: false,
                layers: vec!["layers.0".into()],
            },
        ));
        c.constraints.push(crate::WeightConstraint::new(
            crate::UnitNorm::default(),
            ParamSelector::default(),
        ));
        c.constraints.push(crate::WeightConstraint::new(
            crate::NonNeg,
            ParamSelector::default(),
        ));
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains("\"group-lasso\"") && json.contains("\"unit-norm\""),
            "{json}"
        );
        let back = TrainConfig::load_binary(json.as_bytes()).unwrap();
        assert_eq!(back.penalties, c.penalties);
        assert_eq!(back.constraints, c.constraints);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);

        let unknown = json.replace("\"group-lasso\"", "\"group-lasso-2\"");
        let err = serde_json::from_str::<TrainConfig>(&unknown)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("penalty `group-lasso-2` is not registered")
                && err.contains("register_penalty"),
            "{err}"
        );
        let bad_settings = json.replace("\"lambda\":0.001", "\"lambda\":\"much\"");
        let err = serde_json::from_str::<TrainConfig>(&bad_settings)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("penalty `group-lasso`: its settings do not fit"),
            "{err}"
        );
    }
}
