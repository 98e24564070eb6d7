//! Dropout (the lecture: drop neurons per batch while training, none at test
//! time) helps an overfitting net, and hurts one that cannot even fit its
//! training data: never apply an overfitting fix to an optimization problem.
//!
//! ```text
//! cargo run --release --example 06_dropout [-- --epochs 40]
//! ```

use anyhow::Result;
use clap::Parser;
use recipe::backend::select_device;
use recipe::experiments::{Variant, compare, markdown_table, overfitting_setting};
use recipe::models::{ActivationConfig, MlpConfig};
use recipe::train::{MaxNormConfig, OptimizerConfig, TrainConfig};

#[derive(Debug, Parser)]
struct Args {
    /// Epochs for the overfitting net
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = select_device(&args.device)?;
    let base = overfitting_setting(args.epochs);
    let dropout = |config: &TrainConfig| {
        let mut config = config.clone();
        config.model = config.model.with_input_dropout(0.2).with_dropout(0.5);
        config
    };
    let overfit = [
        Variant::new("overfitting net, no dropout", base.clone()),
        Variant::new(
            "overfitting net, dropout 0.2 in / 0.5 hidden",
            dropout(&base),
        ),
        Variant::new(
            "overfitting net, dropout + max-norm 3",
            TrainConfig {
                max_norm: Some(MaxNormConfig::new(3.0)?),
                ..dropout(&base)
            },
        ),
    ];
    let rows = compare(&overfit, &device)?;
    println!("\nOn a net that overfits:\n\n{}", markdown_table(&rows));

    // A deep sigmoid net with plain SGD cannot fit even its training data
    // (the lecture's first problem); dropout only makes that worse.
    let mut underfit = TrainConfig::new(
        MlpConfig::new(784, vec![500; 3], 10).with_activation(vec![ActivationConfig::Sigmoid]),
    );
    underfit.split.train_limit = Some(10_000);
    underfit.optimizer = OptimizerConfig::sgd(0.0);
    underfit.epochs = 5;
    let rows = compare(
        &[
            Variant::new("deep sigmoid net, no dropout", underfit.clone()),
            Variant::new("deep sigmoid net, dropout 0.5", dropout(&underfit)),
        ],
        &device,
    )?;
    println!("\nOn a net that under-fits:\n\n{}", markdown_table(&rows));
    Ok(())
}
