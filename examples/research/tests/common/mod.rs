//! What the research crate's test files share.

use std::fs;
use std::path::PathBuf;

use recipe_train::TrainOptions;

/// An empty folder in the temporary directory, named for the test and
/// this process (a leftover of an earlier run removed).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("recipe-research-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// No files, no output.
pub fn quiet() -> TrainOptions {
    TrainOptions {
        print_epochs: false,
        show_progress: false,
        ..TrainOptions::default()
    }
}
