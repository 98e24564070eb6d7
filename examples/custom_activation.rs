//! Research code adds its own activation without touching recipe's crates.
//!
//! This file defines Swish with a *learnable* beta per unit,
//! `f(x) = x * sigmoid(beta x)` (Ramachandran et al. 2017), as an
//! [`ActivationFn`], registers its name, and trains recipe's own `Mlp` with it
//! in both hidden layers, with dropout, for one epoch: the activation is used
//! exactly like a built-in one (`auto` init, `describe()`, `config.json`).
//!
//! ```text
//! cargo run --release --example custom_activation
//! ```

use anyhow::Result;
use burn::module::Param;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Tensor};
use recipe::backend::device_from_env;
use recipe::data::SplitConfig;
use recipe::models::{
    ActivationConfig, ActivationFn, InitFamily, MlpConfig, ModelError, register_activation,
};
use recipe::train::{OptimizerConfig, TrainConfig, TrainOptions, train_mlp};

/// Swish with one learnable `beta` per unit, starting at 1.
#[derive(Debug)]
struct LearnableSwish;

impl ActivationFn for LearnableSwish {
    fn spec(&self) -> String {
        "learnable-swish".into()
    }

    fn init_family(&self) -> InitFamily {
        InitFamily::He
    }

    fn parameters(
        &self,
        width: usize,
        device: &Device,
    ) -> Result<Vec<Param<Tensor<1>>>, ModelError> {
        Ok(vec![Param::from_tensor(Tensor::ones([width], device))])
    }

    /// `[batch, units]` -> `[batch, units]`
    fn forward(&self, x: Tensor<2>, params: &[Tensor<1>]) -> Tensor<2> {
        let beta = params[0].clone().unsqueeze_dim::<2>(0);
        x.clone() * sigmoid(x * beta)
    }
}

fn main() -> Result<()> {
    recipe::allocator::keep_freed_memory();
    register_activation("learnable-swish", "learnable-swish", |_argument| {
        Ok(ActivationConfig::new(LearnableSwish))
    })?;
    let device = device_from_env()?; // RECIPE_DEVICE, or the CPU

    let model = MlpConfig::new(784, vec![256, 256], 10)
        .with_activation(vec!["learnable-swish".parse()?])
        .with_dropout(0.1);
    let mut config = TrainConfig::new(model);
    config.data.split = SplitConfig {
        valid_size: 10_000,
        train_limit: Some(10_000),
    };
    config.fit.optimizer = OptimizerConfig::adam();
    config.fit.learning_rate = 1e-3;
    config.fit.epochs = 1;
    let trained = train_mlp(&config, &device, &TrainOptions::default())?;
    let betas: Vec<f32> = trained.net.layers[0].activation.params[0]
        .val()
        .into_data()
        .try_to_vec::<f32>()?;
    let mean_beta = betas.iter().sum::<f32>() / betas.len() as f32;
    println!(
        "{}: test accuracy {:.4} after one epoch; mean beta of layer 1 moved from 1.0 to {mean_beta:.4}",
        trained.summary.model, trained.summary.test_accuracy
    );
    Ok(())
}
