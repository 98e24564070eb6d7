//! Alpha dropout (Klambauer et al. 2017): dropout that keeps SELU's
//! self-normalization.

use burn::config::Config;
use burn::module::{Flag, Module, Param};
use burn::tensor::{Distribution, Tensor};

use crate::ModelError;

/// SELU's negative saturation value, `-λα`.
const SELU_SATURATION: f64 = -1.758_099_340_847_376_6;

/// Configuration of [`AlphaDropout`].
#[derive(Config, Debug)]
pub struct AlphaDropoutConfig {
    /// Probability of dropping a unit, in [0, 1).
    pub prob: f64,
}

/// Alpha dropout: dropped units are set to SELU's saturation value `-λα`
/// instead of 0, then an affine map `a·x + b` restores the input's mean and
/// variance (for zero-mean, unit-variance inputs). Identity at evaluation.
#[derive(Module, Debug)]
pub struct AlphaDropout {
    /// Probability of dropping a unit.
    pub prob: f64,
    /// Whether the module is training (cleared by `.valid()`).
    pub training: Param<Flag>,
}

impl AlphaDropoutConfig {
    /// Builds the module.
    pub fn init(&self) -> Result<AlphaDropout, ModelError> {
        if !(0.0..1.0).contains(&self.prob) {
            return Err(ModelError::invalid(
                "alpha_dropout",
                "a probability in [0, 1)",
                self.prob,
            ));
        }
        Ok(AlphaDropout {
            prob: self.prob,
            training: Param::from_bool(true),
        })
    }
}

impl AlphaDropout {
    /// # Shapes
    /// - input: `[..., any]`
    /// - output: same as the input
    pub fn forward<const D: usize>(&self, input: Tensor<D>) -> Tensor<D> {
        if !self.training.is_enabled() || !input.device().is_autodiff() || self.prob == 0.0 {
            return input;
        }
        let keep = 1.0 - self.prob;
        let a = (keep + SELU_SATURATION * SELU_SATURATION * keep * self.prob).powf(-0.5);
        let b = -a * SELU_SATURATION * self.prob;
        let mask = input.random_like(Distribution::Bernoulli(keep));
        // kept: a·x + b; dropped: a·(-λα) + b
        let dropped = mask
            .clone()
            .neg()
            .add_scalar(1.0)
            .mul_scalar(SELU_SATURATION);
        (input * mask + dropped).mul_scalar(a).add_scalar(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn moments(x: Tensor<1>) -> (f64, f64) {
        let values: Vec<f32> = x.into_data().try_to_vec().unwrap();
        let n = values.len() as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, var)
    }

    /// On N(0, 1) inputs the output keeps mean 0 and variance 1 (200,000
    /// samples: the sample moments are within about 0.01 of them), while a
    /// share `prob` of the units sits at the dropped value `a·(-λα) + b`.
    #[test]
    fn keeps_mean_and_variance_while_training() {
        let device = Device::flex().autodiff();
        device.seed(5);
        let dropout = AlphaDropoutConfig::new(0.2).init().unwrap();
        let x = Tensor::<1>::random([200_000], Distribution::Normal(0.0, 1.0), &device);
        let y = dropout.forward(x.clone());
        assert_ne!(y.clone().into_data(), x.into_data());
        let (mean, var) = moments(y.inner());
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.015, "variance {var}");
    }

    #[test]
    fn identity_at_evaluation() {
        let device = Device::flex().autodiff();
        let dropout = AlphaDropoutConfig::new(0.5).init().unwrap().valid();
        let x = Tensor::<1>::random([1000], Distribution::Normal(0.0, 1.0), &device.inner());
        assert_eq!(dropout.forward(x.clone()).into_data(), x.into_data());
        assert!(AlphaDropoutConfig::new(1.0).init().is_err());
    }
}
