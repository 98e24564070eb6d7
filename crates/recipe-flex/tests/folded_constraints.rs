//! Constraints folded into the fused optimizers (each parameter constrained
//! right after its own update) train the same weights, to the bit, as
//! constraints applied by the training step after the optimizer.

mod common;

use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Tensor};
use burn::train::TrainStep;
use common::{net_and_batch, weights};
use recipe_data::ClassBatch;
use recipe_models::{ActivationConfig, Mlp};
use recipe_train::{
    Classifier, Constraint, GradientClipping, MaxNorm, OptimizerConfig, ParamSelector, ParamTensor,
    Regularizer, StepHooks, WeightConstraint, WeightPenalty, fold_hooks,
};
use serde::Serialize;

/// A constraint recipe does not have, as a user would write it: every
/// weight clipped to `[-limit, limit]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
struct ClipValue {
    limit: f32,
}

impl Constraint for ClipValue {
    fn name(&self) -> &str {
        "clip-value"
    }

    fn apply(&self, param: &ParamTensor) -> Tensor<2> {
        param.matrix.clone().clamp(-self.limit, self.limit)
    }
}

/// Max-norm tight enough to rescale units at every step, then the user's
/// clip on the first layer only (so that the order matters there).
fn constraints() -> Vec<WeightConstraint> {
    let first_layer = ParamSelector::weights(vec!["layers.0".into()]);
    vec![
        WeightConstraint::new(MaxNorm { max_norm: 0.6 }, ParamSelector::default()),
        WeightConstraint::new(ClipValue { limit: 0.25 }, first_layer),
    ]
}

fn penalties() -> Vec<WeightPenalty> {
    let with_biases = ParamSelector::weights_and_biases(Vec::new());
    vec![WeightPenalty::new(
        Regularizer::L1L2 { l1: 1e-3, l2: 1e-2 },
        with_biases,
    )]
}

fn train(
    mut classifier: Classifier<Mlp>,
    mut optimizer: ModuleOptimizer,
    batch: &ClassBatch<Tensor<2>>,
) -> Vec<u32> {
    for _ in 0..5 {
        let output = classifier.step(batch.clone());
        classifier = classifier.optimize(&mut optimizer, 0.5.into(), output.grads);
    }
    weights(&classifier.net)
        .into_iter()
        .map(f32::to_bits)
        .collect()
}

#[test]
fn folded_constraints_train_the_same_weights() {
    recipe_flex::install();
    let device = Device::flex().autodiff();
    let (net, batch) = net_and_batch(ActivationConfig::relu(), &device);
    for config in [OptimizerConfig::sgd(0.9), OptimizerConfig::adam()] {
        for penalties in [vec![], penalties()] {
            let hooks = StepHooks::new(penalties.clone(), constraints());
            let classifier = || Classifier::with_hooks(net.clone(), hooks.clone());
            let (folding, folded) = fold_hooks(&config, classifier());
            assert!(folded.hooks.constraints_folded, "{config:?}");
            let folded_weights = train(folded, folding, &batch);
            // The same hooks applied by the step: penalties in the step's
            // gradients, constraints after the whole optimizer step.
            let applied_weights = train(classifier(), config.init(), &batch);
            assert!(
                folded_weights == applied_weights,
                "{config:?}, {} penalties: the folded constraints trained other weights",
                penalties.len()
            );
            let unconstrained =
                Classifier::with_hooks(net.clone(), StepHooks::new(penalties, vec![]));
            assert!(
                train(unconstrained, config.init(), &batch) != folded_weights,
                "the constraints changed nothing"
            );
        }
    }
}

/// Gradient clipping reads the gradients between the step and the
/// optimizer, so penalties stay in the step; constraints still fold.
#[test]
fn constraints_fold_where_penalties_cannot() {
    recipe_flex::install();
    let device = Device::flex().autodiff();
    let (net, batch) = net_and_batch(ActivationConfig::relu(), &device);
    let mut hooks = StepHooks::new(penalties(), constraints());
    hooks.gradient_clipping = Some(GradientClipping::GlobalNorm(0.5));
    let config = OptimizerConfig::sgd(0.9);
    let classifier = || Classifier::with_hooks(net.clone(), hooks.clone());
    let (folding, folded) = fold_hooks(&config, classifier());
    assert!(folded.hooks.constraints_folded);
    assert!(folded.hooks.folded_penalties.is_none());
    assert!(train(folded, folding, &batch) == train(classifier(), config.init(), &batch));
}
