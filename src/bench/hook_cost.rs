//! What each of recipe's training hooks costs per step, measured so that a
//! machine whose speed drifts (other jobs, a shared host) still gives a
//! figure: every variant's step is timed in turn within each round, and a
//! hook's cost is the median over rounds of its time against the step
//! without hooks *of the same round*.

use std::time::Instant;

use burn::tensor::Device;
use serde::Serialize;

use super::{BenchCase, BenchSettings, TrainSteps, hook_variants, median};

/// One hook variant's rate and cost against the step without hooks.
#[derive(Debug, Clone, Serialize)]
pub struct HookCost {
    /// The variant (see [`hook_variants`]).
    pub hooks: &'static str,
    /// Training examples per second, the median over rounds.
    pub train_samples_per_sec: f64,
    /// Extra time per step against the step without hooks, in percent: the
    /// median over rounds of each round's ratio.
    pub cost_percent: f64,
    /// The smallest of the rounds' ratios, in percent.
    pub cost_percent_low: f64,
    /// The largest of the rounds' ratios, in percent.
    pub cost_percent_high: f64,
}

/// Each of [`hook_variants`] on `case`: `settings.repeats` rounds (at least
/// 3), each timing `settings.steps` steps of every variant in turn (the
/// order rotated from round to round), after `settings.warmup_steps` steps
/// of each.
pub fn hook_costs(case: &BenchCase, device: &Device, settings: BenchSettings) -> Vec<HookCost> {
    let mut variants: Vec<(&'static str, TrainSteps)> = hook_variants()
        .into_iter()
        .map(|(name, hooks)| (name, TrainSteps::recipe(case, device).with_hooks(hooks)))
        .collect();
    for (_, steps) in &mut variants {
        for _ in 0..settings.warmup_steps {
            steps.step();
        }
    }
    let rounds = settings.repeats.max(3);
    let steps_per_block = settings.steps.max(1);
    // seconds[variant][round]
    let mut seconds = vec![Vec::with_capacity(rounds); variants.len()];
    for round in 0..rounds {
        for k in 0..variants.len() {
            let v = (k + round) % variants.len();
            let started = Instant::now();
            for _ in 0..steps_per_block {
                variants[v].1.step();
            }
            seconds[v].push(started.elapsed().as_secs_f64());
        }
    }
    let examples = (steps_per_block * case.batch_size) as f64;
    let baseline = &seconds[0];
    variants
        .iter()
        .zip(&seconds)
        .map(|((name, _), times)| {
            let costs: Vec<f64> = times
                .iter()
                .zip(baseline)
                .map(|(t, base)| 100.0 * (t / base - 1.0))
                .collect();
            HookCost {
                hooks: name,
                train_samples_per_sec: median(times.iter().map(|t| examples / t).collect()),
                cost_percent: median(costs.clone()),
                cost_percent_low: costs.iter().copied().fold(f64::INFINITY, f64::min),
                cost_percent_high: costs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::MlpConfig;
    use crate::train::OptimizerConfig;

    /// Every variant is measured; the one without hooks costs nothing
    /// against itself, and the spread brackets the median.
    #[test]
    fn every_variant_gets_a_cost_against_the_step_without_hooks() {
        let device = crate::backend::select_device("cpu").unwrap();
        let case = BenchCase {
            name: "tiny",
            model: MlpConfig::new(784, vec![16], 10),
            optimizer: OptimizerConfig::sgd(0.9),
            learning_rate: 0.1,
            batch_size: 8,
        };
        let settings = BenchSettings {
            warmup_steps: 1,
            repeats: 3,
            steps: 2,
        };
        let costs = hook_costs(&case, &device, settings);
        let names: Vec<&str> = costs.iter().map(|c| c.hooks).collect();
        let expected: Vec<&str> = hook_variants().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, expected);
        assert_eq!(costs[0].cost_percent, 0.0);
        for cost in &costs {
            assert!(cost.train_samples_per_sec > 0.0, "{cost:?}");
            assert!(
                cost.cost_percent_low <= cost.cost_percent
                    && cost.cost_percent <= cost.cost_percent_high,
                "{cost:?}"
            );
        }
    }
}
