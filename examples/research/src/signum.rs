//! Signum (Bernstein et al. 2018, "signSGD"): momentum SGD that steps by
//! the sign of its momentum. Not one of recipe's optimizers; a Burn
//! [`Optimizer`] of this crate run by recipe's trainer.

use burn::optim::{
    LearningRate, ModuleOptimizer, Optimizer, RecordState, StateSink, StateSource, join_path,
};
use burn::tensor::{Device, Tensor};
use recipe_train::OptimizerFn;
use serde::{Deserialize, Serialize};

/// `m = beta m + (1 - beta) g` (the first `m` is `(1 - beta) g`), then
/// `w -= lr sign(m)`: every weight moves by exactly the learning rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Signum {
    /// The momentum's decay, in [0, 1).
    pub beta: f64,
}

/// One parameter's momentum.
#[derive(Debug, Clone)]
pub struct SignumState<const D: usize> {
    /// The running average of its gradients.
    pub momentum: Tensor<D>,
}

impl<const D: usize> RecordState for SignumState<D> {
    fn state_flatten(&self, prefix: &str, out: &mut StateSink) {
        out.push_tensor(
            &join_path(prefix, "signum"),
            "momentum",
            self.momentum.to_data(),
        );
    }

    fn state_unflatten(prefix: &str, src: &mut StateSource, device: &Device) -> Option<Self> {
        let data = src.take_tensor(&join_path(prefix, "signum"), "momentum")?;
        Some(Self {
            momentum: Tensor::from_data(data, device),
        })
    }
}

impl Optimizer for Signum {
    type State<const D: usize> = SignumState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let fresh = grad.mul_scalar(1.0 - self.beta);
        let momentum = match state {
            Some(state) => state.momentum.mul_scalar(self.beta) + fresh,
            None => fresh,
        };
        let tensor = tensor - momentum.clone().sign().mul_scalar(lr);
        (tensor, Some(SignumState { momentum }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        SignumState {
            momentum: state.momentum.to_device(device),
        }
    }
}

impl OptimizerFn for Signum {
    fn name(&self) -> &str {
        "signum"
    }

    fn init(&self) -> ModuleOptimizer {
        (*self).into()
    }

    /// Each step moves every weight by the whole rate: Adam's scale.
    fn default_learning_rate(&self) -> f64 {
        1e-3
    }

    fn check(&self) -> Result<(), String> {
        if (0.0..1.0).contains(&self.beta) {
            Ok(())
        } else {
            Err(format!("its beta must be in [0, 1), found {}", self.beta))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two updates by hand: the momentum averages, the step is its sign.
    #[test]
    fn steps_by_the_sign_of_the_momentum() {
        let device = Device::flex();
        let signum = Signum { beta: 0.9 };
        let weights = Tensor::<1>::from_floats([0.0, 0.0], &device);
        let first = Tensor::<1>::from_floats([1.0, -1.0], &device);
        let (weights, state) = signum.step(0.1, weights, first, None);
        // m = 0.1 * [1, -1]; then 0.9 m + 0.1 [-5, -5] = [-0.41, -0.59].
        let second = Tensor::<1>::from_floats([-5.0, -5.0], &device);
        let (weights, state) = signum.step(0.1, weights, second, state);
        let momentum = state
            .unwrap()
            .momentum
            .to_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!((momentum[0] + 0.41).abs() < 1e-6 && (momentum[1] + 0.59).abs() < 1e-6);
        let values = weights.to_data().try_to_vec::<f32>().unwrap();
        assert!(
            (values[0] - 0.0).abs() < 1e-6 && (values[1] - 0.2).abs() < 1e-6,
            "{values:?}"
        );
    }
}
