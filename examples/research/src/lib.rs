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
//! - [`WarmRestarts`]: a learning-rate schedule of its own (SGDR), run by
//!   recipe's trainer at every step and continued by resume;
//! - [`Signum`]: an optimizer of its own (a Burn `Optimizer` with its own
//!   state), run by recipe's trainer, checkpointed and continued by resume;
//! - [`Confidence`]: a metric of its own (the mean largest softmax
//!   probability), read from the device every 50 steps by recipe's
//!   `DeferredMetric`.
//!
//! [`register`] names them all, so configs, `config.json` and resumed runs
//! can use them like the built-in ones.
#![warn(missing_docs)]

mod confidence;
mod run;
mod signum;

use std::sync::Once;

use burn::module::Param;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{Device, Tensor};
use recipe_models::{ActivationConfig, ActivationFn, InitFamily, ModelError, register_activation};
use recipe_train::{
    Constraint, LrScheduleFn, ParamInfo, ParamTensor, Penalty, register_constraint,
    register_lr_schedule, register_optimizer, register_penalty,
};
use serde::{Deserialize, Serialize};

pub use confidence::{Confidence, ConfidenceInput};
pub use run::research_config;
pub use signum::{Signum, SignumState};

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

/// Loshchilov & Hutter's SGDR (2017): a half cosine from the peak down to
/// `min_lr` over `period` epochs, then again from the peak, each cycle
/// `mult` times as long as the one before. Not one of recipe's schedules;
/// stated in epochs and applied at every step, like them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WarmRestarts {
    /// The first cycle's length in epochs, above 0.
    pub period: f64,
    /// Each cycle's length over the one before, at least 1.
    pub mult: f64,
    /// The rate at the end of every cycle, below the peak.
    pub min_lr: f64,
}

impl LrScheduleFn for WarmRestarts {
    fn name(&self) -> &str {
        "warm-restarts"
    }

    fn rate(&self, peak: f64, step: usize, steps_per_epoch: usize, _epochs: usize) -> f64 {
        let (mut into_cycle, mut length) = (step as f64 / steps_per_epoch as f64, self.period);
        while into_cycle >= length {
            into_cycle -= length;
            length *= self.mult;
        }
        let cosine = (std::f64::consts::PI * into_cycle / length).cos();
        self.min_lr + (peak - self.min_lr) * (1.0 + cosine) / 2.0
    }

    fn check(&self, learning_rate: f64, _epochs: usize) -> Result<(), String> {
        if !(self.period > 0.0 && self.period.is_finite()) {
            return Err(format!(
                "its period must be above 0 epochs, found {}",
                self.period
            ));
        }
        if !(self.mult >= 1.0 && self.mult.is_finite()) {
            return Err(format!("its mult must be at least 1, found {}", self.mult));
        }
        if !(0.0..learning_rate).contains(&self.min_lr) {
            return Err(format!(
                "its min_lr must be at least 0 and below the learning rate ({learning_rate}), found {}",
                self.min_lr
            ));
        }
        Ok(())
    }
}

/// Registers this crate's activation, block, penalty, constraint, schedule and optimizer under
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
        register_lr_schedule::<WarmRestarts>("warm-restarts").expect("a new schedule name");
        register_optimizer::<Signum>("signum").expect("a new optimizer name");
    });
}
