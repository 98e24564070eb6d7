//! DropConnect (Wan et al. 2013): drop *weights*, not units, while training.

use burn::config::Config;
use burn::module::{Flag, Module, Param};
use burn::nn::Linear;
use burn::tensor::{Distribution, Tensor};

use crate::{ModelError, kernels};

/// Configuration of [`DropConnect`].
#[derive(Config, Debug)]
pub struct DropConnectConfig {
    /// Probability of dropping each weight, in [0, 1).
    pub prob: f64,
}

/// Applies a linear map whose weights are each dropped with probability
/// `prob` while training (a fresh mask per batch); the kept weights are
/// scaled by `1 / (1 - prob)`, so the expected output equals the plain
/// linear map. Biases are kept. At evaluation it is the plain linear map.
#[derive(Module, Debug)]
pub struct DropConnect {
    /// Probability of dropping a weight.
    pub prob: f64,
    /// Whether the module is training (cleared by `.valid()`).
    pub training: Param<Flag>,
}

impl DropConnectConfig {
    /// Builds the module.
    pub fn init(&self) -> Result<DropConnect, ModelError> {
        if !(0.0..1.0).contains(&self.prob) {
            return Err(ModelError::invalid(
                "dropconnect",
                "a probability in [0, 1)",
                self.prob,
            ));
        }
        Ok(DropConnect {
            prob: self.prob,
            training: Param::from_bool(true),
        })
    }
}

impl DropConnect {
    /// `linear(input)` with dropped weights while training.
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, linear: &Linear, input: Tensor<2>) -> Tensor<2> {
        if !self.samples(&input) {
            return kernels::linear(linear, input);
        }
        let weight = linear.weight.val();
        let keep = 1.0 - self.prob;
        let mask = weight.random_like(Distribution::Bernoulli(keep));
        let bias = linear.bias.as_ref().map(|b| b.val());
        kernels::affine(input, (weight * mask).div_scalar(keep), bias)
    }

    /// Whether [`DropConnect::forward`] draws a mask for `input`: while
    /// training, on an autodiff device, with a drop probability above 0.
    /// Otherwise it is the plain linear map.
    pub fn samples(&self, input: &Tensor<2>) -> bool {
        self.training.is_enabled() && input.device().is_autodiff() && self.prob > 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Tolerance};

    /// The mean output over 4,000 masks approaches the plain linear map
    /// (each output sums 8 weighted terms; its standard error is about 0.01 here).
    #[test]
    fn expected_output_is_the_linear_map() {
        let device = Device::flex().autodiff();
        device.seed(11);
        let linear = LinearConfig::new(8, 3).init(&device);
        let dropconnect = DropConnectConfig::new(0.5).init().unwrap();
        let x = Tensor::<2>::random([1, 8], Distribution::Normal(0.0, 1.0), &device);
        let runs = 4_000;
        let mut sum = Tensor::<2>::zeros([1, 3], &device);
        let first = dropconnect.forward(&linear, x.clone()).into_data();
        let second = dropconnect.forward(&linear, x.clone()).into_data();
        assert_ne!(first, second, "a fresh mask per call");
        for _ in 0..runs {
            sum = sum + dropconnect.forward(&linear, x.clone()).detach();
        }
        let mean = sum.div_scalar(runs as f64);
        mean.into_data()
            .assert_approx_eq::<f32>(&linear.forward(x).into_data(), Tolerance::absolute(0.06));
    }

    #[test]
    fn plain_linear_map_at_evaluation() {
        let device = Device::flex().autodiff();
        let linear = LinearConfig::new(8, 3).init(&device).valid();
        let dropconnect = DropConnectConfig::new(0.5).init().unwrap().valid();
        let x = Tensor::<2>::ones([2, 8], &device.inner());
        assert_eq!(
            dropconnect.forward(&linear, x.clone()).into_data(),
            linear.forward(x).into_data()
        );
    }
}
