//! Penalties whose gradient has a closed form, added to the gradients after
//! `backward` instead of through an autodiff graph.
//!
//! Through autodiff, `l1 Σ|w| + l2/2 Σw²` costs a graph of its own per
//! parameter (absolute value, square, two sums, their backward passes and
//! the accumulation into the loss's gradient): a third of a training step
//! on the lecture's ladder net. Its gradient is `l1 sign(w) + l2 w`, known
//! in advance. A [`Penalty`](crate::Penalty) that says so through
//! [`Penalty::closed_form`](crate::Penalty::closed_form) is computed here
//! instead: [`PenaltyGradient::ElasticNet`] in one pass over each weight and
//! its gradient where a backend crate installed a kernel for it
//! ([`OptimizerKernels::elastic_net`](crate::OptimizerKernels::elastic_net)),
//! in tensor operations elsewhere; [`PenaltyGradient::Tensors`] for any
//! other closed form a user writes.

use burn::module::{ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

use std::collections::BTreeSet;

use crate::ParamInfo;
use crate::WeightPenalty;
use crate::optimizer_kernels::{installed_elastic_net, installed_elastic_net_value};
use crate::param::{ParamTensor, PathStack};

/// A penalty's value and gradient in one parameter, in closed form.
#[derive(Debug, Clone)]
#[non_exhaustive]
// Built once per parameter and step and consumed at once: boxing the
// tensors would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum PenaltyGradient {
    /// `l1 Σ|w| + l2/2 Σw²`, gradient `l1 sign(w) + l2 w`: computed in one
    /// fused pass where a kernel is installed.
    ElasticNet {
        /// The L1 strength.
        l1: f64,
        /// The L2 strength.
        l2: f64,
    },
    /// Any other closed form: the value, shape `[1]`, and the gradient,
    /// shaped like [`ParamTensor::matrix`].
    Tensors {
        /// The penalty of this parameter.
        value: Tensor<1>,
        /// Its gradient in the parameter's values.
        gradient: Tensor<2>,
    },
}

impl PenaltyGradient {
    /// `ElasticNet`'s value and gradient in tensor operations (what runs
    /// where no kernel is installed).
    pub fn elastic_net_tensors(values: Tensor<2>, l1: f64, l2: f64) -> (Tensor<1>, Tensor<2>) {
        let mut value = values.clone().sum().mul_scalar(0.0);
        let mut gradient = values.zeros_like();
        if l1 != 0.0 {
            value = value + values.clone().abs().sum().mul_scalar(l1);
            gradient = gradient + values.clone().sign().mul_scalar(l1);
        }
        if l2 != 0.0 {
            value = value + values.clone().square().sum().mul_scalar(l2 / 2.0);
            gradient = gradient + values.mul_scalar(l2);
        }
        (value, gradient)
    }
}

/// An L1/L2 penalty an optimizer adds to each gradient of its parameters
/// before the update (folded: [`FoldedHooks`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FoldedStrengths {
    pub(crate) l1: f64,
    pub(crate) l2: f64,
}

impl FoldedStrengths {
    /// `grad + l1 sign(w) + l2 w` in tensor operations, the arithmetic of
    /// the training step's penalty gradient (for tensors no installed
    /// kernel takes).
    pub(crate) fn add_to<const D: usize>(self, weights: &Tensor<D>, grad: Tensor<D>) -> Tensor<D> {
        let shape = grad.shape();
        let matrix = weights.clone().flatten::<1>(0, D - 1).unsqueeze_dim::<2>(0);
        let (_, gradient) = PenaltyGradient::elastic_net_tensors(matrix, self.l1, self.l2);
        grad + gradient.reshape(shape)
    }
}

/// Adds one closed-form penalty's gradient, times the scale, to the
/// gradients and returns its value (`None` when the parameter has no
/// gradient: frozen).
type Addition = Box<dyn FnOnce(&mut GradientsParams, f32) -> Option<Tensor<1>>>;

/// The penalties of one training step, split: those without a closed form
/// as a differentiable sum for the loss, the others as gradient additions
/// to make after `backward`.
pub(crate) struct SplitPenalties {
    /// The sum of the penalties computed through autodiff.
    pub(crate) graph: Option<Tensor<1>>,
    additions: Vec<Addition>,
}

impl SplitPenalties {
    /// Splits `penalties` over the parameters of `module` they select;
    /// the elastic-net penalties of the parameters at `folded` paths are
    /// the optimizer's to add ([`folded_penalties`]): only their value is
    /// computed here.
    pub(crate) fn of<M: burn::module::Module>(
        module: &M,
        penalties: &[WeightPenalty],
        folded: Option<&BTreeSet<String>>,
    ) -> Self {
        let mut splitter = Splitter {
            stack: PathStack::default(),
            penalties,
            folded,
            split: Self {
                graph: None,
                additions: Vec::new(),
            },
        };
        module.visit(&mut splitter);
        splitter.split
    }

    /// Adds the closed-form gradients, times `scale`, to `grads`; returns
    /// them with the closed-form penalties' total value (unscaled).
    pub(crate) fn add_gradients(
        self,
        mut grads: GradientsParams,
        scale: f32,
    ) -> (GradientsParams, Option<Tensor<1>>) {
        let values = self
            .additions
            .into_iter()
            .filter_map(|add| add(&mut grads, scale));
        let total = values.reduce(|a, b| a + b);
        (grads, total)
    }
}

fn sum(total: Option<Tensor<1>>, value: Tensor<1>) -> Option<Tensor<1>> {
    Some(match total {
        Some(total) => total + value,
        None => value,
    })
}

struct Splitter<'a> {
    stack: PathStack,
    penalties: &'a [WeightPenalty],
    folded: Option<&'a BTreeSet<String>>,
    split: SplitPenalties,
}

impl Splitter<'_> {
    /// For a parameter whose penalties the optimizer adds (all elastic
    /// nets), their summed value in one read of the weights (as many reads
    /// as penalties otherwise); `false`, adding nothing, if one of them
    /// turns out not to be an elastic net.
    fn add_folded_value<const D: usize>(
        &mut self,
        param: &Param<Tensor<D>>,
        info: &ParamInfo,
    ) -> bool {
        let weights = param.val().inner();
        let values = ParamTensor::from_param(info.clone(), weights.clone());
        let strengths = self
            .penalties
            .iter()
            .filter(|p| p.selector.selects(info))
            .try_fold((0.0, 0.0), |(l1, l2), p| {
                match p.penalty.closed_form(&values) {
                    Some(PenaltyGradient::ElasticNet { l1: a, l2: b }) => Some((l1 + a, l2 + b)),
                    _ => None,
                }
            });
        let Some((l1, l2)) = strengths else {
            return false;
        };
        self.add_value(weights, l1, l2);
        true
    }

    /// The value of an elastic net whose gradient the optimizer adds.
    fn add_value<const D: usize>(&mut self, weights: Tensor<D>, l1: f64, l2: f64) {
        let weights = weights.flatten::<1>(0, D - 1);
        self.split
            .additions
            .push(Box::new(move |_: &mut GradientsParams, _| {
                Some(elastic_net_value(weights, l1, l2))
            }));
    }
}

impl ModuleVisitor for Splitter<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let info = self.stack.info(param);
        let folded = self.folded.is_some_and(|paths| paths.contains(&info.path));
        if folded && self.add_folded_value(param, &info) {
            return;
        }
        for weight_penalty in self.penalties {
            if !weight_penalty.selector.selects(&info) {
                continue;
            }
            // Closed forms are computed without autodiff, like the
            // gradients they are added to.
            let weights = param.val().inner();
            let inner_values = ParamTensor::from_param(info.clone(), weights.clone());
            match weight_penalty.penalty.closed_form(&inner_values) {
                Some(PenaltyGradient::ElasticNet { l1, l2 }) if folded => {
                    self.add_value(weights, l1, l2);
                }
                None => {
                    let values = ParamTensor::from_param(info.clone(), param.val());
                    let term = weight_penalty.penalty.penalty(&values);
                    self.split.graph = sum(self.split.graph.take(), term);
                }
                Some(form) => {
                    let id = param.id;
                    let values = inner_values;
                    self.split.additions.push(Box::new(
                        move |grads: &mut GradientsParams, scale| {
                            let grad = grads.remove::<D>(id)?;
                            let (value, grad) = match form {
                                PenaltyGradient::ElasticNet { l1, l2 } => {
                                    elastic_net(weights, grad, l1, l2, scale)
                                }
                                PenaltyGradient::Tensors { value, gradient } => {
                                    let gradient = values.to_param_shape::<D>(gradient.inner());
                                    (value.inner(), grad + gradient.mul_scalar(scale))
                                }
                            };
                            grads.register(id, grad);
                            Some(value)
                        },
                    ));
                }
            }
        }
    }
}

/// `l1 Σ|w| + l2/2 Σw²`: the installed kernel, or tensor operations.
fn elastic_net_value(weights: Tensor<1>, l1: f64, l2: f64) -> Tensor<1> {
    installed_elastic_net_value(&weights, l1, l2).unwrap_or_else(|| {
        let matrix = weights.unsqueeze_dim::<2>(0);
        PenaltyGradient::elastic_net_tensors(matrix, l1, l2).0
    })
}

/// The parameters of `net` whose every penalty is an elastic net, with the
/// sum of those penalties' strengths: what an optimizer can add to their
/// gradients itself.
///
/// The penalties are asked on parameters of zeros of each parameter's
/// shape: the weights may not be drawn yet (Burn draws them at their first
/// use), and drawing them here would take other random numbers than the
/// run's first step.
pub(crate) fn folded_penalties<M: burn::module::Module>(
    net: &M,
    penalties: &[WeightPenalty],
) -> Vec<(String, f64, f64)> {
    let mut finder = FoldFinder {
        stack: PathStack::default(),
        penalties,
        folded: Vec::new(),
    };
    net.visit(&mut finder);
    finder.folded
}

struct FoldFinder<'a> {
    stack: PathStack,
    penalties: &'a [WeightPenalty],
    folded: Vec<(String, f64, f64)>,
}

impl ModuleVisitor for FoldFinder<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.stack.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.stack.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let info = self.stack.info(param);
        let mut selecting = self
            .penalties
            .iter()
            .filter(|p| p.selector.selects(&info))
            .peekable();
        if selecting.peek().is_none() {
            return;
        }
        let zeros = Tensor::<D>::zeros(param.lazy_shape(), &param.lazy_device().inner());
        let values = ParamTensor::from_param(info.clone(), zeros);
        let sum = selecting.try_fold((0.0, 0.0), |(l1, l2), p| {
            match p.penalty.closed_form(&values) {
                Some(PenaltyGradient::ElasticNet { l1: a, l2: b }) => Some((l1 + a, l2 + b)),
                _ => None,
            }
        });
        if let Some((l1, l2)) = sum {
            self.folded.push((info.path, l1, l2));
        }
    }
}

/// `grad + scale * (l1 sign(w) + l2 w)` and `l1 Σ|w| + l2/2 Σw²`: the
/// installed kernel, or tensor operations.
fn elastic_net<const D: usize>(
    weights: Tensor<D>,
    grad: Tensor<D>,
    l1: f64,
    l2: f64,
    scale: f32,
) -> (Tensor<1>, Tensor<D>) {
    let shape = grad.shape();
    let flat_weights = weights.clone().flatten::<1>(0, D - 1);
    let flat_grad = grad.flatten::<1>(0, D - 1);
    match installed_elastic_net(&flat_weights, flat_grad, l1, l2, scale) {
        Ok((value, grad)) => (value, grad.reshape(shape)),
        Err(flat_grad) => {
            let matrix = flat_weights.unsqueeze_dim::<2>(0);
            let (value, gradient) = PenaltyGradient::elastic_net_tensors(matrix, l1, l2);
            let gradient = gradient.flatten::<1>(0, 1).mul_scalar(scale);
            (value, (flat_grad + gradient).reshape(shape))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OptimizerConfig;
    use crate::{Classifier, ParamSelector, Penalty, Regularizer, StepHooks};
    use burn::tensor::{Device, Int, TensorData};
    use burn::train::TrainStep;
    use recipe_data::ClassBatch;
    use recipe_models::{ActivationConfig, Mlp, MlpConfig};
    use serde::{Deserialize, Serialize};

    /// A penalty through autodiff only: `inner`'s value with no closed form.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct GraphOnly(Regularizer);

    impl Penalty for GraphOnly {
        fn name(&self) -> &str {
            "graph-only"
        }
        fn penalty(&self, param: &ParamTensor) -> Tensor<1> {
            self.0.penalty(param)
        }
    }

    /// A user's closed form: `lambda/2 Σ w²` per unit scaled by the unit's
    /// index + 1, as value and gradient tensors.
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct RampedL2 {
        lambda: f64,
        closed: bool,
    }

    impl RampedL2 {
        fn ramp(param: &ParamTensor) -> Tensor<2> {
            let units = param.matrix.dims()[param.unit_dim];
            let ramp = Tensor::<1, Int>::arange(1..units as i64 + 1, &param.matrix.device());
            let ramp = ramp.float();
            match param.unit_dim {
                0 => ramp.unsqueeze_dim(1),
                _ => ramp.unsqueeze_dim(0),
            }
        }
    }

    impl Penalty for RampedL2 {
        fn name(&self) -> &str {
            "ramped-l2"
        }
        fn penalty(&self, param: &ParamTensor) -> Tensor<1> {
            let squares = param.matrix.clone().square() * Self::ramp(param);
            squares.sum().mul_scalar(self.lambda / 2.0)
        }
        fn closed_form(&self, param: &ParamTensor) -> Option<PenaltyGradient> {
            self.closed.then(|| PenaltyGradient::Tensors {
                value: self.penalty(param).detach(),
                gradient: param.matrix.clone().detach() * Self::ramp(param) * self.lambda,
            })
        }
    }

    fn with_biases() -> ParamSelector {
        ParamSelector::weights_and_biases(Vec::new())
    }

    /// The network with its weights drawn once, now: Burn's random numbers
    /// are shared by the test threads, so every run must start from these
    /// same drawn weights rather than draw its own.
    fn net(device: &Device) -> Mlp {
        let net = MlpConfig::new(6, vec![8, 5], 3)
            .with_activation(vec![ActivationConfig::sigmoid()])
            .init(device)
            .unwrap();
        let _ = net.forward(Tensor::zeros([1, 6], device));
        net
    }

    /// Every weight's gradient and the penalty of one training step.
    fn step(net: &Mlp, penalties: Vec<WeightPenalty>, scale: Option<f32>) -> (Vec<f32>, f32) {
        let device = net.output.weight.device();
        let mut hooks = StepHooks::new(penalties, Vec::new());
        hooks.gradient_scale = scale;
        let classifier = Classifier::with_hooks(net.clone(), hooks);
        // Fixed inputs, not drawn (see `net`).
        let inputs: Vec<f32> = (0..60)
            .map(|i| ((i * 37) % 17) as f32 / 17.0 - 0.5)
            .collect();
        let batch = ClassBatch {
            inputs: Tensor::<2>::from_data(TensorData::new(inputs, [10, 6]), &device),
            targets: Tensor::<1, Int>::from_ints([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], &device),
        };
        let output = classifier.clone().step(batch);
        let mut gradients = Vec::new();
        let weights = net.layers.iter().map(|l| &l.linear).chain([&net.output]);
        for linear in weights {
            for grad in [
                output.grads.get::<2>(linear.weight.id).unwrap().into_data(),
                output
                    .grads
                    .get::<1>(linear.bias.as_ref().unwrap().id)
                    .unwrap()
                    .into_data(),
            ] {
                gradients.extend(grad.try_to_vec::<f32>().unwrap());
            }
        }
        let penalty = output.item.penalty.map_or(0.0, |p| p.into_scalar());
        // The optimizer takes the gradients as they are (a tracked tensor
        // among them would make the stepped weights non-leaf: a panic).
        let mut optimizer = OptimizerConfig::adam().init();
        let stepped = classifier.optimize(&mut optimizer, 0.01.into(), output.grads);
        assert!(stepped.net.output.weight.val().is_require_grad());
        (gradients, penalty)
    }

    fn assert_close(a: &(Vec<f32>, f32), b: &(Vec<f32>, f32), what: &str) {
        assert_eq!(a.0.len(), b.0.len());
        for (i, (x, y)) in a.0.iter().zip(&b.0).enumerate() {
            assert!(
                (x - y).abs() <= 1e-6 + 1e-5 * y.abs(),
                "{what}: gradient {i}: {x} vs {y}"
            );
        }
        assert!(
            (a.1 - b.1).abs() <= 1e-5 * b.1.abs(),
            "{what}: penalty {} vs {}",
            a.1,
            b.1
        );
    }

    /// The closed forms give the gradient and the penalty autodiff gives,
    /// for the built-in L1 + L2 (on weights and, in a second penalty, on
    /// biases) and for a user's own closed form; with and without the
    /// data-parallel loss scale.
    #[test]
    fn closed_forms_agree_with_autodiff() {
        let device = Device::flex().autodiff();
        let net = net(&device);
        let elastic = Regularizer::L1L2 { l1: 1e-3, l2: 1e-2 };
        let on_biases = Regularizer::L2 { lambda: 0.5 };
        let user = |closed| {
            vec![WeightPenalty::new(
                RampedL2 {
                    lambda: 0.1,
                    closed,
                },
                ParamSelector::default(),
            )]
        };
        for scale in [None, Some(0.5)] {
            let closed = step(
                &net,
                vec![
                    WeightPenalty::new(elastic, ParamSelector::default()),
                    WeightPenalty::new(on_biases, with_biases()),
                ],
                scale,
            );
            let graph = step(
                &net,
                vec![
                    WeightPenalty::new(GraphOnly(elastic), ParamSelector::default()),
                    WeightPenalty::new(GraphOnly(on_biases), with_biases()),
                ],
                scale,
            );
            assert_close(&closed, &graph, "elastic net");
            let none = step(&net, Vec::new(), scale);
            assert!(closed.0 != none.0, "the penalty changed no gradient");
            // The closed forms really skip the graph.
            let elastic_only = [WeightPenalty::new(elastic, ParamSelector::default())];
            assert!(
                SplitPenalties::of(&net, &elastic_only, None)
                    .graph
                    .is_none()
            );
            assert!(SplitPenalties::of(&net, &user(true), None).graph.is_none());
            assert!(SplitPenalties::of(&net, &user(false), None).graph.is_some());
            let user = |closed| {
                vec![WeightPenalty::new(
                    RampedL2 {
                        lambda: 0.1,
                        closed,
                    },
                    ParamSelector::default(),
                )]
            };
            assert_close(
                &step(&net, user(true), scale),
                &step(&net, user(false), scale),
                "user's closed form",
            );
        }
    }
}
