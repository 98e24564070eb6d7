//! Several early-stopping strategies in Burn's one early-stopping slot.

use std::sync::{Arc, Mutex};

use burn::train::EarlyStoppingStrategy;
use burn::train::metric::store::EventStoreClient;

type Shared = Arc<Mutex<dyn EarlyStoppingStrategy>>;

/// Burn's `SupervisedTraining` takes one `EarlyStoppingStrategy`; this one
/// asks each of its strategies every epoch, in the order they were added
/// (so each sees every epoch, whatever the others decide), and stops the run
/// when any of them says so.
///
/// ```
/// # use recipe_train::{StopOnAny, StopOnDivergence};
/// # use burn::train::{MetricEarlyStoppingStrategy, StoppingCondition};
/// # use burn::train::metric::{LossMetric, store::{Aggregate, Direction, Split}};
/// let stop = StopOnAny::new()
///     .with(StopOnDivergence::new())
///     .with(MetricEarlyStoppingStrategy::new(
///         &LossMetric::new(),
///         Aggregate::Mean,
///         Direction::Lowest,
///         Split::Valid,
///         StoppingCondition::NoImprovementSince { n_epochs: 3 },
///     ));
/// # let _ = stop;
/// ```
#[derive(Clone, Default)]
pub struct StopOnAny {
    strategies: Vec<Shared>,
}

impl StopOnAny {
    /// No strategy yet: never stops.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `strategy`, asked after those already added.
    pub fn with(mut self, strategy: impl EarlyStoppingStrategy + 'static) -> Self {
        self.strategies.push(Arc::new(Mutex::new(strategy)));
        self
    }
}

impl EarlyStoppingStrategy for StopOnAny {
    fn should_stop(&mut self, epoch: usize, store: &EventStoreClient) -> bool {
        let mut stop = false;
        for strategy in &self.strategies {
            let mut strategy = strategy.lock().unwrap_or_else(|p| p.into_inner());
            stop |= strategy.should_stop(epoch, store);
        }
        stop
    }
}
