//! Everything a training run needs, saved as `config.json`: what the data
//! is, what the network is, and how it is fitted.

use std::path::PathBuf;

use recipe_data::{DataInfo, DataSource, DatasetKind, SplitConfig};
use recipe_models::MlpConfig;
use serde::{Deserialize, Serialize};

use crate::{Classify, FitConfig, NetworkConfig, TrainError};

/// The settings of one training run. Saved next to its results as
/// `config.json`: for recipe's MLP on data recipe loads, enough to run it
/// again; for a network or data of your own, a true record of both (your
/// code builds them again).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// What the network is trained on.
    pub data: DataConfig,
    /// The network.
    pub network: NetworkConfig,
    /// How the network is fitted.
    pub fit: FitConfig,
}

/// What a run trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Which data: an image set by name (`"mnist"`), a CSV table, or data
    /// provided in code.
    pub dataset: DataSource,
    /// Where an image set's files are; `None` searches the default places.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// How an image set's training file is split into training and
    /// validation data (a CSV table says its own split).
    #[serde(default)]
    pub split: SplitConfig,
    /// Standardize an image set's pixels with the training split's mean and
    /// std instead of scaling to [0, 1] (a CSV table says its own).
    #[serde(default)]
    pub standardize: bool,
}

impl DataConfig {
    /// `dataset` with the default split, pixels scaled to [0, 1].
    pub fn new(dataset: impl Into<DataSource>) -> Self {
        Self {
            dataset: dataset.into(),
            data_dir: None,
            split: SplitConfig::default(),
            standardize: false,
        }
    }

    /// Data provided in code; the trainer records its [`DataInfo`].
    pub fn provided() -> Self {
        Self::new(DataSource::Provided(DataInfo::default()))
    }
}

impl burn::config::Config for TrainConfig {}

impl TrainConfig {
    /// A run of recipe's MLP `model` on MNIST with recipe's defaults
    /// ([`FitConfig::default`]; the last 10,000 training images validate).
    pub fn new(model: MlpConfig) -> Self {
        Self {
            data: DataConfig::new(DatasetKind::Mnist),
            network: model.into(),
            fit: FitConfig::default(),
        }
    }

    /// A run of `network` (see [`NetworkConfig::custom`]) on data provided
    /// in code, fitted as `fit` says: what [`train`](crate::train) takes for
    /// a network of your own.
    pub fn for_network(network: NetworkConfig, fit: FitConfig) -> Self {
        Self {
            data: DataConfig::provided(),
            network,
            fit,
        }
    }

    /// recipe's MLP config; an error naming `network` for a network of
    /// your own (for what only builds recipe's MLP).
    pub fn mlp(&self) -> Result<&MlpConfig, TrainError> {
        self.network
            .mlp()
            .ok_or_else(|| TrainError::invalid("network", "recipe's MLP", self.network.describe()))
    }

    /// recipe's MLP config to change; an error naming `network` for a
    /// network of your own.
    pub fn mlp_mut(&mut self) -> Result<&mut MlpConfig, TrainError> {
        let described = self.network.describe();
        self.network
            .mlp_mut()
            .ok_or_else(|| TrainError::invalid("network", "recipe's MLP", described))
    }

    /// The image set this config trains on; an error naming `dataset` for
    /// a CSV table (for what only runs on image sets, like the experiments).
    pub fn image_set(&self) -> Result<DatasetKind, TrainError> {
        self.data.dataset.idx().ok_or_else(|| {
            TrainError::invalid(
                "data.dataset",
                "an image set (mnist, fashion-mnist)",
                &self.data.dataset,
            )
        })
    }

    /// Checks every setting, naming the first impossible one.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.fit.validate()?;
        self.network.validate()?;
        Ok(())
    }

    /// What `config.json` records for a run of `net` on data described by
    /// `info`: provided data by its [`DataInfo`], your network by its
    /// structure and parameter count (see [`NetworkConfig`]). Fails, naming
    /// the field, when the config names other data or another network than
    /// the ones trained.
    pub(crate) fn recorded_for<N: Classify>(
        &self,
        net: &N,
        info: &DataInfo,
    ) -> Result<Self, TrainError> {
        let mut data = self.data.clone();
        if let DataSource::Provided(_) = data.dataset {
            data.dataset = DataSource::Provided(info.clone());
        } else if data.dataset.data_name() != info.name {
            return Err(TrainError::invalid(
                "data.dataset",
                format!(
                    "a record of the data trained on ({}): DataConfig::provided(), or the \
                     source it was loaded from",
                    info.name
                ),
                &data.dataset,
            ));
        }
        Ok(Self {
            data,
            network: self.network.recorded_for(net)?,
            fit: self.fit.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OptimizerConfig, ParamSelector, WeightPenalty};
    use burn::config::{Config, config_to_json};

    fn config() -> TrainConfig {
        TrainConfig::new(MlpConfig::new(784, vec![32], 10))
    }

    #[test]
    fn impossible_settings_name_the_field() {
        let mut cases = Vec::new();
        let mut c = config();
        c.fit.learning_rate = -0.1;
        cases.push((c, "`learning_rate`"));
        let mut c = config();
        c.fit.batch_size = 0;
        cases.push((c, "`batch_size`"));
        let mut c = config();
        c.fit.epochs = 0;
        cases.push((c, "`epochs`"));
        let c = TrainConfig::new(MlpConfig::new(784, vec![32], 10).with_dropout(1.0));
        cases.push((c, "`dropout`"));
        let c = TrainConfig::for_network(NetworkConfig::custom(" "), FitConfig::default());
        cases.push((c, "`network.custom.name`"));
        let mut c = config();
        c.fit.label_smoothing = Some(1.0);
        cases.push((c, "`label_smoothing`"));
        let mut c = config();
        c.fit.optimizer = OptimizerConfig::sgd(1.0);
        cases.push((c, "`optimizer.momentum`"));
        let mut c = config();
        c.fit.accumulate_grad_batches = 0;
        cases.push((c, "`accumulate_grad_batches`"));
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

    /// The three parts are apart in the file: the data, the network (by
    /// kind), and how it is fitted.
    #[test]
    fn json_has_data_network_and_fit() {
        let json: serde_json::Value = serde_json::to_value(config()).unwrap();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["data", "fit", "network"]);
        assert_eq!(json["data"]["dataset"], "mnist");
        assert_eq!(json["network"]["mlp"]["d_input"], 784);
        assert_eq!(json["fit"]["learning_rate"], 0.1);
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct MyNetConfig {
        channels: usize,
    }

    /// A network of the user's own is recorded by its own config, which
    /// reads back; recipe's MLP has no such config to read.
    #[test]
    fn a_user_network_is_recorded_by_its_own_config() {
        let mine = MyNetConfig { channels: 8 };
        let network = NetworkConfig::custom_with("my-net", &mine).unwrap();
        let config = TrainConfig::for_network(network, FitConfig::default());
        let json = serde_json::to_string(&config).unwrap();
        assert!(
            json.contains("\"custom\":{\"name\":\"my-net\",\"config\":{\"channels\":8}"),
            "{json}"
        );
        let back: TrainConfig = serde_json::from_str(&json).unwrap();
        assert_eq!(back.network.user_config::<MyNetConfig>().unwrap(), mine);
        assert_eq!(back.data, DataConfig::provided());
        assert!(config.mlp().unwrap_err().to_string().contains("`network`"));
        let err = self::config()
            .network
            .user_config::<MyNetConfig>()
            .unwrap_err();
        assert!(err.to_string().contains("`network`"), "{err}");
    }

    #[test]
    fn penalties_and_constraints_are_recorded_and_rebuilt() {
        let mut c = config();
        c.fit.penalties.push(WeightPenalty::new(
            crate::GroupLasso::new(1e-3).unwrap(),
            ParamSelector::weights(vec!["layers.0".into()]),
        ));
        c.fit.constraints.push(crate::WeightConstraint::new(
            crate::UnitNorm::default(),
            ParamSelector::default(),
        ));
        c.fit.constraints.push(crate::WeightConstraint::new(
            crate::NonNeg,
            ParamSelector::default(),
        ));
        let json = serde_json::to_string(&c).unwrap();
        assert!(
            json.contains("\"group-lasso\"") && json.contains("\"unit-norm\""),
            "{json}"
        );
        let back = TrainConfig::load_binary(json.as_bytes()).unwrap();
        assert_eq!(back.fit.penalties, c.fit.penalties);
        assert_eq!(back.fit.constraints, c.fit.constraints);
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
