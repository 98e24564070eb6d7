//! The network's output width against the data's class count, checked
//! inside the training step.

use std::sync::{Arc, Mutex};

use burn::tensor::Tensor;
use burn::train::Interrupter;

use crate::TrainError;

/// Checks that the logits have one column per class.
///
/// The check runs inside each step (it reads a shape, no device sync), so
/// the first training batch catches a mismatch: Burn's
/// parameters are initialized lazily at the network's first forward pass, so
/// a forward pass of its own before training would draw the initial weights
/// at another point of the random stream and change every run's numbers. A
/// mismatch stops the Learner through its [`Interrupter`] and is kept for
/// [`OutputCheck::take_error`]; the step's loss is then zero, so a too
/// narrow output never reaches the cross-entropy with a target it lacks.
#[derive(Clone)]
pub struct OutputCheck {
    classes: usize,
    data: String,
    interrupter: Interrupter,
    error: Arc<Mutex<Option<TrainError>>>,
}

impl std::fmt::Debug for OutputCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputCheck")
            .field("classes", &self.classes)
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

impl OutputCheck {
    /// A check for `classes` classes of the data named `data`, stopping the
    /// Learner launched with `interrupter` on a mismatch.
    pub fn new(classes: usize, data: impl Into<String>, interrupter: Interrupter) -> Self {
        Self {
            classes,
            data: data.into(),
            interrupter,
            error: Arc::new(Mutex::new(None)),
        }
    }

    /// Whether `logits` (`[batch, width]`) have one column per class; if not,
    /// records the error and stops the Learner.
    pub fn accepts(&self, logits: &Tensor<2>) -> bool {
        let [_, width] = logits.dims();
        if width == self.classes {
            return true;
        }
        let error = TrainError::invalid(
            "network output",
            format!(
                "{} logits per example (the classes of {})",
                self.classes, self.data
            ),
            width,
        );
        self.interrupter.stop(Some(&error.to_string()));
        self.error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert(error);
        false
    }

    /// The mismatch found, if any (taken).
    pub fn take_error(&self) -> Option<TrainError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}
