//! A metric of your own in recipe's trainer: any numeric Burn metric of a
//! classifier's outputs (Burn's top-k accuracy, F-score, perplexity, or one
//! you write), recorded per epoch in the [`History`](crate::History) and
//! `history.csv`, printed on the epoch line, and watched by early stopping,
//! the plateau rule and the kept checkpoints like loss and accuracy.

use std::fmt;
use std::sync::Arc;

use burn::tensor::TensorReadError;
use burn::train::ClassificationOutput;
use burn::train::metric::store::Split;
use burn::train::metric::{
    Adaptor, Metric as BurnMetric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericEntry, SerializedEntry,
};

use crate::{
    FitConfig, GRAD_NORM_MAX_METRIC, GRAD_NORM_METRIC, Metric, Mode, PENALTY_METRIC,
    PenalizedOutput, TrainError,
};

/// What a [`ClassMetric`] is given each step: the step's loss, logits and
/// targets, as Burn's `ClassificationOutput` (without autodiff), from the
/// training steps and the validation steps alike.
pub struct ClassMetricInput {
    /// The step's output.
    pub output: ClassificationOutput,
}

impl Adaptor<ClassMetricInput> for ClassificationOutput {
    fn adapt(&self) -> ClassMetricInput {
        ClassMetricInput {
            output: ClassificationOutput::new(
                self.loss.clone(),
                self.output.clone(),
                self.targets.clone(),
            ),
        }
    }
}

impl Adaptor<ClassMetricInput> for PenalizedOutput {
    fn adapt(&self) -> ClassMetricInput {
        self.classification.adapt()
    }
}

/// A numeric Burn metric of a classifier's outputs, for
/// [`TrainOptions::metrics`](crate::TrainOptions::metrics).
///
/// It wraps any `M: Metric + Numeric` whose input Burn's
/// `ClassificationOutput` adapts to (`AccuracyInput`, `TopKAccuracyInput`,
/// `ConfusionStatsInput`, `PerplexityInput`, `LossInput`, or an input type
/// of your own with its `Adaptor`), so runs of any network carry metrics of
/// any type. Its epoch mean on each split is the history column
/// `train_NAME` / `valid_NAME`, and [`Metric::recorded`](crate::Metric::recorded)
/// (text `valid_NAME`) monitors it. The value is recorded as the metric
/// computes it: Burn's accuracies are in percent, recipe's `*_accuracy`
/// columns a fraction.
pub struct ClassMetric {
    inner: Box<dyn ErasedMetric>,
    name: MetricName,
    on_train: bool,
}

impl ClassMetric {
    /// Records `metric` under its own name, on both splits.
    pub fn new<M>(metric: M) -> Self
    where
        M: BurnMetric + Numeric + 'static,
        ClassificationOutput: Adaptor<M::Input>,
    {
        let name = metric.name();
        Self {
            inner: Box::new(metric),
            name,
            on_train: true,
        }
    }

    /// Records it as `name` instead (its columns are `train_NAME` and
    /// `valid_NAME`): Burn's names hold spaces (`Top-K Accuracy @ TopK(3)`),
    /// and a column name is letters, digits and `_`.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = Arc::new(name.into());
        self
    }

    /// Records it on the validation split only (a metric too slow to
    /// compute on every training step).
    pub fn valid_only(mut self) -> Self {
        self.on_train = false;
        self
    }

    /// The name it is recorded under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is recorded on the training split too.
    pub fn on_train(&self) -> bool {
        self.on_train
    }

    /// The splits it is recorded on.
    pub fn splits(&self) -> Vec<Split> {
        if self.on_train {
            vec![Split::Train, Split::Valid]
        } else {
            vec![Split::Valid]
        }
    }

    /// Its direction, from the metric's Burn attributes (`None` when the
    /// metric does not say).
    pub fn higher_is_better(&self) -> Option<bool> {
        match self.inner.attributes() {
            MetricAttributes::Numeric(numeric) => Some(numeric.higher_is_better),
            MetricAttributes::None => None,
        }
    }

    /// Fails, in words, when its name cannot be a history column or is one
    /// of recipe's own metrics.
    pub fn check_name(&self) -> Result<(), String> {
        check_metric_name(&self.name)
    }
}

/// Recipe's own metrics in Burn's store and history columns, which a metric
/// of the user's must not shadow.
const RESERVED_NAMES: [&str; 6] = [
    "loss",
    "accuracy",
    "penalty",
    PENALTY_METRIC,
    GRAD_NORM_METRIC,
    GRAD_NORM_MAX_METRIC,
];

/// Checks that `name` can follow `train_`/`valid_` in a history column: a
/// letter, then letters, digits and `_`, and none of recipe's own.
pub(crate) fn check_metric_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let well_formed = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !well_formed {
        return Err(format!(
            "a name of letters, digits and `_` starting with a letter (rename it with \
             ClassMetric::named), not `{name}`"
        ));
    }
    if RESERVED_NAMES.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "a name other than recipe's own metrics ({}), not `{name}`",
            RESERVED_NAMES.join(", ")
        ));
    }
    Ok(())
}

/// Checks a run's metrics (names that make columns, none twice) and the
/// monitors of `config` that watch them: each must name a metric recorded
/// on its split, and takes its direction from the metric when `mode` is
/// unset (the direction is then saved in `config.json`, so a resume does
/// not need it again).
pub(crate) fn settle_recorded_monitors(
    config: &mut FitConfig,
    metrics: &[ClassMetric],
) -> Result<(), TrainError> {
    check_metric_names(metrics)?;
    let columns: Vec<(Metric, &ClassMetric)> = metrics
        .iter()
        .flat_map(|m| {
            m.splits()
                .into_iter()
                .map(move |split| (Metric::recorded(m.name(), split), m))
        })
        .collect();
    for (owner, monitor, mode) in config.monitors_mut() {
        if !matches!(monitor, Metric::Recorded(_)) {
            continue;
        }
        let Some((_, metric)) = columns.iter().find(|(column, _)| column == monitor) else {
            let known = columns.iter().map(|(column, _)| column.to_string());
            return Err(TrainError::invalid(
                format!("{owner}.monitor"),
                format!(
                    "a metric the run records (valid_loss, valid_accuracy, train_loss, \
                     train_accuracy{}; add yours to TrainOptions::metrics)",
                    known.map(|c| format!(", {c}")).collect::<String>()
                ),
                monitor,
            ));
        };
        if mode.is_none() {
            *mode = metric
                .higher_is_better()
                .map(|higher| if higher { Mode::Max } else { Mode::Min });
        }
    }
    Ok(())
}

/// Fails, naming the metric's place in `TrainOptions::metrics`, when a
/// name cannot be a column or is given twice.
fn check_metric_names(metrics: &[ClassMetric]) -> Result<(), TrainError> {
    for (index, metric) in metrics.iter().enumerate() {
        let field = format!("TrainOptions::metrics[{index}]");
        metric
            .check_name()
            .map_err(|expected| TrainError::invalid(&field, expected, metric.name()))?;
        if metrics[..index].iter().any(|m| m.name() == metric.name()) {
            return Err(TrainError::invalid(
                field,
                "a name no other metric of the run has",
                metric.name(),
            ));
        }
    }
    Ok(())
}

impl Clone for ClassMetric {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.boxed_clone(),
            name: self.name.clone(),
            on_train: self.on_train,
        }
    }
}

impl fmt::Debug for ClassMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassMetric")
            .field("name", &self.name)
            .field("on_train", &self.on_train)
            .finish_non_exhaustive()
    }
}

impl BurnMetric for ClassMetric {
    type Input = ClassMetricInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn description(&self) -> Option<String> {
        self.inner.description()
    }

    fn attributes(&self) -> MetricAttributes {
        self.inner.attributes()
    }

    fn update(
        &mut self,
        item: &ClassMetricInput,
        metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        self.inner.update(&item.output, metadata)
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        self.inner.compute()
    }

    fn clear(&mut self) {
        self.inner.clear();
    }
}

impl Numeric for ClassMetric {
    fn value(&self) -> Option<NumericEntry> {
        self.inner.value()
    }

    fn running_value(&self) -> Option<NumericEntry> {
        self.inner.running_value()
    }

    fn final_value(&self) -> NumericEntry {
        self.inner.final_value()
    }
}

/// Burn's `Metric + Numeric` with its input type erased to the
/// classification output, so one [`ClassMetric`] type holds any of them.
trait ErasedMetric: Send + Sync {
    fn update(
        &mut self,
        item: &ClassificationOutput,
        metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError>;
    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError>;
    fn clear(&mut self);
    fn description(&self) -> Option<String>;
    fn attributes(&self) -> MetricAttributes;
    fn value(&self) -> Option<NumericEntry>;
    fn running_value(&self) -> Option<NumericEntry>;
    fn final_value(&self) -> NumericEntry;
    fn boxed_clone(&self) -> Box<dyn ErasedMetric>;
}

impl<M> ErasedMetric for M
where
    M: BurnMetric + Numeric + 'static,
    ClassificationOutput: Adaptor<M::Input>,
{
    fn update(
        &mut self,
        item: &ClassificationOutput,
        metadata: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        BurnMetric::update(self, &item.adapt(), metadata)
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        BurnMetric::compute(self)
    }

    fn clear(&mut self) {
        BurnMetric::clear(self);
    }

    fn description(&self) -> Option<String> {
        BurnMetric::description(self)
    }

    fn attributes(&self) -> MetricAttributes {
        BurnMetric::attributes(self)
    }

    fn value(&self) -> Option<NumericEntry> {
        Numeric::value(self)
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Numeric::running_value(self)
    }

    fn final_value(&self) -> NumericEntry {
        Numeric::final_value(self)
    }

    fn boxed_clone(&self) -> Box<dyn ErasedMetric> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric_test_support::metadata;
    use burn::tensor::{Device, Int, Tensor};
    use burn::train::metric::{AccuracyMetric, TopKAccuracyMetric};

    /// Three samples of three classes: the first right, the second's
    /// target second-ranked, the third's third-ranked.
    fn output() -> ClassificationOutput {
        let device = Device::flex();
        ClassificationOutput::new(
            Tensor::<1>::from_floats([0.5], &device),
            Tensor::<2>::from_floats([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0], [3.0, 2.0, 1.0]], &device),
            Tensor::<1, Int>::from_ints([0, 1, 2], &device),
        )
    }

    /// The wrapped metric computes what the metric alone computes: Burn's
    /// top-2 accuracy of [`output`] is 2 of 3, in percent.
    #[test]
    fn a_wrapped_metric_computes_what_the_metric_computes() {
        let mut wrapped = ClassMetric::new(TopKAccuracyMetric::new(2)).named("top2");
        let input: ClassMetricInput = output().adapt();
        BurnMetric::update(&mut wrapped, &input, &metadata()).unwrap();
        let value = Numeric::value(&wrapped).unwrap().current();
        assert!((value - 200.0 / 3.0).abs() < 1e-4, "{value}");
        assert_eq!(wrapped.name(), "top2");
        assert_eq!(BurnMetric::name(&wrapped).as_str(), "top2");
        // Its clone is a metric of its own: clearing one leaves the other.
        let mut copy = wrapped.clone();
        BurnMetric::clear(&mut copy);
        assert!(Numeric::value(&wrapped).is_some());
    }

    #[test]
    fn its_direction_is_the_metrics_own() {
        assert_eq!(
            ClassMetric::new(AccuracyMetric::new()).higher_is_better(),
            Some(true)
        );
        assert_eq!(
            ClassMetric::new(burn::train::metric::LossMetric::new()).higher_is_better(),
            Some(false)
        );
    }

    #[test]
    fn a_name_must_make_a_column_and_not_shadow_recipes_own() {
        assert!(check_metric_name("top3").is_ok());
        assert!(check_metric_name("f1_macro").is_ok());
        let spaced = ClassMetric::new(TopKAccuracyMetric::new(3));
        assert!(
            spaced
                .check_name()
                .unwrap_err()
                .contains("ClassMetric::named")
        );
        assert!(check_metric_name("3top").is_err());
        assert!(check_metric_name("").is_err());
        assert!(
            check_metric_name("Loss")
                .unwrap_err()
                .contains("recipe's own")
        );
        assert!(check_metric_name("penalty").is_err());
    }

    #[test]
    fn valid_only_records_on_the_validation_split_alone() {
        let metric = ClassMetric::new(AccuracyMetric::new()).named("acc");
        assert_eq!(metric.splits(), vec![Split::Train, Split::Valid]);
        assert_eq!(metric.valid_only().splits(), vec![Split::Valid]);
    }
}
