//! What the overfitting examples (04, 05, 06) share: their command line.

use anyhow::Result;
use burn::tensor::Device;
use clap::Parser;
use recipe::backend::select_device;
use recipe::train::TrainConfig;

/// Trains variants of a net that overfits (784-1024-1024-10 ReLU, 5,000 MNIST images, Adam 1e-3).
#[derive(Debug, Parser)]
pub struct OverfittingArgs {
    /// Epochs for the net that overfits
    #[arg(long, default_value_t = 40)]
    pub epochs: usize,
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, env = "RECIPE_DEVICE", default_value = "cpu")]
    pub device: String,
}

/// Parses the command line: the overfitting setting and the device.
pub fn setting_and_device() -> Result<(TrainConfig, Device)> {
    let args = OverfittingArgs::parse();
    let device = select_device(&args.device)?;
    Ok((
        recipe::experiments::overfitting_setting(args.epochs),
        device,
    ))
}
