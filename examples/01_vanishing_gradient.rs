//! The lecture's first claim: on MNIST a deep sigmoid MLP is worse than a
//! shallow one *even on the training data* (vanishing gradients), while ReLU
//! and Maxout at the same depth train fine.
//!
//! Sigmoid vs ReLU vs Maxout (2 pieces) at depths 1, 3, 5, 7, 9; width 500,
//! SGD lr 0.1, batch 100, init auto; prints training and test accuracy.
//!
//! ```text
//! cargo run --release --example 01_vanishing_gradient                 # 50,000 images, 5 epochs
//! cargo run --release --example 01_vanishing_gradient -- --train-limit 10000
//! cargo run --release --features wgpu --example 01_vanishing_gradient -- --device wgpu
//! ```

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use recipe::backend::select_device;
use recipe::experiments::DepthSweep;

#[derive(Debug, Parser)]
struct Args {
    /// Passes over the training data
    #[arg(long, default_value_t = 5)]
    epochs: usize,
    /// Use only the first N training images (default: all 50,000)
    #[arg(long)]
    train_limit: Option<usize>,
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, env = "RECIPE_DEVICE", default_value = "cpu")]
    device: String,
    /// Keep each run's artifacts here
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<()> {
    recipe::allocator::keep_freed_memory();
    let args = Args::parse();
    let device = select_device(&args.device)?;
    let sweep = DepthSweep::lecture(args.epochs, args.train_limit);
    let rows = sweep.run(&device, args.out.as_deref(), |row| {
        println!(
            "   {} depth {}: train accuracy {:.3}, test accuracy {:.3} ({:.0}s)",
            row.activation, row.depth, row.train_accuracy, row.test_accuracy, row.seconds
        );
    })?;
    println!(
        "\nTraining / test accuracy after {} epochs on {} training images:\n",
        args.epochs,
        args.train_limit.unwrap_or(50_000)
    );
    println!("{}", sweep.markdown_table(&rows));
    Ok(())
}
