//! A network and data that no part of recipe names, through recipe's
//! trainer: a GRU over sequences of feature vectors, batch normalization
//! and a linear read-out, on data made here in memory; with an L2 penalty
//! on the recurrent weights, max-norm on the read-out, the normalization's
//! gain and shift frozen by a learning-rate scale of 0 and kept
//! non-negative (its running statistics, which Burn visits as parameters,
//! left alone), early stopping with restore-best, and the run's folder
//! recording both. Then two inputs in a struct of this crate's own, with
//! its own Burn dataset and batcher, and token indices for an embedding.

use std::fs;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::module::Module;
use burn::nn::gru::{Gru, GruConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use recipe_data::{BatchInputs, ClassBatch, ClassData, FeatureSet};
use recipe_train::{
    EarlyStoppingConfig, FitConfig, LrScale, MaxNormConfig, NetworkConfig, NonNeg, OptimizerConfig,
    ParamSelector, Regularizer, TrainConfig, TrainOptions, WeightConstraint, WeightPenalty,
    column_norms, param_infos, read_run_config, train, visit_params,
};
use serde::{Deserialize, Serialize};

mod common;
use common::{Lcg, fresh_dir, quiet};

const STEPS: usize = 8;
const FEATURES: usize = 3;
const HIDDEN: usize = 16;

/// The network's own config, recorded in `config.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SequenceNetConfig {
    hidden: usize,
}

/// GRU over the steps, batch norm of its last state, linear read-out.
#[derive(Module, Debug)]
struct SequenceNet {
    gru: Gru,
    norm: BatchNorm,
    output: Linear,
}

impl SequenceNetConfig {
    fn init(&self, device: &Device) -> SequenceNet {
        SequenceNet {
            gru: GruConfig::new(FEATURES, self.hidden, true).init(device),
            norm: BatchNormConfig::new(self.hidden).init(device),
            output: LinearConfig::new(self.hidden, FEATURES).init(device),
        }
    }
}

impl recipe_train::Classify for SequenceNet {
    type Input = Tensor<3>;

    /// # Shapes
    /// - inputs: `[batch, STEPS, FEATURES]`
    /// - output: `[batch, FEATURES]`
    fn logits(&self, inputs: Tensor<3>) -> Tensor<2> {
        let states = self.gru.forward(inputs, None); // [batch, STEPS, hidden]
        let [batch, steps, hidden] = states.dims();
        let last = states.slice([0..batch, steps - 1..steps, 0..hidden]);
        self.output
            .forward(self.norm.forward(last.reshape([batch, hidden])))
    }
}

/// `count` sequences whose class is the feature with the largest sum over
/// the steps: each step's values are uniform noise in [-1, 1) plus 0.3 on
/// the class's feature.
fn sequences(count: usize, seed: u64) -> FeatureSet {
    let mut random = Lcg::new(seed);
    let mut values = Vec::with_capacity(count * STEPS * FEATURES);
    let mut labels = Vec::with_capacity(count);
    for index in 0..count {
        let class = index % FEATURES;
        for _ in 0..STEPS {
            for feature in 0..FEATURES {
                let lift = if feature == class { 0.3 } else { 0.0 };
                values.push(random.uniform() + lift);
            }
        }
        labels.push(class);
    }
    FeatureSet::new(values, &[STEPS, FEATURES], labels).unwrap()
}

fn values_of(net: &SequenceNet, prefix: &str) -> Vec<Vec<f32>> {
    let mut found = Vec::new();
    visit_params(
        net,
        |info| info.path.starts_with(prefix),
        |param| found.push(param.flat().to_data().try_to_vec::<f32>().unwrap()),
    );
    found
}

/// Adam at `learning_rate` for `epochs`, batches of 30, seed 7.
fn adam(learning_rate: f64, epochs: usize) -> FitConfig {
    let mut fit = FitConfig::with_optimizer(OptimizerConfig::adam());
    fit.learning_rate = learning_rate;
    fit.batch_size = 30;
    fit.epochs = epochs;
    fit.seed = 7;
    fit
}

/// Adam with an L2 penalty on the GRU's weights, max-norm on the
/// read-out, the normalization's parameters frozen (a learning-rate scale
/// of 0) and kept non-negative, early stopping with restore-best.
fn sequence_run(net_config: &SequenceNetConfig) -> TrainConfig {
    let mut fit = adam(0.01, 12);
    fit.penalties.push(WeightPenalty::new(
        Regularizer::L2 { lambda: 1e-4 },
        ParamSelector::weights(vec!["gru".into()]),
    ));
    fit.max_norm = Some(MaxNormConfig {
        max_norm: 1.5,
        selector: ParamSelector::weights(vec!["output".into()]),
    });
    fit.lr_scales
        .push(LrScale::new(0.0, ParamSelector::every_param(vec!["norm".into()])).unwrap());
    fit.constraints.push(WeightConstraint::new(
        NonNeg,
        ParamSelector::every_param(vec!["norm".into()]),
    ));
    fit.early_stopping = Some(EarlyStoppingConfig {
        patience: 4,
        restore_best_weights: true,
        ..EarlyStoppingConfig::default()
    });
    TrainConfig::for_network(
        NetworkConfig::custom_with("gru-batchnorm", net_config).unwrap(),
        fit,
    )
}

#[test]
fn a_recurrent_net_with_batch_norm_trains_with_recipes_hooks() {
    let device = Device::flex().autodiff();
    device.seed(7);
    let data = FeatureSet::class_data::<3>(
        "sums",
        [sequences(600, 1), sequences(150, 2), sequences(150, 3)],
        FEATURES,
        vec!["first".into(), "second".into(), "third".into()],
        serde_json::Value::Null,
    )
    .unwrap();
    let net_config = SequenceNetConfig { hidden: HIDDEN };
    let config = sequence_run(&net_config);
    let dir = fresh_dir("gru");
    let options = TrainOptions {
        out_dir: Some(dir.clone()),
        ..quiet()
    };

    let net = net_config.init(&device);
    // Burn visits the running statistics as float parameters; recipe
    // knows them as buffers that no selector picks.
    let norm_params: Vec<(String, bool)> = param_infos(&net)
        .into_iter()
        .filter(|info| info.path.starts_with("norm."))
        .map(|info| (info.path, info.trainable))
        .collect();
    let expected = [
        ("norm.gamma", true),
        ("norm.beta", true),
        ("norm.running_mean", false),
        ("norm.running_var", false),
    ];
    assert_eq!(
        norm_params,
        expected.map(|(path, trainable)| (path.to_string(), trainable))
    );
    let gain_and_shift = |net: &SequenceNet| {
        let mut values = values_of(net, "norm.gamma");
        values.extend(values_of(net, "norm.beta"));
        values
    };
    let norm_before = gain_and_shift(&net);
    // A selection of the running statistics alone selects nothing, and is
    // refused before anything trains or is written.
    let mut buffers_only = config.clone();
    buffers_only.fit.constraints = vec![WeightConstraint::new(
        NonNeg,
        ParamSelector::every_param(vec!["norm.running_mean".into()]),
    )];
    let Err(refused) = train(
        &buffers_only,
        net_config.init(&device),
        &data,
        &device,
        &quiet(),
    ) else {
        panic!("a constraint on a running statistic was accepted");
    };
    let refused = refused.to_string();
    assert!(
        refused.contains("constraints[0].selector") && refused.contains("norm.gamma"),
        "{refused}"
    );

    let trained = train(&config, net, &data, &device, &options).unwrap();

    let summary = &trained.summary;
    assert!(
        summary.test_accuracy > 0.6,
        "a GRU separates the sums (chance is 1/3): test accuracy {}",
        summary.test_accuracy
    );
    // The learning-rate scale of 0 froze the normalization's gain and
    // shift (both vectors, neither a weight nor a bias).
    assert_eq!(gain_and_shift(&trained.net), norm_before);
    // The non-negativity constraint on every parameter of the
    // normalization left its running mean alone (a state of the GRU, whose
    // mean is below zero for some units).
    let running_mean = &values_of(&trained.net, "norm.running_mean")[0];
    assert!(
        running_mean.iter().any(|value| *value < 0.0),
        "running mean {running_mean:?}"
    );
    let output_norms = column_norms(trained.net.output.weight.val());
    let largest: f32 = output_norms.max().into_scalar();
    assert!(
        largest <= 1.5 + 1e-5,
        "max-norm bounds the read-out: {largest}"
    );
    let penalty = trained.history.epochs[0].train_penalty;
    assert!(
        penalty > 0.0,
        "the L2 penalty on the GRU is counted: {penalty}"
    );
    assert_eq!(summary.parameters, trained.net.num_params());

    // The run's folder records this network and these data, so that a
    // program can build them again from it.
    let recorded = read_run_config(&dir).unwrap();
    let rebuilt: SequenceNetConfig = recorded.network.user_config().unwrap();
    assert_eq!(rebuilt.hidden, HIDDEN);
    let written: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(written["dataset"], "sums");
    assert_eq!(written["weights_from_epoch"], summary.best_epoch);
    let _ = fs::remove_dir_all(&dir);
}

/// One example of [`PairedInputs`]: a sequence and a side vector.
#[derive(Debug, Clone)]
struct PairedItem {
    steps: Vec<f32>,
    side: [f32; 2],
    label: usize,
}

/// Two inputs, a struct of this crate's own: `[batch, STEPS, FEATURES]`
/// sequences and `[batch, 2]` side vectors.
#[derive(Debug, Clone)]
struct PairedInputs {
    steps: Tensor<3>,
    side: Tensor<2>,
}

impl BatchInputs for PairedInputs {
    fn batch_shape(&self) -> Vec<usize> {
        let [batch, steps, features] = self.steps.dims();
        vec![batch, steps * features + self.side.dims()[1]]
    }
}

/// An in-memory dataset of this crate's own.
struct InMemory<T>(Vec<T>);

impl<T: Clone + Send + Sync> Dataset<T> for InMemory<T> {
    fn get(&self, index: usize) -> Result<T, DatasetError> {
        self.0
            .get(index)
            .cloned()
            .ok_or_else(|| DatasetError::new(std::io::Error::other(format!("no item {index}"))))
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

struct PairedBatcher;

impl Batcher<PairedItem, ClassBatch<PairedInputs>> for PairedBatcher {
    fn batch(&self, items: Vec<PairedItem>, device: &Device) -> ClassBatch<PairedInputs> {
        let batch = items.len();
        let steps: Vec<f32> = items.iter().flat_map(|item| item.steps.clone()).collect();
        let side: Vec<f32> = items.iter().flat_map(|item| item.side).collect();
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        ClassBatch {
            inputs: PairedInputs {
                steps: Tensor::from_data(TensorData::new(steps, [batch, STEPS, FEATURES]), device),
                side: Tensor::from_data(TensorData::new(side, [batch, 2]), device),
            },
            targets: Tensor::from_data(TensorData::new(labels, [batch]), device),
        }
    }
}

/// The sequences of [`sequences`], with a side vector that says whether
/// the class is 0: a network must read both inputs to do well.
fn paired(count: usize, seed: u64) -> Arc<dyn Dataset<PairedItem>> {
    let set = sequences(count, seed);
    let items = (0..count)
        .map(|index| {
            let label = set.labels()[index];
            let flag = if label == 0 { 1.0 } else { -1.0 };
            PairedItem {
                steps: set.example(index).to_vec(),
                side: [flag, 0.0],
                label,
            }
        })
        .collect();
    Arc::new(InMemory(items))
}

/// The GRU of [`SequenceNet`] and a linear map of the side vector, summed.
#[derive(Module, Debug)]
struct PairedNet {
    gru: Gru,
    steps_out: Linear,
    side_out: Linear,
}

impl recipe_train::Classify for PairedNet {
    type Input = PairedInputs;

    /// # Shapes
    /// - inputs: `[batch, STEPS, FEATURES]` and `[batch, 2]`
    /// - output: `[batch, FEATURES]`
    fn logits(&self, inputs: PairedInputs) -> Tensor<2> {
        let states = self.gru.forward(inputs.steps, None);
        let [batch, steps, hidden] = states.dims();
        let last = states
            .slice([0..batch, steps - 1..steps, 0..hidden])
            .reshape([batch, hidden]);
        self.steps_out.forward(last) + self.side_out.forward(inputs.side)
    }
}

/// A struct of two inputs, a Burn dataset and a batcher of this crate's
/// own, through `ClassData::new` (which reads the input shape from the
/// struct's `batch_shape`) and `train` (0.893 test accuracy after 6 epochs
/// when written, where the first test's sequences alone gave 0.807 after
/// 12; chance is 1/3).
#[test]
fn two_inputs_of_a_struct_of_ones_own_with_ones_own_dataset_and_batcher() {
    let device = Device::flex().autodiff();
    device.seed(7);
    let data = ClassData::new(
        "paired sums",
        [paired(600, 1), paired(150, 2), paired(150, 3)],
        Arc::new(PairedBatcher),
        FEATURES,
        &device,
    )
    .unwrap();
    assert_eq!(data.info.input_shape, [STEPS * FEATURES + 2]);
    let config = TrainConfig::for_network(NetworkConfig::custom("gru-and-side"), adam(0.01, 6));
    let net = PairedNet {
        gru: GruConfig::new(FEATURES, HIDDEN, true).init(&device),
        steps_out: LinearConfig::new(HIDDEN, FEATURES).init(&device),
        side_out: LinearConfig::new(2, FEATURES).init(&device),
    };
    let options = quiet();
    let trained = train(&config, net, &data, &device, &options).unwrap();
    let accuracy = trained.summary.test_accuracy;
    assert!(accuracy > 0.75, "test accuracy {accuracy}");
    assert_eq!(trained.summary.dataset, "paired sums");
}

/// One sequence of token indices and its class.
#[derive(Debug, Clone)]
struct TokenItem {
    tokens: [i64; TOKENS],
    label: usize,
}

const TOKENS: usize = 8;
const VOCABULARY: usize = 10;

struct TokenBatcher;

impl Batcher<TokenItem, ClassBatch<Tensor<2, Int>>> for TokenBatcher {
    fn batch(&self, items: Vec<TokenItem>, device: &Device) -> ClassBatch<Tensor<2, Int>> {
        let batch = items.len();
        let tokens: Vec<i64> = items.iter().flat_map(|item| item.tokens).collect();
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        ClassBatch {
            inputs: Tensor::from_data(TensorData::new(tokens, [batch, TOKENS]), device),
            targets: Tensor::from_data(TensorData::new(labels, [batch]), device),
        }
    }
}

/// Sequences of 8 tokens: the class's token (0, 1 or 2) three times, each
/// other class's once, and three tokens of 3 to 9, in shuffled order.
fn token_sequences(count: usize, seed: u64) -> Arc<dyn Dataset<TokenItem>> {
    let mut random = Lcg::new(seed);
    let items = (0..count)
        .map(|index| {
            let label = index % 3;
            let others = [(label + 1) % 3, (label + 2) % 3];
            let mut tokens = [label as i64; TOKENS];
            tokens[3] = others[0] as i64;
            tokens[4] = others[1] as i64;
            for token in &mut tokens[5..] {
                *token = 3 + random.below(VOCABULARY as u64 - 3) as i64;
            }
            for i in (1..TOKENS).rev() {
                tokens.swap(i, random.below(i as u64 + 1) as usize);
            }
            TokenItem { tokens, label }
        })
        .collect();
    Arc::new(InMemory(items))
}

/// Embedding, mean over the tokens, linear read-out.
#[derive(Module, Debug)]
struct TokenNet {
    embedding: Embedding,
    output: Linear,
}

impl recipe_train::Classify for TokenNet {
    type Input = Tensor<2, Int>;

    /// # Shapes
    /// - inputs: `[batch, TOKENS]` token indices
    /// - output: `[batch, 3]`
    fn logits(&self, tokens: Tensor<2, Int>) -> Tensor<2> {
        let embedded = self.embedding.forward(tokens); // [batch, TOKENS, width]
        let [batch, _, width] = embedded.dims();
        self.output
            .forward(embedded.mean_dim(1).reshape([batch, width]))
    }
}

/// Integer inputs (token indices for an embedding) through
/// `ClassData::new` and `train`, with an L2 penalty on the embedding table
/// (a weight: two dimensions). An easy task (test accuracy 1.0 when
/// written): what it shows is that a `Tensor<2, Int>` is an input.
#[test]
fn token_indices_train_an_embedding() {
    let device = Device::flex().autodiff();
    device.seed(7);
    let data = ClassData::new(
        "tokens",
        [
            token_sequences(600, 1),
            token_sequences(150, 2),
            token_sequences(150, 3),
        ],
        Arc::new(TokenBatcher),
        3,
        &device,
    )
    .unwrap();
    assert_eq!(data.info.input_shape, [TOKENS]);
    let mut fit = adam(0.02, 5);
    fit.penalties.push(WeightPenalty::new(
        Regularizer::L2 { lambda: 1e-4 },
        ParamSelector::weights(vec!["embedding".into()]),
    ));
    // Validation in training mode: the integer inputs go to the autodiff
    // device (`BatchInputs::with_autodiff`).
    fit.validate_thinned = true;
    let config = TrainConfig::for_network(NetworkConfig::custom("embedding-mean"), fit);
    let net = TokenNet {
        embedding: EmbeddingConfig::new(VOCABULARY, 8).init(&device),
        output: LinearConfig::new(8, 3).init(&device),
    };
    let options = quiet();
    let trained = train(&config, net, &data, &device, &options).unwrap();
    let accuracy = trained.summary.test_accuracy;
    assert!(accuracy > 0.9, "test accuracy {accuracy}");
    assert!(trained.history.epochs[0].train_penalty > 0.0);
}
