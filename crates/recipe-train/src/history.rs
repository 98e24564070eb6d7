//! The per-epoch record of a run, written as `history.csv`.

use serde::{Deserialize, Serialize};

use crate::TrainError;

/// One epoch's numbers. Train figures are averaged over the epoch's batches
/// (with dropout on, as the model trained); validation figures are the model
/// at the end of the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch (the data loss, without the penalty).
    pub train_loss: f64,
    /// Mean regularization penalty over the epoch's steps (0 without a regularizer).
    pub train_penalty: f64,
    /// Mean training accuracy over the epoch, in [0, 1].
    pub train_accuracy: f64,
    /// Validation loss at the end of the epoch.
    pub valid_loss: f64,
    /// Validation accuracy at the end of the epoch, in [0, 1].
    pub valid_accuracy: f64,
    /// Learning rate used in the epoch.
    pub learning_rate: f64,
    /// Wall-clock seconds the epoch took (training and validation).
    pub seconds: f64,
    /// The global gradient norm before clipping over the epoch's steps
    /// (`None` when the run does not clip gradients).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_norm: Option<GradNorm>,
}

/// The global gradient norm of an epoch's steps, before clipping.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradNorm {
    /// Mean over the steps.
    pub mean: f64,
    /// Largest at any step.
    pub max: f64,
}

/// All epochs of a run, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The epochs, first to last.
    pub epochs: Vec<EpochRecord>,
}

const HEADER: &str =
    "epoch,train_loss,train_penalty,train_accuracy,valid_loss,valid_accuracy,learning_rate,seconds";

/// The header of a run that clips gradients: the gradient norm's columns
/// come before `seconds`, which stays last.
const HEADER_WITH_GRAD_NORM: &str = "epoch,train_loss,train_penalty,train_accuracy,valid_loss,\
    valid_accuracy,learning_rate,grad_norm_mean,grad_norm_max,seconds";

impl History {
    /// The epoch with the lowest validation loss (the first, on ties).
    pub fn best_epoch(&self) -> Option<&EpochRecord> {
        let loss = |r: &EpochRecord| {
            if r.valid_loss.is_nan() {
                f64::INFINITY
            } else {
                r.valid_loss
            }
        };
        self.epochs
            .iter()
            .min_by(|a, b| loss(a).total_cmp(&loss(b)))
    }

    /// The history as CSV, with a header line; the gradient-norm columns
    /// appear when an epoch recorded them.
    pub fn to_csv(&self) -> String {
        let with_norm = self.epochs.iter().any(|r| r.grad_norm.is_some());
        let header = if with_norm {
            HEADER_WITH_GRAD_NORM
        } else {
            HEADER
        };
        let mut csv = format!("{header}\n");
        for r in &self.epochs {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},",
                r.epoch,
                r.train_loss,
                r.train_penalty,
                r.train_accuracy,
                r.valid_loss,
                r.valid_accuracy,
                r.learning_rate,
            ));
            if with_norm {
                let norm = r
                    .grad_norm
                    .map_or((f64::NAN, f64::NAN), |n| (n.mean, n.max));
                csv.push_str(&format!("{},{},", norm.0, norm.1));
            }
            csv.push_str(&format!("{:.3}\n", r.seconds));
        }
        csv
    }

    /// Parses what [`History::to_csv`] wrote.
    pub fn from_csv(text: &str) -> Result<Self, TrainError> {
        let mut lines = text.lines();
        let with_norm = match lines.next() {
            Some(HEADER) => false,
            Some(HEADER_WITH_GRAD_NORM) => true,
            _ => {
                return Err(TrainError::invalid(
                    "history.csv",
                    format!("the header `{HEADER}` or `{HEADER_WITH_GRAD_NORM}`"),
                    "another header",
                ));
            }
        };
        let columns = if with_norm { 10 } else { 8 };
        let mut epochs = Vec::new();
        for (index, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            let bad = || {
                TrainError::invalid(
                    format!("history.csv line {}", index + 2),
                    format!("{columns} numbers"),
                    line,
                )
            };
            if fields.len() != columns {
                return Err(bad());
            }
            let number = |i: usize| fields[i].parse::<f64>().map_err(|_| bad());
            let grad_norm = if with_norm {
                Some(GradNorm {
                    mean: number(7)?,
                    max: number(8)?,
                })
            } else {
                None
            };
            epochs.push(EpochRecord {
                epoch: fields[0].parse().map_err(|_| bad())?,
                train_loss: number(1)?,
                train_penalty: number(2)?,
                train_accuracy: number(3)?,
                valid_loss: number(4)?,
                valid_accuracy: number(5)?,
                learning_rate: number(6)?,
                grad_norm,
                seconds: number(columns - 1)?,
            });
        }
        Ok(Self { epochs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(epoch: usize, valid_loss: f64) -> EpochRecord {
        EpochRecord {
            epoch,
            train_loss: 0.5,
            train_penalty: 0.0,
            train_accuracy: 0.9,
            valid_loss,
            valid_accuracy: 0.8,
            learning_rate: 0.1,
            seconds: 1.25,
            grad_norm: None,
        }
    }

    #[test]
    fn csv_round_trip_and_best_epoch() {
        let history = History {
            epochs: vec![
                record(1, 0.4),
                record(2, 0.3),
                record(3, 0.3),
                record(4, 0.35),
            ],
        };
        let csv = history.to_csv();
        assert!(csv.starts_with("epoch,train_loss,"));
        assert_eq!(History::from_csv(&csv).unwrap(), history);
        assert_eq!(history.best_epoch().unwrap().epoch, 2);
        assert!(History::from_csv("nonsense\n1,2").is_err());
    }

    #[test]
    fn gradient_norm_columns_round_trip_before_seconds() {
        let mut history = History {
            epochs: vec![record(1, 0.4), record(2, 0.3)],
        };
        history.epochs[1].grad_norm = Some(GradNorm {
            mean: 2.5,
            max: 7.0,
        });
        let csv = history.to_csv();
        assert!(csv.starts_with(HEADER_WITH_GRAD_NORM), "{csv}");
        assert!(
            csv.contains("\n2,0.5,0,0.9,0.3,0.8,0.1,2.5,7,1.250\n"),
            "{csv}"
        );
        let read = History::from_csv(&csv).unwrap();
        assert_eq!(read.epochs[1], history.epochs[1]);
        assert!(read.epochs[0].grad_norm.unwrap().mean.is_nan());
    }
}
