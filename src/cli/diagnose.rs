//! `recipe diagnose`: the lecture's flowchart applied to a run.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use burn::tensor::Device;
use clap::Args;
use recipe::backend::select_device;
use recipe::experiments::{compare, markdown_table, remedies, shallow_baseline};
use recipe::train::{
    CheckThresholds, Diagnosis, Evidence, History, LayerGradient, LayerGradients, Remedy, Summary,
    Thresholds, TrainConfig, TrainError, TrainOptions, diagnose, tenth_of, train_mlp,
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

/// A run as the diagnosis reads it.
struct RunFiles {
    config: TrainConfig,
    summary: Summary,
    history: History,
    layers: Vec<LayerGradient>,
}

fn read_run(dir: &Path) -> Result<RunFiles> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
    };
    let config: TrainConfig = serde_json::from_str(&read("config.json")?)
        .with_context(|| format!("{}", dir.join("config.json").display()))?;
    let summary: Summary = serde_json::from_str(&read("summary.json")?)
        .with_context(|| format!("{}", dir.join("summary.json").display()))?;
    let history = History::from_csv(&read("history.csv")?)
        .with_context(|| format!("{}", dir.join("history.csv").display()))?;
    let layers_file = dir.join("layers.csv");
    let layers = if layers_file.exists() {
        LayerGradients::read(&layers_file, history.epochs.len())?
    } else {
        Vec::new()
    };
    Ok(RunFiles {
        config,
        summary,
        history,
        layers,
    })
}

/// Runs the diagnosis and, with `--apply`, the remedies.
pub fn run(args: DiagnoseArgs) -> Result<()> {
    let thresholds = Thresholds {
        good_train_accuracy: args.good_train_accuracy,
        baseline_margin: args.baseline_margin,
        max_generalization_gap: args.max_gap,
        checks: CheckThresholds::default(),
    };
    let train_args = args.train.clone().merged()?;
    let device = select_device(train_args.device_name())?;
    let (config, diagnosis, ran) = match &args.run {
        Some(dir) => {
            let run = read_run(dir)?;
            let diagnosis = diagnose_run(&run, &args, &thresholds, &device)?;
            (run.config, diagnosis, true)
        }
        None => {
            let mut config = train_args.to_config()?;
            // The gradient-ratio check reads the per-layer gradients.
            config.fit.record_layer_gradients = true;
            println!(
                "training the run to diagnose: {}",
                config.network.describe()
            );
            match train_mlp(&config, &device, &TrainOptions::default()) {
                Ok(trained) => {
                    let run = RunFiles {
                        config,
                        summary: trained.summary,
                        history: trained.history,
                        layers: trained.layer_gradients,
                    };
                    let diagnosis = diagnose_run(&run, &args, &thresholds, &device)?;
                    (run.config, diagnosis, true)
                }
                Err(TrainError::Diverged { epoch, loss, .. }) => {
                    let diagnosis = Diagnosis::diverged(&config, epoch, loss);
                    (config, diagnosis, false)
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    print!("\n{}", diagnosis.render(with_flags));
    if args.apply {
        let mut variants = remedies(&diagnosis, &config)?;
        if !ran {
            // The run as diagnosed diverges: nothing to compare it by.
            variants.remove(0);
        }
        if variants.iter().all(|v| v.name == "as diagnosed") {
            println!("no remedy to apply: none of them is a change of settings");
            return Ok(());
        }
        println!("applying {} remedies", variants.len() - usize::from(ran));
        let rows = compare(&variants, &device, None)?;
        println!("\n{}", markdown_table(&rows));
    }
    Ok(())
}

/// The checks and the flowchart on a finished run, with its shallow
/// baseline trained unless `--no-baseline`.
fn diagnose_run(
    run: &RunFiles,
    args: &DiagnoseArgs,
    thresholds: &Thresholds,
    device: &Device,
) -> Result<Diagnosis> {
    let baseline = match (args.no_baseline, shallow_baseline(&run.config)) {
        (false, Some(baseline)) => {
            println!(
                "training the shallow baseline: {}",
                baseline.network.describe()
            );
            Some(train_mlp(&baseline, device, &TrainOptions::default())?.summary)
        }
        _ => None,
    };
    Ok(diagnose(
        Evidence {
            config: &run.config,
            summary: &run.summary,
            history: &run.history,
            baseline: baseline.as_ref(),
            layers: &run.layers,
        },
        thresholds,
    ))
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
        Remedy::CheckSetup => format!("{remedy} (--standardize scales raw inputs)"),
        Remedy::LowerLearningRate { learning_rate } => {
            format!("{remedy} (--lr {})", tenth_of(*learning_rate))
        }
        Remedy::GradientClipping => format!("{remedy} (--clip norm:1)"),
        Remedy::LeakyActivation => format!("{remedy} (--activation leaky-relu:0.01)"),
        _ => remedy.to_string(),
    }
}
