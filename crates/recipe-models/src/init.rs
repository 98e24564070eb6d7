//! Weight initializers, and `auto`: the one each activation wants.

use std::fmt;
use std::str::FromStr;

use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use crate::{ActivationConfig, InitFamily, ModelError};

/// How the weights of a linear map are drawn.
///
/// Initialization matters as much as the activation: with Burn's (and
/// PyTorch's) default `Linear` init a 9-layer ReLU net sits at chance for
/// epochs, while He init trains it in one (see `shared/design/measured.md`).
/// Every choice but [`InitConfig::BurnDefault`] starts biases at zero.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitConfig {
    /// He for the ReLU family, Glorot for sigmoid, tanh, identity and Maxout,
    /// LeCun normal for SELU.
    #[default]
    Auto,
    /// Burn's `Linear` default: uniform in `±1/sqrt(fan_in)` for weights and biases.
    BurnDefault,
    /// Glorot/Xavier uniform: `U(±sqrt(6 / (fan_in + fan_out)))`.
    XavierUniform,
    /// Glorot/Xavier normal: `N(0, 2 / (fan_in + fan_out))`.
    XavierNormal,
    /// He/Kaiming uniform: `U(±sqrt(6 / fan_in))`.
    KaimingUniform,
    /// He/Kaiming normal: `N(0, 2 / fan_in)`.
    KaimingNormal,
    /// LeCun normal: `N(0, 1 / fan_in)`, what SELU's self-normalization assumes.
    LecunNormal,
    /// `U(±bound)` whatever the layer's fans: pylearn2's `irange`, e.g.
    /// Goodfellow et al. 2013's Maxout networks (0.005). Written
    /// `uniform:BOUND`.
    Uniform {
        /// Half the width of the interval, > 0.
        bound: f64,
    },
}

impl burn::config::Config for InitConfig {}

impl InitConfig {
    /// The names [`InitConfig::from_str`] accepts.
    pub const NAMES: &'static str = "auto, default, xavier-uniform, xavier-normal, kaiming-uniform, kaiming-normal, lecun-normal";

    /// Resolves `auto` against the activation that follows the linear map.
    /// An activation's own [`ActivationFn::initializer`](crate::ActivationFn::initializer)
    /// is not an `InitConfig`; [`InitConfig::linear`] honours it.
    pub fn resolve(self, activation: &ActivationConfig) -> InitConfig {
        match self {
            InitConfig::Auto => match activation.function().init_family() {
                InitFamily::He => InitConfig::KaimingNormal,
                InitFamily::Lecun => InitConfig::LecunNormal,
                InitFamily::Glorot => InitConfig::XavierUniform,
            },
            other => other,
        }
    }

    /// Burn's initializer for this choice (`auto` resolves as for an identity activation).
    pub fn initializer(self) -> Initializer {
        let he = std::f64::consts::SQRT_2;
        match self.resolve(&ActivationConfig::identity()) {
            InitConfig::BurnDefault => LinearConfig::new(1, 1).initializer,
            InitConfig::XavierUniform | InitConfig::Auto => {
                Initializer::XavierUniform { gain: 1.0 }
            }
            InitConfig::XavierNormal => Initializer::XavierNormal { gain: 1.0 },
            InitConfig::KaimingUniform => Initializer::KaimingUniform {
                gain: he,
                fan_out_only: false,
            },
            InitConfig::KaimingNormal => Initializer::KaimingNormal {
                gain: he,
                fan_out_only: false,
            },
            InitConfig::LecunNormal => Initializer::KaimingNormal {
                gain: 1.0,
                fan_out_only: false,
            },
            InitConfig::Uniform { bound } => Initializer::Uniform {
                min: -bound,
                max: bound,
            },
        }
    }

    /// Builds a `[d_input, d_output]` linear map initialized for `activation`
    /// (under `auto`, the activation's own initializer if it declares one).
    /// Biases start at zero except with [`InitConfig::BurnDefault`].
    pub fn linear(
        self,
        d_input: usize,
        d_output: usize,
        bias: bool,
        activation: &ActivationConfig,
        device: &Device,
    ) -> Linear {
        let resolved = self.resolve(activation);
        let initializer = match (self, activation.function().initializer()) {
            (InitConfig::Auto, Some(own)) => own,
            _ => resolved.initializer(),
        };
        let mut linear = LinearConfig::new(d_input, d_output)
            .with_bias(bias)
            .with_initializer(initializer)
            .init(device);
        if resolved != InitConfig::BurnDefault {
            // `Param::map` keeps the new tensor's (absent) gradient flag: without
            // `set_require_grad` the biases would never train.
            linear.bias = linear
                .bias
                .map(|bias| bias.map(|b| b.zeros_like()).set_require_grad(true));
        }
        linear
    }
}

impl fmt::Display for InitConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let InitConfig::Uniform { bound } = self {
            return write!(f, "uniform:{bound}");
        }
        f.write_str(match self {
            InitConfig::Auto => "auto",
            InitConfig::BurnDefault => "default",
            InitConfig::XavierUniform => "xavier-uniform",
            InitConfig::XavierNormal => "xavier-normal",
            InitConfig::KaimingUniform => "kaiming-uniform",
            InitConfig::KaimingNormal => "kaiming-normal",
            InitConfig::LecunNormal => "lecun-normal",
            InitConfig::Uniform { .. } => unreachable!("written above"),
        })
    }
}

impl FromStr for InitConfig {
    type Err = ModelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let expected = || format!("{}, or uniform:BOUND with BOUND > 0", Self::NAMES);
        if let Some(bound) = text.trim().to_ascii_lowercase().strip_prefix("uniform:") {
            return match bound.trim().parse::<f64>() {
                Ok(bound) if bound > 0.0 && bound.is_finite() => Ok(InitConfig::Uniform { bound }),
                _ => Err(ModelError::invalid("init", expected(), text)),
            };
        }
        Ok(
            match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
                "auto" => InitConfig::Auto,
                "default" | "burn-default" | "burn" => InitConfig::BurnDefault,
                "xavier-uniform" | "glorot-uniform" | "xavier" | "glorot" => {
                    InitConfig::XavierUniform
                }
                "xavier-normal" | "glorot-normal" => InitConfig::XavierNormal,
                "kaiming-uniform" | "he-uniform" => InitConfig::KaimingUniform,
                "kaiming-normal" | "he-normal" | "kaiming" | "he" => InitConfig::KaimingNormal,
                "lecun-normal" | "lecun" => InitConfig::LecunNormal,
                _ => {
                    return Err(ModelError::invalid("init", expected(), text));
                }
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight_variance(init: InitConfig, activation: &ActivationConfig) -> (f64, f64) {
        let device = Device::flex();
        burn::tensor::Device::seed(&device, 3);
        let linear = init.linear(400, 300, true, activation, &device);
        let w: Vec<f32> = linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let n = w.len() as f64;
        let mean = w.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = w.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
        let bias: Vec<f32> = linear
            .bias
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let bias_abs = bias.iter().map(|b| b.abs() as f64).sum::<f64>();
        (var, bias_abs)
    }

    /// Variances by the textbook formulas, fan_in = 400, fan_out = 300 (120,000 draws,
    /// so the sample variance is within about 1% of them).
    #[test]
    fn auto_picks_he_glorot_or_lecun_by_activation() {
        let cases = [
            (ActivationConfig::relu(), 2.0 / 400.0),
            (ActivationConfig::sigmoid(), 2.0 / 700.0),
            (ActivationConfig::maxout(2), 2.0 / 700.0),
            (ActivationConfig::selu(), 1.0 / 400.0),
        ];
        for (activation, expected) in cases {
            let (var, bias_abs) = weight_variance(InitConfig::Auto, &activation);
            assert!(
                (var / expected - 1.0).abs() < 0.03,
                "{activation}: variance {var}, expected {expected}"
            );
            assert_eq!(bias_abs, 0.0, "{activation}: biases start at zero");
        }
    }

    #[test]
    fn burn_default_keeps_burns_init() {
        let (var, bias_abs) = weight_variance(InitConfig::BurnDefault, &ActivationConfig::relu());
        // U(±1/sqrt(400)) has variance 1 / (3 * 400).
        assert!((var / (1.0 / 1200.0) - 1.0).abs() < 0.03, "{var}");
        assert!(bias_abs > 0.0);
    }

    #[test]
    fn names_parse_and_print() {
        for name in InitConfig::NAMES.split(", ") {
            let init: InitConfig = name.parse().unwrap();
            assert_eq!(init.to_string(), name);
        }
        assert!("he-magic".parse::<InitConfig>().is_err());
        let uniform: InitConfig = "uniform:0.005".parse().unwrap();
        assert_eq!(uniform, InitConfig::Uniform { bound: 0.005 });
        assert_eq!(uniform.to_string(), "uniform:0.005");
        for bad in ["uniform:0", "uniform:-1", "uniform:x", "uniform:inf"] {
            let error = bad.parse::<InitConfig>().unwrap_err().to_string();
            assert!(error.contains("uniform:BOUND"), "{bad}: {error}");
        }
    }

    /// U(±0.05) has variance 0.05^2 / 3, whatever the fans, and no weight
    /// outside the bound; the biases start at zero.
    #[test]
    fn uniform_draws_within_its_bound() {
        let init = InitConfig::Uniform { bound: 0.05 };
        let (var, bias_abs) = weight_variance(init, &ActivationConfig::relu());
        let expected = 0.05f64.powi(2) / 3.0;
        assert!((var / expected - 1.0).abs() < 0.03, "{var} vs {expected}");
        assert_eq!(bias_abs, 0.0);
        let linear = init.linear(30, 20, false, &ActivationConfig::maxout(2), &Device::flex());
        let largest: f32 = linear.weight.val().abs().max().into_scalar();
        assert!(largest <= 0.05, "{largest}");
    }
}
