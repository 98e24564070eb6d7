//! Gradient accumulation (`FitConfig::accumulate_grad_batches`, Lightning's
//! `accumulate_grad_batches`): the gradients of several batches in one
//! optimizer step.

use burn::tensor::Tensor;
use recipe::data::FeatureItem;
use recipe::models::Mlp;
use recipe::train::{
    GradNorm, GradientClipping, LrSchedule, MaxNormConfig, Regularizer, TrainConfig, TrainedModel,
    train,
};

mod common;
use common::{assert_same_step, device, points, points_config, quiet, trained_both_ways};

/// Two epochs of SGD on [`points`]' 100 training points in batches of
/// `batch_size`, `accumulate` batches a step, the learning rate halved
/// every epoch, with an L2 penalty and max-norm.
fn two_epochs(batch_size: usize, accumulate: usize) -> TrainConfig {
    let mut config = points_config(batch_size, 1);
    config.fit.accumulate_grad_batches = accumulate;
    config.fit.epochs = 2;
    config.fit.lr_schedule = LrSchedule::Step {
        every: 1,
        factor: 0.5,
    };
    config.fit.regularizer = Some(Regularizer::L2 { lambda: 1e-2 });
    config.fit.max_norm = Some(MaxNormConfig::new(0.8).unwrap());
    config
}

fn learning_rates(run: &TrainedModel<Mlp>) -> Vec<f64> {
    run.history.epochs.iter().map(|e| e.learning_rate).collect()
}

/// Each epoch is one step either way: the mean gradient of the same 100
/// points, taken whole or as two batches of 50 whose losses are halved and
/// whose gradients Burn sums. The weights agree up to the order of the
/// float sums. Without the halving the steps are twice as long; with the
/// schedule counting batches instead of steps, the second epoch's step
/// keeps the first epoch's rate.
#[test]
fn accumulating_two_half_batches_steps_like_the_whole_batch() {
    let (before, whole, accumulated) =
        trained_both_ways(&two_epochs(100, 1), &two_epochs(50, 2), 1);
    assert_same_step(&before, &whole.net, &accumulated.net);
    assert_eq!(learning_rates(&whole), [0.5, 0.25]);
    assert_eq!(learning_rates(&accumulated), [0.5, 0.25]);
}

fn grad_norms(run: &TrainedModel<Mlp>) -> Vec<GradNorm> {
    run.history
        .epochs
        .iter()
        .map(|e| e.grad_norm.expect("a clipping run records the norm"))
        .collect()
}

/// Clipping by the global norm acts on the step's gradient, the mean of
/// its accumulated batches (Lightning clips after accumulating): clipped
/// at 0.05, far below the norms, two accumulated batches of 50 step as
/// the clipped batch of 100, and record the same norm before clipping,
/// one per step (clipping each batch's own gradient, they do not).
#[test]
fn clipping_acts_on_the_accumulated_gradient() {
    let clipped = |batch_size, accumulate| {
        let mut config = two_epochs(batch_size, accumulate);
        config.fit.gradient_clipping = Some(GradientClipping::GlobalNorm(0.05));
        config
    };
    let (before, whole, accumulated) = trained_both_ways(&clipped(100, 1), &clipped(50, 2), 1);
    assert_same_step(&before, &whole.net, &accumulated.net);
    for (whole, accumulated) in grad_norms(&whole).iter().zip(grad_norms(&accumulated)) {
        // One step an epoch: its mean and its max are its norm.
        assert!(whole.mean > 0.05, "the clipping binds: {whole:?}");
        assert!(
            (whole.mean - accumulated.mean).abs() < 1e-5 * whole.mean,
            "{whole:?} {accumulated:?}"
        );
        assert!(
            (whole.max - accumulated.max).abs() < 1e-5 * whole.max,
            "{whole:?} {accumulated:?}"
        );
    }
}

/// An epoch of 2 batches cannot accumulate 3, and the error says why
/// before anything trains.
#[test]
fn accumulating_more_batches_than_an_epoch_holds_is_refused() {
    let device = device().autodiff();
    let config = two_epochs(50, 3);
    let net = config.mlp().unwrap().init(&device).unwrap();
    let data: recipe::data::ClassData<FeatureItem, Tensor<2>> = points();
    let error = train(&config, net, &data, &device, &quiet())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("`accumulate_grad_batches`"), "{error}");
    assert!(error.contains("at most 2"), "{error}");
}
