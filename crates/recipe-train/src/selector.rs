//! Which parameters a penalty, a constraint or a learning-rate scale
//! applies to.

use serde::{Deserialize, Serialize};

use burn::module::Module;

use crate::param::is_bias_path;
use crate::{ParamInfo, TrainError};

/// Which parameters a penalty, a constraint or a learning-rate scale
/// applies to: some kinds of parameter (weights; biases; the rest) in some
/// layers.
///
/// A parameter's kind comes from its rank and name: a weight has two
/// dimensions or more (a linear weight, a convolution kernel, an
/// embedding), a bias is a vector whose name is `bias`, and the rest are
/// the other vectors: a normalization layer's gain and shift (`gamma`,
/// `beta`), an activation's learned parameters (PReLU's slopes,
/// `layers.0.activation.params.0`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSelector {
    /// Biases too (weights only by default, as in the lecture).
    pub include_bias: bool,
    /// The other vectors too: normalization gains and shifts, an
    /// activation's learned parameters (none by default). Absent from
    /// `config.json` files written before it existed, where it was false.
    #[serde(default)]
    pub include_other: bool,
    /// Only parameters whose path starts with one of these (e.g. `layers.0`,
    /// `output`); all when empty. Paths look like `layers.1.linear.weight`.
    /// A whole path (`layers.0.activation.params.0`) selects that
    /// parameter whatever its kind.
    pub layers: Vec<String>,
}

impl ParamSelector {
    /// The weights of `layers` (of every layer when empty).
    pub fn weights(layers: Vec<String>) -> Self {
        Self {
            layers,
            ..Self::default()
        }
    }

    /// The weights and biases of `layers` (of every layer when empty).
    pub fn weights_and_biases(layers: Vec<String>) -> Self {
        Self {
            include_bias: true,
            ..Self::weights(layers)
        }
    }

    /// Every parameter of `layers` (of every layer when empty): weights,
    /// biases and the other vectors.
    pub fn every_param(layers: Vec<String>) -> Self {
        Self {
            include_bias: true,
            include_other: true,
            layers,
        }
    }

    /// Whether the parameter at `path` with `rank` dimensions is selected:
    /// one of the kinds asked for under one of the layers, or named by its
    /// whole path in `layers`, whatever its kind.
    pub fn matches(&self, path: &str, rank: usize) -> bool {
        if self.layers.iter().any(|name| name == path) {
            return true;
        }
        let kind_ok = if rank >= 2 {
            true
        } else if is_bias_path(path) {
            self.include_bias
        } else {
            self.include_other
        };
        let layer_ok = self.layers.is_empty()
            || self
                .layers
                .iter()
                .any(|prefix| path.starts_with(&format!("{prefix}.")));
        kind_ok && layer_ok
    }

    /// Whether every kind of parameter is selected.
    pub fn every_kind(&self) -> bool {
        self.include_bias && self.include_other
    }

    /// The kinds of parameter selected, in words: `weights`, `weights and
    /// biases`, `weights and other vectors` or `every parameter`.
    pub fn kinds(&self) -> &'static str {
        match (self.include_bias, self.include_other) {
            (false, false) => "weights",
            (true, false) => "weights and biases",
            (false, true) => "weights and other vectors",
            (true, true) => "every parameter",
        }
    }
}

impl ParamSelector {
    /// The layer prefixes of a comma-separated list (`layers.0, output`),
    /// blanks left out: what follows `@` in `--constraint` and `--lr-scale`.
    pub fn layers_from_text(text: &str) -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|layer| !layer.is_empty())
            .map(String::from)
            .collect()
    }

    /// The parameters of `module` this selector picks; an error naming
    /// `field` when it picks none (a typo in a layer prefix, say).
    pub fn selected<M: Module>(
        &self,
        module: &M,
        field: &str,
    ) -> Result<Vec<ParamInfo>, TrainError> {
        let infos = crate::param_infos(module);
        let selected: Vec<ParamInfo> = infos.iter().filter(|i| self.selects(i)).cloned().collect();
        if selected.is_empty() {
            let known: Vec<&str> = infos.iter().map(|i| i.path.as_str()).collect();
            return Err(TrainError::invalid(
                format!("{field}.selector"),
                format!(
                    "a selection of at least one parameter (the network's parameters: {})",
                    known.join(", ")
                ),
                format!("{} of layers {:?}", self.kinds(), self.layers),
            ));
        }
        Ok(selected)
    }

    /// [`ParamSelector::matches`] for a parameter's info; never a
    /// parameter that training does not move ([`ParamInfo::trainable`]:
    /// batch normalization's running statistics, a frozen parameter).
    pub fn selects(&self, param: &ParamInfo) -> bool {
        param.trainable && self.matches(&param.path, param.rank())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEIGHT: (&str, usize) = ("layers.0.linear.weight", 2);
    const BIAS: (&str, usize) = ("layers.0.linear.bias", 1);
    const SLOPE: (&str, usize) = ("layers.0.activation.params.0", 1);
    const GAIN: (&str, usize) = ("norm.gamma", 1);

    fn picks(selector: &ParamSelector) -> Vec<&'static str> {
        [WEIGHT, BIAS, SLOPE, GAIN]
            .into_iter()
            .filter(|(path, rank)| selector.matches(path, *rank))
            .map(|(path, _)| path)
            .collect()
    }

    #[test]
    fn each_kind_is_selected_only_when_asked_for() {
        let none: Vec<String> = Vec::new();
        assert_eq!(picks(&ParamSelector::weights(none.clone())), [WEIGHT.0]);
        assert_eq!(
            picks(&ParamSelector::weights_and_biases(none.clone())),
            [WEIGHT.0, BIAS.0]
        );
        assert_eq!(
            picks(&ParamSelector::every_param(none)),
            [WEIGHT.0, BIAS.0, SLOPE.0, GAIN.0]
        );
        let other_only = ParamSelector {
            include_other: true,
            ..ParamSelector::default()
        };
        assert_eq!(picks(&other_only), [WEIGHT.0, SLOPE.0, GAIN.0]);
    }

    #[test]
    fn layers_are_path_prefixes_of_whole_names() {
        let layer_zero = ParamSelector::every_param(vec!["layers.0".into()]);
        assert_eq!(picks(&layer_zero), [WEIGHT.0, BIAS.0, SLOPE.0]);
        assert!(!layer_zero.matches("layers.01.linear.weight", 2));
        let exact = ParamSelector::every_param(vec!["norm.gamma".into()]);
        assert_eq!(picks(&exact), [GAIN.0]);
    }

    /// A parameter named by its whole path is selected whatever its kind.
    #[test]
    fn a_parameter_named_whole_is_selected_whatever_its_kind() {
        let named = ParamSelector::weights(vec![SLOPE.0.into(), BIAS.0.into()]);
        assert_eq!(picks(&named), [BIAS.0, SLOPE.0]);
        let layer = ParamSelector::weights(vec!["layers.0.activation".into()]);
        assert!(picks(&layer).is_empty());
    }

    /// A name that merely ends in `bias` is not a bias.
    #[test]
    fn a_bias_is_a_vector_named_bias() {
        let biases = ParamSelector::weights_and_biases(Vec::new());
        assert!(biases.matches("bias", 1));
        assert!(!biases.matches("layers.0.unbias", 1));
        assert!(biases.matches("layers.0.unbias", 2));
    }

    /// A buffer (batch norm's running statistics) or a frozen parameter
    /// is never selected, whatever the kinds asked for.
    #[test]
    fn a_parameter_that_does_not_train_is_never_selected() {
        let every = ParamSelector::every_param(Vec::new());
        let mut running_mean = ParamInfo::new("norm.running_mean", "BatchNorm", vec![4]);
        assert!(every.selects(&running_mean));
        running_mean.trainable = false;
        assert!(!every.selects(&running_mean));
    }

    /// `config.json` files written before `include_other` existed read as
    /// they did: without the other vectors.
    #[test]
    fn a_selector_without_include_other_reads_as_false() {
        let read: ParamSelector =
            serde_json::from_str(r#"{"include_bias": true, "layers": ["layers.0"]}"#).unwrap();
        assert_eq!(
            read,
            ParamSelector::weights_and_biases(vec!["layers.0".into()])
        );
    }
}
