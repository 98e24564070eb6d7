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
use recipe::experiments::{
    compare, dropout_variants, markdown_table, overfitting_setting, underfitting_dropout_variants,
};

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
    let rows = compare(
        &dropout_variants(&overfitting_setting(args.epochs))?,
        &device,
        None,
    )?;
    println!("\nOn a net that overfits:\n\n{}", markdown_table(&rows));
    let rows = compare(&underfitting_dropout_variants(5), &device, None)?;
    println!("\nOn a net that under-fits:\n\n{}", markdown_table(&rows));
    Ok(())
}
