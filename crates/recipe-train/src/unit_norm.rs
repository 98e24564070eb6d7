//! Unit norm: every unit's incoming weight vector rescaled to norm 1.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::{Constraint, ParamInfo, ParamTensor};

/// Rescales each unit's incoming weights (a column of a linear weight, a
/// filter of a convolution kernel) to L2 norm exactly `norm` after every
/// step (Keras' `UnitNorm` with `norm` 1). A unit whose weights are all zero
/// stays zero.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitNorm {
    /// The norm every unit gets (1 for unit norm).
    pub norm: f64,
}

impl Default for UnitNorm {
    fn default() -> Self {
        Self { norm: 1.0 }
    }
}

impl Constraint for UnitNorm {
    fn name(&self) -> &str {
        "unit-norm"
    }

    fn check(&self, param: &ParamInfo) -> Result<(), String> {
        if param.rank() < 2 {
            return Err(format!(
                "it rescales each unit's incoming weight vector, and a rank-{} parameter has none",
                param.rank()
            ));
        }
        if !(self.norm > 0.0 && self.norm.is_finite()) {
            return Err(format!(
                "its norm must be a finite number > 0, found {}",
                self.norm
            ));
        }
        Ok(())
    }

    fn apply(&self, param: &ParamTensor) -> Tensor<2> {
        let norms = param.unit_norms();
        let zero = norms.clone().equal_elem(0.0);
        let scale = norms.recip().mul_scalar(self.norm).mask_fill(zero, 0.0);
        param.matrix.clone() * scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ParamSelector, WeightConstraint};
    use burn::module::Param;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, TensorData, Tolerance};

    /// Columns (3, 4), (0, 0) and (0, 0.5) become (0.6, 0.8), (0, 0) and (0, 1) (by hand).
    #[test]
    fn every_unit_gets_norm_one_and_zero_units_stay_zero() {
        let device = Device::flex();
        let mut linear = LinearConfig::new(2, 3).init(&device);
        linear.weight = Param::from_tensor(Tensor::from_floats(
            [[3.0, 0.0, 0.0], [4.0, 0.0, 0.5]],
            &device,
        ));
        let constrained =
            WeightConstraint::new(UnitNorm::default(), ParamSelector::default()).apply(linear);
        constrained
            .weight
            .val()
            .into_data()
            .assert_approx_eq::<f32>(
                &TensorData::from([[0.6f32, 0.0, 0.0], [0.8, 0.0, 1.0]]),
                Tolerance::absolute(1e-6),
            );
        assert!(
            UnitNorm { norm: -1.0 }
                .check(&crate::ParamInfo::new("w", "Linear", vec![2, 3]))
                .is_err()
        );
    }
}
