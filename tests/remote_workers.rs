//! Training on `recipe worker` processes over WebSocket on 127.0.0.1, each
//! serving the CPU (feature `remote`): Burn's multi-device strategy over
//! Burn's remote backend. At most three workers per test, each killed when
//! its test ends.
#![cfg(feature = "remote")]

use std::fs;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use burn::module::Module;
use burn::tensor::Tensor;
use recipe::backend::select_device;
use recipe::train::{TrainOptions, train};

mod common;
use common::{
    assert_refused, assert_same_step, assert_success, epochs_in_history, fresh_dir, points,
    points_config, quiet, recipe,
};

/// A `recipe worker` on a port the system picks, killed when dropped.
struct Worker {
    child: Child,
    address: String,
}

impl Worker {
    fn start() -> Self {
        let mut child = recipe()
            .args(["worker", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the recipe binary runs");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        // Burn's server logs to stdout: a closed pipe would end the worker.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("ws://"))
            .unwrap_or_else(|| panic!("the worker prints its address: {line}"));
        Self {
            child,
            address: format!("{url}/0"),
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One SGD step on two workers with batches of 50 is one step on this
/// process's CPU with the batch of 100, up to the order of the float sums
/// (the workers run the same CPU kernels).
#[test]
fn two_workers_with_half_batches_step_like_one_device_with_the_whole_batch() {
    let workers = [Worker::start(), Worker::start()];
    let local = select_device("cpu").unwrap().autodiff();
    local.seed(7);
    let net = points_config(100, 1).mlp().unwrap().init(&local).unwrap();
    let _ = net.forward(Tensor::zeros([1, 2], &local)); // draw the weights now
    let data = points();
    let one = train(&points_config(100, 1), net.clone(), &data, &local, &quiet()).unwrap();

    let remote: Vec<_> = workers
        .iter()
        .map(|w| select_device(&w.address).unwrap().autodiff())
        .collect();
    let options = TrainOptions {
        devices: remote.clone(),
        ..quiet()
    };
    // `fork`, not `to_device`: moved with `to_device`, the parameters were
    // not tracked on the worker ("Tensor::backward requires a tracked
    // autodiff tensor").
    let on_workers = net.clone().fork(&remote[0]);
    let two = train(
        &points_config(50, 2),
        on_workers,
        &data,
        &remote[0],
        &options,
    )
    .unwrap();
    assert_same_step(&net.valid(), &one.net, &two.net);
}

const RUN: &[&str] = &[
    "train",
    "--hidden",
    "64",
    "--train-limit",
    "3000",
    "--valid-size",
    "500",
    "--epochs",
    "30",
    "--batch-size",
    "50",
    "--seed",
    "3",
];

/// A worker killed mid-run: the run stops with an error naming it, keeps
/// its checkpoints, and `--resume` continues on the worker left.
#[test]
fn a_killed_worker_is_named_and_the_run_resumes_on_the_one_left() {
    let (main, mut doomed) = (Worker::start(), Worker::start());
    let dir = fresh_dir("remote-killed");
    let devices = format!("{},{}", main.address, doomed.address);
    let mut run = recipe()
        .args(RUN)
        .args(["--devices", &devices, "--out"])
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while epochs_in_history(&dir) < 2 {
        assert!(run.try_wait().unwrap().is_none(), "the run ended early");
        assert!(started.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    doomed.kill();
    let deadline = Instant::now() + Duration::from_secs(120);
    while run.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = run.kill();
            panic!("the run did not stop within 2 minutes of its worker's death");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let failed = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("worker {} stopped answering", doomed.address)),
        "{stderr}"
    );
    assert!(stderr.contains("--resume"), "{stderr}");
    let done = epochs_in_history(&dir);
    assert!(done < 30, "the run went on: {done} epochs");

    let resumed = recipe()
        .args(["train", "--devices", &main.address, "--resume"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = assert_success(&resumed);
    assert!(stdout.contains("continues on 1"), "{stdout}");
    assert_eq!(epochs_in_history(&dir), 30);
    let summary: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary.get("devices").map_or(1, |d| d.as_u64().unwrap()), 1);
    fs::remove_dir_all(dir).unwrap();
}

/// Addresses that cannot work are refused before training, in words.
#[test]
fn bad_worker_addresses_and_busy_ports_are_clear_errors() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = fresh_dir("remote-bad");
    let unreachable = format!("ws://127.0.0.1:{closed}/0");
    let output = recipe()
        .args(RUN)
        .args(["--devices", &format!("cpu,{unreachable}"), "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_refused(&output, &format!("worker {unreachable} cannot be used"));
    assert_refused(&output, &format!("recipe worker --port {closed}"));

    let output = recipe()
        .args(RUN)
        .args(["--devices", "ws://127.0.0.1/0,cpu"])
        .output()
        .unwrap();
    assert_refused(&output, "no :PORT after the host");

    let worker = Worker::start();
    let port = worker
        .address
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/0");
    let output = recipe().args(["worker", "--port", port]).output().unwrap();
    assert_refused(&output, "another worker or program holds the port");
}
