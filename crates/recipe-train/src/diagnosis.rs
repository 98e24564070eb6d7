//! The lecture's flowchart: good results on the training data? If not, an
//! optimization problem. Good on training but not on validation? Overfitting.
//! Never apply an overfitting fix to an optimization problem.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{History, OptimizerConfig, Remedy, Summary, TrainConfig};

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
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            good_train_accuracy: 0.95,
            baseline_margin: 0.01,
            max_generalization_gap: 0.03,
        }
    }
}

/// Which branch of the flowchart a run is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
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
    /// The measured facts and the criteria applied to them.
    pub evidence: Vec<String>,
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
}

/// Applies the flowchart to a run.
pub fn diagnose(run: Evidence<'_>, thresholds: &Thresholds) -> Diagnosis {
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
        suggestions,
        warnings: Vec::new(),
    }
}

impl Diagnosis {
    /// The verdict, the evidence, the remedies (each as `remedy` words
    /// it) and the warnings, one per line.
    pub fn render(&self, remedy: impl Fn(&Remedy) -> String) -> String {
        let mut text = format!("diagnosis: {}\n", self.verdict);
        for line in &self.evidence {
            text.push_str(&format!("  - {line}\n"));
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
    use crate::EpochRecord;
    use recipe_models::ActivationConfig;
    use recipe_models::MlpConfig;

    fn summary(train: f64, valid: f64) -> Summary {
        Summary {
            dataset: "mnist".into(),
            model: "784-500-10 sigmoid".into(),
            device: "cpu".into(),
            train_accuracy: train,
            train_loss: 0.1,
            valid_accuracy: valid,
            valid_loss: 0.2,
            test_accuracy: valid,
            test_loss: 0.2,
            epochs_run: 5,
            best_epoch: 5,
            weights_from_epoch: 5,
            stopped_early: false,
            stop_reason: String::new(),
            train_seconds: 1.0,
            resumed_after_epoch: None,
            parameters: 1,
            loss: "cross-entropy".into(),
            weight_averaging: None,
            data: recipe_data::DataInfo {
                name: "MNIST".into(),
                input_shape: vec![784],
                classes: 10,
                class_names: Vec::new(),
                split_sizes: [50_000, 10_000, 10_000],
                preprocessing: serde_json::Value::Null,
            },
        }
    }

    /// A synthetic history whose validation loss follows `valid_losses`.
    fn history(valid_losses: &[f64]) -> History {
        History {
            epochs: valid_losses
                .iter()
                .enumerate()
                .map(|(i, &valid_loss)| EpochRecord {
                    epoch: i + 1,
                    train_loss: 0.1,
                    train_penalty: 0.0,
                    train_accuracy: 0.9,
                    valid_loss,
                    valid_accuracy: 0.9,
                    learning_rate: 0.1,
                    seconds: 1.0,
                    grad_norm: None,
                    averaged: None,
                })
                .collect(),
            loss: "cross-entropy".to_string(),
        }
    }

    fn verdict_of(config: &TrainConfig, run: &Summary, history: &History) -> Diagnosis {
        let evidence = Evidence {
            config,
            summary: run,
            history,
            baseline: None,
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
}
