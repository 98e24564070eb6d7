//! How long the main job takes: `recipe reproduce all --profile quick`, timed
//! end to end (issue budget: 15 minutes on 2 CPU cores).
//!
//! ```text
//! cargo bench --bench quick_profile
//! ```

use std::process::Command;
use std::time::Instant;

const BUDGET_SECONDS: f64 = 15.0 * 60.0;

fn main() {
    let out = std::env::temp_dir().join(format!("recipe-bench-quick-{}", std::process::id()));
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_recipe"))
        .args(["reproduce", "all", "--profile", "quick", "--out"])
        .arg(&out)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::null())
        .status()
        .expect("the recipe binary runs");
    let seconds = started.elapsed().as_secs_f64();
    assert!(status.success(), "reproduce all failed: {status}");
    let report = std::fs::read_to_string(out.join("report.md")).expect("report.md");
    let reproduced = report
        .lines()
        .filter(|l| l.ends_with("| reproduced |"))
        .count();
    println!(
        "reproduce all --profile quick: {seconds:.1} s wall ({:.0}% of the {BUDGET_SECONDS:.0} s budget), {reproduced} claims reproduced",
        100.0 * seconds / BUDGET_SECONDS
    );
    let _ = std::fs::remove_dir_all(out);
}
