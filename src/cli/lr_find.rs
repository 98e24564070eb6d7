//! `recipe lr-find`: the learning-rate range test of the net `recipe train`
//! would train.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use recipe::backend::select_device;
use recipe::plots::{LineChart, Series};
use recipe::train::{LrFindConfig, LrFindResult, lr_find_mlp, write_atomic};

use crate::cli::train::TrainArgs;

/// Settings of `recipe lr-find`: the network, data, optimizer, batch size,
/// seed and hooks as for `recipe train` (the epoch and early-stopping
/// options are not used), and the range.
#[derive(Debug, Clone, Args)]
pub struct LrFindArgs {
    /// The network, data and optimizer, as `recipe train` takes them
    #[command(flatten)]
    pub train: TrainArgs,
    /// The learning rate of the first step
    #[arg(long, default_value_t = LrFindConfig::default().start_lr)]
    pub start_lr: f64,
    /// The learning rate of the last step
    #[arg(long, default_value_t = LrFindConfig::default().end_lr)]
    pub end_lr: f64,
    /// Steps from --start-lr to --end-lr, the learning rate growing by the same factor each step
    #[arg(long, default_value_t = LrFindConfig::default().steps)]
    pub steps: usize,
    /// Weight of the past in the smoothed loss, in [0, 1) (0: no smoothing)
    #[arg(long, default_value_t = LrFindConfig::default().smoothing)]
    pub smoothing: f64,
}

/// Runs the test, writes `lr_find.csv`, `lr_find.json` and the chart
/// `lr_find.{png,svg}` into `--out` (default `runs/lr-find-<time>`), and
/// prints the suggestions.
pub fn run(args: LrFindArgs) -> Result<()> {
    let train = args.train.merged()?;
    let config = train.to_config()?;
    let device = select_device(train.device_name())?;
    let test = LrFindConfig {
        start_lr: args.start_lr,
        end_lr: args.end_lr,
        steps: args.steps,
        smoothing: args.smoothing,
        ..LrFindConfig::default()
    };
    let out = train.out_or("lr-find");
    println!(
        "learning-rate range test of {} on {} ({}, batch {}): {} steps from {} to {}",
        config.network.describe(),
        config.data.dataset,
        config.fit.optimizer,
        config.fit.batch_size,
        test.steps,
        test.start_lr,
        test.end_lr
    );
    let result = lr_find_mlp(&config, &test, &device)?;
    write_results(&result, &out)?;
    print_suggestions(&result, &out);
    Ok(())
}

fn write_results(result: &LrFindResult, out: &Path) -> Result<()> {
    let mut csv = String::from("step,learning_rate,loss,smoothed_loss\n");
    for p in &result.points {
        let _ = writeln!(
            csv,
            "{},{},{},{}",
            p.step, p.learning_rate, p.loss, p.smoothed_loss
        );
    }
    write_atomic(&out.join("lr_find.csv"), csv.as_bytes())?;
    let json = serde_json::to_string_pretty(result).context("lr_find.json")?;
    write_atomic(&out.join("lr_find.json"), json.as_bytes())?;
    chart(result).write(&out.join("lr_find"))?;
    Ok(())
}

/// Loss (raw and smoothed) against log10 of the learning rate, with the
/// steepest-descent suggestion marked; losses above 1.5 times the first
/// are left out (they are in `lr_find.csv`).
fn chart(result: &LrFindResult) -> LineChart {
    // The last steps' loss can be thousands: leave out what is above 1.5
    // times the first smoothed loss, so the region of interest is readable.
    let cap = result
        .points
        .first()
        .map_or(f64::MAX, |p| 1.5 * p.smoothed_loss);
    let along = |value: fn(&recipe::train::LrFindPoint) -> f64| -> Vec<(f64, f64)> {
        result
            .points
            .iter()
            .map(|p| (p.learning_rate.log10(), value(p)))
            .filter(|(_, y)| y.is_finite() && *y <= cap)
            .collect()
    };
    let mut chart = LineChart::new(
        "Learning-rate range test",
        "log10(learning rate)",
        "training loss",
    )
    .with(Series::new("loss", along(|p| p.loss)).dashed())
    .with(Series::new("smoothed loss", along(|p| p.smoothed_loss)));
    if let Some(steepest) = result.steepest {
        let losses: Vec<f64> = along(|p| p.smoothed_loss).iter().map(|p| p.1).collect();
        let (low, high) = losses
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &y| (lo.min(y), hi.max(y)));
        let x = steepest.log10();
        chart = chart.with(Series::new(
            format!("steepest descent: {steepest:.2e}"),
            vec![(x, low), (x, high)],
        ));
    }
    chart
}

fn print_suggestions(result: &LrFindResult, out: &Path) {
    let taken = result.points.len();
    let last = result.points.last().map_or(0.0, |p| p.learning_rate);
    if result.stopped_early {
        println!("the loss blew up after {taken} steps, at learning rate {last:.2e}");
    }
    match result.steepest {
        Some(lr) => {
            println!("steepest descent of the smoothed loss: learning rate {lr:.2e} (suggested)")
        }
        None => println!("no steepest descent: too few steps before the lowest loss"),
    }
    if let Some(lr) = result.min_loss_over_10 {
        println!("lowest smoothed loss / 10: learning rate {lr:.2e}");
    }
    println!("wrote {}", PathBuf::from(out).join("lr_find.csv").display());
}
