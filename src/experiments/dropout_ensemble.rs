//! The lecture's dropout at test time: the weight-scaled pass stands for
//! the average of the 2^M thinned nets. Measured by averaging sampled
//! thinned nets (Monte Carlo dropout) against the weight-scaled pass.

use recipe_train::{Evaluation, MonteCarloEvaluation};
use serde::{Deserialize, Serialize};

use crate::experiments::Claim;
use crate::plots::{LineChart, Series};

/// A net trained with dropout, evaluated both ways on the same test images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropoutEnsemble {
    /// The deterministic pass (inverted dropout: the identity at test time,
    /// the same in expectation as scaling the weights by `1 - p`).
    pub weight_scaled: Evaluation,
    /// The average of `samples` thinned nets, for each count measured.
    pub monte_carlo: Vec<MonteCarloEvaluation>,
}

impl DropoutEnsemble {
    /// Test accuracy against the number of thinned nets averaged (log10),
    /// with the weight-scaled pass as a dashed line.
    pub fn chart(&self) -> LineChart {
        let span = self
            .monte_carlo
            .iter()
            .map(|mc| (mc.samples as f64).log10())
            .collect::<Vec<_>>();
        let (low, high) = (
            span.iter().copied().fold(f64::INFINITY, f64::min),
            span.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        LineChart::new(
            "Dropout as an ensemble: averaging thinned nets against the weight-scaled net",
            "log10(thinned nets averaged)",
            "test accuracy",
        )
        .with(
            Series::new(
                "average of sampled thinned nets",
                self.monte_carlo
                    .iter()
                    .map(|mc| ((mc.samples as f64).log10(), mc.accuracy))
                    .collect(),
            )
            .colored(0)
            .markers(),
        )
        .with(
            Series::new(
                "weight-scaled net",
                vec![
                    (low, self.weight_scaled.accuracy),
                    (high, self.weight_scaled.accuracy),
                ],
            )
            .colored(1)
            .dashed(),
        )
    }

    /// The lecture's claim, with its criterion.
    pub fn claims(&self) -> Vec<Claim> {
        let claim = "dropout trains an ensemble of thinned nets, and the weight-scaled net approximates their average";
        let criterion = "on the test images, the weight-scaled net's accuracy is within 0.005 of the average of the most thinned nets sampled (at least 50), and one thinned net alone is less accurate than both";
        let (Some(one), Some(most)) = (
            self.monte_carlo.iter().find(|mc| mc.samples == 1),
            self.monte_carlo.iter().max_by_key(|mc| mc.samples),
        ) else {
            return vec![Claim {
                claim: claim.into(),
                criterion: criterion.into(),
                evidence: "not measured".into(),
                reproduced: None,
            }];
        };
        let scaled = &self.weight_scaled;
        vec![Claim {
            claim: claim.into(),
            criterion: criterion.into(),
            evidence: format!(
                "weight-scaled: accuracy {:.4}, loss {:.4}; average of {} thinned nets: {:.4}, {:.4}; one thinned net: {:.4}, {:.4} ({} test images)",
                scaled.accuracy,
                scaled.loss,
                most.samples,
                most.accuracy,
                most.loss,
                one.accuracy,
                one.loss,
                scaled.examples
            ),
            reproduced: Some(
                most.samples >= 50
                    && (scaled.accuracy - most.accuracy).abs() <= 0.005
                    && one.accuracy < scaled.accuracy.min(most.accuracy),
            ),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ensemble(scaled: f64, one: f64, hundred: f64) -> DropoutEnsemble {
        let mc = |samples, accuracy| MonteCarloEvaluation {
            samples,
            accuracy,
            loss: 0.2,
        };
        DropoutEnsemble {
            weight_scaled: Evaluation {
                loss: 0.2,
                accuracy: scaled,
                examples: 100,
            },
            monte_carlo: vec![mc(1, one), mc(100, hundred)],
        }
    }

    #[test]
    fn verdicts_follow_the_criterion() {
        assert_eq!(
            ensemble(0.95, 0.93, 0.952).claims()[0].reproduced,
            Some(true)
        );
        assert_eq!(
            ensemble(0.95, 0.93, 0.96).claims()[0].reproduced,
            Some(false)
        );
        assert_eq!(
            ensemble(0.95, 0.951, 0.952).claims()[0].reproduced,
            Some(false)
        );
        let mut few = ensemble(0.95, 0.93, 0.952);
        few.monte_carlo.pop();
        few.monte_carlo.push(MonteCarloEvaluation {
            samples: 10,
            accuracy: 0.95,
            loss: 0.2,
        });
        assert_eq!(few.claims()[0].reproduced, Some(false), "fewer than 50");
    }
}
