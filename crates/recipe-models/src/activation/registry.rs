//! Names of activations, resolved at run time: built-in ones and yours.

use std::sync::{Arc, OnceLock, RwLock};

use super::builtin::{self, no_argument};
use super::{ActivationConfig, ActivationFn};
use crate::{MaxoutFn, ModelError};

type Constructor = Arc<dyn Fn(Option<&str>) -> Result<ActivationConfig, ModelError> + Send + Sync>;

/// A registered activation name, as [`activation_names`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivationName {
    /// The name, e.g. `leaky-relu`.
    pub name: String,
    /// How to write it with its argument, e.g. `leaky-relu[:slope]`; `None`
    /// for an alias, which is not listed in help texts.
    pub usage: Option<String>,
}

struct Entry {
    name: ActivationName,
    build: Constructor,
}

fn registry() -> &'static RwLock<Vec<Entry>> {
    static REGISTRY: OnceLock<RwLock<Vec<Entry>>> = OnceLock::new();
    REGISTRY.get_or_init(|| RwLock::new(builtin_entries()))
}

fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// Registers an activation under `name` so that configs, the command line
/// and resumed runs can name it as `name` or `name:argument`.
///
/// `usage` is how help texts show it (e.g. `my-act[:beta]`); `build` turns
/// the optional argument into the activation, or says why it cannot. Names
/// are case-insensitive and `_` equals `-`. Registering a name twice is an
/// error, so a user's activation can never silently replace another one.
pub fn register_activation(
    name: &str,
    usage: &str,
    build: impl Fn(Option<&str>) -> Result<ActivationConfig, ModelError> + Send + Sync + 'static,
) -> Result<(), ModelError> {
    let key = normalize(name);
    if key.is_empty() || key.contains(':') || key.contains(',') {
        return Err(ModelError::invalid(
            "activation name",
            "a non-empty name without ':' or ','",
            name,
        ));
    }
    let mut entries = registry().write().unwrap_or_else(|p| p.into_inner());
    if entries.iter().any(|entry| entry.name.name == key) {
        return Err(ModelError::invalid(
            "activation name",
            "a name not registered yet",
            name,
        ));
    }
    entries.push(Entry {
        name: ActivationName {
            name: key,
            usage: Some(usage.to_string()),
        },
        build: Arc::new(build),
    });
    Ok(())
}

/// Every registered activation, built-in ones first, in registration order.
pub fn activation_names() -> Vec<ActivationName> {
    let entries = registry().read().unwrap_or_else(|p| p.into_inner());
    entries.iter().map(|entry| entry.name.clone()).collect()
}

/// How every listed activation is written, comma separated (for help texts
/// and errors): `identity, sigmoid, ..., maxout[:pieces]`, yours included.
pub fn activation_usages() -> String {
    activation_names()
        .into_iter()
        .filter_map(|name| name.usage)
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn resolve(text: &str) -> Result<ActivationConfig, ModelError> {
    let text = text.trim();
    let (name, argument) = match text.split_once(':') {
        Some((name, argument)) => (name.trim(), Some(argument.trim())),
        None => (text, None),
    };
    let key = normalize(name);
    let build = {
        let entries = registry().read().unwrap_or_else(|p| p.into_inner());
        entries
            .iter()
            .find(|entry| entry.name.name == key)
            .map(|entry| entry.build.clone())
    };
    match build {
        Some(build) => build(argument),
        None => Err(ModelError::UnknownActivation {
            name: text.to_string(),
            known: activation_usages(),
        }),
    }
}

fn entry(
    name: &str,
    usage: Option<&str>,
    build: impl Fn(Option<&str>) -> Result<ActivationConfig, ModelError> + Send + Sync + 'static,
) -> Entry {
    Entry {
        name: ActivationName {
            name: name.to_string(),
            usage: usage.map(str::to_string),
        },
        build: Arc::new(build),
    }
}

fn plain(name: &'static str, usage: Option<&str>, function: impl ActivationFn + Copy) -> Entry {
    entry(name, usage, move |argument| {
        no_argument(name, argument)?;
        Ok(ActivationConfig::new(function))
    })
}

/// The built-in activations, registered as a user's would be.
fn builtin_entries() -> Vec<Entry> {
    use builtin::*;
    vec![
        plain("identity", Some("identity"), Identity),
        plain("sigmoid", Some("sigmoid"), Sigmoid),
        plain("tanh", Some("tanh"), Tanh),
        plain("relu", Some("relu"), Relu),
        entry("leaky-relu", Some("leaky-relu[:slope]"), |argument| {
            let negative_slope =
                finite("leaky-relu", number("leaky-relu", argument, 0.01)?, false)?;
            Ok(ActivationConfig::new(LeakyRelu { negative_slope }))
        }),
        entry("prelu", Some("prelu[:alpha]"), |argument| {
            let alpha = finite("prelu", number("prelu", argument, 0.25)?, false)?;
            Ok(ActivationConfig::new(Prelu {
                alpha,
                per_unit: false,
            }))
        }),
        entry(
            "prelu-per-unit",
            Some("prelu-per-unit[:alpha]"),
            |argument| {
                let alpha = finite(
                    "prelu-per-unit",
                    number("prelu-per-unit", argument, 0.25)?,
                    false,
                )?;
                Ok(ActivationConfig::new(Prelu {
                    alpha,
                    per_unit: true,
                }))
            },
        ),
        entry("elu", Some("elu[:alpha]"), |argument| {
            let alpha = finite("elu", number("elu", argument, 1.0)?, false)?;
            Ok(ActivationConfig::new(Elu { alpha }))
        }),
        plain("selu", Some("selu"), Selu),
        plain("gelu", Some("gelu"), Gelu),
        plain("silu", Some("silu"), Silu),
        plain("mish", Some("mish"), Mish),
        entry("softplus", Some("softplus[:beta]"), |argument| {
            let beta = finite("softplus", number("softplus", argument, 1.0)?, true)?;
            Ok(ActivationConfig::new(Softplus { beta }))
        }),
        plain("hard-sigmoid", Some("hard-sigmoid"), HardSigmoid),
        entry("maxout", Some("maxout[:pieces]"), |argument| {
            let pieces = match argument {
                None => 2,
                Some(text) => text.parse().map_err(|_| {
                    ModelError::invalid("activation maxout", "a piece count after ':'", text)
                })?,
            };
            if pieces == 0 {
                return Err(ModelError::invalid(
                    "activation maxout.pieces",
                    "at least 1",
                    0,
                ));
            }
            Ok(ActivationConfig::new(MaxoutFn { pieces }))
        }),
        // Aliases, accepted but not listed.
        alias("linear", "identity"),
        alias("none", "identity"),
        alias("swish", "silu"),
        alias("hardsigmoid", "hard-sigmoid"),
        alias("leakyrelu", "leaky-relu"),
    ]
}

/// `name` stands for `target`, with the same argument.
fn alias(name: &str, target: &'static str) -> Entry {
    entry(name, None, move |argument| match argument {
        Some(argument) => resolve(&format!("{target}:{argument}")),
        None => resolve(target),
    })
}
