//! `recipe evaluate`: a finished run's weights evaluated again, as the
//! weight-scaled net and as averages of sampled thinned nets.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use recipe::backend::select_device;
use recipe::train::{RunEvaluation, RunEvaluationConfig, evaluate_mlp_run, write_atomic};

/// Settings of `recipe evaluate`.
#[derive(Debug, Clone, Args)]
pub struct EvaluateArgs {
    /// The run's folder (its config.json and weights)
    #[arg(value_name = "DIR")]
    pub run: PathBuf,
    /// The weights file in DIR: model.bpk, or averaged.bpk (a run with --average-weights)
    #[arg(long, default_value_t = RunEvaluationConfig::default().weights)]
    pub weights: String,
    /// Also average the predictions of this many sampled thinned nets (Monte Carlo dropout), e.g. 10,100,1000: each count from the same sweep of masks
    #[arg(long, value_delimiter = ',', value_name = "K,K,...", value_parser = at_least_one)]
    pub monte_carlo: Vec<usize>,
    /// Seed of the dropout masks (default: the run's seed)
    #[arg(long)]
    pub seed: Option<u64>,
    /// The image set's folder, in place of the one config.json names
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, env = "RECIPE_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Also write the figures as JSON to this file
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// A count of thinned nets: 1 or more.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(count) if count >= 1 => Ok(count),
        _ => Err(format!(
            "expected a count of thinned nets, 1 or more, found `{text}`"
        )),
    }
}

/// Runs `recipe evaluate` and prints one table.
pub fn run(args: &EvaluateArgs) -> Result<()> {
    let device = select_device(&args.device)?;
    let settings = RunEvaluationConfig {
        weights: args.weights.clone(),
        sample_counts: args.monte_carlo.clone(),
        seed: args.seed,
        data_dir: args.data_dir.clone(),
    };
    let evaluation = evaluate_mlp_run(&args.run, &settings, &device)
        .with_context(|| format!("evaluating the run in {}", args.run.display()))?;
    print!("{}", table(&evaluation));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&evaluation)?;
        write_atomic(path, json.as_bytes())?;
        println!("figures written to {}", path.display());
    }
    Ok(())
}

/// The figures as a Markdown table: one row per way of evaluating, the
/// error (and count of errors) and loss on each split.
fn table(evaluation: &RunEvaluation) -> String {
    let mut text = format!(
        "{} (dropout masks seeded {})\n\n| evaluated as |",
        evaluation.weights.display(),
        evaluation.seed
    );
    for split in &evaluation.splits {
        let _ = write!(
            text,
            " {0} error ({1} examples) | {0} loss |",
            split.split, split.weight_scaled.examples
        );
    }
    text.push_str("\n|---|");
    text.push_str(&"---|---|".repeat(evaluation.splits.len()));
    text.push('\n');
    let cell = |accuracy: f64, loss: f64, examples: usize| {
        let errors = ((1.0 - accuracy) * examples as f64).round();
        format!(" {:.2}% ({errors}) | {loss:.4} |", 100.0 * (1.0 - accuracy))
    };
    text.push_str("| weight-scaled net |");
    for split in &evaluation.splits {
        let e = split.weight_scaled;
        text.push_str(&cell(e.accuracy, e.loss, e.examples));
    }
    text.push('\n');
    let counts = evaluation
        .splits
        .first()
        .map(|s| s.monte_carlo.len())
        .unwrap_or(0);
    for row in 0..counts {
        let samples = evaluation.splits[0].monte_carlo[row].samples;
        let _ = write!(
            text,
            "| mean of {samples} thinned net{} |",
            if samples == 1 { "" } else { "s" }
        );
        for split in &evaluation.splits {
            let m = split.monte_carlo[row];
            text.push_str(&cell(m.accuracy, m.loss, split.weight_scaled.examples));
        }
        text.push('\n');
    }
    text
}
