//! What the diagnosis suggests, as values: each remedy in words, and how to
//! apply it to a run's settings.

use std::fmt;

use recipe_models::{ActivationConfig, InitConfig, MlpConfig};
use serde::{Deserialize, Serialize};

use crate::{
    EarlyStoppingConfig, FitConfig, GradientClipping, MaxNormConfig, OptimizerConfig, Regularizer,
    TrainConfig, TrainError,
};

/// A remedy the diagnosis suggests. Its `Display` says it in words; a
/// front end adds how to ask for it there (the CLI adds its flags, see
/// [`Diagnosis::render`](crate::Diagnosis::render)).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Remedy {
    /// Replace a saturating activation (sigmoid, tanh) by one of the ReLU
    /// family or Maxout.
    NonSaturatingActivation,
    /// Another activation of the ReLU family, or Maxout.
    OtherActivation,
    /// The initializer the activation wants (`auto`) instead of `current`.
    AutoInit {
        /// The initializer the run used.
        current: String,
    },
    /// An adaptive optimizer (Adam at 1e-3), or momentum 0.9 for SGD.
    AdaptiveOptimizer,
    /// More epochs, or a tuned learning rate.
    TrainLonger {
        /// Epochs the run had.
        epochs: usize,
        /// Its learning rate.
        learning_rate: f64,
    },
    /// Early stopping on the validation loss, keeping the best epoch.
    EarlyStopping,
    /// An L2 (1e-4) or L1 (1e-5) penalty.
    Penalty,
    /// Dropout (0.5 hidden, 0.2 on the inputs).
    Dropout,
    /// A max-norm constraint (1), best with dropout.
    MaxNorm,
    /// More training data.
    MoreData,
    /// Check the labels, the output layer, the loss and the input scaling:
    /// a start far from ln(classes) is a bug, not a recipe problem.
    CheckSetup,
    /// A learning rate ten times lower than `learning_rate`.
    LowerLearningRate {
        /// The run's learning rate.
        learning_rate: f64,
    },
    /// Gradient clipping by global norm (1.0).
    GradientClipping,
    /// A ReLU variant whose units cannot die (leaky ReLU), with its init.
    LeakyActivation,
    /// Nothing to fix by the lecture's criteria.
    Nothing,
}

impl fmt::Display for Remedy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NonSaturatingActivation => write!(
                f,
                "change the activation: sigmoid/tanh gradients vanish in deep nets; try relu, leaky-relu, elu or maxout"
            ),
            Self::OtherActivation => {
                write!(f, "try another activation from the ReLU family or maxout")
            }
            Self::AutoInit { current } => {
                write!(
                    f,
                    "use the initializer the activation wants (auto), not {current}"
                )
            }
            Self::AdaptiveOptimizer => {
                write!(
                    f,
                    "use an adaptive optimizer (Adam at 1e-3) or add momentum (0.9)"
                )
            }
            Self::TrainLonger {
                epochs,
                learning_rate,
            } => write!(
                f,
                "train longer or with a tuned learning rate (now {epochs} epochs at lr {learning_rate})"
            ),
            Self::EarlyStopping => {
                write!(
                    f,
                    "early stopping on validation loss, keeping the best epoch"
                )
            }
            Self::Penalty => write!(f, "an L2 or L1 penalty"),
            Self::Dropout => write!(f, "dropout"),
            Self::MaxNorm => write!(f, "a max-norm constraint, best with dropout"),
            Self::MoreData => write!(f, "more training data, if there is any"),
            Self::CheckSetup => write!(
                f,
                "check the labels, the output layer, the loss and the input scaling (a bug, not a recipe problem)"
            ),
            Self::LowerLearningRate { learning_rate } => write!(
                f,
                "lower the learning rate (now {learning_rate}; try {})",
                tenth_of(*learning_rate)
            ),
            Self::GradientClipping => write!(f, "clip the gradient's global norm (at 1)"),
            Self::LeakyActivation => write!(
                f,
                "use an activation whose units cannot die (leaky-relu, elu)"
            ),
            Self::Nothing => write!(f, "nothing to fix by the lecture's criteria"),
        }
    }
}

impl Remedy {
    /// The runs that try this remedy on `run`, each with a short name: none
    /// for a remedy that settings cannot express (more data, nothing to
    /// fix). A remedy for an optimization problem also removes the run's
    /// overfitting fixes (dropout, penalties, max-norm, early stopping),
    /// which can only hurt there. Remedies that change the activation or
    /// dropout need recipe's MLP (an error naming `network` otherwise).
    pub fn apply(&self, run: &TrainConfig) -> Result<Vec<(String, TrainConfig)>, TrainError> {
        let changed = |name: &str, change: &dyn Fn(&mut TrainConfig) -> Result<(), TrainError>| {
            let mut config = run.clone();
            change(&mut config)?;
            Ok::<_, TrainError>((name.to_string(), config))
        };
        let optimization = |name: &str, change: &dyn Fn(&mut MlpConfig, &mut FitConfig)| {
            changed(name, &|config| {
                let mut mlp = config.mlp()?.clone();
                undo_overfitting_fixes(&mut mlp, &mut config.fit);
                change(&mut mlp, &mut config.fit);
                config.network = mlp.into();
                Ok(())
            })
        };
        let with_dropout = |config: &mut TrainConfig| -> Result<(), TrainError> {
            let mlp = config.mlp_mut()?;
            *mlp = mlp.clone().with_input_dropout(0.2).with_dropout(0.5);
            Ok(())
        };
        Ok(match self {
            Self::NonSaturatingActivation => vec![
                optimization("relu, init auto", &|m, _| {
                    m.activation = vec![ActivationConfig::relu()];
                    m.initializer = InitConfig::Auto;
                })?,
                optimization("maxout:2, init auto", &|m, _| {
                    m.activation = vec![ActivationConfig::maxout(2)];
                    m.initializer = InitConfig::Auto;
                })?,
            ],
            Self::OtherActivation => {
                let is_maxout = run
                    .mlp()?
                    .activation
                    .iter()
                    .any(|a| a.spec_name() == "maxout");
                let (name, other) = if is_maxout {
                    ("relu, init auto", ActivationConfig::relu())
                } else {
                    ("maxout:2, init auto", ActivationConfig::maxout(2))
                };
                vec![optimization(name, &|m, _| {
                    m.activation = vec![other.clone()];
                    m.initializer = InitConfig::Auto;
                })?]
            }
            Self::AutoInit { .. } => vec![optimization("init auto", &|m, _| {
                m.initializer = InitConfig::Auto;
            })?],
            Self::AdaptiveOptimizer => vec![optimization("adam lr 1e-3", &|_, f| {
                f.optimizer = OptimizerConfig::adam();
                f.learning_rate = f.optimizer.default_learning_rate();
            })?],
            Self::TrainLonger { epochs, .. } => {
                let longer = epochs * 2;
                vec![optimization(&format!("{longer} epochs"), &|_, f| {
                    f.epochs = longer;
                })?]
            }
            Self::EarlyStopping => vec![changed(
                "early stopping, patience 3, restore best",
                &|config| {
                    config.fit.early_stopping = Some(EarlyStoppingConfig {
                        patience: 3,
                        restore_best_weights: true,
                        ..EarlyStoppingConfig::default()
                    });
                    Ok(())
                },
            )?],
            Self::Penalty => vec![changed("L2 1e-4", &|config| {
                config.fit.regularizer = Some(Regularizer::L2 { lambda: 1e-4 });
                Ok(())
            })?],
            Self::Dropout => vec![changed("dropout 0.2 in / 0.5 hidden", &with_dropout)?],
            Self::MaxNorm => vec![changed("dropout + max-norm 1", &|config| {
                with_dropout(config)?;
                config.fit.max_norm = Some(MaxNormConfig::new(1.0)?);
                Ok(())
            })?],
            Self::LowerLearningRate { learning_rate } => {
                let lower = tenth_of(*learning_rate);
                vec![optimization(&format!("lr {lower}"), &|_, f| {
                    f.learning_rate = lower;
                })?]
            }
            Self::GradientClipping => vec![optimization("clip norm 1", &|_, f| {
                f.gradient_clipping = Some(GradientClipping::GlobalNorm(1.0));
            })?],
            Self::LeakyActivation => vec![optimization("leaky-relu:0.01, init auto", &|m, _| {
                m.activation = vec![ActivationConfig::leaky_relu(0.01)];
                m.initializer = InitConfig::Auto;
            })?],
            Self::MoreData | Self::Nothing | Self::CheckSetup => Vec::new(),
        })
    }
}

/// A tenth of a learning rate, as it would be typed (0.11, not
/// 0.11000000000000001).
pub fn tenth_of(learning_rate: f64) -> f64 {
    let tenth = learning_rate / 10.0;
    format!("{tenth:.9e}").parse().unwrap_or(tenth)
}

/// Removes what fights overfitting: dropout of every kind, penalties,
/// max-norm and early stopping.
fn undo_overfitting_fixes(mlp: &mut MlpConfig, fit: &mut FitConfig) {
    mlp.dropout = 0.0;
    mlp.input_dropout = 0.0;
    mlp.alpha_dropout = 0.0;
    mlp.dropconnect = 0.0;
    fit.regularizer = None;
    fit.penalties.clear();
    fit.max_norm = None;
    fit.early_stopping = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> TrainConfig {
        let mut config = TrainConfig::new(
            MlpConfig::new(784, vec![500; 5], 10)
                .with_activation(vec![ActivationConfig::sigmoid()])
                .with_dropout(0.5),
        );
        config.fit.regularizer = Some(Regularizer::L2 { lambda: 1e-4 });
        config
    }

    #[test]
    fn optimization_remedies_drop_overfitting_fixes() {
        for remedy in [
            Remedy::NonSaturatingActivation,
            Remedy::AdaptiveOptimizer,
            Remedy::TrainLonger {
                epochs: 5,
                learning_rate: 0.1,
            },
        ] {
            for (name, config) in remedy.apply(&run()).unwrap() {
                assert_eq!(config.mlp().unwrap().dropout, 0.0, "{name}");
                assert!(config.fit.regularizer.is_none(), "{name}");
            }
        }
        let activations = Remedy::NonSaturatingActivation.apply(&run()).unwrap();
        assert_eq!(
            activations[0].1.mlp().unwrap().activation,
            vec![ActivationConfig::relu()]
        );
        let longer = Remedy::TrainLonger {
            epochs: 5,
            learning_rate: 0.1,
        };
        assert_eq!(longer.apply(&run()).unwrap()[0].1.fit.epochs, 10);
        let lower = Remedy::LowerLearningRate { learning_rate: 1.1 };
        let (name, config) = lower.apply(&run()).unwrap().remove(0);
        assert_eq!((name.as_str(), config.fit.learning_rate), ("lr 0.11", 0.11));
        assert!(lower.to_string().contains("try 0.11)"), "{lower}");
    }

    #[test]
    fn overfitting_remedies_add_their_fix_and_keep_the_rest() {
        let stopped = Remedy::EarlyStopping.apply(&run()).unwrap();
        assert!(stopped[0].1.fit.early_stopping.is_some());
        assert!(stopped[0].1.fit.regularizer.is_some(), "kept");
        let max_norm = Remedy::MaxNorm.apply(&run()).unwrap();
        assert_eq!(max_norm[0].1.mlp().unwrap().input_dropout, 0.2);
        assert!(max_norm[0].1.fit.max_norm.is_some());
        assert!(Remedy::MoreData.apply(&run()).unwrap().is_empty());
        let mut own = run();
        own.network = crate::NetworkConfig::Custom(crate::CustomNetwork {
            name: "conv".into(),
            config: None,
            structure: String::new(),
            parameters: 0,
        });
        let error = Remedy::Dropout.apply(&own).unwrap_err().to_string();
        assert!(error.contains("network"), "{error}");
        assert_eq!(Remedy::Penalty.apply(&own).unwrap().len(), 1);
    }
}
