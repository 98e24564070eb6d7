//! What every experiment of `recipe reproduce` shares: the device, the
//! dataset, the profile's budget, the output folder and the command line
//! its pages quote.

use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::tensor::Device;
use recipe::data::DatasetKind;
use recipe::experiments::{DepthSweep, DepthSweepRow, history_chart, overfitting_setting};
use recipe::train::{TrainConfig, write_atomic};
use serde::Serialize;

use super::Profile;

/// The settings one `recipe reproduce` invocation gives its experiments.
pub(super) struct Context {
    pub(super) device: Device,
    pub(super) dataset: DatasetKind,
    pub(super) data_dir: Option<PathBuf>,
    pub(super) profile: Profile,
    pub(super) out: PathBuf,
    pub(super) command: String,
    pub(super) train_limit: Option<usize>,
    pub(super) epochs: Option<usize>,
}

impl Context {
    /// `config` on the chosen dataset, with the smoke-run overrides applied.
    pub(super) fn on_dataset(&self, mut config: TrainConfig) -> TrainConfig {
        config.data.dataset = self.dataset.into();
        config.data.data_dir = self.data_dir.clone();
        if let Some(limit) = self.train_limit {
            config.data.split.train_limit = Some(limit);
        }
        if let Some(epochs) = self.epochs {
            config.fit.epochs = epochs;
        }
        config
    }

    pub(super) fn overfitting_setting(&self) -> TrainConfig {
        let epochs = match self.profile {
            Profile::Quick => 20,
            Profile::Full => 40,
        };
        self.on_dataset(overfitting_setting(epochs))
    }

    /// Training images for the sweeps: 10,000 in the quick profile, all in the full one.
    pub(super) fn sweep_limit(&self) -> Option<usize> {
        match self.profile {
            Profile::Quick => Some(10_000),
            Profile::Full => None,
        }
    }

    /// Epochs for the sweeps: `quick` in the quick profile, 5 in the full one.
    pub(super) fn sweep_epochs(&self, quick: usize) -> usize {
        match self.profile {
            Profile::Quick => quick,
            Profile::Full => 5,
        }
    }

    /// Runs a depth/activation sweep and writes its results.
    pub(super) fn sweep(
        &self,
        name: &str,
        title: &str,
        mut sweep: DepthSweep,
    ) -> Result<Vec<DepthSweepRow>> {
        sweep.base = self.on_dataset(sweep.base);
        println!(
            "{name} on {}: {} runs",
            sweep.base.data.dataset,
            sweep.activations.len() * sweep.depths.len(),
        );
        let rows = sweep.run(&self.device, Some(&self.out.join(name)), |row| {
            println!(
                "   {} depth {}: train accuracy {:.3}, test accuracy {:.3} ({:.0}s)",
                row.activation, row.depth, row.train_accuracy, row.test_accuracy, row.seconds
            );
        })?;
        let body = format!(
            "{} training images, {} epochs, {} lr {}, batch {}, width {}, init auto. \
             Each cell: training accuracy / test accuracy.\n\n{}",
            training_images(&sweep.base),
            sweep.base.fit.epochs,
            sweep.base.fit.optimizer,
            sweep.base.fit.learning_rate,
            sweep.base.fit.batch_size,
            sweep.width,
            sweep.markdown_table(&rows)
        );
        let mut body = body;
        if sweep.depths.len() == 1 {
            // One depth: compare the runs' learning curves instead of a depth chart.
            history_chart(
                &format!("{title}: learning curves"),
                rows.iter()
                    .map(|r| (r.activation.clone(), &r.history, None)),
            )
            .write(&self.out.join(name).join("curves"))?;
            body.push_str("\n![learning curves](curves.png)\n");
        }
        self.write(name, title, &body, &rows)?;
        Ok(rows)
    }

    /// Writes `results.md` and `results.json` for one experiment.
    pub(super) fn write(
        &self,
        name: &str,
        title: &str,
        body: &str,
        rows: &impl Serialize,
    ) -> Result<()> {
        let dir = self.out.join(name);
        let markdown = format!(
            "# {title}\n\n{} profile on {}. Produced by `{}`.\n\n{body}",
            match self.profile {
                Profile::Quick => "Quick",
                Profile::Full => "Full",
            },
            self.dataset,
            self.command
        );
        write_atomic(&dir.join("results.md"), markdown.as_bytes())?;
        write_pretty_json(&dir.join("results.json"), rows)?;
        println!("\n{body}\nwrote {}", dir.join("results.md").display());
        Ok(())
    }
}

/// How many training images `config` uses, in words for a results page.
pub(super) fn training_images(config: &TrainConfig) -> String {
    config
        .data
        .split
        .train_limit
        .map_or("50000".to_string(), |n| n.to_string())
}

/// Writes `value` as pretty JSON, atomically.
pub(super) fn write_pretty_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())?;
    Ok(())
}
