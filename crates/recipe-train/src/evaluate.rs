//! Loss and accuracy of a network on a whole split.

use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use recipe_data::ClassBatch;
use serde::{Deserialize, Serialize};

use crate::{Classify, TrainError};

/// Mean loss and accuracy over a split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Mean loss per example: the network's [`Classify::loss`]
    /// (cross-entropy, natural log, unless the network supplies its own).
    pub loss: f64,
    /// Fraction of examples classified correctly, in [0, 1].
    pub accuracy: f64,
    /// Number of examples.
    pub examples: usize,
}

/// Evaluates `net` on every batch of `loader`, with no dropout and no autodiff
/// when `net` came from `.valid()` and the loader's device has no autodiff.
pub fn evaluate<N: Classify>(
    net: &N,
    loader: &Arc<dyn DataLoader<ClassBatch<N::Input>>>,
) -> Result<Evaluation, TrainError> {
    let mut loss_sum = 0.0f64;
    let mut correct = 0i64;
    let mut examples = 0usize;
    for batch in loader.iter() {
        let batch = batch.map_err(|e| TrainError::Learner(format!("reading a batch: {e}")))?;
        let [size] = batch.targets.dims();
        let logits = net.logits(batch.inputs);
        let loss = net.loss(logits.clone(), batch.targets.clone());
        let predicted = logits.argmax(1).squeeze_dim::<1>(1);
        correct += predicted
            .equal(batch.targets)
            .int()
            .sum()
            .into_scalar::<i64>();
        loss_sum += loss.into_scalar::<f64>() * size as f64;
        examples += size;
    }
    if examples == 0 {
        return Err(TrainError::invalid("split", "at least one example", 0));
    }
    Ok(Evaluation {
        loss: loss_sum / examples as f64,
        accuracy: correct as f64 / examples as f64,
        examples,
    })
}
