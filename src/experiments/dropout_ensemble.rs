//! The lecture's dropout at test time: the weight-scaled pass stands for
//! the average of the 2^M thinned nets. Measured by averaging sampled
//! thinned nets (Monte Carlo dropout) against the weight-scaled pass.

use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use recipe_data::ClassBatch;
use recipe_models::{DropoutForm, Mlp};
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
    /// The same net converted to the lecture's dropout form, against the
    /// trained one (absent in results written before it was measured).
    #[serde(default)]
    pub lecture_form: Option<FormAgreement>,
}

/// A net trained with inverted dropout against itself converted to the
/// lecture's form (weights fed by dropout divided by `1 - p`, outputs of
/// dropout times `1 - p` at test time), on the same images.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FormAgreement {
    /// Images compared.
    pub examples: usize,
    /// Images on which both forms predict the same class.
    pub same_class: usize,
    /// The largest difference between their logits.
    pub max_logit_difference: f64,
    /// The largest logit magnitude, for scale.
    pub max_logit: f64,
}

impl FormAgreement {
    /// Compares `net` (inverted dropout, evaluated as trained) with its
    /// conversion to the lecture's form on every batch of `loader`, on a
    /// device without autodiff (dropout off).
    pub fn measure(
        net: &Mlp,
        loader: &Arc<dyn DataLoader<ClassBatch<burn::tensor::Tensor<2>>>>,
    ) -> anyhow::Result<Self> {
        let lecture = net.clone().with_dropout_form(DropoutForm::Lecture);
        let mut agreement = Self {
            examples: 0,
            same_class: 0,
            max_logit_difference: 0.0,
            max_logit: 0.0,
        };
        for batch in loader.iter() {
            let batch = batch.map_err(|e| anyhow::anyhow!("reading a test batch: {e}"))?;
            let trained = net.forward(batch.inputs.clone());
            let converted = lecture.forward(batch.inputs);
            let same = trained
                .clone()
                .argmax(1)
                .equal(converted.clone().argmax(1))
                .int()
                .sum()
                .into_scalar::<i64>();
            let difference = (trained.clone() - converted)
                .abs()
                .max()
                .into_scalar::<f64>();
            agreement.examples += batch.targets.dims()[0];
            agreement.same_class += same as usize;
            agreement.max_logit_difference = agreement.max_logit_difference.max(difference);
            agreement.max_logit = agreement
                .max_logit
                .max(trained.abs().max().into_scalar::<f64>());
        }
        Ok(agreement)
    }

    /// Whether the two forms are one net up to float rounding: the same
    /// class everywhere and logits within 1e-4 of their scale.
    fn same_net(&self) -> bool {
        self.examples > 0
            && self.same_class == self.examples
            && self.max_logit_difference <= 1e-4 * self.max_logit.max(1.0)
    }
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

    /// The lecture's claims, with their criteria: the ensemble, and the
    /// two dropout forms as one net.
    pub fn claims(&self) -> Vec<Claim> {
        vec![self.ensemble_claim(), self.form_claim()]
    }

    fn form_claim(&self) -> Claim {
        let claim = "the lecture's dropout (no scaling in training, weights times 1 - p at test) and recipe's inverted dropout are the same net";
        let criterion = "the dropout net converted to the lecture's form (weights fed by dropout divided by 1 - p) predicts the same class on every test image, its logits within 1e-4 of the largest logit";
        let Some(form) = self.lecture_form else {
            return Claim {
                claim: claim.into(),
                criterion: criterion.into(),
                evidence: "not measured".into(),
                reproduced: None,
            };
        };
        Claim {
            claim: claim.into(),
            criterion: criterion.into(),
            evidence: format!(
                "same class on {} of {} test images; largest logit difference {:.1e} (largest logit {:.1})",
                form.same_class, form.examples, form.max_logit_difference, form.max_logit
            ),
            reproduced: Some(form.same_net()),
        }
    }

    fn ensemble_claim(&self) -> Claim {
        let claim = "dropout trains an ensemble of thinned nets, and the weight-scaled net approximates their average";
        let criterion = "on the test images, the weight-scaled net's accuracy is within 0.005 of the average of the most thinned nets sampled (at least 50), and one thinned net alone is less accurate than both";
        let (Some(one), Some(most)) = (
            self.monte_carlo.iter().find(|mc| mc.samples == 1),
            self.monte_carlo.iter().max_by_key(|mc| mc.samples),
        ) else {
            return Claim {
                claim: claim.into(),
                criterion: criterion.into(),
                evidence: "not measured".into(),
                reproduced: None,
            };
        };
        let scaled = &self.weight_scaled;
        Claim {
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
        }
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
            lecture_form: None,
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

    #[test]
    fn the_forms_agree_only_up_to_rounding() {
        let mut run = ensemble(0.95, 0.93, 0.952);
        assert_eq!(run.claims()[1].reproduced, None, "not measured");
        let agreement = |same_class, max_logit_difference| FormAgreement {
            examples: 100,
            same_class,
            max_logit_difference,
            max_logit: 20.0,
        };
        run.lecture_form = Some(agreement(100, 1e-5));
        assert_eq!(run.claims()[1].reproduced, Some(true));
        run.lecture_form = Some(agreement(100, 0.01));
        assert_eq!(run.claims()[1].reproduced, Some(false), "beyond rounding");
        run.lecture_form = Some(agreement(99, 1e-5));
        assert_eq!(run.claims()[1].reproduced, Some(false), "one class differs");
    }
}
