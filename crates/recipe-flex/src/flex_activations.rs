//! [`FlexActivations`]: recipe-models' activation kernels on Flex.

use burn::backend::Dispatch;
use burn::tensor::{DType, Device, Tensor};
use recipe_models::ActivationKernels;
use recipe_models::kernels::FusedActivation;

use crate::activation_ops::FusedActivationOps;
use crate::linear_ops::FusedLinearOps;
use crate::pointwise::Pointwise;

/// Sigmoid, tanh and Maxout's max as fused loops, and the linear map before
/// them as one product per thread with the bias folded in, for `f32` tensors on Flex
/// (with or without autodiff); tensors elsewhere are handed back to Burn's
/// tensor code. Installed by [`crate::install`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FlexActivations;

fn on_flex_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && x.device().inner() == Device::flex()
}

impl ActivationKernels for FlexActivations {
    fn sigmoid(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
        if !on_flex_f32(&x) {
            return Err(x);
        }
        let y = <Dispatch as FusedActivationOps>::fused_sigmoid(x.into_dispatch());
        Ok(Tensor::from_dispatch(y))
    }

    fn tanh(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
        if !on_flex_f32(&x) {
            return Err(x);
        }
        let y = <Dispatch as FusedActivationOps>::fused_tanh(x.into_dispatch());
        Ok(Tensor::from_dispatch(y))
    }

    fn max_over_pieces(&self, x: Tensor<2>, pieces: usize) -> Result<Tensor<2>, Tensor<2>> {
        let [_, columns] = x.dims();
        if !on_flex_f32(&x) || pieces == 0 || columns % pieces != 0 {
            return Err(x);
        }
        let y = <Dispatch as FusedActivationOps>::fused_max_over_pieces(x.into_dispatch(), pieces);
        Ok(Tensor::from_dispatch(y))
    }

    fn linear(
        &self,
        x: Tensor<2>,
        weight: &Tensor<2>,
        bias: &Tensor<1>,
    ) -> Result<Tensor<2>, Tensor<2>> {
        fused_linear(x, weight, bias, None)
    }

    fn linear_activation(
        &self,
        x: Tensor<2>,
        weight: &Tensor<2>,
        bias: &Tensor<1>,
        activation: FusedActivation,
    ) -> Result<Tensor<2>, Tensor<2>> {
        if Pointwise::of(activation).is_none() {
            return Err(x);
        }
        fused_linear(x, weight, bias, Some(activation))
    }
}

/// `activation(x · weight + bias)` by [`FusedLinearOps`], for matching
/// shapes of `f32` on Flex.
// The `Err` is the trait's: the input handed back untouched (see
// recipe-models' `kernels`).
#[allow(clippy::result_large_err)]
fn fused_linear(
    x: Tensor<2>,
    weight: &Tensor<2>,
    bias: &Tensor<1>,
    activation: Option<FusedActivation>,
) -> Result<Tensor<2>, Tensor<2>> {
    let [_, d_input] = x.dims();
    let [rows, d_output] = weight.dims();
    let fits = rows == d_input && bias.dims() == [d_output];
    if !(fits && on_flex_f32(&x) && on_flex_f32(weight) && on_flex_f32(bias)) {
        return Err(x);
    }
    let y = <Dispatch as FusedLinearOps>::fused_linear(
        x.into_dispatch(),
        weight.clone().into_dispatch(),
        bias.clone().into_dispatch(),
        activation,
    );
    Ok(Tensor::from_dispatch(y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation as burn_fn;
    use burn::tensor::{Distribution, TensorData};
    use recipe_models::kernels::max_over_pieces_unfused;

    fn device() -> Device {
        Device::flex().autodiff()
    }

    /// Random inputs over the range where sigmoid and tanh saturate and
    /// where they do not, and random weights for a loss `sum(w * f(x))`.
    fn inputs(shape: [usize; 2]) -> (Tensor<2>, Tensor<2>) {
        let x = Tensor::<2>::random(shape, Distribution::Uniform(-12.0, 12.0), &device());
        let w = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device());
        (x.require_grad(), w)
    }

    fn max_abs_difference(a: Tensor<2>, b: Tensor<2>) -> f32 {
        (a - b).abs().max().into_scalar()
    }

    /// The value and the input gradient of `sum(w * f(x))`.
    fn value_and_gradient(
        x: &Tensor<2>,
        w: &Tensor<2>,
        f: impl FnOnce(Tensor<2>) -> Tensor<2>,
    ) -> (Tensor<2>, Tensor<2>) {
        let y = f(x.clone());
        let grads = (y.clone() * w.clone()).sum().backward();
        (y.inner(), x.grad(&grads).unwrap())
    }

    fn fused(
        kernel: fn(&FlexActivations, Tensor<1>) -> Result<Tensor<1>, Tensor<1>>,
    ) -> impl FnOnce(Tensor<2>) -> Tensor<2> {
        move |x| {
            let shape = x.shape();
            kernel(&FlexActivations, x.flatten(0, 1))
                .expect("an f32 tensor on Flex")
                .reshape(shape)
        }
    }

    /// Sigmoid and tanh: the fused loop's `exp` is within 2 ulp of the C
    /// library's (vector_math's tests), so values and gradients agree with
    /// Burn's to 1e-6 absolute, not bit for bit. The gradient is computed
    /// from the kept output `y` in the same order as Flex's
    /// `sigmoid_backward`, so its difference is only `y`'s.
    #[test]
    fn sigmoid_and_tanh_agree_with_burns_forward_and_backward() {
        let (x, w) = inputs([64, 300]);
        for (fused, burns, name) in [
            (
                value_and_gradient(&x, &w, fused(FlexActivations::sigmoid)),
                value_and_gradient(&x, &w, burn_fn::sigmoid),
                "sigmoid",
            ),
            (
                value_and_gradient(&x, &w, fused(FlexActivations::tanh)),
                value_and_gradient(&x, &w, burn_fn::tanh),
                "tanh",
            ),
        ] {
            let value = max_abs_difference(fused.0, burns.0);
            let gradient = max_abs_difference(fused.1, burns.1);
            assert!(value <= 1e-6, "{name} values differ by {value}");
            assert!(gradient <= 4e-6, "{name} gradients differ by {gradient}");
        }
    }

    /// The max and its gradient are exact, so Maxout is bit for bit Burn's
    /// reshape + `max_dim` (random inputs: no ties).
    #[test]
    fn maxout_is_bit_for_bit_burns_forward_and_backward() {
        let (x, w) = inputs([32, 240 * 5]);
        let w = w.slice([0..32, 0..240]);
        let fused_max = |x: Tensor<2>| FlexActivations.max_over_pieces(x, 5).unwrap();
        let (fused_value, fused_gradient) = value_and_gradient(&x, &w, fused_max);
        let (value, gradient) = value_and_gradient(&x, &w, |x| max_over_pieces_unfused(x, 5));
        fused_value.into_data().assert_eq(&value.into_data(), true);
        fused_gradient
            .into_data()
            .assert_eq(&gradient.into_data(), true);
    }

    /// The fused linear map against Burn's `linear` (matmul, then the bias
    /// added): value and the gradients of the input, the weights and the
    /// bias, on a loss `sum(v * y)`, bit for bit. The products are the same
    /// `gemm` dot products in the same order as Flex's (the split across
    /// threads changes no element's order), the bias is added after the
    /// product as Burn adds it, and the bias gradient adds the rows in
    /// order, as Flex's sum does. (Starting each row from the bias and
    /// letting `gemm` add to it is not the same: above its block of the
    /// inner dimension, `gemm` adds its partial sums to the output one
    /// after the other, so the bias joins the first partial sum.) Sizes below and above the split across
    /// threads, an inner dimension of 2,048 (the ladder net's output layer).
    #[test]
    fn linear_is_bit_for_bit_burns_forward_and_backward() {
        let cases = [
            (3, 5, 7),
            (100, 500, 500),
            (100, 784, 1200),
            (100, 2048, 10),
        ];
        for (batch, d_input, d_output) in cases {
            let shape = format!("[{batch}, {d_input}] x [{d_input}, {d_output}]");
            let inputs = linear_inputs([batch, d_input, d_output]);
            let fused = linear_results(&inputs, |x, w, b| {
                FlexActivations.linear(x, &w, &b).expect("f32 on Flex")
            });
            let burns = linear_results(&inputs, |x, w, b| {
                burn::tensor::module::linear(x, w, Some(b))
            });
            assert_same_bits(&fused, &burns, &shape);
        }
    }

    /// The linear map with its activation in one kernel is bit for bit the
    /// linear kernel followed by the activation's own kernel (sigmoid,
    /// tanh) or Burn's (ReLU): the same arithmetic, element for element,
    /// forward and backward, above and below the split across threads.
    #[test]
    fn linear_with_its_activation_is_bit_for_bit_the_two_apart() {
        let activations = [
            FusedActivation::Sigmoid,
            FusedActivation::Tanh,
            FusedActivation::Relu,
        ];
        for activation in activations {
            for dims in [[3, 5, 7], [100, 500, 500]] {
                let inputs = linear_inputs(dims);
                let fused = linear_results(&inputs, |x, w, b| {
                    FlexActivations
                        .linear_activation(x, &w, &b, activation)
                        .expect("f32 on Flex")
                });
                let apart = linear_results(&inputs, |x, w, b| {
                    let z = FlexActivations.linear(x, &w, &b).expect("f32 on Flex");
                    activation_apart(activation, z)
                });
                assert_same_bits(&fused, &apart, &format!("{activation:?} {dims:?}"));
            }
        }
        // Without autodiff (inference), the same values.
        let [x, w, b, _] = linear_inputs([100, 300, 400]).map(|t| t.inner());
        let b = b.flatten::<1>(0, 1);
        let fused = FlexActivations
            .linear_activation(x.clone(), &w, &b, FusedActivation::Sigmoid)
            .unwrap();
        let z = FlexActivations.linear(x, &w, &b).unwrap();
        let apart = activation_apart(FusedActivation::Sigmoid, z);
        fused.into_data().assert_eq(&apart.into_data(), true);
    }

    /// `activation(z)` by this crate's own kernel (sigmoid, tanh) or Burn's
    /// `relu`.
    fn activation_apart(activation: FusedActivation, z: Tensor<2>) -> Tensor<2> {
        let kernel = match activation {
            FusedActivation::Sigmoid => FlexActivations::sigmoid,
            FusedActivation::Tanh => FlexActivations::tanh,
            _ => return burn_fn::relu(z),
        };
        fused(kernel)(z)
    }

    /// Random `x [batch, d_input]`, `weight [d_input, d_output]`, `bias`
    /// and `v [batch, d_output]`.
    fn linear_inputs([batch, d_input, d_output]: [usize; 3]) -> [Tensor<2>; 4] {
        let normal = |std| Distribution::Normal(0.0, std);
        [
            Tensor::<2>::random([batch, d_input], normal(1.0), &device()),
            Tensor::<2>::random([d_input, d_output], normal(0.05), &device()),
            Tensor::<2>::random([1, d_output], normal(1.0), &device()),
            Tensor::<2>::random([batch, d_output], normal(1.0), &device()),
        ]
    }

    /// The value and the gradients of `sum(v * f(x, weight, bias))`.
    fn linear_results(
        [x, weight, bias, v]: &[Tensor<2>; 4],
        f: impl FnOnce(Tensor<2>, Tensor<2>, Tensor<1>) -> Tensor<2>,
    ) -> [TensorData; 4] {
        let x = x.clone().require_grad();
        let weight = weight.clone().require_grad();
        let bias = bias.clone().flatten::<1>(0, 1).require_grad();
        let y = f(x.clone(), weight.clone(), bias.clone());
        let grads = (y.clone() * v.clone()).sum().backward();
        [
            y.inner().into_data(),
            x.grad(&grads).unwrap().into_data(),
            weight.grad(&grads).unwrap().into_data(),
            bias.grad(&grads).unwrap().into_data(),
        ]
    }

    fn assert_same_bits(a: &[TensorData; 4], b: &[TensorData; 4], what: &str) {
        let parts = [
            "values",
            "input gradients",
            "weight gradients",
            "bias gradients",
        ];
        for ((a, b), part) in a.iter().zip(b).zip(parts) {
            let (a, b) = (a.as_slice::<f32>().unwrap(), b.as_slice::<f32>().unwrap());
            assert_eq!(a.len(), b.len(), "{part}, {what}: lengths");
            let differing = a
                .iter()
                .zip(b)
                .position(|(a, b)| a.to_bits() != b.to_bits());
            assert_eq!(differing, None, "{part}, {what}: first differing element");
        }
    }

    /// Through recipe-models' entry point, a `Linear` whose weights are
    /// stored transposed (Burn's column layout) gives Burn's result too.
    #[test]
    fn a_transposed_weight_is_read_in_place() {
        use burn::nn::{LinearConfig, LinearLayout};
        let layer = LinearConfig::new(6, 4)
            .with_layout(LinearLayout::Col)
            .init(&Device::flex());
        let x = Tensor::<2>::random([5, 6], Distribution::Normal(0.0, 1.0), &Device::flex());
        let fused = FlexActivations
            .linear(
                x.clone(),
                &layer.weight.val(),
                &layer.bias.as_ref().unwrap().val(),
            )
            .unwrap();
        assert!(max_abs_difference(fused, layer.forward(x)) <= 1e-6);
    }

    #[test]
    fn inference_without_autodiff_takes_the_same_path() {
        let x = Tensor::<2>::random([8, 10], Distribution::Default, &Device::flex());
        let fused = FlexActivations.max_over_pieces(x.clone(), 2).unwrap();
        let burns = max_over_pieces_unfused(x.clone(), 2);
        fused.into_data().assert_eq(&burns.into_data(), true);
        let fused = FlexActivations.sigmoid(x.clone().flatten(0, 1)).unwrap();
        assert!(max_abs_difference(fused.reshape([8, 10]), burn_fn::sigmoid(x)) <= 1e-6);
    }

    #[test]
    fn other_element_types_and_shapes_are_handed_back() {
        let x = Tensor::<1>::from_data(
            TensorData::from([0.5f64, -1.0]),
            (&Device::flex(), DType::F64),
        );
        let back = FlexActivations.sigmoid(x).unwrap_err();
        assert_eq!(back.dtype(), DType::F64);
        let x = Tensor::<2>::zeros([2, 7], &Device::flex());
        assert!(FlexActivations.max_over_pieces(x, 2).is_err());
    }
}
