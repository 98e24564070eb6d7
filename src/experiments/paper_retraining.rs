//! The papers' second phase: once phase 1 has chosen its model on the
//! validation split, training on all 60,000 training images, as Goodfellow
//! et al. 2013 (from the kept weights, until the dropout objective on the
//! last 10,000 falls to the one the kept model had on its training images:
//! pylearn2's `MatchChannel`) or Srivastava et al. 2014 (afresh, for as
//! many updates as phase 1 needed) do.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use recipe_data::Splits;
use recipe_models::Mlp;
use recipe_train::{
    EarlyStoppingConfig, LrSchedule, Metric, OptimizerConfig, TrainConfig, TrainError,
    TrainOptions, TrainedModel, evaluate_monte_carlo, read_run_config, resume, thinned_copy, train,
};

use super::paper_phase_one::from_weights;
use super::paper_records::phase_one_updates_per_epoch;
use super::paper_run_folder::{finished, resumable};

/// How a paper run trains on all 60,000 training images (phase 2) once
/// phase 1, on the first 50,000, has chosen its model on the last 10,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Retraining {
    /// No phase 2: the model is phase 1's best validation epoch.
    None,
    /// Goodfellow et al. 2013 (pylearn2's `mnist_pi_continued.yaml`): from
    /// phase 1's kept weights, at the learning rate and momentum phase 1
    /// had reached, until the dropout objective on the last 10,000 images
    /// (now trained on) falls to the kept model's on the first 50,000.
    UntilObjectiveMatches,
    /// Srivastava et al. 2014 (Appendix B.1: the validation set "combined
    /// with the training set" and trained for the number of updates the
    /// validation split chose): afresh, with phase 1's settings, for as
    /// many updates as phase 1 made up to its kept epoch; the model is the
    /// last epoch's.
    AfreshForSameUpdates,
}

/// What phase 1 left for phase 2.
#[derive(Debug, Clone, Copy)]
pub(super) enum KeptByPhaseOne<'a> {
    /// The model it kept, trained in this run's folder.
    Model(&'a TrainedModel<Mlp>),
    /// Only the epoch it kept, from a record of an earlier invocation.
    Epoch(usize),
}

impl KeptByPhaseOne<'_> {
    fn epoch(self) -> usize {
        match self {
            Self::Model(first) => first.summary.weights_from_epoch,
            Self::Epoch(epoch) => epoch,
        }
    }
}

/// Phase 2 of `retraining` after phase 1 kept `kept`, in
/// `folder/retrain`: read back if it finished there, resumed if it
/// stopped; `None` when the protocol has no phase 2. A retraining that
/// starts from phase 1's model is refused when only the epoch is known.
pub(super) fn retrain(
    retraining: Retraining,
    config: &TrainConfig,
    splits: &Splits,
    device: &Device,
    kept: KeptByPhaseOne,
    folder: &Path,
) -> Result<Option<TrainedModel<Mlp>>, TrainError> {
    let retrain_folder = folder.join("retrain");
    let best = kept.epoch().max(1);
    let images = splits.train.len() + splits.valid.len();
    let (again, what, first) = match (retraining, kept) {
        (Retraining::None, _) => return Ok(None),
        (Retraining::UntilObjectiveMatches, KeptByPhaseOne::Model(first)) => {
            let target = match recorded_target(&retrain_folder)? {
                Some(target) => target,
                None => dropout_objective(config, splits, device, &first.net)?,
            };
            let again = continued_settings(config, best, target, images);
            let what = "from phase 1's model until its dropout objective falls to phase 1's";
            (again, what, Some(first))
        }
        (Retraining::UntilObjectiveMatches, KeptByPhaseOne::Epoch(_)) => {
            return Err(from_weights("phase 1"));
        }
        (Retraining::AfreshForSameUpdates, _) => {
            let what = "afresh for as many updates as phase 1 made";
            (afresh_settings(config, best, images), what, None)
        }
    };
    let device = device.clone().autodiff();
    if let Some(done) = finished(&again, &retrain_folder, &device)? {
        return Ok(Some(done));
    }
    let net = match first {
        // The kept net is in evaluation mode: `train` turns its gradients
        // and dropout back on.
        Some(first) => first.net.clone().fork(&device).train(),
        None => {
            device.seed(config.fit.seed);
            again.mlp()?.init(&device)?
        }
    };
    let all = all_images(splits);
    let data = all.flat_data(again.data.standardize)?;
    let options = TrainOptions {
        out_dir: Some(retrain_folder.clone()),
        model_name: Some("retrained on all 60,000 images".into()),
        overwrite: true,
        ..TrainOptions::default()
    };
    let resuming = resumable(&again, &retrain_folder)?;
    println!(
        "== retraining on all {images} images, {what} ({}{})",
        if resuming { "resuming " } else { "" },
        retrain_folder.display()
    );
    if resuming {
        return resume(&retrain_folder, net, &data, &device, &options).map(Some);
    }
    train(&again, net, &data, &device, &options).map(Some)
}

/// Phase 2's data: phase 1's training images followed by its validation
/// images, which stay the validation set (a record of the fit, no longer
/// held out).
fn all_images(splits: &Splits) -> Splits {
    let mut all = splits.clone();
    all.train.pixels.extend_from_slice(&splits.valid.pixels);
    all.train.labels.extend_from_slice(&splits.valid.labels);
    all
}

/// pylearn2's `train_objective` of the kept model, which its retraining
/// matches: the Dropout cost (one thinned net per image, masks seeded by
/// the run's seed) of `net` on phase 1's training images, measured after
/// training as pylearn2's monitor measures it, not averaged over the
/// epoch's updates.
fn dropout_objective(
    config: &TrainConfig,
    splits: &Splits,
    device: &Device,
    net: &Mlp,
) -> Result<f64, TrainError> {
    let data = splits.flat_data(config.data.standardize)?;
    let (thinned, sampled) = thinned_copy(net, device, config.fit.seed);
    let loader = data.loader(&data.train, config.fit.eval_batch_size, None, Some(sampled));
    let one_net_each = evaluate_monte_carlo(&thinned, &loader, &[1])?;
    Ok(one_net_each[0].loss)
}

/// The target a retraining begun earlier in `folder` recorded in its
/// `config.json`: measured once, so that a resumed or finished retraining
/// is compared with the settings it ran under, whatever the rounding of a
/// second measurement.
fn recorded_target(folder: &Path) -> Result<Option<f64>, TrainError> {
    if !folder.join("config.json").exists() {
        return Ok(None);
    }
    let recorded = read_run_config(folder)?;
    Ok(recorded
        .fit
        .early_stopping
        .and_then(|stop| stop.stopping_threshold))
}

/// Goodfellow et al.'s phase 2 settings: phase 1's, from the learning rate
/// and momentum it had reached after `best` epochs, the momentum fixed
/// from there and the learning rate decaying at phase 1's rate per update
/// (so by more per epoch of `images` images), for at most `best` epochs,
/// stopping as soon as the validation loss (on images now trained on),
/// measured on thinned nets as pylearn2's monitor measures its Dropout
/// cost, reaches `target`.
pub(super) fn continued_settings(
    config: &TrainConfig,
    best: usize,
    target: f64,
    images: usize,
) -> TrainConfig {
    let mut again = config.clone();
    if let LrSchedule::Exponential { .. } | LrSchedule::InverseTime { .. } = config.fit.lr_schedule
    {
        // The rate phase 1 had reached after `best` epochs.
        again.fit.learning_rate =
            config
                .fit
                .lr_schedule
                .rate(config.fit.learning_rate, best, 1, best + 1);
    }
    again.fit.lr_schedule = decay_per_update(config, images, best);
    if let OptimizerConfig::Sgd {
        momentum,
        nesterov,
        dampened,
        ramp: Some(ramp),
    } = config.fit.optimizer
    {
        let updates = best as u64 * phase_one_updates_per_epoch(config);
        again.fit.optimizer = OptimizerConfig::Sgd {
            momentum: ramp.momentum(updates, momentum),
            nesterov,
            dampened,
            ramp: None,
        };
    }
    again.fit.epochs = best;
    // pylearn2's `MatchChannel` compares the Dropout cost on both sides.
    again.fit.validate_thinned = true;
    again.fit.early_stopping = Some(EarlyStoppingConfig {
        monitor: Metric::ValidLoss,
        stopping_threshold: Some(target),
        patience: best,
        ..EarlyStoppingConfig::default()
    });
    again
}

/// Srivastava et al.'s phase 2 settings: phase 1's, afresh, for as many
/// updates as phase 1 made in its first `best` epochs, in whole epochs of
/// `images` images (the nearest count, at least one), with the learning
/// rate decaying at phase 1's rate per update; no early stopping, so the
/// model is the last epoch's. A momentum ramp counts updates already.
pub(super) fn afresh_settings(config: &TrainConfig, best: usize, images: usize) -> TrainConfig {
    let mut again = config.clone();
    let epochs = best as f64 / epoch_length(config, images);
    again.fit.epochs = (epochs.round() as usize).max(1);
    again.fit.lr_schedule = decay_per_update(config, images, 0);
    again.fit.early_stopping = None;
    again
}

/// Phase 1's schedule from its epoch `from` on (0: its start), for epochs
/// of `images` images: an exponential or inverse-time decay keeps its rate
/// per update (pylearn2 and Srivastava et al. decay per update, so a longer
/// epoch decays more), and goes on from where phase 1 was at `from` when
/// the run starts at the rate phase 1 had reached there; other schedules
/// are kept as they are, per epoch.
fn decay_per_update(config: &TrainConfig, images: usize, from: usize) -> LrSchedule {
    let length = epoch_length(config, images);
    match config.fit.lr_schedule.clone() {
        LrSchedule::Exponential { factor } => LrSchedule::Exponential {
            factor: factor.powf(length),
        },
        // peak / (1 + (from + t) / h) = rate at `from` / (1 + t / (h + from)).
        LrSchedule::InverseTime { half_life } => LrSchedule::InverseTime {
            half_life: (half_life + from as f64) / length,
        },
        other => other,
    }
}

/// How many of phase 1's epochs of updates one epoch of `images` images
/// makes (1.2 for 60,000 against 50,000).
fn epoch_length(config: &TrainConfig, images: usize) -> f64 {
    let updates = config.fit.updates_per_epoch(images) as f64;
    updates / phase_one_updates_per_epoch(config) as f64
}

#[cfg(test)]
mod tests {
    use recipe_models::MlpConfig;

    use super::*;
    use crate::experiments::{PaperBudget, paper_runs};

    /// The retraining goes on at the learning rate and momentum phase 1
    /// reached at its best epoch, mid-ramp or past it.
    #[test]
    fn the_retraining_starts_where_phase_one_kept_its_weights() {
        let maxout = paper_runs(PaperBudget::Full).unwrap().remove(5);
        let momentum = |best| match continued_settings(&maxout.config, best, 0.05, 60_000)
            .fit
            .optimizer
        {
            OptimizerConfig::Sgd {
                momentum,
                ramp: None,
                ..
            } => momentum,
            other => panic!("{other:?}"),
        };
        assert!((momentum(125) - 0.6).abs() < 1e-12);
        assert!((momentum(400) - 0.7).abs() < 1e-12);
        let again = continued_settings(&maxout.config, 100, 0.05, 60_000);
        assert!((again.fit.learning_rate - 0.1 * 0.998f64.powi(100)).abs() < 1e-12);
        // 600 updates an epoch on 60,000 images decay as 1.2 of phase 1's.
        let LrSchedule::Exponential { factor } = again.fit.lr_schedule else {
            panic!("{:?}", again.fit.lr_schedule)
        };
        assert!((factor - 0.998f64.powf(1.2)).abs() < 1e-12);
        assert_eq!(again.fit.epochs, 100);
        // An inverse-time decay goes on as phase 1's would have: after 100
        // epochs of half-life 20 the rate is a sixth of the peak, and 600
        // more updates (1.2 of phase 1's epochs) take it to 1 / (1 + 101.2 / 20).
        let mut inverse_time = maxout.config.clone();
        inverse_time.fit.lr_schedule = LrSchedule::InverseTime { half_life: 20.0 };
        let again = continued_settings(&inverse_time, 100, 0.05, 60_000);
        let peak = inverse_time.fit.learning_rate;
        assert!((again.fit.learning_rate - peak / 6.0).abs() < 1e-12);
        let after_one_epoch = again
            .fit
            .lr_schedule
            .rate(again.fit.learning_rate, 600, 600, 2);
        assert!((after_one_epoch - peak / 6.06).abs() < 1e-12);
        let stop = again.fit.early_stopping.unwrap();
        assert_eq!(
            (stop.monitor, stop.stopping_threshold),
            (Metric::ValidLoss, Some(0.05))
        );
        assert!(again.fit.validate_thinned, "the Dropout cost on both sides");
        assert!(
            !maxout.config.fit.validate_thinned,
            "phase 1 validates the weight-scaled net"
        );
    }

    /// Srivastava et al.'s retraining makes as many updates as phase 1 made
    /// up to its kept epoch, afresh, with the same decay per update and no
    /// stopping rule; the momentum ramp (counted in updates) is phase 1's.
    #[test]
    fn the_afresh_retraining_makes_as_many_updates_as_phase_one_kept() {
        let runs = paper_runs(PaperBudget::Full).unwrap();
        let dampened = runs.iter().find(|r| r.name.contains("dampened")).unwrap();
        assert_eq!(dampened.retraining, Retraining::AfreshForSameUpdates);
        // 227 epochs of 500 updates are 113,500: 189 epochs of 600 (113,400).
        let again = afresh_settings(&dampened.config, 227, 60_000);
        assert_eq!(again.fit.epochs, 189);
        assert!(again.fit.early_stopping.is_none());
        assert_eq!(again.fit.learning_rate, dampened.config.fit.learning_rate);
        assert_eq!(again.fit.optimizer, dampened.config.fit.optimizer);
        let LrSchedule::Exponential { factor } = again.fit.lr_schedule else {
            panic!("{:?}", again.fit.lr_schedule)
        };
        assert!((factor - 0.998f64.powf(1.2)).abs() < 1e-12);
        again.validate().unwrap();
        // An inverse-time decay keeps its rate per update too: half the
        // peak after 20 epochs of 500 updates, 10,000 updates, which are
        // 16.7 epochs of 600.
        let mut inverse_time = dampened.config.clone();
        inverse_time.fit.lr_schedule = LrSchedule::InverseTime { half_life: 20.0 };
        let again = afresh_settings(&inverse_time, 227, 60_000);
        assert_eq!(again.fit.learning_rate, inverse_time.fit.learning_rate);
        let LrSchedule::InverseTime { half_life } = again.fit.lr_schedule else {
            panic!("{:?}", again.fit.lr_schedule)
        };
        assert!((half_life - 20.0 / 1.2).abs() < 1e-12);
        // A first-epoch model still retrains for one epoch.
        assert_eq!(afresh_settings(&dampened.config, 1, 60_000).fit.epochs, 1);
        // Every run of Srivastava et al.'s papers retrains so; Goodfellow
        // et al.'s runs match the dropout objective.
        for run in &runs {
            let expected = if run.source.starts_with("Srivastava") {
                Retraining::AfreshForSameUpdates
            } else {
                Retraining::UntilObjectiveMatches
            };
            assert_eq!(run.retraining, expected, "{}", run.name);
        }
    }

    /// Splits of 300 scrambled 4x4 "images" of 3 classes, the same three
    /// sets (only the training one is measured).
    fn small_splits() -> Splits {
        let labels: Vec<u8> = (0..300).map(|i| (i % 3) as u8).collect();
        // Multiplying by a prime modulo another scrambles the pixels.
        let pixels: Vec<u8> = (0..300 * 16).map(|i| (i * 7919 % 251) as u8).collect();
        let set = recipe_data::ImageSet::new(pixels, labels, 4, 4).unwrap();
        Splits {
            kind: recipe_data::DatasetKind::Mnist,
            train: set.clone(),
            valid: set.clone(),
            test: set,
        }
    }

    /// The retraining's target is the loss of sampled thinned nets: above
    /// the weight-scaled net's, and the weight-scaled loss itself when
    /// nothing is dropped. (That a seed draws the same masks again is
    /// `thinned_copy`'s, tested in a binary of its own: the generator is
    /// shared by this binary's test threads.)
    #[test]
    fn the_target_is_the_dropout_objective_of_the_kept_weights() {
        let device = Device::flex();
        let splits = small_splits();
        let objective = |dropout: f64| {
            let config = TrainConfig::new(MlpConfig::new(16, vec![32], 3).with_dropout(dropout));
            let net = config.mlp().unwrap().init(&device).unwrap();
            let thinned = dropout_objective(&config, &splits, &device, &net).unwrap();
            let data = splits.flat_data(config.data.standardize).unwrap();
            let loader = data.loader(&data.train, 100, None, Some(device.clone()));
            (thinned, recipe_train::evaluate(&net, &loader).unwrap().loss)
        };
        let (thinned, weight_scaled) = objective(0.5);
        assert!(
            thinned > weight_scaled + 1e-4,
            "{thinned} vs {weight_scaled}"
        );
        let (kept, scaled) = objective(0.0);
        assert!((kept - scaled).abs() < 1e-5, "{kept} vs {scaled}");
    }

    /// A resumed or finished retraining is compared with the target it
    /// recorded, not with a second measurement.
    #[test]
    fn a_retraining_begun_earlier_keeps_its_recorded_target() {
        let dir = std::env::temp_dir().join(format!("recipe-paper-target-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(recorded_target(&dir).unwrap(), None, "nothing begun");
        std::fs::create_dir_all(&dir).unwrap();
        let maxout = paper_runs(PaperBudget::Full).unwrap().remove(5);
        let again = continued_settings(&maxout.config, 100, 0.0123, 60_000);
        let json = serde_json::to_string(&again).unwrap();
        std::fs::write(dir.join("config.json"), json).unwrap();
        let recorded = recorded_target(&dir).unwrap().unwrap();
        assert!((recorded - 0.0123).abs() < 1e-15, "{recorded}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
