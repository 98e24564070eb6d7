//! Models for the lecture "Recipe of Deep Learning", built on Burn.
//!
//! - [`ActivationConfig`] selects an activation by name. Every activation,
//!   built-in or yours, implements [`ActivationFn`] and is named through
//!   [`register_activation`]; Maxout ([`MaxoutFn`], also a stand-alone
//!   [`Maxout`] layer) is one of them. See the [`activation`] module docs.
//! - [`MlpConfig`] builds an [`Mlp`] with one activation for all hidden layers
//!   or one per layer, inverted dropout on the input and on hidden units,
//!   [`AlphaDropout`] for SELU nets, [`DropConnect`] on weights, and a
//!   selectable [`InitConfig`].
//!
//! - [`kernels`]: sigmoid, tanh and Maxout's max through faster kernels a
//!   backend crate installs ([`ActivationKernels`]; `recipe-flex` for the
//!   CPU), Burn's tensor code otherwise.
//!
//! Nothing here names a backend: every constructor takes a Burn `Device`.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use recipe_models::{ActivationConfig, MlpConfig};
//!
//! let device = Device::flex();
//! let mlp = MlpConfig::new(784, vec![64, 64], 10)
//!     .with_activation(vec![ActivationConfig::relu()])
//!     .init(&device)
//!     .unwrap();
//! let logits = mlp.forward(Tensor::<2>::zeros([8, 784], &device));
//! assert_eq!(logits.dims(), [8, 10]);
//! ```
#![warn(missing_docs)]

pub mod activation;
mod alpha_dropout;
mod dropconnect;
mod dropout_form;
mod error;
mod init;
pub mod kernels;
mod maxout;
mod mlp;

pub use activation::{
    Activation, ActivationConfig, ActivationFn, ActivationName, Elu, Gelu, HardSigmoid, Identity,
    InitFamily, LeakyRelu, Mish, Prelu, Relu, Selu, Sigmoid, Silu, Softplus, Tanh,
    activation_names, activation_usages, register_activation,
};
pub use alpha_dropout::{AlphaDropout, AlphaDropoutConfig};
pub use dropconnect::{DropConnect, DropConnectConfig};
pub use dropout_form::DropoutForm;
pub use error::ModelError;
pub use init::InitConfig;
pub use kernels::{
    ActivationKernels, FusedActivation, install_activation_kernels, max_over_pieces,
};
pub use maxout::{Maxout, MaxoutConfig, MaxoutFn};
pub use mlp::{HiddenLayer, Mlp, MlpConfig};
pub use recipe_core::InvalidSetting;
