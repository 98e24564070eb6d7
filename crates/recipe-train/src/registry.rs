//! Names for penalties, constraints, learning-rate schedules and
//! optimizers of your own, so that `config.json` records them with their
//! settings and a resumed run rebuilds them.
//!
//! A run's config names each [`Penalty`], [`Constraint`], [`LrScheduleFn`]
//! and [`OptimizerFn`] by the name it was registered under and stores its
//! settings as JSON (its `Serialize` form). Resuming looks the name up
//! here: the built-in ones are always registered (or, for schedules and
//! optimizers, are variants of [`LrSchedule`](crate::LrSchedule) and
//! [`OptimizerConfig`](crate::OptimizerConfig)); yours must be registered
//! (with [`register_penalty`], [`register_constraint`],
//! [`register_lr_schedule`] or [`register_optimizer`]) by the program that
//! resumes, or the resume fails with an error that names the missing one.

use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{
    Constraint, GroupLasso, LrScheduleFn, MaxNorm, NonNeg, OptimizerFn, Penalty, Regularizer,
    TrainError, UnitNorm,
};

/// Settings that can be written into `config.json`. Every `Serialize` type
/// has them; penalties and constraints need it to be recorded.
pub trait Settings {
    /// The settings as JSON.
    fn settings(&self) -> serde_json::Value;
}

impl<T: Serialize> Settings for T {
    fn settings(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

type Builder<T> = Arc<dyn Fn(serde_json::Value) -> Result<Arc<T>, String> + Send + Sync>;

/// A list of names and how to rebuild each from its settings.
pub(crate) struct Registry<T: ?Sized> {
    kind: &'static str,
    function: &'static str,
    entries: RwLock<Vec<(String, Builder<T>)>>,
}

impl<T: ?Sized> Registry<T> {
    fn new(kind: &'static str, function: &'static str) -> Self {
        Self {
            kind,
            function,
            entries: RwLock::new(Vec::new()),
        }
    }

    fn register(&self, name: &str, build: Builder<T>) -> Result<(), TrainError> {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if name.is_empty() || entries.iter().any(|(known, _)| known == name) {
            return Err(TrainError::invalid(
                format!("{} name", self.kind),
                "a name not registered yet",
                format!("`{name}`"),
            ));
        }
        entries.push((name.to_string(), build));
        Ok(())
    }

    /// The registered names, in registration order.
    pub(crate) fn names(&self) -> Vec<String> {
        let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
        entries.iter().map(|(name, _)| name.clone()).collect()
    }

    /// Whether `name` is registered.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names().iter().any(|known| known == name)
    }

    /// Why `name` cannot be rebuilt: it is not registered.
    pub(crate) fn not_registered(&self, name: &str) -> String {
        format!(
            "{kind} `{name}` is not registered (registered: {known}); a program that \
             trains or resumes a run with a {kind} of its own must first call \
             recipe_train::{function}",
            kind = self.kind,
            known = self.names().join(", "),
            function = self.function,
        )
    }

    /// Parses `NAME` or `NAME:{json settings}` (the [`NamedSettings`]
    /// text); `None` when nothing is registered under `NAME`.
    pub(crate) fn parse(&self, text: &str) -> Option<Result<Arc<T>, String>> {
        let (name, settings) = match text.split_once(':') {
            Some((name, json)) => (name.trim(), Some(json.trim())),
            None => (text.trim(), None),
        };
        if !self.contains(name) {
            return None;
        }
        let settings = match settings.map(serde_json::from_str) {
            None => Ok(serde_json::Value::Null),
            Some(Ok(value)) => Ok(value),
            Some(Err(error)) => Err(format!(
                "`{name}`'s settings after ':' are not JSON: {error}"
            )),
        };
        Some(settings.and_then(|settings| self.build(name, settings)))
    }

    /// Rebuilds the entry named `name` from its recorded settings.
    pub(crate) fn build(&self, name: &str, settings: serde_json::Value) -> Result<Arc<T>, String> {
        let build = {
            let entries = self.entries.read().unwrap_or_else(|p| p.into_inner());
            entries
                .iter()
                .find(|(known, _)| known == name)
                .map(|(_, build)| build.clone())
        };
        match build {
            Some(build) => build(settings).map_err(|e| format!("{} `{name}`: {e}", self.kind)),
            None => Err(self.not_registered(name)),
        }
    }
}

fn builder<T: ?Sized + 'static, U: DeserializeOwned + 'static>(
    wrap: fn(U) -> Arc<T>,
) -> Builder<T> {
    Arc::new(move |settings| {
        serde_json::from_value::<U>(settings)
            .map(wrap)
            .map_err(|e| format!("its settings do not fit: {e}"))
    })
}

pub(crate) fn penalties() -> &'static Registry<dyn Penalty> {
    static REGISTRY: OnceLock<Registry<dyn Penalty>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Registry::new("penalty", "register_penalty");
        let builtins: [(&str, Builder<dyn Penalty>); 2] = [
            (
                "regularizer",
                builder(|p: Regularizer| -> Arc<dyn Penalty> { Arc::new(p) }),
            ),
            (
                "group-lasso",
                builder(|p: GroupLasso| -> Arc<dyn Penalty> { Arc::new(p) }),
            ),
        ];
        for (name, build) in builtins {
            registry
                .register(name, build)
                .expect("distinct built-in names");
        }
        registry
    })
}

pub(crate) fn constraints() -> &'static Registry<dyn Constraint> {
    static REGISTRY: OnceLock<Registry<dyn Constraint>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let registry = Registry::new("constraint", "register_constraint");
        let builtins: [(&str, Builder<dyn Constraint>); 3] = [
            (
                "max-norm",
                builder(|c: MaxNorm| -> Arc<dyn Constraint> { Arc::new(c) }),
            ),
            (
                "unit-norm",
                builder(|c: UnitNorm| -> Arc<dyn Constraint> { Arc::new(c) }),
            ),
            (
                "non-neg",
                builder(|c: NonNeg| -> Arc<dyn Constraint> { Arc::new(c) }),
            ),
        ];
        for (name, build) in builtins {
            registry
                .register(name, build)
                .expect("distinct built-in names");
        }
        registry
    })
}

pub(crate) fn lr_schedules() -> &'static Registry<dyn LrScheduleFn> {
    static REGISTRY: OnceLock<Registry<dyn LrScheduleFn>> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::new("learning-rate schedule", "register_lr_schedule"))
}

pub(crate) fn optimizers() -> &'static Registry<dyn OptimizerFn> {
    static REGISTRY: OnceLock<Registry<dyn OptimizerFn>> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry::new("optimizer", "register_optimizer"))
}

/// Registers a penalty type under `name` (which its [`Penalty::name`] must
/// return), so that runs recording it in `config.json` can be resumed.
/// Its settings are its `Serialize` form and are read back with `Deserialize`.
pub fn register_penalty<P: Penalty + DeserializeOwned + 'static>(
    name: &str,
) -> Result<(), TrainError> {
    penalties().register(name, builder(|p: P| -> Arc<dyn Penalty> { Arc::new(p) }))
}

/// Registers a constraint type under `name` (which its
/// [`Constraint::name`] must return); see [`register_penalty`].
pub fn register_constraint<C: Constraint + DeserializeOwned + 'static>(
    name: &str,
) -> Result<(), TrainError> {
    constraints().register(name, builder(|c: C| -> Arc<dyn Constraint> { Arc::new(c) }))
}

/// Registers a learning-rate schedule type under `name` (which its
/// [`LrScheduleFn::name`] must return); see [`register_penalty`]. The
/// built-in schedules are [`LrSchedule`](crate::LrSchedule)'s variants, so
/// their names (`constant`, `step`, `exponential`, `inverse-time`,
/// `cosine`, `one-cycle`) are refused here.
pub fn register_lr_schedule<S: LrScheduleFn + DeserializeOwned + 'static>(
    name: &str,
) -> Result<(), TrainError> {
    if crate::lr_schedule::BUILT_IN_NAMES.contains(&name) {
        return Err(TrainError::invalid(
            "learning-rate schedule name",
            "a name that is not a built-in schedule's",
            format!("`{name}`"),
        ));
    }
    lr_schedules().register(
        name,
        builder(|s: S| -> Arc<dyn LrScheduleFn> { Arc::new(s) }),
    )
}

/// Registers an optimizer type under `name` (which its
/// [`OptimizerFn::name`] must return); see [`register_penalty`]. The
/// built-in optimizers are [`OptimizerConfig`](crate::OptimizerConfig)'s
/// variants, so their names (`sgd`, `adam`, `adamw`, `rmsprop`, and
/// `adam-w`, `rms-prop` as `config.json` writes them) are refused here.
pub fn register_optimizer<O: OptimizerFn + DeserializeOwned + 'static>(
    name: &str,
) -> Result<(), TrainError> {
    let built_in = crate::OptimizerConfig::NAMES.split(", ");
    if built_in
        .chain(crate::optimizer::RECORDED_NAMES)
        .any(|known| known == name)
    {
        return Err(TrainError::invalid(
            "optimizer name",
            "a name that is not a built-in optimizer's",
            format!("`{name}`"),
        ));
    }
    optimizers().register(
        name,
        builder(|o: O| -> Arc<dyn OptimizerFn> { Arc::new(o) }),
    )
}

/// The names of the registered penalties.
pub fn penalty_names() -> Vec<String> {
    penalties().names()
}

/// The names of the registered constraints.
pub fn constraint_names() -> Vec<String> {
    constraints().names()
}

/// The names of the registered learning-rate schedules of your own.
pub fn lr_schedule_names() -> Vec<String> {
    lr_schedules().names()
}

/// The names of the registered optimizers of your own.
pub fn optimizer_names() -> Vec<String> {
    optimizers().names()
}

/// How `config.json` records a learning-rate schedule or an optimizer of
/// your own: its registered name and its settings. Its text, `NAME` or
/// `NAME:{json settings}`, is what [`Registry::parse`] reads back.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NamedSettings {
    /// The registered name.
    pub(crate) name: String,
    /// Its settings (its `Serialize` form).
    #[serde(default)]
    pub(crate) settings: serde_json::Value,
}

impl NamedSettings {
    pub(crate) fn new(name: &str, settings: serde_json::Value) -> Self {
        Self {
            name: name.to_string(),
            settings,
        }
    }
}

impl fmt::Display for NamedSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.settings {
            serde_json::Value::Null => f.write_str(&self.name),
            settings => write!(f, "{}:{settings}", self.name),
        }
    }
}

/// The parsing, equality, text and `config.json` record of a wrapper
/// `$wrapper(pub Arc<dyn Trait>)` of a registered schedule or optimizer of
/// your own, whose trait has `name()` and whose entries `$registry()` rebuilds:
/// equal when their names and settings are, written `NAME` or
/// `NAME:{json settings}`, recorded as [`NamedSettings`].
macro_rules! registered_wrapper {
    ($wrapper:ident, $registry:ident) => {
        impl $wrapper {
            /// Parses `NAME` or `NAME:{json settings}` of a registered entry;
            /// `None` when nothing is registered under `NAME`.
            pub(crate) fn parse(text: &str) -> Option<Result<Self, String>> {
                $crate::registry::$registry()
                    .parse(text)
                    .map(|built| built.map(Self))
            }

            fn named(&self) -> $crate::registry::NamedSettings {
                $crate::registry::NamedSettings::new(self.0.name(), self.0.settings())
            }
        }

        impl PartialEq for $wrapper {
            fn eq(&self, other: &Self) -> bool {
                self.0.name() == other.0.name() && self.0.settings() == other.0.settings()
            }
        }

        /// `NAME`, or `NAME:{json settings}` when it has settings: the form
        /// the command line and [`FromStr`](std::str::FromStr) read back.
        impl std::fmt::Display for $wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.named().fmt(f)
            }
        }

        impl serde::Serialize for $wrapper {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                self.named().serialize(serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $wrapper {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let recorded = $crate::registry::NamedSettings::deserialize(deserializer)?;
                $crate::registry::$registry()
                    .build(&recorded.name, recorded.settings)
                    .map(Self)
                    .map_err(serde::de::Error::custom)
            }
        }
    };
}
pub(crate) use registered_wrapper;

/// How `config.json` records a penalty or constraint and its parameters.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Recorded {
    /// The registered name.
    pub(crate) name: String,
    /// Its settings (its `Serialize` form).
    #[serde(default)]
    pub(crate) settings: serde_json::Value,
    /// The parameters it applies to.
    #[serde(default)]
    pub(crate) selector: crate::ParamSelector,
}
