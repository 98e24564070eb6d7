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
}

/// All epochs of a run, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The epochs, first to last.
    pub epochs: Vec<EpochRecord>,
}

const HEADER: &str =
    "epoch,train_loss,train_penalty,train_accuracy,valid_loss,valid_accuracy,learning_rate,seconds";

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

    /// The history as CSV, with a header line.
    pub fn to_csv(&self) -> String {
        let mut csv = format!("{HEADER}\n");
        for r in &self.epochs {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{:.3}\n",
                r.epoch,
                r.train_loss,
                r.train_penalty,
                r.train_accuracy,
                r.valid_loss,
                r.valid_accuracy,
                r.learning_rate,
                r.seconds
            ));
        }
        csv
    }

    /// Parses what [`History::to_csv`] wrote.
    pub fn from_csv(text: &str) -> Result<Self, TrainError> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(TrainError::invalid(
                "history.csv",
                format!("the header `{HEADER}`"),
                "another header",
            ));
        }
        let mut epochs = Vec::new();
        for (index, line) in lines.enumerate() {
            let fields: Vec<&str> = line.split(',').collect();
            let bad = || {
                TrainError::invalid(format!("history.csv line {}", index + 2), "8 numbers", line)
            };
            if fields.len() != 8 {
                return Err(bad());
            }
            let number = |i: usize| fields[i].parse::<f64>().map_err(|_| bad());
            epochs.push(EpochRecord {
                epoch: fields[0].parse().map_err(|_| bad())?,
                train_loss: number(1)?,
                train_penalty: number(2)?,
                train_accuracy: number(3)?,
                valid_loss: number(4)?,
                valid_accuracy: number(5)?,
                learning_rate: number(6)?,
                seconds: number(7)?,
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
}
