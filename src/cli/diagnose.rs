//! `recipe diagnose`: the lecture's flowchart applied to a run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use recipe::backend::select_device;
use recipe::experiments::{compare, markdown_table, remedies, shallow_baseline};
use recipe::models::Mlp;
use recipe::train::{
    Evidence, History, Remedy, Summary, Thresholds, TrainConfig, TrainOptions, TrainedModel,
    Verdict, diagnose, train_mlp,
};

use crate::cli::train::TrainArgs;

/// Settings of `recipe diagnose`.
#[derive(Debug, Clone, Args)]
pub struct DiagnoseArgs {
    /// Diagnose an existing run's artifacts (config.json, summary.json, history.csv) instead of training one
    #[arg(long, value_name = "DIR")]
    pub run: Option<PathBuf>,
    /// Skip training the shallow baseline (the same net with only its first hidden layer)
    #[arg(long)]
    pub no_baseline: bool,
    /// Training accuracy at or above this counts as good on the training data
    #[arg(long, default_value_t = Thresholds::default().good_train_accuracy)]
    pub good_train_accuracy: f64,
    /// Training accuracy this far below the shallow baseline's counts as worse
    #[arg(long, default_value_t = Thresholds::default().baseline_margin)]
    pub baseline_margin: f64,
    /// Training minus validation accuracy above this counts as overfitting
    #[arg(long, default_value_t = Thresholds::default().max_generalization_gap)]
    pub max_gap: f64,
    /// Train each suggested remedy and print a table of what helped
    #[arg(long)]
    pub apply: bool,
    /// The run to diagnose (ignored with --run)
    #[command(flatten)]
    pub train: TrainArgs,
}

fn read_run(dir: &Path) -> Result<(TrainConfig, Summary, History)> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let config: TrainConfig = serde_json::from_str(&read("config.json")?)
        .with_context(|| format!("{}", dir.join("config.json").display()))?;
    let summary: Summary = serde_json::from_str(&read("summary.json")?)
        .with_context(|| format!("{}", dir.join("summary.json").display()))?;
    let history = History::from_csv(&read("history.csv")?)?;
    Ok((config, summary, history))
}

/// Runs the diagnosis and, with `--apply`, the remedies.
pub fn run(args: DiagnoseArgs) -> Result<()> {
    let thresholds = Thresholds {
        good_train_accuracy: args.good_train_accuracy,
        baseline_margin: args.baseline_margin,
        max_generalization_gap: args.max_gap,
    };
    let train_args = args.train.clone().merged()?;
    let device = select_device(train_args.device_name())?;
    let options = TrainOptions::default();
    let (config, summary, history) = match &args.run {
        Some(dir) => read_run(dir)?,
        None => {
            let config = train_args.to_config()?;
            println!(
                "training the run to diagnose: {}",
                config.network.describe()
            );
            let TrainedModel {
                summary, history, ..
            }: TrainedModel<Mlp> = train_mlp(&config, &device, &options)?;
            (config, summary, history)
        }
    };
    let baseline = match (args.no_baseline, shallow_baseline(&config)) {
        (false, Some(baseline)) => {
            println!(
                "training the shallow baseline: {}",
                baseline.network.describe()
            );
            Some(train_mlp(&baseline, &device, &options)?.summary)
        }
        _ => None,
    };
    let diagnosis = diagnose(
        Evidence {
            config: &config,
            summary: &summary,
            history: &history,
            baseline: baseline.as_ref(),
        },
        &thresholds,
    );
    print!("\n{}", diagnosis.render(with_flags));
    if args.apply && diagnosis.verdict != Verdict::Good {
        let variants = remedies(&diagnosis, &config)?;
        println!("applying {} remedies", variants.len() - 1);
        let rows = compare(&variants, &device, None)?;
        println!("\n{}", markdown_table(&rows));
    }
    Ok(())
}

/// A remedy as the command line asks for it: the library's words with the
/// flags that apply it.
fn with_flags(remedy: &Remedy) -> String {
    match remedy {
        Remedy::NonSaturatingActivation => format!("{remedy} (--activation relu)"),
        Remedy::OtherActivation => format!("{remedy} (--activation maxout --pieces 2)"),
        Remedy::AutoInit { current } => {
            format!("use the initializer the activation wants (--init auto), not {current}")
        }
        Remedy::AdaptiveOptimizer => "use an adaptive optimizer (--optimizer adam --lr 1e-3) or add momentum (--momentum 0.9)".to_string(),
        Remedy::EarlyStopping => {
            format!("{remedy} (--early-stopping --patience 3 --restore-best)")
        }
        Remedy::Penalty => format!("{remedy} (--l2 1e-4, --l1 1e-5)"),
        Remedy::Dropout => format!("{remedy} (--dropout 0.5 --input-dropout 0.2)"),
        Remedy::MaxNorm => format!("{remedy} (--max-norm 1)"),
        Remedy::MoreData => format!("{remedy} (--train-limit)"),
        _ => remedy.to_string(),
    }
}
