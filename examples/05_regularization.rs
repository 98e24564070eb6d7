//! Regularization (the lecture: L2 multiplies each weight by a factor a
//! little below 1 at every step; L1 subtracts a constant, so weights become
//! sparse). On a setting that overfits: none, L2, L1, L1+L2 and max-norm.
//!
//! ```text
//! cargo run --release --example 05_regularization [-- --epochs 40]
//! ```

use anyhow::Result;

mod common;

use recipe::experiments::{compare, markdown_table, regularization_variants};

fn main() -> Result<()> {
    recipe::allocator::keep_freed_memory();
    let (setting, device) = common::setting_and_device()?;
    let variants = regularization_variants(&setting)?;
    let rows = compare(&variants, &device, None)?;
    println!("\n{}", markdown_table(&rows));
    Ok(())
}
