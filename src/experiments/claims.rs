//! The lecture's claims, each checked against measured rows by an explicit
//! criterion, for `report.md`.

use serde::{Deserialize, Serialize};

use crate::experiments::{DepthSweepRow, VariantKey, VariantRow};

/// One claim of the lecture and whether a run reproduced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// What the lecture says.
    pub claim: String,
    /// The test applied to the measurements.
    pub criterion: String,
    /// The measured numbers.
    pub evidence: String,
    /// Whether the criterion held (`None` when the rows needed are missing).
    pub reproduced: Option<bool>,
}

fn find(rows: &[VariantRow], key: VariantKey) -> Option<&VariantRow> {
    rows.iter().find(|r| r.name == key.label())
}

fn missing(claim: &str, criterion: &str) -> Claim {
    Claim {
        claim: claim.into(),
        criterion: criterion.into(),
        evidence: "not measured".into(),
        reproduced: None,
    }
}

/// Deep sigmoid nets fit their training data worse than shallow ones; ReLU
/// and Maxout at the same depth do not.
pub fn vanishing_gradient_claims(rows: &[DepthSweepRow]) -> Vec<Claim> {
    let by = |activation: &str| -> Vec<&DepthSweepRow> {
        let mut rows: Vec<_> = rows.iter().filter(|r| r.activation == activation).collect();
        rows.sort_by_key(|r| r.depth);
        rows
    };
    let mut claims = Vec::new();
    let claim = "a deep sigmoid MLP is worse than a shallow one even on the training data";
    let criterion = "sigmoid's training accuracy at the greatest depth is at least 0.2 below its best at any depth";
    let sigmoid = by("sigmoid");
    claims.push(
        match (
            sigmoid.iter().map(|r| r.train_accuracy).reduce(f64::max),
            sigmoid.last(),
        ) {
            (Some(best), Some(deepest)) => Claim {
                claim: claim.into(),
                criterion: criterion.into(),
                evidence: format!(
                    "best {best:.3}; at depth {} {:.3}",
                    deepest.depth, deepest.train_accuracy
                ),
                reproduced: Some(best - deepest.train_accuracy >= 0.2),
            },
            _ => missing(claim, criterion),
        },
    );
    for activation in ["relu", "maxout:2"] {
        let claim = format!("{activation} at the same depth trains fine");
        let criterion = format!(
            "{activation}'s training accuracy at the greatest depth is at most 0.05 below its shallowest net's (sigmoid's must fall by 0.2 or more)"
        );
        let runs = by(activation);
        claims.push(match (runs.first(), runs.last()) {
            (Some(shallowest), Some(deepest)) if runs.len() >= 2 => Claim {
                claim,
                criterion,
                evidence: format!(
                    "depth {}: {:.3}; depth {}: {:.3}",
                    shallowest.depth,
                    shallowest.train_accuracy,
                    deepest.depth,
                    deepest.train_accuracy
                ),
                reproduced: Some(deepest.train_accuracy >= shallowest.train_accuracy - 0.05),
            },
            _ => missing(&claim, &criterion),
        });
    }
    claims.extend(gradient_claims(rows));
    claims
}

/// The lecture's explanation, measured on the deepest nets: the first
/// layers of a sigmoid net get tiny gradients; ReLU and Maxout do not.
fn gradient_claims(rows: &[DepthSweepRow]) -> Vec<Claim> {
    let deepest = |activation: &str| {
        rows.iter()
            .filter(|r| r.activation == activation)
            .max_by_key(|r| r.depth)
            .and_then(|r| Some((r.depth, r.first_to_last_hidden_ratio()?)))
    };
    let evidence =
        |depth: usize, ratio: f64| format!("depth {depth}: first / last hidden = {ratio:.2e}");
    let mut claims = Vec::new();
    let claim =
        "sigmoid: the layers near the output get large gradients, the first layers tiny ones";
    let criterion = "in the deepest sigmoid net, the first hidden layer's gradient norm at the first step is at least 100x smaller than the last hidden layer's";
    claims.push(match deepest("sigmoid") {
        Some((depth, ratio)) => Claim {
            claim: claim.into(),
            criterion: criterion.into(),
            evidence: evidence(depth, ratio),
            reproduced: Some(ratio <= 0.01),
        },
        None => missing(claim, criterion),
    });
    let claim = "ReLU and Maxout remove the vanishing gradient";
    let criterion = "in the deepest relu and maxout:2 nets, the first and last hidden layers' gradient norms at the first step are within 10x of each other";
    let measured: Vec<(&str, Option<(usize, f64)>)> = ["relu", "maxout:2"]
        .into_iter()
        .map(|activation| (activation, deepest(activation)))
        .collect();
    claims.push(if measured.iter().all(|(_, m)| m.is_some()) {
        let found: Vec<(&str, usize, f64)> = measured
            .iter()
            .filter_map(|(name, m)| m.map(|(depth, ratio)| (*name, depth, ratio)))
            .collect();
        Claim {
            claim: claim.into(),
            criterion: criterion.into(),
            evidence: found
                .iter()
                .map(|(name, depth, ratio)| format!("{name} {}", evidence(*depth, *ratio)))
                .collect::<Vec<_>>()
                .join("; "),
            reproduced: Some(
                found
                    .iter()
                    .all(|(_, _, ratio)| (0.1..=10.0).contains(ratio)),
            ),
        }
    } else {
        missing(claim, criterion)
    });
    claims.push(movement_claim(rows));
    claims
}

/// The lecture's "the first layers learn almost nothing and stay nearly
/// random", measured as how far the weights moved from their initial
/// values by the end of training.
fn movement_claim(rows: &[DepthSweepRow]) -> Claim {
    let claim = "sigmoid: the first layers stay nearly random while the last ones learn";
    let criterion = "in the deepest sigmoid net, the first hidden layer's weights move (relative distance from their initial values after the last epoch) at most 1/100 as far as the last hidden layer's; in the relu net of that depth at least 1/10 as far";
    let deepest = |activation: &str| {
        rows.iter()
            .filter(|r| r.activation == activation)
            .max_by_key(|r| r.depth)
            .and_then(|r| Some((r.depth, r.first_to_last_hidden_movement()?, r)))
    };
    let Some((depth, ratio, sigmoid)) = deepest("sigmoid") else {
        return missing(claim, criterion);
    };
    let movements = sigmoid.final_movements();
    let hidden: Vec<f64> = movements
        .iter()
        .filter(|(name, _)| name.starts_with("layers."))
        .map(|(_, m)| *m)
        .collect();
    let Some((_, relu_ratio, _)) = deepest("relu") else {
        return missing(claim, criterion);
    };
    let relu = format!("; relu at the same depth: {relu_ratio:.2}");
    Claim {
        claim: claim.into(),
        criterion: criterion.into(),
        evidence: format!(
            "depth {depth}: first hidden moved {:.2e}, last hidden {:.2e} (ratio {ratio:.2e}){relu}",
            hidden.first().copied().unwrap_or(f64::NAN),
            hidden.last().copied().unwrap_or(f64::NAN),
        ),
        reproduced: Some(ratio <= 0.01 && relu_ratio >= 0.1),
    }
}

/// Every ReLU variant and Maxout fits the training data of a 3-layer net
/// better than sigmoid does.
pub fn activation_claims(rows: &[DepthSweepRow]) -> Vec<Claim> {
    let claim = "ReLU, its variants and Maxout train a deep net well";
    let criterion = "each of relu, leaky-relu, prelu, elu, gelu, silu and maxout reaches a higher training accuracy than sigmoid in the same net with the same budget";
    let family: Vec<&DepthSweepRow> = rows
        .iter()
        .filter(|r| {
            [
                "relu",
                "leaky-relu",
                "prelu",
                "elu",
                "gelu",
                "silu",
                "maxout",
            ]
            .iter()
            .any(|name| r.activation.split(':').next() == Some(name))
        })
        .collect();
    let sigmoid = rows.iter().find(|r| r.activation == "sigmoid");
    let Some(sigmoid) = sigmoid.filter(|_| !family.is_empty()) else {
        return vec![missing(claim, criterion)];
    };
    vec![Claim {
        claim: claim.into(),
        criterion: criterion.into(),
        evidence: std::iter::once(sigmoid)
            .chain(family.iter().copied())
            .map(|r| format!("{} {:.3}", r.activation, r.train_accuracy))
            .collect::<Vec<_>>()
            .join(", "),
        reproduced: Some(
            family
                .iter()
                .all(|r| r.train_accuracy > sigmoid.train_accuracy),
        ),
    }]
}

/// Maxout, a learnable activation with ReLU as a special case, trains at
/// least as well as ReLU.
pub fn maxout_claims(rows: &[DepthSweepRow]) -> Vec<Claim> {
    let claim = "Maxout (ReLU is its special case) trains at least as well as ReLU";
    let criterion = "every Maxout net's training accuracy is at least ReLU's minus 0.01";
    let relu = rows.iter().find(|r| r.activation == "relu");
    let maxouts: Vec<&DepthSweepRow> = rows
        .iter()
        .filter(|r| r.activation.starts_with("maxout"))
        .collect();
    match relu {
        Some(relu) if !maxouts.is_empty() => vec![Claim {
            claim: claim.into(),
            criterion: criterion.into(),
            evidence: std::iter::once(relu)
                .chain(maxouts.iter().copied())
                .map(|r| format!("{} {:.3}", r.activation, r.train_accuracy))
                .collect::<Vec<_>>()
                .join(", "),
            reproduced: Some(
                maxouts
                    .iter()
                    .all(|r| r.train_accuracy >= relu.train_accuracy - 0.01),
            ),
        }],
        _ => vec![missing(claim, criterion)],
    }
}

/// Early stopping on validation loss gives a better-calibrated model than
/// training for the whole budget.
pub fn early_stopping_claims(rows: &[VariantRow]) -> Vec<Claim> {
    let claim = "stopping when the validation loss stops going down beats training on";
    let criterion = "early stopping on validation loss ends with a lower test loss than the whole budget, in fewer epochs";
    vec![match (
        find(rows, VariantKey::WholeBudget),
        find(rows, VariantKey::EarlyStoppingOnLoss),
    ) {
        (Some(all), Some(stopped)) => Claim {
            claim: claim.into(),
            criterion: criterion.into(),
            evidence: format!(
                "whole budget: test loss {:.4} after {} epochs; early stopping: {:.4} with the weights of epoch {} (stopped at {})",
                all.test_loss,
                all.epochs_run,
                stopped.test_loss,
                stopped.weights_from_epoch,
                stopped.epochs_run
            ),
            reproduced: Some(
                stopped.test_loss < all.test_loss && stopped.epochs_run < all.epochs_run,
            ),
        },
        _ => missing(claim, criterion),
    }]
}

/// L2 shrinks weights; L1 makes them sparse.
pub fn regularization_claims(rows: &[VariantRow]) -> Vec<Claim> {
    let none = find(rows, VariantKey::NoPenalty);
    let mut claims = Vec::new();
    let claim = "L2 keeps the weights small";
    let criterion = "mean |w| with L2 1e-4 is below that without regularization";
    claims.push(match (none, find(rows, VariantKey::L2)) {
        (Some(none), Some(l2)) => Claim {
            claim: claim.into(),
            criterion: criterion.into(),
            evidence: format!("{:.5} vs {:.5}", l2.mean_abs_weight, none.mean_abs_weight),
            reproduced: Some(l2.mean_abs_weight < none.mean_abs_weight),
        },
        _ => missing(claim, criterion),
    });
    let claim = "L1 makes the weights sparse";
    let criterion = "the share of weights below 1e-3 with L1 1e-5 is at least twice that without regularization";
    claims.push(match (none, find(rows, VariantKey::L1)) {
        (Some(none), Some(l1)) => Claim {
            claim: claim.into(),
            criterion: criterion.into(),
            evidence: format!(
                "{:.1}% vs {:.1}%",
                100.0 * l1.near_zero_weights,
                100.0 * none.near_zero_weights
            ),
            reproduced: Some(l1.near_zero_weights >= 2.0 * none.near_zero_weights),
        },
        _ => missing(claim, criterion),
    });
    claims
}

/// Dropout helps an overfitting net and hurts one that under-fits.
pub fn dropout_claims(overfitting: &[VariantRow], underfitting: &[VariantRow]) -> Vec<Claim> {
    let mut claims = Vec::new();
    let claim = "dropout fights overfitting: training gets worse, testing better";
    let criterion =
        "on the overfitting net, dropout lowers the training accuracy and the test loss";
    claims.push(
        match (
            find(overfitting, VariantKey::OverfittingNoDropout),
            find(overfitting, VariantKey::OverfittingDropout),
        ) {
            (Some(plain), Some(dropout)) => Claim {
                claim: claim.into(),
                criterion: criterion.into(),
                evidence: format!(
                    "with dropout: training accuracy {:.4}, test loss {:.4}, test accuracy {:.4}; \
                 without: {:.4}, {:.4}, {:.4}",
                    dropout.train_accuracy,
                    dropout.test_loss,
                    dropout.test_accuracy,
                    plain.train_accuracy,
                    plain.test_loss,
                    plain.test_accuracy
                ),
                reproduced: Some(
                    dropout.train_accuracy < plain.train_accuracy
                        && dropout.test_loss < plain.test_loss,
                ),
            },
            _ => missing(claim, criterion),
        },
    );
    let claim = "dropout is no fix for an optimization problem";
    let criterion = "on the under-fitting sigmoid net, dropout lowers the training accuracy";
    claims.push(
        match (
            find(underfitting, VariantKey::UnderfittingNoDropout),
            find(underfitting, VariantKey::UnderfittingDropout),
        ) {
            (Some(plain), Some(dropout)) => Claim {
                claim: claim.into(),
                criterion: criterion.into(),
                evidence: format!(
                    "training accuracy {:.4} with dropout vs {:.4} without",
                    dropout.train_accuracy, plain.train_accuracy
                ),
                reproduced: Some(dropout.train_accuracy < plain.train_accuracy),
            },
            _ => missing(claim, criterion),
        },
    );
    claims
}

/// The claims as a Markdown table.
pub fn claims_table(claims: &[Claim]) -> String {
    let mut table = String::from("| claim | criterion | evidence | verdict |\n|---|---|---|---|\n");
    // A `|` inside a cell would end it.
    let cell = |text: &str| text.replace('|', "\\|");
    for c in claims {
        let verdict = match c.reproduced {
            Some(true) => "reproduced",
            Some(false) => "NOT reproduced",
            None => "not measured",
        };
        table.push_str(&format!(
            "| {} | {} | {} | {verdict} |\n",
            cell(&c.claim),
            cell(&c.criterion),
            cell(&c.evidence)
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(activation: &str, depth: usize, train_accuracy: f64) -> DepthSweepRow {
        DepthSweepRow {
            activation: activation.into(),
            depth,
            train_accuracy,
            train_loss: 0.0,
            test_accuracy: train_accuracy,
            seconds: 0.0,
            history: Default::default(),
            layer_gradients: Vec::new(),
        }
    }

    /// A depth-sweep row whose first step gave these weight-gradient norms
    /// (hidden layers first, then the output's).
    fn with_gradients(mut row: DepthSweepRow, norms: &[f64]) -> DepthSweepRow {
        row.layer_gradients = norms
            .iter()
            .enumerate()
            .map(|(i, &norm)| recipe_train::LayerGradient {
                epoch: 1,
                parameter: if i + 1 == norms.len() {
                    "output.weight".into()
                } else {
                    format!("layers.{i}.linear.weight")
                },
                grad_norm_first_step: norm,
                grad_norm_mean: norm,
                weight_movement: norm,
            })
            .collect();
        row
    }

    /// First / last hidden: sigmoid 1e-5 / 0.5 = 2e-5 (at most 0.01: holds);
    /// relu 1.0 / 1.2 (within 10x: holds) but maxout 0.01 / 0.5 = 0.02
    /// (not within 10x), so the second claim fails; the output's norm
    /// takes no part.
    #[test]
    fn gradient_verdicts_follow_the_criteria() {
        let rows = [
            with_gradients(depth("sigmoid", 9, 0.11), &[1e-5, 1e-3, 0.5, 9.0]),
            with_gradients(depth("relu", 9, 0.99), &[1.0, 1.1, 1.2, 100.0]),
            with_gradients(depth("maxout:2", 9, 0.99), &[0.01, 0.2, 0.5, 1.0]),
        ];
        let claims = vanishing_gradient_claims(&rows);
        assert_eq!(claims[3].reproduced, Some(true), "{:?}", claims[3]);
        assert!(
            claims[3].evidence.contains("2.00e-5"),
            "{}",
            claims[3].evidence
        );
        assert_eq!(claims[4].reproduced, Some(false), "{:?}", claims[4]);
        // The helper records movement = gradient: sigmoid's first / last
        // hidden 2e-5 (1/100 or less), 1.0 / 1.2 for relu (1/10 or more).
        assert_eq!(claims[5].reproduced, Some(true), "{:?}", claims[5]);
        assert!(
            claims[5].evidence.contains("relu at the same depth: 0.83"),
            "{:?}",
            claims[5]
        );
        let mut fixed = rows.clone();
        fixed[2] = with_gradients(depth("maxout:2", 9, 0.99), &[0.3, 0.2, 0.25, 1.0]);
        assert_eq!(vanishing_gradient_claims(&fixed)[4].reproduced, Some(true));
    }

    fn variant(name: &str, train: f64, test: f64, test_loss: f64, epochs: usize) -> VariantRow {
        VariantRow {
            name: name.into(),
            train_accuracy: train,
            valid_accuracy: test,
            test_accuracy: test,
            test_loss,
            epochs_run: epochs,
            weights_from_epoch: epochs,
            mean_abs_weight: 0.01,
            near_zero_weights: 0.02,
            weight_histogram: Vec::new(),
            history: Default::default(),
        }
    }

    #[test]
    fn vanishing_gradient_verdicts_follow_the_criteria() {
        let rows = [
            depth("sigmoid", 1, 0.91),
            depth("sigmoid", 9, 0.11),
            depth("relu", 1, 0.94),
            depth("relu", 9, 0.99),
            depth("maxout:2", 1, 0.96),
            depth("maxout:2", 9, 0.90),
        ];
        let claims = vanishing_gradient_claims(&rows);
        assert_eq!(
            claims.iter().map(|c| c.reproduced).collect::<Vec<_>>(),
            vec![Some(true), Some(true), Some(false), None, None, None]
        );
        // One depth only: no shallowest net to compare with.
        assert_eq!(vanishing_gradient_claims(&rows[3..4])[1].reproduced, None);
        assert_eq!(vanishing_gradient_claims(&[])[0].reproduced, None);
    }

    #[test]
    fn activation_and_maxout_verdicts_follow_the_criteria() {
        let rows = [
            depth("sigmoid", 3, 0.90),
            depth("relu", 3, 0.99),
            depth("elu", 3, 0.97),
            depth("maxout:2", 3, 0.985),
            depth("maxout:3", 3, 0.975),
        ];
        assert_eq!(activation_claims(&rows)[0].reproduced, Some(true));
        let mut slow = rows.clone();
        slow[2] = depth("elu", 3, 0.89);
        assert_eq!(activation_claims(&slow)[0].reproduced, Some(false));
        assert_eq!(
            activation_claims(&rows[1..])[0].reproduced,
            None,
            "no sigmoid"
        );
        assert_eq!(maxout_claims(&rows)[0].reproduced, Some(false));
        assert_eq!(maxout_claims(&rows[..4])[0].reproduced, Some(true));
    }

    #[test]
    fn overfitting_verdicts_follow_the_criteria() {
        let es = [
            variant(VariantKey::WholeBudget.label(), 1.0, 0.95, 0.23, 40),
            variant(VariantKey::EarlyStoppingOnLoss.label(), 1.0, 0.95, 0.18, 10),
        ];
        assert_eq!(early_stopping_claims(&es)[0].reproduced, Some(true));
        let over = [
            variant(VariantKey::OverfittingNoDropout.label(), 1.0, 0.95, 0.2, 40),
            variant(VariantKey::OverfittingDropout.label(), 0.99, 0.96, 0.18, 40),
        ];
        let under = [
            variant(
                VariantKey::UnderfittingNoDropout.label(),
                0.85,
                0.85,
                0.5,
                5,
            ),
            variant(VariantKey::UnderfittingDropout.label(), 0.88, 0.88, 0.5, 5),
        ];
        let claims = dropout_claims(&over, &under);
        assert_eq!(claims[0].reproduced, Some(true));
        assert_eq!(claims[1].reproduced, Some(false));
        assert!(claims_table(&claims).contains("| NOT reproduced |"));
        let regularization = regularization_claims(&[
            variant(VariantKey::NoPenalty.label(), 1.0, 0.95, 0.2, 40),
            variant(VariantKey::L2.label(), 1.0, 0.95, 0.2, 40),
        ]);
        let table = claims_table(&regularization);
        assert!(table.contains("mean \\|w\\| with L2"), "{table}");
    }
}
