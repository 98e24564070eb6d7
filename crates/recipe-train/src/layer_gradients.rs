//! The gradient that reaches each layer, per epoch: the lecture's
//! explanation of the vanishing gradient ("the layers near the output get
//! large gradients, the first layers tiny ones") as a measurement.
//!
//! Every weight tensor (rank 2 or more, so biases and per-unit scalars are
//! left out) gets, per epoch, the L2 norm of its gradient at the epoch's
//! first step and the mean of that norm over the epoch's steps; both are
//! taken before any clipping. They go to `layers.csv` in the run folder:
//! `epoch,parameter,grad_norm_first_step,grad_norm_mean`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::param::gradient_squares;
use crate::{TrainError, write_atomic};

/// One weight tensor's gradient over one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerGradient {
    /// 1-based epoch.
    pub epoch: usize,
    /// The parameter's dotted path, e.g. `layers.0.linear.weight`.
    pub parameter: String,
    /// The L2 norm of its gradient at the epoch's first step.
    pub grad_norm_first_step: f64,
    /// The mean of that norm over the epoch's steps.
    pub grad_norm_mean: f64,
}

const HEADER: &str = "epoch,parameter,grad_norm_first_step,grad_norm_mean";

#[derive(Debug, Default)]
struct Running {
    first: f64,
    sum: f64,
    steps: usize,
}

#[derive(Debug, Default)]
struct Inner {
    done: Vec<LayerGradient>,
    /// Per epoch, per parameter in the network's order.
    running: BTreeMap<usize, Vec<(String, Running)>>,
    path: Option<PathBuf>,
}

/// Records the per-layer gradient norms of a run. Clones share one record.
///
/// Steps are filed under the epoch that the shared epoch counter names when
/// they run ([`LayerGradients::epoch_counter`]; recipe's training loader
/// sets it as each epoch starts), so an epoch closed late, on Burn's
/// event-processing thread, never takes the next epoch's steps.
#[derive(Debug, Clone, Default)]
pub struct LayerGradients {
    inner: Arc<Mutex<Inner>>,
    epoch: Arc<AtomicUsize>,
}

impl LayerGradients {
    /// A recorder continuing `earlier` (a resumed run's epochs so far).
    pub fn new(earlier: Vec<LayerGradient>) -> Self {
        let recorder = Self::default();
        recorder.lock().done = earlier;
        recorder
    }

    /// Reads `layers.csv` of a run, keeping the epochs up to `epochs`.
    pub fn read(path: &Path, epochs: usize) -> Result<Vec<LayerGradient>, TrainError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(TrainError::io(path, e)),
        };
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(TrainError::io(
                path,
                format!("expected the header `{HEADER}`"),
            ));
        }
        let mut rows = Vec::new();
        for (index, line) in lines.enumerate() {
            let bad = || TrainError::io(path, format!("line {}: `{line}`", index + 2));
            let fields: Vec<&str> = line.split(',').collect();
            let [epoch, parameter, first, mean] = fields[..] else {
                return Err(bad());
            };
            let row = LayerGradient {
                epoch: epoch.parse().map_err(|_| bad())?,
                parameter: parameter.to_string(),
                grad_norm_first_step: first.parse().map_err(|_| bad())?,
                grad_norm_mean: mean.parse().map_err(|_| bad())?,
            };
            if row.epoch <= epochs {
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// Rewrites `path` as CSV after every epoch (and now).
    pub fn write_csv(self, path: impl Into<PathBuf>) -> Result<Self, TrainError> {
        let path = path.into();
        write_atomic(&path, self.to_csv().as_bytes())?;
        self.lock().path = Some(path);
        Ok(self)
    }

    /// The counter naming the epoch that training steps belong to.
    pub fn epoch_counter(&self) -> Arc<AtomicUsize> {
        self.epoch.clone()
    }

    /// The epochs closed so far.
    pub fn records(&self) -> Vec<LayerGradient> {
        self.lock().done.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds one step: the norm of each weight's gradient in `grads`.
    pub fn record_step<M: Module>(&self, module: &M, grads: &GradientsParams) {
        // Read back before taking the lock: a read waits for the device.
        let norms: Vec<(String, f64)> = weight_gradient_norms(module, grads)
            .into_iter()
            .map(|(parameter, norm)| (parameter, norm.into_scalar::<f64>()))
            .collect();
        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut inner = self.lock();
        let running = inner.running.entry(epoch).or_default();
        for (parameter, norm) in norms {
            match running.iter_mut().find(|(name, _)| *name == parameter) {
                Some((_, stats)) => {
                    stats.sum += norm;
                    stats.steps += 1;
                }
                None => running.push((
                    parameter,
                    Running {
                        first: norm,
                        sum: norm,
                        steps: 1,
                    },
                )),
            }
        }
    }

    /// Closes `epoch`: its rows join the record, and the CSV is rewritten.
    pub fn finish_epoch(&self, epoch: usize) -> Result<(), TrainError> {
        let mut inner = self.lock();
        let running = inner.running.remove(&epoch).unwrap_or_default();
        inner
            .done
            .extend(running.into_iter().map(|(parameter, stats)| LayerGradient {
                epoch,
                parameter,
                grad_norm_first_step: stats.first,
                grad_norm_mean: stats.sum / stats.steps as f64,
            }));
        let Some(path) = inner.path.clone() else {
            return Ok(());
        };
        drop(inner);
        write_atomic(&path, self.to_csv().as_bytes())
    }

    fn to_csv(&self) -> String {
        let mut csv = format!("{HEADER}\n");
        for row in &self.lock().done {
            csv.push_str(&format!(
                "{},{},{},{}\n",
                row.epoch, row.parameter, row.grad_norm_first_step, row.grad_norm_mean
            ));
        }
        csv
    }
}

/// The L2 norm of the gradient of every weight (a float parameter of rank
/// 2 or more) of `module` in `grads`, by dotted path, in the module's order.
pub fn weight_gradient_norms<M: Module>(
    module: &M,
    grads: &GradientsParams,
) -> Vec<(String, Tensor<1>)> {
    gradient_squares(module, grads)
        .into_iter()
        .filter(|squares| squares.rank >= 2)
        .map(|squares| (squares.path, squares.sum.sqrt()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    #[derive(Module, Debug)]
    struct Two {
        first: Linear,
        second: Linear,
    }

    /// Weight gradients [[3], [4]] (norm 5) and [[12]] (norm 12); biases
    /// are left out. Two steps in epoch 1 (the second with doubled
    /// gradients), one in epoch 2.
    #[test]
    fn first_step_and_mean_per_weight_and_epoch() {
        let device = Device::flex();
        let net = Two {
            first: LinearConfig::new(2, 1).init(&device),
            second: LinearConfig::new(1, 1).init(&device),
        };
        let grads = |scale: f32| {
            let mut grads = GradientsParams::new();
            grads.register::<2>(
                net.first.weight.id,
                Tensor::from_floats([[3.0 * scale], [4.0 * scale]], &device),
            );
            grads.register::<2>(
                net.second.weight.id,
                Tensor::from_floats([[12.0 * scale]], &device),
            );
            let bias = net.first.bias.as_ref().unwrap();
            grads.register::<1>(bias.id, Tensor::from_floats([100.0], &device));
            grads
        };
        let recorder = LayerGradients::new(Vec::new());
        let epoch = recorder.epoch_counter();
        epoch.store(1, Ordering::SeqCst);
        recorder.record_step(&net, &grads(1.0));
        recorder.record_step(&net, &grads(2.0));
        epoch.store(2, Ordering::SeqCst);
        recorder.record_step(&net, &grads(1.0));
        recorder.finish_epoch(1).unwrap();
        recorder.finish_epoch(2).unwrap();
        let rows = recorder.records();
        let row = |epoch: usize, parameter: &str| {
            rows.iter()
                .find(|r| r.epoch == epoch && r.parameter == parameter)
                .unwrap()
                .clone()
        };
        assert_eq!(rows.len(), 4, "{rows:?}");
        let first = row(1, "first.weight");
        assert!((first.grad_norm_first_step - 5.0).abs() < 1e-5);
        assert!((first.grad_norm_mean - 7.5).abs() < 1e-5);
        let second = row(2, "second.weight");
        assert!((second.grad_norm_first_step - 12.0).abs() < 1e-5);
        assert!((second.grad_norm_mean - 12.0).abs() < 1e-5);
    }

    #[test]
    fn csv_round_trip_keeps_the_epochs_asked_for() {
        let dir = std::env::temp_dir().join(format!("recipe-layers-{}", std::process::id()));
        let path = dir.join("layers.csv");
        let rows = vec![
            LayerGradient {
                epoch: 1,
                parameter: "a.weight".into(),
                grad_norm_first_step: 0.5,
                grad_norm_mean: 0.25,
            },
            LayerGradient {
                epoch: 2,
                parameter: "a.weight".into(),
                grad_norm_first_step: 0.125,
                grad_norm_mean: 0.0625,
            },
        ];
        LayerGradients::new(rows.clone()).write_csv(&path).unwrap();
        assert_eq!(LayerGradients::read(&path, 5).unwrap(), rows);
        assert_eq!(LayerGradients::read(&path, 1).unwrap(), rows[..1]);
        std::fs::write(&path, "epoch,parameter\n").unwrap();
        let error = LayerGradients::read(&path, 1).unwrap_err().to_string();
        assert!(error.contains("layers.csv"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
