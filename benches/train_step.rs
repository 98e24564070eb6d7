//! Training and inference throughput of recipe's MLPs on the default CPU
//! backend: forward, backward and optimizer step on random data, after
//! warm-up steps, median of timed repeats.
//!
//! ```text
//! cargo bench --bench train_step
//! ```

use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use recipe::backend::select_device;
use recipe::models::{ActivationConfig, Mlp, MlpConfig};
use recipe::train::OptimizerConfig;

struct Case {
    name: &'static str,
    model: MlpConfig,
    optimizer: OptimizerConfig,
    learning_rate: f64,
    batch: usize,
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn batch(size: usize, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let images = Tensor::<2>::random([size, 784], Distribution::Uniform(0.0, 1.0), device);
    let labels: Vec<i64> = (0..size).map(|i| (i % 10) as i64).collect();
    (
        images,
        Tensor::from_data(TensorData::new(labels, [size]), device),
    )
}

fn train_samples_per_sec(case: &Case, device: &Device) -> f64 {
    let device = device.clone().autodiff();
    device.seed(0);
    let mut model: Mlp = case.model.init(&device).unwrap();
    let mut optim = case.optimizer.init();
    let (images, labels) = batch(case.batch, &device);
    let loss_fn = CrossEntropyLossConfig::new().init(&device);
    let mut step = |model: Mlp| -> Mlp {
        let loss = loss_fn.forward(model.forward(images.clone()), labels.clone());
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optim.step(case.learning_rate, model, grads);
        // Reading the loss waits for the step to finish.
        let _ = loss.into_scalar::<f32>();
        model
    };
    for _ in 0..3 {
        model = step(model);
    }
    let steps = 20;
    let mut rates = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        for _ in 0..steps {
            model = step(model);
        }
        rates.push((steps * case.batch) as f64 / started.elapsed().as_secs_f64());
    }
    median(rates)
}

fn infer_samples_per_sec(case: &Case, device: &Device) -> f64 {
    let model = case.model.init(device).unwrap().valid();
    let (images, _) = batch(1000, device);
    let mut rates = Vec::new();
    for repeat in 0..6 {
        let started = Instant::now();
        let _ = model.forward(images.clone()).sum().into_scalar::<f32>();
        if repeat > 0 {
            rates.push(1000.0 / started.elapsed().as_secs_f64());
        }
    }
    median(rates)
}

fn main() {
    let device = select_device("cpu").unwrap();
    let cases = [
        Case {
            name: "A 784-512-512-10 relu, adam",
            model: MlpConfig::new(784, vec![512, 512], 10),
            optimizer: OptimizerConfig::adam(),
            learning_rate: 1e-3,
            batch: 128,
        },
        Case {
            name: "B 784-500x9-10 sigmoid, sgd",
            model: MlpConfig::new(784, vec![500; 9], 10)
                .with_activation(vec![ActivationConfig::Sigmoid]),
            optimizer: OptimizerConfig::sgd(0.0),
            learning_rate: 0.1,
            batch: 100,
        },
        Case {
            name: "C 784-240x2-10 maxout:5, sgd momentum",
            model: MlpConfig::new(784, vec![240, 240], 10)
                .with_activation(vec![ActivationConfig::maxout(5)]),
            optimizer: OptimizerConfig::sgd(0.9),
            learning_rate: 0.01,
            batch: 100,
        },
    ];
    for case in &cases {
        let train = train_samples_per_sec(case, &device);
        let infer = infer_samples_per_sec(case, &device);
        println!(
            "{{\"case\": \"{}\", \"device\": \"{device:?}\", \"batch_size\": {}, \"train_samples_per_sec\": {train:.0}, \"infer_samples_per_sec\": {infer:.0}}}",
            case.name, case.batch
        );
    }
}
