//! Early stopping (the lecture: stop when the validation loss stops going
//! down). On a setting that overfits, compare training for the whole budget
//! with early stopping on validation loss and on validation accuracy, both
//! restoring the best epoch's weights.
//!
//! ```text
//! cargo run --release --example 04_early_stopping [-- --epochs 40]
//! ```

use anyhow::Result;
use clap::Parser;
use recipe::backend::select_device;
use recipe::experiments::{compare, early_stopping_variants, markdown_table, overfitting_setting};

#[derive(Debug, Parser)]
struct Args {
    /// Epoch budget
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = select_device(&args.device)?;
    let variants = early_stopping_variants(&overfitting_setting(args.epochs));
    let rows = compare(&variants, &device, None)?;
    println!("\n{}", markdown_table(&rows));
    Ok(())
}
