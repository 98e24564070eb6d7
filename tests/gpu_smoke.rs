//! The GPU code path, on whatever wgpu finds: a real GPU, or on a machine
//! without one Mesa's software Vulkan, lavapipe (`apt-get install
//! mesa-vulkan-drivers`). Compiled only with the `wgpu` feature:
//!
//! ```text
//! cargo test --release --features wgpu --test gpu_smoke
//! ```
//!
//! Tiny shapes: on lavapipe the first run spends most of its time compiling
//! and autotuning kernels.
#![cfg(feature = "wgpu")]

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Distribution, Tensor};
use recipe::backend::select_device;
use recipe::models::MlpConfig;
use recipe::train::{OptimizerConfig, TrainConfig, train_mlp};

mod common;

#[test]
fn the_same_weights_give_the_same_logits_on_wgpu_and_the_cpu() {
    let cpu = select_device("cpu").unwrap();
    let gpu = select_device("wgpu").unwrap();
    let config = MlpConfig::new(784, vec![32, 32], 10)
        .with_activation(vec!["relu".parse().unwrap(), "maxout:3".parse().unwrap()]);
    cpu.seed(1);
    let on_cpu = config.init(&cpu).unwrap();
    let bytes = on_cpu.clone().into_record().into_bytes().unwrap();
    let on_gpu = config
        .init(&gpu)
        .unwrap()
        .load_record(ModuleRecord::from_bytes(bytes).unwrap());
    let images = Tensor::<2>::random([8, 784], Distribution::Uniform(0.0, 1.0), &cpu);
    let expected: Vec<f32> = on_cpu
        .forward(images.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    let found: Vec<f32> = on_gpu
        .forward(Tensor::from_data(images.into_data(), &gpu))
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_eq!(expected.len(), found.len());
    for (e, f) in expected.iter().zip(&found) {
        assert!((e - f).abs() < 1e-4, "cpu {e} vs wgpu {f}");
    }
}

#[test]
fn a_short_training_run_on_wgpu() {
    let mut config = TrainConfig::new(MlpConfig::new(784, vec![32], 10));
    config.data.split.train_limit = Some(512);
    config.data.split.valid_size = 256;
    config.fit.epochs = 2;
    config.fit.batch_size = 64;
    config.fit.optimizer = OptimizerConfig::adam();
    config.fit.learning_rate = 1e-3;
    let options = common::quiet();
    let trained = train_mlp(&config, &select_device("wgpu").unwrap(), &options).unwrap();
    let history = &trained.history.epochs;
    assert_eq!(history.len(), 2);
    assert!(history.iter().all(|e| e.train_loss.is_finite()));
    assert!(history[1].train_loss < history[0].train_loss, "{history:?}");
    assert!(
        trained.summary.device.contains("Wgpu"),
        "{}",
        trained.summary.device
    );
}
