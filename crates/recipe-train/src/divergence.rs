//! Stop a run whose loss is no longer a finite number (Lightning's
//! `check_finite`), as a Burn `EarlyStoppingStrategy`.

use std::sync::{Arc, Mutex};

use burn::train::EarlyStoppingStrategy;
use burn::train::metric::store::{Aggregate, EventStoreClient, Split};
use burn::train::metric::{LossMetric, Metric};

/// Where a run diverged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divergence {
    /// The epoch whose loss was not finite.
    pub epoch: usize,
    /// That loss (the training loss if it was not finite, else the validation loss).
    pub loss: f64,
}

/// Stops the Learner at the first epoch whose mean training or validation
/// loss (Burn's `Loss` metric) is NaN or infinite, and remembers it for
/// [`StopOnDivergence::divergence`]. A loss the store does not hold for an
/// epoch counts as finite: this strategy guards against divergence, not
/// against a missing metric.
#[derive(Clone, Default)]
pub struct StopOnDivergence {
    found: Arc<Mutex<Option<Divergence>>>,
}

impl StopOnDivergence {
    /// A guard that has seen no divergence yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The divergence that stopped the run, if one did.
    pub fn divergence(&self) -> Option<Divergence> {
        *self.found.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl EarlyStoppingStrategy for StopOnDivergence {
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        let name = LossMetric::new().name().to_string();
        let loss = |split| store.find_metric(&name, epoch, Aggregate::Mean, &split);
        let not_finite = [loss(Split::Train), loss(Split::Valid)]
            .into_iter()
            .flatten()
            .find(|loss| !loss.is_finite());
        let Some(loss) = not_finite else {
            return false;
        };
        *self.found.lock().unwrap_or_else(|p| p.into_inner()) = Some(Divergence { epoch, loss });
        true
    }
}
