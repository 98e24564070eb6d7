//! A finished run's weights evaluated again from its folder: on the
//! validation split and the test set, as the weight-scaled net (one
//! deterministic pass, what training reports) and as averages of sampled
//! thinned nets (Monte Carlo dropout), so that the way a dropout net is
//! evaluated can be chosen on the validation split after training.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use recipe_data::{ClassData, DataSource};
use recipe_models::Mlp;
use serde::{Deserialize, Serialize};

use crate::resume::read_run_config;
use crate::run::DataItem;
use crate::trainer::MlpData;
use crate::{
    Evaluation, MonteCarloEvaluation, TrainError, evaluate, evaluate_monte_carlo, thinned_copy,
};

/// What [`evaluate_mlp_run`] measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvaluationConfig {
    /// The weights file in the run's folder: `model.bpk` (the run's model)
    /// or `averaged.bpk` (its weight average, with `--average-weights`).
    pub weights: String,
    /// Numbers of sampled thinned nets whose averaged predictions are
    /// reported, each at least 1, all from one sweep of masks (the first
    /// `k` of the largest count); empty: the weight-scaled pass only.
    pub sample_counts: Vec<usize>,
    /// Seed of the dropout masks; `None`: the run's own seed.
    pub seed: Option<u64>,
    /// The folder of the run's image set, in place of the one its
    /// `config.json` names (for a run trained in another folder or on
    /// another machine); `None`: the recorded one.
    pub data_dir: Option<PathBuf>,
}

impl Default for RunEvaluationConfig {
    fn default() -> Self {
        Self {
            weights: "model.bpk".to_string(),
            sample_counts: Vec::new(),
            seed: None,
            data_dir: None,
        }
    }
}

impl RunEvaluationConfig {
    /// Refuses a sample count of 0 and a weights file given as a path
    /// rather than a name in the run's folder.
    pub fn validate(&self) -> Result<(), TrainError> {
        if let Some(zero) = self.sample_counts.iter().find(|&&k| k == 0) {
            return Err(TrainError::invalid(
                "sample_counts",
                "counts of at least 1 thinned net",
                zero,
            ));
        }
        let name = Path::new(&self.weights);
        if name.components().count() != 1 || name.extension().is_none_or(|e| e != "bpk") {
            return Err(TrainError::invalid(
                "weights",
                "the name of a .bpk file in the run's folder (model.bpk or averaged.bpk)",
                &self.weights,
            ));
        }
        Ok(())
    }
}

/// One split's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitEvaluation {
    /// `valid` or `test`.
    pub split: String,
    /// The deterministic pass (dropout off, inverted dropout's weights as
    /// trained: the weight-scaling rule).
    pub weight_scaled: Evaluation,
    /// The averages of sampled thinned nets, one per requested count.
    pub monte_carlo: Vec<MonteCarloEvaluation>,
}

/// A run's weights evaluated again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEvaluation {
    /// The weights file evaluated.
    pub weights: PathBuf,
    /// Seed of the dropout masks.
    pub seed: u64,
    /// The validation split (when the run has one), then the test set.
    pub splits: Vec<SplitEvaluation>,
}

/// Evaluates the weights of the finished [`Mlp`] run in `run_dir` on the
/// data its `config.json` names (the same validation split, the test set),
/// on `device`. Nothing is trained and nothing in the folder is written.
pub fn evaluate_mlp_run(
    run_dir: &Path,
    settings: &RunEvaluationConfig,
    device: &Device,
) -> Result<RunEvaluation, TrainError> {
    settings.validate()?;
    let mut config = read_run_config(run_dir)?;
    if let Some(dir) = &settings.data_dir {
        if !matches!(config.data.dataset, DataSource::Idx(_)) {
            return Err(TrainError::invalid(
                "data_dir",
                "no folder: the run's data is not an image set",
                dir.display(),
            ));
        }
        config.data.data_dir = Some(dir.clone());
    }
    let weights = run_dir.join(&settings.weights);
    if !weights.is_file() {
        return Err(TrainError::io(
            &weights,
            "no such weights file (a finished run leaves model.bpk, and averaged.bpk with --average-weights)",
        ));
    }
    let plain = device.clone().inner();
    let net = config
        .mlp()?
        .init(&plain)?
        .try_load_file(&weights)
        .map_err(|e| TrainError::io(&weights, format!("{e:?}")))?;
    let seed = settings.seed.unwrap_or(config.fit.seed);
    let batch_size = config.fit.eval_batch_size;
    let sampling = Sampling {
        counts: &settings.sample_counts,
        seed,
        batch_size,
    };
    let splits = match &MlpData::load(&config)? {
        MlpData::Images(data) => sampling.evaluate(&net, data, &plain)?,
        MlpData::Table(data) => sampling.evaluate(&net, data, &plain)?,
    };
    Ok(RunEvaluation {
        weights,
        seed,
        splits,
    })
}

/// How the splits are evaluated.
struct Sampling<'a> {
    counts: &'a [usize],
    seed: u64,
    batch_size: usize,
}

impl Sampling<'_> {
    fn evaluate<I: DataItem>(
        &self,
        net: &Mlp,
        data: &ClassData<I, Tensor<2>>,
        plain: &Device,
    ) -> Result<Vec<SplitEvaluation>, TrainError> {
        // One seeding for both splits keeps every figure reproducible.
        let (thinned, sampled) = thinned_copy(net, plain, self.seed);
        let mut splits = Vec::new();
        for (name, set) in [("valid", &data.valid), ("test", &data.test)] {
            if set.is_empty() {
                continue;
            }
            let weight_scaled = evaluate(
                net,
                &data.loader(set, self.batch_size, None, Some(plain.clone())),
            )?;
            let monte_carlo = if self.counts.is_empty() {
                Vec::new()
            } else {
                evaluate_monte_carlo(
                    &thinned,
                    &data.loader(set, self.batch_size, None, Some(sampled.clone())),
                    self.counts,
                )?
            };
            splits.push(SplitEvaluation {
                split: name.to_string(),
                weight_scaled,
                monte_carlo,
            });
        }
        Ok(splits)
    }
}

#[cfg(test)]
mod tests {
    use recipe_data::CsvSource;
    use recipe_models::MlpConfig;

    use super::*;
    use crate::{DataConfig, Summary, TrainConfig, TrainOptions, train_mlp};

    /// A run of `dropout` on the repository's three-class table
    /// (`data/csv/blobs.csv`, 240 rows), trained for 3 epochs into a
    /// fresh folder named `name`.
    fn finished_run(name: &str, dropout: f64) -> (PathBuf, Summary) {
        let table = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/csv/blobs.csv");
        let mut config = TrainConfig::new(MlpConfig::new(4, vec![16], 3).with_dropout(dropout));
        config.data = DataConfig::new(CsvSource::new(table, "species"));
        config.fit.epochs = 3;
        config.fit.batch_size = 16;
        let dir = std::env::temp_dir().join(format!(
            "recipe-run-evaluation-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let options = TrainOptions {
            out_dir: Some(dir.clone()),
            print_epochs: false,
            show_progress: false,
            ..TrainOptions::default()
        };
        let trained = train_mlp(&config, &Device::default(), &options).unwrap();
        (dir, trained.summary)
    }

    fn weights(name: &str) -> RunEvaluationConfig {
        RunEvaluationConfig {
            weights: name.into(),
            ..RunEvaluationConfig::default()
        }
    }

    fn settings(counts: &[usize]) -> RunEvaluationConfig {
        RunEvaluationConfig {
            sample_counts: counts.to_vec(),
            ..RunEvaluationConfig::default()
        }
    }

    /// The weight-scaled figures are the run's own final ones, and without
    /// dropout every average of "thinned" nets is that same net.
    #[test]
    fn the_weight_scaled_pass_repeats_the_runs_figures() {
        let (dir, summary) = finished_run("plain", 0.0);
        let again = evaluate_mlp_run(&dir, &settings(&[1, 3]), &Device::default()).unwrap();
        let names: Vec<&str> = again.splits.iter().map(|s| s.split.as_str()).collect();
        assert_eq!(names, ["valid", "test"]);
        let [valid, test] = &again.splits[..] else {
            unreachable!()
        };
        assert_eq!(valid.weight_scaled.accuracy, summary.valid_accuracy);
        assert_eq!(test.weight_scaled.accuracy, summary.test_accuracy);
        assert!((test.weight_scaled.loss - summary.test_loss).abs() < 1e-6);
        for split in &again.splits {
            let counts: Vec<usize> = split.monte_carlo.iter().map(|m| m.samples).collect();
            assert_eq!(counts, [1, 3]);
            for sampled in &split.monte_carlo {
                assert_eq!(sampled.accuracy, split.weight_scaled.accuracy);
            }
        }
        assert_eq!(again.seed, 42, "the run's seed by default");
    }

    /// With dropout the sampled nets are not the weight-scaled one. (That
    /// the same seed draws the same masks is tested in
    /// `tests/evaluate_run.rs`, a binary of its own: Burn's generator is one
    /// per process, and other tests here draw from it concurrently.)
    #[test]
    fn sampled_thinned_nets_differ_from_the_weight_scaled_net() {
        let (dir, summary) = finished_run("dropout", 0.5);
        let again = evaluate_mlp_run(&dir, &settings(&[1, 20]), &Device::default()).unwrap();
        for split in &again.splits {
            let counts: Vec<usize> = split.monte_carlo.iter().map(|m| m.samples).collect();
            assert_eq!(counts, [1, 20]);
            for sampled in &split.monte_carlo {
                assert_ne!(sampled.loss, split.weight_scaled.loss, "{split:?}");
            }
        }
        assert_eq!(
            again.splits[1].weight_scaled.accuracy,
            summary.test_accuracy
        );
    }

    #[test]
    fn bad_settings_and_missing_weights_are_named() {
        let (dir, _) = finished_run("refusals", 0.0);
        let refusal = |run: &Path, settings: RunEvaluationConfig| {
            evaluate_mlp_run(run, &settings, &Device::default())
                .unwrap_err()
                .to_string()
        };
        let cases = [
            (settings(&[5, 0]), vec!["sample_counts"]),
            (weights("../model.bpk"), vec!["weights", "../model.bpk"]),
            (weights("model.json"), vec!["weights", "model.json"]),
            (
                weights("averaged.bpk"),
                vec!["averaged.bpk", "no such weights file"],
            ),
            (
                RunEvaluationConfig {
                    data_dir: Some(PathBuf::from("data/mnist")),
                    ..RunEvaluationConfig::default()
                },
                vec!["data_dir", "not an image set"],
            ),
        ];
        for (settings, needles) in cases {
            let error = refusal(&dir, settings);
            assert!(needles.iter().all(|n| error.contains(n)), "{error}");
        }
        let error = refusal(&dir.join("nothing"), settings(&[]));
        assert!(error.contains("config.json"), "{error}");
    }
}
