//! Learning rates of their own for some parameters: per-layer rates (the
//! dropout paper's deepnet sets one per layer), a layer frozen at rate 0.

use std::fmt;
use std::str::FromStr;

use burn::optim::LearningRate;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::lr_scheduler::{LrScheduler, LrSchedulerRecord};
use serde::{Deserialize, Serialize};

use crate::fold_hooks::classifier_group;
use crate::{Classifier, Classify, ParamSelector, TrainError};

/// The run's learning rate times `factor` for the parameters `selector`
/// picks, at every step, under any schedule or plateau rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrScale {
    /// What the rate is multiplied by for these parameters, at least 0 (0
    /// freezes them: no update moves them, whatever the optimizer).
    pub factor: f64,
    /// The parameters.
    pub selector: ParamSelector,
}

impl LrScale {
    /// `factor` for the parameters `selector` picks; an error when the
    /// factor is negative or not finite.
    pub fn new(factor: f64, selector: ParamSelector) -> Result<Self, TrainError> {
        let scale = Self { factor, selector };
        scale.validate()?;
        Ok(scale)
    }

    /// Fails, naming the factor, when it is negative or not finite.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.factor >= 0.0 && self.factor.is_finite() {
            Ok(())
        } else {
            Err(TrainError::invalid(
                "lr_scales.factor",
                "a finite number >= 0 (0 freezes the parameters)",
                self.factor,
            ))
        }
    }
}

/// `FACTOR@LAYER[,LAYER...]`: every parameter of those layers, their
/// weights, biases and other vectors (an activation's learned slopes, a
/// normalization's gain): `0.64@layers.0`.
impl FromStr for LrScale {
    type Err = TrainError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || {
            TrainError::invalid(
                "lr-scale",
                "FACTOR@LAYER[,LAYER...] (e.g. 0.5@layers.0,layers.1)",
                text,
            )
        };
        let (factor, layers) = text.split_once('@').ok_or_else(bad)?;
        let factor: f64 = factor.trim().parse().map_err(|_| bad())?;
        let layers = ParamSelector::layers_from_text(layers);
        if layers.is_empty() {
            return Err(bad());
        }
        Self::new(factor, ParamSelector::every_param(layers))
    }
}

impl fmt::Display for LrScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let layers = match self.selector.layers.as_slice() {
            [] => "every layer".to_string(),
            layers => layers.join(","),
        };
        let kinds = if self.selector.every_kind() {
            String::new()
        } else {
            format!(" ({} only)", self.selector.kinds())
        };
        write!(f, "{}@{layers}{kinds}", self.factor)
    }
}

/// `base`'s rate times `factor` at every step; its record is `base`'s.
#[derive(Debug, Clone)]
pub struct ScaledLr<S> {
    /// The schedule scaled.
    pub base: S,
    /// The factor.
    pub factor: f64,
}

impl<S: LrScheduler + Clone + 'static> LrScheduler for ScaledLr<S> {
    fn step(&mut self) -> LearningRate {
        self.base.step() * self.factor
    }

    fn to_record(&self) -> LrSchedulerRecord {
        self.base.to_record()
    }

    fn load_record(&mut self, record: LrSchedulerRecord) {
        self.base.load_record(record);
    }
}

/// Burn's scheduler for `model`'s parameters: `base` for every parameter,
/// `base` times a scale's factor for those the scale picks (a later scale
/// overrides an earlier one where both pick a parameter, as Burn's groups
/// do). recipe's trainer gives it to Burn's `Learner`; so can a program
/// that builds its own. An error naming `lr_scales[i]` when a scale picks
/// no parameter.
pub fn scaled_lr_scheduler<N, S>(
    base: S,
    scales: &[LrScale],
    model: &Classifier<N>,
) -> Result<ModuleLrScheduler, TrainError>
where
    N: Classify,
    S: LrScheduler + Clone + 'static,
{
    let mut scheduler = ModuleLrScheduler::new(base.clone());
    for (index, scale) in scales.iter().enumerate() {
        let params = scale
            .selector
            .selected(&model.net, &format!("lr_scales[{index}]"))?;
        let group = classifier_group(params.iter().map(|param| &param.path));
        let scaled = ScaledLr {
            base: base.clone(),
            factor: scale.factor,
        };
        scheduler = scheduler.with_group(group, scaled);
    }
    Ok(scheduler)
}

#[cfg(test)]
mod tests {
    use burn::module::ParamId;
    use burn::tensor::Device;
    use recipe_models::MlpConfig;

    use super::*;
    use crate::{LrSchedule, ScheduledLr};

    #[test]
    fn text_forms_and_impossible_scales() {
        let scale: LrScale = "0.64@layers.0, output".parse().unwrap();
        assert_eq!(scale.factor, 0.64);
        assert_eq!(
            scale.selector,
            ParamSelector::every_param(vec!["layers.0".into(), "output".into()])
        );
        assert_eq!(scale.to_string(), "0.64@layers.0,output");
        assert_eq!("0@layers.1".parse::<LrScale>().unwrap().factor, 0.0);
        for bad in [
            "0.5",
            "0.5@",
            "half@layers.0",
            "-1@layers.0",
            "inf@layers.0",
        ] {
            let err = bad.parse::<LrScale>().unwrap_err().to_string();
            assert!(err.contains("lr"), "{bad}: {err}");
        }
        let weights_only = LrScale::new(2.0, ParamSelector::default()).unwrap();
        assert_eq!(weights_only.to_string(), "2@every layer (weights only)");
        let with_biases = LrScale::new(2.0, ParamSelector::weights_and_biases(vec!["a".into()]));
        assert_eq!(
            with_biases.unwrap().to_string(),
            "2@a (weights and biases only)"
        );
    }

    /// Each parameter's rate at two steps of an exponential schedule: the
    /// schedule's, times the factor of the last scale that picks it.
    #[test]
    fn a_scale_multiplies_the_schedule_for_the_parameters_it_picks() {
        let device = Device::flex();
        let net = MlpConfig::new(4, vec![3, 3], 2)
            .with_activation(vec!["prelu-per-unit".parse().unwrap()])
            .init(&device)
            .unwrap();
        let model = Classifier::new(net);
        let scales: Vec<LrScale> = ["0.5@layers.0,output", "0@output"]
            .iter()
            .map(|text| text.parse().unwrap())
            .collect();
        let base = ScheduledLr::new(LrSchedule::Exponential { factor: 0.5 }, 0.1, 1, 2);
        let mut scheduler = scaled_lr_scheduler(base, &scales, &model).unwrap();
        for expected_base in [0.1, 0.05] {
            let rates = scheduler.step();
            let rate = |path: &str| rates.lr_from_param(ParamId::new(), Some(path));
            assert_eq!(rate("net.layers.0.linear.weight"), 0.5 * expected_base);
            assert_eq!(rate("net.layers.0.linear.bias"), 0.5 * expected_base);
            // PReLU's learned slopes are the layer's too.
            assert_eq!(
                rate("net.layers.0.activation.params.0"),
                0.5 * expected_base
            );
            assert_eq!(rate("net.layers.1.activation.params.0"), expected_base);
            assert_eq!(rate("net.layers.1.linear.weight"), expected_base);
            assert_eq!(rate("net.output.weight"), 0.0);
        }
        let typo = vec!["0.5@layer.0".parse::<LrScale>().unwrap()];
        let err = scaled_lr_scheduler(0.1, &typo, &model)
            .err()
            .expect("a scale that picks nothing")
            .to_string();
        assert!(
            err.contains("lr_scales[0].selector") && err.contains("layers.0.linear.weight"),
            "{err}"
        );
    }
}
