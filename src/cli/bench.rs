//! `recipe bench`: training and inference throughput of the three benchmark
//! networks, the data path alone, recipe's loop against a bare Burn loop,
//! and what recipe's hooks (penalties, max-norm) cost per step.

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::Args;
use recipe::backend::{kernels_from_env, select_device};
use recipe::bench::{
    BenchCase, BenchSettings, HookCost, LoopComparison, cases, compare_loops, data_path_rate,
    hook_costs, run_case,
};
use recipe::data::{DatasetKind, SplitConfig, load_splits};
use serde_json::json;

/// Settings of `recipe bench`.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// Backend: cpu, flex, ndarray, wgpu, vulkan or cuda (those compiled in)
    #[arg(long, env = "RECIPE_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Print one JSON object per line instead of a table
    #[arg(long)]
    pub json: bool,
    /// Cases to run: a, b, c (default all)
    #[arg(long, value_delimiter = ',')]
    pub case: Vec<String>,
    /// Timed repeats per figure (the median is printed)
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Training steps per timed repeat
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Only the three cases: skip the data path and the loop comparison
    #[arg(long)]
    pub cases_only: bool,
    /// Training batch size for every case instead of the cases' own (e.g. 1024 for large-batch steps)
    #[arg(long)]
    pub batch_size: Option<usize>,
}

/// Runs `recipe bench`.
pub fn run(args: &BenchArgs) -> Result<()> {
    let device = select_device(&args.device)?;
    let kernels = kernels_from_env()?;
    let settings = BenchSettings {
        warmup_steps: 10,
        repeats: args.repeats.max(1),
        steps: args.steps.max(1),
    };
    let wanted = chosen_cases(args)?;
    if !args.json {
        println!(
            "device {device:?}, {} kernels; median of {} repeats of {} steps after {} warm-up steps",
            kernels, settings.repeats, settings.steps, settings.warmup_steps
        );
        println!(
            "{:<40} {:>6} {:>14} {:>14}",
            "case", "batch", "train samp/s", "infer samp/s"
        );
    }
    for case in &wanted {
        print_case(case, &device, settings, kernels, args.json)?;
    }
    if args.cases_only {
        return Ok(());
    }
    let figures = LoopFigures::measure(&wanted[0], &device, settings)?;
    if args.json {
        figures.print_json(&wanted[0], &device)
    } else {
        figures.print_text(&wanted[0], settings);
        Ok(())
    }
}

/// The cases `--case` names (all three by default), at `--batch-size` if given.
fn chosen_cases(args: &BenchArgs) -> Result<Vec<BenchCase>> {
    let all = cases();
    let mut chosen = if args.case.is_empty() {
        all
    } else {
        let mut chosen = Vec::new();
        for name in &args.case {
            let letter = name.trim().to_ascii_uppercase();
            match all
                .iter()
                .find(|c| c.name.starts_with(&format!("{letter} ")))
            {
                Some(case) => chosen.push(case.clone()),
                None => bail!("--case {name}: expected a, b or c"),
            }
        }
        chosen
    };
    if let Some(batch_size) = args.batch_size {
        for case in &mut chosen {
            case.batch_size = batch_size.max(1);
        }
    }
    Ok(chosen)
}

/// Times one case's training and inference and prints its line (or object).
fn print_case(
    case: &BenchCase,
    device: &Device,
    settings: BenchSettings,
    kernels: &str,
    json: bool,
) -> Result<()> {
    let mut result = run_case(case, device, settings);
    result.train_samples_per_sec = result.train_samples_per_sec.round();
    result.infer_samples_per_sec = result.infer_samples_per_sec.round();
    if json {
        let mut object = serde_json::to_value(&result)?;
        object["kernels"] = json!(kernels);
        println!("{object}");
    } else {
        println!(
            "{:<40} {:>6} {:>14.0} {:>14.0}",
            result.case,
            result.batch_size,
            result.train_samples_per_sec,
            result.infer_samples_per_sec
        );
    }
    Ok(())
}

/// What surrounds the first case's step: the data path alone, whole epochs
/// of recipe's loop against a bare Burn loop, and each hook's cost per step.
struct LoopFigures {
    batch_size: usize,
    batches_per_sec: f64,
    loops: LoopComparison,
    hooks: Vec<HookCost>,
}

impl LoopFigures {
    fn measure(case: &BenchCase, device: &Device, settings: BenchSettings) -> Result<Self> {
        let splits = load_splits(DatasetKind::Mnist, None, &SplitConfig::default())?;
        let batch_size = 128;
        let batches_per_sec = data_path_rate(&splits.train, batch_size, device, 3);
        let loop_images = splits.train.slice(0..10_000);
        let loops = compare_loops(case, &loop_images, device, 2)?;
        let hooks = hook_costs(case, device, settings);
        Ok(Self {
            batch_size,
            batches_per_sec,
            loops,
            hooks,
        })
    }

    /// One object per measurement, each naming what it measured and where.
    fn print_json(&self, case: &BenchCase, device: &Device) -> Result<()> {
        let print = |measurement: &str, mut fields: serde_json::Value| {
            fields["measurement"] = json!(measurement);
            fields["device"] = json!(format!("{device:?}"));
            println!("{fields}");
        };
        print(
            "data_path",
            json!({
                "batch_size": self.batch_size,
                "batches_per_sec": self.batches_per_sec.round(),
                "samples_per_sec": (self.batches_per_sec * self.batch_size as f64).round(),
            }),
        );
        let loops = &self.loops;
        print(
            "loop_overhead",
            json!({
                "case": case.name,
                "bare_burn_loop_samples_per_sec": loops.bare_samples_per_sec.round(),
                "recipe_loop_samples_per_sec": loops.recipe_samples_per_sec.round(),
                "recipe_loop_reading_every_step_samples_per_sec": loops.recipe_reading_every_step_samples_per_sec.round(),
            }),
        );
        for cost in &self.hooks {
            let mut fields = serde_json::to_value(cost)?;
            fields["case"] = json!(case.name);
            print("hook_cost", fields);
        }
        Ok(())
    }

    fn print_text(&self, case: &BenchCase, settings: BenchSettings) {
        let (batch_size, loops) = (self.batch_size, &self.loops);
        println!(
            "data path alone: {:.0} batches/s of {batch_size} ({:.0} samples/s), MNIST training split, shuffled",
            self.batches_per_sec,
            self.batches_per_sec * batch_size as f64
        );
        let against_bare = |rate: f64| 100.0 * (rate / loops.bare_samples_per_sec - 1.0);
        println!(
            "whole epochs of case {} on 10,000 MNIST images: bare Burn loop {:.0} samples/s, recipe's loop {:.0} samples/s ({:+.1}%), {:.0} samples/s reading its metrics every step ({:+.1}%)",
            &case.name[..1],
            loops.bare_samples_per_sec,
            loops.recipe_samples_per_sec,
            against_bare(loops.recipe_samples_per_sec),
            loops.recipe_reading_every_step_samples_per_sec,
            against_bare(loops.recipe_reading_every_step_samples_per_sec),
        );
        println!(
            "recipe's step on case {} with its hooks ({} interleaved rounds; extra time per step against the same round's step without hooks: median, lowest to highest):",
            &case.name[..1],
            settings.repeats.max(3)
        );
        for cost in &self.hooks {
            println!(
                "  {:<20} {:>8.0} samples/s  {:+.1}% ({:+.1} to {:+.1})",
                cost.hooks,
                cost.train_samples_per_sec,
                cost.cost_percent,
                cost.cost_percent_low,
                cost.cost_percent_high
            );
        }
    }
}
