//! Any network that maps a batch of inputs to class logits, made trainable
//! on Burn's Learner, with the per-step hooks: penalties (in the loss, or in
//! closed form after `backward`), constraints after the step.

use std::collections::BTreeSet;
use std::sync::Arc;

use burn::module::{Module, ModuleDisplay};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Int, Tensor};
use burn::train::{ClassificationOutput, InferenceStep, TrainOutput, TrainStep};
use recipe_data::{BatchInputs, ClassBatch};
use recipe_models::Mlp;

use crate::penalty_gradient::SplitPenalties;
use crate::{
    GradientClipping, InitialLoss, LayerGradients, LayerUnits, OutputCheck, PenalizedOutput,
    PendingGradNorm, StepGradNorm, WeightAverager, WeightConstraint, WeightPenalty,
    mlp_unit_health,
};

/// A network that maps a batch of inputs to class logits.
///
/// Implement it for your own module and [`train`](crate::train) trains it
/// like recipe's own [`Mlp`]: `Input` is whatever the data's batcher hands
/// out (`Tensor<2>` `[batch, features]` for an MLP, `Tensor<4>`
/// `[batch, channels, rows, cols]` for a convolutional net; see
/// `examples/conv_mnist.rs`).
pub trait Classify: Module + ModuleDisplay + core::fmt::Display + 'static {
    /// The batch's inputs; the first dimension is the batch. Any tensor
    /// is one; a struct of your own implements [`BatchInputs`].
    type Input: BatchInputs + Clone + Send + Sync + core::fmt::Debug + 'static;

    /// # Shapes
    /// - inputs: `[batch, ...]`
    /// - output: `[batch, classes]` logits
    fn logits(&self, inputs: Self::Input) -> Tensor<2>;

    /// The loss that training minimizes and evaluation reports, from the
    /// logits and the `[batch]` targets: a scalar, the batch's mean.
    /// Mean cross-entropy unless the network supplies its own.
    fn loss(&self, logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
        CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, targets)
    }

    /// What [`Classify::loss`] computes, for `summary.json` and
    /// `history.csv`; name yours when you supply your own loss.
    fn loss_name(&self) -> String {
        "cross-entropy".to_string()
    }

    /// The health of the hidden units on a batch of inputs, per hidden
    /// layer (dead and saturated shares, for the diagnosis; recorded in
    /// `summary.json` after training). None measured unless the network
    /// supplies it: build each layer's entry with [`LayerUnits::measure`]
    /// from its linear output, its output and its activation.
    fn unit_health(&self, inputs: Self::Input) -> Vec<LayerUnits> {
        let _ = inputs;
        Vec::new()
    }
}

/// Mean cross-entropy against smoothed targets: `1 - alpha` on the target
/// class plus `alpha / classes` on every class.
pub fn smoothed_cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>, alpha: f32) -> Tensor<1> {
    CrossEntropyLossConfig::new()
        .with_smoothing(Some(alpha))
        .init(&logits.device())
        .forward(logits, targets)
}

impl Classify for Mlp {
    type Input = Tensor<2>;

    fn logits(&self, inputs: Tensor<2>) -> Tensor<2> {
        self.forward(inputs)
    }

    fn unit_health(&self, inputs: Tensor<2>) -> Vec<LayerUnits> {
        mlp_unit_health(self, inputs)
    }
}

/// What runs around each training step besides the gradient itself.
#[derive(Debug, Clone, Default)]
pub struct StepHooks {
    /// Penalties added to the loss before `backward`.
    pub penalties: Vec<WeightPenalty>,
    /// Constraints applied after each optimizer step, in order.
    pub constraints: Vec<WeightConstraint>,
    /// The output width against the class count, at the first step.
    pub output_check: Option<OutputCheck>,
    /// Label smoothing of the training cross-entropy (replacing the
    /// network's loss in training steps; validation steps keep it).
    pub label_smoothing: Option<f32>,
    /// Gradient clipping of the gradient the optimizer step applies (with
    /// several batches a step, their mean), in `optimize`.
    pub gradient_clipping: Option<GradientClipping>,
    /// Hands each clipping step's norm to the output of the batch that
    /// ended it, for the gradient-norm metrics; shared by the clones.
    pub pending_grad_norm: PendingGradNorm,
    /// Records each weight's gradient norm (before clipping) per step.
    pub layer_gradients: Option<LayerGradients>,
    /// Averages the weights after each step, and evaluates the average in
    /// validation steps.
    pub averager: Option<WeightAverager>,
    /// Records the first training step's data loss.
    pub initial_loss: Option<InitialLoss>,
    /// Multiplies the loss before `backward` (not in the metrics): `1 / K`
    /// for the K batches of one optimizer step (one per data-parallel
    /// device, over [`FitConfig::accumulate_grad_batches`](crate::FitConfig::accumulate_grad_batches)
    /// rounds), whose gradients Burn sums, so that a step takes their mean.
    pub gradient_scale: Option<f32>,
    /// The paths (in the network) of parameters whose L1/L2 penalty
    /// gradient the optimizer adds in its own loop: the step only reports
    /// those penalties' value. Set by the trainer when the installed
    /// kernels build such an optimizer
    /// ([`OptimizerKernels::build_folded`](crate::OptimizerKernels::build_folded)).
    pub folded_penalties: Option<Arc<BTreeSet<String>>>,
    /// Whether the optimizer applies every constraint itself, to each
    /// parameter right after its update
    /// ([`ConstrainedStep`](crate::ConstrainedStep)), so that the step
    /// leaves them out. Set by [`fold_hooks`](crate::fold_hooks) when the
    /// installed kernels build such an optimizer.
    pub constraints_folded: bool,
    /// Validation steps evaluate one sampled thinned net per example
    /// (dropout's masks drawn as in training) instead of the weight-scaled
    /// net: [`FitConfig::validate_thinned`](crate::FitConfig::validate_thinned).
    ///
    /// # Panics
    ///
    /// A validation step panics when its inputs cannot enable autodiff
    /// ([`BatchInputs::with_autodiff`] returns `None`); recipe's trainer
    /// refuses such a run with an error before its first epoch.
    pub validate_thinned: bool,
}

impl StepHooks {
    /// Hooks with these penalties and constraints.
    pub fn new(penalties: Vec<WeightPenalty>, constraints: Vec<WeightConstraint>) -> Self {
        Self {
            penalties,
            constraints,
            output_check: None,
            label_smoothing: None,
            gradient_clipping: None,
            pending_grad_norm: PendingGradNorm::default(),
            layer_gradients: None,
            averager: None,
            initial_loss: None,
            gradient_scale: None,
            folded_penalties: None,
            constraints_folded: false,
            validate_thinned: false,
        }
    }

    /// These hooks, checking the output width with `check` as well.
    pub fn with_output_check(self, check: OutputCheck) -> Self {
        Self {
            output_check: Some(check),
            ..self
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

    /// Logits, the network's loss and the targets of a batch. With an
    /// [`OutputCheck`] that rejects the logits, the loss is zero (and the
    /// Learner is stopping).
    pub fn forward_classification(&self, batch: ClassBatch<N::Input>) -> ClassificationOutput {
        self.forward_with(batch, false)
    }

    /// [`Classifier::forward_classification`], with the training loss
    /// (label smoothing, when asked) if `training`.
    fn forward_with(&self, batch: ClassBatch<N::Input>, training: bool) -> ClassificationOutput {
        self.forward_net(&self.net, batch, training)
    }

    /// [`Classifier::forward_with`] through `net` (the trained network, or
    /// its average in validation) under these hooks.
    fn forward_net(
        &self,
        net: &N,
        batch: ClassBatch<N::Input>,
        training: bool,
    ) -> ClassificationOutput {
        let output = if self.hooks.validate_thinned && !training {
            thinned_logits(net, batch.inputs)
        } else {
            net.logits(batch.inputs)
        };
        let rejected = self
            .hooks
            .output_check
            .as_ref()
            .is_some_and(|check| !check.accepts(&output));
        let smoothing = self.hooks.label_smoothing.filter(|_| training);
        let loss = match smoothing {
            _ if rejected => output.clone().sum() * 0.0,
            Some(alpha) => smoothed_cross_entropy(output.clone(), batch.targets.clone(), alpha),
            None => net.loss(output.clone(), batch.targets.clone()),
        };
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

/// The logits of `net` (a validation copy, without autodiff) with its
/// dropout active: one thinned net per example, the masks drawn from the
/// backend's generator as in training. Returned without autodiff, as the
/// weight-scaled pass's are. The inputs must enable autodiff
/// ([`BatchInputs::with_autodiff`]), which the trainer checks before the
/// first epoch.
fn thinned_logits<N: Classify>(net: &N, inputs: N::Input) -> Tensor<2> {
    let Some(inputs) = inputs.with_autodiff() else {
        panic!(
            "validate_thinned needs inputs that enable autodiff (BatchInputs::with_autodiff); \
             recipe's trainer refuses such a run before its first epoch"
        )
    };
    let device = net
        .devices()
        .first()
        .cloned()
        .unwrap_or_default()
        .autodiff();
    let thinned = net.clone().fork(&device).train();
    thinned.logits(inputs).detach().inner()
}

impl<N: Classify> TrainStep for Classifier<N> {
    type Input = ClassBatch<N::Input>;
    type Output = PenalizedOutput;

    fn step(&self, batch: ClassBatch<N::Input>) -> TrainOutput<PenalizedOutput> {
        let classification = self.forward_with(batch, true);
        if let Some(recorder) = &self.hooks.initial_loss {
            recorder.record_first(&classification.loss);
        }
        // The metrics see the data loss and the penalty apart; the gradient
        // is their sum's: through autodiff, or in closed form afterwards.
        let penalties = SplitPenalties::of(
            &self.net,
            &self.hooks.penalties,
            self.hooks.folded_penalties.as_deref(),
        );
        let loss = match &penalties.graph {
            Some(penalty) => classification.loss.clone() + penalty.clone(),
            None => classification.loss.clone(),
        };
        let scale = self.hooks.gradient_scale.unwrap_or(1.0);
        let loss = match self.hooks.gradient_scale {
            Some(scale) => loss * scale,
            None => loss,
        };
        let grads = GradientsParams::from_grads(loss.backward(), self);
        // Reported without autodiff, as the closed forms are computed.
        let graph_penalty = penalties.graph.clone().map(|p| p.detach().inner());
        let (grads, closed_form_penalty) = penalties.add_gradients(grads, scale);
        let penalty = match (graph_penalty, closed_form_penalty) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        if let Some(recorder) = &self.hooks.layer_gradients {
            let unscaled = self
                .hooks
                .gradient_scale
                .map_or(1.0, |s| 1.0 / f64::from(s));
            recorder.record_step_scaled(&self.net, &grads, unscaled);
        }
        let grad_norm = match self.hooks.gradient_clipping {
            Some(_) => self.hooks.pending_grad_norm.open(),
            None => StepGradNorm::default(),
        };
        let item = PenalizedOutput {
            classification,
            penalty: penalty.map(|p| p.detach()),
            grad_norm,
        };
        TrainOutput { grads, item }
    }

    fn optimize(
        self,
        optim: &mut ModuleOptimizer,
        lr: ModuleLearningRate,
        grads: GradientsParams,
    ) -> Self {
        // Here, not in `step`: with several devices or accumulated batches
        // only now is the step's whole gradient known.
        let grads = match &self.hooks.gradient_clipping {
            Some(clipping) => {
                let (grads, norm) = clipping.clip(&self, grads);
                if let Some(norm) = norm {
                    self.hooks.pending_grad_norm.fill(norm);
                }
                grads
            }
            None => grads,
        };
        let stepped = optim.step(lr, self, grads);
        let stepped = if stepped.hooks.constraints.is_empty() || stepped.hooks.constraints_folded {
            stepped
        } else {
            Self {
                net: stepped.hooks.constrain(stepped.net),
                hooks: stepped.hooks,
            }
        };
        if let Some(averager) = &stepped.hooks.averager {
            averager.after_step(&stepped.net);
        }
        stepped
    }
}

impl<N: Classify> InferenceStep for Classifier<N> {
    type Input = ClassBatch<N::Input>;
    type Output = ClassificationOutput;

    fn step(&self, batch: ClassBatch<N::Input>) -> ClassificationOutput {
        let Some(averager) = &self.hooks.averager else {
            return self.forward_classification(batch);
        };
        if !averager.validates_with_average() {
            averager.on_validation_batch(&self.net, batch.inputs.clone(), batch.targets.clone());
            return self.forward_classification(batch);
        }
        // Until the average exists (SWA before its first epoch) the
        // trained weights stand in for it.
        let Some(averaged) = averager.validation_net(&self.net) else {
            return self.forward_classification(batch);
        };
        let output = self.forward_net(&averaged, batch, false);
        averager.record_validation(
            output.loss.clone(),
            output.output.clone(),
            output.targets.clone(),
        );
        output
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, TensorData};

    use super::*;

    /// By hand: logits (ln 3, 0) give probabilities (3/4, 1/4); with
    /// alpha 0.2 the target class 0 becomes (0.9, 0.1), so the loss is
    /// -(0.9 ln 0.75 + 0.1 ln 0.25) = 0.397544; alpha 0 is plain
    /// cross-entropy, -ln 0.75 = 0.287682.
    #[test]
    fn label_smoothing_matches_the_hand_computation() {
        let device = Device::flex();
        let logits = Tensor::<2>::from_data(TensorData::new(vec![3f32.ln(), 0.0], [1, 2]), &device);
        let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64], [1]), &device);
        let smoothed =
            smoothed_cross_entropy(logits.clone(), targets.clone(), 0.2).into_scalar::<f32>();
        assert!((smoothed - 0.397_544).abs() < 1e-5, "{smoothed}");
        let plain = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, targets)
            .into_scalar::<f32>();
        assert!((plain - 0.287_682).abs() < 1e-5, "{plain}");
    }

    /// A validation step of `net` (as the Learner hands it over: a plain
    /// `valid()` copy) on 64 random inputs, with or without thinned nets.
    fn validation_loss(net: &Mlp, thinned: bool, device: &Device) -> f32 {
        let hooks = StepHooks {
            validate_thinned: thinned,
            ..StepHooks::default()
        };
        let classifier = Classifier::with_hooks(net.valid(), hooks);
        let values = (0..64 * 20).map(|i| ((i * 37) % 101) as f32 / 101.0);
        let inputs = Tensor::<2>::from_data(TensorData::new(values.collect(), [64, 20]), device);
        let targets = Tensor::<1, Int>::from_data(
            TensorData::new((0..64).map(|i| i % 4).collect::<Vec<i64>>(), [64]),
            device,
        );
        let output = InferenceStep::step(&classifier, ClassBatch { inputs, targets });
        assert!(
            !output.loss.is_autodiff(),
            "the Learner's metrics take plain tensors"
        );
        output.loss.into_scalar::<f32>()
    }

    /// Validating thinned nets draws dropout masks (a different loss from
    /// the weight-scaled pass, and from one draw to the next); without
    /// dropout the thinned net is the net.
    #[test]
    fn thinned_validation_draws_masks_only_where_there_is_dropout() {
        let device = Device::flex();
        let trained = |dropout| {
            let net = recipe_models::MlpConfig::new(20, vec![32], 4)
                .with_dropout(dropout)
                .init(&device.clone().autodiff())
                .unwrap();
            net.train()
        };
        let with_dropout = trained(0.5);
        let scaled = validation_loss(&with_dropout, false, &device);
        let thinned = validation_loss(&with_dropout, true, &device);
        let thinned_again = validation_loss(&with_dropout, true, &device);
        assert_ne!(scaled, thinned);
        assert_ne!(thinned, thinned_again, "the masks are drawn afresh");
        let without = trained(0.0);
        assert_eq!(
            validation_loss(&without, false, &device),
            validation_loss(&without, true, &device)
        );
    }
}
