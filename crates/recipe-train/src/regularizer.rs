//! Penalties on the weights, added to the loss in the training step.
//!
//! The lecture: with an L2 penalty `λ/2 Σ w²` every step multiplies each
//! weight by `1 - ηλ` (a factor a little below 1) before the gradient step;
//! with an L1 penalty `λ Σ |w|` every step subtracts `ηλ·sign(w)`, a constant,
//! so small weights reach (nearly) zero and the weights become sparse.
//!
//! That is not the same as *decoupled* weight decay (AdamW, `--weight-decay`):
//! there the shrinking `w -= η·wd·w` happens outside the gradient, so Adam's
//! per-weight scaling does not weaken it. With plain SGD the two coincide.

use std::fmt;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::{ParamTensor, Penalty, PenaltyGradient, TrainError};

/// The built-in penalties.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Regularizer {
    /// `lambda * Σ |w|`; gradient `lambda * sign(w)`.
    L1 {
        /// Strength.
        lambda: f64,
    },
    /// `lambda / 2 * Σ w²`; gradient `lambda * w`.
    L2 {
        /// Strength.
        lambda: f64,
    },
    /// Both: `l1 * Σ |w| + l2 / 2 * Σ w²` (elastic net).
    L1L2 {
        /// L1 strength.
        l1: f64,
        /// L2 strength.
        l2: f64,
    },
}

impl Regularizer {
    /// L1 and/or L2 from two optional strengths (`None` when both are absent or zero).
    pub fn from_strengths(l1: Option<f64>, l2: Option<f64>) -> Result<Option<Self>, TrainError> {
        for (field, value) in [("l1", l1), ("l2", l2)] {
            if let Some(v) = value
                && !(v >= 0.0 && v.is_finite())
            {
                return Err(TrainError::invalid(field, "a finite number >= 0", v));
            }
        }
        Ok(match (l1.unwrap_or(0.0), l2.unwrap_or(0.0)) {
            (0.0, 0.0) => None,
            (l1, 0.0) => Some(Self::L1 { lambda: l1 }),
            (0.0, l2) => Some(Self::L2 { lambda: l2 }),
            (l1, l2) => Some(Self::L1L2 { l1, l2 }),
        })
    }
}

impl Regularizer {
    /// The penalty of a flattened parameter.
    pub fn of_values(&self, values: Tensor<1>) -> Tensor<1> {
        let l1 = |v: Tensor<1>, lambda: f64| v.abs().sum().mul_scalar(lambda);
        let l2 = |v: Tensor<1>, lambda: f64| v.powi_scalar(2).sum().mul_scalar(lambda / 2.0);
        match *self {
            Self::L1 { lambda } => l1(values, lambda),
            Self::L2 { lambda } => l2(values, lambda),
            Self::L1L2 { l1: a, l2: b } => l1(values.clone(), a) + l2(values, b),
        }
    }
}

impl fmt::Display for Regularizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::L1 { lambda } => write!(f, "L1 {lambda}"),
            Self::L2 { lambda } => write!(f, "L2 {lambda}"),
            Self::L1L2 { l1, l2 } => write!(f, "L1 {l1} + L2 {l2}"),
        }
    }
}

impl Penalty for Regularizer {
    fn name(&self) -> &str {
        "regularizer"
    }

    fn penalty(&self, param: &ParamTensor) -> Tensor<1> {
        self.of_values(param.flat())
    }

    fn closed_form(&self, _param: &ParamTensor) -> Option<PenaltyGradient> {
        let (l1, l2) = match *self {
            Self::L1 { lambda } => (lambda, 0.0),
            Self::L2 { lambda } => (0.0, lambda),
            Self::L1L2 { l1, l2 } => (l1, l2),
        };
        Some(PenaltyGradient::ElasticNet { l1, l2 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParamSelector, WeightPenalty};
    use burn::tensor::{Device, TensorData, Tolerance};
    use recipe_models::{ActivationConfig, MlpConfig};

    fn device() -> Device {
        Device::flex().autodiff()
    }

    /// Golden values by hand / NumPy:
    /// ```python
    /// w = np.array([0.5, -2.0, 0.0, 1.5])
    /// l1 = 0.1 * np.abs(w).sum()              # 0.4
    /// l2 = 0.1 / 2 * (w ** 2).sum()           # 0.325
    /// grad_l1 = 0.1 * np.sign(w)              # [0.1, -0.1, 0, 0.1]
    /// grad_l2 = 0.1 * w                       # [0.05, -0.2, 0, 0.15]
    /// ```
    #[test]
    fn penalties_and_gradients_match_numpy() {
        let device = device();
        let cases = [
            (Regularizer::L1 { lambda: 0.1 }, 0.4, [0.1, -0.1, 0.0, 0.1]),
            (
                Regularizer::L2 { lambda: 0.1 },
                0.325,
                [0.05, -0.2, 0.0, 0.15],
            ),
            (
                Regularizer::L1L2 { l1: 0.1, l2: 0.1 },
                0.725,
                [0.15, -0.3, 0.0, 0.25],
            ),
        ];
        for (regularizer, value, gradient) in cases {
            let w = Tensor::<1>::from_floats([0.5, -2.0, 0.0, 1.5], &device).require_grad();
            let penalty = regularizer.of_values(w.clone());
            let got = penalty.clone().into_scalar::<f64>();
            assert!(
                (got - value).abs() < 1e-6,
                "{regularizer}: {got} != {value}"
            );
            let grads = penalty.backward();
            w.grad(&grads).unwrap().into_data().assert_approx_eq::<f32>(
                &TensorData::from(gradient.map(|g| g as f32)),
                Tolerance::absolute(1e-6),
            );
        }
    }

    #[test]
    fn weights_only_by_default_and_layers_on_request() {
        let device = Device::flex();
        let mlp = MlpConfig::new(4, vec![3, 3], 2)
            .with_activation(vec![ActivationConfig::relu(), ActivationConfig::maxout(2)])
            .init(&device)
            .unwrap();
        let l2 = Regularizer::L2 { lambda: 1.0 };
        let weights = WeightPenalty::new(l2, ParamSelector::default());
        assert_eq!(
            weights.selected_paths(&mlp),
            vec![
                "layers.0.linear.weight",
                "layers.1.linear.weight",
                "output.weight"
            ]
        );
        let with_bias =
            WeightPenalty::new(l2, ParamSelector::weights_and_biases(vec!["output".into()]));
        assert_eq!(
            with_bias.selected_paths(&mlp),
            vec!["output.weight", "output.bias"]
        );

        // The penalty of the network is the sum over its selected weights.
        let expected: f64 = [
            mlp.layers[0].linear().weight.val(),
            mlp.layers[1].linear().weight.val(),
            mlp.output.weight.val(),
        ]
        .into_iter()
        .map(|w| w.powi_scalar(2).sum().into_scalar::<f64>() / 2.0)
        .sum();
        let got = weights.of(&mlp).unwrap().into_scalar::<f64>();
        assert!((got - expected).abs() < 1e-5, "{got} != {expected}");
    }

    #[test]
    fn strengths_make_the_right_regularizer() {
        assert_eq!(Regularizer::from_strengths(None, Some(0.0)).unwrap(), None);
        assert_eq!(
            Regularizer::from_strengths(Some(1e-5), None).unwrap(),
            Some(Regularizer::L1 { lambda: 1e-5 })
        );
        assert_eq!(
            Regularizer::from_strengths(Some(1e-5), Some(1e-4)).unwrap(),
            Some(Regularizer::L1L2 { l1: 1e-5, l2: 1e-4 })
        );
        let err = Regularizer::from_strengths(Some(-1.0), None).unwrap_err();
        assert!(err.to_string().contains("`l1`"), "{err}");
    }
}
