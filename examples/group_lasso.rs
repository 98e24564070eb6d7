//! Group lasso switches whole units off; L1 only sparsifies single weights.
//!
//! Trains a 784-256-256-10 ReLU net on 10,000 MNIST images with Adam,
//! with no penalty, with L1 (`λ Σ |w|`) and with recipe's `GroupLasso`
//! (`λ Σ_units ‖w_unit‖₂`) at two strengths each, then counts the weights
//! below 1e-3 and, in each hidden layer, the units whose incoming weight
//! vector has norm below 0.01 (their `auto` He init gives norms near 1.4):
//! those units are switched off.
//!
//! ```text
//! cargo run --release --example group_lasso [-- --epochs 10]
//! ```

use anyhow::Result;
use clap::Parser;
use recipe::backend::select_device;
use recipe::data::SplitConfig;
use recipe::models::{ActivationConfig, Mlp, MlpConfig};
use recipe::train::{
    GroupLasso, OptimizerConfig, ParamSelector, Regularizer, TrainConfig, TrainOptions,
    WeightPenalty, column_norms, train_mlp,
};

/// Below this norm a unit counts as switched off.
const DEAD_NORM: f32 = 0.01;

#[derive(Debug, Parser)]
struct Args {
    /// Epochs per run
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Strengths of L1
    #[arg(long, value_delimiter = ',', default_value = "1e-5,1e-4")]
    l1: Vec<f64>,
    /// Strengths of the group lasso
    #[arg(long, value_delimiter = ',', default_value = "1e-3,3e-3")]
    group_lasso: Vec<f64>,
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, env = "RECIPE_DEVICE", default_value = "cpu")]
    device: String,
}

/// The share of hidden-layer weights below 1e-3 in magnitude.
fn sparse_share(net: &Mlp) -> f64 {
    let (small, all) = net.layers.iter().fold((0, 0), |(small, all), layer| {
        let w: Vec<f32> = layer
            .linear
            .weight
            .val()
            .into_data()
            .try_to_vec()
            .unwrap_or_default();
        (
            small + w.iter().filter(|v| v.abs() < 1e-3).count(),
            all + w.len(),
        )
    });
    small as f64 / all.max(1) as f64
}

/// Per hidden layer: units switched off, units in all.
fn dead_units(net: &Mlp) -> Vec<(usize, usize)> {
    net.layers
        .iter()
        .map(|layer| {
            let norms: Vec<f32> = column_norms(layer.linear.weight.val())
                .into_data()
                .try_to_vec()
                .unwrap_or_default();
            let dead = norms.iter().filter(|&&n| n < DEAD_NORM).count();
            (dead, norms.len())
        })
        .collect()
}

fn main() -> Result<()> {
    recipe::allocator::keep_freed_memory();
    let args = Args::parse();
    let device = select_device(&args.device)?;
    let mut base = TrainConfig::new(
        MlpConfig::new(784, vec![256, 256], 10).with_activation(vec![ActivationConfig::relu()]),
    );
    base.fit.optimizer = OptimizerConfig::adam();
    base.fit.learning_rate = 1e-3;
    base.fit.epochs = args.epochs;
    base.data.split = SplitConfig {
        valid_size: 10_000,
        train_limit: Some(10_000),
    };
    let mut variants = vec![("none".to_string(), base.clone())];
    for &lambda in &args.l1 {
        let mut config = base.clone();
        config.fit.regularizer = Some(Regularizer::L1 { lambda });
        variants.push((format!("L1 {lambda:e}"), config));
    }
    for &lambda in &args.group_lasso {
        let mut config = base.clone();
        config.fit.penalties.push(WeightPenalty::new(
            GroupLasso::new(lambda)?,
            ParamSelector::default(),
        ));
        variants.push((format!("group lasso {lambda:e}"), config));
    }
    let options = TrainOptions {
        print_epochs: false,
        ..TrainOptions::default()
    };
    println!(
        "| penalty | test accuracy | weights below 1e-3 | units off, layer 1 | units off, layer 2 |"
    );
    println!("|---|---|---|---|---|");
    for (name, config) in variants {
        let trained = train_mlp(&config, &device, &options)?;
        let dead = dead_units(&trained.net);
        let share = |(off, all): (usize, usize)| {
            format!("{off} / {all} ({:.1}%)", 100.0 * off as f64 / all as f64)
        };
        println!(
            "| {name} | {:.4} | {:.1}% | {} | {} |",
            trained.summary.test_accuracy,
            100.0 * sparse_share(&trained.net),
            share(dead[0]),
            share(dead[1])
        );
    }
    Ok(())
}
