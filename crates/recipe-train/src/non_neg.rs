//! Non-negativity: negative weights are set to zero after every step.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::{Constraint, ParamTensor};

/// Sets every negative value to zero after each step (Keras' `NonNeg`):
/// a projection onto the non-negative weights, of any shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonNeg;

impl Constraint for NonNeg {
    fn name(&self) -> &str {
        "non-neg"
    }

    fn apply(&self, param: &ParamTensor) -> Tensor<2> {
        param.matrix.clone().clamp_min(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParamSelector, WeightConstraint};
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn negative_weights_and_selected_biases_become_zero() {
        let device = Device::flex();
        device.seed(5);
        let linear = LinearConfig::new(4, 6).init(&device);
        let selector = ParamSelector::weights_and_biases(Vec::new());
        let constrained = WeightConstraint::new(NonNeg, selector).apply(linear.clone());
        let expected: Vec<f32> = linear
            .weight
            .val()
            .into_data()
            .iter::<f32>()
            .map(|v| v.max(0.0))
            .collect();
        assert_eq!(
            constrained.weight.val().into_data(),
            TensorData::new(expected, [4, 6])
        );
        let bias = constrained.bias.unwrap().val().into_data();
        assert!(bias.iter::<f32>().all(|v| v >= 0.0), "{bias:?}");
        assert!(
            linear
                .bias
                .unwrap()
                .val()
                .into_data()
                .iter::<f32>()
                .any(|v| v < 0.0)
        );
    }
}
