//! The epochs whose weights outlive a run: the best k by a monitored metric
//! and the last (Lightning's `ModelCheckpoint` with `save_top_k`, `monitor`,
//! `mode` and `save_last`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::key_values::key_values;
use crate::{EpochRecord, History, Metric, Mode, TrainError, write_atomic};

/// Which epochs' weights a run keeps in `checkpoints/` when it ends, with
/// their metrics listed in `checkpoints/checkpoints.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepCheckpoints {
    /// The metric that ranks the epochs.
    #[serde(default)]
    pub monitor: Metric,
    /// Whether smaller or larger is better; `None` infers it from the metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// How many of the best epochs to keep (Lightning's `save_top_k`; 0:
    /// none, then `last` must be set).
    pub top_k: usize,
    /// Also keep the last epoch's weights as `last` (Lightning's
    /// `save_last`).
    #[serde(default)]
    pub last: bool,
}

impl Default for KeepCheckpoints {
    /// Lightning's defaults: the best epoch by validation loss, no `last`.
    fn default() -> Self {
        Self {
            monitor: Metric::ValidLoss,
            mode: None,
            top_k: 1,
            last: false,
        }
    }
}

/// One kept epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct KeptEpoch {
    /// `top-1`, `top-2`, ... or `last`.
    pub kind: String,
    /// The epoch (1-based).
    pub epoch: usize,
}

impl KeptEpoch {
    /// The weights' file stem in `checkpoints/`: `epoch-E`, or `last`.
    pub fn stem(&self) -> String {
        if self.kind == "last" {
            "last".to_string()
        } else {
            format!("epoch-{}", self.epoch)
        }
    }
}

impl KeepCheckpoints {
    /// The direction of improvement: `mode`, or the monitor's own (`Min`
    /// for a recorded metric without a `mode`, which `validate` refuses).
    pub fn mode(&self) -> Mode {
        self.mode
            .or(self.monitor.natural_mode())
            .unwrap_or(Mode::Min)
    }

    /// Fails, naming the setting, when nothing would be kept.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.monitor.mode_in_force(self.mode, "keep_checkpoints")?;
        if self.top_k == 0 && !self.last {
            return Err(TrainError::invalid(
                "keep_checkpoints.top_k",
                "at least 1, or `last` set (otherwise nothing is kept)",
                0,
            ));
        }
        Ok(())
    }

    /// The best `top_k` of `epochs` (epoch, value), best first: a value that
    /// is not a number ranks last, and of equal values the earlier epoch
    /// ranks first.
    pub fn rank(&self, epochs: &[(usize, f64)]) -> Vec<usize> {
        let key = |value: f64| match (value.is_nan(), self.mode()) {
            (true, _) => f64::INFINITY,
            (false, Mode::Min) => value,
            (false, Mode::Max) => -value,
        };
        let mut ranked = epochs.to_vec();
        ranked.sort_by(|a, b| key(a.1).total_cmp(&key(b.1)).then(a.0.cmp(&b.0)));
        ranked
            .into_iter()
            .take(self.top_k)
            .map(|(epoch, _)| epoch)
            .collect()
    }

    /// The epochs of `history` to keep, the best first, then the last.
    pub fn select(&self, history: &History) -> Vec<KeptEpoch> {
        let scores: Vec<(usize, f64)> = history
            .epochs
            .iter()
            .map(|record| (record.epoch, self.monitor.of(record)))
            .collect();
        let mut kept: Vec<KeptEpoch> = self
            .rank(&scores)
            .into_iter()
            .enumerate()
            .map(|(rank, epoch)| KeptEpoch {
                kind: format!("top-{}", rank + 1),
                epoch,
            })
            .collect();
        if let Some(last) = history.epochs.last().filter(|_| self.last) {
            kept.push(KeptEpoch {
                kind: "last".to_string(),
                epoch: last.epoch,
            });
        }
        kept
    }

    /// `checkpoints/checkpoints.csv`: each kept file with its epoch's
    /// figures, the best first.
    pub fn listing(&self, kept: &[KeptEpoch], history: &History) -> String {
        let mut csv = String::from(
            "file,kind,epoch,monitor,value,train_loss,train_accuracy,valid_loss,valid_accuracy\n",
        );
        for entry in kept {
            let Some(record) = history.epochs.iter().find(|r| r.epoch == entry.epoch) else {
                continue;
            };
            let EpochRecord {
                train_loss,
                train_accuracy,
                valid_loss,
                valid_accuracy,
                ..
            } = *record;
            csv.push_str(&format!(
                "{}.bpk,{},{},{},{},{train_loss},{train_accuracy},{valid_loss},{valid_accuracy}\n",
                entry.stem(),
                entry.kind,
                entry.epoch,
                self.monitor,
                self.monitor.of(record),
            ));
        }
        csv
    }

    /// Writes [`KeepCheckpoints::listing`] into `folder` atomically.
    pub fn write_listing(
        &self,
        folder: &Path,
        kept: &[KeptEpoch],
        history: &History,
    ) -> Result<PathBuf, TrainError> {
        let path = folder.join("checkpoints.csv");
        write_atomic(&path, self.listing(kept, history).as_bytes())?;
        Ok(path)
    }
}

impl fmt::Display for KeepCheckpoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode() {
            Mode::Min => "min",
            Mode::Max => "max",
        };
        write!(
            f,
            "top_k={},monitor={},mode={mode},last={}",
            self.top_k, self.monitor, self.last
        )
    }
}

impl FromStr for KeepCheckpoints {
    type Err = TrainError;

    /// `KEY=VALUE` pairs separated by commas, any of `top_k`, `monitor`,
    /// `mode`, `last`; the others keep Lightning's defaults (`best` or an
    /// empty text: the best epoch by validation loss).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut keep = Self::default();
        for pair in key_values(text, "keep-checkpoints", "best", "top_k=3,last=true")? {
            match pair.key {
                "top_k" => keep.top_k = pair.parse("a whole number")?,
                "monitor" => keep.monitor = pair.value.parse()?,
                "mode" => keep.mode = Some(pair.value.parse()?),
                "last" => keep.last = pair.parse("true or false")?,
                _ => {
                    return Err(pair.unknown("keep-checkpoints", "top_k, monitor, mode or last"));
                }
            }
        }
        Ok(keep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(valid_losses: &[f64]) -> History {
        History::for_tests(valid_losses)
    }

    /// Ties go to the earlier epoch, NaN ranks last, `last` comes after.
    #[test]
    fn selects_the_best_k_then_the_last() {
        let keep: KeepCheckpoints = "top_k=3,last=true".parse().unwrap();
        let run = history(&[0.5, 0.3, f64::NAN, 0.3, 0.2, 0.4]);
        let kept = keep.select(&run);
        let epochs: Vec<(String, usize)> = kept.iter().map(|k| (k.kind.clone(), k.epoch)).collect();
        assert_eq!(
            epochs,
            [
                ("top-1".to_string(), 5),
                ("top-2".to_string(), 2),
                ("top-3".to_string(), 4),
                ("last".to_string(), 6)
            ]
        );
        let by_accuracy: KeepCheckpoints = "top_k=1,monitor=valid_accuracy".parse().unwrap();
        assert_eq!(
            by_accuracy.select(&run)[0].epoch,
            5,
            "accuracy: larger is better"
        );
        let listing = keep.listing(&kept, &run);
        let lines: Vec<&str> = listing.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[1],
            "epoch-5.bpk,top-1,5,valid_loss,0.2,0.1,0.9,0.2,0.8"
        );
        assert_eq!(lines[4], "last.bpk,last,6,valid_loss,0.4,0.1,0.9,0.4,0.6");
    }

    #[test]
    fn text_form_and_refusals() {
        let keep: KeepCheckpoints = "monitor=valid_accuracy,top_k=2".parse().unwrap();
        assert_eq!(
            keep.to_string(),
            "top_k=2,monitor=valid_accuracy,mode=max,last=false"
        );
        assert_eq!(
            keep.to_string().parse::<KeepCheckpoints>().unwrap(),
            KeepCheckpoints {
                mode: Some(Mode::Max),
                ..keep
            }
        );
        assert_eq!(
            "best".parse::<KeepCheckpoints>().unwrap(),
            KeepCheckpoints::default()
        );
        for (text, words) in [
            ("top_k=-1", "top_k"),
            ("k=2", "keep-checkpoints key"),
            ("last=yes", "true or false"),
            ("monitor=valid", "valid_loss, valid_accuracy"),
        ] {
            let error = text.parse::<KeepCheckpoints>().unwrap_err().to_string();
            assert!(error.contains(words), "{text}: {error}");
        }
        let nothing: KeepCheckpoints = "top_k=0".parse().unwrap();
        assert!(
            nothing
                .validate()
                .unwrap_err()
                .to_string()
                .contains("top_k")
        );
    }
}
