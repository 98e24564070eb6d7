//! `recipe reproduce`: the lecture's claims on real data.

mod paper;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use clap::{Args, ValueEnum};

use super::experiment_jobs;
use recipe::backend::select_device;
use recipe::data::{DatasetKind, load_images, load_splits, locate};
use recipe::experiments::{
    Claim, DepthSweep, DepthSweepRow, DropoutEnsemble, FormAgreement, PenaltyTrace,
    PenaltyTraceConfig, ReluRegions, VariantKey, VariantRow, activation_claims, claims_table,
    compare, dropout_claims, dropout_variants, early_stopping_claims, early_stopping_variants,
    first_layer_responses, history_chart, learning_curves, markdown_table, maxout_claims,
    overfitting_setting, regularization_claims, regularization_variants, relu_regions,
    response_chart, trace_penalties, underfitting_dropout_variants, vanishing_gradient_claims,
    variant_folder, weight_histograms,
};
use recipe::train::{TrainConfig, evaluate, evaluate_monte_carlo, thinned_copy, write_atomic};
use serde::Serialize;

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

struct Context {
    device: Device,
    dataset: DatasetKind,
    data_dir: Option<PathBuf>,
    profile: Profile,
    out: PathBuf,
    command: String,
    train_limit: Option<usize>,
    epochs: Option<usize>,
}

impl Context {
    /// `config` on the chosen dataset, with the smoke-run overrides applied.
    fn on_dataset(&self, mut config: TrainConfig) -> TrainConfig {
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

    fn overfitting_setting(&self) -> TrainConfig {
        let epochs = match self.profile {
            Profile::Quick => 20,
            Profile::Full => 40,
        };
        self.on_dataset(overfitting_setting(epochs))
    }

    /// Training images for the sweeps: 10,000 in the quick profile, all in the full one.
    fn sweep_limit(&self) -> Option<usize> {
        match self.profile {
            Profile::Quick => Some(10_000),
            Profile::Full => None,
        }
    }

    /// Epochs for the sweeps: `quick` in the quick profile, 5 in the full one.
    fn sweep_epochs(&self, quick: usize) -> usize {
        match self.profile {
            Profile::Quick => quick,
            Profile::Full => 5,
        }
    }

    /// Runs a depth/activation sweep and writes its results.
    fn sweep(&self, name: &str, title: &str, mut sweep: DepthSweep) -> Result<Vec<DepthSweepRow>> {
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
    fn write(&self, name: &str, title: &str, body: &str, rows: &impl Serialize) -> Result<()> {
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
    let selected = |e: Experiment| args.experiment == e || args.experiment == Experiment::All;
    let mut claims: Vec<Claim> = Vec::new();
    if selected(Experiment::VanishingGradient) {
        claims.extend(vanishing_gradient(&context)?);
    }
    if selected(Experiment::Activations) {
        let sweep = DepthSweep::activations(context.sweep_epochs(3), context.sweep_limit());
        let rows = context.sweep("activations", "Activations at depth 3 (Adam 1e-3)", sweep)?;
        claims.extend(activation_claims(&rows));
        claims.extend(relu_region_claims(&context)?);
    }
    if selected(Experiment::Maxout) {
        let sweep = DepthSweep::maxout_pieces(context.sweep_epochs(3), context.sweep_limit());
        let rows = context.sweep(
            "maxout",
            "Maxout pieces against ReLU at depth 3 (Adam 1e-3)",
            sweep,
        )?;
        maxout_response_plot(&context)?;
        claims.extend(maxout_claims(&rows));
    }
    if selected(Experiment::EarlyStopping) {
        let dir = context.out.join("early-stopping");
        let rows = compare(
            &early_stopping_variants(&context.overfitting_setting()),
            &context.device,
            Some(&dir),
        )?;
        learning_curves("Early stopping on a net that overfits", &rows)
            .write(&dir.join("curves"))?;
        context.write(
            "early-stopping",
            "Early stopping on a net that overfits",
            &format!(
                "{}\n![learning curves](curves.png)\n",
                markdown_table(&rows)
            ),
            &rows,
        )?;
        claims.extend(early_stopping_claims(&rows));
    }
    if selected(Experiment::Regularization) {
        let dir = context.out.join("regularization");
        let rows = compare(
            &regularization_variants(&context.overfitting_setting())?,
            &context.device,
            Some(&dir),
        )?;
        learning_curves("Regularization on a net that overfits", &rows)
            .write(&dir.join("curves"))?;
        weight_histograms("Hidden-layer weights after training", &rows)
            .write(&dir.join("weights"))?;
        context.write(
            "regularization",
            "Regularization on a net that overfits",
            &format!(
                "{}\n![learning curves](curves.png)\n\n![weight histograms](weights.png)\n",
                markdown_table(&rows)
            ),
            &rows,
        )?;
        claims.extend(regularization_claims(&rows));
    }
    if selected(Experiment::Penalties) {
        claims.extend(penalties(&context)?);
    }
    if selected(Experiment::Dropout) {
        let dir = context.out.join("dropout");
        let over = compare(
            &dropout_variants(&context.overfitting_setting())?,
            &context.device,
            Some(&dir),
        )?;
        let under_variants: Vec<_> = underfitting_dropout_variants(5)?
            .into_iter()
            .map(|mut v| {
                v.config = context.on_dataset(v.config);
                v
            })
            .collect();
        let under = compare(&under_variants, &context.device, Some(&dir))?;
        learning_curves("Dropout on a net that overfits", &over).write(&dir.join("curves"))?;
        learning_curves("Dropout on a net that under-fits", &under)
            .write(&dir.join("curves-underfitting"))?;
        let body = format!(
            "On a net that overfits:\n\n{}\n![learning curves](curves.png)\n\n\
             On a net that under-fits:\n\n{}\n![learning curves](curves-underfitting.png)\n",
            markdown_table(&over),
            markdown_table(&under)
        );
        let rows: Vec<&VariantRow> = over.iter().chain(&under).collect();
        context.write(
            "dropout",
            "Dropout helps overfitting, not under-fitting",
            &body,
            &rows,
        )?;
        claims.extend(dropout_claims(&over, &under));
        claims.extend(dropout_ensemble(&context)?);
    }
    if args.experiment == Experiment::All {
        write_report(&context, &claims, false)?;
    }
    Ok(())
}

/// How many training images `config` uses, in words for a results page.
fn training_images(config: &TrainConfig) -> String {
    config
        .data
        .split
        .train_limit
        .map_or("50000".to_string(), |n| n.to_string())
}

/// Traces weights step by step under no penalty, L2 and L1.
fn penalties(context: &Context) -> Result<Vec<Claim>> {
    let base = TrainConfig::new(recipe::models::MlpConfig::new(784, vec![100], 10));
    let mut trace = PenaltyTraceConfig::lecture(base)?;
    trace.base = context.on_dataset(trace.base);
    println!(
        "penalties on {}: {} SGD steps at lr {} with no penalty, L2 {}, L1 {}",
        trace.base.data.dataset, trace.steps, trace.learning_rate, trace.l2, trace.l1
    );
    let measured = trace_penalties(&trace, &context.device)?;
    let dir = context.out.join("penalties");
    measured.chart().write(&dir.join("trace"))?;
    let body = format!(
        "784-100-10 ReLU, {} training images, batch {}, {} steps of plain SGD at lr {}; \
         L2 λ = {} (penalty λ/2 Σw²), L1 λ = {} (penalty λ Σ|w|), the same initial weights \
         for all three. The watched weights go from an input pixel to the first four \
         hidden units.\n\n{}\n![trace](trace.png)\n",
        training_images(&trace.base),
        trace.base.fit.batch_size,
        trace.steps,
        trace.learning_rate,
        trace.l2,
        trace.l1,
        measured.markdown_table()
    );
    context.write("penalties", "L2 and L1 step by step", &body, &measured)?;
    Ok(measured.claims())
}

fn vanishing_gradient(context: &Context) -> Result<Vec<Claim>> {
    let sweep = DepthSweep::lecture(context.sweep_epochs(5), context.sweep_limit());
    let rows = context.sweep(
        "vanishing-gradient",
        "Vanishing gradient: training and test accuracy by depth",
        sweep.clone(),
    )?;
    sweep
        .depth_chart(&rows)
        .write(&context.out.join("vanishing-gradient").join("depth"))?;
    sweep
        .gradient_chart(&rows)
        .write(&context.out.join("vanishing-gradient").join("gradients"))?;
    sweep
        .movement_chart(&rows)
        .write(&context.out.join("vanishing-gradient").join("movement"))?;
    Ok(vanishing_gradient_claims(&rows))
}

/// The trained network and data of the run in `run`, and its first
/// `count` test images as `[count, pixels]` inputs in `[0, 1]`.
fn run_with_test_images(
    context: &Context,
    run: &Path,
    count: usize,
) -> Result<(recipe::models::Mlp, Vec<Vec<f32>>)> {
    let config: TrainConfig = serde_json::from_str(
        &std::fs::read_to_string(run.join("config.json"))
            .with_context(|| format!("reading {}", run.join("config.json").display()))?,
    )?;
    let mlp = config
        .mlp()?
        .init(&context.device)?
        .try_load_file(run.join("model.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", run.join("model.bpk").display()))?;
    let kind = config.image_set()?;
    let files = locate(kind, config.data.data_dir.as_deref())?;
    let test = load_images(&files.test_images, &files.test_labels, kind.classes())?;
    let images = (0..count.min(test.labels.len()))
        .map(|i| test.image(i).iter().map(|&p| p as f32 / 255.0).collect())
        .collect();
    Ok((mlp, images))
}

/// The activations experiment's 3-layer ReLU net on 1,000 test images:
/// one linear function per region, a different one per image.
fn relu_region_claims(context: &Context) -> Result<Vec<Claim>> {
    let dir = context.out.join("activations");
    let (mlp, images) = run_with_test_images(context, &dir.join("relu-3"), 1000)?;
    let features = images.first().map_or(0, Vec::len);
    let inputs = Tensor::<2>::from_data(
        TensorData::new(images.concat(), [images.len(), features]),
        &context.device,
    );
    let regions = relu_regions(&mlp, inputs, &context.device);
    write_pretty_json(&dir.join("regions.json"), &regions)?;
    println!(
        "relu-3 on {} test images: {} distinct activation patterns, median miss of a neighbour's linear map {:.0}%",
        regions.inputs,
        regions.distinct_patterns,
        100.0 * regions.median_miss()
    );
    Ok(regions.claims())
}

/// The dropout experiment's net trained with dropout, evaluated on test
/// images both as the weight-scaled net and as averages of sampled thinned
/// nets (2,000 images in the quick profile, all 10,000 in the full one).
fn dropout_ensemble(context: &Context) -> Result<Vec<Claim>> {
    let dir = context.out.join("dropout");
    let run = variant_folder(&dir, VariantKey::OverfittingDropout);
    let config = recipe::train::read_run_config(&run)?;
    let mut data = load_splits(
        config.image_set()?,
        config.data.data_dir.as_deref(),
        &config.data.split,
    )?;
    if context.profile == Profile::Quick {
        data.test = data.test.slice(0..data.test.len().min(2_000));
    }
    let data = data.flat_data(config.data.standardize)?;
    let plain = context.device.clone();
    let net = config
        .mlp()?
        .init(&plain)?
        .try_load_file(run.join("model.bpk"))
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", run.join("model.bpk").display()))?;
    let weight_scaled = evaluate(
        &net,
        &data.loader(&data.test, 500, None, Some(plain.clone())),
    )?;
    let lecture_form = FormAgreement::measure(
        &net,
        &data.loader(&data.test, 500, None, Some(plain.clone())),
    )?;
    let (thinned, sampling) = thinned_copy(&net, &plain, config.fit.seed);
    let monte_carlo = evaluate_monte_carlo(
        &thinned,
        &data.loader(&data.test, 500, None, Some(sampling)),
        &[1, 2, 5, 10, 20, 50, 100],
    )?;
    let ensemble = DropoutEnsemble {
        weight_scaled,
        monte_carlo,
        lecture_form: Some(lecture_form),
    };
    ensemble.chart().write(&dir.join("ensemble"))?;
    write_pretty_json(&dir.join("ensemble.json"), &ensemble)?;
    println!(
        "dropout as an ensemble: weight-scaled accuracy {:.4}; averages of thinned nets {}",
        ensemble.weight_scaled.accuracy,
        ensemble
            .monte_carlo
            .iter()
            .map(|mc| format!("{}: {:.4}", mc.samples, mc.accuracy))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ensemble.claims())
}

/// Plots what three units of the first layer of the 3-piece Maxout net learned.
fn maxout_response_plot(context: &Context) -> Result<()> {
    let run = context.out.join("maxout").join("maxout-3-3");
    let (mlp, images) = run_with_test_images(context, &run, 2)?;
    let [a, b] = [0, 1].map(|i| images.get(i).cloned().unwrap_or_default());
    let responses = first_layer_responses(&mlp, &a, &b, &[0, 1, 2], 121, &context.device)?;
    response_chart(
        "Three Maxout units (3 pieces) of the first layer: piecewise linear",
        &responses,
    )
    .write(&context.out.join("maxout").join("units"))?;
    println!(
        "wrote {}",
        context.out.join("maxout").join("units.png").display()
    );
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

/// Writes `value` as pretty JSON, atomically.
fn write_pretty_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())?;
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
