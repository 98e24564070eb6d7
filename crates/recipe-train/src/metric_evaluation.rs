//! A run's own metrics ([`ClassMetric`]s) on a whole split, for the final
//! evaluation in `summary.json`, in the same pass as loss and accuracy.

use std::sync::Arc;

use burn::data::dataloader::{DataLoader, Progress};
use burn::train::metric::{Adaptor, Metric as BurnMetric, MetricMetadata, Numeric};
use recipe_data::ClassBatch;

use crate::evaluate::evaluate_each;
use crate::{ClassMetric, ClassMetricInput, Classify, Evaluation, TrainError};

/// The value of each of `metrics` (fresh copies, in order) for `net` over
/// every batch of `loader`, as the metric aggregates a whole epoch (Burn's
/// numeric metrics: the mean over the batches, weighted by their sizes).
pub fn evaluate_metrics<N: Classify>(
    net: &N,
    loader: &Arc<dyn DataLoader<ClassBatch<N::Input>>>,
    metrics: &[ClassMetric],
) -> Result<Vec<f64>, TrainError> {
    Ok(evaluate_with_metrics(net, loader, metrics)?.1)
}

/// [`evaluate`](crate::evaluate) and [`evaluate_metrics`] in one pass over
/// `loader`.
pub(crate) fn evaluate_with_metrics<N: Classify>(
    net: &N,
    loader: &Arc<dyn DataLoader<ClassBatch<N::Input>>>,
    metrics: &[ClassMetric],
) -> Result<(Evaluation, Vec<f64>), TrainError> {
    let mut metrics: Vec<ClassMetric> = metrics.to_vec();
    for metric in &mut metrics {
        metric.clear();
    }
    let failed = |e: &dyn std::fmt::Display| {
        TrainError::Learner(format!("computing the run's own metrics: {e}"))
    };
    let items_total = loader.num_items();
    let (mut items_processed, mut iteration) = (0, 0);
    let evaluation = evaluate_each(net, loader, |output| {
        if metrics.is_empty() {
            return Ok(());
        }
        let [size] = output.targets.dims();
        items_processed += size;
        iteration += 1;
        let input: ClassMetricInput = output.adapt();
        let metadata = MetricMetadata {
            progress: Progress {
                items_processed,
                items_total,
                unit: None,
            },
            iteration: Some(iteration),
            lr: None,
        };
        for metric in &mut metrics {
            metric.update(&input, &metadata).map_err(|e| failed(&e))?;
        }
        Ok(())
    })?;
    let values = metrics
        .iter_mut()
        .map(|metric| {
            metric.compute().map_err(|e| failed(&e))?;
            Ok(metric.final_value().current())
        })
        .collect::<Result<_, TrainError>>()?;
    Ok((evaluation, values))
}

#[cfg(test)]
mod tests {
    use crate::metric_test_support::toy_loader;
    use burn::tensor::Device;
    use burn::train::metric::{
        AccuracyMetric, ClassReduction, FBetaScoreMetric, PerplexityMetric, TopKAccuracyMetric,
    };
    use recipe_models::MlpConfig;

    use super::*;
    use crate::evaluate;

    /// `metrics` and the evaluation of a 4-6-3 MLP seeded with `seed` on
    /// 203 toy examples in batches of 8 (a last batch of 3).
    fn toy_figures(seed: u64, metrics: &[ClassMetric]) -> (Vec<f64>, Evaluation) {
        let device = Device::flex();
        device.seed(seed);
        let net = MlpConfig::new(4, vec![6], 3).init(&device).unwrap();
        let loader = toy_loader(&device, 203, 4, 8);
        (
            evaluate_metrics(&net, &loader, metrics).unwrap(),
            evaluate(&net, &loader).unwrap(),
        )
    }

    /// Burn's accuracy through a `ClassMetric` is the evaluation's accuracy
    /// (in percent), weighted by batch size over uneven batches; top-3 of
    /// three classes is every example.
    #[test]
    fn a_metric_over_a_split_is_the_evaluations_figure() {
        let metrics = [
            ClassMetric::new(AccuracyMetric::new()).named("acc"),
            ClassMetric::new(TopKAccuracyMetric::new(3)).named("top3"),
        ];
        let (values, evaluation) = toy_figures(4, &metrics);
        assert!(
            (values[0] - 100.0 * evaluation.accuracy).abs() < 1e-9,
            "{values:?} {evaluation:?}"
        );
        assert!(
            evaluation.accuracy < 0.9,
            "not a trivial net: {evaluation:?}"
        );
        assert_eq!(values[1], 100.0);
        // The metrics given are left as they were.
        assert!(metrics[0].value().unwrap().current().is_nan());
    }

    /// Metrics that aggregate the whole split rather than average batches
    /// come out as over the split at once: micro-averaged top-1 F1 of a
    /// single-label task is the accuracy, and perplexity is e to the mean
    /// cross-entropy.
    #[test]
    fn split_wide_metrics_aggregate_the_whole_split() {
        let metrics = [
            ClassMetric::new(FBetaScoreMetric::multiclass(1.0, 1, ClassReduction::Micro))
                .named("f1"),
            ClassMetric::new(PerplexityMetric::new()).named("perplexity"),
        ];
        let (values, evaluation) = toy_figures(6, &metrics);
        assert!(
            (values[0] - 100.0 * evaluation.accuracy).abs() < 1e-4,
            "{values:?} {evaluation:?}"
        );
        assert!(
            (values[1] - evaluation.loss.exp()).abs() < 1e-4,
            "{values:?} {evaluation:?}"
        );
    }
}
