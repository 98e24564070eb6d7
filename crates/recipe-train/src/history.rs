//! The per-epoch record of a run, written as `history.csv`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::{AveragedFigures, Metric, TrainError};

/// One epoch's numbers. Train figures are averaged over the epoch's batches
/// (with dropout on, as the model trained); validation figures are the model
/// at the end of the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The averaged weights' validation figures at the end of the epoch
    /// (`None` without weight averaging, or before the average starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub averaged: Option<AveragedFigures>,
    /// The epoch means of the run's [`ClassMetric`](crate::ClassMetric)s, by
    /// column (`train_NAME`, `valid_NAME`); empty without any.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

/// The global gradient norm of an epoch's steps, before clipping.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GradNorm {
    /// Mean over the steps.
    pub mean: f64,
    /// Largest at any step.
    pub max: f64,
}

/// All epochs of a run, in order, and the loss they measure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The epochs, first to last.
    pub epochs: Vec<EpochRecord>,
    /// The loss that `train_loss` and `valid_loss` measure (as
    /// `summary.json`'s `loss`; empty when unknown, e.g. a history written
    /// before recipe recorded it).
    #[serde(default)]
    pub loss: String,
}

#[cfg(test)]
impl EpochRecord {
    /// A record for tests: the epoch and validation loss given, validation
    /// accuracy `1 - valid_loss`, training loss 0.1 and accuracy 0.9,
    /// learning rate 0.1, one second.
    pub(crate) fn for_tests(epoch: usize, valid_loss: f64) -> Self {
        Self {
            epoch,
            train_loss: 0.1,
            train_penalty: 0.0,
            train_accuracy: 0.9,
            valid_loss,
            valid_accuracy: 1.0 - valid_loss,
            learning_rate: 0.1,
            seconds: 1.0,
            grad_norm: None,
            averaged: None,
            metrics: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
impl History {
    /// A cross-entropy history of [`EpochRecord::for_tests`] records whose
    /// validation losses are `valid_losses` (epochs 1, 2, ...).
    pub(crate) fn for_tests(valid_losses: &[f64]) -> Self {
        Self {
            epochs: valid_losses
                .iter()
                .enumerate()
                .map(|(i, &loss)| EpochRecord::for_tests(i + 1, loss))
                .collect(),
            loss: "cross-entropy".to_string(),
        }
    }
}

/// The columns every history has, in order.
const BASE_COLUMNS: [&str; 7] = [
    "epoch",
    "train_loss",
    "train_penalty",
    "train_accuracy",
    "valid_loss",
    "valid_accuracy",
    "learning_rate",
];

/// The columns of a run that clips gradients, between the base columns and
/// `seconds`.
const GRAD_NORM_COLUMNS: [&str; 2] = ["grad_norm_mean", "grad_norm_max"];

/// The columns of a run that averages its weights, after the gradient norm's.
const AVERAGED_COLUMNS: [&str; 2] = ["averaged_valid_loss", "averaged_valid_accuracy"];

/// `seconds`, then the loss's name (the one text column, last so that a
/// name with commas in it is still one field).
const TAIL_COLUMNS: [&str; 2] = ["seconds", "loss"];

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

    /// The column names [`History::to_csv`] writes: the gradient-norm,
    /// averaged and recorded metrics' columns only when an epoch recorded
    /// them.
    fn columns(&self) -> Vec<String> {
        let mut columns: Vec<String> = BASE_COLUMNS.map(String::from).to_vec();
        if self.epochs.iter().any(|r| r.grad_norm.is_some()) {
            columns.extend(GRAD_NORM_COLUMNS.map(String::from));
        }
        if self.epochs.iter().any(|r| r.averaged.is_some()) {
            columns.extend(AVERAGED_COLUMNS.map(String::from));
        }
        columns.extend(self.recorded_columns());
        columns.extend(TAIL_COLUMNS.map(String::from));
        columns
    }

    /// The columns of the recorded metrics, in name order.
    pub fn recorded_columns(&self) -> Vec<String> {
        let names: BTreeSet<&String> = self.epochs.iter().flat_map(|r| r.metrics.keys()).collect();
        names.into_iter().cloned().collect()
    }

    /// The history as CSV, with a header line; the gradient-norm, the
    /// averaged weights' and the recorded metrics' columns appear when an
    /// epoch recorded them (`NaN` in the epochs that did not), and every
    /// line names the loss.
    pub fn to_csv(&self) -> String {
        let columns = self.columns();
        let has = |name: &str| columns.iter().any(|c| c == name);
        let with_norm = has(GRAD_NORM_COLUMNS[0]);
        let with_averaged = has(AVERAGED_COLUMNS[0]);
        let recorded = self.recorded_columns();
        let loss = csv_text(&self.loss);
        let mut csv = format!("{}\n", columns.join(","));
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
            if with_averaged {
                let averaged = r
                    .averaged
                    .map_or((f64::NAN, f64::NAN), |a| (a.valid_loss, a.valid_accuracy));
                csv.push_str(&format!("{},{},", averaged.0, averaged.1));
            }
            for column in &recorded {
                let value = r.metrics.get(column).copied().unwrap_or(f64::NAN);
                csv.push_str(&format!("{value},"));
            }
            csv.push_str(&format!("{:.3},{loss}\n", r.seconds));
        }
        csv
    }

    /// Parses what [`History::to_csv`] wrote, by column name (a history
    /// without the `loss` column, as recipe wrote before it named the loss,
    /// reads with an empty [`History::loss`]).
    pub fn from_csv(text: &str) -> Result<Self, TrainError> {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
        let layout = Layout::of(&header)?;
        let mut history = History::default();
        for (index, line) in lines.enumerate() {
            let bad = |expected: String| {
                TrainError::invalid(format!("history.csv line {}", index + 2), expected, line)
            };
            // The loss's name is last and may itself hold commas.
            let fields: Vec<&str> = line.splitn(header.len(), ',').collect();
            if fields.len() != header.len() {
                return Err(bad(format!("{} fields", header.len())));
            }
            let number = |name: &str| {
                let field = fields[layout.index(name)];
                field
                    .parse::<f64>()
                    .map_err(|_| bad(format!("a number in column `{name}`, not `{field}`")))
            };
            let grad_norm = if layout.has(GRAD_NORM_COLUMNS[0]) {
                Some(GradNorm {
                    mean: number("grad_norm_mean")?,
                    max: number("grad_norm_max")?,
                })
            } else {
                None
            };
            let averaged = if layout.has(AVERAGED_COLUMNS[0]) {
                Some(AveragedFigures {
                    valid_loss: number(AVERAGED_COLUMNS[0])?,
                    valid_accuracy: number(AVERAGED_COLUMNS[1])?,
                })
                .filter(|a| !a.valid_loss.is_nan())
            } else {
                None
            };
            let mut metrics = BTreeMap::new();
            for column in layout.recorded() {
                let value = number(column)?;
                // NaN marks an epoch that did not record it.
                if !value.is_nan() {
                    metrics.insert(column.to_string(), value);
                }
            }
            let epoch = fields[0];
            history.epochs.push(EpochRecord {
                epoch: epoch
                    .parse()
                    .map_err(|_| bad(format!("an epoch number, not `{epoch}`")))?,
                train_loss: number("train_loss")?,
                train_penalty: number("train_penalty")?,
                train_accuracy: number("train_accuracy")?,
                valid_loss: number("valid_loss")?,
                valid_accuracy: number("valid_accuracy")?,
                learning_rate: number("learning_rate")?,
                grad_norm,
                averaged,
                seconds: number("seconds")?,
                metrics,
            });
            if layout.has("loss") {
                history.loss = csv_unquote(fields[layout.index("loss")]);
            }
        }
        Ok(history)
    }
}

/// Where each column of a `history.csv` is.
struct Layout<'a> {
    header: &'a [&'a str],
    recorded: Range<usize>,
}

impl<'a> Layout<'a> {
    /// Checks that `header` is one [`History::to_csv`] writes: the base
    /// columns first, then the optional groups in order, then the recorded
    /// metrics' columns, then `seconds` (and `loss`, which histories before
    /// it lack).
    fn of(header: &'a [&'a str]) -> Result<Self, TrainError> {
        let layout = Self {
            header,
            recorded: 0..0,
        };
        layout.locate_recorded().ok_or_else(|| {
            TrainError::invalid(
                "history.csv",
                format!(
                    "a header with the columns {}, then optionally {}, then optionally {}, \
                     then any train_NAME or valid_NAME columns, then {}",
                    BASE_COLUMNS.join(","),
                    GRAD_NORM_COLUMNS.join(","),
                    AVERAGED_COLUMNS.join(","),
                    TAIL_COLUMNS.join(",")
                ),
                header.join(","),
            )
        })
    }

    /// The layout with the range of its recorded metrics' columns, or
    /// `None` when the header is not one recipe writes.
    fn locate_recorded(self) -> Option<Self> {
        let mut rest = self.header.strip_prefix(&BASE_COLUMNS[..])?;
        for group in [&GRAD_NORM_COLUMNS[..], &AVERAGED_COLUMNS[..]] {
            rest = rest.strip_prefix(group).unwrap_or(rest);
        }
        let start = self.header.len() - rest.len();
        let tail = [&TAIL_COLUMNS[..1], &TAIL_COLUMNS[..]]
            .into_iter()
            .find(|tail| rest.ends_with(tail))?;
        let recorded = &rest[..rest.len() - tail.len()];
        let well_formed = |column: &&str| {
            column.parse::<Metric>().is_ok_and(|metric| {
                metric.to_string() == *column && metric.recorded_name().is_some()
            })
        };
        recorded.iter().all(well_formed).then(|| Self {
            header: self.header,
            recorded: start..start + recorded.len(),
        })
    }

    /// The recorded metrics' columns.
    fn recorded(&self) -> &'a [&'a str] {
        &self.header[self.recorded.clone()]
    }

    fn has(&self, name: &str) -> bool {
        self.header.contains(&name)
    }

    fn index(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|column| *column == name)
            .expect("Layout::of checked the columns")
    }
}

/// `text` as one CSV field on one line: line breaks become spaces, and it is
/// quoted when it holds a comma or a quote.
fn csv_text(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!(
            "\"{}\"",
            text.replace('"', "\"\"").replace(['\n', '\r'], " ")
        )
    } else {
        text.to_string()
    }
}

/// The text of a field [`csv_text`] wrote.
fn csv_unquote(field: &str) -> String {
    match field.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::train::metric::store::Split;

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
            averaged: None,
            metrics: BTreeMap::new(),
        }
    }

    /// A run's own metrics are columns between the averaged figures and
    /// `seconds`, by name; an epoch without one (a metric added on resume)
    /// writes NaN and reads back without it.
    #[test]
    fn recorded_metric_columns_round_trip() {
        let mut history = History {
            epochs: vec![record(1, 0.4), record(2, 0.3)],
            loss: "cross-entropy".to_string(),
        };
        history.epochs[0].metrics = BTreeMap::from([
            ("valid_top3".to_string(), 97.5),
            ("train_top3".to_string(), 96.25),
        ]);
        history.epochs[1].metrics = BTreeMap::from([
            ("valid_top3".to_string(), 98.0),
            ("train_top3".to_string(), 97.0),
            ("valid_f1".to_string(), 0.5),
        ]);
        let csv = history.to_csv();
        let header = csv.lines().next().unwrap();
        assert!(
            header.ends_with("learning_rate,train_top3,valid_f1,valid_top3,seconds,loss"),
            "{header}"
        );
        assert!(
            csv.contains("\n1,0.5,0,0.9,0.4,0.8,0.1,96.25,NaN,97.5,1.250,"),
            "{csv}"
        );
        assert_eq!(History::from_csv(&csv).unwrap(), history);
        assert_eq!(
            Metric::recorded("f1", Split::Valid).of(&history.epochs[1]),
            0.5
        );
        assert!(
            Metric::recorded("f1", Split::Valid)
                .of(&history.epochs[0])
                .is_nan()
        );
        // A column that is not a recorded metric's is refused.
        let misnamed = csv.replace("valid_f1,", "f1,");
        assert!(History::from_csv(&misnamed).is_err());
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
            loss: "cross-entropy".to_string(),
        };
        let csv = history.to_csv();
        assert!(
            csv.starts_with(
                "epoch,train_loss,train_penalty,train_accuracy,valid_loss,valid_accuracy,\
                 learning_rate,seconds,loss\n1,0.5,0,0.9,0.4,0.8,0.1,1.250,cross-entropy\n"
            ),
            "{csv}"
        );
        assert_eq!(History::from_csv(&csv).unwrap(), history);
        assert_eq!(history.best_epoch().unwrap().epoch, 2);
        assert!(History::from_csv("nonsense\n1,2").is_err());
    }

    #[test]
    fn a_loss_name_with_commas_and_quotes_round_trips() {
        let history = History {
            epochs: vec![record(1, 0.4)],
            loss: r#"focal(gamma=2, alpha="0.25")"#.to_string(),
        };
        let csv = history.to_csv();
        assert!(
            csv.ends_with(",\"focal(gamma=2, alpha=\"\"0.25\"\")\"\n"),
            "{csv}"
        );
        assert_eq!(History::from_csv(&csv).unwrap(), history);
    }

    #[test]
    fn a_history_written_before_the_loss_column_still_reads() {
        let old = "epoch,train_loss,train_penalty,train_accuracy,valid_loss,valid_accuracy,\
                   learning_rate,seconds\n1,0.5,0,0.9,0.4,0.8,0.1,1.250\n";
        let read = History::from_csv(old).unwrap();
        assert_eq!(read.epochs, vec![record(1, 0.4)]);
        assert_eq!(read.loss, "");
    }

    #[test]
    fn a_bad_cell_is_named_by_line_and_column() {
        let csv = History {
            epochs: vec![record(1, 0.4), record(2, 0.3)],
            loss: "cross-entropy".to_string(),
        }
        .to_csv()
        .replace("\n2,0.5,0,0.9,0.3,", "\n2,0.5,0,0.9,oops,");
        let error = History::from_csv(&csv).unwrap_err().to_string();
        assert!(error.contains("history.csv line 3"), "{error}");
        assert!(error.contains("column `valid_loss`, not `oops`"), "{error}");
    }

    #[test]
    fn averaged_columns_round_trip_with_nan_before_the_average() {
        let mut history = History {
            epochs: vec![record(1, 0.4), record(2, 0.3)],
            loss: "cross-entropy".to_string(),
        };
        history.epochs[1].averaged = Some(AveragedFigures {
            valid_loss: 0.25,
            valid_accuracy: 0.875,
        });
        let csv = history.to_csv();
        assert!(
            csv.contains(
                "learning_rate,averaged_valid_loss,averaged_valid_accuracy,seconds,loss\n"
            ),
            "{csv}"
        );
        assert!(
            csv.contains("\n1,0.5,0,0.9,0.4,0.8,0.1,NaN,NaN,1.250,"),
            "{csv}"
        );
        assert_eq!(History::from_csv(&csv).unwrap(), history);
    }

    #[test]
    fn gradient_norm_columns_round_trip_before_seconds() {
        let mut history = History {
            epochs: vec![record(1, 0.4), record(2, 0.3)],
            loss: "cross-entropy".to_string(),
        };
        history.epochs[1].grad_norm = Some(GradNorm {
            mean: 2.5,
            max: 7.0,
        });
        let csv = history.to_csv();
        assert!(
            csv.starts_with(
                "epoch,train_loss,train_penalty,train_accuracy,valid_loss,\
                valid_accuracy,learning_rate,grad_norm_mean,grad_norm_max,seconds,loss\n"
            ),
            "{csv}"
        );
        assert!(
            csv.contains("\n2,0.5,0,0.9,0.3,0.8,0.1,2.5,7,1.250,cross-entropy\n"),
            "{csv}"
        );
        let read = History::from_csv(&csv).unwrap();
        assert_eq!(read.epochs[1], history.epochs[1]);
        assert!(read.epochs[0].grad_norm.unwrap().mean.is_nan());
    }
}
