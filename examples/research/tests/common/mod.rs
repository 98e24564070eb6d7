//! What the research crate's test files share.

// Each test file is its own crate and uses a part of this.
#![allow(dead_code)]

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

/// A small linear congruential generator (Knuth's MMIX constants), so the
/// data made here is the same on every machine.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        let mut generator = Self(seed);
        generator.advance();
        generator
    }

    pub fn advance(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0
    }

    /// Uniform in [-1, 1), from the state's top 24 bits.
    pub fn uniform(&mut self) -> f32 {
        ((self.advance() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// In `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        (self.advance() >> 33) % n
    }
}
