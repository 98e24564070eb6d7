//! Early stopping (the lecture: stop when the validation loss stops going
//! down). On a setting that overfits, compare training for the whole budget
//! with early stopping on validation loss and on validation accuracy, both
//! restoring the best epoch's weights.
//!
//! ```text
//! cargo run --release --example 04_early_stopping [-- --epochs 40]
//! ```

use anyhow::Result;

mod common;

use recipe::experiments::{compare, early_stopping_variants, markdown_table};

fn main() -> Result<()> {
    recipe::allocator::keep_freed_memory();
    let (setting, device) = common::setting_and_device()?;
    let variants = early_stopping_variants(&setting);
    let rows = compare(&variants, &device, None)?;
    println!("\n{}", markdown_table(&rows));
    Ok(())
}
