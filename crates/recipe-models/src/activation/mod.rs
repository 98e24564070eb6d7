//! Open activations: a trait that every activation implements, built-in or
//! yours, and a registry that resolves their names in configs.
//!
//! # Design
//!
//! A hidden layer of [`Mlp`](crate::Mlp) is a linear map followed by an
//! [`Activation`] module. The module is one concrete Burn `Module` (so it
//! saves, loads, moves between devices and trains like any other) holding
//!
//! - the activation's learnable parameters (`Vec<Param<Tensor<1>>>`, empty
//!   for most), and
//! - an [`ActivationFn`]: the behaviour, behind an `Arc<dyn ActivationFn>`.
//!
//! Why a trait object and not a type parameter on `Mlp`? Because names must
//! resolve at run time: a TOML file, the command line and a run's
//! `config.json` name activations as text (`relu`, `maxout:3`, `my-act:0.5`),
//! and a resumed run has to rebuild the same network from that text alone.
//! A generic `Mlp<A>` would make every user's network a different type, so
//! recipe's CLI, resume and reports could not handle a user's activation
//! without being re-compiled for it. With the trait object plus the
//! [registry](register_activation), a user's activation is registered once
//! and then works everywhere a built-in one does: one per layer or for all,
//! with dropout, DropConnect, `auto` init, `describe()`, `config.json` and
//! resume. Every built-in activation, Maxout included, is registered through
//! the same [`register_activation`] call a user makes.
//!
//! # Writing one
//!
//! ```
//! use std::sync::Arc;
//! use burn::module::Param;
//! use burn::tensor::{Device, Tensor};
//! use recipe_models::{
//!     ActivationConfig, ActivationFn, InitFamily, MlpConfig, ModelError, register_activation,
//! };
//!
//! /// `x * sigmoid(beta * x)` with a learnable `beta` per unit.
//! #[derive(Debug)]
//! struct LearnedSwish;
//!
//! impl ActivationFn for LearnedSwish {
//!     fn spec(&self) -> String {
//!         "learned-swish".into()
//!     }
//!     fn init_family(&self) -> InitFamily {
//!         InitFamily::He
//!     }
//!     fn parameters(&self, width: usize, device: &Device) -> Result<Vec<Param<Tensor<1>>>, ModelError> {
//!         Ok(vec![Param::from_tensor(Tensor::ones([width], device))])
//!     }
//!     fn forward(&self, x: Tensor<2>, params: &[Tensor<1>]) -> Tensor<2> {
//!         let beta = params[0].clone().unsqueeze_dim::<2>(0);
//!         x.clone() * burn::tensor::activation::sigmoid(x * beta)
//!     }
//! }
//!
//! register_activation("learned-swish", "learned-swish", |_arg| {
//!     Ok(ActivationConfig::new(LearnedSwish))
//! })
//! .unwrap();
//!
//! let device = Device::flex();
//! let config = MlpConfig::new(4, vec![8, 8], 3)
//!     .with_activation(vec!["learned-swish".parse().unwrap(), "relu".parse().unwrap()])
//!     .with_dropout(0.5);
//! let mlp = config.init(&device).unwrap();
//! assert_eq!(mlp.forward(Tensor::zeros([2, 4], &device)).dims(), [2, 3]);
//! assert_eq!(config.describe(), "4-8x2-3 learned-swish,relu");
//! ```

mod builtin;
mod registry;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ModelError;
use crate::kernels::{self, FusedActivation};

pub use builtin::{
    Elu, Gelu, HardSigmoid, Identity, LeakyRelu, Mish, Prelu, Relu, Selu, Sigmoid, Silu, Softplus,
    Tanh,
};
pub use registry::{ActivationName, activation_names, activation_usages, register_activation};

/// Which textbook initialization suits an activation (what `auto` init uses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InitFamily {
    /// Glorot/Xavier uniform: for sigmoid, tanh, identity, Maxout.
    Glorot,
    /// He/Kaiming normal: for the ReLU family (unbounded above, slope near 1).
    He,
    /// LeCun normal: for SELU's self-normalization.
    Lecun,
}

/// What an activation does. Implement it for your own activation (with
/// learnable parameters or without), wrap it in [`ActivationConfig::new`],
/// and [register](register_activation) a name so configs can name it.
///
/// The activation sees the output of its layer's linear map, which has
/// `width * pieces()` columns (one per unit unless the activation combines
/// several linear pieces into one unit, as Maxout does), and returns
/// `[batch, width]`.
pub trait ActivationFn: fmt::Debug + Send + Sync + 'static {
    /// The text that names this activation and its settings, e.g. `relu`,
    /// `leaky-relu:0.1`. The registry must parse it back to an equal
    /// activation: that is how `config.json` and resume rebuild it.
    fn spec(&self) -> String;

    /// The initialization family that `auto` init uses for the linear map
    /// feeding this activation. Glorot unless overridden.
    fn init_family(&self) -> InitFamily {
        InitFamily::Glorot
    }

    /// Whether it squashes its input into a bounded range where the gradient
    /// vanishes (sigmoid, tanh): the lecture's vanishing-gradient suspects.
    fn saturates(&self) -> bool {
        false
    }

    /// An initializer of the activation's own for its layer's linear map,
    /// used by `auto` init instead of [`ActivationFn::init_family`].
    fn initializer(&self) -> Option<Initializer> {
        None
    }

    /// Linear pieces per unit: the layer's linear map has `width * pieces`
    /// outputs, unit `j` owning columns `j * pieces .. (j + 1) * pieces`.
    fn pieces(&self) -> usize {
        1
    }

    /// The learnable parameters of one layer of `width` units (none by
    /// default), in the order [`ActivationFn::forward`] receives them. An
    /// activation that cannot serve a layer of this width says why.
    fn parameters(
        &self,
        width: usize,
        device: &Device,
    ) -> Result<Vec<Param<Tensor<1>>>, ModelError> {
        let _ = (width, device);
        Ok(Vec::new())
    }

    /// Applies the activation.
    ///
    /// # Shapes
    /// - x: `[batch, width * pieces]`, the layer's linear output
    /// - params: the values of [`ActivationFn::parameters`]
    /// - output: `[batch, width]`
    fn forward(&self, x: Tensor<2>, params: &[Tensor<1>]) -> Tensor<2>;

    /// The whole hidden block: `layer_input` is the layer's input (before its
    /// linear map), `x` the linear output. Override it for a block that needs
    /// its input, such as a residual connection; by default it is
    /// [`ActivationFn::forward`].
    ///
    /// # Shapes
    /// - layer_input: `[batch, d_input]`
    /// - x: `[batch, width * pieces]`
    /// - output: `[batch, width]`
    fn forward_block(
        &self,
        layer_input: Tensor<2>,
        x: Tensor<2>,
        params: &[Tensor<1>],
    ) -> Tensor<2> {
        let _ = layer_input;
        self.forward(x, params)
    }

    /// The element-wise function this activation is, when it is one that a
    /// kernel may apply inside its layer's linear map
    /// ([`kernels::linear_then`]): `None`
    /// unless overridden. An activation that returns `Some` must compute
    /// exactly that function in [`ActivationFn::forward`] and have no
    /// parameters; its layer then runs the fused map instead of the linear
    /// map, [`ActivationFn::forward`] and [`ActivationFn::forward_block`].
    fn fused(&self) -> Option<FusedActivation> {
        None
    }

    /// Checks that the block fits a layer from `d_input` to `width` units
    /// (e.g. a residual block needs `d_input == width`).
    fn check_layer(&self, d_input: usize, width: usize) -> Result<(), ModelError> {
        let _ = (d_input, width);
        Ok(())
    }
}

/// An activation, chosen by name or built from an [`ActivationFn`].
///
/// In text (the CLI, TOML and `config.json`) an activation is its name,
/// optionally followed by `:` and its argument: `relu`, `leaky-relu:0.1`,
/// `elu:1.0`, `prelu:0.25`, `softplus:2`, `maxout:3`, or a name you
/// [registered](register_activation). Two configs are equal when their
/// texts are.
#[derive(Clone)]
pub struct ActivationConfig(Arc<dyn ActivationFn>);

impl ActivationConfig {
    /// Wraps an activation of your own. To be named in configs and restored
    /// by resume, its [`ActivationFn::spec`] must also be registered.
    pub fn new(function: impl ActivationFn) -> Self {
        Self(Arc::new(function))
    }

    /// The behaviour.
    pub fn function(&self) -> &dyn ActivationFn {
        &*self.0
    }

    /// `f(x) = x`.
    pub fn identity() -> Self {
        Self::new(Identity)
    }

    /// `f(x) = 1 / (1 + e^-x)`.
    pub fn sigmoid() -> Self {
        Self::new(Sigmoid)
    }

    /// `f(x) = tanh(x)`.
    pub fn tanh() -> Self {
        Self::new(Tanh)
    }

    /// `f(x) = max(0, x)`.
    pub fn relu() -> Self {
        Self::new(Relu)
    }

    /// Leaky ReLU with this negative slope (PyTorch's default is 0.01).
    pub fn leaky_relu(negative_slope: f64) -> Self {
        Self::new(LeakyRelu { negative_slope })
    }

    /// Scaled ELU.
    pub fn selu() -> Self {
        Self::new(Selu)
    }

    /// Maxout with `pieces` pieces per unit.
    pub fn maxout(pieces: usize) -> Self {
        Self::new(crate::MaxoutFn { pieces })
    }

    /// Linear pieces per unit (1 for element-wise activations).
    pub fn pieces(&self) -> usize {
        self.0.pieces()
    }

    /// Whether the activation combines several linear pieces per unit.
    pub fn is_maxout(&self) -> bool {
        self.pieces() > 1 || self.spec_name() == "maxout"
    }

    /// Whether `auto` init gives it He initialization (the ReLU family).
    pub fn is_relu_family(&self) -> bool {
        self.0.init_family() == InitFamily::He
    }

    /// The name without its argument (`leaky-relu` for `leaky-relu:0.1`).
    pub fn spec_name(&self) -> String {
        let spec = self.0.spec();
        spec.split(':').next().unwrap_or_default().to_string()
    }

    /// Builds the activation module for a layer of `width` units.
    pub fn init(&self, width: usize, device: &Device) -> Result<Activation, ModelError> {
        Ok(Activation {
            params: self.0.parameters(width, device)?,
            function: self.clone(),
        })
    }
}

impl fmt::Display for ActivationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.spec())
    }
}

impl fmt::Debug for ActivationConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActivationConfig({})", self.0.spec())
    }
}

impl PartialEq for ActivationConfig {
    fn eq(&self, other: &Self) -> bool {
        self.0.spec() == other.0.spec()
    }
}

impl FromStr for ActivationConfig {
    type Err = ModelError;

    /// Resolves `name` or `name:argument` through the registry.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        registry::resolve(text)
    }
}

impl Serialize for ActivationConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.spec())
    }
}

/// What `config.json` may hold for an activation: its text form, or the
/// tagged object that recipe wrote before activations were open
/// (`{"name": "leaky-relu", "negative_slope": 0.01}`), so older runs still
/// resume and diagnose.
#[derive(Deserialize)]
#[serde(untagged)]
enum StoredActivation {
    Text(String),
    Tagged {
        name: String,
        #[serde(flatten)]
        parameters: std::collections::BTreeMap<String, f64>,
    },
}

impl StoredActivation {
    fn into_text(self) -> String {
        match self {
            Self::Text(text) => text,
            Self::Tagged { name, parameters } => {
                let per_unit = parameters.get("num_parameters").is_some_and(|&n| n > 1.0);
                let argument = parameters
                    .iter()
                    .find(|(key, _)| key.as_str() != "num_parameters")
                    .map(|(_, value)| value);
                let name = if name == "prelu" && per_unit {
                    "prelu-per-unit".to_string()
                } else {
                    name
                };
                match argument {
                    Some(value) => format!("{name}:{value}"),
                    None => name,
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for ActivationConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = StoredActivation::deserialize(deserializer)?.into_text();
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl burn::config::Config for ActivationConfig {}

/// An activation as a Burn module: its learnable parameters and its
/// behaviour. Built by [`ActivationConfig::init`].
#[derive(Module, Debug)]
pub struct Activation {
    /// The learnable parameters (empty for most activations).
    pub params: Vec<Param<Tensor<1>>>,
    /// What the activation computes.
    #[module(skip)]
    pub function: ActivationConfig,
}

impl Activation {
    fn values(&self) -> Vec<Tensor<1>> {
        self.params.iter().map(|p| p.val()).collect()
    }

    /// Applies the activation to a layer's linear output.
    ///
    /// # Shapes
    /// - x: `[batch, width * pieces]`
    /// - output: `[batch, width]`
    pub fn forward2(&self, x: Tensor<2>) -> Tensor<2> {
        self.function.0.forward(x, &self.values())
    }

    /// Applies the activation to a tensor of any rank, over its last
    /// dimension (for use outside an MLP, e.g. after a convolution).
    ///
    /// # Shapes
    /// - input: `[..., width * pieces]`
    /// - output: `[..., width]`
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        let mut dims = input.dims();
        let last = dims[D - 1];
        let rows = input.shape().num_elements() / last.max(1);
        let output = self.forward2(input.reshape([rows, last]));
        dims[D - 1] = output.dims()[1];
        output.reshape(dims)
    }

    /// The whole hidden layer after its input: the linear map, then the
    /// block ([`Activation::forward_block`]), or both in one kernel when the
    /// activation is a [`FusedActivation`] ([`ActivationFn::fused`]).
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, width]`
    pub fn forward_layer(&self, linear: &Linear, input: Tensor<2>) -> Tensor<2> {
        match self.function.0.fused() {
            Some(activation) if self.params.is_empty() => {
                kernels::linear_then(linear, input, activation)
            }
            _ => {
                let linear_output = kernels::linear(linear, input.clone());
                self.forward_block(input, linear_output)
            }
        }
    }

    /// The whole hidden block (see [`ActivationFn::forward_block`]).
    ///
    /// # Shapes
    /// - layer_input: `[batch, d_input]`
    /// - x: `[batch, width * pieces]`
    /// - output: `[batch, width]`
    pub fn forward_block(&self, layer_input: Tensor<2>, x: Tensor<2>) -> Tensor<2> {
        self.function
            .0
            .forward_block(layer_input, x, &self.values())
    }
}

#[cfg(test)]
mod tests;
