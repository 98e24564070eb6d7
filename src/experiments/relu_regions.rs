//! A ReLU net is linear on each region of input space where the same units
//! are active, and a different linear function on each region: linear
//! piece by piece, non-linear as a whole.

use burn::tensor::{Device, Tensor, TensorData};
use recipe_models::Mlp;
use serde::{Deserialize, Serialize};

use crate::experiments::Claim;

/// What the regions of a trained ReLU net look like on some inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReluRegions {
    /// Inputs examined.
    pub inputs: usize,
    /// Hidden units (all layers).
    pub units: usize,
    /// Distinct activation patterns (sets of active units) among the inputs.
    pub distinct_patterns: usize,
    /// Pairs of consecutive inputs compared.
    pub pairs: usize,
    /// Of those, the pairs whose inputs are on different patterns.
    pub pairs_on_different_patterns: usize,
    /// Per such pair: how far the linear function of the first input's
    /// region misses the net's logits at the second input, relative to the
    /// size of those logits.
    pub misses: Vec<f64>,
    /// The largest difference between the region's linear function and
    /// the net at the region's own input, relative to the logits' size.
    pub own_region_error: f64,
}

/// The active units of every hidden layer of `mlp` for each row of
/// `inputs`, and the logits.
fn forward_with_patterns(mlp: &Mlp, inputs: Tensor<2>) -> (Vec<Vec<bool>>, Tensor<2>) {
    let rows = inputs.dims()[0];
    let mut patterns = vec![Vec::new(); rows];
    let mut x = inputs;
    for layer in &mlp.layers {
        x = layer.forward(x);
        let active = x.clone().greater_elem(0.0).into_data();
        let width = x.dims()[1];
        let flags: Vec<bool> = active.iter::<bool>().collect();
        for (row, pattern) in patterns.iter_mut().enumerate() {
            pattern.extend_from_slice(&flags[row * width..(row + 1) * width]);
        }
    }
    (patterns, mlp.output.forward(x))
}

/// The net with every hidden unit's ReLU replaced by a fixed gate: open
/// where `pattern` says the unit is active. For the input the pattern
/// came from this is the net itself; elsewhere it is the linear function
/// of that input's region.
fn region_map(mlp: &Mlp, pattern: &[bool], input: Tensor<2>, device: &Device) -> Tensor<2> {
    let mut x = input;
    let mut start = 0;
    for layer in &mlp.layers {
        let z = layer.linear.forward(x);
        let width = z.dims()[1];
        let gate: Vec<f32> = pattern[start..start + width]
            .iter()
            .map(|&open| if open { 1.0 } else { 0.0 })
            .collect();
        start += width;
        x = z * Tensor::<2>::from_data(TensorData::new(gate, [1, width]), device);
    }
    mlp.output.forward(x)
}

/// Measures the regions of `mlp` (a ReLU net) on `inputs` (`[n, features]`),
/// comparing consecutive inputs.
pub fn relu_regions(mlp: &Mlp, inputs: Tensor<2>, device: &Device) -> ReluRegions {
    let n = inputs.dims()[0];
    let (patterns, logits) = forward_with_patterns(mlp, inputs.clone());
    let logits_of = |i: usize| logits.clone().narrow(0, i, 1);
    let size = |t: Tensor<2>| t.square().sum().sqrt().into_scalar::<f64>();
    let mut distinct = patterns.clone();
    distinct.sort();
    distinct.dedup();
    let mut misses = Vec::new();
    let mut own_region_error = 0.0f64;
    let mut pairs = 0;
    for i in 0..n.saturating_sub(1) {
        pairs += 1;
        let (a, b) = (
            inputs.clone().narrow(0, i, 1),
            inputs.clone().narrow(0, i + 1, 1),
        );
        let own = region_map(mlp, &patterns[i], a, device);
        own_region_error =
            own_region_error.max(size(own - logits_of(i)) / size(logits_of(i)).max(1e-12));
        if patterns[i] != patterns[i + 1] {
            let predicted = region_map(mlp, &patterns[i], b, device);
            misses.push(size(predicted - logits_of(i + 1)) / size(logits_of(i + 1)).max(1e-12));
        }
    }
    ReluRegions {
        inputs: n,
        units: patterns.first().map_or(0, Vec::len),
        distinct_patterns: distinct.len(),
        pairs,
        pairs_on_different_patterns: misses.len(),
        misses,
        own_region_error,
    }
}

impl ReluRegions {
    /// The median miss.
    pub fn median_miss(&self) -> f64 {
        let mut misses = self.misses.clone();
        misses.sort_by(f64::total_cmp);
        misses.get(misses.len() / 2).copied().unwrap_or(f64::NAN)
    }

    /// The lecture's claim, with a criterion on these measurements.
    pub fn claims(&self) -> Vec<Claim> {
        let claim = "a ReLU net is linear on each region but non-linear as a whole: different inputs use different sets of active units, hence different linear functions";
        let criterion = "on test images, a trained ReLU net uses a distinct activation pattern for at least 90% of the images; the linear function of an image's region gives that image's logits to within 1e-5, and misses the next image's (on another pattern) by at least 10% of their size for the median pair";
        let median = self.median_miss();
        vec![Claim {
            claim: claim.into(),
            criterion: criterion.into(),
            evidence: format!(
                "{} images, {} hidden units: {} distinct patterns; own region error {:.1e}; \
                 {} of {} consecutive pairs on different patterns, median miss {:.0}% (smallest {:.0}%)",
                self.inputs,
                self.units,
                self.distinct_patterns,
                self.own_region_error,
                self.pairs_on_different_patterns,
                self.pairs,
                100.0 * median,
                100.0 * self.misses.iter().copied().fold(f64::INFINITY, f64::min),
            ),
            reproduced: (self.inputs > 1).then_some(
                self.distinct_patterns as f64 >= 0.9 * self.inputs as f64
                    && self.own_region_error <= 1e-5
                    && median >= 0.1,
            ),
        }]
    }
}

#[cfg(test)]
mod tests {
    use recipe_models::{ActivationConfig, MlpConfig};

    use super::*;

    /// A random 2-layer ReLU net: the region map of an input is the net at
    /// that input, bit for bit, and misses inputs on other patterns.
    #[test]
    fn the_region_map_is_the_net_on_its_own_region_only() {
        let device = Device::flex();
        device.seed(3);
        let mlp = MlpConfig::new(6, vec![16, 16], 3)
            .with_activation(vec![ActivationConfig::relu()])
            .init(&device)
            .unwrap();
        device.seed(4);
        let inputs = Tensor::<2>::random(
            [40, 6],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let regions = relu_regions(&mlp, inputs, &device);
        assert_eq!(regions.inputs, 40);
        assert_eq!(regions.units, 32);
        // The same operations, on one row instead of the batch.
        assert!(regions.own_region_error < 1e-6, "{regions:?}");
        assert!(regions.pairs_on_different_patterns > 30, "{regions:?}");
        assert!(regions.median_miss() > 0.01, "{regions:?}");
        assert!(regions.distinct_patterns > 30, "{regions:?}");
    }

    #[test]
    fn verdicts_follow_the_criteria() {
        let regions = |distinct: usize, error: f64, misses: Vec<f64>| ReluRegions {
            inputs: 100,
            units: 10,
            distinct_patterns: distinct,
            pairs: 99,
            pairs_on_different_patterns: misses.len(),
            misses,
            own_region_error: error,
        };
        assert_eq!(
            regions(95, 0.0, vec![0.2, 0.3, 0.05]).claims()[0].reproduced,
            Some(true)
        );
        assert_eq!(
            regions(80, 0.0, vec![0.2, 0.3]).claims()[0].reproduced,
            Some(false)
        );
        assert_eq!(
            regions(95, 1e-3, vec![0.2, 0.3]).claims()[0].reproduced,
            Some(false)
        );
        assert_eq!(
            regions(95, 0.0, vec![0.01, 0.02, 0.3]).claims()[0].reproduced,
            Some(false)
        );
    }
}
