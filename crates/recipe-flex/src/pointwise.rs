//! The element-wise activations whose derivative is a function of their
//! output (sigmoid, tanh, ReLU), as the fused kernels run them: alone
//! ([`crate::activation_ops`]) or inside a linear layer's product
//! ([`crate::linear_ops`]), where each thread applies one to its block of
//! the output right after the bias, while the block is in its cache.

use recipe_models::kernels::FusedActivation;

use crate::vector_math;

/// An element-wise function whose derivative is a function of its output,
/// so that its backward pass needs the output alone.
pub(crate) trait FromItsOutput: std::fmt::Debug + Default + Send + 'static {
    fn forward(x: f32) -> f32;
    /// `grad_in` from the output `y` and `grad_out`.
    fn derivative(y: f32, grad: f32) -> f32;
}

#[derive(Debug, Default)]
pub(crate) struct Sigmoid;

impl FromItsOutput for Sigmoid {
    fn forward(x: f32) -> f32 {
        vector_math::sigmoid(x)
    }
    /// In the order Flex's `sigmoid_backward` multiplies.
    fn derivative(y: f32, grad: f32) -> f32 {
        grad * y * (1.0 - y)
    }
}

#[derive(Debug, Default)]
pub(crate) struct Tanh;

impl FromItsOutput for Tanh {
    fn forward(x: f32) -> f32 {
        vector_math::tanh(x)
    }
    fn derivative(y: f32, grad: f32) -> f32 {
        grad * (1.0 - y * y)
    }
}

/// Flex's own `relu` and `relu_backward`, element for element: NaN passes
/// through both, and `-0` becomes `0`.
#[derive(Debug, Default)]
pub(crate) struct Relu;

impl FromItsOutput for Relu {
    fn forward(x: f32) -> f32 {
        if x.is_nan() || x > 0.0 { x } else { 0.0 }
    }
    fn derivative(y: f32, grad: f32) -> f32 {
        if y.is_nan() || y > 0.0 { grad } else { 0.0 }
    }
}

/// What a linear layer's kernel applies to its output: nothing, or one of
/// the functions above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pointwise {
    Identity,
    Sigmoid,
    Tanh,
    Relu,
}

impl Pointwise {
    /// The kernel for recipe-models' activation, if this crate has one.
    pub(crate) fn of(activation: FusedActivation) -> Option<Self> {
        match activation {
            FusedActivation::Sigmoid => Some(Self::Sigmoid),
            FusedActivation::Tanh => Some(Self::Tanh),
            FusedActivation::Relu => Some(Self::Relu),
            _ => None,
        }
    }

    /// `row[j] = f(row[j] + bias[j])` (or `f(row[j])` without a bias): the
    /// bias added first, as Burn adds it, then the function, in one pass.
    pub(crate) fn finish_row(self, row: &mut [f32], bias: Option<&[f32]>) {
        match self {
            Self::Identity => {
                if let Some(bias) = bias {
                    vector_math::zip_dispatch(bias, row, |b, v| v + b);
                }
            }
            Self::Sigmoid => finish::<Sigmoid>(row, bias),
            Self::Tanh => finish::<Tanh>(row, bias),
            Self::Relu => finish::<Relu>(row, bias),
        }
    }

    /// `grad[i] = f'(y[i]) * grad[i]`, on the thread pool for large
    /// tensors: the gradient before the function from the one after it.
    pub(crate) fn derivative_in_place(self, y: &[f32], grad: &mut [f32]) {
        match self {
            Self::Identity => {}
            Self::Sigmoid => vector_math::zip_in_place(y, grad, Sigmoid::derivative),
            Self::Tanh => vector_math::zip_in_place(y, grad, Tanh::derivative),
            Self::Relu => vector_math::zip_in_place(y, grad, Relu::derivative),
        }
    }
}

fn finish<F: FromItsOutput>(row: &mut [f32], bias: Option<&[f32]>) {
    match bias {
        Some(bias) => vector_math::zip_dispatch(bias, row, |b, v| F::forward(v + b)),
        None => vector_math::map_dispatch(row, F::forward),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Flex's relu and relu_backward, copied from burn-flex 0.22.1
    /// (`ops/activation.rs`), the reference for the fused ReLU.
    fn flex_relu(x: f32) -> f32 {
        if x.is_nan() || x > 0.0 { x } else { 0.0 }
    }

    #[test]
    fn relu_matches_flex_at_the_edges() {
        for x in [-1.0f32, -0.0, 0.0, 1e-38, 2.5, f32::NAN, f32::INFINITY] {
            assert_eq!(Relu::forward(x).to_bits(), flex_relu(x).to_bits(), "{x}");
        }
        assert_eq!(Relu::derivative(0.0, 3.0), 0.0);
        assert_eq!(Relu::derivative(2.0, 3.0), 3.0);
        assert!(Relu::derivative(f32::NAN, f32::NAN).is_nan());
    }

    #[test]
    fn a_row_gets_the_bias_then_the_function() {
        let bias = [1.0f32, -2.0, 0.5];
        let mut row = [0.5f32, 1.0, -0.5];
        Pointwise::Relu.finish_row(&mut row, Some(&bias));
        assert_eq!(row, [1.5, 0.0, 0.0]);
        let mut row = [0.5f32, 1.0, -0.5];
        Pointwise::Identity.finish_row(&mut row, Some(&bias));
        assert_eq!(row, [1.5, -1.0, 0.0]);
        let mut row = [0.0f32];
        Pointwise::Sigmoid.finish_row(&mut row, None);
        assert_eq!(row, [0.5]);
    }
}
