//! recipe-train's max-norm constraint asks the installed kernels
//! (`OptimizerKernels::max_norm`) for each weight it constrains, and with
//! recipe-flex's the network's weights are the tensor code's bit for bit.
//! Its own process: installing kernels is process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::{Device, Distribution, Tensor};
use recipe_flex::FlexKernels;
use recipe_models::{Mlp, MlpConfig};
use recipe_train::{
    MaxNormConfig, OptimizerKernels, install_optimizer_kernels, uninstall_optimizer_kernels,
};

static ASKED: AtomicUsize = AtomicUsize::new(0);

/// recipe-flex's kernels, counting the constraints they are asked for.
struct Counting;

impl OptimizerKernels for Counting {
    fn max_norm(&self, matrix: &Tensor<2>, unit_dim: usize, max_norm: f64) -> Option<Tensor<2>> {
        ASKED.fetch_add(1, Ordering::SeqCst);
        FlexKernels.max_norm(matrix, unit_dim, max_norm)
    }
}

fn weights(net: &Mlp) -> Vec<u32> {
    let linears = net.layers.iter().map(|l| &l.linear).chain([&net.output]);
    linears
        .flat_map(|linear| linear.weight.val().into_data().try_to_vec::<f32>().unwrap())
        .map(f32::to_bits)
        .collect()
}

#[test]
fn max_norm_runs_the_installed_kernel_with_the_tensor_codes_bits() {
    let device = Device::flex();
    let net = MlpConfig::new(784, vec![64, 32], 10).init(&device).unwrap();
    // Weights large enough that some units are over the bound.
    let net = recipe_train::map_params(
        net,
        |info| info.path.ends_with("weight"),
        |param| {
            param.matrix.clone() * Tensor::random([1, 1], Distribution::Uniform(4.0, 5.0), &device)
        },
    );
    let constraint = MaxNormConfig::new(1.0).unwrap();
    install_optimizer_kernels(Counting);
    let with_kernel = constraint.apply(net.clone());
    uninstall_optimizer_kernels();
    assert_eq!(ASKED.load(Ordering::SeqCst), 3, "three weight matrices");
    let tensor_code = constraint.apply(net.clone());
    assert_eq!(weights(&with_kernel), weights(&tensor_code));
    assert_ne!(
        weights(&with_kernel),
        weights(&net),
        "nothing was over the bound"
    );
}
