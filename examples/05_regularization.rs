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
use recipe::experiments::{compare, markdown_table, overfitting_setting, regularization_variants};

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
    let variants = regularization_variants(&overfitting_setting(args.epochs))?;
    let rows = compare(&variants, &device, None)?;
    println!("\n{}", markdown_table(&rows));
    Ok(())
}
