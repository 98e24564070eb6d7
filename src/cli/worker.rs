//! `recipe worker`: serve a device of this machine to `recipe train
//! --devices ws://HOST:PORT/0,...` on another (feature `remote`).

use std::io::Write;

use anyhow::{Result, bail};
use clap::Args;
use recipe::backend::select_device;
use recipe::remote::{WorkerAddress, listen};

/// Serve a device of this machine to training runs on others.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Port to listen on (0: one the system picks, printed at the start)
    #[arg(long)]
    pub port: u16,
    /// Address to listen on: 127.0.0.1 serves this machine only; 0.0.0.0
    /// serves every network (the traffic is unencrypted: trusted networks only)
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: String,
    /// The device to serve: cpu, wgpu, wgpu:1, cuda:1, ...
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Binds the port, checks the device, then serves until Ctrl+C or SIGTERM.
pub fn run(args: &WorkerArgs) -> Result<()> {
    if WorkerAddress::is_remote(&args.device) {
        bail!(
            "--device {}: a worker serves a device of this machine (cpu, wgpu, cuda:1, ...)",
            args.device
        );
    }
    let listener = listen(&args.bind, args.port)?;
    let device = select_device(&args.device)?;
    let address = listener.local_addr()?;
    println!(
        "recipe worker: serving {} on ws://{address} (train with --devices ws://{address}/0); \
         Ctrl+C stops it",
        args.device
    );
    std::io::stdout().flush()?;
    serve(device, listener)
}

#[cfg(feature = "remote")]
fn serve(device: burn::tensor::Device, listener: std::net::TcpListener) -> Result<()> {
    Ok(recipe::remote::serve(device, listener)?)
}

#[cfg(not(feature = "remote"))]
fn serve(_: burn::tensor::Device, _: std::net::TcpListener) -> Result<()> {
    bail!(
        "recipe worker needs Burn's remote server, which this build lacks (rebuild with `--features remote`)"
    )
}
