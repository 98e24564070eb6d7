//! Loss and accuracy of a network on a whole split.

use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use burn::tensor::Tensor;
use burn::train::ClassificationOutput;
use recipe_data::ClassBatch;
use serde::{Deserialize, Serialize};

use crate::scalar_reads::read_scalars;
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

/// Batches whose numbers wait on the device between two reads: each read
/// waits for the device's queue, which on a GPU idles it.
const BATCHES_PER_READ: usize = 64;

/// Evaluates `net` on every batch of `loader`, with no dropout and no autodiff
/// when `net` came from `.valid()` and the loader's device has no autodiff.
pub fn evaluate<N: Classify>(
    net: &N,
    loader: &Arc<dyn DataLoader<ClassBatch<N::Input>>>,
) -> Result<Evaluation, TrainError> {
    evaluate_each(net, loader, |_| Ok(()))
}

/// [`evaluate`], giving each batch's output to `each` as well (the run's
/// own metrics read it in the same pass).
pub(crate) fn evaluate_each<N: Classify>(
    net: &N,
    loader: &Arc<dyn DataLoader<ClassBatch<N::Input>>>,
    mut each: impl FnMut(ClassificationOutput) -> Result<(), TrainError>,
) -> Result<Evaluation, TrainError> {
    let mut totals = Totals::default();
    let mut queued = Vec::with_capacity(2 * BATCHES_PER_READ);
    let mut sizes = Vec::with_capacity(BATCHES_PER_READ);
    for batch in loader.iter() {
        let batch = batch.map_err(|e| TrainError::Learner(format!("reading a batch: {e}")))?;
        let [size] = batch.targets.dims();
        let logits = net.logits(batch.inputs);
        let loss = net.loss(logits.clone(), batch.targets.clone());
        let predicted = logits.clone().argmax(1).squeeze_dim::<1>(1);
        // A batch's count of correct answers is exact in f32.
        let correct = predicted.equal(batch.targets.clone()).float().sum();
        each(ClassificationOutput::new(
            loss.clone(),
            logits,
            batch.targets,
        ))?;
        queued.extend([loss, correct]);
        sizes.push(size);
        if sizes.len() == BATCHES_PER_READ {
            totals.add(&std::mem::take(&mut queued), &std::mem::take(&mut sizes))?;
        }
    }
    totals.add(&queued, &sizes)?;
    if totals.examples == 0 {
        return Err(TrainError::invalid("split", "at least one example", 0));
    }
    Ok(Evaluation {
        loss: totals.loss_sum / totals.examples as f64,
        accuracy: totals.correct as f64 / totals.examples as f64,
        examples: totals.examples,
    })
}

/// The sums over the batches read so far.
#[derive(Default)]
struct Totals {
    loss_sum: f64,
    correct: i64,
    examples: usize,
}

impl Totals {
    /// Reads the queued batches' loss and correct count (in pairs, in
    /// batch order) and adds them, batch by batch.
    fn add(&mut self, queued: &[Tensor<1>], sizes: &[usize]) -> Result<(), TrainError> {
        if sizes.is_empty() {
            return Ok(());
        }
        let numbers = read_scalars(queued.iter())
            .map_err(|e| TrainError::Learner(format!("reading the evaluation's figures: {e}")))?;
        for (pair, &size) in numbers.chunks(2).zip(sizes) {
            self.loss_sum += pair[0] * size as f64;
            self.correct += pair[1] as i64;
            self.examples += size;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::metric_test_support::toy_loader;
    use burn::tensor::Device;
    use recipe_models::MlpConfig;

    use super::*;

    /// 203 examples, batches of 2: 102 batches, more than one read's
    /// worth and a last batch of one.
    fn loader(device: &Device) -> Arc<dyn DataLoader<ClassBatch<Tensor<2>>>> {
        toy_loader(device, 203, 4, 2)
    }

    /// The figures of a loop that reads each batch as it comes, the
    /// arithmetic `evaluate` replays.
    fn read_batch_by_batch(net: &recipe_models::Mlp, device: &Device) -> Evaluation {
        let (mut loss_sum, mut correct, mut examples) = (0.0, 0, 0);
        for batch in loader(device).iter() {
            let batch = batch.unwrap();
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
        Evaluation {
            loss: loss_sum / examples as f64,
            accuracy: correct as f64 / examples as f64,
            examples,
        }
    }

    #[test]
    fn reading_many_batches_at_once_gives_the_batch_by_batch_figures() {
        let device = Device::flex();
        device.seed(3);
        let net = MlpConfig::new(4, vec![8], 3).init(&device).unwrap();
        let evaluation = evaluate(&net, &loader(&device)).unwrap();
        assert_eq!(evaluation.examples, 203);
        assert!(
            evaluation.accuracy > 0.0 && evaluation.accuracy < 1.0,
            "{evaluation:?}"
        );
        assert_eq!(evaluation, read_batch_by_batch(&net, &device));
    }
}
