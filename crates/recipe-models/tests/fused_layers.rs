//! Which kernel entry point each hidden layer of an `Mlp` asks: the linear
//! map and its activation together for sigmoid, tanh and ReLU
//! (`ActivationFn::fused`), the linear map alone for the others and for the
//! output layer. Its own process: it installs a kernel set.

use std::sync::Mutex;

use burn::tensor::{Device, Distribution, Tensor};
use recipe_models::kernels::FusedActivation;
use recipe_models::{ActivationConfig, ActivationKernels, MlpConfig, install_activation_kernels};

/// Declines every tensor (so Burn's code runs) and records what it was asked.
#[derive(Default)]
struct Records(Mutex<Vec<String>>);

impl ActivationKernels for &'static Records {
    fn linear(&self, x: Tensor<2>, _: &Tensor<2>, _: &Tensor<1>) -> Result<Tensor<2>, Tensor<2>> {
        self.0.lock().unwrap().push("linear".into());
        Err(x)
    }

    fn linear_activation(
        &self,
        x: Tensor<2>,
        _: &Tensor<2>,
        _: &Tensor<1>,
        activation: FusedActivation,
    ) -> Result<Tensor<2>, Tensor<2>> {
        self.0
            .lock()
            .unwrap()
            .push(format!("linear + {activation:?}"));
        Err(x)
    }
}

#[test]
fn fusable_activations_ask_for_the_fused_kernel_and_the_rest_for_the_linear_map() {
    let records: &'static Records = Box::leak(Box::default());
    install_activation_kernels(records);
    let activations = ["sigmoid", "tanh", "relu", "leaky-relu:0.1", "maxout:2"]
        .map(|name| name.parse::<ActivationConfig>().unwrap())
        .to_vec();
    let device = Device::flex().autodiff();
    let mlp = MlpConfig::new(6, vec![4; 5], 3)
        .with_activation(activations)
        .init(&device)
        .unwrap();
    let x = Tensor::<2>::random([2, 6], Distribution::Default, &device);
    let y = mlp.forward(x);
    assert_eq!(y.dims(), [2, 3]);
    let asked = records.0.lock().unwrap().clone();
    assert_eq!(
        asked,
        [
            "linear + Sigmoid",
            // Declined: the layer falls back to the linear map, which asks
            // the kernels again before Burn's code runs.
            "linear",
            "linear + Tanh",
            "linear",
            "linear + Relu",
            "linear",
            "linear",
            "linear",
            "linear",
        ]
    );
}
