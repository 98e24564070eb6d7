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
/// [`FitConfig::constraints`](crate::FitConfig::constraints) with a
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

    /// Parses `name`, `name:number` or `name:{json settings}`: `max-norm:3`,
    /// `unit-norm`, `unit-norm:2`, `non-neg`, or a registered constraint of
    /// your own with its settings as JSON (`clip-value:{"limit":0.5}`).
    pub fn parse(text: &str, selector: ParamSelector) -> Result<Self, TrainError> {
        let (name, argument) = match text.split_once(':') {
            Some((name, argument)) => (name.trim(), Some(argument.trim())),
            None => (text.trim(), None),
        };
        let registry = registry::constraints();
        if !registry.contains(name) {
            return Err(TrainError::invalid(
                "constraint",
                "a registered constraint",
                registry.not_registered(name),
            ));
        }
        let number = |field: &str| -> Result<serde_json::Value, TrainError> {
            let value: f64 = argument
                .ok_or_else(|| TrainError::invalid("constraint", format!("{name}:NUMBER"), text))?
                .parse()
                .map_err(|_| {
                    TrainError::invalid("constraint", format!("a number after `{name}:`"), text)
                })?;
            Ok(serde_json::json!({ field: value }))
        };
        let settings = match (name, argument) {
            (_, Some(json)) if json.starts_with('{') => serde_json::from_str(json)
                .map_err(|e| TrainError::invalid("constraint", "JSON settings after ':'", e))?,
            ("max-norm", _) => number("max_norm")?,
            ("unit-norm", None) => serde_json::json!({ "norm": 1.0 }),
            ("unit-norm", Some(_)) => number("norm")?,
            (_, None) => serde_json::Value::Null,
            (_, Some(other)) => {
                return Err(TrainError::invalid(
                    "constraint",
                    format!("`{name}` or `{name}:{{json settings}}`"),
                    other,
                ));
            }
        };
        let constraint = registry
            .build(name, settings)
            .map_err(|why| TrainError::invalid("constraint", "a registered constraint", why))?;
        Ok(Self {
            constraint,
            selector,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_built_ins_and_names_what_is_wrong() {
        let parse = |text: &str| WeightConstraint::parse(text, ParamSelector::default());
        assert_eq!(
            parse("max-norm:3").unwrap().to_string(),
            r#"max-norm {"max_norm":3.0}"#
        );
        assert_eq!(
            parse("unit-norm").unwrap().to_string(),
            r#"unit-norm {"norm":1.0}"#
        );
        assert_eq!(parse("non-neg").unwrap().to_string(), "non-neg null");
        assert_eq!(
            parse(r#"max-norm:{"max_norm":2.5}"#).unwrap().to_string(),
            r#"max-norm {"max_norm":2.5}"#
        );
        for (text, needle) in [
            ("max-norm", "max-norm:NUMBER"),
            ("max-norm:big", "a number after `max-norm:`"),
            ("clamp", "constraint `clamp` is not registered"),
            ("clamp:1", "constraint `clamp` is not registered"),
            ("non-neg:1", "`non-neg` or `non-neg:{json settings}`"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
