//! Weight averaging: an exponential moving average of the weights (Keras'
//! `use_ema`, Lightning's `WeightAveraging` with an EMA) or stochastic
//! weight averaging from a given epoch (Izmailov et al. 2018, Lightning's
//! `StochasticWeightAveraging`), evaluated on the validation split every
//! epoch beside the trained weights.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::checkpoint::checkpoint_dir;
use crate::param_file::ParamFile;
use crate::scalar_reads::read_scalars;
use crate::{Classify, TrainError, map_params, visit_params};

/// How the averaged weights are formed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WeightAveraging {
    /// After every optimizer step, `average = decay * average + (1 - decay)
    /// * weights`; the first step's weights start it (as PyTorch's
    /// `AveragedModel`, which Lightning uses).
    Ema {
        /// The weight of the past, in (0, 1) (Keras' `ema_momentum`, 0.99
        /// by default there).
        decay: f64,
    },
    /// The plain mean of the weights at the end of every epoch from
    /// `start_epoch` on (Lightning's `swa_epoch_start`, counted from 1).
    Swa {
        /// The first epoch whose end-of-epoch weights enter the mean.
        start_epoch: usize,
    },
}

impl WeightAveraging {
    /// Fails, naming the setting, when it cannot average anything in a run
    /// of `epochs` epochs.
    pub fn validate(&self, epochs: usize) -> Result<(), TrainError> {
        match *self {
            Self::Ema { decay } if !(decay > 0.0 && decay < 1.0) => Err(TrainError::invalid(
                "weight_averaging.ema.decay",
                "a number in (0, 1)",
                decay,
            )),
            Self::Swa { start_epoch } if start_epoch == 0 || start_epoch > epochs => {
                Err(TrainError::invalid(
                    "weight_averaging.swa.start_epoch",
                    format!("an epoch of the run, 1 to {epochs}"),
                    start_epoch,
                ))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for WeightAveraging {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ema { decay } => write!(f, "ema:{decay}"),
            Self::Swa { start_epoch } => write!(f, "swa:{start_epoch}"),
        }
    }
}

impl FromStr for WeightAveraging {
    type Err = TrainError;

    /// `ema:DECAY` or `swa:START_EPOCH`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || TrainError::invalid("weight averaging", "ema:DECAY or swa:START_EPOCH", text);
        match text.trim().split_once(':') {
            Some(("ema", decay)) => Ok(Self::Ema {
                decay: decay.trim().parse().map_err(|_| bad())?,
            }),
            Some(("swa", start)) => Ok(Self::Swa {
                start_epoch: start.trim().parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }
}

/// The averaged weights' validation figures for one epoch.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AveragedFigures {
    /// Mean loss of the averaged weights on the validation split.
    pub valid_loss: f64,
    /// Their accuracy on the validation split, in [0, 1].
    pub valid_accuracy: f64,
}

/// What the averager holds between steps.
#[derive(Debug, Default)]
struct State {
    /// Each parameter's average by path, in the [`ParamTensor`](crate::ParamTensor)
    /// matrix layout, outside the autodiff graph.
    averages: Vec<(String, Tensor<2>)>,
    /// How many weight sets the averages hold.
    count: usize,
    /// Training steps since the last validation began.
    steps_since_validation: usize,
    /// Epochs whose validation has begun.
    epochs: usize,
    /// The current validation's loss sum (per example), correct count and
    /// example count.
    valid: (f64, usize, usize),
}

/// Keeps the average of a network's weights as it trains; recipe's trainer
/// feeds it from the training step ([`WeightAverager::after_step`]) and the
/// validation step ([`WeightAverager::on_validation_batch`]). Clones share
/// the state.
#[derive(Debug, Clone)]
pub struct WeightAverager {
    method: WeightAveraging,
    validates_with_average: bool,
    /// The epoch whose saved average is kept for restore-best (0: none
    /// yet), as early stopping publishes it.
    best_epoch: Option<Arc<AtomicUsize>>,
    state: Arc<Mutex<State>>,
}

impl WeightAverager {
    /// An empty average formed by `method`.
    pub fn new(method: WeightAveraging) -> Self {
        Self {
            method,
            validates_with_average: false,
            best_epoch: None,
            state: Arc::new(Mutex::new(State::default())),
        }
    }

    /// This averager, keeping the saved average of the epoch `best_epoch`
    /// names (early stopping's
    /// [`best_epoch_handle`](crate::MetricEarlyStopping::best_epoch_handle))
    /// as well as the newest ones, for a restore-best of the average.
    pub fn keeping_best(self, best_epoch: Arc<AtomicUsize>) -> Self {
        Self {
            best_epoch: Some(best_epoch),
            ..self
        }
    }

    /// This averager, asking recipe's validation step to evaluate the
    /// average in place of the trained weights (Lightning's
    /// `WeightAveraging` swaps them in for validation; Keras'
    /// `SwapEMAWeights`), so that every validation figure, and what early
    /// stopping, the plateau rule and checkpoint selection read from them,
    /// is the average's.
    pub fn validating_with_average(self) -> Self {
        Self {
            validates_with_average: true,
            ..self
        }
    }

    /// Whether validation evaluates the average in place of the trained
    /// weights.
    pub fn validates_with_average(&self) -> bool {
        self.validates_with_average
    }

    /// How it averages.
    pub fn method(&self) -> WeightAveraging {
        self.method
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many weight sets the average holds (0: none yet).
    pub fn count(&self) -> usize {
        self.lock().count
    }

    /// After an optimizer step: counts it, and with an EMA folds `net`'s
    /// weights into the average.
    pub fn after_step<M: Module>(&self, net: &M) {
        let mut state = self.lock();
        state.steps_since_validation += 1;
        if let WeightAveraging::Ema { decay } = self.method {
            fold(&mut state, net, |average, weights| {
                average * decay + weights * (1.0 - decay)
            });
        }
    }

    /// A validation batch: at the first batch after training steps (the
    /// start of an epoch's validation) SWA folds `net`'s weights, the
    /// epoch's last, into its mean; then the averaged weights are evaluated
    /// on the batch and added to the epoch's figures.
    pub fn on_validation_batch<N: Classify>(
        &self,
        net: &N,
        inputs: N::Input,
        targets: Tensor<1, Int>,
    ) {
        let Some(averaged) = self.validation_net(net) else {
            return;
        };
        let logits = averaged.logits(inputs);
        let loss = averaged.loss(logits.clone(), targets.clone());
        self.record_validation(loss, logits, targets);
    }

    /// The net a validation batch evaluates as the average: `net` with the
    /// averaged weights, `None` while there is no average yet. The first
    /// call after training steps starts the epoch's validation (where SWA
    /// folds `net`'s weights, the epoch's last, into its mean).
    pub fn validation_net<N: Module>(&self, net: &N) -> Option<N> {
        let mut state = self.lock();
        if state.steps_since_validation > 0 {
            state.steps_since_validation = 0;
            state.epochs += 1;
            if let WeightAveraging::Swa { start_epoch } = self.method
                && state.epochs >= start_epoch
            {
                let n = state.count as f64;
                fold(&mut state, net, |average, weights| {
                    (average * n + weights) / (n + 1.0)
                });
            }
        }
        (state.count > 0).then(|| apply(&state, net.clone()))
    }

    /// Adds the averaged net's mean `loss` and its `logits` for `targets`
    /// (one validation batch) to the epoch's figures.
    pub fn record_validation(&self, loss: Tensor<1>, logits: Tensor<2>, targets: Tensor<1, Int>) {
        let examples = targets.dims()[0];
        // A batch's count of right answers is exact in f32.
        let correct = logits
            .argmax(1)
            .squeeze_dim::<1>(1)
            .equal(targets)
            .float()
            .sum();
        // One read of the device for both figures; a device that fails
        // here panics as `into_scalar` would, and the run ends with an
        // error naming the Learner.
        let read = read_scalars([loss, correct].iter())
            .unwrap_or_else(|e| panic!("reading the average's validation figures: {e}"));
        let (loss, correct) = (read[0], read[1] as usize);
        let mut state = self.lock();
        state.valid.0 += loss * examples as f64;
        state.valid.1 += correct;
        state.valid.2 += examples;
    }

    /// The averaged weights' figures on the validation batches since the
    /// last call (`None` before there is an average), and a fresh start.
    pub fn finish_validation(&self) -> Option<AveragedFigures> {
        let mut state = self.lock();
        let (loss, correct, examples) = std::mem::take(&mut state.valid);
        (examples > 0).then(|| AveragedFigures {
            valid_loss: loss / examples as f64,
            valid_accuracy: correct as f64 / examples as f64,
        })
    }

    /// `net` with the averaged weights (unchanged while there is no
    /// average).
    pub fn apply<M: Module>(&self, net: M) -> M {
        apply(&self.lock(), net)
    }

    /// The file that holds the average after `epoch` in `run_dir`'s
    /// checkpoint folder.
    pub fn file(run_dir: &Path, epoch: usize) -> PathBuf {
        checkpoint_dir(run_dir).join(format!("average-{epoch}.bin"))
    }

    /// Writes the average after `epoch` into `run_dir`'s checkpoint folder
    /// (atomically), and removes the older ones but those of the two epochs
    /// before (a resume starts from one of the two newest epochs) and of
    /// the best epoch, when restore-best will want its average
    /// ([`WeightAverager::keeping_best`]).
    pub fn save(&self, run_dir: &Path, epoch: usize) -> Result<(), TrainError> {
        let best = self
            .best_epoch
            .as_ref()
            .map_or(0, |best| best.load(Ordering::SeqCst));
        let state = self.lock();
        ParamFile {
            count: state.count,
            params: state.averages.clone(),
        }
        .write(&Self::file(run_dir, epoch))?;
        drop(state);
        let kept = |e: usize| e + 2 >= epoch || e == best;
        for stale in Self::saved_epochs(run_dir)?
            .into_iter()
            .filter(|&e| !kept(e))
        {
            let old = Self::file(run_dir, stale);
            if let Err(e) = std::fs::remove_file(&old)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(TrainError::io(old, e));
            }
        }
        Ok(())
    }

    /// The epochs whose average is in `run_dir`'s checkpoint folder.
    fn saved_epochs(run_dir: &Path) -> Result<Vec<usize>, TrainError> {
        let dir = checkpoint_dir(run_dir);
        let entries = std::fs::read_dir(&dir).map_err(|e| TrainError::io(&dir, e))?;
        Ok(entries
            .filter_map(|entry| {
                let name = entry.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("average-")?
                    .strip_suffix(".bin")?
                    .parse()
                    .ok()
            })
            .collect())
    }

    /// Reads the average that [`WeightAverager::save`] wrote after `epoch`
    /// onto `device`.
    pub fn load(&self, run_dir: &Path, epoch: usize, device: &Device) -> Result<(), TrainError> {
        let file = ParamFile::read(&Self::file(run_dir, epoch), device)?;
        let mut state = self.lock();
        *state = State {
            averages: file.params,
            count: file.count,
            epochs: epoch,
            ..State::default()
        };
        Ok(())
    }
}

/// Folds `net`'s weights into the averages with `combine(average,
/// weights)`; the first set is copied.
fn fold<M: Module>(
    state: &mut State,
    net: &M,
    combine: impl Fn(Tensor<2>, Tensor<2>) -> Tensor<2>,
) {
    let mut weights = Vec::new();
    visit_params(
        net,
        |_| true,
        |param| weights.push((param.info.path, param.matrix.detach().without_autodiff())),
    );
    state.averages = if state.count == 0 {
        weights
    } else {
        std::mem::take(&mut state.averages)
            .into_iter()
            .zip(weights)
            .map(|((path, average), (_, weights))| (path, combine(average, weights)))
            .collect()
    };
    state.count += 1;
}

fn apply<M: Module>(state: &State, net: M) -> M {
    if state.count == 0 {
        return net;
    }
    map_params(
        net,
        |_| true,
        |param| {
            state
                .averages
                .iter()
                .find(|(path, _)| *path == param.info.path)
                .map_or_else(|| param.matrix.clone(), |(_, average)| average.clone())
        },
    )
}

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::Device;

    use super::*;

    /// A 1x1 linear layer whose weight and bias are `value`.
    fn layer(value: f32, device: &Device) -> Linear {
        let layer = LinearConfig::new(1, 1).init(device);
        map_params(
            layer,
            |_| true,
            |param| param.matrix.ones_like().mul_scalar(value),
        )
    }

    fn weight(layer: &Linear) -> f32 {
        layer.weight.val().into_scalar::<f32>()
    }

    /// By hand, decay 0.5 over weights 1, 2, 3: 1 (copied), 1.5, 2.25.
    #[test]
    fn ema_follows_its_recurrence() {
        let device = Device::flex();
        let averager = WeightAverager::new(WeightAveraging::Ema { decay: 0.5 });
        let mut seen = Vec::new();
        for value in [1.0, 2.0, 3.0] {
            averager.after_step(&layer(value, &device));
            seen.push(weight(&averager.apply(layer(0.0, &device))));
        }
        assert_eq!(seen, [1.0, 1.5, 2.25]);
        assert_eq!(averager.count(), 3);
    }

    /// A batch norm's running statistics are averaged like its gain and
    /// shift (PyTorch's `AveragedModel(use_buffers=True)`): decay 0.5 over
    /// modules whose every value is 1, then 3, gives 2 everywhere.
    #[test]
    fn running_statistics_are_averaged_too() {
        use burn::nn::BatchNormConfig;
        let device = Device::flex();
        let norm = |value: f32| {
            map_params(
                BatchNormConfig::new(2).init(&device),
                |_| true,
                |param| param.matrix.ones_like().mul_scalar(value),
            )
        };
        let averager = WeightAverager::new(WeightAveraging::Ema { decay: 0.5 });
        averager.after_step(&norm(1.0));
        averager.after_step(&norm(3.0));
        let averaged = averager.apply(norm(0.0));
        for values in [averaged.gamma.val(), averaged.running_mean.value()] {
            assert_eq!(values.to_data().try_to_vec::<f32>().unwrap(), [2.0, 2.0]);
        }
    }

    /// SWA from epoch 2 averages the end-of-epoch weights of epochs 2 to
    /// 4 (3, 5, 10: mean 6), taken at each epoch's first validation batch
    /// only.
    #[test]
    fn swa_means_the_end_of_epoch_weights_from_its_start() {
        let device = Device::flex();
        let averager = WeightAverager::new(WeightAveraging::Swa { start_epoch: 2 });
        let net = |value: f32| ClassifyLinear {
            linear: layer(value, &device),
        };
        let epoch = |averager: &WeightAverager, value: f32| {
            averager.after_step(&net(value));
            for _ in 0..2 {
                let inputs = Tensor::<2>::ones([3, 1], &device);
                let targets = Tensor::<1, Int>::zeros([3], &device);
                averager.on_validation_batch(&net(value), inputs, targets);
            }
        };
        epoch(&averager, 1.0);
        assert_eq!(averager.count(), 0, "epoch 1 is before the start");
        assert!(averager.finish_validation().is_none());
        for value in [3.0, 5.0, 10.0] {
            epoch(&averager, value);
        }
        assert_eq!(averager.count(), 3);
        assert_eq!(weight(&averager.apply(net(0.0)).linear), 6.0);
        // One class: every prediction right, over 2 batches of 3.
        let figures = averager.finish_validation().unwrap();
        assert_eq!(figures.valid_accuracy, 1.0);
        assert!(averager.finish_validation().is_none(), "taken");
    }

    #[test]
    fn saved_averages_load_back_and_bad_files_are_named() {
        let device = Device::flex();
        let dir = std::env::temp_dir().join(format!("recipe-average-{}", std::process::id()));
        let averager = WeightAverager::new(WeightAveraging::Ema { decay: 0.9 });
        averager.after_step(&layer(4.0, &device));
        averager.save(&dir, 1).unwrap();
        let loaded = WeightAverager::new(WeightAveraging::Ema { decay: 0.9 });
        loaded.load(&dir, 1, &device).unwrap();
        assert_eq!(loaded.count(), 1);
        assert_eq!(weight(&loaded.apply(layer(0.0, &device))), 4.0);
        let path = WeightAverager::file(&dir, 1);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let error = loaded.load(&dir, 1, &device).unwrap_err().to_string();
        assert!(
            error.contains("average-1.bin") && error.contains("cut short"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The newest three averages stay, and the best epoch's while it is
    /// the best; a best that moves on frees its file.
    #[test]
    fn saving_keeps_the_newest_three_and_the_best() {
        let device = Device::flex();
        let dir = std::env::temp_dir().join(format!("recipe-average-best-{}", std::process::id()));
        let best = Arc::new(AtomicUsize::new(0));
        let averager =
            WeightAverager::new(WeightAveraging::Ema { decay: 0.9 }).keeping_best(best.clone());
        averager.after_step(&layer(1.0, &device));
        let saved = || {
            let mut epochs = WeightAverager::saved_epochs(&dir).unwrap();
            epochs.sort_unstable();
            epochs
        };
        for epoch in 1..=6 {
            if epoch == 3 {
                best.store(2, Ordering::SeqCst);
            }
            averager.save(&dir, epoch).unwrap();
        }
        assert_eq!(saved(), vec![2, 4, 5, 6]);
        best.store(5, Ordering::SeqCst);
        averager.save(&dir, 7).unwrap();
        assert_eq!(saved(), vec![5, 6, 7]);
        averager.save(&dir, 9).unwrap();
        assert_eq!(saved(), vec![5, 7, 9]);
        let plain = WeightAverager::new(WeightAveraging::Ema { decay: 0.9 });
        plain.save(&dir, 10).unwrap();
        assert_eq!(saved(), vec![9, 10], "without a best, only the newest");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn text_forms_and_impossible_settings() {
        for text in ["ema:0.999", "swa:3"] {
            assert_eq!(text.parse::<WeightAveraging>().unwrap().to_string(), text);
        }
        assert!("mean:3".parse::<WeightAveraging>().is_err());
        for (text, field) in [
            ("ema:1", "decay"),
            ("swa:0", "start_epoch"),
            ("swa:9", "start_epoch"),
        ] {
            let error = text
                .parse::<WeightAveraging>()
                .unwrap()
                .validate(5)
                .unwrap_err();
            assert!(error.to_string().contains(field), "{text}: {error}");
        }
    }

    /// A linear layer as a classifier, for the validation path.
    #[derive(Module, Debug)]
    struct ClassifyLinear {
        linear: Linear,
    }

    impl Classify for ClassifyLinear {
        type Input = Tensor<2>;

        fn logits(&self, inputs: Tensor<2>) -> Tensor<2> {
            self.linear.forward(inputs)
        }
    }
}
