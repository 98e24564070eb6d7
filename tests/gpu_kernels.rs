//! recipe-cube's GPU kernels against Burn's own tensor code, forward and
//! backward, on whatever wgpu finds (in CI: Mesa's software Vulkan,
//! lavapipe). Compiled only with the `wgpu` feature:
//!
//! ```text
//! cargo test --release --features wgpu --test gpu_kernels
//! ```
//!
//! The kernels are called directly (not installed), so these tests share
//! no global state with other tests; their inputs are fixed numbers, not
//! draws from Burn's process-wide random generator.
#![cfg(feature = "wgpu")]

use burn::tensor::activation as burn_fn;
use burn::tensor::{Device, Tensor, TensorData};
use recipe::backend::select_device;
use recipe_cube::CubeActivations;
use recipe_models::ActivationKernels;
use recipe_models::kernels::max_over_pieces_unfused;

fn gpu() -> Device {
    select_device("wgpu").unwrap().autodiff()
}

/// `count` numbers spread over `[-range, range]` without ties (a 32-bit
/// linear congruential sequence; fixed, so every run sees the same inputs).
fn spread(count: usize, range: f32) -> Vec<f32> {
    let mut state = 12345u32;
    (0..count)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 * range - range
        })
        .collect()
}

fn tensor(shape: [usize; 2], range: f32, device: &Device) -> Tensor<2> {
    let values = spread(shape[0] * shape[1], range);
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The value and the input gradient of `sum(w * f(x))`.
fn value_and_gradient(
    x: &Tensor<2>,
    w: &Tensor<2>,
    f: impl FnOnce(Tensor<2>) -> Tensor<2>,
) -> (Vec<f32>, Vec<f32>) {
    let x = x.clone().require_grad();
    let y = f(x.clone());
    let grads = (y.clone() * w.clone()).sum().backward();
    let gradient = x.grad(&grads).expect("x is tracked");
    (
        y.inner().into_data().try_to_vec().unwrap(),
        gradient.into_data().try_to_vec().unwrap(),
    )
}

fn max_abs_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Bit for bit, with the first difference in the message (not both
/// vectors: they have thousands of elements).
fn assert_identical(found: &[f32], expected: &[f32], what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: lengths");
    if let Some(i) = (0..found.len()).find(|&i| found[i].to_bits() != expected[i].to_bits()) {
        panic!(
            "{what}: element {i} is {} where Burn has {}",
            found[i], expected[i]
        );
    }
}

fn fused(
    kernel: fn(&CubeActivations, Tensor<1>) -> Result<Tensor<1>, Tensor<1>>,
) -> impl FnOnce(Tensor<2>) -> Tensor<2> {
    move |x| {
        let shape = x.shape();
        kernel(&CubeActivations, x.flatten(0, 1))
            .expect("an f32 tensor on the GPU")
            .reshape(shape)
    }
}

/// Burn computes sigmoid as `exp(-log(1 + exp(-x)))` and the kernel as
/// `1 / (1 + exp(-x))`: the same function with other roundings, so values
/// and gradients agree to 1e-6, not bit for bit. The gradient is computed
/// from the kept output in the order of Burn's `sigmoid_backward`.
#[test]
fn sigmoid_and_tanh_kernels_agree_with_burns_forward_and_backward() {
    let device = gpu();
    let x = tensor([16, 300], 12.0, &device);
    let w = tensor([16, 300], 1.0, &device);
    for (kernel, burns, name) in [
        (
            CubeActivations::sigmoid as fn(&CubeActivations, _) -> _,
            burn_fn::sigmoid as fn(Tensor<2>) -> Tensor<2>,
            "sigmoid",
        ),
        (CubeActivations::tanh, burn_fn::tanh, "tanh"),
    ] {
        let (value, gradient) = value_and_gradient(&x, &w, fused(kernel));
        let (burn_value, burn_gradient) = value_and_gradient(&x, &w, burns);
        let values = max_abs_difference(&value, &burn_value);
        let gradients = max_abs_difference(&gradient, &burn_gradient);
        assert!(values <= 1e-6, "{name} values differ by {values}");
        assert!(gradients <= 4e-6, "{name} gradients differ by {gradients}");
    }
}

/// The max and its gradient are exact, so the Maxout kernels are bit for
/// bit Burn's reshape + `max_dim` (the inputs have no ties), also for an
/// input that is not contiguous in memory.
#[test]
fn maxout_kernels_are_bit_for_bit_burns_forward_and_backward() {
    let device = gpu();
    let x = tensor([8, 60 * 5], 3.0, &device);
    let w = tensor([8, 60], 1.0, &device);
    let kernel = |x: Tensor<2>| CubeActivations.max_over_pieces(x, 5).unwrap();
    let burns = |x: Tensor<2>| max_over_pieces_unfused(x, 5);
    let transposed = tensor([60 * 5, 8], 3.0, &device).transpose();
    for (input, layout) in [(x, "contiguous"), (transposed, "transposed")] {
        let (value, gradient) = value_and_gradient(&input, &w, kernel);
        let (burn_value, burn_gradient) = value_and_gradient(&input, &w, burns);
        assert_identical(&value, &burn_value, &format!("{layout} max"));
        assert_identical(&gradient, &burn_gradient, &format!("{layout} gradient"));
    }
}

#[test]
fn inference_without_autodiff_takes_the_same_kernels() {
    let device = select_device("wgpu").unwrap();
    let x = tensor([4, 12], 6.0, &device);
    let max: Vec<f32> = CubeActivations
        .max_over_pieces(x.clone(), 3)
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let burns: Vec<f32> = max_over_pieces_unfused(x.clone(), 3)
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_identical(&max, &burns, "max without autodiff");
    let y: Vec<f32> = fused(CubeActivations::sigmoid)(x.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    let burns: Vec<f32> = burn_fn::sigmoid(x).into_data().try_to_vec().unwrap();
    assert!(max_abs_difference(&y, &burns) <= 1e-6);
}

#[test]
fn tensors_off_the_gpu_are_handed_back() {
    let x = Tensor::<1>::from_floats([0.5, -1.0], &Device::flex());
    assert!(CubeActivations.sigmoid(x).is_err());
    let on_gpu = Tensor::<2>::zeros([2, 7], &gpu());
    assert!(CubeActivations.max_over_pieces(on_gpu, 2).is_err());
}
