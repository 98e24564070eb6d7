//! The optimizers a run can use.

use std::fmt;
use std::str::FromStr;

use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, RmsPropConfig, SgdConfig};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::momentum_ramp::RampedSgd;
use crate::optimizer_kernels::build_installed;
use crate::{CustomOptimizer, MomentumRamp, OptimizerFn, RampShape, TrainError};

/// The `name`s `config.json` gives the built-in optimizers (a registered
/// optimizer of your own cannot take one, nor one of [`OptimizerConfig::NAMES`]).
pub(crate) const RECORDED_NAMES: [&str; 4] = ["sgd", "adam", "adam-w", "rms-prop"];

/// An optimizer and its hyper-parameters (the learning rate is set apart, in
/// [`FitConfig`](crate::FitConfig)). `config.json` records one as an
/// object with its `name` and hyper-parameters; an optimizer of your own
/// as its `name` and `settings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
#[serde(
    remote = "Self",
    tag = "name",
    rename_all = "kebab-case",
    deny_unknown_fields
)]
pub enum OptimizerConfig {
    /// Stochastic gradient descent, optionally with momentum (PyTorch's
    /// form: undampened unless `dampened`).
    Sgd {
        /// Momentum factor; 0 is plain SGD.
        momentum: f64,
        /// Nesterov momentum.
        nesterov: bool,
        /// Each gradient enters the velocity times `1 - m`, `m` that
        /// update's momentum (`v = m v + (1 - m) g`, Hinton et al. 2012):
        /// the velocity is an average of recent gradients rather than their
        /// sum, so the step no longer grows by `1 / (1 - m)` as a ramp raises
        /// the momentum. The first velocity is the gradient, as in Burn's
        /// and PyTorch's dampening.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        dampened: bool,
        /// A rise of the momentum from a lower start to `momentum` over the
        /// first updates (none: `momentum` from the first update on).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ramp: Option<MomentumRamp>,
    },
    /// Adam (Kingma & Ba 2015).
    Adam {
        /// Decay of the first moment.
        beta1: f32,
        /// Decay of the second moment.
        beta2: f32,
        /// Added to the denominator for stability.
        epsilon: f32,
    },
    /// AdamW: Adam with decoupled weight decay (`w -= lr * weight_decay * w` every
    /// step, apart from the gradient), unlike an L2 penalty in the loss.
    AdamW {
        /// Decay of the first moment.
        beta1: f32,
        /// Decay of the second moment.
        beta2: f32,
        /// Added to the denominator for stability.
        epsilon: f32,
        /// Decoupled weight decay factor.
        weight_decay: f32,
    },
    /// RMSProp (Hinton 2012).
    RmsProp {
        /// Decay of the squared-gradient average.
        alpha: f32,
        /// Momentum factor.
        momentum: f32,
        /// Added to the denominator for stability.
        epsilon: f32,
    },
    /// An optimizer of your own ([`OptimizerFn`]), registered with
    /// [`register_optimizer`](crate::register_optimizer) so that
    /// `config.json` can name it and resume rebuild it.
    #[serde(skip)]
    Custom(CustomOptimizer),
}

impl burn::config::Config for OptimizerConfig {}

impl Serialize for OptimizerConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Custom(custom) => custom.serialize(serializer),
            built_in => OptimizerConfig::serialize(built_in, serializer),
        }
    }
}

/// A built-in optimizer's object by its `name`, any other `name` a
/// registered optimizer of your own's.
impl<'de> Deserialize<'de> for OptimizerConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        let name = value.get("name").and_then(serde_json::Value::as_str);
        if name.is_some_and(|name| !RECORDED_NAMES.contains(&name)) {
            CustomOptimizer::deserialize(value)
                .map(Self::Custom)
                .map_err(D::Error::custom)
        } else {
            OptimizerConfig::deserialize(value).map_err(D::Error::custom)
        }
    }
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self::sgd(0.0)
    }
}

impl OptimizerConfig {
    /// The names [`OptimizerConfig::from_str`] accepts for the built-in
    /// optimizers (it also reads a registered one's `NAME[:{json settings}]`).
    pub const NAMES: &'static str = "sgd, adam, adamw, rmsprop";

    /// `optimizer`, an optimizer of your own.
    pub fn custom(optimizer: impl OptimizerFn + 'static) -> Self {
        Self::Custom(CustomOptimizer(std::sync::Arc::new(optimizer)))
    }

    /// The learning rate a run of this optimizer gets when none is given:
    /// 0.1 for SGD (the lecture's MNIST runs), 1e-3 for the adaptive ones
    /// (Adam's, AdamW's and Keras' RMSProp default), which divide each step
    /// by a running gradient scale and want a far smaller one.
    pub fn default_learning_rate(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd { .. } => 0.1,
            OptimizerConfig::Adam { .. }
            | OptimizerConfig::AdamW { .. }
            | OptimizerConfig::RmsProp { .. } => 1e-3,
            OptimizerConfig::Custom(custom) => custom.0.default_learning_rate(),
        }
    }

    /// SGD with the given momentum.
    pub fn sgd(momentum: f64) -> Self {
        Self::Sgd {
            momentum,
            nesterov: false,
            dampened: false,
            ramp: None,
        }
    }

    /// The same optimizer with its momentum rising along `ramp` to its
    /// final value (SGD with momentum only).
    pub fn with_momentum_ramp(self, ramp: MomentumRamp) -> Result<Self, TrainError> {
        ramp.validate()?;
        match self {
            Self::Sgd {
                momentum,
                nesterov,
                dampened,
                ..
            } if momentum > 0.0 => Ok(Self::Sgd {
                momentum,
                nesterov,
                dampened,
                ramp: Some(ramp),
            }),
            other => Err(TrainError::invalid(
                "momentum_ramp",
                "used only with sgd and a momentum above 0",
                format!("{ramp} with {other}"),
            )),
        }
    }

    /// The same SGD with its gradients dampened by the momentum: `v = m v +
    /// (1 - m) g`, `m` each update's momentum (see [`OptimizerConfig::Sgd`]'s
    /// `dampened`). Not with Nesterov momentum, whose look-ahead assumes an
    /// undampened velocity (PyTorch refuses the pair too).
    pub fn with_dampening(self) -> Result<Self, TrainError> {
        match self {
            Self::Sgd {
                momentum,
                nesterov: false,
                ramp,
                ..
            } => Ok(Self::Sgd {
                momentum,
                nesterov: false,
                dampened: true,
                ramp,
            }),
            other => Err(TrainError::invalid(
                "dampened",
                "used only with sgd without nesterov",
                other,
            )),
        }
    }

    /// Adam with PyTorch's defaults.
    pub fn adam() -> Self {
        Self::Adam {
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }

    /// The same optimizer with its momentum set (SGD and RMSProp; others unchanged).
    pub fn with_momentum(self, value: f64) -> Result<Self, TrainError> {
        if !(0.0..1.0).contains(&value) {
            return Err(TrainError::invalid("momentum", "in [0, 1)", value));
        }
        Ok(match self {
            Self::Sgd {
                nesterov,
                dampened,
                ramp,
                ..
            } => Self::Sgd {
                momentum: value,
                nesterov,
                dampened,
                ramp,
            },
            Self::RmsProp { alpha, epsilon, .. } => Self::RmsProp {
                alpha,
                momentum: value as f32,
                epsilon,
            },
            other => {
                return Err(TrainError::invalid(
                    "momentum",
                    "used only with sgd or rmsprop",
                    format!("{value} with {other}"),
                ));
            }
        })
    }

    /// The same optimizer with its decoupled weight decay set (AdamW only:
    /// for other optimizers use an L2 penalty).
    pub fn with_weight_decay(self, value: f64) -> Result<Self, TrainError> {
        if !(value >= 0.0 && value.is_finite()) {
            return Err(TrainError::invalid(
                "weight_decay",
                "a finite number >= 0",
                value,
            ));
        }
        match self {
            Self::AdamW {
                beta1,
                beta2,
                epsilon,
                ..
            } => Ok(Self::AdamW {
                beta1,
                beta2,
                epsilon,
                weight_decay: value as f32,
            }),
            other => Err(TrainError::invalid(
                "weight_decay",
                "used with adamw (decoupled decay); for other optimizers use an L2 penalty (--l2)",
                format!("{value} with {other}"),
            )),
        }
    }

    /// Checks the hyper-parameters.
    pub fn validate(&self) -> Result<(), TrainError> {
        match *self {
            Self::Custom(CustomOptimizer(ref optimizer)) => optimizer.check().map_err(|why| {
                TrainError::invalid(
                    "optimizer",
                    format!(
                        "a `{}` optimizer with settings that make sense",
                        optimizer.name()
                    ),
                    why,
                )
            }),
            Self::Sgd {
                momentum,
                nesterov: true,
                dampened: true,
                ..
            } => Err(TrainError::invalid(
                "optimizer.dampened",
                "false with nesterov (its look-ahead assumes an undampened velocity)",
                format!("dampened nesterov momentum {momentum}"),
            )),
            Self::Sgd { momentum, ramp, .. } => {
                in_unit_interval("momentum", momentum)?;
                match ramp {
                    Some(_) if momentum == 0.0 => Err(TrainError::invalid(
                        "optimizer.ramp",
                        "a momentum above 0 to rise to",
                        "a ramp with momentum 0",
                    )),
                    Some(ramp) => ramp.validate(),
                    None => Ok(()),
                }
            }
            Self::Adam {
                beta1,
                beta2,
                epsilon,
            } => {
                in_unit_interval("beta1", beta1 as f64)?;
                in_unit_interval("beta2", beta2 as f64)?;
                positive_and_finite("epsilon", epsilon as f64)
            }
            Self::AdamW {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => {
                in_unit_interval("beta1", beta1 as f64)?;
                in_unit_interval("beta2", beta2 as f64)?;
                positive_and_finite("epsilon", epsilon as f64)?;
                if weight_decay >= 0.0 && weight_decay.is_finite() {
                    Ok(())
                } else {
                    Err(TrainError::invalid(
                        "optimizer.weight_decay",
                        ">= 0",
                        weight_decay,
                    ))
                }
            }
            Self::RmsProp {
                alpha,
                momentum,
                epsilon,
            } => {
                in_unit_interval("alpha", alpha as f64)?;
                in_unit_interval("momentum", momentum as f64)?;
                positive_and_finite("epsilon", epsilon as f64)
            }
        }
    }

    /// Builds the optimizer: the installed [`OptimizerKernels`](crate::OptimizerKernels)
    /// one where they offer it (e.g. `recipe-flex`'s fused Adam), else Burn's own.
    pub fn init(&self) -> ModuleOptimizer {
        if let Some(optimizer) = build_installed(self) {
            return optimizer;
        }
        match *self {
            Self::Sgd {
                momentum,
                nesterov,
                dampened,
                ramp: Some(ramp),
            } => RampedSgd {
                momentum,
                ramp,
                nesterov,
                dampened,
            }
            .into(),
            Self::Sgd {
                momentum,
                nesterov,
                dampened,
                ramp: None,
            } => {
                let momentum = (momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(momentum)
                        .with_dampening(if dampened { momentum } else { 0.0 })
                        .with_nesterov(nesterov)
                });
                SgdConfig::new().with_momentum(momentum).init()
            }
            Self::Adam {
                beta1,
                beta2,
                epsilon,
            } => AdamConfig::new()
                .with_beta_1(beta1)
                .with_beta_2(beta2)
                .with_epsilon(epsilon)
                .init(),
            Self::AdamW {
                beta1,
                beta2,
                epsilon,
                weight_decay,
            } => AdamWConfig::new()
                .with_beta_1(beta1)
                .with_beta_2(beta2)
                .with_epsilon(epsilon)
                .with_weight_decay(weight_decay)
                .init(),
            Self::RmsProp {
                alpha,
                momentum,
                epsilon,
            } => RmsPropConfig::new()
                .with_alpha(alpha)
                .with_momentum(momentum)
                .with_epsilon(epsilon)
                .init(),
            Self::Custom(ref custom) => custom.0.init(),
        }
    }
}

impl fmt::Display for OptimizerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sgd {
                momentum,
                ramp: Some(ramp),
                dampened,
                ..
            } => {
                let rise = match ramp.shape {
                    RampShape::Exponential => format!("approaching {momentum}, time constant"),
                    _ => format!("rising to {momentum} over"),
                };
                write!(
                    f,
                    "sgd({}momentum {} {rise} {} updates)",
                    dampened_word(*dampened),
                    ramp.start,
                    ramp.updates
                )
            }
            Self::Sgd {
                momentum, dampened, ..
            } if *momentum > 0.0 => {
                write!(f, "sgd({}momentum {momentum})", dampened_word(*dampened))
            }
            Self::Sgd { .. } => f.write_str("sgd"),
            Self::Adam { .. } => f.write_str("adam"),
            Self::AdamW { weight_decay, .. } => write!(f, "adamw(weight decay {weight_decay})"),
            Self::RmsProp { .. } => f.write_str("rmsprop"),
            Self::Custom(custom) => write!(f, "{custom}"),
        }
    }
}

fn dampened_word(dampened: bool) -> &'static str {
    if dampened { "dampened " } else { "" }
}

impl FromStr for OptimizerConfig {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text.trim().to_ascii_lowercase().as_str() {
            "sgd" => Self::sgd(0.0),
            "adam" => Self::adam(),
            "adamw" => Self::AdamW {
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                weight_decay: 0.01,
            },
            "rmsprop" => Self::RmsProp {
                alpha: 0.99,
                momentum: 0.0,
                epsilon: 1e-8,
            },
            _ => match CustomOptimizer::parse(text) {
                Some(custom) => Self::Custom(
                    custom.map_err(|why| TrainError::invalid("optimizer", "its settings", why))?,
                ),
                None => {
                    return Err(TrainError::invalid(
                        "optimizer",
                        format!(
                            "{}, or a registered optimizer's NAME[:{{json settings}}]",
                            Self::NAMES
                        ),
                        text,
                    ));
                }
            },
        })
    }
}

/// `optimizer.{field}` is in [0, 1).
fn in_unit_interval(field: &str, value: f64) -> Result<(), TrainError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(TrainError::invalid(
            format!("optimizer.{field}"),
            "in [0, 1)",
            value,
        ))
    }
}

/// `optimizer.{field}` is a finite number above 0.
fn positive_and_finite(field: &str, value: f64) -> Result<(), TrainError> {
    if value > 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(TrainError::invalid(
            format!("optimizer.{field}"),
            "> 0",
            value,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_validate() {
        for name in OptimizerConfig::NAMES.split(", ") {
            let optimizer: OptimizerConfig = name.parse().unwrap();
            optimizer.validate().unwrap();
        }
        let err = "lbfgs".parse::<OptimizerConfig>().unwrap_err();
        assert!(err.to_string().contains("`optimizer`"), "{err}");
    }

    /// A ramp needs SGD with momentum; a config without one is written (and
    /// read) as before ramps existed, so earlier runs' config.json match.
    #[test]
    fn a_ramp_goes_only_on_sgd_with_momentum_and_old_configs_still_read() {
        let ramp = MomentumRamp::new(0.5, 100).unwrap();
        let ramped = OptimizerConfig::sgd(0.7).with_momentum_ramp(ramp).unwrap();
        ramped.validate().unwrap();
        assert!(ramped.to_string().contains("0.5 rising to 0.7"), "{ramped}");
        assert!(OptimizerConfig::sgd(0.0).with_momentum_ramp(ramp).is_err());
        assert!(OptimizerConfig::adam().with_momentum_ramp(ramp).is_err());
        let old = r#"{"name": "sgd", "momentum": 0.95, "nesterov": false}"#;
        let read: OptimizerConfig = serde_json::from_str(old).unwrap();
        assert_eq!(read, OptimizerConfig::sgd(0.95));
        assert!(!serde_json::to_string(&read).unwrap().contains("ramp"));
        let json = serde_json::to_string(&ramped).unwrap();
        assert_eq!(
            serde_json::from_str::<OptimizerConfig>(&json).unwrap(),
            ramped
        );
    }

    /// Dampening goes on SGD without Nesterov, keeps a ramp, is named in
    /// the description, and is left out of the JSON when off (earlier
    /// runs' config.json read as undampened).
    #[test]
    fn dampening_only_on_sgd_without_nesterov() {
        let ramp = MomentumRamp::new(0.5, 100).unwrap();
        let dampened = OptimizerConfig::sgd(0.99)
            .with_momentum_ramp(ramp)
            .unwrap()
            .with_dampening()
            .unwrap();
        dampened.validate().unwrap();
        assert!(
            matches!(dampened, OptimizerConfig::Sgd { dampened: true, ramp: Some(r), .. } if r == ramp)
        );
        assert!(dampened.to_string().contains("dampened"), "{dampened}");
        let json = serde_json::to_string(&dampened).unwrap();
        assert_eq!(
            serde_json::from_str::<OptimizerConfig>(&json).unwrap(),
            dampened
        );
        assert!(
            !serde_json::to_string(&OptimizerConfig::sgd(0.9))
                .unwrap()
                .contains("dampened")
        );
        assert!(OptimizerConfig::adam().with_dampening().is_err());
        let nesterov = OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: true,
            dampened: false,
            ramp: None,
        };
        assert!(nesterov.clone().with_dampening().is_err());
        let both = OptimizerConfig::Sgd {
            momentum: 0.9,
            nesterov: true,
            dampened: true,
            ramp: None,
        };
        let error = both.validate().unwrap_err().to_string();
        assert!(error.contains("optimizer.dampened"), "{error}");
    }

    #[test]
    fn momentum_only_where_it_exists() {
        let sgd = OptimizerConfig::sgd(0.0).with_momentum(0.9).unwrap();
        assert_eq!(sgd, OptimizerConfig::sgd(0.9));
        assert!(OptimizerConfig::adam().with_momentum(0.9).is_err());
        assert!(OptimizerConfig::sgd(0.0).with_momentum(1.5).is_err());
    }
}
