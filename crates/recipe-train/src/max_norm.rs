//! The max-norm constraint (Srivastava et al. 2014): after every optimizer
//! step, each unit's incoming weight vector is rescaled to norm at most `c`.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::{ParamSelector, TrainError};

/// A max-norm constraint and the weight matrices it applies to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxNormConfig {
    /// The largest norm a unit's incoming weight vector may have (3 to 4 in the paper).
    pub max_norm: f64,
    /// Which weight matrices (biases are never constrained).
    pub selector: ParamSelector,
}

impl MaxNormConfig {
    /// Max-norm `c` on every weight matrix.
    pub fn new(max_norm: f64) -> Result<Self, TrainError> {
        let config = Self {
            max_norm,
            selector: ParamSelector::default(),
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks the bound.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.max_norm > 0.0 && self.max_norm.is_finite() {
            Ok(())
        } else {
            Err(TrainError::invalid(
                "max_norm",
                "a finite number > 0",
                self.max_norm,
            ))
        }
    }

    /// Applies the constraint to every selected weight matrix of `module`.
    pub fn apply<M: Module>(&self, module: M) -> M {
        let mut mapper = MaxNormMapper {
            config: self,
            path: Vec::new(),
        };
        module.map(&mut mapper)
    }
}

/// Rescales each column (a unit's incoming weights, in Burn's `[d_input,
/// d_output]` layout) whose L2 norm exceeds `max_norm` to exactly `max_norm`.
pub fn renorm_columns(weight: Tensor<2>, max_norm: f64) -> Tensor<2> {
    let norms = column_norms(weight.clone());
    // Columns at or under the bound keep a factor of exactly 1.
    let scale = norms.clone().recip().mul_scalar(max_norm).clamp_max(1.0);
    let scale = scale.mask_fill(norms.lower_equal_elem(max_norm), 1.0);
    weight * scale
}

/// The L2 norm of each column of `weight` (each unit's incoming weights),
/// shape `[1, d_output]`.
pub fn column_norms(weight: Tensor<2>) -> Tensor<2> {
    weight.powi_scalar(2).sum_dim(0).sqrt()
}

struct MaxNormMapper<'a> {
    config: &'a MaxNormConfig,
    path: Vec<String>,
}

impl ModuleMapper for MaxNormMapper<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if D != 2 || !self.config.selector.matches(&self.path.join("."), D) {
            return param;
        }
        let max_norm = self.config.max_norm;
        param.map(|tensor| {
            let tracked = tensor.is_require_grad();
            let autodiff = tensor.is_autodiff();
            let [rows, cols] = [tensor.dims()[0], tensor.dims()[1]];
            // Renormalize outside the graph, then make a fresh leaf parameter.
            let matrix: Tensor<2> = tensor.without_autodiff().reshape([rows, cols]);
            let renormed: Tensor<D> =
                renorm_columns(matrix, max_norm).reshape(tensor_dims::<D>(rows, cols));
            let renormed = if autodiff {
                renormed.autodiff()
            } else {
                renormed
            };
            if tracked {
                renormed.require_grad()
            } else {
                renormed
            }
        })
    }
}

fn tensor_dims<const D: usize>(rows: usize, cols: usize) -> [usize; D] {
    let mut dims = [1; D];
    dims[0] = rows;
    dims[D - 1] = cols;
    dims
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData, Tolerance};
    use recipe_models::MlpConfig;

    /// Column 0 is (3, 4), norm 5: rescaled to norm 2 it is (1.2, 1.6).
    /// Column 1 is (0.3, 0.4), norm 0.5: left alone. Column 2 is (0, 2), norm
    /// exactly 2: left alone. (By hand.)
    #[test]
    fn long_columns_shrink_to_the_bound_and_short_ones_stay() {
        let device = Device::flex();
        let w = Tensor::<2>::from_floats([[3.0, 0.3, 0.0], [4.0, 0.4, 2.0]], &device);
        renorm_columns(w, 2.0).into_data().assert_approx_eq::<f32>(
            &TensorData::from([[1.2f32, 0.3, 0.0], [1.6, 0.4, 2.0]]),
            Tolerance::absolute(1e-6),
        );
    }

    #[test]
    fn applies_to_selected_weight_matrices_only() {
        let device = Device::flex().autodiff();
        device.seed(1);
        let mlp = MlpConfig::new(20, vec![30], 5).init(&device).unwrap();
        let mut config = MaxNormConfig::new(0.05).unwrap();
        config.selector.layers = vec!["layers".into()];
        let bias_before = mlp.layers[0]
            .linear()
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data();
        let output_before = mlp.output.weight.val().into_data();
        let id_before = mlp.layers[0].linear().weight.id;
        let constrained = config.apply(mlp);
        let weight = constrained.layers[0].linear().weight.clone();
        assert_eq!(weight.id, id_before, "the parameter keeps its identity");
        assert!(weight.val().is_require_grad(), "and stays trainable");
        let norms: Vec<f32> = column_norms(weight.val()).into_data().try_to_vec().unwrap();
        assert!(norms.iter().all(|&n| n <= 0.05 + 1e-6), "{norms:?}");
        assert!(norms.iter().any(|&n| (n - 0.05).abs() < 1e-6));
        assert_eq!(
            constrained.layers[0]
                .linear()
                .bias
                .as_ref()
                .unwrap()
                .val()
                .into_data(),
            bias_before
        );
        assert_eq!(constrained.output.weight.val().into_data(), output_before);
        assert!(MaxNormConfig::new(0.0).is_err());
    }
}
