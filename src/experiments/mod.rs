//! The lecture's claims as experiments that train real networks.

mod overfitting;
mod remedies;
mod vanishing_gradient;

pub use overfitting::{Variant, VariantRow, compare, markdown_table, overfitting_setting};
pub use remedies::{remedies, shallow_baseline};
pub use vanishing_gradient::{DepthSweep, DepthSweepRow};
