//! Group lasso over units: an L1 penalty on whole units, which switches
//! entire units off rather than single weights.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::{ParamTensor, Penalty, TrainError};

/// `lambda * Σ_units ‖w_unit‖₂` (Yuan & Lin 2006, groups = the incoming
/// weights of each unit: a column of a linear weight, a filter of a
/// convolution kernel). Like L1 on the units' norms, its gradient
/// `lambda * w_unit / ‖w_unit‖` has the same size for every unit however
/// small, so whole units are driven to zero while L2 would only shrink them.
///
/// The norm is `sqrt(Σ w² + 1e-12)` so that a unit already at zero gets a
/// zero gradient instead of NaN (it adds at most `lambda * 1e-6` per unit).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupLasso {
    /// Strength.
    pub lambda: f64,
}

impl GroupLasso {
    /// Group lasso of strength `lambda` (finite, > 0).
    pub fn new(lambda: f64) -> Result<Self, TrainError> {
        if lambda > 0.0 && lambda.is_finite() {
            Ok(Self { lambda })
        } else {
            Err(TrainError::invalid(
                "group_lasso",
                "a finite number > 0",
                lambda,
            ))
        }
    }
}

impl Penalty for GroupLasso {
    fn name(&self) -> &str {
        "group-lasso"
    }

    fn penalty(&self, param: &ParamTensor) -> Tensor<1> {
        let squares = param.unit_sums(param.matrix.clone().powi_scalar(2));
        squares
            .add_scalar(1e-12)
            .sqrt()
            .sum()
            .mul_scalar(self.lambda)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParamInfo, ParamTensor};
    use burn::tensor::{Device, TensorData, Tolerance};

    /// A `[2 inputs, 2 units]` linear weight: unit 0 is (3, 4), norm 5;
    /// unit 1 is (0, 0). Penalty 0.1 * (5 + 0) = 0.5 (plus 1e-7 from the
    /// epsilon); gradient 0.1 * w / 5 = (0.06, 0.08) for unit 0, 0 for
    /// unit 1 (by hand).
    #[test]
    fn penalty_and_gradient_by_hand() {
        let device = Device::flex().autodiff();
        let w = Tensor::<2>::from_floats([[3.0, 0.0], [4.0, 0.0]], &device).require_grad();
        let param = ParamTensor {
            info: ParamInfo::new("layers.0.linear.weight", "Linear", vec![2, 2]),
            matrix: w.clone(),
            unit_dim: 1,
        };
        let penalty = GroupLasso::new(0.1).unwrap().penalty(&param);
        let value = penalty.clone().into_scalar::<f64>();
        assert!((value - 0.5).abs() < 1e-6, "{value}");
        let grads = penalty.backward();
        w.grad(&grads).unwrap().into_data().assert_approx_eq::<f32>(
            &TensorData::from([[0.06f32, 0.0], [0.08, 0.0]]),
            Tolerance::absolute(1e-6),
        );
        assert!(GroupLasso::new(0.0).is_err());
    }
}
