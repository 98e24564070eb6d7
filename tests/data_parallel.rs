//! Data-parallel training through Burn's multi-device strategy, on two or
//! three devices of one backend in one process (the CPU's device named
//! several times, or the GPU's under RECIPE_DEVICE).

use burn::train::metric::LearningRateMetric;
use recipe::train::{
    ClassMetric, EarlyStoppingConfig, GradientClipping, LrSchedule, MaxNormConfig, OptimizerConfig,
    Regularizer, TrainOptions, column_norms, train,
};

mod common;
use common::{assert_same_step, device, points, points_config, quiet, trained_both_ways};

/// Burn sums the devices' gradients; recipe scales each device's loss by
/// 1/K, so one step on two devices with batches of 50 is one step on one
/// device with the batch of 100 (the mean gradient of the same 100
/// points), up to the order of the float sums.
#[test]
fn two_devices_with_half_batches_step_like_one_device_with_the_whole_batch() {
    let (before, one, two) = trained_both_ways(&points_config(100, 1), &points_config(50, 2), 2);
    assert_same_step(&before, &one.net, &two.net);
}

/// A schedule counts optimizer steps: two devices take one step per
/// round of their two batches, so an epoch of 100 points in batches of 50
/// is one step, as on one device with batches of 100, and the rate halved
/// every epoch is halved for the second epoch's step on both. (It was not:
/// the schedule counted 2 steps an epoch on two devices, and the second
/// epoch's step kept the first epoch's rate.)
#[test]
fn a_schedule_on_two_devices_counts_their_steps() {
    let halving = |batch_size, devices| {
        let mut config = points_config(batch_size, devices);
        config.fit.epochs = 2;
        config.fit.lr_schedule = LrSchedule::Step {
            every: 1,
            factor: 0.5,
        };
        config
    };
    let (before, one, two) = trained_both_ways(&halving(100, 1), &halving(50, 2), 2);
    assert_same_step(&before, &one.net, &two.net);
    let rates: Vec<f64> = two.history.epochs.iter().map(|e| e.learning_rate).collect();
    assert_eq!(rates, [0.5, 0.25]);
}

/// Clipping by the global norm acts on the step's gradient, the mean of
/// the devices' (Lightning clips after the all-reduce): two devices with
/// batches of 50, clipped at 0.05, step as one device with the clipped
/// batch of 100 and record its norm. (Until 2026-12-06 each device clipped
/// its own share.)
#[test]
fn clipping_on_two_devices_acts_on_the_step() {
    let clipped = |batch_size, devices| {
        let mut config = points_config(batch_size, devices);
        config.fit.gradient_clipping = Some(GradientClipping::GlobalNorm(0.05));
        config
    };
    let (before, one, two) = trained_both_ways(&clipped(100, 1), &clipped(50, 2), 2);
    assert_same_step(&before, &one.net, &two.net);
    let norm = |run: &recipe::train::TrainedModel<recipe::models::Mlp>| {
        run.history.epochs[0]
            .grad_norm
            .expect("the norm is recorded")
            .mean
    };
    assert!(norm(&one) > 0.05, "the clipping binds: {}", norm(&one));
    assert!(
        (norm(&one) - norm(&two)).abs() < 1e-5 * norm(&one),
        "{} vs {}",
        norm(&one),
        norm(&two)
    );
}

/// Burn shares 100 points out to three devices as 33, 33 and 34; in
/// batches of 11 the last device takes 4 batches and the others 3, so an
/// epoch is 4 rounds and 4 steps (`FitConfig::updates_per_epoch`). Burn's
/// own learning-rate metric (the rate after the step each batch took part
/// in) shows a schedule halving every epoch at 0.25 on every batch of the
/// second epoch. Counted in 10 steps an epoch (the batches of 100 points)
/// it would still be 0.5; in 3 (the first device's batches), 0.125 in the
/// last two rounds.
#[test]
fn three_devices_with_uneven_shares_step_once_per_round() {
    let device = device().autodiff();
    let mut config = points_config(11, 3);
    config.fit.epochs = 2;
    config.fit.lr_schedule = LrSchedule::Step {
        every: 1,
        factor: 0.5,
    };
    assert_eq!(config.fit.updates_per_epoch(100), 4);
    let net = config.mlp().unwrap().init(&device).unwrap();
    let options = TrainOptions {
        devices: vec![device.clone(); 3],
        metrics: vec![ClassMetric::new(LearningRateMetric::new()).named("lr")],
        ..quiet()
    };
    let run = train(&config, net, &points(), &device, &options).unwrap();
    let rates: Vec<f64> = run
        .history
        .epochs
        .iter()
        .map(|e| e.metrics["train_lr"])
        .collect();
    assert_eq!(rates, [0.5, 0.25]);
}

#[test]
fn a_device_count_that_does_not_match_is_named() {
    let device = device().autodiff();
    let net = points_config(50, 2).mlp().unwrap().init(&device).unwrap();
    let error = train(&points_config(50, 2), net, &points(), &device, &quiet())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("`devices`"), "{error}");
    assert!(error.contains("as many devices"), "{error}");
}

/// The run's other hooks behave as on one device: a penalty in each
/// device's loss, max-norm after the step, early stopping with the best
/// epoch's weights restored.
#[test]
fn penalties_constraints_and_early_stopping_work_on_two_devices() {
    let device = device().autodiff();
    let mut config = points_config(25, 2);
    config.fit.epochs = 30;
    config.fit.optimizer = OptimizerConfig::adam();
    config.fit.learning_rate = 0.05;
    config.fit.regularizer = Some(Regularizer::L2 { lambda: 1e-3 });
    config.fit.max_norm = Some(MaxNormConfig::new(0.5).unwrap());
    config.fit.early_stopping = Some(EarlyStoppingConfig {
        patience: 2,
        restore_best_weights: true,
        ..EarlyStoppingConfig::default()
    });
    let options = TrainOptions {
        devices: vec![device.clone(), device.clone()],
        ..quiet()
    };
    let net = config.mlp().unwrap().init(&device).unwrap();
    let trained = train(&config, net, &points(), &device, &options).unwrap();
    let summary = &trained.summary;
    assert!(summary.stopped_early, "{summary:?}");
    assert_eq!(summary.weights_from_epoch, summary.best_epoch);
    assert!(trained.history.epochs.iter().all(|e| e.train_penalty > 0.0));
    let norms: Vec<f32> = column_norms(trained.net.layers[0].linear.weight.val())
        .into_data()
        .try_to_vec()
        .unwrap();
    assert!(norms.iter().all(|&n| n <= 0.5 + 1e-5), "{norms:?}");
}
