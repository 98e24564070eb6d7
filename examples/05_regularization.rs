//! Regularization (the lecture: L2 multiplies each weight by a factor a
//! little below 1 at every step; L1 subtracts a constant, so weights become
//! sparse). On a setting that overfits: none, L2, L1, L1+L2 and max-norm.
//!
//! ```text
//! cargo run --release --example 05_regularization [-- --epochs 40]
//! ```

use anyhow::Result;
use clap::Parser;
use recipe::backend::select_device;
use recipe::experiments::{Variant, compare, markdown_table, overfitting_setting};
use recipe::train::{MaxNormConfig, Regularizer, TrainConfig};

#[derive(Debug, Parser)]
struct Args {
    /// Epochs
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
    let with = |regularizer: Regularizer| TrainConfig {
        regularizer: Some(regularizer),
        ..base.clone()
    };
    let variants = [
        Variant::new("none", base.clone()),
        Variant::new("L2 1e-4", with(Regularizer::L2 { lambda: 1e-4 })),
        Variant::new("L1 1e-5", with(Regularizer::L1 { lambda: 1e-5 })),
        Variant::new(
            "L1 1e-5 + L2 1e-4",
            with(Regularizer::L1L2 { l1: 1e-5, l2: 1e-4 }),
        ),
        Variant::new(
            "max-norm 3",
            TrainConfig {
                max_norm: Some(MaxNormConfig::new(3.0)?),
                ..base.clone()
            },
        ),
    ];
    let rows = compare(&variants, &device)?;
    println!("\n{}", markdown_table(&rows));
    Ok(())
}
