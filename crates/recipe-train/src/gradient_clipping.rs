//! Gradient clipping before the optimizer step: by the global norm over all
//! parameters (PyTorch's `clip_grad_norm_`, used by Lightning's
//! `gradient_clip_val`, and Keras' `global_clipnorm`) or by value.
//!
//! Burn's own `GradientClipping` works on one parameter tensor at a time, so
//! its "norm" is each tensor's own; the global norm needs every gradient
//! first, which is why recipe clips in its classifier's `optimize`, on the
//! gradient the optimizer step applies: with several devices or
//! accumulated batches, their mean, as Lightning clips after the
//! all-reduce and after accumulation.

use std::fmt;
use std::str::FromStr;

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::param::gradient_squares;

/// How gradients are clipped before each optimizer step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GradientClipping {
    /// Scales every gradient by `max_norm / norm` when the global L2 norm of
    /// all gradients together exceeds `max_norm` (their direction is kept).
    GlobalNorm(f64),
    /// Clamps every gradient entry to `[-max, max]` (the direction changes).
    Value(f64),
}

impl GradientClipping {
    /// The threshold must be a finite number above zero.
    pub fn validate(&self) -> Result<(), TrainError> {
        let (field, threshold) = match self {
            Self::GlobalNorm(max_norm) => ("gradient_clipping.global_norm", *max_norm),
            Self::Value(max) => ("gradient_clipping.value", *max),
        };
        if threshold > 0.0 && threshold.is_finite() {
            Ok(())
        } else {
            Err(TrainError::invalid(field, "a finite number > 0", threshold))
        }
    }

    /// Clips `grads` (the gradients of `module`'s parameters) and returns
    /// them with the global L2 norm they had before clipping (shape `[1]`,
    /// on the gradients' device, not read back: no device sync).
    pub fn clip<M: Module>(
        &self,
        module: &M,
        grads: GradientsParams,
    ) -> (GradientsParams, Option<Tensor<1>>) {
        let norm = global_norm(module, &grads);
        let Some(norm) = norm else {
            return (grads, None);
        };
        let mut rewrite = Rewrite {
            grads,
            change: match *self {
                Self::GlobalNorm(max_norm) => {
                    // min(1, max_norm / norm), computed on the device; the
                    // epsilon keeps a zero gradient at zero, as PyTorch's 1e-6.
                    let scale = (norm.clone() + 1e-6).recip().mul_scalar(max_norm);
                    Change::Scale(Box::new(scale.clamp_max(1.0)))
                }
                Self::Value(max) => Change::Clamp(max),
            },
        };
        module.visit(&mut rewrite);
        (rewrite.grads, Some(norm))
    }
}

impl fmt::Display for GradientClipping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GlobalNorm(max_norm) => write!(f, "norm:{max_norm}"),
            Self::Value(max) => write!(f, "value:{max}"),
        }
    }
}

impl FromStr for GradientClipping {
    type Err = TrainError;

    /// `norm:MAX` (global norm) or `value:MAX`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || TrainError::invalid("gradient clipping", "norm:MAX or value:MAX", text);
        let (kind, threshold) = text.split_once(':').ok_or_else(bad)?;
        let threshold: f64 = threshold.trim().parse().map_err(|_| bad())?;
        let clipping = match kind.trim() {
            "norm" => Self::GlobalNorm(threshold),
            "value" => Self::Value(threshold),
            _ => return Err(bad()),
        };
        clipping.validate()?;
        Ok(clipping)
    }
}

/// The L2 norm of all of `module`'s gradients in `grads` together (`None`
/// when no parameter has a gradient).
pub fn global_norm<M: Module>(module: &M, grads: &GradientsParams) -> Option<Tensor<1>> {
    gradient_squares(module, grads)
        .into_iter()
        .map(|squares| squares.sum)
        .reduce(|total, sum| total + sum)
        .map(Tensor::sqrt)
}

enum Change {
    Scale(Box<Tensor<1>>),
    Clamp(f64),
}

struct Rewrite {
    grads: GradientsParams,
    change: Change,
}

impl ModuleVisitor for Rewrite {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let Some(grad) = self.grads.remove::<D>(param.id) else {
            return;
        };
        let clipped = match &self.change {
            Change::Scale(scale) => {
                let shape = [1; D];
                grad * scale.as_ref().clone().reshape(shape)
            }
            Change::Clamp(max) => grad.clamp(-max, *max),
        };
        self.grads.register::<D>(param.id, clipped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, TensorData, Tolerance};

    /// A 2 -> 1 linear layer with weight gradient [[3], [4]] and bias
    /// gradient [12]: global norm sqrt(9 + 16 + 144) = 13.
    fn layer_and_grads() -> (Linear, GradientsParams) {
        let device = Device::flex();
        let layer = LinearConfig::new(2, 1).init(&device);
        let mut grads = GradientsParams::new();
        grads.register::<2>(
            layer.weight.id,
            Tensor::from_floats([[3.0], [4.0]], &device),
        );
        let bias = layer.bias.as_ref().unwrap();
        grads.register::<1>(bias.id, Tensor::from_floats([12.0], &device));
        (layer, grads)
    }

    fn values<const D: usize>(grads: &GradientsParams, param: &Param<Tensor<D>>) -> TensorData {
        grads.get::<D>(param.id).unwrap().into_data()
    }

    /// By hand: max_norm 6.5 halves every gradient (6.5 / 13); the norm
    /// returned is the one before clipping.
    #[test]
    fn global_norm_scales_all_gradients_together() {
        let (layer, grads) = layer_and_grads();
        let (clipped, norm) = GradientClipping::GlobalNorm(6.5).clip(&layer, grads);
        let norm: f64 = norm.unwrap().into_scalar::<f64>();
        assert!((norm - 13.0).abs() < 1e-5, "{norm}");
        values(&clipped, &layer.weight).assert_approx_eq::<f32>(
            &TensorData::from([[1.5f32], [2.0]]),
            Tolerance::absolute(1e-5),
        );
        values(&clipped, layer.bias.as_ref().unwrap())
            .assert_approx_eq::<f32>(&TensorData::from([6.0f32]), Tolerance::absolute(1e-5));
        let after: f64 = global_norm(&layer, &clipped).unwrap().into_scalar::<f64>();
        assert!((after - 6.5).abs() < 1e-4, "{after}");
    }

    /// Below the threshold nothing changes (the scale is capped at 1).
    #[test]
    fn a_small_gradient_is_left_alone() {
        let (layer, grads) = layer_and_grads();
        let (clipped, _) = GradientClipping::GlobalNorm(100.0).clip(&layer, grads);
        values(&clipped, &layer.weight).assert_approx_eq::<f32>(
            &TensorData::from([[3.0f32], [4.0]]),
            Tolerance::absolute(1e-5),
        );
    }

    #[test]
    fn value_clamps_each_entry() {
        let (layer, grads) = layer_and_grads();
        let (clipped, _) = GradientClipping::Value(3.5).clip(&layer, grads);
        values(&clipped, &layer.weight).assert_approx_eq::<f32>(
            &TensorData::from([[3.0f32], [3.5]]),
            Tolerance::absolute(1e-6),
        );
        values(&clipped, layer.bias.as_ref().unwrap())
            .assert_approx_eq::<f32>(&TensorData::from([3.5f32]), Tolerance::absolute(1e-6));
    }

    #[test]
    fn text_form_and_bad_thresholds() {
        assert_eq!(
            "norm:1.5".parse::<GradientClipping>().unwrap(),
            GradientClipping::GlobalNorm(1.5)
        );
        assert_eq!(
            "value:0.5".parse::<GradientClipping>().unwrap().to_string(),
            "value:0.5"
        );
        for bad in ["norm:0", "value:-1", "norm:inf", "norm", "size:3", "norm:x"] {
            let error = bad.parse::<GradientClipping>().unwrap_err().to_string();
            assert!(error.contains("gradient"), "{bad}: {error}");
        }
    }
}
