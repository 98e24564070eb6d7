//! The checks practitioners run on a net that will not train, each with a
//! threshold: a start far from ln(classes), a vanishing or exploding
//! gradient, dead or saturated units, a training loss that rises or
//! oscillates, divergence, and a validation loss still falling when the
//! run ended.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{History, LayerGradient, LayerUnits, Remedy, Summary, TrainConfig};

/// The thresholds of the checks; every one is printed with its check.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckThresholds {
    /// The loss at initialization is suspect when it is more than this
    /// factor above ln(classes), or below ln(classes) divided by it.
    pub initial_loss_factor: f64,
    /// The first weight's gradient norm at the first step below this share
    /// of the last weight's is a vanishing gradient. Measured on MNIST and
    /// Fashion-MNIST (SGD 0.1, width 500): sigmoid depth 1 gives 0.27 and
    /// 0.41 and trains; depth 3 gives 0.014 and 0.026 and stays near
    /// chance; ReLU and Maxout at every depth 0.8 to 2.1.
    pub vanishing_ratio: f64,
    /// ... above this multiple of the last weight's is an exploding gradient.
    pub exploding_ratio: f64,
    /// A hidden layer with more than this share of dead units.
    pub dead_share: f64,
    /// A hidden layer with more than this share of saturated outputs.
    pub saturated_share: f64,
    /// The training loss is rising when its last epoch is more than this
    /// share above its lowest epoch.
    pub rising_loss: f64,
    /// The training loss oscillates when it rose in at least this share of
    /// the epoch-to-epoch steps (and in at least two of them).
    pub oscillation_share: f64,
    /// The validation loss is still improving when the last epoch is its
    /// lowest and fell by more than this share over that epoch. Measured on
    /// MNIST: runs cut short fell 7% to 27% in their last epoch; a deep
    /// sigmoid net stuck at chance wobbled by 1.1%.
    pub still_improving: f64,
}

impl Default for CheckThresholds {
    fn default() -> Self {
        Self {
            initial_loss_factor: 2.0,
            vanishing_ratio: 0.05,
            exploding_ratio: 20.0,
            dead_share: 0.5,
            saturated_share: 0.5,
            rising_loss: 0.1,
            oscillation_share: 1.0 / 3.0,
            still_improving: 0.02,
        }
    }
}

/// What a check found wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Finding {
    /// The loss before training is far from ln(classes): labels, output
    /// layer, loss or input scaling are suspect.
    SuspectStart {
        /// The loss at initialization.
        loss: f64,
        /// ln(classes).
        expected: f64,
    },
    /// The first layer gets a tiny share of the last layer's gradient.
    VanishingGradient {
        /// The first weight tensor.
        first: String,
        /// The last weight tensor.
        last: String,
        /// first / last gradient norm at the first step.
        ratio: f64,
    },
    /// The first layer gets a large multiple of the last layer's gradient.
    ExplodingGradient {
        /// The first weight tensor.
        first: String,
        /// The last weight tensor.
        last: String,
        /// first / last gradient norm at the first step.
        ratio: f64,
    },
    /// Hidden units whose output never changes.
    DeadUnits {
        /// The worst layer.
        layer: String,
        /// Its share of dead units.
        share: f64,
    },
    /// Hidden units on the flat part of a saturating activation.
    SaturatedUnits {
        /// The worst layer.
        layer: String,
        /// Its share of saturated outputs.
        share: f64,
    },
    /// The training loss ended well above its lowest epoch.
    RisingLoss {
        /// Its lowest epoch mean.
        lowest: f64,
        /// Its last epoch mean.
        last: f64,
    },
    /// The training loss went up in many epochs.
    OscillatingLoss {
        /// Epochs whose mean rose over the previous one.
        rises: usize,
        /// Epoch-to-epoch steps.
        steps: usize,
    },
    /// A loss became NaN or infinite, the run stopped on divergence, or it
    /// ended above where it started.
    Diverged {
        /// What showed it.
        sign: String,
    },
    /// The validation loss was still falling at the last epoch.
    StillImproving {
        /// Its fall over the last epoch, as a share.
        last_gain: f64,
    },
}

impl Finding {
    /// The remedies this finding calls for on `run`, most promising first.
    pub fn remedies(&self, run: &TrainConfig) -> Vec<Remedy> {
        let saturating = run
            .network
            .mlp()
            .is_some_and(|mlp| mlp.activation.iter().any(|a| a.function().saturates()));
        match self {
            Self::SuspectStart { .. } => vec![Remedy::CheckSetup],
            Self::VanishingGradient { .. } | Self::SaturatedUnits { .. } if saturating => {
                vec![Remedy::NonSaturatingActivation]
            }
            Self::VanishingGradient { .. } | Self::SaturatedUnits { .. } => {
                vec![Remedy::OtherActivation]
            }
            Self::ExplodingGradient { .. } | Self::Diverged { .. } => vec![
                Remedy::LowerLearningRate {
                    learning_rate: run.fit.learning_rate,
                },
                Remedy::GradientClipping,
            ],
            // A saturating unit dies by pinning at a bound: a unit of the
            // ReLU family by never being positive.
            Self::DeadUnits { .. } if saturating => vec![
                Remedy::NonSaturatingActivation,
                Remedy::LowerLearningRate {
                    learning_rate: run.fit.learning_rate,
                },
            ],
            Self::DeadUnits { .. } => vec![
                Remedy::LeakyActivation,
                Remedy::LowerLearningRate {
                    learning_rate: run.fit.learning_rate,
                },
            ],
            Self::RisingLoss { .. } | Self::OscillatingLoss { .. } => {
                vec![Remedy::LowerLearningRate {
                    learning_rate: run.fit.learning_rate,
                }]
            }
            Self::StillImproving { .. } => vec![Remedy::TrainLonger {
                epochs: run.fit.epochs,
                learning_rate: run.fit.learning_rate,
            }],
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SuspectStart { loss, expected } => write!(
                f,
                "the loss at initialization ({loss:.3}) is far from ln(classes) = {expected:.3}: check the labels, the output layer, the loss and the input scaling before any recipe fix"
            ),
            Self::VanishingGradient { first, last, ratio } => write!(
                f,
                "vanishing gradient: {first} gets {ratio:.1e} of {last}'s gradient at the first step"
            ),
            Self::ExplodingGradient { first, last, ratio } => write!(
                f,
                "exploding gradient: {first} gets {ratio:.1e} times {last}'s gradient at the first step"
            ),
            Self::DeadUnits { layer, share } => write!(
                f,
                "{:.0}% of {layer}'s units are dead (their output never changes)",
                100.0 * share
            ),
            Self::SaturatedUnits { layer, share } => write!(
                f,
                "{:.0}% of {layer}'s outputs are saturated (slope below a tenth of its slope at 0)",
                100.0 * share
            ),
            Self::RisingLoss { lowest, last } => write!(
                f,
                "the training loss rose from {lowest:.4} to {last:.4}: the learning rate is too high"
            ),
            Self::OscillatingLoss { rises, steps } => write!(
                f,
                "the training loss rose in {rises} of {steps} epochs: the learning rate is too high"
            ),
            Self::Diverged { sign } => write!(f, "the run diverged: {sign}"),
            Self::StillImproving { last_gain } => write!(
                f,
                "the validation loss was still falling ({:.1}% over the last epoch): train longer before judging",
                100.0 * last_gain
            ),
        }
    }
}

/// One check: what it measured against its threshold, and what it found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// The check's name, e.g. `gradient ratio`.
    pub check: String,
    /// The measurement and the criterion, or why it was not measured.
    pub measured: String,
    /// What it found wrong, if anything.
    pub finding: Option<Finding>,
}

impl CheckOutcome {
    fn new(check: &str, measured: String, finding: Option<Finding>) -> Self {
        Self {
            check: check.to_string(),
            measured,
            finding,
        }
    }

    fn not_measured(check: &str, why: &str) -> Self {
        Self::new(check, format!("not measured ({why})"), None)
    }
}

/// What the checks look at: a run's final figures, its history, and its
/// per-layer gradients (empty when they were not recorded).
#[derive(Debug, Clone, Copy)]
pub struct RunRecord<'a> {
    /// Its final evaluation (with the initial loss and the units).
    pub summary: &'a Summary,
    /// Its per-epoch history.
    pub history: &'a History,
    /// Its `layers.csv`.
    pub layers: &'a [LayerGradient],
}

/// Runs every check on `run`.
pub fn run_checks(run: RunRecord<'_>, thresholds: &CheckThresholds) -> Vec<CheckOutcome> {
    vec![
        initial_loss(run, thresholds),
        divergence(run),
        gradient_ratio(run.layers, thresholds),
        dead_units(&run.summary.units, thresholds),
        saturated_units(&run.summary.units, thresholds),
        loss_trend(run.history, thresholds),
        still_improving(run.history, thresholds),
    ]
}

fn initial_loss(run: RunRecord<'_>, thresholds: &CheckThresholds) -> CheckOutcome {
    let check = "loss at initialization";
    let classes = run.summary.data.classes;
    let Some(loss) = run.summary.initial_loss else {
        return CheckOutcome::not_measured(check, "a resumed run, or no validation data");
    };
    if classes < 2 || !run.history.loss.starts_with("cross-entropy") {
        return CheckOutcome::not_measured(check, "ln(classes) is the start of cross-entropy only");
    }
    let expected = (classes as f64).ln();
    let factor = thresholds.initial_loss_factor;
    let off = !(loss <= expected * factor && loss >= expected / factor);
    CheckOutcome::new(
        check,
        format!(
            "{loss:.3} against ln({classes}) = {expected:.3} (criterion: within a factor {factor})"
        ),
        off.then_some(Finding::SuspectStart { loss, expected }),
    )
}

fn divergence(run: RunRecord<'_>) -> CheckOutcome {
    let check = "divergence";
    let not_finite = run
        .history
        .epochs
        .iter()
        .find(|r| !(r.train_loss.is_finite() && r.valid_loss.is_finite()));
    let final_train = run.summary.train_loss;
    let sign = if let Some(record) = not_finite {
        Some(format!(
            "a loss is {} at epoch {}",
            if record.train_loss.is_finite() {
                record.valid_loss
            } else {
                record.train_loss
            },
            record.epoch
        ))
    } else if !final_train.is_finite() {
        Some(format!("the final training loss is {final_train}"))
    } else if run.summary.stop_reason.contains("diverg") {
        Some(format!("it stopped: {}", run.summary.stop_reason))
    } else {
        run.summary
            .initial_loss
            .filter(|&start| final_train > start)
            .map(|start| format!("the final training loss {final_train:.3} is above the loss at initialization {start:.3}"))
    };
    CheckOutcome::new(
        check,
        format!(
            "final training loss {final_train:.4} (criterion: every loss finite, no stop on divergence, ending below the start)"
        ),
        sign.map(|sign| Finding::Diverged { sign }),
    )
}

fn gradient_ratio(layers: &[LayerGradient], thresholds: &CheckThresholds) -> CheckOutcome {
    let check = "gradient ratio";
    let first_epoch: Vec<&LayerGradient> = layers.iter().filter(|l| l.epoch == 1).collect();
    let (Some(first), Some(last)) = (first_epoch.first(), first_epoch.last()) else {
        return CheckOutcome::not_measured(
            check,
            "no per-layer gradients: record them with record_layer_gradients",
        );
    };
    if first_epoch.len() < 2 {
        return CheckOutcome::not_measured(check, "a single weight tensor");
    }
    let ratio = first.grad_norm_first_step / last.grad_norm_first_step;
    let names = || (first.parameter.clone(), last.parameter.clone());
    let finding = if ratio < thresholds.vanishing_ratio {
        let (first, last) = names();
        Some(Finding::VanishingGradient { first, last, ratio })
    } else if ratio > thresholds.exploding_ratio {
        let (first, last) = names();
        Some(Finding::ExplodingGradient { first, last, ratio })
    } else {
        None
    };
    CheckOutcome::new(
        check,
        format!(
            "{} / {} gradient norm at the first step = {ratio:.2e} (criterion: between {:.0e} and {:.0e})",
            first.parameter, last.parameter, thresholds.vanishing_ratio, thresholds.exploding_ratio
        ),
        finding,
    )
}

/// The layer with the largest `share`, if any layer measured one.
fn worst(
    units: &[LayerUnits],
    share: impl Fn(&LayerUnits) -> Option<f64>,
) -> Option<(&LayerUnits, f64)> {
    units
        .iter()
        .filter_map(|layer| share(layer).map(|s| (layer, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn dead_units(units: &[LayerUnits], thresholds: &CheckThresholds) -> CheckOutcome {
    let check = "dead units";
    let Some((layer, share)) = worst(units, |l| Some(l.dead_share)) else {
        return CheckOutcome::not_measured(check, "the network does not report its units");
    };
    CheckOutcome::new(
        check,
        format!(
            "most in {}: {:.1}% of {} units on {} inputs (criterion: at most {:.0}% per layer)",
            layer.layer,
            100.0 * share,
            layer.units,
            layer.inputs,
            100.0 * thresholds.dead_share
        ),
        (share > thresholds.dead_share).then(|| Finding::DeadUnits {
            layer: layer.layer.clone(),
            share,
        }),
    )
}

fn saturated_units(units: &[LayerUnits], thresholds: &CheckThresholds) -> CheckOutcome {
    let check = "saturated units";
    let Some((layer, share)) = worst(units, |l| l.saturated_share) else {
        return CheckOutcome::not_measured(check, "no saturating activation");
    };
    CheckOutcome::new(
        check,
        format!(
            "most in {}: {:.1}% of its outputs (criterion: at most {:.0}% per layer)",
            layer.layer,
            100.0 * share,
            100.0 * thresholds.saturated_share
        ),
        (share > thresholds.saturated_share).then(|| Finding::SaturatedUnits {
            layer: layer.layer.clone(),
            share,
        }),
    )
}

fn loss_trend(history: &History, thresholds: &CheckThresholds) -> CheckOutcome {
    let check = "training loss trend";
    let losses: Vec<f64> = history.epochs.iter().map(|r| r.train_loss).collect();
    if losses.len() < 2 || losses.iter().any(|l| !l.is_finite()) {
        return CheckOutcome::not_measured(check, "fewer than 2 finite epochs");
    }
    let lowest = losses.iter().copied().fold(f64::INFINITY, f64::min);
    let last = losses[losses.len() - 1];
    let steps = losses.len() - 1;
    let rises = losses.windows(2).filter(|w| w[1] > w[0]).count();
    let finding = if last > lowest * (1.0 + thresholds.rising_loss) {
        Some(Finding::RisingLoss { lowest, last })
    } else if rises >= 2 && rises as f64 >= thresholds.oscillation_share * steps as f64 {
        Some(Finding::OscillatingLoss { rises, steps })
    } else {
        None
    };
    CheckOutcome::new(
        check,
        format!(
            "lowest {lowest:.4}, last {last:.4}, rose in {rises} of {steps} epochs (criterion: last at most {:.0}% above the lowest; rises in fewer than {:.0}% of the epochs, or fewer than 2)",
            100.0 * thresholds.rising_loss,
            100.0 * thresholds.oscillation_share
        ),
        finding,
    )
}

fn still_improving(history: &History, thresholds: &CheckThresholds) -> CheckOutcome {
    let check = "validation at the last epoch";
    let [.., before, last] = history.epochs.as_slice() else {
        return CheckOutcome::not_measured(check, "fewer than 2 epochs");
    };
    let lowest = history
        .epochs
        .iter()
        .map(|r| r.valid_loss)
        .fold(f64::INFINITY, f64::min);
    let last_gain = (before.valid_loss - last.valid_loss) / before.valid_loss;
    let improving = last.valid_loss <= lowest && last_gain > thresholds.still_improving;
    CheckOutcome::new(
        check,
        format!(
            "validation loss {:.4} -> {:.4} over the last epoch, lowest {lowest:.4} (criterion: still improving when the last is the lowest and fell by more than {:.0}%)",
            before.valid_loss,
            last.valid_loss,
            100.0 * thresholds.still_improving
        ),
        improving.then_some(Finding::StillImproving { last_gain }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic_run::{history, summary};

    fn found(outcome: &CheckOutcome) -> Option<&Finding> {
        outcome.finding.as_ref()
    }

    fn record<'a>(
        summary: &'a Summary,
        history: &'a History,
        layers: &'a [LayerGradient],
    ) -> RunRecord<'a> {
        RunRecord {
            summary,
            history,
            layers,
        }
    }

    #[test]
    fn a_start_far_from_ln_classes_is_suspect() {
        let thresholds = CheckThresholds::default();
        let history = history(&[1.0, 0.5], &[1.0, 0.5]);
        let mut run = summary(0.9, 0.9);
        for (loss, suspect) in [(2.35, false), (4.5, false), (4.7, true), (1.1, true)] {
            run.initial_loss = Some(loss);
            let outcome = initial_loss(record(&run, &history, &[]), &thresholds);
            assert_eq!(found(&outcome).is_some(), suspect, "{loss}: {outcome:?}");
            assert!(outcome.measured.contains("ln(10) = 2.303"));
        }
        run.initial_loss = None;
        let outcome = initial_loss(record(&run, &history, &[]), &thresholds);
        assert!(outcome.measured.starts_with("not measured"));
    }

    fn gradients(first: f64, last: f64) -> Vec<LayerGradient> {
        let layer = |parameter: &str, norm: f64| LayerGradient {
            epoch: 1,
            parameter: parameter.into(),
            grad_norm_first_step: norm,
            grad_norm_mean: norm,
            weight_movement: 0.0,
        };
        vec![
            layer("layers.0.linear.weight", first),
            layer("layers.1.linear.weight", (first * last).sqrt()),
            layer("output.weight", last),
        ]
    }

    #[test]
    fn the_gradient_ratio_names_the_layers() {
        let thresholds = CheckThresholds::default();
        let vanishing = gradient_ratio(&gradients(2e-6, 2.3), &thresholds);
        let Some(Finding::VanishingGradient { first, last, ratio }) = found(&vanishing) else {
            panic!("{vanishing:?}");
        };
        assert_eq!(
            (first.as_str(), last.as_str()),
            ("layers.0.linear.weight", "output.weight")
        );
        assert!((ratio - 2e-6 / 2.3).abs() < 1e-12);
        let exploding = gradient_ratio(&gradients(50.0, 1.0), &thresholds);
        assert!(matches!(
            found(&exploding),
            Some(Finding::ExplodingGradient { .. })
        ));
        // sigmoid depth 1 measured 0.27: healthy.
        assert!(found(&gradient_ratio(&gradients(0.54, 2.0), &thresholds)).is_none());
        assert!(
            gradient_ratio(&[], &thresholds)
                .measured
                .contains("record_layer_gradients")
        );
    }

    fn units(dead_share: f64, saturated_share: Option<f64>) -> LayerUnits {
        LayerUnits {
            layer: "layers.2".into(),
            units: 100,
            inputs: 1000,
            dead_share,
            saturated_share,
        }
    }

    #[test]
    fn dead_and_saturated_units_name_the_worst_layer() {
        let thresholds = CheckThresholds::default();
        let layers = [units(0.1, Some(0.2)), units(0.7, Some(0.9))];
        let dead = dead_units(&layers, &thresholds);
        assert_eq!(
            found(&dead),
            Some(&Finding::DeadUnits {
                layer: "layers.2".into(),
                share: 0.7
            })
        );
        let saturated = saturated_units(&layers, &thresholds);
        assert!(
            matches!(found(&saturated), Some(Finding::SaturatedUnits { share, .. }) if *share == 0.9)
        );
        let healthy = [units(0.3, None)];
        assert!(found(&dead_units(&healthy, &thresholds)).is_none());
        assert!(
            saturated_units(&healthy, &thresholds)
                .measured
                .starts_with("not measured")
        );
    }

    #[test]
    fn a_rising_or_oscillating_training_loss_is_a_learning_rate_too_high() {
        let thresholds = CheckThresholds::default();
        let flat = [0.5; 6];
        let trend = |train: &[f64]| loss_trend(&history(train, &flat), &thresholds);
        assert!(found(&trend(&[1.0, 0.5, 0.3, 0.2, 0.15, 0.12])).is_none());
        assert!(matches!(
            found(&trend(&[1.0, 0.5, 0.4, 0.5, 0.6, 0.7])),
            Some(Finding::RisingLoss { .. })
        ));
        assert!(matches!(
            found(&trend(&[1.0, 0.5, 0.52, 0.45, 0.47, 0.43])),
            Some(Finding::OscillatingLoss { rises: 2, steps: 5 })
        ));
        // One rise in five steps is noise.
        assert!(found(&trend(&[1.0, 0.5, 0.52, 0.45, 0.40, 0.38])).is_none());
    }

    #[test]
    fn a_nan_a_divergence_stop_or_ending_above_the_start_is_divergence() {
        let healthy = history(&[1.0, 0.5], &[1.0, 0.5]);
        let mut run = summary(0.9, 0.9);
        run.initial_loss = Some(2.3);
        assert!(found(&divergence(record(&run, &healthy, &[]))).is_none());
        let nan = history(&[1.0, f64::NAN], &[1.0, 0.5]);
        let outcome = divergence(record(&run, &nan, &[]));
        assert!(
            matches!(found(&outcome), Some(Finding::Diverged { sign }) if sign.contains("epoch 2"))
        );
        run.train_loss = 9.0;
        assert!(found(&divergence(record(&run, &healthy, &[]))).is_some());
        run.train_loss = 0.1;
        run.stop_reason = "diverged: training loss 1e9 above 1e6".into();
        assert!(found(&divergence(record(&run, &healthy, &[]))).is_some());
    }

    #[test]
    fn a_validation_loss_still_falling_asks_for_more_epochs() {
        let thresholds = CheckThresholds::default();
        let train = [1.0, 0.8, 0.6];
        let check = |valid: &[f64]| still_improving(&history(&train, valid), &thresholds);
        assert!(matches!(
            found(&check(&[0.9, 0.7, 0.6])),
            Some(Finding::StillImproving { .. })
        ));
        assert!(
            found(&check(&[0.9, 0.6, 0.7])).is_none(),
            "best was earlier"
        );
        assert!(found(&check(&[0.9, 0.6, 0.599])).is_none(), "levelled off");
        assert!(
            found(&check(&[2.35, 2.34, 2.32])).is_none(),
            "a wobble of 0.9%"
        );
    }
}
