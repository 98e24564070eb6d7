//! Research code adds its own activation without touching recipe's crates.
//!
//! This file defines Swish with a *learnable* beta, `f(x) = x * sigmoid(beta x)`
//! (Ramachandran et al. 2017), puts it in a small MLP of its own, and trains
//! that network for one epoch with recipe's trainer, which accepts any network
//! implementing [`Classify`].
//!
//! ```text
//! cargo run --release --example custom_activation
//! ```

use anyhow::Result;
use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use recipe::backend::device_from_env;
use recipe::data::{SplitConfig, load_splits};
use recipe::models::MlpConfig;
use recipe::train::{Classify, OptimizerConfig, TrainConfig, TrainOptions, train};

/// Swish with one learnable `beta` per unit.
#[derive(Module, Debug)]
struct LearnableSwish {
    beta: Param<Tensor<1>>,
}

impl LearnableSwish {
    fn new(units: usize, device: &Device) -> Self {
        Self {
            beta: Initializer::Ones.init([units], device),
        }
    }

    /// `[batch, units]` -> `[batch, units]`
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let beta = self.beta.val().unsqueeze_dim::<2>(0);
        x.clone() * sigmoid(x * beta)
    }
}

/// An MLP whose hidden layers use [`LearnableSwish`].
#[derive(Module, Debug)]
struct SwishMlp {
    hidden: Vec<Linear>,
    swish: Vec<LearnableSwish>,
    output: Linear,
}

impl SwishMlp {
    fn new(widths: &[usize], device: &Device) -> Self {
        let he = Initializer::KaimingNormal {
            gain: std::f64::consts::SQRT_2,
            fan_out_only: false,
        };
        let mut hidden = Vec::new();
        let mut swish = Vec::new();
        let mut d_input = 784;
        for &width in widths {
            hidden.push(
                LinearConfig::new(d_input, width)
                    .with_initializer(he.clone())
                    .init(device),
            );
            swish.push(LearnableSwish::new(width, device));
            d_input = width;
        }
        let output = LinearConfig::new(d_input, 10).init(device);
        Self {
            hidden,
            swish,
            output,
        }
    }
}

impl Classify for SwishMlp {
    fn logits(&self, mut x: Tensor<2>) -> Tensor<2> {
        for (linear, swish) in self.hidden.iter().zip(&self.swish) {
            x = swish.forward(linear.forward(x));
        }
        self.output.forward(x)
    }
}

fn main() -> Result<()> {
    recipe::allocator::keep_freed_memory();
    let device = device_from_env()?.autodiff(); // RECIPE_DEVICE, or the CPU
    let split = SplitConfig {
        valid_size: 10_000,
        train_limit: Some(10_000),
    };
    let splits = load_splits(Default::default(), None, &split)?;

    // `model` describes recipe's own MLP; train() uses the network it is given.
    let mut config = TrainConfig::new(MlpConfig::new(784, vec![256, 256], 10));
    config.split = split;
    config.optimizer = OptimizerConfig::adam();
    config.learning_rate = 1e-3;
    config.epochs = 1;
    device.seed(config.seed);
    let net = SwishMlp::new(&[256, 256], &device);
    let options = TrainOptions {
        model_name: Some("784-256x2-10 learnable swish".into()),
        ..TrainOptions::default()
    };
    let trained = train(&config, net, &splits, &device, &options)?;
    let betas: Vec<f32> = trained.net.swish[0]
        .beta
        .val()
        .into_data()
        .try_to_vec::<f32>()?;
    let mean_beta = betas.iter().sum::<f32>() / betas.len() as f32;
    println!(
        "learnable swish: test accuracy {:.4} after one epoch; mean beta of layer 1 moved from 1.0 to {mean_beta:.4}",
        trained.summary.test_accuracy
    );
    Ok(())
}
