//! Any network that maps images to logits, made trainable on Burn's Learner,
//! with the per-step hooks: penalties in the loss, max-norm after the step.

use burn::module::{Module, ModuleDisplay};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::Tensor;
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use recipe_data::ImageBatch;
use recipe_models::Mlp;

use crate::{PenalizedOutput, WeightConstraint, WeightPenalty};

/// A network that maps a batch of flattened images to class logits.
///
/// Implement it for your own module (a new activation, a new block) and
/// [`train`](crate::train) trains it like recipe's own [`Mlp`]; see
/// `examples/custom_activation.rs`.
pub trait Classify: Module + ModuleDisplay + core::fmt::Display + 'static {
    /// # Shapes
    /// - images: `[batch, features]`
    /// - output: `[batch, classes]` logits
    fn logits(&self, images: Tensor<2>) -> Tensor<2>;
}

impl Classify for Mlp {
    fn logits(&self, images: Tensor<2>) -> Tensor<2> {
        self.forward(images)
    }
}

/// What runs around each training step besides the gradient itself.
#[derive(Debug, Clone, Default)]
pub struct StepHooks {
    /// Penalties added to the loss before `backward`.
    pub penalties: Vec<WeightPenalty>,
    /// Constraints applied after each optimizer step, in order.
    pub constraints: Vec<WeightConstraint>,
}

impl StepHooks {
    /// Hooks with these penalties and constraints.
    pub fn new(penalties: Vec<WeightPenalty>, constraints: Vec<WeightConstraint>) -> Self {
        Self {
            penalties,
            constraints,
        }
    }

    /// Applies every constraint to `net`, in order.
    pub fn constrain<M: Module>(&self, net: M) -> M {
        self.constraints
            .iter()
            .fold(net, |net, constraint| constraint.apply(net))
    }
}

/// Wraps a [`Classify`] network with a cross-entropy loss and the step hooks
/// so that Burn's Learner can train it.
#[derive(Module, Debug)]
pub struct Classifier<N> {
    /// The network.
    pub net: N,
    /// Penalties and constraints.
    #[module(skip)]
    pub hooks: StepHooks,
}

impl<N: Classify> Classifier<N> {
    /// Wraps `net` with no hooks.
    pub fn new(net: N) -> Self {
        Self::with_hooks(net, StepHooks::default())
    }

    /// Wraps `net` with hooks.
    pub fn with_hooks(net: N, hooks: StepHooks) -> Self {
        Self { net, hooks }
    }

    /// Logits, mean cross-entropy loss and targets of a batch.
    pub fn forward_classification(&self, batch: ImageBatch) -> ClassificationOutput {
        let output = self.net.logits(batch.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&output.device())
            .forward(output.clone(), batch.targets.clone());
        ClassificationOutput {
            loss,
            output,
            targets: batch.targets,
        }
    }

    /// The total penalty of the network, if any penalty selects a parameter.
    pub fn penalty(&self) -> Option<Tensor<1>> {
        self.hooks
            .penalties
            .iter()
            .filter_map(|p| p.of(&self.net))
            .reduce(|a, b| a + b)
    }
}

impl<N: Classify> TrainStep for Classifier<N> {
    type Input = ImageBatch;
    type Output = PenalizedOutput;

    fn step(&self, batch: ImageBatch) -> TrainOutput<PenalizedOutput> {
        let classification = self.forward_classification(batch);
        // The metrics see the data loss and the penalty apart; the gradient
        // comes from their sum.
        let penalty = self.penalty();
        let loss = match &penalty {
            Some(penalty) => classification.loss.clone() + penalty.clone(),
            None => classification.loss.clone(),
        };
        let item = PenalizedOutput {
            classification,
            penalty: penalty.map(|p| p.detach()),
        };
        TrainOutput::new(self, loss.backward(), item)
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        let stepped = optim.step(lr, self, grads);
        if stepped.hooks.constraints.is_empty() {
            return stepped;
        }
        Self {
            net: stepped.hooks.constrain(stepped.net),
            hooks: stepped.hooks,
        }
    }
}

impl<N: Classify> InferenceStep for Classifier<N> {
    type Input = ImageBatch;
    type Output = ClassificationOutput;

    fn step(&self, batch: ImageBatch) -> ClassificationOutput {
        self.forward_classification(batch)
    }
}
