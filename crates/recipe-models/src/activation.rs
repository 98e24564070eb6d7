//! Selectable activations: Burn's own, wrapped, plus Maxout.

use std::fmt;
use std::str::FromStr;

use burn::module::Module;
use burn::nn::activation::{
    Activation as BurnActivation, ActivationConfig as BurnActivationConfig, EluConfig,
    HardSigmoidConfig, LeakyReluConfig, Mish, PReluConfig, SiLU, SoftplusConfig,
};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::ModelError;

/// Which activation a hidden layer uses.
///
/// Element-wise activations are built by [`ActivationConfig::init`]. `Maxout`
/// is different in kind: it replaces the layer's linear map, so an
/// [`MlpConfig`](crate::MlpConfig) builds it as a [`Maxout`](crate::Maxout)
/// layer instead.
///
/// In text (the CLI and TOML configs) an activation is its kebab-case name,
/// optionally followed by `:` and its one parameter: `relu`,
/// `leaky-relu:0.1`, `elu:1.0`, `prelu:0.25`, `softplus:2`, `maxout:3`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ActivationConfig {
    /// `f(x) = x`: no activation.
    Identity,
    /// `f(x) = 1 / (1 + e^-x)`: the lecture's vanishing-gradient culprit.
    Sigmoid,
    /// `f(x) = tanh(x)`.
    Tanh,
    /// `f(x) = max(0, x)`.
    Relu,
    /// `f(x) = x` for `x >= 0`, `negative_slope * x` otherwise.
    LeakyRelu {
        /// Slope for negative inputs (PyTorch's default is 0.01).
        negative_slope: f64,
    },
    /// Leaky ReLU whose negative slope is learned (He et al. 2015).
    Prelu {
        /// Number of learned slopes: 1 (shared) or the layer's width (one per unit).
        num_parameters: usize,
        /// Initial slope.
        alpha: f64,
    },
    /// `f(x) = x` for `x > 0`, `alpha * (e^x - 1)` otherwise.
    Elu {
        /// Saturation value for negative inputs.
        alpha: f64,
    },
    /// Scaled ELU (Klambauer et al. 2017), self-normalizing with LeCun init.
    Selu,
    /// Gaussian error linear unit (exact, erf-based).
    Gelu,
    /// `f(x) = x * sigmoid(x)`, also called Swish.
    Silu,
    /// `f(x) = x * tanh(softplus(x))`.
    Mish,
    /// `f(x) = ln(1 + e^(beta x)) / beta`, a smooth ReLU.
    Softplus {
        /// Sharpness.
        beta: f64,
    },
    /// `f(x) = clamp(0.2 x + 0.5, 0, 1)` (Burn's slope and offset).
    HardSigmoid,
    /// Maxout (Goodfellow et al. 2013): each unit is the max of `pieces` linear pieces.
    Maxout {
        /// Linear pieces per unit, at least 1 (1 is a plain linear layer).
        pieces: usize,
    },
}

impl burn::config::Config for ActivationConfig {}

/// The names [`ActivationConfig::from_str`] accepts, in documentation order.
pub(crate) const ACTIVATION_NAMES: &[&str] = &[
    "identity",
    "sigmoid",
    "tanh",
    "relu",
    "leaky-relu[:slope]",
    "prelu[:alpha]",
    "elu[:alpha]",
    "selu",
    "gelu",
    "silu",
    "mish",
    "softplus[:beta]",
    "hard-sigmoid",
    "maxout[:pieces]",
];

impl ActivationConfig {
    /// Leaky ReLU with PyTorch's default slope, 0.01.
    pub const LEAKY_RELU: Self = Self::LeakyRelu {
        negative_slope: 0.01,
    };

    /// Maxout with `pieces` pieces per unit.
    pub fn maxout(pieces: usize) -> Self {
        Self::Maxout { pieces }
    }

    /// Whether the activation is a Maxout layer rather than an element-wise function.
    pub fn is_maxout(&self) -> bool {
        matches!(self, Self::Maxout { .. })
    }

    /// Whether the activation belongs to the ReLU family (unbounded above,
    /// gradient near 1 for positive inputs), which wants He initialization.
    pub fn is_relu_family(&self) -> bool {
        matches!(
            self,
            Self::Relu
                | Self::LeakyRelu { .. }
                | Self::Prelu { .. }
                | Self::Elu { .. }
                | Self::Gelu
                | Self::Silu
                | Self::Mish
                | Self::Softplus { .. }
        )
    }

    /// Checks the activation's own parameters; `field` names it in errors.
    pub fn validate(&self, field: &str) -> Result<(), ModelError> {
        match *self {
            Self::Maxout { pieces: 0 } => Err(ModelError::invalid(
                format!("{field}.pieces"),
                "at least 1",
                0,
            )),
            Self::Prelu {
                num_parameters: 0, ..
            } => Err(ModelError::invalid(
                format!("{field}.num_parameters"),
                "at least 1",
                0,
            )),
            Self::LeakyRelu { negative_slope: v }
            | Self::Prelu { alpha: v, .. }
            | Self::Elu { alpha: v }
                if !v.is_finite() =>
            {
                Err(ModelError::invalid(field, "a finite parameter", v))
            }
            Self::Softplus { beta } if !(beta.is_finite() && beta > 0.0) => Err(
                ModelError::invalid(format!("{field}.beta"), "a finite number > 0", beta),
            ),
            _ => Ok(()),
        }
    }

    /// Builds the element-wise activation module.
    ///
    /// Fails for [`ActivationConfig::Maxout`], which is a layer: build it with
    /// [`MaxoutConfig`](crate::MaxoutConfig) or let [`MlpConfig`](crate::MlpConfig) do it.
    pub fn init(&self, device: &Device) -> Result<Activation, ModelError> {
        self.validate("activation")?;
        let burn = |config: BurnActivationConfig| Activation::Burn(config.init(device));
        Ok(match *self {
            Self::Identity => burn(BurnActivationConfig::Identity),
            Self::Sigmoid => burn(BurnActivationConfig::Sigmoid),
            Self::Tanh => burn(BurnActivationConfig::Tanh),
            Self::Relu => burn(BurnActivationConfig::Relu),
            Self::LeakyRelu { negative_slope } => burn(
                LeakyReluConfig::new()
                    .with_negative_slope(negative_slope)
                    .into(),
            ),
            Self::Prelu {
                num_parameters,
                alpha,
            } => burn(
                PReluConfig::new()
                    .with_num_parameters(num_parameters)
                    .with_alpha(alpha)
                    .into(),
            ),
            Self::Elu { alpha } => burn(EluConfig::new().with_alpha(alpha).into()),
            Self::Selu => burn(BurnActivationConfig::Selu),
            Self::Gelu => burn(BurnActivationConfig::Gelu),
            Self::Silu => Activation::Silu(SiLU::new()),
            Self::Mish => Activation::Mish(Mish::new()),
            Self::Softplus { beta } => burn(SoftplusConfig::new().with_beta(beta).into()),
            Self::HardSigmoid => burn(HardSigmoidConfig::new().into()),
            Self::Maxout { .. } => {
                return Err(ModelError::invalid(
                    "activation",
                    "an element-wise activation (maxout is a layer: use MaxoutConfig)",
                    self,
                ));
            }
        })
    }
}

impl fmt::Display for ActivationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Identity => f.write_str("identity"),
            Self::Sigmoid => f.write_str("sigmoid"),
            Self::Tanh => f.write_str("tanh"),
            Self::Relu => f.write_str("relu"),
            Self::LeakyRelu { negative_slope } => write!(f, "leaky-relu:{negative_slope}"),
            Self::Prelu {
                num_parameters: 1,
                alpha,
            } => write!(f, "prelu:{alpha}"),
            Self::Prelu {
                num_parameters,
                alpha,
            } => write!(f, "prelu:{alpha}(x{num_parameters})"),
            Self::Elu { alpha } => write!(f, "elu:{alpha}"),
            Self::Selu => f.write_str("selu"),
            Self::Gelu => f.write_str("gelu"),
            Self::Silu => f.write_str("silu"),
            Self::Mish => f.write_str("mish"),
            Self::Softplus { beta } => write!(f, "softplus:{beta}"),
            Self::HardSigmoid => f.write_str("hard-sigmoid"),
            Self::Maxout { pieces } => write!(f, "maxout:{pieces}"),
        }
    }
}

impl FromStr for ActivationConfig {
    type Err = ModelError;

    /// Parses `name` or `name:parameter`, e.g. `relu`, `leaky-relu:0.1`, `maxout:3`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (name, param) = match text.split_once(':') {
            Some((name, param)) => (name.trim(), Some(param.trim())),
            None => (text, None),
        };
        let unknown = || ModelError::UnknownActivation {
            name: text.to_string(),
            known: ACTIVATION_NAMES.join(", "),
        };
        let float = |default: f64| -> Result<f64, ModelError> {
            param.map_or(Ok(default), |p| {
                p.parse::<f64>().map_err(|_| {
                    ModelError::invalid(format!("activation {name}"), "a number after ':'", p)
                })
            })
        };
        let no_param = |config: Self| match param {
            None => Ok(config),
            Some(p) => Err(ModelError::invalid(
                format!("activation {name}"),
                "no parameter",
                p,
            )),
        };
        let config = match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "identity" | "linear" | "none" => no_param(Self::Identity)?,
            "sigmoid" => no_param(Self::Sigmoid)?,
            "tanh" => no_param(Self::Tanh)?,
            "relu" => no_param(Self::Relu)?,
            "leaky-relu" | "leakyrelu" => Self::LeakyRelu {
                negative_slope: float(0.01)?,
            },
            "prelu" => Self::Prelu {
                num_parameters: 1,
                alpha: float(0.25)?,
            },
            "elu" => Self::Elu { alpha: float(1.0)? },
            "selu" => no_param(Self::Selu)?,
            "gelu" => no_param(Self::Gelu)?,
            "silu" | "swish" => no_param(Self::Silu)?,
            "mish" => no_param(Self::Mish)?,
            "softplus" => Self::Softplus { beta: float(1.0)? },
            "hard-sigmoid" | "hardsigmoid" => no_param(Self::HardSigmoid)?,
            "maxout" => Self::Maxout {
                pieces: match param {
                    None => 2,
                    Some(p) => p.parse().map_err(|_| {
                        ModelError::invalid("activation maxout", "a piece count after ':'", p)
                    })?,
                },
            },
            _ => return Err(unknown()),
        };
        config.validate(&format!("activation {name}"))?;
        Ok(config)
    }
}

/// An element-wise activation module, built by [`ActivationConfig::init`].
///
/// Burn's own activations are wrapped, not copied; SiLU and Mish are not in
/// Burn's selectable enum, so they get variants of their own.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Activation {
    /// One of Burn's activations.
    Burn(BurnActivation),
    /// SiLU / Swish.
    Silu(SiLU),
    /// Mish.
    Mish(Mish),
}

impl Activation {
    /// Applies the activation element-wise.
    ///
    /// # Shapes
    /// - input: `[..., any]`
    /// - output: same as the input
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Burn(activation) => activation.forward(input),
            Self::Silu(activation) => activation.forward(input),
            Self::Mish(activation) => activation.forward(input),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    fn apply(config: &str, input: [f32; 4]) -> Vec<f32> {
        let device = Device::flex();
        let activation: ActivationConfig = config.parse().unwrap();
        let x = Tensor::<1>::from_floats(input, &device);
        activation
            .init(&device)
            .unwrap()
            .forward(x)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    }

    /// Expected values computed with NumPy 2.4 (float64, printed to 8 digits):
    /// ```python
    /// x = np.array([-2.0, -0.5, 0.0, 1.5]); sig = 1 / (1 + np.exp(-x))
    /// elu = np.where(x > 0, x, np.exp(x) - 1)
    /// selu = 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))
    /// gelu = 0.5 * x * (1 + erf(x / sqrt(2)))      # math.erf, vectorized
    /// silu = x * sig; mish = x * np.tanh(np.log1p(np.exp(x)))
    /// softplus_beta2 = np.log1p(np.exp(2 * x)) / 2; hard_sigmoid = np.clip(0.2 * x + 0.5, 0, 1)
    /// ```
    #[test]
    fn element_wise_values_match_numpy() {
        let x = [-2.0, -0.5, 0.0, 1.5];
        let cases: &[(&str, [f64; 4])] = &[
            ("identity", [-2.0, -0.5, 0.0, 1.5]),
            ("sigmoid", [0.11920292, 0.37754067, 0.5, 0.81757448]),
            ("tanh", [-0.96402758, -0.46211716, 0.0, 0.90514825]),
            ("relu", [0.0, 0.0, 0.0, 1.5]),
            ("leaky-relu:0.1", [-0.2, -0.05, 0.0, 1.5]),
            ("prelu:0.25", [-0.5, -0.125, 0.0, 1.5]),
            ("elu", [-0.86466472, -0.39346934, 0.0, 1.5]),
            ("selu", [-1.52016647, -0.69175819, 0.0, 1.57605148]),
            ("gelu", [-0.04550026, -0.15426877, 0.0, 1.3997892]),
            ("silu", [-0.23840584, -0.18877033, 0.0, 1.22636171]),
            ("mish", [-0.25250148, -0.22074377, 0.0, 1.40337827]),
            (
                "softplus:2",
                [0.00907496, 0.15663084, 0.34657359, 1.52429368],
            ),
            ("hard-sigmoid", [0.1, 0.4, 0.5, 0.8]),
        ];
        for (name, expected) in cases {
            let got = apply(name, x);
            TensorData::new(got, [4]).assert_approx_eq::<f32>(
                &TensorData::new(expected.map(|v| v as f32).to_vec(), [4]),
                Tolerance::absolute(1e-5),
            );
        }
    }

    #[test]
    fn names_round_trip_through_display() {
        for name in [
            "identity",
            "sigmoid",
            "relu",
            "leaky-relu:0.2",
            "prelu:0.25",
            "elu:0.5",
            "softplus:3",
            "maxout:4",
        ] {
            let config: ActivationConfig = name.parse().unwrap();
            assert_eq!(config.to_string(), name);
            assert_eq!(
                config.to_string().parse::<ActivationConfig>().unwrap(),
                config
            );
        }
    }

    #[test]
    fn unknown_and_malformed_names_are_errors() {
        let err = "relux".parse::<ActivationConfig>().unwrap_err();
        assert!(matches!(err, ModelError::UnknownActivation { .. }));
        assert!(err.to_string().contains("leaky-relu"));
        assert!("maxout:0".parse::<ActivationConfig>().is_err());
        assert!("maxout:two".parse::<ActivationConfig>().is_err());
        assert!("relu:3".parse::<ActivationConfig>().is_err());
        assert!("softplus:-1".parse::<ActivationConfig>().is_err());
    }

    #[test]
    fn maxout_is_not_element_wise() {
        let err = ActivationConfig::maxout(2)
            .init(&Device::flex())
            .unwrap_err();
        assert!(err.to_string().contains("MaxoutConfig"), "{err}");
    }

    #[test]
    fn serde_form_is_tagged_by_name() {
        let json = serde_json_like(&ActivationConfig::LEAKY_RELU);
        assert_eq!(json, r#"{"name":"leaky-relu","negative_slope":0.01}"#);
    }

    fn serde_json_like(config: &ActivationConfig) -> String {
        burn::config::config_to_json(config)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect()
    }
}
