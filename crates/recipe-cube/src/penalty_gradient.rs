//! The L1/L2 penalty's gradient inside an optimizer kernel, in the order of
//! recipe-train's tensor code (`l1 sign(w)` first, then `l2 w`, their sum
//! added to the gradient), shared by the SGD and Adam kernels.

use burn_cubecl::cubecl;
use burn_cubecl::cubecl::prelude::*;

/// `g + (l1 sign(w) + l2 w)`, each term only where it is compiled in.
#[cube]
pub(crate) fn add_penalty(
    g: f32,
    w: f32,
    l1: f32,
    l2: f32,
    #[comptime] with_l1: bool,
    #[comptime] with_l2: bool,
) -> f32 {
    let mut out = g;
    if with_l1 || with_l2 {
        let mut penalty = 0.0;
        if with_l1 {
            let sign = select(w > 0.0, 1.0f32, select(w < 0.0, -1.0f32, 0.0f32));
            penalty += sign * l1;
        }
        if with_l2 {
            penalty += w * l2;
        }
        out += penalty;
    }
    out
}
