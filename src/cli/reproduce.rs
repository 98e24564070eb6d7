//! `recipe reproduce`: the lecture's claims on real data.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use recipe::backend::select_device;
use recipe::experiments::DepthSweep;
use recipe::train::write_atomic;

/// Which claim to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Experiment {
    /// Sigmoid vs ReLU vs Maxout across depth 1..9: deep sigmoid nets fail on the training data.
    VanishingGradient,
}

/// How much compute to spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Profile {
    /// 10,000 training images, 5 epochs: the shape of the result in minutes on 2 cores.
    #[default]
    Quick,
    /// All 50,000 training images, 5 epochs: the lecture's setting.
    Full,
}

/// Settings of `recipe reproduce`.
#[derive(Debug, Clone, Args)]
pub struct ReproduceArgs {
    /// The experiment
    #[arg(value_enum, default_value = "vanishing-gradient")]
    pub experiment: Experiment,
    /// quick or full
    #[arg(long, value_enum, default_value = "quick")]
    pub profile: Profile,
    /// Dataset: mnist or fashion-mnist
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Folder holding the dataset's four IDX files
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Output folder
    #[arg(long, default_value = "runs/reproduce")]
    pub out: PathBuf,
}

impl Default for ReproduceArgs {
    fn default() -> Self {
        Self {
            experiment: Experiment::VanishingGradient,
            profile: Profile::Quick,
            dataset: "mnist".into(),
            data_dir: None,
            device: "cpu".into(),
            out: PathBuf::from("runs/reproduce"),
        }
    }
}

/// Runs the experiment and writes `results.md` and `results.json` in its folder.
pub fn run(args: &ReproduceArgs) -> Result<()> {
    let device = select_device(&args.device)?;
    let Experiment::VanishingGradient = args.experiment;
    let out = args.out.join("vanishing-gradient");
    let train_limit = match args.profile {
        Profile::Quick => Some(10_000),
        Profile::Full => None,
    };
    let mut sweep = DepthSweep::lecture(5, train_limit);
    sweep.base.dataset = args.dataset.parse()?;
    sweep.base.data_dir = args.data_dir.clone();
    println!(
        "vanishing gradient on {} ({:?} profile): {} runs, results in {}",
        sweep.base.dataset,
        args.profile,
        sweep.activations.len() * sweep.depths.len(),
        out.display()
    );
    let rows = sweep.run(&device, Some(&out), |row| {
        println!(
            "   {} depth {}: train accuracy {:.3}, test accuracy {:.3} ({:.0}s)",
            row.activation, row.depth, row.train_accuracy, row.test_accuracy, row.seconds
        );
    })?;
    let table = sweep.markdown_table(&rows);
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let markdown = format!(
        "# Vanishing gradient: training and test accuracy by depth\n\n\
         {} training images, 5 epochs, SGD lr {}, batch {}, width {}, init auto.\n\
         Produced by `{command}`.\n\n{table}",
        sweep
            .base
            .split
            .train_limit
            .map_or("50000".to_string(), |n| n.to_string()),
        sweep.base.learning_rate,
        sweep.base.batch_size,
        sweep.width,
    );
    write_atomic(&out.join("results.md"), markdown.as_bytes())?;
    write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(&rows)?.as_bytes(),
    )?;
    println!("\n{table}\nwrote {}", out.join("results.md").display());
    Ok(())
}
