//! The `recipe` command: train networks and reproduce the lecture "Recipe of
//! Deep Learning" on MNIST. With no command it runs `reproduce all --profile
//! quick`.

mod cli;

use std::process::ExitCode;

use anyhow::Result;
use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::{Args, Parser, Subcommand};
use recipe::backend::select_device;
use recipe::train::{Summary, TrainOptions, resume_mlp, train_mlp};

use cli::bench::{self, BenchArgs};
use cli::data::{self, DataCommand};
use cli::diagnose::{self, DiagnoseArgs};
use cli::evaluate::{self, EvaluateArgs};
use cli::lr_find::{self, LrFindArgs};
use cli::reproduce::{self, ReproduceArgs};
use cli::train::TrainArgs;
use cli::worker::{self, WorkerArgs};

/// Train deep nets the way the lecture "Recipe of Deep Learning" teaches.
///
/// With no command, runs `recipe reproduce all --profile quick` on the bundled
/// MNIST: every claim of the lecture, measured, with a report.
#[derive(Debug, Parser)]
#[command(name = "recipe", version, after_help = activations_help())]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// The registered activations, as `--help` lists them (from the registry,
/// so the list cannot go stale).
fn activations_help() -> String {
    format!(
        "Activations (--activation): {}.",
        recipe::models::activation_usages()
    )
}

/// `recipe train`: a new run, or `--resume DIR` to continue a stopped one.
#[derive(Debug, Args)]
struct TrainCommand {
    #[command(flatten)]
    args: TrainArgs,
    /// Continue the run in DIR (killed or stopped) from its last complete epoch,
    /// with the settings of DIR/config.json; only --device or --devices (the devices
    /// it continues on, as many as it had or not) may be given with it
    #[arg(long, value_name = "DIR")]
    resume: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Train one MLP and save config.json, history.csv, summary.json and its weights
    #[command(after_help = activations_help())]
    Train(TrainCommand),
    /// Reproduce a claim of the lecture on real data
    Reproduce(ReproduceArgs),
    /// Apply the lecture's flowchart to a run: optimization problem, overfitting, or neither
    #[command(after_help = activations_help())]
    Diagnose(DiagnoseArgs),
    /// Evaluate a finished run's weights again: weight-scaled, and as the mean of sampled thinned nets (--monte-carlo)
    Evaluate(EvaluateArgs),
    /// Inspect or download the datasets
    #[command(subcommand)]
    Data(DataCommand),
    /// Measure training and inference throughput (see BENCHMARKS.md)
    Bench(BenchArgs),
    /// Learning-rate range test: train a few steps with a growing learning rate and suggest one
    LrFind(LrFindArgs),
    /// Serve a device of this machine to `recipe train --devices ws://HOST:PORT/0,...` (feature `remote`)
    Worker(WorkerArgs),
}

fn main() -> ExitCode {
    recipe::allocator::keep_freed_memory();
    die_quietly_on_a_closed_pipe();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Train(TrainCommand {
            args,
            resume: Some(dir),
        })) => resume(args, &dir),
        Some(Command::Train(TrainCommand { args, resume: None })) => train(args),
        Some(Command::Reproduce(args)) => reproduce::run(&args),
        Some(Command::Diagnose(args)) => diagnose::run(args),
        Some(Command::Evaluate(args)) => evaluate::run(&args),
        Some(Command::Data(command)) => data::run(&command),
        Some(Command::Bench(args)) => bench::run(&args),
        Some(Command::LrFind(args)) => lr_find::run(args),
        Some(Command::Worker(args)) => worker::run(&args),
        None => reproduce::run(&ReproduceArgs::default()),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if let Some(hint) = device_source_hint(&error) {
                eprintln!("{hint}");
            }
            ExitCode::from(2)
        }
    }
}

/// For a device error when no `--device` was given: says that the device
/// came from the environment, which is easy to forget.
fn device_source_hint(error: &anyhow::Error) -> Option<String> {
    let is_device_error = error.chain().any(|cause| {
        cause
            .downcast_ref::<recipe::backend::BackendError>()
            .is_some()
    });
    let on_command_line =
        std::env::args().any(|arg| arg == "--device" || arg.starts_with("--device="));
    let from_env = std::env::var(recipe::backend::DEVICE_ENV).ok()?;
    (is_device_error && !on_command_line).then(|| {
        format!(
            "note: the device was named by the environment: {}={from_env}",
            recipe::backend::DEVICE_ENV
        )
    })
}

/// Ends the process by SIGPIPE, as Unix tools do, when whoever reads its
/// output goes away (`recipe data info | head -1`). Rust's runtime ignores
/// the signal, so `println!` would panic instead. Every file recipe writes is
/// written atomically, so being killed between two lines loses nothing.
fn die_quietly_on_a_closed_pipe() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: called first in main, before any other thread exists; SIG_DFL
    // is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn train(args: TrainArgs) -> Result<()> {
    let args = args.merged()?;
    let config = args.to_config()?;
    let device = select_device(args.device_name())?;
    let out = args.out_or("train");
    println!(
        "training {} on {} ({} device), {} epochs of {}; artifacts in {}",
        config.network.describe(),
        config.data.dataset,
        args.device_name(),
        config.fit.epochs,
        config.fit.optimizer,
        out.display()
    );
    let options = TrainOptions {
        out_dir: Some(out.clone()),
        overwrite: args.overwrite,
        devices: args
            .device_names()
            .iter()
            .map(|name| select_device(name))
            .collect::<Result<_, _>>()?,
        read_metrics_every: args.read_metrics_every(),
        ..TrainOptions::default()
    };
    let trained = train_mlp(&config, &device, &options)
        .map_err(|error| name_silent_workers(error.into(), args.device_names(), &out))?;
    print_final(&trained.summary, &out);
    Ok(())
}

fn resume(args: TrainArgs, dir: &Path) -> Result<()> {
    let device_name = args.device_name().to_string();
    let names = args.device_names().to_vec();
    let read_metrics_every = args.read_metrics_every();
    let devices = args
        .device_names()
        .iter()
        .map(|name| select_device(name))
        .collect::<Result<_, _>>()?;
    let others = TrainArgs {
        device: None,
        devices: None,
        read_metrics_every: None,
        ..args
    };
    if others != TrainArgs::default() {
        bail!(
            "--resume continues the run with the settings of {}; give no other option but --device, --devices or --read-metrics-every",
            dir.join("config.json").display()
        );
    }
    let device = select_device(&device_name)?;
    let options = TrainOptions {
        devices,
        read_metrics_every,
        ..TrainOptions::default()
    };
    let trained = resume_mlp(dir, &device, &options)
        .map_err(|error| name_silent_workers(error.into(), &names, dir))?;
    print_final(&trained.summary, dir);
    Ok(())
}

/// When a run on remote workers fails, says which of them stopped answering
/// and how to continue the run on those still up.
fn name_silent_workers(error: anyhow::Error, devices: &[String], run_dir: &Path) -> anyhow::Error {
    let silent = recipe::remote::silent_workers(devices);
    if silent.is_empty() {
        return error;
    }
    error.context(format!(
        "worker {} stopped answering; the run's checkpoints are kept in {}: continue it with \
         `recipe train --resume {} --devices <the devices still up>`",
        silent.join(", "),
        run_dir.display(),
        run_dir.display()
    ))
}

fn print_final(s: &Summary, out: &Path) {
    println!(
        "final: train accuracy {:.4} (loss {:.4}), valid {:.4} ({:.4}), test {:.4} ({:.4}); {:.1}s",
        s.train_accuracy,
        s.train_loss,
        s.valid_accuracy,
        s.valid_loss,
        s.test_accuracy,
        s.test_loss,
        s.train_seconds
    );
    println!("wrote {}", out.display());
}
