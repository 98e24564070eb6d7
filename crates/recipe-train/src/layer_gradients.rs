//! The gradient that reaches each layer, per epoch: the lecture's
//! explanation of the vanishing gradient ("the layers near the output get
//! large gradients, the first layers tiny ones") as a measurement.
//!
//! Every weight tensor (rank 2 or more, so biases and per-unit scalars are
//! left out) gets, per epoch, the L2 norm of its gradient at the epoch's
//! first step and the mean of that norm over the epoch's steps, both taken
//! before any clipping, and how far the weights have moved from their
//! initial values: `||W - W0|| / ||W0||` (Frobenius norms) at the epoch's
//! last step (before its update). They go to `layers.csv` in the run
//! folder: `epoch,parameter,grad_norm_first_step,grad_norm_mean,weight_movement`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::Module;
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::checkpoint::checkpoint_dir;
use crate::param::gradient_squares;
use crate::param_file::ParamFile;
use crate::{TrainError, visit_params, write_atomic};

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
    /// `||W - W0|| / ||W0||`: how far the weights moved from their initial
    /// values, at the epoch's last step (`NaN` in a `layers.csv` written
    /// before recipe measured it).
    #[serde(default = "not_measured")]
    pub weight_movement: f64,
}

fn not_measured() -> f64 {
    f64::NAN
}

const HEADER: &str = "epoch,parameter,grad_norm_first_step,grad_norm_mean,weight_movement";

/// The header before the weight movement was recorded.
const OLD_HEADER: &str = "epoch,parameter,grad_norm_first_step,grad_norm_mean";

#[derive(Debug, Default)]
struct Running {
    first: f64,
    sum: f64,
    steps: usize,
    movement: f64,
}

#[derive(Debug, Default)]
struct Inner {
    done: Vec<LayerGradient>,
    /// Per epoch, per parameter in the network's order.
    running: BTreeMap<usize, Vec<(String, Running)>>,
    path: Option<PathBuf>,
    /// Each weight's initial values (as a `[1, n]` row) and their norm,
    /// taken at the first step.
    initial: Vec<(String, Tensor<2>, f64)>,
    /// Where the initial weights are kept for a resume, and whether they
    /// are written there yet.
    initial_file: Option<(PathBuf, bool)>,
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
        let header = lines.next();
        if header != Some(HEADER) && header != Some(OLD_HEADER) {
            return Err(TrainError::io(
                path,
                format!("expected the header `{HEADER}`"),
            ));
        }
        let mut rows = Vec::new();
        for (index, line) in lines.enumerate() {
            let bad = || TrainError::io(path, format!("line {}: `{line}`", index + 2));
            let mut fields: Vec<&str> = line.split(',').collect();
            if header == Some(OLD_HEADER) {
                fields.push("NaN");
            }
            let [epoch, parameter, first, mean, movement] = fields[..] else {
                return Err(bad());
            };
            let row = LayerGradient {
                epoch: epoch.parse().map_err(|_| bad())?,
                parameter: parameter.to_string(),
                grad_norm_first_step: first.parse().map_err(|_| bad())?,
                grad_norm_mean: mean.parse().map_err(|_| bad())?,
                weight_movement: movement.parse().map_err(|_| bad())?,
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

    /// Keeps the initial weights in `run_dir`'s checkpoint folder, so that a
    /// resumed run measures the movement from the same start; a resumed
    /// run (`resumed`) reads them from there onto `device`.
    pub fn keeping_initial_weights(
        self,
        run_dir: &Path,
        resumed: bool,
        device: &burn::tensor::Device,
    ) -> Result<Self, TrainError> {
        let path = Self::initial_file(run_dir);
        let mut inner = self.lock();
        if resumed {
            let file = ParamFile::read(&path, device)?;
            inner.initial = file
                .params
                .into_iter()
                .map(|(name, values)| {
                    let norm = values.clone().square().sum().sqrt().into_scalar::<f64>();
                    (name, values, norm)
                })
                .collect();
        }
        inner.initial_file = Some((path, resumed));
        drop(inner);
        Ok(self)
    }

    /// Where [`LayerGradients::keeping_initial_weights`] keeps them.
    pub fn initial_file(run_dir: &Path) -> PathBuf {
        checkpoint_dir(run_dir).join("initial-weights.bin")
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

    /// Adds one step: the norm of each weight's gradient in `grads`, and
    /// how far `module`'s weights (before the step's update) are from the
    /// initial ones, which the first step takes.
    pub fn record_step<M: Module>(&self, module: &M, grads: &GradientsParams) {
        self.record_step_scaled(module, grads, 1.0);
    }

    /// [`LayerGradients::record_step`] for gradients that are `1 / factor`
    /// of the step's own (a data-parallel device's share, its loss scaled
    /// by `1 / K`): the norms are recorded times `factor`.
    pub fn record_step_scaled<M: Module>(&self, module: &M, grads: &GradientsParams, factor: f64) {
        let weights = weight_rows(module);
        if self.lock().initial.is_empty() {
            let initial = weights
                .iter()
                .map(|(name, values)| {
                    let norm = values.clone().square().sum().sqrt().into_scalar::<f64>();
                    (name.clone(), values.clone(), norm)
                })
                .collect();
            self.lock().initial = initial;
        }
        let movements = self.movements(weights);
        // Read back before taking the lock: a read waits for the device.
        let norms: Vec<(String, f64)> = weight_gradient_norms(module, grads)
            .into_iter()
            .map(|(parameter, norm)| (parameter, norm.into_scalar::<f64>() * factor))
            .collect();
        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut inner = self.lock();
        let running = inner.running.entry(epoch).or_default();
        for (parameter, norm) in norms {
            let movement = movements
                .iter()
                .find(|(name, _)| *name == parameter)
                .map_or(f64::NAN, |(_, m)| *m);
            match running.iter_mut().find(|(name, _)| *name == parameter) {
                Some((_, stats)) => {
                    stats.sum += norm;
                    stats.steps += 1;
                    stats.movement = movement;
                }
                None => running.push((
                    parameter,
                    Running {
                        first: norm,
                        sum: norm,
                        steps: 1,
                        movement,
                    },
                )),
            }
        }
    }

    /// `||W - W0|| / ||W0||` of each of `weights` that has initial values.
    fn movements(&self, weights: Vec<(String, Tensor<2>)>) -> Vec<(String, f64)> {
        let initial: Vec<(String, Tensor<2>, f64)> = self.lock().initial.clone();
        weights
            .into_iter()
            .filter_map(|(name, values)| {
                let (_, start, norm) = initial.iter().find(|(n, _, _)| *n == name)?;
                // A data-parallel device's weights live on that device.
                let distance = (values.to_device(&start.device()) - start.clone())
                    .square()
                    .sum()
                    .sqrt()
                    .into_scalar::<f64>();
                Some((name, distance / norm))
            })
            .collect()
    }

    /// Closes `epoch`: its rows join the record, and the CSV is rewritten
    /// (and, after the first epoch, the initial weights kept for a resume).
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
                weight_movement: stats.movement,
            }));
        if let Some((path, false)) = inner.initial_file.clone()
            && !inner.initial.is_empty()
        {
            ParamFile {
                count: 0,
                params: inner
                    .initial
                    .iter()
                    .map(|(name, values, _)| (name.clone(), values.clone()))
                    .collect(),
            }
            .write(&path)?;
            inner.initial_file = Some((path, true));
        }
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
                "{},{},{},{},{}\n",
                row.epoch,
                row.parameter,
                row.grad_norm_first_step,
                row.grad_norm_mean,
                row.weight_movement
            ));
        }
        csv
    }
}

/// Every weight (a float parameter of rank 2 or more) of `module` as a
/// `[1, n]` row, detached, by dotted path.
fn weight_rows<M: Module>(module: &M) -> Vec<(String, Tensor<2>)> {
    let mut rows = Vec::new();
    visit_params(
        module,
        |info| info.rank() >= 2,
        |param| {
            let row = param.matrix.detach().without_autodiff().reshape([1, -1]);
            rows.push((param.info.path, row));
        },
    );
    rows
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
                weight_movement: 0.0,
            },
            LayerGradient {
                epoch: 2,
                parameter: "a.weight".into(),
                grad_norm_first_step: 0.125,
                grad_norm_mean: 0.0625,
                weight_movement: 0.5,
            },
        ];
        LayerGradients::new(rows.clone()).write_csv(&path).unwrap();
        assert_eq!(LayerGradients::read(&path, 5).unwrap(), rows);
        assert_eq!(LayerGradients::read(&path, 1).unwrap(), rows[..1]);
        std::fs::write(&path, "epoch,parameter\n").unwrap();
        let error = LayerGradients::read(&path, 1).unwrap_err().to_string();
        assert!(error.contains("layers.csv"), "{error}");
        // A file from before the movement column reads with NaN there.
        std::fs::write(&path, format!("{OLD_HEADER}\n1,a.weight,0.5,0.25\n")).unwrap();
        let old = LayerGradients::read(&path, 1).unwrap();
        assert!(old[0].weight_movement.is_nan() && old[0].grad_norm_mean == 0.25);
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The first step takes the initial weights: movement 0. Weights
    /// doubled have moved by their own norm (1); the epoch keeps its last
    /// step's value. A resumed recorder reads the kept initial weights.
    #[test]
    fn movement_is_the_relative_distance_from_the_first_step() {
        let device = Device::flex();
        let net = Two {
            first: LinearConfig::new(2, 1).init(&device),
            second: LinearConfig::new(1, 1).init(&device),
        };
        let doubled =
            crate::map_params(net.clone(), |_| true, |p| p.matrix.clone().mul_scalar(2.0));
        let dir = std::env::temp_dir().join(format!("recipe-movement-{}", std::process::id()));
        let recorder = LayerGradients::new(Vec::new())
            .keeping_initial_weights(&dir, false, &device)
            .unwrap();
        let mut grads = GradientsParams::new();
        grads.register::<2>(net.first.weight.id, Tensor::zeros([2, 1], &device));
        grads.register::<2>(net.second.weight.id, Tensor::zeros([1, 1], &device));
        recorder.epoch_counter().store(1, Ordering::SeqCst);
        recorder.record_step(&net, &grads);
        recorder.finish_epoch(1).unwrap();
        recorder.epoch_counter().store(2, Ordering::SeqCst);
        recorder.record_step(&net, &grads);
        recorder.record_step(&doubled, &grads);
        recorder.finish_epoch(2).unwrap();
        let moved = |rows: &[LayerGradient], epoch: usize| -> Vec<f64> {
            rows.iter()
                .filter(|r| r.epoch == epoch)
                .map(|r| r.weight_movement)
                .collect()
        };
        let rows = recorder.records();
        assert_eq!(moved(&rows, 1), [0.0, 0.0]);
        for movement in moved(&rows, 2) {
            assert!((movement - 1.0).abs() < 1e-6, "{rows:?}");
        }
        let resumed = LayerGradients::new(Vec::new())
            .keeping_initial_weights(&dir, true, &device)
            .unwrap();
        assert_eq!(resumed.movements(weight_rows(&doubled)).len(), 2);
        for (_, movement) in resumed.movements(weight_rows(&doubled)) {
            assert!((movement - 1.0).abs() < 1e-6, "{movement}");
        }
        for (_, movement) in resumed.movements(weight_rows(&net)) {
            assert_eq!(movement, 0.0);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
