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
use recipe::experiments::{Variant, compare, markdown_table, overfitting_setting};
use recipe::train::{EarlyStoppingConfig, Metric};

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
    let base = overfitting_setting(args.epochs);
    let stopping = |monitor: Metric| {
        let mut config = base.clone();
        config.early_stopping = Some(EarlyStoppingConfig {
            monitor,
            patience: 3,
            restore_best_weights: true,
            ..EarlyStoppingConfig::default()
        });
        config
    };
    let variants = [
        Variant::new("whole budget", base.clone()),
        Variant::new(
            "early stopping on valid loss, patience 3",
            stopping(Metric::ValidLoss),
        ),
        Variant::new(
            "early stopping on valid accuracy, patience 3",
            stopping(Metric::ValidAccuracy),
        ),
    ];
    let rows = compare(&variants, &device)?;
    println!("\n{}", markdown_table(&rows));
    Ok(())
}
