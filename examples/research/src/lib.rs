//! A research crate that extends recipe from outside, through the public
//! API of `recipe-models` and `recipe-train` only:
//!
//! - [`LearnedSwish`]: an activation with a learnable parameter per unit,
//!   used by recipe's `Mlp` in any hidden layer;
//! - [`ResidualRelu`]: a hidden *block* (`relu(Wx + b) + x`) through the
//!   same mechanism;
//! - [`Orthogonality`]: a structured penalty that needs each parameter's
//!   shape and units;
//! - [`ClipValue`]: a constraint of its own;
//! - [`Confidence`]: a metric of its own (the mean largest softmax
//!   probability), read from the device every 50 steps by recipe's
//!   `DeferredMetric`.
//!
//! [`register`] names them all, so configs, `config.json` and resumed runs
//! can use them like the built-in ones.
#![warn(missing_docs)]

mod confidence;
mod run;

use std::sync::Once;

use burn::module::Param;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};
use recipe_models::{ActivationConfig, ActivationFn, InitFamily, ModelError, register_activation};
use recipe_train::{
    Constraint, ParamInfo, ParamTensor, Penalty, register_constraint, register_penalty,
};
use serde::{Deserialize, Serialize};

pub use confidence::{Confidence, ConfidenceInput};
pub use run::research_config;

/// `x * sigmoid(beta_j * x)` with a learnable `beta_j` per unit, starting
/// at `beta` (Ramachandran et al. 2017's Swish with a trainable beta).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LearnedSwish {
    /// The initial beta of every unit.
    pub beta: f64,
}

impl ActivationFn for LearnedSwish {
    fn spec(&self) -> String {
        format!("learned-swish:{}", self.beta)
    }

    fn init_family(&self) -> InitFamily {
        InitFamily::He
    }

    fn parameters(
        &self,
        width: usize,
        device: &Device,
    ) -> Result<Vec<Param<Tensor<1>>>, ModelError> {
        Ok(vec![Param::from_tensor(
            Tensor::ones([width], device).mul_scalar(self.beta),
        )])
    }

    fn forward(&self, x: Tensor<2>, params: &[Tensor<1>]) -> Tensor<2> {
        let beta = params[0].clone().unsqueeze_dim::<2>(0);
        x.clone() * sigmoid(x * beta)
    }
}

/// A residual hidden block: `relu(W x + b) + x`. It needs its layer's
/// input, so it overrides `forward_block`, and it checks that the layer
/// keeps the width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResidualRelu;

impl ActivationFn for ResidualRelu {
    fn spec(&self) -> String {
        "residual-relu".into()
    }

    fn init_family(&self) -> InitFamily {
        InitFamily::He
    }

    fn forward(&self, x: Tensor<2>, _params: &[Tensor<1>]) -> Tensor<2> {
        relu(x)
    }

    fn forward_block(
        &self,
        layer_input: Tensor<2>,
        x: Tensor<2>,
        params: &[Tensor<1>],
    ) -> Tensor<2> {
        self.forward(x, params) + layer_input
    }

    fn check_layer(&self, d_input: usize, width: usize) -> Result<(), ModelError> {
        if d_input == width {
            Ok(())
        } else {
            Err(ModelError::invalid(
                "width",
                format!("the layer's input width ({d_input}) for a residual block"),
                width,
            ))
        }
    }
}

/// `lambda * ‖Wᵀ W - I‖²_F` over the units of each selected weight (soft
/// orthogonality of the units' weight vectors): a structured penalty that
/// needs the parameter's unit layout, not only its values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Orthogonality {
    /// Strength.
    pub lambda: f64,
}

impl Penalty for Orthogonality {
    fn name(&self) -> &str {
        "orthogonality"
    }

    fn penalty(&self, param: &ParamTensor) -> Tensor<1> {
        // Units as columns: [fan_in, units].
        let units = if param.unit_dim == 1 {
            param.matrix.clone()
        } else {
            param.matrix.clone().transpose()
        };
        let [_, count] = units.dims();
        let gram = units.clone().transpose().matmul(units);
        let identity = Tensor::<2>::eye(count, &gram.device());
        (gram - identity)
            .powi_scalar(2)
            .sum()
            .mul_scalar(self.lambda)
    }
}

/// Clamps every selected value into `[-limit, limit]` after each step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClipValue {
    /// The largest magnitude a value may have.
    pub limit: f64,
}

impl Constraint for ClipValue {
    fn name(&self) -> &str {
        "clip-value"
    }

    fn check(&self, _param: &ParamInfo) -> Result<(), String> {
        if self.limit > 0.0 && self.limit.is_finite() {
            Ok(())
        } else {
            Err(format!(
                "its limit must be a finite number > 0, found {}",
                self.limit
            ))
        }
    }

    fn apply(&self, param: &ParamTensor) -> Tensor<2> {
        param.matrix.clone().clamp(-self.limit, self.limit)
    }
}

/// Registers this crate's activation, block, penalty and constraint under
/// their names (once per process; later calls do nothing).
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        register_activation("learned-swish", "learned-swish[:beta]", |argument| {
            let beta = match argument {
                None => 1.0,
                Some(text) => text.parse().map_err(|_| {
                    ModelError::invalid("activation learned-swish", "a number after ':'", text)
                })?,
            };
            Ok(ActivationConfig::new(LearnedSwish { beta }))
        })
        .expect("learned-swish is a new name");
        register_activation(
            "residual-relu",
            "residual-relu",
            |argument| match argument {
                None => Ok(ActivationConfig::new(ResidualRelu)),
                Some(text) => Err(ModelError::invalid(
                    "activation residual-relu",
                    "no argument",
                    text,
                )),
            },
        )
        .expect("residual-relu is a new name");
        register_penalty::<Orthogonality>("orthogonality").expect("a new penalty name");
        register_constraint::<ClipValue>("clip-value").expect("a new constraint name");
    });
}
