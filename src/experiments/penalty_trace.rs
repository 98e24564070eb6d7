//! The lecture's two penalties step by step: under plain SGD a step is
//! `w ← w - η·∂L/∂w - η·∂P/∂w`, so L2 (`P = λ/2 Σ w²`) multiplies every
//! weight by `1 - ηλ` before the data's step and L1 (`P = λ Σ |w|`)
//! subtracts `ηλ·sign(w)`. The trace measures the penalty's part of each
//! step of real training on any data: the step taken minus the step the
//! data alone asks for (the data gradient at the same weights and batch).
//! Where a pixel is black in every training image (MNIST's corners), its
//! weights get no data gradient and the penalty alone moves them.

use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLearningRate;
use burn::tensor::{Device, Tensor};
use burn::train::{TrainOutput, TrainStep};
use recipe_data::{ClassBatch, ClassData, ImageItem, Splits, load_splits};
use recipe_models::Mlp;
use recipe_train::{
    Classifier, OptimizerConfig, ParamSelector, Regularizer, StepHooks, TrainConfig, TrainError,
    WeightPenalty,
};
use serde::{Deserialize, Serialize};

use crate::experiments::Claim;
use crate::plots::{LineChart, Series};

/// What the trace trains and watches.
#[derive(Debug, Clone)]
pub struct PenaltyTraceConfig {
    /// The run whose data, network, batch size and seed the trace uses
    /// (its first hidden layer is watched).
    pub base: TrainConfig,
    /// Plain SGD steps per penalty.
    pub steps: usize,
    /// SGD's learning rate `η`.
    pub learning_rate: f64,
    /// The L2 strength `λ` (penalty `λ/2 Σ w²`).
    pub l2: f64,
    /// The L1 strength `λ` (penalty `λ Σ |w|`).
    pub l1: f64,
    /// How many first-layer units to watch per pixel.
    pub units: usize,
}

impl PenaltyTraceConfig {
    /// 784-100-10 ReLU on 10,000 images, batch 100, 300 steps of SGD at 0.1,
    /// L2 and L1 at 0.01 (a factor 0.999 per step, or 0.001 per step).
    pub fn lecture(mut base: TrainConfig) -> Result<Self, TrainError> {
        let mlp = base.mlp_mut()?;
        mlp.hidden = vec![100];
        mlp.activation.truncate(1);
        base.data.split.train_limit = Some(10_000);
        Ok(Self {
            base,
            steps: 300,
            learning_rate: 0.1,
            l2: 0.01,
            l1: 0.01,
            units: 4,
        })
    }
}

/// One watched weight under one penalty: its value before each step and
/// after the last (`steps + 1` values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightSeries {
    /// `none`, `L2` or `L1`.
    pub penalty: String,
    /// The input pixel the weight comes from.
    pub pixel: usize,
    /// Whether that pixel is black in every training image (no data
    /// gradient).
    pub dead: bool,
    /// The first-layer unit it goes to.
    pub unit: usize,
    /// Its value before each step, then after the last.
    pub values: Vec<f64>,
    /// The penalty's part of each step: the change the step made plus `η`
    /// times the data gradient at the step's weights (0 without a penalty,
    /// up to rounding).
    #[serde(default)]
    pub penalty_steps: Vec<f64>,
}

/// The trace: every watched weight under every penalty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PenaltyTrace {
    /// `η`.
    pub learning_rate: f64,
    /// L2's `λ`.
    pub l2: f64,
    /// L1's `λ`.
    pub l1: f64,
    /// The series.
    pub series: Vec<WeightSeries>,
    /// Per penalty, the share of all first-layer weights within `η·λ_L1`
    /// of zero after the trace.
    #[serde(default)]
    pub near_zero: Vec<(String, f64)>,
}

/// The first pixel that is 0 in every image of `splits.train`, and the
/// brightest pixel on average.
fn dead_and_busy_pixels(splits: &Splits) -> (Option<usize>, usize) {
    let set = &splits.train;
    let size = set.rows * set.cols;
    let mut sums = vec![0u64; size];
    for image in set.pixels.chunks_exact(size) {
        for (sum, &pixel) in sums.iter_mut().zip(image) {
            *sum += u64::from(pixel);
        }
    }
    let dead = sums.iter().position(|&sum| sum == 0);
    let busy = (0..size).max_by_key(|&p| sums[p]).unwrap_or(0);
    (dead, busy)
}

/// Trains the trace's net from the same initial weights with no penalty,
/// with L2 and with L1, `steps` plain SGD steps each, recording the
/// watched first-layer weights of a dead pixel (if the data has one) and
/// of the brightest pixel.
pub fn trace_penalties(
    config: &PenaltyTraceConfig,
    device: &Device,
) -> Result<PenaltyTrace, TrainError> {
    let base = &config.base;
    let splits = load_splits(
        base.image_set()?,
        base.data.data_dir.as_deref(),
        &base.data.split,
    )?;
    let (dead, busy) = dead_and_busy_pixels(&splits);
    let pixels: Vec<(usize, bool)> = dead
        .map(|d| (d, true))
        .into_iter()
        .chain([(busy, false)])
        .collect();
    let data = splits.flat_data(base.data.standardize)?;
    let device = device.clone().autodiff();
    let penalties = [
        ("none", None),
        ("L2", Some(Regularizer::L2 { lambda: config.l2 })),
        ("L1", Some(Regularizer::L1 { lambda: config.l1 })),
    ];
    let mut series = Vec::new();
    let mut near_zero = Vec::new();
    for (name, regularizer) in penalties {
        let traced = TracedSteps::train(config, &data, &device, regularizer, &pixels)?;
        near_zero.push((
            name.to_string(),
            near_zero_share(&traced.net, config.learning_rate * config.l1),
        ));
        series.extend(traced.series(name, &pixels, config.units));
    }
    Ok(PenaltyTrace {
        learning_rate: config.learning_rate,
        l2: config.l2,
        l1: config.l1,
        series,
        near_zero,
    })
}

/// One penalty's training, step by step: the watched weights before each
/// step and after the last, and the step the data alone asked for.
struct TracedSteps {
    /// The net after the last step.
    net: Mlp,
    /// The watched weights (pixel-major, `units` per pixel) before each
    /// step, then after the last.
    values: Vec<Vec<f64>>,
    /// `η` times the data gradient of each watched weight at each step.
    data_steps: Vec<Vec<f64>>,
}

impl TracedSteps {
    /// Trains the trace's net, from the seed's initial weights, `steps`
    /// plain SGD steps under `regularizer`, watching `pixels`.
    fn train(
        config: &PenaltyTraceConfig,
        data: &ClassData<ImageItem, Tensor<2>>,
        device: &Device,
        regularizer: Option<Regularizer>,
        pixels: &[(usize, bool)],
    ) -> Result<Self, TrainError> {
        let base = &config.base;
        device.seed(base.fit.seed);
        let net = base.mlp()?.init(device)?;
        let penalties = regularizer
            .map(|r| WeightPenalty::new(r, ParamSelector::default()))
            .into_iter()
            .collect();
        let mut model = Classifier::with_hooks(net, StepHooks::new(penalties, Vec::new()));
        let mut optimizer = OptimizerConfig::sgd(0.0).init();
        let loader = data.loader(
            &data.train,
            base.fit.batch_size,
            Some(base.fit.seed),
            Some(device.clone()),
        );
        let mut values = Vec::new();
        let mut data_steps = Vec::new();
        while data_steps.len() < config.steps {
            for batch in loader.iter().take(config.steps - data_steps.len()) {
                let batch =
                    batch.map_err(|e| TrainError::Learner(format!("reading a batch: {e}")))?;
                values.push(watched(&model.net, pixels, config.units));
                data_steps.push(data_step(&model.net, batch.clone(), pixels, config)?);
                let TrainOutput { grads, .. } = model.step(batch);
                model = model.optimize(
                    &mut optimizer,
                    ModuleLearningRate::from(config.learning_rate),
                    grads,
                );
            }
        }
        values.push(watched(&model.net, pixels, config.units));
        Ok(Self {
            net: model.net,
            values,
            data_steps,
        })
    }

    /// One series per watched weight, its penalty steps the change each
    /// step made plus the data's step.
    fn series(&self, penalty: &str, pixels: &[(usize, bool)], units: usize) -> Vec<WeightSeries> {
        let mut series = Vec::new();
        for (index, &(pixel, dead)) in pixels.iter().enumerate() {
            for unit in 0..units {
                let at = index * units + unit;
                let values: Vec<f64> = self.values.iter().map(|step| step[at]).collect();
                let penalty_steps = values
                    .windows(2)
                    .zip(&self.data_steps)
                    .map(|(w, data)| w[1] - w[0] + data[at])
                    .collect();
                series.push(WeightSeries {
                    penalty: penalty.to_string(),
                    pixel,
                    dead,
                    unit,
                    values,
                    penalty_steps,
                });
            }
        }
        series
    }
}

/// The step the data alone asks for at `net`'s weights on `batch`: `η`
/// times the data gradient of each watched first-layer weight.
fn data_step(
    net: &Mlp,
    batch: ClassBatch<Tensor<2>>,
    pixels: &[(usize, bool)],
    config: &PenaltyTraceConfig,
) -> Result<Vec<f64>, TrainError> {
    let data_only = Classifier::new(net.clone()).step(batch);
    let weight = &net.layers[0].linear().weight;
    let gradient = data_only
        .grads
        .get::<2>(weight.id)
        .ok_or_else(|| TrainError::Learner("no gradient for layers.0".into()))?;
    Ok(rows(gradient, pixels, config.units)
        .into_iter()
        .map(|g| g * config.learning_rate)
        .collect())
}

/// The share of `net`'s first-layer weights within `threshold` of zero.
fn near_zero_share(net: &Mlp, threshold: f64) -> f64 {
    let weights = net.layers[0].linear().weight.val();
    let total = weights.dims().iter().product::<usize>() as f64;
    let small = weights
        .abs()
        .lower_equal_elem(threshold)
        .int()
        .sum()
        .into_scalar::<i64>();
    small as f64 / total
}

/// The first-layer weights from each of `pixels` to units `0..units`.
fn watched(net: &Mlp, pixels: &[(usize, bool)], units: usize) -> Vec<f64> {
    rows(net.layers[0].linear().weight.val(), pixels, units)
}

/// The entries of a `[inputs, units]` matrix in the rows of `pixels` and
/// columns `0..units`.
fn rows(weight: burn::tensor::Tensor<2>, pixels: &[(usize, bool)], units: usize) -> Vec<f64> {
    pixels
        .iter()
        .flat_map(|&(pixel, _)| {
            let row = weight
                .clone()
                .slice([pixel..pixel + 1, 0..units])
                .into_data()
                .convert::<f64>();
            row.iter::<f64>().collect::<Vec<_>>()
        })
        .collect()
}

impl PenaltyTrace {
    /// A Markdown table: each watched weight's value before the first step
    /// and after the last, per penalty.
    pub fn markdown_table(&self) -> String {
        let mut table = String::from(
            "| pixel | black in every image | unit | penalty | before | after |\n|---|---|---|---|---|---|\n",
        );
        for s in &self.series {
            table.push_str(&format!(
                "| {} | {} | {} | {} | {:.5} | {:.5} |\n",
                s.pixel,
                if s.dead { "yes" } else { "no" },
                s.unit,
                s.penalty,
                s.values.first().copied().unwrap_or(f64::NAN),
                s.values.last().copied().unwrap_or(f64::NAN)
            ));
        }
        table
    }

    fn watched(&self, penalty: &str) -> Vec<&WeightSeries> {
        self.series
            .iter()
            .filter(|s| s.penalty == penalty)
            .collect()
    }

    /// The watched weights against the step (those of the pixel that is
    /// black in every image when the data has one, else those of the
    /// brightest pixel): L2 solid, L1 dashed, no penalty unlabelled, one
    /// colour per unit.
    pub fn chart(&self) -> LineChart {
        let has_dead = self.series.iter().any(|s| s.dead);
        let mut chart = LineChart::new(
            if has_dead {
                "A weight with no data gradient: L2 shrinks it by a factor, L1 steps it to zero"
            } else {
                "The brightest pixel's weights: L2 shrinks by a factor, L1 pulls towards zero"
            },
            "SGD step",
            "weight value",
        );
        for series in self.series.iter().filter(|s| s.dead == has_dead) {
            let points = series
                .values
                .iter()
                .enumerate()
                .map(|(step, &value)| (step as f64, value))
                .collect();
            let line = Series::new(
                format!(
                    "{} (pixel {}, unit {})",
                    series.penalty, series.pixel, series.unit
                ),
                points,
            )
            .colored(series.unit);
            chart = chart.with(match series.penalty.as_str() {
                "L1" => line.dashed(),
                "none" => line.unlabelled(),
                _ => line,
            });
        }
        chart
    }

    /// The largest deviation, over every step of every watched weight under
    /// `penalty`, of the penalty's part of the step from `expected(w)`,
    /// relative to `|expected(w)|` plus an allowance `floor` for float
    /// rounding.
    fn deviation(&self, penalty: &str, expected: impl Fn(f64) -> f64, floor: f64) -> f64 {
        self.watched(penalty)
            .iter()
            .flat_map(|s| s.values.iter().zip(&s.penalty_steps))
            .filter(|(w, _)| w.abs() > 1e-12)
            .map(|(&w, &step)| {
                let want = expected(w);
                (step - want).abs() / (want.abs() + floor)
            })
            .fold(0.0, f64::max)
    }

    /// The lecture's two claims about the penalties, checked on the penalty's
    /// part of each step of the watched weights, and on how many weights
    /// end near zero.
    pub fn claims(&self) -> Vec<Claim> {
        let eta = self.learning_rate;
        let l2_rate = eta * self.l2;
        let l1_step = eta * self.l1;
        // f32 weights of about 0.05 round by a few 1e-9 per step.
        const FLOOR: f64 = 1e-8;
        let l2_claim = "L2 multiplies each weight by a factor a little below 1 at every step";
        let l2_criterion = format!(
            "in real training with plain SGD, the penalty's part of every step of the watched \
             first-layer weights (the step taken plus η times the data gradient at the same weights \
             and batch) is -ηλ·w to within 1% (each weight multiplied by 1 - ηλ = {}), and 0 \
             without a penalty",
            1.0 - l2_rate
        );
        let l1_claim = "L1 subtracts a constant at every step, so small weights reach zero";
        let l1_criterion = format!(
            "the penalty's part of every step under L1 is -ηλ·sign(w) = ∓{l1_step} to within 1%, \
             and after the trace the share of first-layer weights within ηλ of zero is at least \
             10 times L2's and 10 times that without a penalty"
        );
        if self.watched("L2").is_empty() || self.watched("L1").is_empty() {
            let missing = |claim: &str, criterion: String| Claim {
                claim: claim.into(),
                criterion,
                evidence: "not measured".into(),
                reproduced: None,
            };
            return vec![
                missing(l2_claim, l2_criterion),
                missing(l1_claim, l1_criterion),
            ];
        }
        let l2 = self.deviation("L2", |w| -l2_rate * w, FLOOR);
        let none = self.deviation("none", |_| 0.0, FLOOR);
        let l1 = self.deviation("L1", |w| -l1_step * w.signum(), FLOOR);
        let share = |penalty: &str| {
            self.near_zero
                .iter()
                .find(|(name, _)| name == penalty)
                .map_or(f64::NAN, |(_, share)| *share)
        };
        let (l1_share, l2_share, none_share) = (share("L1"), share("L2"), share("none"));
        let steps = self.watched("L2")[0].penalty_steps.len();
        let weights = self.watched("L2").len();
        vec![
            Claim {
                claim: l2_claim.into(),
                criterion: l2_criterion,
                evidence: format!(
                    "{weights} weights, {steps} steps: largest deviation {:.2}%; without a penalty \
                     every part stayed within {:.0}% of the {FLOOR:e} rounding allowance",
                    100.0 * l2,
                    100.0 * none
                ),
                reproduced: Some(l2 <= 0.01 && none <= 1.0),
            },
            Claim {
                claim: l1_claim.into(),
                criterion: l1_criterion,
                evidence: format!(
                    "largest deviation {:.2}%; weights within ηλ of zero: {:.1}% with L1, {:.1}% \
                     with L2, {:.1}% without",
                    100.0 * l1,
                    100.0 * l1_share,
                    100.0 * l2_share,
                    100.0 * none_share
                ),
                reproduced: Some(
                    l1 <= 0.01 && l1_share >= 10.0 * l2_share && l1_share >= 10.0 * none_share,
                ),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A weight under `penalty` with a data step of 0.002 every step (η
    /// 0.1, λ 0.1): the penalty's part follows `part(w)`.
    fn series(penalty: &str, part: impl Fn(f64) -> f64) -> WeightSeries {
        let mut values = vec![0.05];
        let mut penalty_steps = Vec::new();
        for _ in 0..4 {
            let w = *values.last().unwrap();
            penalty_steps.push(part(w));
            values.push(w - 0.002 + part(w));
        }
        WeightSeries {
            penalty: penalty.into(),
            pixel: 300,
            dead: false,
            unit: 0,
            values,
            penalty_steps,
        }
    }

    fn trace(l2: WeightSeries, l1: WeightSeries, shares: [f64; 3]) -> PenaltyTrace {
        PenaltyTrace {
            learning_rate: 0.1,
            l2: 0.1,
            l1: 0.1,
            series: vec![series("none", |_| 0.0), l2, l1],
            near_zero: ["none", "L2", "L1"]
                .into_iter()
                .zip(shares)
                .map(|(name, share)| (name.to_string(), share))
                .collect(),
        }
    }

    #[test]
    fn verdicts_follow_the_trace() {
        let l2 = || series("L2", |w| -0.01 * w);
        let l1 = || series("L1", |w| -0.01 * w.signum());
        let claims = trace(l2(), l1(), [0.01, 0.02, 0.5]).claims();
        assert_eq!(claims[0].reproduced, Some(true), "{:?}", claims[0]);
        assert_eq!(claims[1].reproduced, Some(true), "{:?}", claims[1]);
        // A shrinking factor 2% off, an L1 step of half the size, too few
        // weights near zero.
        let off = series("L2", |w| -0.0102 * w);
        assert_eq!(
            trace(off, l1(), [0.01, 0.02, 0.5]).claims()[0].reproduced,
            Some(false)
        );
        let half = series("L1", |w| -0.005 * w.signum());
        assert_eq!(
            trace(l2(), half, [0.01, 0.02, 0.5]).claims()[1].reproduced,
            Some(false)
        );
        assert_eq!(
            trace(l2(), l1(), [0.01, 0.1, 0.5]).claims()[1].reproduced,
            Some(false)
        );
    }

    #[test]
    fn without_penalized_series_nothing_is_measured() {
        let mut none = trace(series("L2", |_| 0.0), series("L1", |_| 0.0), [0.0; 3]);
        none.series.retain(|s| s.penalty == "none");
        assert!(none.claims().iter().all(|c| c.reproduced.is_none()));
    }
}
