//! The global gradient norm of an optimizer step, handed from the step
//! (`TrainStep::optimize`, where recipe clips) to the output of the batch
//! that ended it, which Burn's metrics read after the step.
//!
//! Clipping has to see the gradient the optimizer applies: with several
//! devices or accumulated batches Burn sums the batches' gradients and
//! only then calls `optimize`, so a batch's own `step` cannot know the
//! norm. Burn's epoch loops hand each batch's output to the metrics after
//! the optimizer step it took part in, so a slot that the step fills is
//! full by the time it is read.

use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use burn::tensor::Tensor;

/// The global gradient norm before clipping of the optimizer step a
/// training batch ended, shape `[1]`: empty for a batch whose gradient
/// went into a later step (accumulation, or another device's batch of the
/// same step) and in a run that does not clip.
#[derive(Clone, Default)]
pub struct StepGradNorm(Option<Arc<OnceLock<Tensor<1>>>>);

impl StepGradNorm {
    /// A norm already known (for an output built by hand).
    pub fn known(norm: Tensor<1>) -> Self {
        let slot = OnceLock::new();
        let _ = slot.set(norm);
        Self(Some(Arc::new(slot)))
    }

    /// The norm, once the step that this batch ended has clipped.
    pub fn get(&self) -> Option<Tensor<1>> {
        self.0.as_ref().and_then(|slot| slot.get().cloned())
    }

    fn waiting() -> Self {
        Self(Some(Arc::new(OnceLock::new())))
    }
}

impl fmt::Debug for StepGradNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.0 {
            None => "none",
            Some(slot) if slot.get().is_some() => "known",
            Some(_) => "waiting",
        };
        write!(f, "StepGradNorm({state})")
    }
}

/// The slot of the latest training batch, shared by a classifier's clones
/// (one per device): the optimizer step fills the slot of the batch that
/// came last before it, and each batch's slot replaces the one before.
#[derive(Clone, Default)]
pub struct PendingGradNorm(Arc<Mutex<Option<StepGradNorm>>>);

impl PendingGradNorm {
    /// A new empty slot for a batch's output, now the pending one.
    pub(crate) fn open(&self) -> StepGradNorm {
        let slot = StepGradNorm::waiting();
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(slot.clone());
        slot
    }

    /// Gives `norm` to the pending batch's slot.
    pub(crate) fn fill(&self, norm: Tensor<1>) {
        let pending = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(StepGradNorm(Some(slot))) = pending {
            let _ = slot.set(norm);
        }
    }
}

impl fmt::Debug for PendingGradNorm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PendingGradNorm")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    fn norm(value: f32) -> Tensor<1> {
        Tensor::from_floats([value], &Device::flex())
    }

    fn read(slot: &StepGradNorm) -> Option<f32> {
        slot.get().map(|t| t.into_scalar::<f32>())
    }

    /// Three batches, then a step: only the last batch's slot gets the
    /// step's norm; the next step fills the next batch's.
    #[test]
    fn a_step_fills_the_slot_of_the_batch_that_ended_it() {
        let pending = PendingGradNorm::default();
        let batches: Vec<StepGradNorm> = (0..3).map(|_| pending.open()).collect();
        pending.fill(norm(2.5));
        assert_eq!(
            batches.iter().map(read).collect::<Vec<_>>(),
            [None, None, Some(2.5)]
        );
        let next = pending.open();
        pending.fill(norm(1.0));
        assert_eq!(read(&next), Some(1.0));
        // A step with no batch pending fills nothing, and changes nothing.
        pending.fill(norm(9.0));
        assert_eq!(read(&batches[2]), Some(2.5));
        assert_eq!(read(&StepGradNorm::default()), None);
        assert_eq!(read(&StepGradNorm::known(norm(3.0))), Some(3.0));
    }
}
