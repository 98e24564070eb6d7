//! What the Learner shows while it trains: nothing per batch when stdout is
//! not a terminal (the per-epoch line comes from the `HistoryLogger`), a
//! one-line progress counter when it is.

use std::io::{IsTerminal, Write};

use burn::train::LearnerSummary;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};

/// A quiet replacement for Burn's CLI renderer, which prints a debug dump
/// per batch: pass it to `SupervisedTraining::renderer`.
pub struct QuietRenderer {
    terminal: bool,
    epoch: usize,
    total_epochs: usize,
    split: String,
    split_items: usize,
    last_percent: usize,
}

impl QuietRenderer {
    /// With `show_progress`, a one-line counter on stderr when it is a terminal.
    pub fn new(show_progress: bool) -> Self {
        Self {
            terminal: show_progress && std::io::stderr().is_terminal(),
            epoch: 0,
            total_epochs: 0,
            split: String::new(),
            split_items: 0,
            last_percent: usize::MAX,
        }
    }
}

impl MetricsRendererTraining for QuietRenderer {
    fn update_train(&mut self, _state: MetricState) {}

    fn update_valid(&mut self, _state: MetricState) {}

    fn on_train_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for QuietRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}

    fn on_test_end(
        &mut self,
        _summary: Option<LearnerSummary>,
    ) -> Result<(), Box<dyn core::error::Error>> {
        Ok(())
    }
}

impl TrainingProgressLogger for QuietRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch;
    }

    fn update_epoch(&mut self, epoch: usize) {
        self.epoch = epoch;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split = split.to_string();
        self.split_items = total_items;
        self.last_percent = usize::MAX;
    }

    fn update_split(&mut self, items_processed: usize) {
        if !self.terminal || self.split_items == 0 {
            return;
        }
        let percent = items_processed * 100 / self.split_items;
        if percent != self.last_percent {
            self.last_percent = percent;
            let mut err = std::io::stderr();
            let _ = write!(
                err,
                "\r  epoch {}/{} {:<5} {percent:>3}%",
                self.epoch, self.total_epochs, self.split
            );
            let _ = err.flush();
        }
    }

    fn end_split(&mut self) {
        if self.terminal {
            let _ = write!(std::io::stderr(), "\r{:40}\r", "");
        }
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for QuietRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}

    fn start_test(&mut self, _name: &str, _total_items: usize) {}

    fn update_test_progress(&mut self, _items_processed: usize) {}

    fn end_test(&mut self) {}

    fn end_global_progress(&mut self) {}

    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRenderer for QuietRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, _definition: MetricDefinition) {}
}
