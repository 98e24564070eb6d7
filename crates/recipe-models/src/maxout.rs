//! Maxout: a learnable piecewise-linear activation (Goodfellow et al. 2013).

use burn::config::Config;
use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, Tensor};

use crate::kernels::max_over_pieces;
use crate::{ActivationConfig, ActivationFn, InitConfig, ModelError};

/// Maxout as an [`ActivationFn`]: the max over each unit's `pieces`
/// consecutive outputs of the layer's linear map. This is how
/// [`Mlp`](crate::Mlp) builds Maxout layers (`maxout:3`); [`Maxout`] is the
/// same thing as a stand-alone layer with its own linear map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxoutFn {
    /// Linear pieces per unit, at least 1.
    pub pieces: usize,
}

impl ActivationFn for MaxoutFn {
    fn spec(&self) -> String {
        format!("maxout:{}", self.pieces)
    }
    fn pieces(&self) -> usize {
        self.pieces
    }
    fn forward(&self, x: Tensor<2>, _params: &[Tensor<1>]) -> Tensor<2> {
        max_over_pieces(x, self.pieces)
    }
}

/// Configuration of a [`Maxout`] layer.
#[derive(Config, Debug)]
pub struct MaxoutConfig {
    /// Size of each input vector.
    pub d_input: usize,
    /// Number of Maxout units (size of each output vector).
    pub d_output: usize,
    /// Linear pieces per unit; the unit outputs the largest. 1 is a plain linear layer.
    #[config(default = 2)]
    pub pieces: usize,
    /// Whether each piece has a bias.
    #[config(default = true)]
    pub bias: bool,
    /// How the pieces' weights are drawn (`auto` is Glorot for Maxout).
    #[config(default = "InitConfig::Auto")]
    pub initializer: InitConfig,
}

/// A Maxout layer: one linear map to `d_output * pieces` values, then the max
/// over the `pieces` values of each unit.
///
/// Unit `j` owns columns `j * pieces .. (j + 1) * pieces` of the linear map.
/// ReLU is the special case `pieces = 2` with one piece fixed at zero; with
/// more pieces a unit can learn any convex piecewise-linear function. In the
/// backward pass the gradient reaches only the winning piece of each unit.
#[derive(Module, Debug)]
pub struct Maxout {
    /// The linear map of all pieces, `[d_input, d_output * pieces]`.
    pub linear: Linear,
    /// Number of units.
    pub d_output: usize,
    /// Pieces per unit.
    pub pieces: usize,
}

impl MaxoutConfig {
    /// Checks the configuration.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (field, value) in [
            ("d_input", self.d_input),
            ("d_output", self.d_output),
            ("pieces", self.pieces),
        ] {
            if value == 0 {
                return Err(ModelError::invalid(field, "at least 1", value));
            }
        }
        Ok(())
    }

    /// Builds the layer on `device`.
    pub fn init(&self, device: &Device) -> Result<Maxout, ModelError> {
        self.validate()?;
        let linear = self.initializer.linear(
            self.d_input,
            self.d_output * self.pieces,
            self.bias,
            &ActivationConfig::maxout(self.pieces),
            device,
        );
        Ok(Maxout {
            linear,
            d_output: self.d_output,
            pieces: self.pieces,
        })
    }
}

impl Maxout {
    /// Applies the layer.
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_output]`
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.max_of(self.linear.forward(input))
    }

    /// The value of every piece before the max.
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_output, pieces]`
    pub fn pieces(&self, input: Tensor<2>) -> Tensor<3> {
        let [batch, _] = input.dims();
        self.linear
            .forward(input)
            .reshape([batch, self.d_output, self.pieces])
    }

    /// The max over pieces of an output of this layer's linear map (for
    /// callers that computed it themselves, e.g. through DropConnect).
    ///
    /// # Shapes
    /// - linear_output: `[batch, d_output * pieces]`
    /// - output: `[batch, d_output]`
    pub fn max_of(&self, linear_output: Tensor<2>) -> Tensor<2> {
        max_over_pieces(linear_output, self.pieces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::tensor::{TensorData, Tolerance};

    fn device() -> Device {
        Device::flex().autodiff()
    }

    /// A Maxout layer with the given `[d_input, d_output * pieces]` weights and biases.
    fn maxout(weight: TensorData, bias: TensorData, pieces: usize, device: &Device) -> Maxout {
        let [d_input, width] = [weight.shape()[0], weight.shape()[1]];
        let mut layer = MaxoutConfig::new(d_input, width / pieces)
            .with_pieces(pieces)
            .init(device)
            .unwrap();
        layer.linear.weight = Param::from_tensor(Tensor::from_data(weight, device));
        layer.linear.bias = Some(Param::from_tensor(Tensor::from_data(bias, device)));
        layer
    }

    /// pieces = 1 is a plain linear layer. Golden values from NumPy:
    /// ```python
    /// x = np.array([[1.0, -2.0], [0.5, 3.0]])
    /// W = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]]); b = np.array([0.1, -0.2, 0.3])
    /// x @ W + b  # [[-2.4, -1.7, 3.3], [4.85, 0.05, -0.2]]
    /// ```
    #[test]
    fn one_piece_is_a_linear_layer() {
        let device = device();
        let layer = maxout(
            TensorData::from([[0.5f32, -1.0, 2.0], [1.5, 0.25, -0.5]]),
            TensorData::from([0.1f32, -0.2, 0.3]),
            1,
            &device,
        );
        let x = Tensor::<2>::from_floats([[1.0, -2.0], [0.5, 3.0]], &device);
        let expected = TensorData::from([[-2.4f32, -1.7, 3.3], [4.85, 0.05, -0.2]]);
        layer
            .forward(x.clone())
            .into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
        layer
            .linear
            .forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&expected, Tolerance::absolute(1e-6));
    }

    /// With two pieces, one fixed at zero (zero weights and bias), each unit is
    /// ReLU of its other piece: the lecture's "ReLU is a special case of Maxout".
    /// Golden values from NumPy:
    /// ```python
    /// x = np.array([[1.0, -2.0], [0.5, 3.0]])
    /// W = np.array([[0.5, -1.0], [1.5, 0.25]]); b = np.array([0.1, -0.2])
    /// np.maximum(x @ W + b, 0)  # [[0.0, 0.0], [4.85, 0.05]]
    /// ```
    #[test]
    fn two_pieces_with_one_at_zero_is_relu() {
        let device = device();
        // Columns are [unit0.piece0, unit0.piece1, unit1.piece0, unit1.piece1];
        // piece 1 of each unit is all zeros.
        let layer = maxout(
            TensorData::from([[0.5f32, 0.0, -1.0, 0.0], [1.5, 0.0, 0.25, 0.0]]),
            TensorData::from([0.1f32, 0.0, -0.2, 0.0]),
            2,
            &device,
        );
        let x = Tensor::<2>::from_floats([[1.0, -2.0], [0.5, 3.0]], &device);
        layer.forward(x).into_data().assert_approx_eq::<f32>(
            &TensorData::from([[0.0f32, 0.0], [4.85, 0.05]]),
            Tolerance::absolute(1e-6),
        );
    }

    /// The gradient reaches only the winning piece of each unit. One example,
    /// x = [1, 2]; unit 0's pieces are 1.0*1 + 0*2 = 1 and 0*1 + 1*2 = 2 (piece 1 wins),
    /// unit 1's pieces are 3 and -3 (piece 0 wins). With loss = sum of outputs,
    /// d loss / d W[:, winner] = x and d loss / d W[:, loser] = 0 (by hand).
    #[test]
    fn gradient_flows_only_through_the_winning_piece() {
        let device = device();
        let layer = maxout(
            TensorData::from([[1.0f32, 0.0, 1.0, -1.0], [0.0, 1.0, 1.0, -2.0]]),
            TensorData::from([0.0f32, 0.0, 0.0, 0.0]),
            2,
            &device,
        );
        let x = Tensor::<2>::from_floats([[1.0, 2.0]], &device);
        let output = layer.forward(x);
        output
            .clone()
            .into_data()
            .assert_approx_eq::<f32>(&TensorData::from([[2.0f32, 3.0]]), Tolerance::default());
        let grads = output.sum().backward();
        let weight_grad = layer.linear.weight.grad(&grads).unwrap();
        weight_grad.into_data().assert_approx_eq::<f32>(
            &TensorData::from([[0.0f32, 1.0, 1.0, 0.0], [0.0, 2.0, 2.0, 0.0]]),
            Tolerance::default(),
        );
        let bias_grad = layer.linear.bias.as_ref().unwrap().grad(&grads).unwrap();
        bias_grad.into_data().assert_approx_eq::<f32>(
            &TensorData::from([0.0f32, 1.0, 1.0, 0.0]),
            Tolerance::default(),
        );
    }

    #[test]
    fn shapes_and_zero_pieces() {
        let device = Device::flex();
        let layer = MaxoutConfig::new(5, 4)
            .with_pieces(3)
            .init(&device)
            .unwrap();
        assert_eq!(layer.linear.weight.dims(), [5, 12]);
        let y = layer.forward(Tensor::zeros([7, 5], &device));
        assert_eq!(y.dims(), [7, 4]);
        let err = MaxoutConfig::new(5, 4)
            .with_pieces(0)
            .init(&device)
            .unwrap_err();
        assert!(err.to_string().contains("`pieces`"), "{err}");
    }
}
