//! A parameter whose penalties the optimizer adds is read once per step
//! for their value, however many elastic-net penalties select it: the
//! step asks the installed kernels' `elastic_net_value` once per
//! parameter, with the penalties' summed strengths. Its own process:
//! installing kernels is process-wide.

use std::sync::atomic::{AtomicUsize, Ordering};

use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Int, Tensor};
use burn::train::TrainStep;
use recipe_data::ClassBatch;
use recipe_models::{Mlp, MlpConfig};
use recipe_train::{
    Classifier, FoldedHooks, OptimizerConfig, OptimizerKernels, ParamSelector, Regularizer,
    StepHooks, WeightPenalty, fold_hooks, fused_optimizer_folded, install_optimizer_kernels,
};

/// The strengths of every value the step asked for.
static VALUES_ASKED: std::sync::Mutex<Vec<(f64, f64)>> = std::sync::Mutex::new(Vec::new());
static FOLDS_BUILT: AtomicUsize = AtomicUsize::new(0);

/// Folds penalties with recipe's fused optimizers (their tensor-code
/// updates: no update kernel) and records the values it is asked for,
/// leaving them to the tensor code.
struct CountingValues;

impl OptimizerKernels for CountingValues {
    fn build_folded(
        &self,
        config: &OptimizerConfig,
        folded: &[FoldedHooks],
    ) -> Option<ModuleOptimizer> {
        FOLDS_BUILT.fetch_add(1, Ordering::SeqCst);
        fused_optimizer_folded(config, folded)
    }

    fn elastic_net_value(&self, _weights: &Tensor<1>, l1: f64, l2: f64) -> Option<Tensor<1>> {
        VALUES_ASKED.lock().unwrap().push((l1, l2));
        None
    }
}

#[test]
fn one_value_read_per_parameter_with_the_summed_strengths() {
    install_optimizer_kernels(CountingValues);
    let device = Device::flex().autodiff();
    let net: Mlp = MlpConfig::new(6, vec![5], 3).init(&device).unwrap();
    let penalty = |regularizer| WeightPenalty::new(regularizer, ParamSelector::default());
    let hooks = StepHooks::new(
        vec![
            penalty(Regularizer::L1 { lambda: 1e-3 }),
            penalty(Regularizer::L2 { lambda: 1e-2 }),
        ],
        Vec::new(),
    );
    let (_, classifier) = fold_hooks(
        &OptimizerConfig::sgd(0.9),
        Classifier::with_hooks(net, hooks),
    );
    assert_eq!(FOLDS_BUILT.load(Ordering::SeqCst), 1);
    assert!(classifier.hooks.folded_penalties.is_some());
    let batch = ClassBatch {
        inputs: Tensor::<2>::ones([4, 6], &device),
        targets: Tensor::<1, Int>::from_ints([0, 1, 2, 0], &device),
    };
    let output = classifier.step(batch);
    // Two weight matrices (biases are not selected), each read once with
    // both penalties' strengths, not once per penalty.
    assert_eq!(*VALUES_ASKED.lock().unwrap(), [(1e-3, 1e-2), (1e-3, 1e-2)]);
    let reported: f32 = output.item.penalty.expect("a penalty").into_scalar();
    let weights = [
        &classifier.net.layers[0].linear().weight,
        &classifier.net.output.weight,
    ];
    let expected: f32 = weights
        .iter()
        .map(|w| {
            let w = w.val().inner();
            (w.clone().abs().sum() * 1e-3 + w.powi_scalar(2).sum() * 5e-3).into_scalar::<f32>()
        })
        .sum();
    assert!(
        (reported - expected).abs() <= 1e-6 * expected.abs(),
        "{reported} against {expected}"
    );
}
