//! Constraints: projections applied to parameters after every optimizer step.

use std::fmt;
use std::sync::Arc;

use burn::module::Module;
use burn::tensor::Tensor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::param::map_params;
use crate::registry::{self, Recorded, Settings};
use crate::{ParamInfo, ParamSelector, ParamTensor, TrainError};

/// A constraint on one parameter tensor, applied after each optimizer step
/// (outside the gradient). Implement it for your own,
/// [register](crate::register_constraint) it under its
/// [`Constraint::name`], and add it to
/// [`TrainConfig::constraints`](crate::TrainConfig::constraints) with a
/// [`WeightConstraint`]: it is then recorded in `config.json` and rebuilt
/// on resume.
///
/// Built in: [`MaxNorm`](crate::MaxNorm), [`UnitNorm`](crate::UnitNorm) and
/// [`NonNeg`](crate::NonNeg).
pub trait Constraint: Settings + Send + Sync + fmt::Debug {
    /// The name it is registered under.
    fn name(&self) -> &str;

    /// Whether it can apply to this parameter; if not, why (checked for
    /// every selected parameter before training starts).
    fn check(&self, param: &ParamInfo) -> Result<(), String> {
        let _ = param;
        Ok(())
    }

    /// The constrained values, in the layout of `param.matrix`.
    fn apply(&self, param: &ParamTensor) -> Tensor<2>;
}

/// A constraint and the parameters it applies to.
#[derive(Debug, Clone)]
pub struct WeightConstraint {
    /// The constraint.
    pub constraint: Arc<dyn Constraint>,
    /// Its parameters.
    pub selector: ParamSelector,
}

impl WeightConstraint {
    /// `constraint` on the parameters `selector` picks.
    pub fn new(constraint: impl Constraint + 'static, selector: ParamSelector) -> Self {
        Self {
            constraint: Arc::new(constraint),
            selector,
        }
    }

    /// Applies the constraint to every selected parameter of `module`.
    pub fn apply<M: Module>(&self, module: M) -> M {
        map_params(
            module,
            |info| self.selector.selects(info),
            |param| self.constraint.apply(param),
        )
    }

    /// Fails, naming the parameter, when the constraint cannot apply to one
    /// it selects in `module`, or when it selects none.
    pub fn check<M: Module>(&self, module: &M, field: &str) -> Result<(), TrainError> {
        for info in self.selector.selected(module, field)? {
            self.constraint.check(&info).map_err(|why| {
                TrainError::invalid(
                    field,
                    format!(
                        "a constraint that can apply to `{}` {:?}",
                        info.path, info.shape
                    ),
                    format!("{}: {why}", self.constraint.name()),
                )
            })?;
        }
        Ok(())
    }
}

impl fmt::Display for WeightConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            self.constraint.name(),
            self.constraint.settings()
        )
    }
}

impl PartialEq for WeightConstraint {
    fn eq(&self, other: &Self) -> bool {
        self.constraint.name() == other.constraint.name()
            && self.constraint.settings() == other.constraint.settings()
            && self.selector == other.selector
    }
}

impl Serialize for WeightConstraint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        Recorded {
            name: self.constraint.name().to_string(),
            settings: self.constraint.settings(),
            selector: self.selector.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WeightConstraint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let recorded = Recorded::deserialize(deserializer)?;
        let constraint = registry::constraints()
            .build(&recorded.name, recorded.settings)
            .map_err(serde::de::Error::custom)?;
        Ok(Self {
            constraint,
            selector: recorded.selector,
        })
    }
}
