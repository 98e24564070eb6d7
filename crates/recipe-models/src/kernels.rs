//! Faster implementations of the lecture's activations, supplied by a
//! backend crate.
//!
//! Sigmoid, tanh and Maxout's max over pieces are written here with Burn's
//! tensor operations, which run on every backend. A backend crate (e.g.
//! `recipe-flex` for the CPU) can do better with fused kernels: sigmoid that
//! keeps its output and differentiates in one pass, a max that remembers its
//! winner. It implements [`ActivationKernels`] and a program installs it with
//! [`install_activation_kernels`]; every layer of this crate then asks the
//! installed kernels first and falls back to Burn's tensor code for tensors
//! they decline (another device, another element type).
//!
//! The same entry points ([`sigmoid`], [`tanh`], [`max_over_pieces`],
//! [`linear`] and [`affine`], the linear map every layer runs before its
//! activation, and [`linear_then`] and [`affine_then`], the linear map with
//! a [`FusedActivation`] applied in the same kernel) are public, so a user's
//! own layer gets the kernels too.

// A declined tensor comes back as `Err(tensor)`, untouched (so that a kernel
// may still write in place into a buffer it alone holds). A Burn tensor is
// a few hundred bytes of handle; boxing it would add an allocation per call
// to save a copy of that handle.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, OnceLock, RwLock};

use burn::nn::Linear;
use burn::tensor::activation as f;
use burn::tensor::{Shape, Tensor};

/// Fused implementations of some activations for some tensors. Each method
/// takes the tensor and returns the result, or hands the tensor back
/// untouched (`Err`) when it does not apply to it; the default methods
/// decline everything, so a backend crate implements only what it has.
///
/// An implementation must compute the same function as Burn's tensor code
/// (within the rounding of its own arithmetic) and, on an autodiff device,
/// the same gradient.
pub trait ActivationKernels: Send + Sync + 'static {
    /// `1 / (1 + e^-x)`, element-wise, on a tensor of any shape flattened
    /// to one dimension.
    fn sigmoid(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
        Err(x)
    }

    /// `tanh(x)`, element-wise, on a flattened tensor.
    fn tanh(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
        Err(x)
    }

    /// The max over each unit's `pieces` consecutive columns:
    /// `[batch, units * pieces]` to `[batch, units]`; the gradient reaches
    /// only the winning piece.
    fn max_over_pieces(&self, x: Tensor<2>, pieces: usize) -> Result<Tensor<2>, Tensor<2>> {
        let _ = pieces;
        Err(x)
    }

    /// The linear map before an activation, `x · weight + bias`: x `[batch,
    /// d_input]`, weight `[d_input, d_output]` (Burn's `Linear` layout),
    /// bias `[d_output]`, output `[batch, d_output]`, with the gradients of
    /// all three.
    fn linear(
        &self,
        x: Tensor<2>,
        weight: &Tensor<2>,
        bias: &Tensor<1>,
    ) -> Result<Tensor<2>, Tensor<2>> {
        let _ = (weight, bias);
        Err(x)
    }

    /// The linear map and the activation after it in one kernel,
    /// `activation(x · weight + bias)`, with the same shapes as
    /// [`ActivationKernels::linear`] and the gradients of `x`, `weight` and
    /// `bias`.
    fn linear_activation(
        &self,
        x: Tensor<2>,
        weight: &Tensor<2>,
        bias: &Tensor<1>,
        activation: FusedActivation,
    ) -> Result<Tensor<2>, Tensor<2>> {
        let _ = (weight, bias, activation);
        Err(x)
    }
}

/// An element-wise activation whose derivative is a function of its
/// output, so that a kernel may apply it inside the linear map before it
/// (see [`linear_then`]) and keep only the output for the backward pass.
/// An activation says it is one through
/// [`ActivationFn::fused`](crate::ActivationFn::fused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FusedActivation {
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
    /// `max(0, x)`, NaN passing through (Burn's `relu`).
    Relu,
}

impl FusedActivation {
    /// The activation on its own: the installed kernel ([`sigmoid`],
    /// [`tanh`]) or Burn's.
    pub fn apply<const D: usize>(self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Self::Sigmoid => sigmoid(x),
            Self::Tanh => tanh(x),
            Self::Relu => f::relu(x),
        }
    }
}

/// Two sets of kernels, asked in order: the first that takes a tensor runs
/// it, and a tensor both decline goes back to Burn's code. This is how one
/// program installs kernels for several backends (e.g.
/// `(recipe_flex::FlexActivations, recipe_cube::CubeActivations)`), or a
/// user's kernels in front of recipe's.
impl<A: ActivationKernels, B: ActivationKernels> ActivationKernels for (A, B) {
    fn sigmoid(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
        self.0.sigmoid(x).or_else(|x| self.1.sigmoid(x))
    }

    fn tanh(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
        self.0.tanh(x).or_else(|x| self.1.tanh(x))
    }

    fn max_over_pieces(&self, x: Tensor<2>, pieces: usize) -> Result<Tensor<2>, Tensor<2>> {
        self.0
            .max_over_pieces(x, pieces)
            .or_else(|x| self.1.max_over_pieces(x, pieces))
    }

    fn linear(
        &self,
        x: Tensor<2>,
        weight: &Tensor<2>,
        bias: &Tensor<1>,
    ) -> Result<Tensor<2>, Tensor<2>> {
        self.0
            .linear(x, weight, bias)
            .or_else(|x| self.1.linear(x, weight, bias))
    }

    fn linear_activation(
        &self,
        x: Tensor<2>,
        weight: &Tensor<2>,
        bias: &Tensor<1>,
        activation: FusedActivation,
    ) -> Result<Tensor<2>, Tensor<2>> {
        self.0
            .linear_activation(x, weight, bias, activation)
            .or_else(|x| self.1.linear_activation(x, weight, bias, activation))
    }
}

fn installed() -> &'static RwLock<Option<Arc<dyn ActivationKernels>>> {
    static KERNELS: OnceLock<RwLock<Option<Arc<dyn ActivationKernels>>>> = OnceLock::new();
    KERNELS.get_or_init(|| RwLock::new(None))
}

/// Makes this crate's layers (and the functions of this module) ask
/// `kernels` first, in this process, replacing kernels installed before.
pub fn install_activation_kernels(kernels: impl ActivationKernels) {
    *installed().write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(kernels));
}

/// Goes back to Burn's tensor code for every activation, in this process.
pub fn uninstall_activation_kernels() {
    *installed().write().unwrap_or_else(|p| p.into_inner()) = None;
}

fn current() -> Option<Arc<dyn ActivationKernels>> {
    installed()
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

/// Runs an element-wise kernel on `x` flattened, or `fallback` when no
/// kernel takes it.
fn elementwise<const D: usize>(
    x: Tensor<D>,
    kernel: impl FnOnce(&dyn ActivationKernels, Tensor<1>) -> Result<Tensor<1>, Tensor<1>>,
    fallback: impl FnOnce(Tensor<D>) -> Tensor<D>,
) -> Tensor<D> {
    let Some(kernels) = current() else {
        return fallback(x);
    };
    let shape = x.shape();
    match kernel(kernels.as_ref(), x.flatten::<1>(0, D - 1)) {
        Ok(y) => y.reshape(shape),
        Err(x) => fallback(x.reshape(shape)),
    }
}

/// `1 / (1 + e^-x)`, element-wise: the installed kernel, or Burn's.
pub fn sigmoid<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    elementwise(x, |k, x| k.sigmoid(x), f::sigmoid)
}

/// `tanh(x)`, element-wise: the installed kernel, or Burn's.
pub fn tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    elementwise(x, |k, x| k.tanh(x), f::tanh)
}

/// The max over each unit's `pieces` consecutive columns (Maxout): the
/// installed kernel, or Burn's reshape and `max_dim`.
///
/// # Shapes
/// - x: `[batch, units * pieces]`
/// - output: `[batch, units]`
pub fn max_over_pieces(x: Tensor<2>, pieces: usize) -> Tensor<2> {
    let x = match current() {
        Some(kernels) => match kernels.max_over_pieces(x, pieces) {
            Ok(y) => return y,
            Err(x) => x,
        },
        None => x,
    };
    max_over_pieces_unfused(x, pieces)
}

/// `layer.forward(x)` (Burn's `Linear`): [`affine`] for a 2-D input, Burn's
/// `Linear::forward` otherwise.
///
/// # Shapes
/// - x: `[..., d_input]`
/// - output: `[..., d_output]`
pub fn linear<const D: usize>(layer: &Linear, x: Tensor<D>) -> Tensor<D> {
    on_matrix(layer, x, affine).unwrap_or_else(|x| layer.forward(x))
}

/// `map(x, weight, bias)` of `layer`'s tensors when `x` is 2-D; `x` back
/// otherwise.
fn on_matrix<const D: usize>(
    layer: &Linear,
    x: Tensor<D>,
    map: impl FnOnce(Tensor<2>, Tensor<2>, Option<Tensor<1>>) -> Tensor<2>,
) -> Result<Tensor<D>, Tensor<D>> {
    if D != 2 {
        return Err(x);
    }
    let shape = x.shape();
    let bias = layer.bias.as_ref().map(|b| b.val());
    let y = map(x.reshape([shape[0], shape[1]]), layer.weight.val(), bias);
    let [batch, outputs] = y.dims();
    Ok(y.reshape(Shape::from([batch, outputs])))
}

/// `activation(layer.forward(x))`: for a 2-D input, the installed kernel
/// that does both at once ([`affine_then`]), else [`linear`] then
/// [`FusedActivation::apply`].
///
/// # Shapes
/// - x: `[..., d_input]`
/// - output: `[..., d_output]`
pub fn linear_then<const D: usize>(
    layer: &Linear,
    x: Tensor<D>,
    activation: FusedActivation,
) -> Tensor<D> {
    on_matrix(layer, x, |x, weight, bias| {
        affine_then(x, weight, bias, activation)
    })
    .unwrap_or_else(|x| activation.apply(layer.forward(x)))
}

/// `activation(x · weight + bias)`: the installed kernel where there is a
/// bias and it takes the tensors, else [`affine`] then
/// [`FusedActivation::apply`] (the same function).
///
/// # Shapes
/// - x: `[batch, d_input]`
/// - weight: `[d_input, d_output]`
/// - bias: `[d_output]`
/// - output: `[batch, d_output]`
pub fn affine_then(
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
    activation: FusedActivation,
) -> Tensor<2> {
    let x = match (current(), &bias) {
        (Some(kernels), Some(bias)) => {
            match kernels.linear_activation(x, &weight, bias, activation) {
                Ok(y) => return y,
                Err(x) => x,
            }
        }
        _ => x,
    };
    activation.apply(affine(x, weight, bias))
}

/// `x · weight + bias`: the installed kernel where there is a bias and it
/// takes the tensors, else Burn's `linear` (the same function).
///
/// # Shapes
/// - x: `[batch, d_input]`
/// - weight: `[d_input, d_output]`
/// - bias: `[d_output]`
/// - output: `[batch, d_output]`
pub fn affine(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    let x = match (current(), &bias) {
        (Some(kernels), Some(bias)) => match kernels.linear(x, &weight, bias) {
            Ok(y) => return y,
            Err(x) => x,
        },
        _ => x,
    };
    burn::tensor::module::linear(x, weight, bias)
}

/// Burn's tensor code for [`max_over_pieces`], whatever is installed (the
/// reference the fused kernels are tested against).
pub fn max_over_pieces_unfused(x: Tensor<2>, pieces: usize) -> Tensor<2> {
    let [batch, columns] = x.dims();
    x.reshape([batch, columns / pieces, pieces])
        .max_dim(2)
        .squeeze_dim::<2>(2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    /// Declines everything (the trait's defaults).
    struct Declines;
    impl ActivationKernels for Declines {}

    /// Takes every tensor and marks its result with a constant, so a test
    /// sees which kernel ran.
    struct Fills(f32);
    impl ActivationKernels for Fills {
        fn sigmoid(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
            Ok(x.zeros_like() + self.0)
        }
        fn tanh(&self, x: Tensor<1>) -> Result<Tensor<1>, Tensor<1>> {
            Ok(x.zeros_like() + self.0)
        }
        fn max_over_pieces(&self, x: Tensor<2>, pieces: usize) -> Result<Tensor<2>, Tensor<2>> {
            let [batch, columns] = x.dims();
            Ok(Tensor::zeros([batch, columns / pieces], &x.device()) + self.0)
        }
        fn linear(
            &self,
            x: Tensor<2>,
            weight: &Tensor<2>,
            _: &Tensor<1>,
        ) -> Result<Tensor<2>, Tensor<2>> {
            let [batch, _] = x.dims();
            let [_, outputs] = weight.dims();
            Ok(Tensor::zeros([batch, outputs], &x.device()) + self.0)
        }
        fn linear_activation(
            &self,
            x: Tensor<2>,
            weight: &Tensor<2>,
            bias: &Tensor<1>,
            _: FusedActivation,
        ) -> Result<Tensor<2>, Tensor<2>> {
            self.linear(x, weight, bias).map(|y| y + 100.0)
        }
    }

    /// The constant a [`Fills`] wrote, if a kernel took the tensor.
    fn filled<const D: usize>(result: Result<Tensor<D>, Tensor<D>>) -> Option<f32> {
        result.ok().map(|y| y.max().into_scalar())
    }

    #[test]
    fn a_pair_asks_its_first_kernels_then_its_second() {
        let x = Tensor::<1>::from_floats([0.5, -2.0], &Device::default());
        let x2 = Tensor::<2>::from_floats([[1.0, 2.0, 3.0, 4.0]], &Device::default());
        let second_runs = (Declines, Fills(7.0));
        assert_eq!(filled(second_runs.sigmoid(x.clone())), Some(7.0));
        assert_eq!(filled(second_runs.tanh(x.clone())), Some(7.0));
        assert_eq!(
            filled(second_runs.max_over_pieces(x2.clone(), 2)),
            Some(7.0)
        );
        let first_runs = (Fills(1.0), Fills(7.0));
        assert_eq!(filled(first_runs.sigmoid(x.clone())), Some(1.0));
        assert_eq!(filled(first_runs.max_over_pieces(x2.clone(), 2)), Some(1.0));
        let (weight, bias) = (
            Tensor::<2>::ones([4, 3], &Device::default()),
            Tensor::zeros([3], &Device::default()),
        );
        assert_eq!(
            filled(second_runs.linear(x2.clone(), &weight, &bias)),
            Some(7.0)
        );
        assert_eq!(
            filled(first_runs.linear(x2.clone(), &weight, &bias)),
            Some(1.0)
        );
        assert!(
            (Declines, Declines)
                .linear(x2.clone(), &weight, &bias)
                .is_err()
        );
        let relu = FusedActivation::Relu;
        assert_eq!(
            filled(second_runs.linear_activation(x2.clone(), &weight, &bias, relu)),
            Some(107.0)
        );
        assert_eq!(
            filled(first_runs.linear_activation(x2.clone(), &weight, &bias, relu)),
            Some(101.0)
        );
        assert!(
            (Declines, Declines)
                .linear_activation(x2.clone(), &weight, &bias, relu)
                .is_err()
        );
        let back = (Declines, Declines).sigmoid(x.clone()).unwrap_err();
        back.into_data().assert_eq(&x.into_data(), true);
        assert!((Declines, Declines).max_over_pieces(x2, 2).is_err());
    }
}
