//! Goodfellow et al. 2013's second phase: from phase 1's kept weights, on
//! all 60,000 training images, until the dropout objective on the last
//! 10,000 falls to the one phase 1's kept model had on its training images
//! (pylearn2's `MatchChannel`).

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use recipe_data::Splits;
use recipe_models::Mlp;
use recipe_train::{
    EarlyStoppingConfig, LrSchedule, Metric, OptimizerConfig, TrainConfig, TrainError,
    TrainOptions, TrainedModel, evaluate_monte_carlo, read_run_config, resume, thinned_copy, train,
};

use super::paper_records::phase_one_updates_per_epoch;
use super::paper_run_folder::{finished, resumable};

/// Phase 2 of Goodfellow et al.: from phase 1's kept weights, on all the
/// training images, until the dropout objective on the last 10,000 reaches
/// phase 1's on its training images (pylearn2's `MatchChannel`).
pub(super) fn retrain_on_all(
    config: &TrainConfig,
    splits: &Splits,
    device: &Device,
    first: &TrainedModel<Mlp>,
    folder: &Path,
) -> Result<TrainedModel<Mlp>, TrainError> {
    let retrain_folder = folder.join("retrain");
    let target = match recorded_target(&retrain_folder)? {
        Some(target) => target,
        None => dropout_objective(config, splits, device, &first.net)?,
    };
    let best = first.summary.weights_from_epoch.max(1);
    let images = splits.train.len() + splits.valid.len();
    let again = retraining_settings(config, best, target, images);
    let device = device.clone().autodiff();
    if let Some(done) = finished(&again, &retrain_folder, &device)? {
        return Ok(done);
    }
    let mut all = splits.clone();
    all.train.pixels.extend_from_slice(&splits.valid.pixels);
    all.train.labels.extend_from_slice(&splits.valid.labels);
    let data = all.flat_data(again.data.standardize)?;
    // The kept net is in evaluation mode: `train` turns its gradients and
    // dropout back on.
    let net = first.net.clone().fork(&device).train();
    let options = TrainOptions {
        out_dir: Some(retrain_folder.clone()),
        model_name: Some("retrained on all 60,000 images".into()),
        overwrite: true,
        ..TrainOptions::default()
    };
    if resumable(&again, &retrain_folder)? {
        return resume(&retrain_folder, net, &data, &device, &options);
    }
    train(&again, net, &data, &device, &options)
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

/// Phase 2's settings: phase 1's, from the learning rate and momentum it
/// had reached after `best` epochs, the momentum fixed from there and the
/// learning rate decaying at phase 1's rate per update (so by more per
/// epoch of `images` images), for at most `best` epochs, stopping as soon
/// as the validation loss (on images now trained on), measured on thinned
/// nets as pylearn2's monitor measures its Dropout cost, reaches `target`.
pub(super) fn retraining_settings(
    config: &TrainConfig,
    best: usize,
    target: f64,
    images: usize,
) -> TrainConfig {
    let mut again = config.clone();
    if let LrSchedule::Exponential { factor } = config.fit.lr_schedule {
        again.fit.learning_rate *= factor.powi(best as i32);
        // pylearn2 decays per update: a longer epoch decays more.
        let updates = images.div_ceil(config.fit.batch_size) as f64;
        let factor = factor.powf(updates / phase_one_updates_per_epoch(config) as f64);
        again.fit.lr_schedule = LrSchedule::Exponential { factor };
    }
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
        let momentum = |best| match retraining_settings(&maxout.config, best, 0.05, 60_000)
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
        let again = retraining_settings(&maxout.config, 100, 0.05, 60_000);
        assert!((again.fit.learning_rate - 0.1 * 0.998f64.powi(100)).abs() < 1e-12);
        // 600 updates an epoch on 60,000 images decay as 1.2 of phase 1's.
        let LrSchedule::Exponential { factor } = again.fit.lr_schedule else {
            panic!("{:?}", again.fit.lr_schedule)
        };
        assert!((factor - 0.998f64.powf(1.2)).abs() < 1e-12);
        assert_eq!(again.fit.epochs, 100);
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
        let again = retraining_settings(&maxout.config, 100, 0.0123, 60_000);
        let json = serde_json::to_string(&again).unwrap();
        std::fs::write(dir.join("config.json"), json).unwrap();
        let recorded = recorded_target(&dir).unwrap().unwrap();
        assert!((recorded - 0.0123).abs() < 1e-15, "{recorded}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
