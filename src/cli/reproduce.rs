//! `recipe reproduce`: the lecture's claims on real data.

mod context;
mod lecture;
mod paper;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};

use super::experiment_jobs;
use recipe::backend::select_device;
use recipe::data::DatasetKind;
use recipe::experiments::{
    Claim, DepthSweepRow, DropoutEnsemble, PenaltyTrace, ReluRegions, VariantRow,
    activation_claims, claims_table, dropout_claims, early_stopping_claims, maxout_claims,
    regularization_claims, vanishing_gradient_claims,
};
use recipe::train::write_atomic;

use context::Context;
use paper::{PaperSelection, paper};

/// Which claim to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Experiment {
    /// Sigmoid vs ReLU vs Maxout across depth 1..9: deep sigmoid nets fail on the training data.
    VanishingGradient,
    /// Ten activations (sigmoid, tanh, the ReLU family, SELU, GELU, SiLU, Maxout) at depth 3.
    Activations,
    /// Maxout with 2 to 5 pieces against ReLU at depth 3.
    Maxout,
    /// The whole epoch budget vs early stopping on validation loss / accuracy.
    EarlyStopping,
    /// None / L2 / L1 / L1+L2 / max-norm on a net that overfits.
    Regularization,
    /// L2 and L1 step by step: a weight with no data gradient under plain SGD.
    Penalties,
    /// Dropout on a net that overfits, and on one that under-fits.
    Dropout,
    /// Every experiment, then report.md with each claim and its verdict.
    All,
    /// The papers' records (Srivastava et al. 2014 Tables 9 and 2, Goodfellow et
    /// al. 2013's Maxout) beside recipe's runs; hours at --profile full, not part of `all`.
    Paper,
}

/// How much compute to spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Profile {
    /// Fewer images and epochs: the shape of each result in minutes on 2 cores.
    #[default]
    Quick,
    /// The lecture's settings: all 50,000 training images for the depth sweep, 40 epochs for overfitting.
    Full,
}

/// Settings of `recipe reproduce`.
#[derive(Debug, Clone, Args)]
pub struct ReproduceArgs {
    /// The experiment
    #[arg(value_enum, default_value = "all")]
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
    #[arg(long, env = "RECIPE_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Output folder
    #[arg(long, default_value = "runs/reproduce")]
    pub out: PathBuf,
    /// Override the profile's number of training images (for a smoke run)
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Override the profile's number of epochs (for a smoke run)
    #[arg(long)]
    pub epochs: Option<usize>,
    /// `paper` only: train just the run of this name (`--only max-norm`),
    /// or the runs whose name contains this text (`--only maxout`); several,
    /// separated by commas (`--only "L2,max-norm"`)
    #[arg(long)]
    pub only: Option<String>,
    /// `paper` only: train these seeds of each run instead of the
    /// protocol's (`--seeds 1` or `--seeds 2,3`); fewer are listed with the
    /// departures
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// `paper` only: stop phase 1 after this many epochs without a better
    /// validation score, in place of each protocol's patience; listed with
    /// the departures
    #[arg(long)]
    pub patience: Option<usize>,
    /// `paper` only: train no phase 1; take each run's and seed's from this
    /// results.json of an earlier `reproduce paper` whose runs did not
    /// retrain, and run only the retraining afresh on all 60,000 images,
    /// which needs nothing of phase 1 but the epoch it kept
    #[arg(long, value_name = "RESULTS_JSON")]
    pub phase_one: Option<PathBuf>,
    /// `paper` only: join the rows of the picked runs from this results.json
    /// of an earlier `reproduce paper` to the report, for the seeds this
    /// command does not train (a run trained in pieces, a seed a machine);
    /// refused if their departures from the paper differ from this
    /// command's; repeat for several files
    #[arg(long, value_name = "RESULTS_JSON")]
    pub merge_results: Vec<PathBuf>,
    /// `all` only: experiments to run at once, each in a process of its own
    /// with its share of the cores (0: one per core on a CPU device, one on
    /// a GPU); each experiment's output goes to OUT/logs/
    #[arg(long, default_value_t = 0)]
    pub jobs: usize,
    /// Train nothing: judge the claims again from the results.json files an
    /// earlier `reproduce all` left in --out, and rewrite its report.md
    #[arg(long)]
    pub from_results: bool,
}

impl Default for ReproduceArgs {
    fn default() -> Self {
        Self {
            experiment: Experiment::All,
            profile: Profile::Quick,
            dataset: "mnist".into(),
            data_dir: None,
            device: "cpu".into(),
            out: PathBuf::from("runs/reproduce"),
            train_limit: None,
            epochs: None,
            only: None,
            seeds: None,
            patience: None,
            phase_one: None,
            merge_results: Vec::new(),
            jobs: 0,
            from_results: false,
        }
    }
}

/// The command line as a shell would take it back: an argument with a
/// space or a shell character single-quoted (`--only 'validated EMA'`).
fn shell_words(args: impl IntoIterator<Item = String>) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:,=+@%".contains(c);
    args.into_iter()
        .map(|arg| {
            if !arg.is_empty() && arg.chars().all(plain) {
                arg
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the experiment(s); `all` also writes `report.md`.
pub fn run(args: &ReproduceArgs) -> Result<()> {
    let context = Context {
        device: select_device(&args.device)?,
        dataset: args.dataset.parse()?,
        data_dir: args.data_dir.clone(),
        profile: args.profile,
        out: args.out.clone(),
        command: shell_words(std::env::args()),
        train_limit: args.train_limit,
        epochs: args.epochs,
    };
    if args.from_results {
        if args.experiment != Experiment::All {
            bail!("--from-results judges every claim: give `all` (the default) as the experiment");
        }
        let claims = judge_results(&context.out)?;
        let earlier = Context {
            dataset: dataset_of_results(&context.out)?,
            ..context
        };
        return write_report(&earlier, &claims, true);
    }
    if args.experiment == Experiment::Paper {
        let selection = PaperSelection {
            only: args.only.as_deref(),
            seeds: args.seeds.as_deref(),
            patience: args.patience,
            phase_one: args.phase_one.as_deref(),
            merge_results: &args.merge_results,
        };
        return paper(&context, selection);
    } else if args.only.is_some()
        || args.seeds.is_some()
        || args.patience.is_some()
        || args.phase_one.is_some()
        || !args.merge_results.is_empty()
    {
        bail!(
            "--only, --seeds, --patience, --phase-one and --merge-results pick and change runs \
             of `paper`; the other experiments run whole"
        );
    }
    let jobs = experiment_jobs::jobs(args.jobs, &args.device);
    if args.experiment == Experiment::All && jobs > 1 {
        experiment_jobs::run_experiments(args, jobs)?;
        return write_report(&context, &judge_results(&context.out)?, false);
    } else if args.experiment != Experiment::All && args.jobs > 1 {
        bail!("--jobs runs the experiments of `all` side by side; one experiment runs alone");
    }
    let mut claims: Vec<Claim> = Vec::new();
    for &experiment in Experiment::value_variants() {
        let lecture = !matches!(experiment, Experiment::All | Experiment::Paper);
        if lecture && (args.experiment == experiment || args.experiment == Experiment::All) {
            claims.extend(lecture::measure(experiment, &context)?);
        }
    }
    if args.experiment == Experiment::All {
        write_report(&context, &claims, false)?;
    }
    Ok(())
}

/// The image set an earlier `reproduce all` in `out` trained on, as its
/// first depth-sweep run recorded it.
fn dataset_of_results(out: &Path) -> Result<DatasetKind> {
    let sweep = out.join("vanishing-gradient");
    let entries =
        std::fs::read_dir(&sweep).with_context(|| format!("reading {}", sweep.display()))?;
    let mut runs: Vec<PathBuf> = entries
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.join("config.json").is_file())
        .collect();
    runs.sort();
    let Some(run) = runs.first() else {
        bail!("{} holds no run with a config.json", sweep.display());
    };
    Ok(recipe::train::read_run_config(run)?.image_set()?)
}

/// The claims judged from the `results.json` of each experiment in `out`.
fn judge_results(out: &Path) -> Result<Vec<Claim>> {
    fn json<T: serde::de::DeserializeOwned>(out: &Path, file: &str) -> Result<T> {
        let path = out.join(file);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (run `recipe reproduce all --out {}` first)",
                path.display(),
                out.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))
    }
    let depth: Vec<DepthSweepRow> = json(out, "vanishing-gradient/results.json")?;
    let activations: Vec<DepthSweepRow> = json(out, "activations/results.json")?;
    let regions: ReluRegions = json(out, "activations/regions.json")?;
    let maxout: Vec<DepthSweepRow> = json(out, "maxout/results.json")?;
    let stopping: Vec<VariantRow> = json(out, "early-stopping/results.json")?;
    let regularization: Vec<VariantRow> = json(out, "regularization/results.json")?;
    let trace: PenaltyTrace = json(out, "penalties/results.json")?;
    // The dropout experiment's file holds both nets; the claims find each
    // variant by its key.
    let dropout: Vec<VariantRow> = json(out, "dropout/results.json")?;
    let ensemble: DropoutEnsemble = json(out, "dropout/ensemble.json")?;
    let mut claims = vanishing_gradient_claims(&depth);
    claims.extend(activation_claims(&activations));
    claims.extend(regions.claims());
    claims.extend(maxout_claims(&maxout));
    claims.extend(early_stopping_claims(&stopping));
    claims.extend(regularization_claims(&regularization));
    claims.extend(trace.claims());
    claims.extend(dropout_claims(&dropout, &dropout));
    claims.extend(ensemble.claims());
    Ok(claims)
}

/// Writes `report.md`; `judged_again`: the claims come from the results of
/// an earlier run (`--from-results`), which the report says.
fn write_report(context: &Context, claims: &[Claim], judged_again: bool) -> Result<()> {
    let reproduced = claims.iter().filter(|c| c.reproduced == Some(true)).count();
    let judged_again = if judged_again {
        " The claims were judged again from the results.json files an earlier run left in this folder; \
         the runs themselves were not repeated."
    } else {
        ""
    };
    let report = format!(
        "# Recipe of Deep Learning: the lecture's claims, measured\n\n\
         Produced by `{}` on {}. {reproduced} of {} claims reproduced; each verdict \
         applies the printed criterion to the numbers in the experiment's `results.md`.{judged_again}\n\n{}",
        context.command,
        context.dataset,
        claims.len(),
        claims_table(claims)
    );
    let path: &Path = &context.out.join("report.md");
    write_atomic(path, report.as_bytes())?;
    println!("\n{}\nreport: {}", claims_table(claims), path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::shell_words;

    #[test]
    fn the_command_line_quotes_what_a_shell_would_split() {
        let args = [
            "recipe",
            "reproduce",
            "--only",
            "validated EMA",
            "--out",
            "/tmp/a,b",
            "it's",
            "",
        ];
        assert_eq!(
            shell_words(args.map(String::from)),
            r"recipe reproduce --only 'validated EMA' --out /tmp/a,b 'it'\''s' ''"
        );
    }
}
