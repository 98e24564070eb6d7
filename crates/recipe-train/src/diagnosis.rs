//! The lecture's flowchart: good results on the training data? If not, an
//! optimization problem. Good on training but not on validation? Overfitting.
//! Never apply an overfitting fix to an optimization problem. Before the
//! flowchart, the [health checks](crate::run_checks) look for a bug (a
//! start far from ln(classes)) and for the mechanism behind a failure
//! (vanishing gradient, dead or saturated units, a learning rate too high,
//! a run cut short); their remedies come first.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{
    CheckOutcome, CheckThresholds, Finding, History, LayerGradient, OptimizerConfig, Remedy,
    RunRecord, Summary, TrainConfig, run_checks,
};

/// The thresholds the diagnosis applies; every one is printed with the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Training accuracy at or above this is "good on the training data".
    pub good_train_accuracy: f64,
    /// A deep net whose training accuracy is below the shallow baseline's by
    /// more than this fits worse than the shallow one: an optimization problem.
    pub baseline_margin: f64,
    /// Training minus validation accuracy above this is overfitting.
    pub max_generalization_gap: f64,
    /// The health checks' thresholds.
    #[serde(default)]
    pub checks: CheckThresholds,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            good_train_accuracy: 0.95,
            baseline_margin: 0.01,
            max_generalization_gap: 0.03,
            checks: CheckThresholds::default(),
        }
    }
}

/// Which branch of the flowchart a run is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Verdict {
    /// Bad on the training data from a start far from ln(classes): a bug
    /// in the setup (labels, output layer, loss, input scaling), not a
    /// problem for the lecture's recipe.
    SuspectSetup,
    /// Bad on the training data: fix the optimization, not overfitting.
    Optimization,
    /// Good on the training data, bad on validation data.
    Overfitting,
    /// Good on both.
    Good,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::SuspectSetup => "suspect setup: a bug, not a recipe problem",
            Verdict::Optimization => "optimization problem (not overfitting)",
            Verdict::Overfitting => "overfitting",
            Verdict::Good => "good on training and validation data",
        })
    }
}

/// The verdict, the evidence behind it and what to try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// The branch of the flowchart.
    pub verdict: Verdict,
    /// The flowchart's measured facts and the criteria applied to them.
    pub evidence: Vec<String>,
    /// The health checks, each with its measurement and criterion.
    #[serde(default)]
    pub checks: Vec<CheckOutcome>,
    /// Remedies to try, most promising first.
    pub suggestions: Vec<Remedy>,
    /// Things not to do (or to undo).
    pub warnings: Vec<String>,
}

/// What the diagnosis looks at.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    /// The run's settings.
    pub config: &'a TrainConfig,
    /// Its final evaluation.
    pub summary: &'a Summary,
    /// Its per-epoch history.
    pub history: &'a History,
    /// The final evaluation of a shallow baseline trained on the same data, if any.
    pub baseline: Option<&'a Summary>,
    /// Its per-layer gradients (`layers.csv`; empty when not recorded).
    pub layers: &'a [LayerGradient],
}

/// Applies the health checks, then the flowchart; the checks' findings
/// choose the first remedies and can turn the verdict into a suspect setup.
pub fn diagnose(run: Evidence<'_>, thresholds: &Thresholds) -> Diagnosis {
    let checks = run_checks(
        RunRecord {
            summary: run.summary,
            history: run.history,
            layers: run.layers,
        },
        &thresholds.checks,
    );
    let mut diagnosis = flowchart(run, thresholds);
    let findings: Vec<&Finding> = checks.iter().filter_map(|c| c.finding.as_ref()).collect();
    let suspect_start = findings
        .iter()
        .any(|f| matches!(f, Finding::SuspectStart { .. }));
    if suspect_start && diagnosis.verdict != Verdict::Good {
        diagnosis.verdict = Verdict::SuspectSetup;
        diagnosis.warnings = vec![
            "do not tune the recipe (activation, optimizer, dropout, penalties) before the start looks right"
                .to_string(),
        ];
    }
    let still_improving = findings
        .iter()
        .any(|f| matches!(f, Finding::StillImproving { .. }));
    if still_improving && diagnosis.verdict == Verdict::Overfitting {
        diagnosis.warnings.push(
            "the validation loss was still falling: train longer before reaching for an overfitting fix"
                .to_string(),
        );
    }
    let mut suggestions: Vec<Remedy> = Vec::new();
    let found = findings.iter().flat_map(|f| f.remedies(run.config));
    let flowchart_remedies = diagnosis.suggestions.drain(..);
    let verdict = diagnosis.verdict;
    let allowed = found
        .chain(flowchart_remedies)
        .filter(|r| diagnosis_allows(verdict, r));
    for remedy in allowed {
        let same_kind =
            |known: &Remedy| std::mem::discriminant(known) == std::mem::discriminant(&remedy);
        if !suggestions.iter().any(same_kind) {
            suggestions.push(remedy);
        }
    }
    if suggestions.len() > 1 {
        suggestions.retain(|r| *r != Remedy::Nothing);
    }
    diagnosis.suggestions = suggestions;
    diagnosis.checks = checks;
    diagnosis
}

/// A suspect setup gets only the remedies that check it: the recipe's
/// fixes wait until the start looks right.
fn diagnosis_allows(verdict: Verdict, remedy: &Remedy) -> bool {
    verdict != Verdict::SuspectSetup
        || matches!(remedy, Remedy::CheckSetup | Remedy::AutoInit { .. })
}

/// The lecture's flowchart alone.
fn flowchart(run: Evidence<'_>, thresholds: &Thresholds) -> Diagnosis {
    let s = run.summary;
    let mut evidence = vec![format!(
        "training accuracy {:.4} (criterion: >= {:.2})",
        s.train_accuracy, thresholds.good_train_accuracy
    )];
    let mut fits = s.train_accuracy >= thresholds.good_train_accuracy;
    if let Some(baseline) = run.baseline {
        let behind = baseline.train_accuracy - s.train_accuracy;
        evidence.push(format!(
            "shallow baseline ({}) training accuracy {:.4}; this run is {} it by {:.4} (criterion: behind by more than {:.2} = worse)",
            baseline.model,
            baseline.train_accuracy,
            if behind > 0.0 { "behind" } else { "ahead of" },
            behind.abs(),
            thresholds.baseline_margin
        ));
        if behind > thresholds.baseline_margin {
            fits = false;
        }
    }
    if !fits {
        return optimization(run, evidence);
    }
    let gap = s.train_accuracy - s.valid_accuracy;
    evidence.push(format!(
        "validation accuracy {:.4}: gap to training {:.4} (criterion: <= {:.2})",
        s.valid_accuracy, gap, thresholds.max_generalization_gap
    ));
    if let Some(best) = run.history.best_epoch()
        && best.epoch < run.history.epochs.len()
    {
        evidence.push(format!(
            "validation loss was lowest at epoch {} ({:.4}) and ended at {:.4}",
            best.epoch,
            best.valid_loss,
            run.history.epochs.last().map_or(f64::NAN, |r| r.valid_loss)
        ));
    }
    if gap > thresholds.max_generalization_gap {
        overfitting(run, evidence)
    } else {
        Diagnosis {
            verdict: Verdict::Good,
            evidence,
            checks: Vec::new(),
            suggestions: vec![Remedy::Nothing],
            warnings: Vec::new(),
        }
    }
}

fn optimization(run: Evidence<'_>, evidence: Vec<String>) -> Diagnosis {
    let config = &run.config.fit;
    let mlp = run.config.network.mlp();
    let mut suggestions = Vec::new();
    let saturating = mlp.is_some_and(|mlp| mlp.activation.iter().any(|a| a.function().saturates()));
    suggestions.push(if saturating {
        Remedy::NonSaturatingActivation
    } else {
        Remedy::OtherActivation
    });
    if let Some(mlp) = mlp
        && mlp.initializer != recipe_models::InitConfig::Auto
    {
        suggestions.push(Remedy::AutoInit {
            current: mlp.initializer.to_string(),
        });
    }
    if matches!(config.optimizer, OptimizerConfig::Sgd { .. }) {
        suggestions.push(Remedy::AdaptiveOptimizer);
    }
    suggestions.push(Remedy::TrainLonger {
        epochs: config.epochs,
        learning_rate: config.learning_rate,
    });
    let mut warnings = vec![
        "do not reach for dropout, L1/L2 or early stopping: they fight overfitting and make an optimization problem worse"
            .to_string(),
    ];
    if mlp.is_some_and(|model| {
        model.dropout > 0.0
            || model.input_dropout > 0.0
            || model.alpha_dropout > 0.0
            || model.dropconnect > 0.0
    }) {
        warnings
            .push("this run uses dropout: remove it until the training data is fit".to_string());
    }
    if config.regularizer.is_some() || config.max_norm.is_some() {
        warnings.push(
            "this run uses a penalty or max-norm: remove it until the training data is fit"
                .to_string(),
        );
    }
    Diagnosis {
        verdict: Verdict::Optimization,
        evidence,
        checks: Vec::new(),
        suggestions,
        warnings,
    }
}

fn overfitting(run: Evidence<'_>, evidence: Vec<String>) -> Diagnosis {
    let config = &run.config.fit;
    let mlp = run.config.network.mlp();
    let mut suggestions = Vec::new();
    if config.early_stopping.is_none() {
        suggestions.push(Remedy::EarlyStopping);
    }
    if config.regularizer.is_none() {
        suggestions.push(Remedy::Penalty);
    }
    if mlp.is_some_and(|mlp| mlp.dropout == 0.0 && mlp.alpha_dropout == 0.0) {
        suggestions.push(Remedy::Dropout);
    }
    if config.max_norm.is_none() {
        suggestions.push(Remedy::MaxNorm);
    }
    suggestions.push(Remedy::MoreData);
    Diagnosis {
        verdict: Verdict::Overfitting,
        evidence,
        checks: Vec::new(),
        suggestions,
        warnings: Vec::new(),
    }
}

impl Diagnosis {
    /// The diagnosis of a run that stopped because its loss became `loss`
    /// (NaN or infinite) at `epoch`: an optimization problem, with the
    /// remedies for divergence first.
    pub fn diverged(config: &TrainConfig, epoch: usize, loss: f64) -> Self {
        let finding = Finding::Diverged {
            sign: format!("the training loss is {loss} at epoch {epoch}"),
        };
        let mut suggestions = finding.remedies(config);
        if let Some(mlp) = config.network.mlp()
            && mlp.initializer != recipe_models::InitConfig::Auto
        {
            suggestions.push(Remedy::AutoInit {
                current: mlp.initializer.to_string(),
            });
        }
        Diagnosis {
            verdict: Verdict::Optimization,
            evidence: vec![format!(
                "training stopped at epoch {epoch}: the loss is {loss} (learning rate {})",
                config.fit.learning_rate
            )],
            checks: vec![CheckOutcome {
                check: "divergence".to_string(),
                measured: "a loss became NaN or infinite (criterion: every loss finite)"
                    .to_string(),
                finding: Some(finding),
            }],
            suggestions,
            warnings: vec![
                "do not reach for dropout, L1/L2 or early stopping: the net does not train at all"
                    .to_string(),
            ],
        }
    }

    /// The verdict, the evidence, the remedies (each as `remedy` words
    /// it) and the warnings, one per line.
    pub fn render(&self, remedy: impl Fn(&Remedy) -> String) -> String {
        let mut text = format!("diagnosis: {}\n", self.verdict);
        for line in &self.evidence {
            text.push_str(&format!("  - {line}\n"));
        }
        if !self.checks.is_empty() {
            text.push_str("checks:\n");
        }
        for outcome in &self.checks {
            let mark = if outcome.finding.is_some() {
                "FOUND"
            } else {
                "ok"
            };
            text.push_str(&format!(
                "  - {} [{mark}]: {}\n",
                outcome.check, outcome.measured
            ));
            if let Some(finding) = &outcome.finding {
                text.push_str(&format!("      {finding}\n"));
            }
        }
        if !self.suggestions.is_empty() {
            text.push_str("try:\n");
            for suggestion in &self.suggestions {
                text.push_str(&format!("  - {}\n", remedy(suggestion)));
            }
        }
        for line in &self.warnings {
            text.push_str(&format!("warning: {line}\n"));
        }
        text
    }
}

impl fmt::Display for Diagnosis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(Remedy::to_string))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recipe_models::ActivationConfig;
    use recipe_models::MlpConfig;

    use crate::synthetic_run::summary;

    /// A synthetic history whose validation loss follows `valid_losses`.
    fn history(valid_losses: &[f64]) -> History {
        crate::synthetic_run::history(&vec![0.1; valid_losses.len()], valid_losses)
    }

    fn verdict_of(config: &TrainConfig, run: &Summary, history: &History) -> Diagnosis {
        let evidence = Evidence {
            config,
            summary: run,
            history,
            baseline: None,
            layers: &[],
        };
        diagnose(evidence, &Thresholds::default())
    }

    fn config(activation: ActivationConfig) -> TrainConfig {
        TrainConfig::new(MlpConfig::new(784, vec![500; 5], 10).with_activation(vec![activation]))
    }

    #[test]
    fn under_fitting_is_an_optimization_problem() {
        let config = TrainConfig::new(
            MlpConfig::new(784, vec![500; 5], 10)
                .with_activation(vec![ActivationConfig::sigmoid()])
                .with_dropout(0.5),
        );
        let history = history(&[2.30, 2.30, 2.30]);
        let run = summary(0.11, 0.11);
        let diagnosis = verdict_of(&config, &run, &history);
        assert_eq!(diagnosis.verdict, Verdict::Optimization);
        assert_eq!(diagnosis.suggestions[0], Remedy::NonSaturatingActivation);
        assert!(diagnosis.suggestions.contains(&Remedy::AdaptiveOptimizer));
        assert!(
            diagnosis
                .warnings
                .iter()
                .any(|w| w.contains("do not reach for dropout"))
        );
        assert!(diagnosis.warnings.iter().any(|w| w.contains("remove it")));
    }

    #[test]
    fn worse_than_a_shallow_baseline_is_an_optimization_problem_too() {
        let config = config(ActivationConfig::sigmoid());
        let history = history(&[0.5, 0.4]);
        let deep = summary(0.96, 0.95);
        let shallow = summary(0.99, 0.97);
        let run = Evidence {
            config: &config,
            summary: &deep,
            history: &history,
            baseline: Some(&shallow),
            layers: &[],
        };
        assert_eq!(
            diagnose(run, &Thresholds::default()).verdict,
            Verdict::Optimization
        );
        let lenient = Thresholds {
            baseline_margin: 0.05,
            ..Thresholds::default()
        };
        assert_eq!(diagnose(run, &lenient).verdict, Verdict::Good);
    }

    #[test]
    fn fitting_training_but_not_validation_is_overfitting() {
        let config = config(ActivationConfig::relu());
        let history = history(&[0.3, 0.2, 0.25, 0.3]);
        let run = summary(1.0, 0.95);
        let diagnosis = verdict_of(&config, &run, &history);
        assert_eq!(diagnosis.verdict, Verdict::Overfitting);
        assert_eq!(diagnosis.suggestions[0], Remedy::EarlyStopping);
        assert!(
            !diagnosis.to_string().contains("--"),
            "no CLI flags: {diagnosis}"
        );
        assert!(
            diagnosis
                .evidence
                .iter()
                .any(|e| e.contains("lowest at epoch 2"))
        );
        assert!(diagnosis.warnings.is_empty());
    }

    #[test]
    fn a_good_run_gets_neither() {
        let config = config(ActivationConfig::relu());
        let history = history(&[0.3, 0.2, 0.1]);
        let run = summary(0.99, 0.975);
        let diagnosis = verdict_of(&config, &run, &history);
        assert_eq!(diagnosis.verdict, Verdict::Good);
        assert!(diagnosis.to_string().starts_with("diagnosis: good"));
    }

    fn with_checks(run: &mut Summary, initial_loss: f64) -> &Summary {
        run.initial_loss = Some(initial_loss);
        run
    }

    #[test]
    fn a_wrong_start_is_a_suspect_setup_not_a_recipe_problem() {
        let config = config(ActivationConfig::relu());
        let history = crate::synthetic_run::history(&[9.0, 8.0, 7.5], &[9.0, 8.0, 7.5]);
        let mut run = summary(0.3, 0.3);
        let diagnosis = verdict_of(&config, with_checks(&mut run, 40.0), &history);
        assert_eq!(diagnosis.verdict, Verdict::SuspectSetup);
        assert_eq!(diagnosis.suggestions, vec![Remedy::CheckSetup]);
        assert!(
            diagnosis
                .to_string()
                .contains("loss at initialization [FOUND]")
        );
        let sound = verdict_of(&config, with_checks(&mut run, 2.3), &history);
        assert_eq!(sound.verdict, Verdict::Optimization);
    }

    #[test]
    fn a_run_stopped_on_divergence_is_diagnosed_without_its_figures() {
        let config = config(ActivationConfig::relu());
        let diagnosis = Diagnosis::diverged(&config, 1, f64::NAN);
        assert_eq!(diagnosis.verdict, Verdict::Optimization);
        assert_eq!(
            diagnosis.suggestions,
            [
                Remedy::LowerLearningRate { learning_rate: 0.1 },
                Remedy::GradientClipping
            ]
        );
        assert!(diagnosis.to_string().contains("NaN at epoch 1"));
    }

    #[test]
    fn a_diverged_run_asks_for_a_lower_learning_rate_first() {
        let config = config(ActivationConfig::relu());
        let history = crate::synthetic_run::history(&[2.0, f64::NAN], &[2.0, f64::NAN]);
        let mut run = summary(0.1, 0.1);
        let diagnosis = verdict_of(&config, with_checks(&mut run, 2.3), &history);
        assert_eq!(diagnosis.verdict, Verdict::Optimization);
        assert_eq!(
            diagnosis.suggestions[..2],
            [
                Remedy::LowerLearningRate { learning_rate: 0.1 },
                Remedy::GradientClipping
            ]
        );
        assert!(diagnosis.to_string().contains("divergence [FOUND]"));
    }

    #[test]
    fn overfitting_while_validation_still_improves_asks_to_train_longer_first() {
        let config = config(ActivationConfig::relu());
        let history = crate::synthetic_run::history(&[0.5, 0.2, 0.1], &[0.5, 0.3, 0.25]);
        let run = summary(1.0, 0.95);
        let diagnosis = verdict_of(&config, &run, &history);
        assert_eq!(diagnosis.verdict, Verdict::Overfitting);
        assert!(matches!(
            diagnosis.suggestions[0],
            Remedy::TrainLonger { epochs: 5, .. }
        ));
        assert!(
            diagnosis
                .warnings
                .iter()
                .any(|w| w.contains("train longer"))
        );
    }
}
