//! Throughput of recipe's training and inference, the data path alone, and
//! the cost of recipe's training loop over a bare Burn loop: what `recipe
//! bench` and `cargo bench --bench train_step` print.
//!
//! Every figure is the median of timed repeats after warm-up steps. Each
//! timed stretch ends by reading a scalar back, so work queued on a GPU is
//! counted.

use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use burn::train::TrainStep;
use serde::Serialize;

mod hook_cost;

pub use hook_cost::{HookCost, hook_costs};

use crate::data::{
    DatasetKind, ImageBatch, ImageBatcher, ImageDataset, ImageSet, Normalization, Splits,
};
use crate::models::{ActivationConfig, Mlp, MlpConfig};
use crate::train::{
    Classifier, MaxNormConfig, OptimizerConfig, ParamSelector, Regularizer, StepHooks, TrainConfig,
    TrainError, TrainOptions, WeightPenalty, fold_hooks,
};

/// One benchmark network and its training setting.
#[derive(Debug, Clone)]
pub struct BenchCase {
    /// Short name, e.g. `A 784-512-512-10 relu, adam`.
    pub name: &'static str,
    /// The network.
    pub model: MlpConfig,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// Its learning rate.
    pub learning_rate: f64,
    /// Training batch size (inference always uses 1000).
    pub batch_size: usize,
}

/// The three cases of the performance issue: (A) a 784-512-512-10 ReLU MLP
/// with Adam, batch 128; (B) the lecture's deep sigmoid net, 9 layers of 500,
/// SGD, batch 100; (C) two Maxout layers of 240 units with 5 pieces, SGD with
/// momentum, batch 100.
pub fn cases() -> Vec<BenchCase> {
    vec![
        BenchCase {
            name: "A 784-512-512-10 relu, adam",
            model: MlpConfig::new(784, vec![512, 512], 10),
            optimizer: OptimizerConfig::adam(),
            learning_rate: 1e-3,
            batch_size: 128,
        },
        BenchCase {
            name: "B 784-500x9-10 sigmoid, sgd",
            model: MlpConfig::new(784, vec![500; 9], 10)
                .with_activation(vec![ActivationConfig::sigmoid()]),
            optimizer: OptimizerConfig::sgd(0.0),
            learning_rate: 0.1,
            batch_size: 100,
        },
        BenchCase {
            name: "C 784-240x2-10 maxout:5, sgd momentum",
            model: MlpConfig::new(784, vec![240, 240], 10)
                .with_activation(vec![ActivationConfig::maxout(5)]),
            optimizer: OptimizerConfig::sgd(0.9),
            learning_rate: 0.01,
            batch_size: 100,
        },
    ]
}

/// How long to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchSettings {
    /// Untimed steps first (allocations, caches, GPU kernel compilation).
    pub warmup_steps: usize,
    /// Timed repeats; the median is reported.
    pub repeats: usize,
    /// Training steps per repeat.
    pub steps: usize,
}

impl Default for BenchSettings {
    fn default() -> Self {
        Self {
            warmup_steps: 10,
            repeats: 5,
            steps: 20,
        }
    }
}

/// The figures of one case, as `recipe bench --json` prints them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseResult {
    /// The case's name.
    pub case: String,
    /// The device it ran on.
    pub device: String,
    /// Training batch size.
    pub batch_size: usize,
    /// Training examples per second: forward, backward and optimizer step.
    pub train_samples_per_sec: f64,
    /// Inference examples per second at batch 1000.
    pub infer_samples_per_sec: f64,
}

/// The median of `values` (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn random_batch(size: usize, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let images = Tensor::<2>::random([size, 784], Distribution::Uniform(0.0, 1.0), device);
    let labels: Vec<i64> = (0..size).map(|i| (i % 10) as i64).collect();
    (
        images,
        Tensor::from_data(TensorData::new(labels, [size]), device),
    )
}

/// Times `repeats` stretches of `steps` calls of `step` after `warmup_steps`
/// calls; returns the median rate in `examples_per_step` per second.
fn rate(settings: BenchSettings, examples_per_step: usize, mut step: impl FnMut()) -> f64 {
    for _ in 0..settings.warmup_steps {
        step();
    }
    let mut rates = Vec::with_capacity(settings.repeats);
    for _ in 0..settings.repeats.max(1) {
        let started = Instant::now();
        for _ in 0..settings.steps.max(1) {
            step();
        }
        rates.push(
            (settings.steps.max(1) * examples_per_step) as f64 / started.elapsed().as_secs_f64(),
        );
    }
    median(rates)
}

/// A bare Burn training step: forward, cross-entropy, backward, optimizer
/// step. Returns the stepped model and the loss (not yet read back).
fn bare_step(
    model: Mlp,
    optim: &mut ModuleOptimizer,
    learning_rate: f64,
    loss_fn: &CrossEntropyLoss,
    batch: ImageBatch,
) -> (Mlp, Tensor<1>) {
    let loss = loss_fn.forward(model.forward(batch.inputs), batch.targets);
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    (optim.step(learning_rate, model, grads), loss)
}

/// One training step of a case after another, on one random batch: recipe's
/// own step (the one Burn's Learner calls: [`Classifier`] `step`, then
/// `optimize`, no penalty, no max-norm), or a bare Burn step (forward,
/// cross-entropy, backward, optimizer step) for comparison.
pub struct TrainSteps {
    net: Option<Classifier<Mlp>>,
    optim: ModuleOptimizer,
    /// What `optim` was built from (rebuilt when hooks fold penalties in).
    optimizer: OptimizerConfig,
    loss_fn: CrossEntropyLoss,
    batch: ImageBatch,
    learning_rate: f64,
    bare: bool,
}

impl TrainSteps {
    /// recipe's step for `case` on `device` (autodiff is added).
    pub fn recipe(case: &BenchCase, device: &Device) -> Self {
        Self::new(case, device, false)
    }

    /// A bare Burn step for `case` on `device`.
    pub fn bare(case: &BenchCase, device: &Device) -> Self {
        Self::new(case, device, true)
    }

    /// recipe's step for `case` on `device`, with `optim` instead of the
    /// case's optimizer (to compare optimizers on the same network).
    pub fn recipe_with(case: &BenchCase, device: &Device, optim: ModuleOptimizer) -> Self {
        Self {
            optim,
            ..Self::new(case, device, false)
        }
    }

    /// The same step with recipe's `hooks` (penalties, max-norm) on, and
    /// the optimizer the trainer would build for them (L1/L2 folded into
    /// the fused optimizer where the installed kernels can).
    pub fn with_hooks(mut self, hooks: StepHooks) -> Self {
        let net = self.net.take().expect("a network").net;
        let (optim, net) = fold_hooks(&self.optimizer, Classifier::with_hooks(net, hooks));
        self.optim = optim;
        self.net = Some(net);
        self
    }

    fn new(case: &BenchCase, device: &Device, bare: bool) -> Self {
        let device = device.clone().autodiff();
        device.seed(0);
        let model: Mlp = case.model.init(&device).expect("a valid bench model");
        let (images, targets) = random_batch(case.batch_size, &device);
        Self {
            net: Some(Classifier::new(model)),
            optim: case.optimizer.init(),
            optimizer: case.optimizer.clone(),
            loss_fn: CrossEntropyLossConfig::new().init(&device),
            batch: ImageBatch {
                inputs: images,
                targets,
            },
            learning_rate: case.learning_rate,
            bare,
        }
    }

    /// Runs one step and waits for it (reads the loss back).
    pub fn step(&mut self) {
        let net = self.net.take().expect("the network between steps");
        let (net, loss) = if self.bare {
            let (model, loss) = bare_step(
                net.net,
                &mut self.optim,
                self.learning_rate,
                &self.loss_fn,
                self.batch.clone(),
            );
            (Classifier::new(model), loss)
        } else {
            let output = TrainStep::step(&net, self.batch.clone());
            let lr = ModuleLearningRate::from(self.learning_rate);
            let net = net.optimize(&mut self.optim, lr, output.grads);
            (net, output.item.classification.loss)
        };
        let _ = loss.into_scalar::<f32>();
        self.net = Some(net);
    }
}

/// Inference at batch 1000 on one random batch (no autodiff).
pub struct Inference {
    model: Mlp,
    images: Tensor<2>,
}

impl Inference {
    /// `case`'s network on `device`.
    pub fn new(case: &BenchCase, device: &Device) -> Self {
        device.seed(0);
        let model = case
            .model
            .init(device)
            .expect("a valid bench model")
            .valid();
        let (images, _) = random_batch(1000, device);
        Self { model, images }
    }

    /// One forward pass of 1000 images, waited for.
    pub fn run(&self) {
        let _ = self
            .model
            .forward(self.images.clone())
            .sum()
            .into_scalar::<f32>();
    }
}

/// Training examples per second of recipe's own step (see [`TrainSteps`]).
pub fn recipe_train_rate(case: &BenchCase, device: &Device, settings: BenchSettings) -> f64 {
    let mut steps = TrainSteps::recipe(case, device);
    rate(settings, case.batch_size, || steps.step())
}

/// Training examples per second of recipe's own step with `optim` in place
/// of the case's optimizer.
pub fn recipe_train_rate_with(
    case: &BenchCase,
    device: &Device,
    optim: ModuleOptimizer,
    settings: BenchSettings,
) -> f64 {
    let mut steps = TrainSteps::recipe_with(case, device, optim);
    rate(settings, case.batch_size, || steps.step())
}

/// recipe's training hooks, each alone and all together, as the benchmarks
/// time them: no hook, an L2 penalty, an L1 penalty, the max-norm
/// constraint, and the three at once (penalties on every weight matrix).
pub fn hook_variants() -> Vec<(&'static str, StepHooks)> {
    let penalty = |regularizer| WeightPenalty::new(regularizer, ParamSelector::default());
    let l2 = || penalty(Regularizer::L2 { lambda: 1e-4 });
    let l1 = || penalty(Regularizer::L1 { lambda: 1e-5 });
    let max_norm = || {
        vec![
            MaxNormConfig::new(3.0)
                .expect("a valid max-norm")
                .constraint(),
        ]
    };
    vec![
        ("no hook", StepHooks::default()),
        ("L2 1e-4", StepHooks::new(vec![l2()], vec![])),
        ("L1 1e-5", StepHooks::new(vec![l1()], vec![])),
        ("max-norm 3", StepHooks::new(vec![], max_norm())),
        (
            "L1 + L2 + max-norm",
            StepHooks::new(vec![l1(), l2()], max_norm()),
        ),
    ]
}

/// Training examples per second of a bare Burn step (see [`TrainSteps`]).
pub fn bare_train_rate(case: &BenchCase, device: &Device, settings: BenchSettings) -> f64 {
    let mut steps = TrainSteps::bare(case, device);
    rate(settings, case.batch_size, || steps.step())
}

/// Inference examples per second at batch 1000.
pub fn infer_rate(case: &BenchCase, device: &Device, settings: BenchSettings) -> f64 {
    let inference = Inference::new(case, device);
    let settings = BenchSettings {
        steps: 1,
        repeats: settings.repeats.max(1),
        warmup_steps: 1,
    };
    rate(settings, 1000, || inference.run())
}

/// Measures one case on `device`.
pub fn run_case(case: &BenchCase, device: &Device, settings: BenchSettings) -> CaseResult {
    CaseResult {
        case: case.name.to_string(),
        device: format!("{device:?}"),
        batch_size: case.batch_size,
        train_samples_per_sec: recipe_train_rate(case, device, settings),
        infer_samples_per_sec: infer_rate(case, device, settings),
    }
}

/// recipe's training loader over `set`: shuffled, pixels scaled to [0, 1],
/// batches made on `device`.
fn shuffled_loader(
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> Arc<dyn DataLoader<ImageBatch>> {
    DataLoaderBuilder::new(ImageBatcher::new(Normalization::Unit))
        .batch_size(batch_size)
        .shuffle(0)
        .set_device(device.clone())
        .build(ImageDataset::new(set.clone()))
}

/// Batches per second out of the training data loader alone (shuffled,
/// normalized, made into tensors on `device`), over whole epochs of `set`.
pub fn data_path_rate(set: &ImageSet, batch_size: usize, device: &Device, epochs: usize) -> f64 {
    let loader = shuffled_loader(set, batch_size, device);
    let mut rates = Vec::new();
    for epoch in 0..=epochs.max(1) {
        let started = Instant::now();
        let mut batches = 0usize;
        let mut last = None;
        for batch in loader.iter() {
            last = Some(batch.expect("a batch").targets);
            batches += 1;
        }
        if let Some(targets) = last {
            let _ = targets.sum().into_scalar::<i64>();
        }
        // The first pass warms up.
        if epoch > 0 {
            rates.push(batches as f64 / started.elapsed().as_secs_f64());
        }
    }
    median(rates)
}

/// Training examples per second over whole epochs of `train` for two loops
/// on the same network, batches and optimizer: a bare Burn loop (loader,
/// forward, loss, backward, optimizer step) and recipe's [`crate::train::train`]
/// (Burn's Learner with its metrics, recipe's per-epoch monitor, no penalty
/// or constraint), the latter reading its metrics from the device every
/// [`READ_METRICS_EVERY`](crate::train::READ_METRICS_EVERY) steps and
/// every step (as Burn's own metrics do). Medians over `epochs` epochs
/// after one warm-up epoch; the validation pass of recipe's loop runs on
/// 100 images and is included.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoopComparison {
    /// The bare loop's training examples per second.
    pub bare_samples_per_sec: f64,
    /// recipe's loop's training examples per second.
    pub recipe_samples_per_sec: f64,
    /// recipe's loop's, reading the metrics at every step.
    pub recipe_reading_every_step_samples_per_sec: f64,
}

/// Measures [`LoopComparison`] for `case` on `train`.
pub fn compare_loops(
    case: &BenchCase,
    train: &ImageSet,
    device: &Device,
    epochs: usize,
) -> Result<LoopComparison, TrainError> {
    let epochs = epochs.max(1);
    let autodiff = device.clone().autodiff();
    autodiff.seed(0);
    let mut model: Mlp = case.model.init(&autodiff)?;
    let mut optim = case.optimizer.init();
    let loss_fn = CrossEntropyLossConfig::new().init(&autodiff);
    let loader = shuffled_loader(train, case.batch_size, &autodiff);
    let mut bare = Vec::new();
    for epoch in 0..=epochs {
        let started = Instant::now();
        let mut last_loss = None;
        for batch in loader.iter() {
            let batch = batch.map_err(|e| TrainError::Learner(e.to_string()))?;
            let (stepped, loss) = bare_step(model, &mut optim, case.learning_rate, &loss_fn, batch);
            model = stepped;
            last_loss = Some(loss);
        }
        if let Some(loss) = last_loss {
            let _ = loss.into_scalar::<f32>();
        }
        if epoch > 0 {
            bare.push(train.len() as f64 / started.elapsed().as_secs_f64());
        }
    }

    let mut config = TrainConfig::new(case.model.clone());
    config.fit.optimizer = case.optimizer.clone();
    config.fit.learning_rate = case.learning_rate;
    config.fit.batch_size = case.batch_size;
    config.fit.epochs = epochs + 1;
    let splits = Splits {
        kind: DatasetKind::Mnist,
        train: train.clone(),
        valid: train.slice(0..100.min(train.len())),
        test: train.slice(0..100.min(train.len())),
    };
    let data = splits.flat_data(config.data.standardize)?;
    let recipe_rate = |read_metrics_every| -> Result<f64, TrainError> {
        autodiff.seed(0);
        let net: Mlp = case.model.init(&autodiff)?;
        let options = TrainOptions {
            print_epochs: false,
            show_progress: false,
            checkpoints: false,
            read_metrics_every,
            ..TrainOptions::default()
        };
        let trained = crate::train::train(&config, net, &data, device, &options)?;
        Ok(median(
            trained.history.epochs[1..]
                .iter()
                .map(|epoch| train.len() as f64 / epoch.seconds)
                .collect(),
        ))
    };
    Ok(LoopComparison {
        bare_samples_per_sec: median(bare),
        recipe_samples_per_sec: recipe_rate(crate::train::READ_METRICS_EVERY)?,
        recipe_reading_every_step_samples_per_sec: recipe_rate(1)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::column_norms;

    /// A small case so that a step takes milliseconds; a learning rate large
    /// enough that one step pushes weights past the max-norm.
    fn tiny_case() -> BenchCase {
        BenchCase {
            name: "tiny",
            model: MlpConfig::new(784, vec![16], 10),
            optimizer: OptimizerConfig::sgd(0.0),
            learning_rate: 50.0,
            batch_size: 8,
        }
    }

    #[test]
    fn each_hook_variant_does_what_its_name_says() {
        let device = crate::backend::select_device("cpu").unwrap();
        for (name, hooks) in hook_variants() {
            let (penalties, max_norm) = (hooks.penalties.len(), !hooks.constraints.is_empty());
            let expected = match name {
                "no hook" => (0, false),
                "L2 1e-4" | "L1 1e-5" => (1, false),
                "max-norm 3" => (0, true),
                "L1 + L2 + max-norm" => (2, true),
                other => panic!("unexpected variant {other}"),
            };
            assert_eq!((penalties, max_norm), expected, "{name}");
            let mut steps = TrainSteps::recipe(&tiny_case(), &device).with_hooks(hooks);
            steps.step();
            let net = steps.net.as_ref().unwrap();
            assert_eq!(net.penalty().is_some(), penalties > 0, "{name}");
            let largest = column_norms(net.net.layers[0].linear().weight.val())
                .max()
                .into_scalar::<f32>();
            assert_eq!(
                largest <= 3.0 + 1e-4,
                max_norm,
                "{name}: largest norm {largest}"
            );
        }
    }
}
