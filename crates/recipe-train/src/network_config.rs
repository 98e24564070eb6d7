//! Which network a run trains, as `config.json` records it.

use std::any::{Any, TypeId};

use burn::module::Module;
use recipe_models::{Mlp, MlpConfig};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::TrainError;

/// The network of a run: recipe's [`Mlp`] by its config, or a network of
/// your own by its name and, when it has one, its own serde config.
///
/// In `config.json`: `{"mlp": {...}}` or `{"custom": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum NetworkConfig {
    /// recipe's MLP, built (and on resume built again) from this config.
    Mlp(MlpConfig),
    /// A network of your own, built by your code.
    Custom(CustomNetwork),
}

/// A network of your own, as a run records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomNetwork {
    /// What you call it (`conv-mnist`); the summary's model name.
    pub name: String,
    /// Your network's own config, serialized: what your constructor needs
    /// to build it again ([`NetworkConfig::user_config`]). `None` when it
    /// has none; the structure and parameter count then describe it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
    /// Trainable parameters; the trainer fills it in.
    #[serde(default)]
    pub parameters: usize,
    /// The module tree as Burn displays it; the trainer fills it in.
    #[serde(default)]
    pub structure: String,
}

impl From<MlpConfig> for NetworkConfig {
    fn from(config: MlpConfig) -> Self {
        NetworkConfig::Mlp(config)
    }
}

impl NetworkConfig {
    /// A network of your own called `name`, recorded by its structure and
    /// parameter count only.
    pub fn custom(name: impl Into<String>) -> Self {
        NetworkConfig::Custom(CustomNetwork {
            name: name.into(),
            config: None,
            parameters: 0,
            structure: String::new(),
        })
    }

    /// A network of your own called `name`, built from `config` (any serde
    /// type; `#[derive(Config)]` is one): the run records it, and a resume
    /// reads it back with [`NetworkConfig::user_config`].
    pub fn custom_with<C: Serialize>(
        name: impl Into<String>,
        config: &C,
    ) -> Result<Self, TrainError> {
        let value = serde_json::to_value(config).map_err(|e| {
            TrainError::invalid("network.custom.config", "a serializable config", e)
        })?;
        let NetworkConfig::Custom(mut custom) = Self::custom(name) else {
            unreachable!("custom() makes a custom network")
        };
        custom.config = Some(value);
        Ok(NetworkConfig::Custom(custom))
    }

    /// recipe's MLP config, if this is one.
    pub fn mlp(&self) -> Option<&MlpConfig> {
        match self {
            NetworkConfig::Mlp(config) => Some(config),
            NetworkConfig::Custom(_) => None,
        }
    }

    /// recipe's MLP config to change, if this is one.
    pub fn mlp_mut(&mut self) -> Option<&mut MlpConfig> {
        match self {
            NetworkConfig::Mlp(config) => Some(config),
            NetworkConfig::Custom(_) => None,
        }
    }

    /// Your network's own config, read back from a run's `config.json`
    /// (for example to build the network again before
    /// [`resume`](crate::resume)).
    pub fn user_config<C: DeserializeOwned>(&self) -> Result<C, TrainError> {
        let value = match self {
            NetworkConfig::Custom(CustomNetwork {
                config: Some(value),
                ..
            }) => value.clone(),
            other => {
                return Err(TrainError::invalid(
                    "network",
                    "a network of your own recorded with its config",
                    other.describe(),
                ));
            }
        };
        serde_json::from_value(value)
            .map_err(|e| TrainError::invalid("network.custom.config", "your network's config", e))
    }

    /// A short name: the MLP's shape and activations, or your network's name.
    pub fn describe(&self) -> String {
        match self {
            NetworkConfig::Mlp(config) => config.describe(),
            NetworkConfig::Custom(custom) => custom.name.clone(),
        }
    }

    /// Checks the settings, naming the first impossible one.
    pub fn validate(&self) -> Result<(), TrainError> {
        match self {
            NetworkConfig::Mlp(config) => Ok(config.validate()?),
            NetworkConfig::Custom(custom) if custom.name.trim().is_empty() => Err(
                TrainError::invalid("network.custom.name", "a name", "an empty one"),
            ),
            NetworkConfig::Custom(_) => Ok(()),
        }
    }

    /// This record for the network `net` actually trained: your network's
    /// parameter count and structure filled in. Fails when the record says
    /// recipe's MLP and `net` is another type, so that `config.json` never
    /// describes a network that was not trained.
    pub(crate) fn recorded_for<N: Module + core::fmt::Display + Any>(
        &self,
        net: &N,
    ) -> Result<Self, TrainError> {
        match self {
            NetworkConfig::Mlp(_) if TypeId::of::<N>() != TypeId::of::<Mlp>() => {
                Err(TrainError::invalid(
                    "network",
                    format!(
                        "a record of the network trained ({}): NetworkConfig::custom or \
                         custom_with, not recipe's MLP",
                        std::any::type_name::<N>()
                    ),
                    self.describe(),
                ))
            }
            NetworkConfig::Mlp(_) => Ok(self.clone()),
            NetworkConfig::Custom(custom) => Ok(NetworkConfig::Custom(CustomNetwork {
                parameters: net.num_params(),
                structure: net.to_string(),
                ..custom.clone()
            })),
        }
    }
}
