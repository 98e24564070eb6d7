//! `recipe bench`: training and inference throughput of the three benchmark
//! networks, the data path alone, recipe's loop against a bare Burn loop,
//! and what recipe's hooks (penalties, max-norm) cost per step.

use anyhow::{Result, bail};
use clap::Args;
use recipe::backend::{kernels_from_env, select_device};
use recipe::bench::{BenchSettings, cases, compare_loops, data_path_rate, hook_costs, run_case};
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
    let all = cases();
    let wanted: Vec<_> = if args.case.is_empty() {
        all.clone()
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
    let wanted: Vec<_> = wanted
        .into_iter()
        .map(|mut case| {
            if let Some(batch_size) = args.batch_size {
                case.batch_size = batch_size.max(1);
            }
            case
        })
        .collect();
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
        let mut result = run_case(case, &device, settings);
        result.train_samples_per_sec = result.train_samples_per_sec.round();
        result.infer_samples_per_sec = result.infer_samples_per_sec.round();
        if args.json {
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
    }
    if args.cases_only {
        return Ok(());
    }

    let splits = load_splits(DatasetKind::Mnist, None, &SplitConfig::default())?;
    let batch_size = 128;
    let batches_per_sec = data_path_rate(&splits.train, batch_size, &device, 3);
    let loop_images = splits.train.slice(0..10_000);
    let loops = compare_loops(&wanted[0], &loop_images, &device, 2)?;
    let hooks = hook_costs(&wanted[0], &device, settings);
    if args.json {
        // One object per measurement, each naming what it measured and where.
        let print = |measurement: &str, mut fields: serde_json::Value| {
            fields["measurement"] = json!(measurement);
            fields["device"] = json!(format!("{device:?}"));
            println!("{fields}");
        };
        print(
            "data_path",
            json!({
                "batch_size": batch_size,
                "batches_per_sec": batches_per_sec.round(),
                "samples_per_sec": (batches_per_sec * batch_size as f64).round(),
            }),
        );
        print(
            "loop_overhead",
            json!({
                "case": wanted[0].name,
                "bare_burn_loop_samples_per_sec": loops.bare_samples_per_sec.round(),
                "recipe_loop_samples_per_sec": loops.recipe_samples_per_sec.round(),
                "recipe_loop_reading_every_step_samples_per_sec": loops.recipe_reading_every_step_samples_per_sec.round(),
            }),
        );
        for cost in &hooks {
            let mut fields = serde_json::to_value(cost)?;
            fields["case"] = json!(wanted[0].name);
            print("hook_cost", fields);
        }
    } else {
        println!(
            "data path alone: {batches_per_sec:.0} batches/s of {batch_size} ({:.0} samples/s), MNIST training split, shuffled",
            batches_per_sec * batch_size as f64
        );
        let against_bare = |rate: f64| 100.0 * (rate / loops.bare_samples_per_sec - 1.0);
        println!(
            "whole epochs of case {} on 10,000 MNIST images: bare Burn loop {:.0} samples/s, recipe's loop {:.0} samples/s ({:+.1}%), {:.0} samples/s reading its metrics every step ({:+.1}%)",
            &wanted[0].name[..1],
            loops.bare_samples_per_sec,
            loops.recipe_samples_per_sec,
            against_bare(loops.recipe_samples_per_sec),
            loops.recipe_reading_every_step_samples_per_sec,
            against_bare(loops.recipe_reading_every_step_samples_per_sec),
        );
        println!(
            "recipe's step on case {} with its hooks ({} interleaved rounds; extra time per step against the same round's step without hooks: median, lowest to highest):",
            &wanted[0].name[..1],
            settings.repeats.max(3)
        );
        for cost in &hooks {
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
    Ok(())
}
