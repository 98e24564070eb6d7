//! `recipe data`: what the datasets on this machine are.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use recipe::data::{DatasetKind, locate, read_idx};
use sha2::{Digest, Sha256};

/// `recipe data` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum DataCommand {
    /// Where a dataset's files were found, their sizes and SHA-256 checksums
    Info(DataInfoArgs),
}

/// Settings of `recipe data info`.
#[derive(Debug, Clone, Args)]
pub struct DataInfoArgs {
    /// Dataset: mnist or fashion-mnist
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// Folder holding the dataset's four IDX files
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// Runs a `recipe data` subcommand.
pub fn run(command: &DataCommand) -> Result<()> {
    match command {
        DataCommand::Info(args) => info(args),
    }
}

fn sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn info(args: &DataInfoArgs) -> Result<()> {
    let kind: DatasetKind = args.dataset.parse()?;
    let files = locate(kind, args.data_dir.as_deref())?;
    println!("{kind}:");
    for (role, path) in [
        ("train images", &files.train_images),
        ("train labels", &files.train_labels),
        ("test images", &files.test_images),
        ("test labels", &files.test_labels),
    ] {
        let array = read_idx(path)?;
        let dims: Vec<String> = array.dims.iter().map(|d| d.to_string()).collect();
        println!(
            "  {role:<12}  {}  {}  sha256 {}",
            dims.join(" x "),
            path.display(),
            sha256(path)?
        );
    }
    Ok(())
}
