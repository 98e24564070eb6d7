//! [`FlexActivations`]: recipe-models' activation kernels on Flex.

use burn::backend::Dispatch;
use burn::tensor::{DType, Device, Tensor};
use recipe_models::ActivationKernels;

use crate::activation_ops::FusedActivationOps;

/// Sigmoid, tanh and Maxout's max as fused loops for `f32` tensors on Flex
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
