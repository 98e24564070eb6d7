//! Dropout (the lecture: drop neurons per batch while training, none at test
//! time) helps an overfitting net, and hurts one that cannot even fit its
//! training data: never apply an overfitting fix to an optimization problem.
//!
//! ```text
//! cargo run --release --example 06_dropout [-- --epochs 40]
//! ```

use anyhow::Result;

mod common;

use recipe::experiments::{
    compare, dropout_variants, markdown_table, underfitting_dropout_variants,
};

fn main() -> Result<()> {
    recipe::allocator::keep_freed_memory();
    let (setting, device) = common::setting_and_device()?;
    let rows = compare(&dropout_variants(&setting)?, &device, None)?;
    println!("\nOn a net that overfits:\n\n{}", markdown_table(&rows));
    let rows = compare(&underfitting_dropout_variants(5)?, &device, None)?;
    println!("\nOn a net that under-fits:\n\n{}", markdown_table(&rows));
    Ok(())
}
