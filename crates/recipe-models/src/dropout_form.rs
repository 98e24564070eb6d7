//! Where dropout puts its `1 - p`: on the kept units while training
//! (inverted dropout, recipe's default and Burn's), or on the weights at
//! test time (the lecture's and Srivastava et al.'s original form). The two
//! nets compute the same function once the weights are converted
//! ([`DropoutForm::convert_weights_factor`]).

use std::fmt;
use std::str::FromStr;

use burn::nn::Dropout;
use burn::tensor::{Distribution, Tensor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::ModelError;

/// How a dropout layer scales, in training and at test time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DropoutForm {
    /// Kept values are multiplied by `1 / (1 - p)` while training; the
    /// test-time net is used as trained.
    #[default]
    Inverted,
    /// The lecture's form: kept values are not scaled while training, and
    /// at test time every output of the dropout layer is multiplied by
    /// `1 - p`, which is the same as multiplying the next layer's weights
    /// (not its bias) by `1 - p`.
    Lecture,
    /// Kept values are not scaled while training, and nothing is scaled at
    /// test time, so the test-time net sees `1 / (1 - p)` times more input
    /// on average than in training: pylearn2's `input_scales: 1`, the form
    /// of Goodfellow et al. 2013's input dropout. Not the same function as
    /// the other forms in training; the same as the inverted form at test
    /// time.
    Unscaled,
}

impl burn::config::Config for DropoutForm {}

/// By name; a missing field is the inverted form, the only one a config
/// written before the field existed can mean (Burn's `Config` derive gives
/// its fields no serde default, but a missing field is read as a `None`).
impl<'de> Deserialize<'de> for DropoutForm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(Self::Inverted),
            Some(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

impl DropoutForm {
    /// Every form, by the name that configs and the CLI use.
    pub const NAMES: &'static str = "inverted, lecture, unscaled";

    /// Applies `dropout` in this form. Dropout samples only while `dropout`
    /// is in training mode on a device with autodiff, as Burn's does; it
    /// draws its mask with the same call as Burn's, so both forms thin the
    /// same units from the same seed.
    ///
    /// # Shapes
    /// - input: any; output: the same
    pub fn forward<const D: usize>(&self, dropout: &Dropout, input: Tensor<D>) -> Tensor<D> {
        let keep = 1.0 - dropout.prob;
        match self {
            Self::Inverted => dropout.forward(input),
            _ if dropout.prob == 0.0 => input,
            _ if dropout.training.is_enabled() && input.device().is_autodiff() => {
                let mask = input.random_like(Distribution::Bernoulli(keep));
                input * mask
            }
            Self::Lecture => input * keep,
            Self::Unscaled => input,
        }
    }

    /// The factor by which the weights of every layer fed by a dropout
    /// layer of probability `p` change when a net trained in this form is
    /// converted to `target` so that it computes the same function at test
    /// time: `1 / (1 - p)` from inverted or unscaled to lecture, `1 - p`
    /// back, 1 between inverted and unscaled and to the same form. Between
    /// inverted and lecture the converted net is also the same in training
    /// (same masks); no weights make the unscaled form's training pass
    /// agree with another form's at test time as well.
    pub fn convert_weights_factor(&self, target: DropoutForm, p: f64) -> f64 {
        match (self, target) {
            (Self::Inverted | Self::Unscaled, Self::Lecture) => 1.0 / (1.0 - p),
            (Self::Lecture, Self::Inverted | Self::Unscaled) => 1.0 - p,
            _ => 1.0,
        }
    }
}

impl fmt::Display for DropoutForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Inverted => "inverted",
            Self::Lecture => "lecture",
            Self::Unscaled => "unscaled",
        })
    }
}

impl FromStr for DropoutForm {
    type Err = ModelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "inverted" => Ok(Self::Inverted),
            "lecture" | "weight-scaling" | "original" => Ok(Self::Lecture),
            "unscaled" | "pylearn2" => Ok(Self::Unscaled),
            _ => Err(ModelError::invalid("dropout_form", Self::NAMES, text)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::DropoutConfig;
    use burn::tensor::Device;

    #[test]
    fn the_lecture_form_scales_at_test_time_and_the_inverted_does_not() {
        let device = Device::flex();
        let dropout = DropoutConfig::new(0.25).init();
        let input = Tensor::<1>::from_floats([2.0, -4.0], &device);
        let lecture: Vec<f32> = DropoutForm::Lecture
            .forward(&dropout, input.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(lecture, vec![1.5, -3.0]);
        let inverted: Vec<f32> = DropoutForm::Inverted
            .forward(&dropout, input)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(inverted, vec![2.0, -4.0]);
        let unscaled: Vec<f32> = DropoutForm::Unscaled
            .forward(&dropout, Tensor::<1>::from_floats([2.0, -4.0], &device))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(unscaled, vec![2.0, -4.0]);
    }

    #[test]
    fn a_config_written_before_the_field_reads_as_inverted() {
        let config = crate::MlpConfig::new(4, vec![3], 2).with_dropout_form(DropoutForm::Lecture);
        let mut json: serde_json::Value = serde_json::to_value(&config).unwrap();
        assert_eq!(json["dropout_form"], "lecture");
        let read: crate::MlpConfig = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(read.dropout_form, DropoutForm::Lecture);
        json.as_object_mut().unwrap().remove("dropout_form");
        json.as_object_mut().unwrap().remove("input_dropout_form");
        let old: crate::MlpConfig = serde_json::from_value(json).unwrap();
        assert_eq!(old.dropout_form, DropoutForm::Inverted);
        assert_eq!(old.input_dropout_form, None);
    }

    #[test]
    fn names_round_trip() {
        for form in [
            DropoutForm::Inverted,
            DropoutForm::Lecture,
            DropoutForm::Unscaled,
        ] {
            assert_eq!(form.to_string().parse::<DropoutForm>().unwrap(), form);
        }
        let error = "scaled".parse::<DropoutForm>().unwrap_err().to_string();
        assert!(error.contains("dropout_form") && error.contains("lecture"));
    }
}
