//! Dropout as an ensemble: a net trained with dropout is an ensemble of its
//! thinned nets, and averaging the predictions of sampled thinned nets
//! (Monte Carlo dropout) is what the deterministic weight-scaled pass
//! approximates (Srivastava et al. 2014, section 7.5 and Figure 11).

use std::sync::Arc;

use burn::data::dataloader::DataLoader;
use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use recipe_data::ClassBatch;
use serde::{Deserialize, Serialize};

use crate::scalar_reads::read_scalars;
use crate::trainer::autodiff;
use crate::{Classify, TrainError};

/// The averaged prediction of `samples` thinned nets on a split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MonteCarloEvaluation {
    /// Thinned nets averaged.
    pub samples: usize,
    /// Accuracy of the averaged class probabilities, in [0, 1].
    pub accuracy: f64,
    /// Mean negative log-likelihood of the averaged probabilities.
    pub loss: f64,
}

/// Evaluates `net` as an ensemble of thinned nets: every batch of `loader`
/// goes through the net `max(sample_counts)` times with dropout active (a
/// new mask each time: `net` and the loader must be on a device with
/// autodiff, where recipe's dropout runs), the class probabilities are
/// averaged, and the figures are taken after each count in
/// `sample_counts`. Nothing is trained: no gradient is taken.
pub fn evaluate_monte_carlo<N: Classify>(
    net: &N,
    loader: &Arc<dyn DataLoader<ClassBatch<N::Input>>>,
    sample_counts: &[usize],
) -> Result<Vec<MonteCarloEvaluation>, TrainError> {
    let most = sample_counts.iter().copied().max().unwrap_or(0);
    if most == 0 {
        return Err(TrainError::invalid(
            "sample_counts",
            "at least one count of 1 or more",
            format!("{sample_counts:?}"),
        ));
    }
    let mut correct = vec![0i64; sample_counts.len()];
    let mut log_likelihood = vec![0.0f64; sample_counts.len()];
    let mut examples = 0usize;
    for batch in loader.iter() {
        let batch = batch.map_err(|e| TrainError::Learner(format!("reading a batch: {e}")))?;
        let [size] = batch.targets.dims();
        let targets = batch.targets.clone().unsqueeze_dim::<2>(1);
        let mut sum = None;
        // The batch's figures per count, read together after its samples.
        let mut figures = Vec::with_capacity(2 * sample_counts.len());
        let mut counts = Vec::with_capacity(sample_counts.len());
        for sample in 1..=most {
            let probabilities = softmax(net.logits(batch.inputs.clone()).detach(), 1);
            let total = match sum.take() {
                Some(sum) => probabilities + sum,
                None => probabilities,
            };
            for (index, _) in sample_counts
                .iter()
                .enumerate()
                .filter(|(_, k)| **k == sample)
            {
                let mean = total.clone().div_scalar(sample as f64);
                let predicted = mean.clone().argmax(1);
                // A batch's count of right answers is exact in f32.
                let right = predicted.equal(targets.clone()).float().sum();
                let chosen = mean.gather(1, targets.clone()).clamp_min(1e-12).log();
                figures.extend([right, chosen.sum()]);
                counts.push(index);
            }
            sum = Some(total);
        }
        let read = read_scalars(figures.iter())
            .map_err(|e| TrainError::Learner(format!("reading the evaluation's figures: {e}")))?;
        for (pair, &index) in read.chunks(2).zip(&counts) {
            correct[index] += pair[0] as i64;
            log_likelihood[index] += pair[1];
        }
        examples += size;
    }
    if examples == 0 {
        return Err(TrainError::invalid("split", "at least one example", 0));
    }
    Ok(sample_counts
        .iter()
        .enumerate()
        .map(|(index, &samples)| MonteCarloEvaluation {
            samples,
            accuracy: correct[index] as f64 / examples as f64,
            loss: -log_likelihood[index] / examples as f64,
        })
        .collect())
}

/// `net` made ready for [`evaluate_monte_carlo`]: a copy in training mode
/// (dropout on) on the autodiff form of `device`, where recipe's dropout
/// draws its masks, with that device's random stream seeded by `seed`, so
/// that the same seed samples the same thinned nets. Returns the copy and
/// the device the loader must put its batches on.
pub fn thinned_copy<M: Module>(net: &M, device: &Device, seed: u64) -> (M, Device) {
    let sampled = autodiff(device);
    sampled.seed(seed);
    (net.clone().fork(&sampled).train(), sampled)
}

#[cfg(test)]
mod tests {
    use crate::metric_test_support::toy_loader;
    use recipe_models::MlpConfig;

    use super::*;
    use crate::evaluate;

    /// 64 examples of 8 features in 3 classes, batched on `device`.
    fn loader(device: &Device) -> Arc<dyn DataLoader<ClassBatch<burn::tensor::Tensor<2>>>> {
        toy_loader(device, 64, 8, 16)
    }

    /// Without autodiff dropout is off: every sample is the deterministic
    /// net, so the average is too. With autodiff the masks are drawn, and a
    /// thinned net's loss differs from the deterministic net's (by 1.5e-2
    /// to 2.8e-3 in runs of this toy net; rounding alone would be below
    /// 1e-6).
    #[test]
    fn samples_thinned_nets_only_where_dropout_runs() {
        let plain = Device::flex();
        plain.seed(1);
        let net = MlpConfig::new(8, vec![64], 3)
            .with_dropout(0.5)
            .init(&plain)
            .unwrap();
        let deterministic = evaluate(&net, &loader(&plain)).unwrap();
        let same = evaluate_monte_carlo(&net, &loader(&plain), &[1, 4]).unwrap();
        for mc in &same {
            assert!(
                (mc.loss - deterministic.loss).abs() < 1e-5,
                "{mc:?} {deterministic:?}"
            );
            assert_eq!(mc.accuracy, deterministic.accuracy, "{mc:?}");
        }
        let autodiff = plain.clone().autodiff();
        let net = net.fork(&autodiff);
        let sampled = evaluate_monte_carlo(&net, &loader(&autodiff), &[1, 50]).unwrap();
        let gap = |mc: &MonteCarloEvaluation| (mc.loss - deterministic.loss).abs();
        assert!(gap(&sampled[0]) > 1e-3, "{sampled:?} {deterministic:?}");
        // The average of 50 is not the first thinned net alone. (Whether it
        // lands nearer the deterministic net than one sample does is chance:
        // it approaches the ensemble, not the weight-scaled net.)
        assert!(
            (sampled[1].loss - sampled[0].loss).abs() > 1e-4,
            "{sampled:?}"
        );
        assert!(evaluate_monte_carlo(&net, &loader(&autodiff), &[]).is_err());
    }
}
