//! Constraints applied inside the optimizer: each parameter is projected
//! right after its own update, while its new values are still in cache.
//!
//! A [`Constraint`] runs after every optimizer step. Applied by the
//! training step after the optimizer has updated *every* parameter, it
//! reads each weight matrix again once the updates of the layers after it
//! (their weights, gradients and optimizer moments) have pushed it out of
//! the core's cache; applied by the optimizer to each parameter as soon as
//! that parameter is updated, it reads values that were just written. The
//! arithmetic is the same (the same constraints on the same updated values,
//! in the same order), so the weights are the same to the bit; only the
//! time at which each parameter is constrained within the step changes.

use std::fmt;
use std::sync::Arc;

use burn::module::Module;
use burn::optim::{LearningRate, Optimizer};
use burn::tensor::{Device, Tensor};

use crate::param::{ParamTensor, param_infos};
use crate::{Constraint, ParamInfo, WeightConstraint};

/// Every constraint that applies to one parameter, in the order the
/// training's constraints list them.
#[derive(Clone)]
pub struct ParamConstraints {
    /// The parameter.
    pub info: ParamInfo,
    /// Its constraints, applied in this order.
    pub constraints: Vec<Arc<dyn Constraint>>,
}

impl ParamConstraints {
    /// Each parameter of `module` that any of `constraints` selects, with
    /// those that select it, in their order. Reads only the parameters'
    /// shapes (a network whose weights Burn has not drawn yet stays so).
    pub fn of<M: Module>(module: &M, constraints: &[WeightConstraint]) -> Vec<Self> {
        if constraints.is_empty() {
            return Vec::new();
        }
        param_infos(module)
            .into_iter()
            .filter_map(|info| {
                let selecting: Vec<Arc<dyn Constraint>> = constraints
                    .iter()
                    .filter(|c| c.selector.selects(&info))
                    .map(|c| c.constraint.clone())
                    .collect();
                (!selecting.is_empty()).then_some(Self {
                    info,
                    constraints: selecting,
                })
            })
            .collect()
    }

    /// The parameter's `values` (of its own shape, rank `D`, without
    /// autodiff) after each constraint in turn.
    pub fn apply<const D: usize>(&self, values: Tensor<D>) -> Tensor<D> {
        let mut view = ParamTensor::from_param(self.info.clone(), values);
        for constraint in &self.constraints {
            view.matrix = constraint.apply(&view);
        }
        view.to_param_shape::<D>(view.matrix.clone())
    }
}

impl fmt::Debug for ParamConstraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.constraints.iter().map(|c| c.name()).collect();
        f.debug_struct("ParamConstraints")
            .field("path", &self.info.path)
            .field("constraints", &names)
            .finish()
    }
}

/// An optimizer for one parameter whose every step ends with that
/// parameter's constraints: `optimizer`'s update, then
/// [`ParamConstraints::apply`] on the new values. Its state is
/// `optimizer`'s, so its records are the same as `optimizer`'s and a run
/// resumes from either.
#[derive(Clone, Debug)]
pub struct ConstrainedStep<O> {
    optimizer: O,
    constraints: Arc<ParamConstraints>,
}

impl<O: Optimizer> ConstrainedStep<O> {
    /// `optimizer`, followed by `constraints` after each of its steps (use
    /// it for the one parameter the constraints describe, through a
    /// `ParamGroup` of that parameter's path).
    pub fn new(optimizer: O, constraints: ParamConstraints) -> Self {
        Self {
            optimizer,
            constraints: Arc::new(constraints),
        }
    }
}

impl<O: Optimizer> Optimizer for ConstrainedStep<O> {
    type State<const D: usize> = O::State<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let (updated, state) = self.optimizer.step(lr, tensor, grad, state);
        (self.constraints.apply(updated), state)
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        O::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FusedSgd, MaxNorm, NonNeg};

    fn info(shape: Vec<usize>) -> ParamInfo {
        ParamInfo::new("layer.weight", "Linear", shape)
    }

    /// SGD (lr 1) moves the weights `[[3, -1], [4, 0.5]]` by the gradient
    /// `[[-1, 1], [-1, 0]]` to `[[4, -2], [5, 0.5]]`; non-neg then zeroes
    /// the negatives and max-norm 1 scales column 0 (norm √41) to norm 1 and
    /// column 1 (0, 0.5) not at all (by hand). The order matters: max-norm
    /// first would have scaled column 1 (norm √4.25) before clipping it.
    #[test]
    fn the_update_then_each_constraint_in_order() {
        let device = Device::flex();
        let constraints = ParamConstraints {
            info: info(vec![2, 2]),
            constraints: vec![Arc::new(NonNeg), Arc::new(MaxNorm { max_norm: 1.0 })],
        };
        let step = ConstrainedStep::new(FusedSgd::plain(), constraints);
        let weights = Tensor::<2>::from_floats([[3.0, -1.0], [4.0, 0.5]], &device);
        let grad = Tensor::<2>::from_floats([[-1.0, 1.0], [-1.0, 0.0]], &device);
        let (updated, _) = step.step(1.0, weights, grad, None);
        let values: Vec<f32> = updated.into_data().try_to_vec().unwrap();
        let norm = 41f32.sqrt();
        let expected = [4.0 / norm, 0.0, 5.0 / norm, 0.5];
        for (got, want) in values.iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{values:?} against {expected:?}");
        }
    }

    /// A convolution kernel `[2 filters, 1, 1, 2]` keeps its shape, and
    /// max-norm bounds each filter (a row of its matrix view), not each
    /// column: filter 0 (3, 4) becomes (0.6, 0.8), filter 1 stays.
    #[test]
    fn parameters_of_other_ranks_keep_their_shape_and_units() {
        let device = Device::flex();
        let constraints = ParamConstraints {
            info: ParamInfo::new("conv.weight", "Conv2d", vec![2, 1, 1, 2]),
            constraints: vec![Arc::new(MaxNorm { max_norm: 1.0 })],
        };
        let kernel = Tensor::<4>::from_floats([[[[3.0, 4.0]]], [[[0.3, 0.4]]]], &device);
        let constrained = constraints.apply(kernel);
        assert_eq!(constrained.dims(), [2, 1, 1, 2]);
        let values: Vec<f32> = constrained.into_data().try_to_vec().unwrap();
        for (got, want) in values.iter().zip([0.6, 0.8, 0.3, 0.4]) {
            assert!((got - want).abs() < 1e-6, "{values:?}");
        }
    }
}
