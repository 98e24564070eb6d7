//! Trains [`recipe_research::research_config`] into a folder, or resumes a
//! run there after it was killed, through the library crates alone,
//! recording [`recipe_research::Confidence`] as `train_confidence` and
//! `valid_confidence` in `history.csv`.
//!
//! ```text
//! research-train --out DIR
//! research-train --resume DIR
//! ```

use std::path::PathBuf;

use anyhow::{Context, bail};
use burn::tensor::Device;
use recipe_research::Confidence;
use recipe_train::{ClassMetric, DeferredMetric, TrainOptions, resume_mlp, train_mlp};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, dir) = match args.as_slice() {
        [mode, dir] if mode == "--out" || mode == "--resume" => (mode.as_str(), PathBuf::from(dir)),
        _ => bail!("usage: research-train --out DIR | --resume DIR"),
    };
    recipe_research::register();
    let device = Device::flex();
    let options = TrainOptions {
        out_dir: Some(dir.clone()),
        show_progress: false,
        // A resumed run is given its metrics again, as it was first.
        metrics: vec![
            ClassMetric::new(DeferredMetric::from_reading(Confidence)).named("confidence"),
        ],
        ..TrainOptions::default()
    };
    let trained = if mode == "--out" {
        train_mlp(&recipe_research::research_config()?, &device, &options)
    } else {
        resume_mlp(&dir, &device, &options)
    }
    .with_context(|| format!("training into {}", dir.display()))?;
    println!(
        "test accuracy {:.4} after {} epochs",
        trained.summary.test_accuracy, trained.summary.epochs_run
    );
    Ok(())
}
