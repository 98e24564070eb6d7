//! `recipe data`: what the datasets on this machine are.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use recipe::data::{
    DatasetKind, Fetched, canonical_mirrors, fetch_dir, locate, read_idx, sha256_hex,
};

/// `recipe data` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum DataCommand {
    /// Where a dataset's files were found, their sizes and SHA-256 checksums
    Info(DataInfoArgs),
    /// Download a dataset's four files from its canonical mirrors, each checked against a known SHA-256
    Fetch(DataFetchArgs),
}

/// Settings of `recipe data fetch`.
#[derive(Debug, Clone, Args)]
pub struct DataFetchArgs {
    /// Dataset: mnist or fashion-mnist
    pub dataset: String,
    /// Base URL to download from instead of the canonical mirrors (repeat to try several in order)
    #[arg(long, value_name = "URL")]
    pub mirror: Vec<String>,
    /// Folder to write the files to (default: $RECIPE_DATA_DIR/<dataset>, else ~/.cache/recipe/datasets/<dataset>, where training looks)
    #[arg(long)]
    pub dir: Option<PathBuf>,
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
        DataCommand::Fetch(args) => fetch(args),
    }
}

fn fetch(args: &DataFetchArgs) -> Result<()> {
    let kind: DatasetKind = args.dataset.parse()?;
    let dir = args.dir.clone().unwrap_or_else(|| fetch_dir(kind));
    let mirrors: Vec<String> = if args.mirror.is_empty() {
        canonical_mirrors(kind)
            .iter()
            .map(|m| m.to_string())
            .collect()
    } else {
        args.mirror.clone()
    };
    println!("fetching {kind} into {}", dir.display());
    for fetched in recipe::data::fetch(kind, &mirrors, &dir)? {
        match fetched {
            Fetched::AlreadyThere(path) => {
                println!("  {} already there, checksum ok", path.display())
            }
            Fetched::Downloaded { path, url } => {
                println!("  {} from {url}, checksum ok", path.display())
            }
        }
    }
    let files = locate(kind, Some(&dir))?;
    let images = read_idx(&files.train_images)?;
    let how = match &args.dir {
        None => format!("recipe train --dataset {kind}"),
        Some(dir) => format!("recipe train --dataset {kind} --data-dir {}", dir.display()),
    };
    println!(
        "{kind} is ready: {} training images; `{how}` uses it",
        images.dims[0]
    );
    Ok(())
}

fn sha256(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(sha256_hex(&bytes))
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
