//! A multi-layer perceptron with a configurable activation per hidden layer.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear};
use burn::tensor::{Device, Tensor};

use crate::kernels;
use crate::{
    Activation, ActivationConfig, AlphaDropout, AlphaDropoutConfig, DropConnect, DropConnectConfig,
    DropoutForm, InitConfig, ModelError,
};

/// Configuration of an [`Mlp`].
#[derive(Config, Debug)]
pub struct MlpConfig {
    /// Size of each input vector (784 for MNIST).
    pub d_input: usize,
    /// Width of each hidden layer, input side first; for Maxout layers, the number of units.
    pub hidden: Vec<usize>,
    /// Number of outputs (classes).
    pub d_output: usize,
    /// Hidden activations: one entry for all layers, or one per hidden layer.
    #[config(default = "vec![ActivationConfig::relu()]")]
    pub activation: Vec<ActivationConfig>,
    /// Probability of dropping a hidden unit while training (inverted dropout), in [0, 1).
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Probability of dropping an input feature while training, in [0, 1).
    #[config(default = 0.0)]
    pub input_dropout: f64,
    /// Alpha dropout after each hidden layer (for SELU nets), in [0, 1);
    /// use instead of `dropout`.
    #[config(default = 0.0)]
    pub alpha_dropout: f64,
    /// Probability of dropping each weight of the hidden layers while training (DropConnect).
    #[config(default = 0.0)]
    pub dropconnect: f64,
    /// How weights are initialized; `auto` picks per layer from its activation.
    #[config(default = "InitConfig::Auto")]
    pub initializer: InitConfig,
    /// Whether the linear maps have biases.
    #[config(default = true)]
    pub bias: bool,
    /// Where `dropout` and `input_dropout` put their `1 - p`: `inverted`
    /// (on the kept units while training) or `lecture` (on the outputs at
    /// test time, the same as scaling the next layer's weights).
    #[config(default = "DropoutForm::Inverted")]
    pub dropout_form: DropoutForm,
    /// The form of `input_dropout` alone, when it differs from
    /// `dropout_form` (e.g. `unscaled`, pylearn2's unscaled input dropout
    /// under inverted dropout on the hidden units); `None` is
    /// `dropout_form`.
    #[config(default = "None")]
    pub input_dropout_form: Option<DropoutForm>,
}

/// One hidden layer of an [`Mlp`]: a linear map, then an [`Activation`]
/// (element-wise, Maxout, or a block of your own).
#[derive(Module, Debug)]
pub struct HiddenLayer {
    /// The linear map, `[d_input, width * pieces]`.
    pub linear: Linear,
    /// What follows the linear map.
    pub activation: Activation,
}

impl HiddenLayer {
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, width]`
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        self.activation.forward_layer(&self.linear, input)
    }

    /// [`HiddenLayer::forward`] with the layer's weights passed through DropConnect.
    pub fn forward_dropconnect(&self, input: Tensor<2>, dropconnect: &DropConnect) -> Tensor<2> {
        if !dropconnect.samples(&input) {
            return self.forward(input);
        }
        let linear_output = dropconnect.forward(&self.linear, input.clone());
        self.activation.forward_block(input, linear_output)
    }

    /// The layer's linear map (for Maxout, the map of all its pieces).
    pub fn linear(&self) -> &Linear {
        &self.linear
    }

    /// Linear pieces per unit (1 unless the activation is Maxout-like).
    pub fn pieces(&self) -> usize {
        self.activation.function.pieces()
    }
}

/// A multi-layer perceptron: hidden layers, then a linear output layer
/// producing logits.
///
/// Dropout is inverted dropout (kept values are scaled by `1 / (1 - p)`)
/// unless [`MlpConfig::dropout_form`] (or, for the inputs,
/// [`MlpConfig::input_dropout_form`]) asks for another [`DropoutForm`], and
/// samples only while training: on a model from `.valid()`, or on a device
/// without autodiff, it is the identity (inverted, unscaled) or a scaling
/// by `1 - p` (lecture).
#[derive(Module, Debug)]
pub struct Mlp {
    /// Hidden layers, input side first.
    pub layers: Vec<HiddenLayer>,
    /// Dropout on the input features.
    pub input_dropout: Dropout,
    /// Dropout after each hidden layer.
    pub dropout: Dropout,
    /// Alpha dropout after each hidden layer.
    pub alpha_dropout: AlphaDropout,
    /// DropConnect on the hidden layers' weights.
    pub dropconnect: DropConnect,
    /// The output layer, `[last hidden width, d_output]`; no activation.
    pub output: Linear,
    /// Where dropout after the hidden layers puts its `1 - p`.
    #[module(skip)]
    pub dropout_form: DropoutForm,
    /// Where dropout on the input features puts its `1 - p`.
    #[module(skip)]
    pub input_dropout_form: DropoutForm,
}

impl MlpConfig {
    /// The activation of hidden layer `index`.
    pub fn activation_of(&self, index: usize) -> &ActivationConfig {
        if self.activation.len() == 1 {
            &self.activation[0]
        } else {
            &self.activation[index]
        }
    }

    /// Checks that the network can be built, naming the first offending field.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.d_input == 0 {
            return Err(ModelError::invalid("d_input", "at least 1", 0));
        }
        if self.d_output == 0 {
            return Err(ModelError::invalid("d_output", "at least 1", 0));
        }
        if self.hidden.is_empty() {
            return Err(ModelError::invalid(
                "hidden",
                "at least one hidden layer width",
                "an empty list",
            ));
        }
        if let Some(index) = self.hidden.iter().position(|&width| width == 0) {
            return Err(ModelError::invalid(
                format!("hidden[{index}]"),
                "at least 1",
                0,
            ));
        }
        let count = self.activation.len();
        if count != 1 && count != self.hidden.len() {
            return Err(ModelError::invalid(
                "activation",
                format!(
                    "one activation for all layers or one per hidden layer ({})",
                    self.hidden.len()
                ),
                format!("{count} activations"),
            ));
        }
        let mut d_input = self.d_input;
        for (index, &width) in self.hidden.iter().enumerate() {
            let field = if count == 1 {
                "activation".to_string()
            } else {
                format!("activation[{index}]")
            };
            let function = self.activation_of(index).function();
            if function.pieces() == 0 {
                return Err(ModelError::invalid(
                    format!("{field}.pieces"),
                    "at least 1",
                    0,
                ));
            }
            function
                .check_layer(d_input, width)
                .map_err(|e| e.in_field(&field))?;
            d_input = width;
        }
        for (field, p) in [
            ("dropout", self.dropout),
            ("input_dropout", self.input_dropout),
            ("alpha_dropout", self.alpha_dropout),
            ("dropconnect", self.dropconnect),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(ModelError::invalid(field, "a probability in [0, 1)", p));
            }
        }
        if self.dropout > 0.0 && self.alpha_dropout > 0.0 {
            return Err(ModelError::invalid(
                "alpha_dropout",
                "0 when `dropout` is set (use one kind of dropout on hidden units)",
                self.alpha_dropout,
            ));
        }
        Ok(())
    }

    /// Builds the network on `device`.
    pub fn init(&self, device: &Device) -> Result<Mlp, ModelError> {
        self.validate()?;
        let mut layers = Vec::with_capacity(self.hidden.len());
        let mut d_input = self.d_input;
        for (index, &width) in self.hidden.iter().enumerate() {
            let activation = self.activation_of(index);
            let field = format!("activation[{index}]");
            let layer = HiddenLayer {
                linear: self.initializer.linear(
                    d_input,
                    width * activation.pieces(),
                    self.bias,
                    activation,
                    device,
                ),
                activation: activation
                    .init(width, device)
                    .map_err(|e| e.in_field(&field))?,
            };
            layers.push(layer);
            d_input = width;
        }
        // The output layer feeds a softmax, not a ReLU: Glorot under `auto`.
        let output = self.initializer.linear(
            d_input,
            self.d_output,
            self.bias,
            &ActivationConfig::identity(),
            device,
        );
        Ok(Mlp {
            layers,
            input_dropout: DropoutConfig::new(self.input_dropout).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            alpha_dropout: AlphaDropoutConfig::new(self.alpha_dropout).init()?,
            dropconnect: DropConnectConfig::new(self.dropconnect).init()?,
            output,
            dropout_form: self.dropout_form,
            input_dropout_form: self.input_dropout_form.unwrap_or(self.dropout_form),
        })
    }

    /// A short human-readable description, e.g. `784-500x3-10 relu`.
    pub fn describe(&self) -> String {
        let mut widths = String::new();
        let mut index = 0;
        while index < self.hidden.len() {
            let run = self.hidden[index..]
                .iter()
                .take_while(|&&w| w == self.hidden[index])
                .count();
            widths.push_str(&format!("-{}", self.hidden[index]));
            if run > 1 {
                widths.push_str(&format!("x{run}"));
            }
            index += run;
        }
        let activations: Vec<String> = self.activation.iter().map(|a| a.to_string()).collect();
        format!(
            "{}{}-{} {}",
            self.d_input,
            widths,
            self.d_output,
            activations.join(",")
        )
    }
}

impl Mlp {
    /// Maps inputs to logits.
    ///
    /// # Shapes
    /// - input: `[batch, d_input]`
    /// - output: `[batch, d_output]` (logits, no softmax)
    pub fn forward(&self, input: Tensor<2>) -> Tensor<2> {
        let form = self.dropout_form;
        let mut x = self.input_dropout_form.forward(&self.input_dropout, input);
        for layer in &self.layers {
            x = layer.forward_dropconnect(x, &self.dropconnect);
            x = self.alpha_dropout.forward(form.forward(&self.dropout, x));
        }
        kernels::linear(&self.output, x)
    }

    /// The same net with all its dropout (on the inputs too) in `form`:
    /// every weight matrix fed by a dropout layer is rescaled (see
    /// [`DropoutForm::convert_weights_factor`]) so that the converted net
    /// computes the same function at test time (and, between the inverted
    /// and the lecture's forms, with the same masks while training), up to
    /// float rounding.
    pub fn with_dropout_form(mut self, form: DropoutForm) -> Self {
        let scale = |linear: Linear, from: DropoutForm, p: f64| {
            let factor = from.convert_weights_factor(form, p);
            if factor == 1.0 {
                return linear;
            }
            Linear {
                weight: linear.weight.map(|w| w * factor),
                ..linear
            }
        };
        let mut feeding = (self.input_dropout_form, self.input_dropout.prob);
        for layer in &mut self.layers {
            let linear = layer.linear.clone();
            layer.linear = scale(linear, feeding.0, feeding.1);
            feeding = (self.dropout_form, self.dropout.prob);
        }
        self.output = scale(self.output, feeding.0, feeding.1);
        self.dropout_form = form;
        self.input_dropout_form = form;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> MlpConfig {
        MlpConfig::new(6, vec![5, 4], 3)
    }

    #[test]
    fn forward_maps_inputs_to_logits() {
        let device = Device::flex();
        for activation in ["relu", "sigmoid", "maxout:3", "prelu", "selu", "mish"] {
            let mlp = config()
                .with_activation(vec![activation.parse().unwrap()])
                .init(&device)
                .unwrap();
            let logits = mlp.forward(Tensor::ones([2, 6], &device));
            assert_eq!(logits.dims(), [2, 3], "{activation}");
        }
    }

    /// Every weight and bias must receive a gradient, or it silently never
    /// trains (as recipe's zero-initialized biases once did).
    #[test]
    fn every_weight_and_bias_gets_a_gradient() {
        let device = Device::flex().autodiff();
        for activation in ["relu", "maxout:3", "sigmoid"] {
            for init in ["auto", "default", "xavier-normal"] {
                let mlp = config()
                    .with_activation(vec![activation.parse().unwrap()])
                    .with_initializer(init.parse().unwrap())
                    .init(&device)
                    .unwrap();
                let grads = mlp.forward(Tensor::ones([2, 6], &device)).sum().backward();
                let linears = mlp
                    .layers
                    .iter()
                    .map(|layer| layer.linear())
                    .chain([&mlp.output]);
                for (index, linear) in linears.enumerate() {
                    let bias = linear.bias.as_ref().expect("a bias");
                    assert!(
                        linear.weight.val().grad(&grads).is_some()
                            && bias.val().grad(&grads).is_some(),
                        "{activation}, init {init}: linear {index} is frozen"
                    );
                }
            }
        }
    }

    #[test]
    fn one_activation_per_layer() {
        let device = Device::flex();
        let mlp = config()
            .with_activation(vec![
                ActivationConfig::sigmoid(),
                ActivationConfig::maxout(2),
            ])
            .init(&device)
            .unwrap();
        assert_eq!(mlp.layers[0].pieces(), 1);
        assert_eq!(mlp.layers[1].pieces(), 2);
        assert_eq!(mlp.layers[1].linear().weight.dims(), [5, 8]);
        assert_eq!(mlp.output.weight.dims(), [4, 3]);
    }

    #[test]
    fn impossible_configs_name_the_field() {
        let cases: Vec<(MlpConfig, &str)> = vec![
            (MlpConfig::new(6, vec![], 3), "`hidden`"),
            (MlpConfig::new(6, vec![5, 0], 3), "`hidden[1]`"),
            (MlpConfig::new(0, vec![5], 3), "`d_input`"),
            (MlpConfig::new(6, vec![5], 0), "`d_output`"),
            (config().with_dropout(1.0), "`dropout`"),
            (config().with_input_dropout(-0.1), "`input_dropout`"),
            (config().with_dropconnect(1.0), "`dropconnect`"),
            (
                config().with_dropout(0.1).with_alpha_dropout(0.1),
                "`alpha_dropout`",
            ),
            (config().with_dropout(f64::NAN), "`dropout`"),
            (
                config().with_activation(vec![ActivationConfig::maxout(0)]),
                "`activation.pieces`",
            ),
            (
                config().with_activation(vec![ActivationConfig::relu(); 3]),
                "`activation`",
            ),
            (
                config()
                    .with_activation(vec![ActivationConfig::relu(), ActivationConfig::maxout(0)]),
                "`activation[1].pieces`",
            ),
        ];
        for (config, field) in cases {
            let err = config.init(&Device::flex()).unwrap_err();
            assert!(err.to_string().contains(field), "{err} should name {field}");
        }
    }

    #[test]
    fn dropout_runs_only_while_training() {
        let device = Device::flex().autodiff();
        let mlp = config().with_input_dropout(0.5).init(&device).unwrap();
        let x = Tensor::<2>::ones([64, 6], &device);
        let train_a = mlp.forward(x.clone()).into_data();
        let train_b = mlp.forward(x.clone()).into_data();
        assert_ne!(
            train_a, train_b,
            "dropout masks differ between training passes"
        );
        let valid = mlp.valid();
        let x = x.inner();
        assert_eq!(
            valid.forward(x.clone()).into_data(),
            valid.forward(x).into_data(),
            "no dropout at evaluation"
        );
    }

    #[test]
    fn every_dropout_kind_is_off_at_evaluation() {
        let device = Device::flex().autodiff();
        let mlp = config()
            .with_activation(vec![ActivationConfig::selu()])
            .with_alpha_dropout(0.3)
            .with_dropconnect(0.3)
            .init(&device)
            .unwrap();
        let x = Tensor::<2>::ones([16, 6], &device);
        assert_ne!(
            mlp.forward(x.clone()).into_data(),
            mlp.forward(x.clone()).into_data()
        );
        let valid = mlp.valid();
        let x = x.inner();
        assert_eq!(
            valid.forward(x.clone()).into_data(),
            valid.forward(x).into_data()
        );
    }

    #[test]
    fn describe_compresses_repeated_widths() {
        let config = MlpConfig::new(784, vec![500, 500, 500, 100], 10);
        assert_eq!(config.describe(), "784-500x3-100-10 relu");
    }

    /// The lecture: ReLU is the special case of Maxout with two pieces, one
    /// fixed at zero. A Maxout net whose first pieces are a ReLU net's weights
    /// and whose second pieces are zero computes that ReLU net's logits bit
    /// for bit, and the backward pass gives every losing piece a gradient of
    /// exactly zero.
    #[test]
    fn maxout_with_a_zero_piece_is_the_relu_net() {
        use burn::module::Param;
        use burn::tensor::{Distribution, TensorData};
        let device = Device::flex().autodiff();
        device.seed(11);
        let relu = MlpConfig::new(6, vec![8], 3).init(&device).unwrap();
        let mut maxout = MlpConfig::new(6, vec![8], 3)
            .with_activation(vec![ActivationConfig::maxout(2)])
            .init(&device)
            .unwrap();
        // Unit j owns columns 2j (the ReLU net's column j) and 2j + 1 (zero).
        let weight: Vec<f32> = relu.layers[0]
            .linear
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .unwrap();
        let bias: Vec<f32> = relu.layers[0]
            .linear
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec()
            .unwrap();
        let interleave = |values: &[f32], rows: usize| -> Vec<f32> {
            (0..rows)
                .flat_map(|r| (0..8).flat_map(move |j| [values[r * 8 + j], 0.0]))
                .collect()
        };
        let first = &mut maxout.layers[0].linear;
        first.weight = Param::from_tensor(Tensor::from_data(
            TensorData::new(interleave(&weight, 6), [6, 16]),
            &device,
        ));
        first.bias = Some(Param::from_tensor(Tensor::from_data(
            TensorData::new(interleave(&bias, 1), [16]),
            &device,
        )));
        maxout.output = relu.output.clone();

        let x = Tensor::<2>::random([32, 6], Distribution::Normal(0.0, 1.0), &device);
        let bits = |t: Tensor<2>| -> Vec<u32> {
            t.into_data()
                .try_to_vec::<f32>()
                .unwrap()
                .into_iter()
                .map(f32::to_bits)
                .collect()
        };
        assert_eq!(
            bits(maxout.forward(x.clone())),
            bits(relu.forward(x.clone()))
        );

        // One example: per unit one piece loses, and its column's gradient
        // is exactly zero.
        let one = x.slice([0..1, 0..6]);
        let grads = maxout.forward(one.clone()).sum().backward();
        let gradient: Vec<f32> = maxout.layers[0]
            .linear
            .weight
            .grad(&grads)
            .unwrap()
            .into_data()
            .try_to_vec()
            .unwrap();
        let pieces: Vec<f32> = maxout.layers[0]
            .linear
            .forward(one.inner())
            .into_data()
            .try_to_vec()
            .unwrap();
        let mut winners_with_gradient = 0;
        for unit in 0..8 {
            let winner = if pieces[2 * unit] >= pieces[2 * unit + 1] {
                2 * unit
            } else {
                2 * unit + 1
            };
            let loser = 4 * unit + 1 - winner;
            assert!(
                (0..6).all(|row| gradient[row * 16 + loser] == 0.0),
                "unit {unit}"
            );
            if (0..6).any(|row| gradient[row * 16 + winner] != 0.0) {
                winners_with_gradient += 1;
            }
        }
        // The check is not vacuous: the gradient does reach the winners.
        assert_eq!(winners_with_gradient, 8);
    }
}
