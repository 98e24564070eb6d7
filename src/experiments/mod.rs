//! The lecture's claims as experiments that train real networks.

mod vanishing_gradient;

pub use vanishing_gradient::{DepthSweep, DepthSweepRow};
