//! The lecture's claims as experiments that train real networks.

mod claims;
mod overfitting;
mod remedies;
mod vanishing_gradient;

pub use claims::{
    Claim, claims_table, dropout_claims, early_stopping_claims, regularization_claims,
    vanishing_gradient_claims,
};
pub use overfitting::{
    Variant, VariantRow, compare, dropout_variants, early_stopping_variants, markdown_table,
    overfitting_setting, regularization_variants, underfitting_dropout_variants, with_dropout,
};
pub use remedies::{remedies, shallow_baseline};
pub use vanishing_gradient::{DepthSweep, DepthSweepRow};
