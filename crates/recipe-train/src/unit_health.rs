//! Hidden units that pass no gradient: dead units (the ReLU family's
//! failure, a unit whose output never changes) and saturated ones (the
//! sigmoid family's, an output on the flat part of the curve). Measured on
//! a batch of inputs, per hidden layer, for the diagnosis.

use burn::tensor::Tensor;
use recipe_models::{Activation, Mlp};
use serde::{Deserialize, Serialize};

/// A unit is dead when its output varies by no more than this over the
/// batch: it then carries nothing about the input, and for the ReLU family
/// (whose dead units output exactly 0) passes no gradient either.
pub const DEAD_RANGE: f64 = 1e-6;

/// An output is saturated when the activation's slope there is below this
/// share of its slope at 0 (for the sigmoid, `|z| > 3.6`, an output
/// outside about [0.026, 0.974]).
pub const SATURATED_SLOPE_SHARE: f64 = 0.1;

/// Step of the central difference that estimates the slope.
const SLOPE_STEP: f32 = 1e-2;

/// The health of one hidden layer's units on a batch of inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerUnits {
    /// The layer, e.g. `layers.0`.
    pub layer: String,
    /// Its units.
    pub units: usize,
    /// Inputs measured.
    pub inputs: usize,
    /// Share of units that are dead (see [`DEAD_RANGE`]).
    pub dead_share: f64,
    /// Share of (unit, input) outputs that are saturated (see
    /// [`SATURATED_SLOPE_SHARE`]); measured only for activations that
    /// [saturate](recipe_models::ActivationFn::saturates) and map each
    /// linear output to one unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturated_share: Option<f64>,
}

impl LayerUnits {
    /// Measures a layer from its linear output and its activation's output
    /// on the same batch.
    ///
    /// # Shapes
    /// - linear_output: `[batch, width * pieces]`
    /// - output: `[batch, width]`
    pub fn measure(
        layer: impl Into<String>,
        linear_output: Tensor<2>,
        output: Tensor<2>,
        activation: &Activation,
    ) -> Self {
        let [inputs, units] = output.dims();
        let range = output.clone().max_dim(0) - output.min_dim(0);
        let dead = range
            .lower_equal_elem(DEAD_RANGE)
            .int()
            .sum()
            .into_scalar::<i64>();
        let elementwise = linear_output.dims()[1] == units;
        let saturated_share = (activation.function.function().saturates() && elementwise)
            .then(|| saturated_share(linear_output, activation));
        Self {
            layer: layer.into(),
            units,
            inputs,
            dead_share: dead as f64 / units.max(1) as f64,
            saturated_share,
        }
    }
}

/// The share of `z`'s entries where the activation's slope is below
/// [`SATURATED_SLOPE_SHARE`] of its slope at 0, by central differences.
fn saturated_share(z: Tensor<2>, activation: &Activation) -> f64 {
    let [rows, width] = z.dims();
    let slope = |at: Tensor<2>| {
        (activation.forward2(at.clone() + SLOPE_STEP) - activation.forward2(at - SLOPE_STEP)).abs()
            / (2.0 * SLOPE_STEP)
    };
    let at_zero = slope(Tensor::zeros([1, width], &z.device()));
    let flat = slope(z).lower(at_zero * SATURATED_SLOPE_SHARE);
    let saturated = flat.int().sum().into_scalar::<i64>();
    saturated as f64 / (rows * width).max(1) as f64
}

/// The units of every hidden layer of `mlp` on `inputs`, input side first.
///
/// # Shapes
/// - inputs: `[batch, d_input]`
pub fn mlp_unit_health(mlp: &Mlp, inputs: Tensor<2>) -> Vec<LayerUnits> {
    let mut x = inputs;
    let mut layers = Vec::with_capacity(mlp.layers.len());
    for (index, layer) in mlp.layers.iter().enumerate() {
        let linear_output = layer.linear.forward(x.clone());
        let output = layer.activation.forward_block(x, linear_output.clone());
        layers.push(LayerUnits::measure(
            format!("layers.{index}"),
            linear_output,
            output.clone(),
            &layer.activation,
        ));
        x = output;
    }
    layers
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use recipe_models::{ActivationConfig, MlpConfig};

    fn activation(name: &str, width: usize) -> Activation {
        name.parse::<ActivationConfig>()
            .unwrap()
            .init(width, &Device::flex())
            .unwrap()
    }

    #[test]
    fn a_relu_unit_that_is_never_positive_is_dead() {
        let device = Device::flex();
        // Unit 0 is negative on every input, unit 1 changes sign, unit 2 is positive.
        let z = Tensor::<2>::from_floats(
            [[-1.0, -1.0, 1.0], [-2.0, 1.0, 2.0], [-0.5, 0.5, 3.0]],
            &device,
        );
        let relu = activation("relu", 3);
        let units = LayerUnits::measure("layers.0", z.clone(), relu.forward2(z), &relu);
        assert!((units.dead_share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(units.saturated_share, None, "relu does not saturate");
    }

    #[test]
    fn sigmoid_outputs_far_from_zero_are_saturated() {
        let device = Device::flex();
        // |z| > 3.64 is saturated: 3 of these 6 entries.
        let z = Tensor::<2>::from_floats([[0.0, 5.0, -8.0], [1.0, -3.0, 20.0]], &device);
        let sigmoid = activation("sigmoid", 3);
        let units = LayerUnits::measure("layers.0", z.clone(), sigmoid.forward2(z), &sigmoid);
        assert_eq!(units.saturated_share, Some(0.5));
        assert_eq!(units.dead_share, 0.0);
    }

    #[test]
    fn an_mlp_reports_every_hidden_layer() {
        let device = Device::flex();
        let mlp = MlpConfig::new(8, vec![16, 12], 3)
            .with_activation(vec![ActivationConfig::tanh()])
            .init(&device)
            .unwrap();
        // Deterministic inputs in [-1, 1]: the test draws nothing from the
        // device's generator, which other tests seed.
        let values: Vec<f32> = (0..32 * 8)
            .map(|i| ((i * 37 % 17) as f32) / 8.0 - 1.0)
            .collect();
        let inputs =
            Tensor::<2>::from_data(burn::tensor::TensorData::new(values, [32, 8]), &device);
        let units = mlp_unit_health(&mlp, inputs.clone() * 100.0);
        assert_eq!(units.len(), 2);
        assert_eq!(units[1].layer, "layers.1");
        assert_eq!(units[1].units, 12);
        let saturated = units[0].saturated_share.unwrap();
        let calm = mlp_unit_health(&mlp, inputs * 0.01)[0]
            .saturated_share
            .unwrap();
        assert!(saturated > 0.8 && calm == 0.0, "{saturated} vs {calm}");
    }
}
