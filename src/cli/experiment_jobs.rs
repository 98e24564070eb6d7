//! `recipe reproduce all --jobs N`: the experiments in processes of their
//! own, N at a time, each on its share of the cores.
//!
//! The lecture's nets are small: at batch 100 a second core speeds one
//! training up by about 12% only (`reproduce maxout`: 39.9 s on two threads,
//! 44.8 s on one, the same figures). Two experiments side by side, one
//! thread each, use the machine better. Processes, not threads, because
//! Burn's random generator is one per process: two trainings in one process
//! would draw from it in turn and no longer be reproducible.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

use clap::ValueEnum;

use super::reproduce::{Experiment, Profile, ReproduceArgs};

/// The experiments of `all`, the longest first (the quick profile's
/// measured times), so that the last to start are the short ones.
const LONGEST_FIRST: [Experiment; 7] = [
    Experiment::VanishingGradient,
    Experiment::Regularization,
    Experiment::Dropout,
    Experiment::EarlyStopping,
    Experiment::Maxout,
    Experiment::Activations,
    Experiment::Penalties,
];

/// How many experiments to run at once: `requested`, or where that is 0,
/// one per core on a CPU device (at most one per experiment) and one on a
/// GPU, which the processes would only share.
pub fn jobs(requested: usize, device: &str) -> usize {
    if requested > 0 {
        return requested;
    }
    let on_cpu = matches!(device, "cpu" | "flex" | "ndarray");
    if !on_cpu {
        return 1;
    }
    cores().min(LONGEST_FIRST.len())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One experiment's process and where its output goes.
struct Running {
    experiment: String,
    child: Child,
    log: PathBuf,
    started: Instant,
}

/// Runs every experiment of `all` as `recipe reproduce <experiment>` with
/// `args`' settings, `jobs` at a time; their output goes to
/// `<out>/logs/<experiment>.txt`. Fails naming the first experiment that
/// failed and its log, after the others have finished.
pub fn run_experiments(args: &ReproduceArgs, jobs: usize) -> Result<()> {
    let logs = args.out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let threads = (cores() / jobs).max(1);
    println!(
        "running the {} experiments {jobs} at a time, {threads} thread(s) each; their output goes to {}",
        LONGEST_FIRST.len(),
        logs.display()
    );
    let mut waiting = LONGEST_FIRST.iter().copied();
    let mut running: Vec<Running> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    loop {
        while running.len() < jobs {
            let Some(experiment) = waiting.next() else {
                break;
            };
            running.push(start(args, experiment, threads, &logs)?);
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        let mut still = Vec::new();
        for mut job in running {
            match job.child.try_wait()? {
                None => still.push(job),
                Some(status) => {
                    let seconds = job.started.elapsed().as_secs_f64();
                    if status.success() {
                        println!("   {} finished ({seconds:.0}s)", job.experiment);
                    } else {
                        println!("   {} FAILED ({status}, {seconds:.0}s)", job.experiment);
                        failed.push(failure(&job.experiment, &job.log));
                    }
                }
            }
        }
        running = still;
    }
    if let Some(first) = failed.first() {
        bail!("{first}");
    }
    Ok(())
}

/// The experiment's name on the command line, as clap spells it.
fn name(experiment: Experiment) -> String {
    experiment
        .to_possible_value()
        .map(|value| value.get_name().to_string())
        .unwrap_or_default()
}

/// Starts `recipe reproduce <experiment>` with `args`' settings.
fn start(
    args: &ReproduceArgs,
    experiment: Experiment,
    threads: usize,
    logs: &Path,
) -> Result<Running> {
    let experiment = name(experiment);
    let log = logs.join(format!("{experiment}.txt"));
    let file =
        std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut command = Command::new(std::env::current_exe().context("finding the recipe binary")?);
    command
        .args(["reproduce", &experiment, "--jobs", "1"])
        .args(["--profile", profile_name(args)])
        .args(["--dataset", &args.dataset, "--device", &args.device])
        .arg("--out")
        .arg(&args.out);
    if let Some(dir) = &args.data_dir {
        command.arg("--data-dir").arg(dir);
    }
    if let Some(limit) = args.train_limit {
        command.args(["--train-limit", &limit.to_string()]);
    }
    if let Some(epochs) = args.epochs {
        command.args(["--epochs", &epochs.to_string()]);
    }
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        command.env("RAYON_NUM_THREADS", threads.to_string());
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting `recipe reproduce {experiment}`"))?;
    println!("   {experiment} started");
    Ok(Running {
        experiment,
        child,
        log,
        started: Instant::now(),
    })
}

fn profile_name(args: &ReproduceArgs) -> &'static str {
    match args.profile {
        Profile::Quick => "quick",
        Profile::Full => "full",
    }
}

/// The error for a failed experiment: its log's last lines and where the
/// rest is.
fn failure(experiment: &str, log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    format!(
        "`recipe reproduce {experiment}` failed; its output is in {}, ending:\n{tail}",
        log.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_experiment_of_all_runs_once() {
        let mut names: Vec<String> = LONGEST_FIRST.iter().map(|&e| name(e)).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), LONGEST_FIRST.len());
        let all: Vec<Experiment> = Experiment::value_variants()
            .iter()
            .copied()
            .filter(|e| !matches!(e, Experiment::All | Experiment::Paper))
            .collect();
        assert_eq!(all.len(), LONGEST_FIRST.len());
        for experiment in all {
            assert!(LONGEST_FIRST.contains(&experiment), "{experiment:?}");
        }
    }

    #[test]
    fn a_gpu_runs_one_experiment_at_a_time_unless_asked() {
        assert_eq!(jobs(0, "wgpu"), 1);
        assert_eq!(jobs(0, "cuda:1"), 1);
        assert_eq!(jobs(3, "wgpu"), 3);
        assert!((1..=7).contains(&jobs(0, "cpu")));
    }
}
