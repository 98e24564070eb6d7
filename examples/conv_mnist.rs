//! A convolutional network of your own through recipe's trainer: MNIST
//! images keep their shape (`[batch, 1, 28, 28]`), and the run gets
//! everything recipe's MLP runs get (early stopping with restore-best,
//! per-epoch history, checkpoints, the summary on train, validation and test).
//!
//! Two 5x5 convolutions, each followed by ReLU and a 2x2 max-pool, then a
//! dense head (512-128-10 with dropout), trained with Adam.
//!
//! ```text
//! cargo run --release --example conv_mnist [-- --epochs 3 --out runs/conv]
//! cargo run --release --example conv_mnist -- --resume runs/conv   # after a kill
//! ```

use std::path::PathBuf;

use anyhow::Result;
use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use clap::Parser;
use recipe::backend::select_device;
use recipe::data::{DatasetKind, SplitConfig, load_splits};
use recipe::train::{
    Classify, DataConfig, EarlyStoppingConfig, FitConfig, NetworkConfig, OptimizerConfig,
    TrainConfig, TrainOptions, read_run_config, resume, train,
};

#[derive(Debug, Parser)]
struct Args {
    /// Epochs
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Train on the first N training images only (default: all 50,000)
    #[arg(long)]
    train_limit: Option<usize>,
    /// Validation images, from the end of the training file
    #[arg(long, default_value_t = 10_000)]
    valid_size: usize,
    /// Keep config.json, history.csv, summary.json and the weights here
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the interrupted run in this folder (its config.json gives
    /// the split, seed and fitting settings; other options are ignored)
    #[arg(long, conflicts_with = "out")]
    resume: Option<PathBuf>,
    /// Seed for the weights, the shuffles and dropout
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, env = "RECIPE_DEVICE", default_value = "cpu")]
    device: String,
}

/// How the summary and `config.json` name the network.
const NAME: &str = "conv5x5(16)-pool-conv5x5(32)-pool-128-10 relu";

/// The network's own config: recorded in `config.json`, and read back from
/// there to build the network again on `--resume`.
#[derive(Config, Debug)]
struct ConvNetConfig {
    /// Channels of the two convolutions.
    #[config(default = "[16, 32]")]
    channels: [usize; 2],
    /// Width of the dense hidden layer.
    #[config(default = 128)]
    hidden: usize,
    /// Dropout before the output layer.
    #[config(default = 0.3)]
    dropout: f64,
}

/// conv 5x5 (1 -> 16), ReLU, max-pool 2x2, conv 5x5 (16 -> 32), ReLU,
/// max-pool 2x2, dense 512 -> 128, ReLU, dropout, dense 128 -> 10.
#[derive(Module, Debug)]
struct ConvNet {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    hidden: Linear,
    dropout: Dropout,
    output: Linear,
}

impl ConvNetConfig {
    fn init(&self, device: &Device) -> ConvNet {
        let [c1, c2] = self.channels;
        ConvNet {
            conv1: Conv2dConfig::new([1, c1], [5, 5]).init(device),
            conv2: Conv2dConfig::new([c1, c2], [5, 5]).init(device),
            pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            hidden: LinearConfig::new(c2 * 4 * 4, self.hidden).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            output: LinearConfig::new(self.hidden, 10).init(device),
        }
    }
}

impl Classify for ConvNet {
    type Input = Tensor<4>;

    /// # Shapes
    /// - inputs: `[batch, 1, 28, 28]`
    /// - output: `[batch, 10]`
    fn logits(&self, inputs: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv1.forward(inputs))); // [b, 16, 12, 12]
        let x = self.pool.forward(relu(self.conv2.forward(x))); // [b, 32, 4, 4]
        let x = x.flatten::<2>(1, 3); // [b, 512]
        let x = self.dropout.forward(relu(self.hidden.forward(x)));
        self.output.forward(x)
    }
}

/// The run's settings: MNIST with the given split, the network by its own
/// config, Adam with early stopping.
fn run_config(args: &Args) -> Result<TrainConfig> {
    let mut fit = FitConfig::with_optimizer(OptimizerConfig::adam());
    fit.batch_size = 64;
    fit.epochs = args.epochs;
    fit.seed = args.seed;
    fit.early_stopping = Some(EarlyStoppingConfig {
        patience: 3,
        restore_best_weights: true,
        ..EarlyStoppingConfig::default()
    });
    let mut data = DataConfig::new(DatasetKind::Mnist);
    data.split = SplitConfig {
        valid_size: args.valid_size,
        train_limit: args.train_limit,
    };
    Ok(TrainConfig {
        data,
        network: NetworkConfig::custom_with(NAME, &ConvNetConfig::new())?,
        fit,
    })
}

fn main() -> Result<()> {
    recipe::allocator::keep_freed_memory();
    let args = Args::parse();
    let config = match &args.resume {
        Some(dir) => read_run_config(dir)?,
        None => run_config(&args)?,
    };
    let splits = load_splits(DatasetKind::Mnist, None, &config.data.split)?;
    let data = splits.shaped_data::<4>(false, &[1, 28, 28])?;
    let device = select_device(&args.device)?.autodiff();
    device.seed(config.fit.seed);
    let net = config.network.user_config::<ConvNetConfig>()?.init(&device);
    let options = TrainOptions {
        out_dir: args.out.clone(),
        ..TrainOptions::default()
    };
    let trained = match &args.resume {
        Some(dir) => resume(dir, net, &data, &device, &options)?,
        None => train(&config, net, &data, &device, &options)?,
    };
    let s = &trained.summary;
    println!(
        "{}: test accuracy {:.4} (train {:.4}, valid {:.4}), {} parameters, weights of epoch {}, {:.0}s",
        s.model,
        s.test_accuracy,
        s.train_accuracy,
        s.valid_accuracy,
        s.parameters,
        s.weights_from_epoch,
        s.train_seconds
    );
    Ok(())
}
