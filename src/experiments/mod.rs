//! The lecture's claims as experiments that train real networks.

use std::path::PathBuf;

use burn::tensor::Device;
use recipe_data::{DatasetKind, SplitConfig, Splits, load_splits};
use recipe_models::Mlp;
use recipe_train::{TrainConfig, TrainError, TrainOptions, TrainedModel, train};

mod claims;
mod dropout_ensemble;
mod maxout_response;
mod overfitting;
mod paper_earlier_rows;
mod paper_phase_one;
mod paper_records;
mod paper_report;
mod paper_retraining;
mod paper_run_folder;
mod penalty_trace;
mod relu_regions;
mod remedies;
mod vanishing_gradient;
mod variant_key;

pub use claims::{
    Claim, activation_claims, claims_table, dropout_claims, early_stopping_claims, maxout_claims,
    regularization_claims, vanishing_gradient_claims,
};
pub use dropout_ensemble::{DropoutEnsemble, FormAgreement};
pub use maxout_response::{UnitResponse, first_layer_responses, response_chart};
pub use overfitting::{
    Variant, VariantRow, compare, dropout_variants, early_stopping_variants, history_chart,
    learning_curves, markdown_table, overfitting_setting, regularization_variants,
    underfitting_dropout_variants, variant_folder, weight_histograms, with_dropout,
};
pub use paper_earlier_rows::{EarlierRows, fewer_seeds_departure, merged_seeds_departure};
pub use paper_phase_one::{PhaseOne, PhaseOneRecords};
pub use paper_records::{PaperBudget, PaperRow, PaperRun, paper_runs, run_paper};
pub use paper_report::{paper_chart, paper_ranking, paper_table};
pub use paper_retraining::Retraining;
pub use penalty_trace::{PenaltyTrace, PenaltyTraceConfig, WeightSeries, trace_penalties};
pub use relu_regions::{ReluRegions, relu_regions};
pub use remedies::{remedies, shallow_baseline};
pub use vanishing_gradient::{DepthSweep, DepthSweepRow};
pub use variant_key::VariantKey;

/// The splits of the last data settings asked for, so that experiments load
/// the data once per setting rather than once per run.
#[derive(Default)]
struct SplitCache {
    loaded: Option<(DataSettings, Splits)>,
}

/// What decides which splits a run gets.
type DataSettings = (DatasetKind, Option<PathBuf>, SplitConfig);

impl SplitCache {
    fn get(&mut self, config: &TrainConfig) -> Result<&Splits, TrainError> {
        let key = (
            config.image_set()?,
            config.data.data_dir.clone(),
            config.data.split.clone(),
        );
        if self
            .loaded
            .as_ref()
            .is_none_or(|(loaded, _)| *loaded != key)
        {
            let splits = load_splits(key.0, key.1.as_deref(), &key.2)?;
            self.loaded = Some((key, splits));
        }
        Ok(&self.loaded.as_ref().expect("just loaded").1)
    }
}

/// Trains the MLP of `config` on `splits`, seeded by the config, on `device`
/// (with autodiff), naming it `name` and keeping its artifacts in `out_dir`.
fn train_seeded(
    config: &TrainConfig,
    splits: &Splits,
    device: &Device,
    name: String,
    out_dir: Option<PathBuf>,
) -> Result<TrainedModel<Mlp>, TrainError> {
    config.validate()?;
    let device = device.clone().autodiff();
    device.seed(config.fit.seed);
    let net = config.mlp()?.init(&device)?;
    println!("== {name}");
    let options = TrainOptions {
        out_dir,
        model_name: Some(name),
        // `recipe reproduce` remakes its whole report: a rerun replaces the last one's runs.
        overwrite: true,
        ..TrainOptions::default()
    };
    let data = splits.flat_data(config.data.standardize)?;
    train(config, net, &data, &device, &options)
}
