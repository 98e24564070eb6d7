//! Which parameters a penalty or constraint applies to.

use serde::{Deserialize, Serialize};

use burn::module::Module;

use crate::{ParamInfo, TrainError};

/// Which parameters a penalty or constraint applies to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSelector {
    /// Biases too (weights only by default, as in the lecture).
    pub include_bias: bool,
    /// Only parameters whose path starts with one of these (e.g. `layers.0`,
    /// `output`); all when empty. Paths look like `layers.1.linear.weight`.
    pub layers: Vec<String>,
}

impl ParamSelector {
    /// Whether the parameter at `path` with `rank` dimensions is selected.
    /// Weight matrices are rank 2; a rank-1 parameter is selected only when
    /// it is a bias and biases are included.
    pub fn matches(&self, path: &str, rank: usize) -> bool {
        let kind_ok = rank >= 2 || (self.include_bias && path.ends_with("bias"));
        let layer_ok = self.layers.is_empty()
            || self
                .layers
                .iter()
                .any(|prefix| path == prefix || path.starts_with(&format!("{prefix}.")));
        kind_ok && layer_ok
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
                format!(
                    "include_bias {}, layers {:?}",
                    self.include_bias, self.layers
                ),
            ));
        }
        Ok(selected)
    }

    /// [`ParamSelector::matches`] for a parameter's info.
    pub fn selects(&self, param: &ParamInfo) -> bool {
        self.matches(&param.path, param.rank())
    }
}
