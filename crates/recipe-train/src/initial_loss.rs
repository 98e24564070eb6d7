//! The loss before any update: the first training step's loss, taken
//! inside that step. For a sound start it is about ln(classes) (cross
//! entropy of near-uniform predictions); far from it, the labels, the
//! output layer, the loss or the input scaling are suspect.

use std::sync::{Arc, OnceLock};

use burn::tensor::Tensor;

/// Records the data loss of the first training step it sees. Clones share
/// the record.
///
/// It reads the loss inside the step rather than running the network
/// before training: Burn draws the initial weights lazily at the first
/// forward pass, so a pass of its own would move every run's weights.
#[derive(Debug, Clone, Default)]
pub struct InitialLoss {
    value: Arc<OnceLock<f64>>,
}

impl InitialLoss {
    /// A recorder that has seen no step yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps `loss` (a scalar) if no step was recorded yet.
    pub fn record_first(&self, loss: &Tensor<1>) {
        // Every later step sees a set value and reads nothing back.
        if self.value.get().is_none() {
            let _ = self.value.set(loss.clone().detach().into_scalar::<f64>());
        }
    }

    /// The first step's loss, once a step ran.
    pub fn value(&self) -> Option<f64> {
        self.value.get().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn only_the_first_step_counts() {
        let device = Device::flex();
        let recorder = InitialLoss::new();
        assert_eq!(recorder.value(), None);
        let shared = recorder.clone();
        shared.record_first(&Tensor::from_floats([2.5], &device));
        recorder.record_first(&Tensor::from_floats([0.1], &device));
        assert_eq!(recorder.value(), Some(2.5));
    }
}
