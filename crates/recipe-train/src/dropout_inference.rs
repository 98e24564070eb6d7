//! How a net trained with dropout is evaluated: the deterministic
//! weight-scaled pass, or the average of sampled thinned nets that it
//! approximates (Srivastava et al. 2014, section 7.5).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// How the final evaluation treats dropout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DropoutInference {
    /// One deterministic pass with dropout off: the weight-scaled net (in
    /// inverted dropout the scaling happened in training).
    #[default]
    WeightScaling,
    /// The class probabilities averaged over `samples` passes, each with a
    /// new dropout mask (Monte Carlo dropout), seeded by the run's seed.
    MonteCarlo {
        /// Thinned nets averaged, at least 1.
        samples: usize,
    },
}

impl DropoutInference {
    /// Fails, naming the field, when no net would be averaged.
    pub fn validate(&self) -> Result<(), TrainError> {
        match self {
            Self::MonteCarlo { samples: 0 } => Err(TrainError::invalid(
                "dropout_inference.monte_carlo.samples",
                "at least 1",
                0,
            )),
            _ => Ok(()),
        }
    }

    /// Whether this is the default, deterministic pass.
    pub fn is_weight_scaling(&self) -> bool {
        *self == Self::WeightScaling
    }
}

impl fmt::Display for DropoutInference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WeightScaling => f.write_str("weight-scaling"),
            Self::MonteCarlo { samples } => write!(f, "monte-carlo:{samples}"),
        }
    }
}

impl FromStr for DropoutInference {
    type Err = TrainError;

    /// `weight-scaling` or `monte-carlo:K`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            TrainError::invalid(
                "dropout inference",
                "weight-scaling or monte-carlo:K (K thinned nets, at least 1)",
                text,
            )
        };
        let inference = match text.trim().split_once(':') {
            None if text.trim() == "weight-scaling" => Self::WeightScaling,
            Some(("monte-carlo", samples)) => Self::MonteCarlo {
                samples: samples.trim().parse().map_err(|_| bad())?,
            },
            _ => return Err(bad()),
        };
        inference.validate().map_err(|_| bad())?;
        Ok(inference)
    }
}

/// The summary's record of a Monte Carlo evaluation: how many thinned nets
/// its figures average, and the weight-scaled pass's test figures to set
/// beside them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MonteCarloFigures {
    /// Thinned nets averaged in the summary's train, validation and test
    /// figures.
    pub samples: usize,
    /// Test accuracy of the deterministic weight-scaled pass.
    pub weight_scaled_test_accuracy: f64,
    /// Its mean test loss.
    pub weight_scaled_test_loss: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms_and_refuses_the_rest() {
        for text in ["weight-scaling", "monte-carlo:50"] {
            assert_eq!(text.parse::<DropoutInference>().unwrap().to_string(), text);
        }
        for bad in ["monte-carlo:0", "monte-carlo", "monte-carlo:x", "mc:5", ""] {
            let error = bad.parse::<DropoutInference>().unwrap_err().to_string();
            assert!(error.contains("monte-carlo:K"), "{bad}: {error}");
        }
    }
}
