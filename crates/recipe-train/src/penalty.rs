//! Penalties: terms added to the loss in the training step, one parameter
//! tensor at a time.

use std::fmt;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::param::visit_params;
use crate::registry::{self, Recorded, Settings};
use crate::{ParamSelector, ParamTensor, PenaltyGradient, TrainError};

/// A penalty on one parameter tensor. Implement it to add your own
/// regularizer, [register](crate::register_penalty) it under its
/// [`Penalty::name`], and add it to
/// [`FitConfig::penalties`](crate::FitConfig::penalties) with a
/// [`WeightPenalty`]: it is then recorded in `config.json` with its
/// settings (its `Serialize` form) and rebuilt on resume.
///
/// It sees each selected parameter with its path, its holding module and
/// its shape, its values grouped by unit ([`ParamTensor`]), so structured
/// penalties (per unit, per filter, orthogonality) can be written.
pub trait Penalty: Settings + Send + Sync + fmt::Debug {
    /// The name it is registered under.
    fn name(&self) -> &str;

    /// The penalty of one parameter, shape `[1]`, differentiable in `param`'s values.
    fn penalty(&self, param: &ParamTensor) -> Tensor<1>;

    /// The penalty's value and gradient in `param` in closed form, if it
    /// has one (`None`, the default, builds an autodiff graph from
    /// [`Penalty::penalty`]). With `Some`, the training step adds the
    /// gradient to the loss's gradient after `backward`, at the cost of a
    /// pass over the weights instead of a graph. It must agree with
    /// [`Penalty::penalty`] and its gradient. Before training the trainer
    /// also asks it, on a parameter of zeros (the weights are not drawn
    /// yet), whether the penalty is a [`PenaltyGradient::ElasticNet`] an
    /// optimizer can fold in: a penalty that answers `ElasticNet` must do so,
    /// with the same strengths, whatever the values.
    fn closed_form(&self, param: &ParamTensor) -> Option<PenaltyGradient> {
        let _ = param;
        None
    }
}

/// A penalty and the parameters it applies to.
#[derive(Debug, Clone)]
pub struct WeightPenalty {
    /// The penalty.
    pub penalty: Arc<dyn Penalty>,
    /// Its parameters.
    pub selector: ParamSelector,
}

impl WeightPenalty {
    /// `penalty` on the parameters `selector` picks.
    pub fn new(penalty: impl Penalty + 'static, selector: ParamSelector) -> Self {
        Self {
            penalty: Arc::new(penalty),
            selector,
        }
    }

    /// The total penalty of `module`, or `None` when no parameter is
    /// selected, through [`Penalty::penalty`] (differentiable).
    pub fn of<M: Module>(&self, module: &M) -> Option<Tensor<1>> {
        let mut total: Option<Tensor<1>> = None;
        visit_params(
            module,
            |info| self.selector.selects(info),
            |param| {
                let term = self.penalty.penalty(&param);
                total = Some(match total.take() {
                    Some(total) => total + term,
                    None => term,
                });
            },
        );
        total
    }

    /// Fails, naming `field`, when the penalty selects no parameter of `module`.
    pub fn check<M: Module>(&self, module: &M, field: &str) -> Result<(), TrainError> {
        self.selector.selected(module, field).map(|_| ())
    }

    /// The dotted paths of the parameters this penalty applies to in `module`.
    pub fn selected_paths<M: Module>(&self, module: &M) -> Vec<String> {
        crate::param_infos(module)
            .into_iter()
            .filter(|info| self.selector.selects(info))
            .map(|info| info.path)
            .collect()
    }
}

impl fmt::Display for WeightPenalty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.penalty.name(), self.penalty.settings())
    }
}

impl PartialEq for WeightPenalty {
    fn eq(&self, other: &Self) -> bool {
        self.penalty.name() == other.penalty.name()
            && self.penalty.settings() == other.penalty.settings()
            && self.selector == other.selector
    }
}

impl Serialize for WeightPenalty {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Recorded {
            name: self.penalty.name().to_string(),
            settings: self.penalty.settings(),
            selector: self.selector.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WeightPenalty {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let recorded = Recorded::deserialize(deserializer)?;
        let penalty = registry::penalties()
            .build(&recorded.name, recorded.settings)
            .map_err(serde::de::Error::custom)?;
        Ok(Self {
            penalty,
            selector: recorded.selector,
        })
    }
}
