//! The built-in element-wise activations: Burn's tensor functions behind
//! [`ActivationFn`], each registered like a user's.

use burn::module::Param;
use burn::nn::Initializer;
use burn::nn::activation::{HardSigmoidConfig, SoftplusConfig};
use burn::tensor::activation as f;
use burn::tensor::{Device, Tensor};

use super::{ActivationFn, InitFamily};
use crate::ModelError;
use crate::kernels::FusedActivation;

macro_rules! plain_activation {
    ($(#[$doc:meta])* $name:ident, $spec:literal, $family:expr, |$x:ident| $body:expr) => {
        plain_activation!($(#[$doc])* $name, $spec, $family, false, None, |$x| $body);
    };
    ($(#[$doc:meta])* $name:ident, $spec:literal, $family:expr, $saturates:expr, |$x:ident| $body:expr) => {
        plain_activation!($(#[$doc])* $name, $spec, $family, $saturates, None, |$x| $body);
    };
    ($(#[$doc:meta])* $name:ident, $spec:literal, $family:expr, $saturates:expr, $fused:expr, |$x:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name;

        impl ActivationFn for $name {
            fn spec(&self) -> String {
                $spec.to_string()
            }
            fn init_family(&self) -> InitFamily {
                $family
            }
            fn saturates(&self) -> bool {
                $saturates
            }
            fn fused(&self) -> Option<FusedActivation> {
                $fused
            }
            fn forward(&self, $x: Tensor<2>, _params: &[Tensor<1>]) -> Tensor<2> {
                $body
            }
        }
    };
}

plain_activation!(
    /// `f(x) = x`: no activation.
    Identity, "identity", InitFamily::Glorot, |x| x
);
plain_activation!(
    /// `f(x) = 1 / (1 + e^-x)`: the lecture's vanishing-gradient culprit.
    Sigmoid, "sigmoid", InitFamily::Glorot, true, Some(FusedActivation::Sigmoid),
    |x| FusedActivation::Sigmoid.apply(x)
);
plain_activation!(
    /// `f(x) = tanh(x)`.
    Tanh, "tanh", InitFamily::Glorot, true, Some(FusedActivation::Tanh),
    |x| FusedActivation::Tanh.apply(x)
);
plain_activation!(
    /// `f(x) = max(0, x)`.
    Relu, "relu", InitFamily::He, false, Some(FusedActivation::Relu),
    |x| FusedActivation::Relu.apply(x)
);
plain_activation!(
    /// Scaled ELU (Klambauer et al. 2017), self-normalizing with LeCun init.
    Selu, "selu", InitFamily::Lecun, |x| f::selu(x)
);
plain_activation!(
    /// Gaussian error linear unit (exact, erf-based).
    Gelu, "gelu", InitFamily::He, |x| f::gelu(x)
);
plain_activation!(
    /// `f(x) = x * sigmoid(x)`, also called Swish.
    Silu, "silu", InitFamily::He, |x| f::silu(x)
);
plain_activation!(
    /// `f(x) = x * tanh(softplus(x))`.
    Mish, "mish", InitFamily::He, |x| f::mish(x)
);
plain_activation!(
    /// `f(x) = clamp(0.2 x + 0.5, 0, 1)` (Burn's slope and offset).
    HardSigmoid, "hard-sigmoid", InitFamily::Glorot, true,
    |x| HardSigmoidConfig::new().init().forward(x)
);

/// `f(x) = x` for `x >= 0`, `negative_slope * x` otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LeakyRelu {
    /// Slope for negative inputs (PyTorch's default is 0.01).
    pub negative_slope: f64,
}

impl ActivationFn for LeakyRelu {
    fn spec(&self) -> String {
        format!("leaky-relu:{}", self.negative_slope)
    }
    fn init_family(&self) -> InitFamily {
        InitFamily::He
    }
    fn forward(&self, x: Tensor<2>, _params: &[Tensor<1>]) -> Tensor<2> {
        f::leaky_relu(x, self.negative_slope)
    }
}

/// `f(x) = x` for `x > 0`, `alpha * (e^x - 1)` otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Elu {
    /// Saturation value for negative inputs.
    pub alpha: f64,
}

impl ActivationFn for Elu {
    fn spec(&self) -> String {
        format!("elu:{}", self.alpha)
    }
    fn init_family(&self) -> InitFamily {
        InitFamily::He
    }
    fn forward(&self, x: Tensor<2>, _params: &[Tensor<1>]) -> Tensor<2> {
        f::elu(x, self.alpha)
    }
}

/// `f(x) = ln(1 + e^(beta x)) / beta`, a smooth ReLU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Softplus {
    /// Sharpness.
    pub beta: f64,
}

impl ActivationFn for Softplus {
    fn spec(&self) -> String {
        format!("softplus:{}", self.beta)
    }
    fn init_family(&self) -> InitFamily {
        InitFamily::He
    }
    fn forward(&self, x: Tensor<2>, _params: &[Tensor<1>]) -> Tensor<2> {
        SoftplusConfig::new().with_beta(self.beta).init().forward(x)
    }
}

/// Leaky ReLU whose negative slope is learned (He et al. 2015).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prelu {
    /// Initial slope.
    pub alpha: f64,
    /// One slope per unit (`prelu-per-unit`) instead of one per layer (`prelu`).
    pub per_unit: bool,
}

impl ActivationFn for Prelu {
    fn spec(&self) -> String {
        let name = if self.per_unit {
            "prelu-per-unit"
        } else {
            "prelu"
        };
        format!("{name}:{}", self.alpha)
    }
    fn init_family(&self) -> InitFamily {
        InitFamily::He
    }
    fn parameters(
        &self,
        width: usize,
        device: &Device,
    ) -> Result<Vec<Param<Tensor<1>>>, ModelError> {
        let count = if self.per_unit { width } else { 1 };
        Ok(vec![
            Initializer::Constant { value: self.alpha }.init([count], device),
        ])
    }
    fn forward(&self, x: Tensor<2>, params: &[Tensor<1>]) -> Tensor<2> {
        f::prelu(x, params[0].clone())
    }
}

/// Parses an optional numeric argument, `default` when absent.
pub(super) fn number(name: &str, argument: Option<&str>, default: f64) -> Result<f64, ModelError> {
    argument.map_or(Ok(default), |text| {
        text.trim().parse::<f64>().map_err(|_| {
            ModelError::invalid(format!("activation {name}"), "a number after ':'", text)
        })
    })
}

/// Fails when an activation that takes no argument is given one.
pub(super) fn no_argument(name: &str, argument: Option<&str>) -> Result<(), ModelError> {
    match argument {
        None => Ok(()),
        Some(text) => Err(ModelError::invalid(
            format!("activation {name}"),
            "no argument",
            text,
        )),
    }
}

/// Fails unless `value` is finite (and positive when `positive`).
pub(super) fn finite(name: &str, value: f64, positive: bool) -> Result<f64, ModelError> {
    let ok = value.is_finite() && (!positive || value > 0.0);
    if ok {
        Ok(value)
    } else {
        let expected = if positive {
            "a finite number > 0"
        } else {
            "a finite parameter"
        };
        Err(ModelError::invalid(
            format!("activation {name}"),
            expected,
            value,
        ))
    }
}
