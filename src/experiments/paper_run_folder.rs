//! A paper run's folder used again: a run that finished there is read
//! back, one that stopped is resumed, and one of other settings is refused
//! by name, so that `recipe reproduce paper` goes on where an earlier
//! invocation stopped and never continues or overwrites another run.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use recipe_models::Mlp;
use recipe_train::{History, Summary, TrainConfig, TrainError, TrainedModel, read_run_config};

/// The run that ended in `folder` (its `summary.json` written), read back
/// instead of trained again, so that `reproduce paper` continues where an
/// earlier, stopped invocation left off.
pub(super) fn finished(
    config: &TrainConfig,
    folder: &Path,
    device: &Device,
) -> Result<Option<TrainedModel<Mlp>>, TrainError> {
    let summary_file = folder.join("summary.json");
    if !summary_file.exists() {
        return Ok(None);
    }
    check_same_settings(config, folder)?;
    let read = |name: &str| {
        std::fs::read_to_string(folder.join(name)).map_err(|reason| TrainError::Io {
            path: folder.join(name),
            reason: reason.into(),
        })
    };
    let summary: Summary =
        serde_json::from_str(&read("summary.json")?).map_err(|error| TrainError::Io {
            path: summary_file.clone(),
            reason: error.into(),
        })?;
    let history = History::from_csv(&read("history.csv")?)?;
    let weights = folder.join("model.bpk");
    let net = config
        .mlp()?
        .init(device)?
        .try_load_file(&weights)
        .map_err(|error| TrainError::Io {
            path: weights.clone(),
            reason: format!("{error:?}").into(),
        })?;
    println!(
        "== {} (done earlier, read from {})",
        summary.model,
        folder.display()
    );
    Ok(Some(TrainedModel {
        net,
        history,
        summary,
        layer_gradients: Vec::new(),
    }))
}

/// Whether `folder` holds a run of `config` that stopped after at least one
/// complete epoch, which `--resume` continues; an error when it holds a run
/// of other settings (a quick run where a full one is asked for, say),
/// which would otherwise be continued or overwritten.
pub(super) fn resumable(config: &TrainConfig, folder: &Path) -> Result<bool, TrainError> {
    let stopped = folder.join("config.json").exists()
        && !folder.join("summary.json").exists()
        && folder.join("history.csv").exists();
    if stopped {
        check_same_settings(config, folder)?;
    }
    Ok(stopped)
}

/// Fails, naming the folder, unless its `config.json` trains the same
/// network the same way as `config`.
fn check_same_settings(config: &TrainConfig, folder: &Path) -> Result<(), TrainError> {
    let recorded = read_run_config(folder)?;
    let parts = |c: &TrainConfig| {
        [
            ("fit", serde_json::to_value(&c.fit).ok()),
            ("network", serde_json::to_value(&c.network).ok()),
            ("data.split", serde_json::to_value(&c.data.split).ok()),
        ]
    };
    let differing = parts(&recorded)
        .into_iter()
        .zip(parts(config))
        .find(|((_, recorded), (_, asked))| !same_json(recorded, asked));
    match differing {
        None => Ok(()),
        Some(((part, recorded), (_, asked))) => {
            let (field, recorded, asked) = first_difference(part, recorded, asked);
            Err(TrainError::FolderInUse {
                dir: folder.to_path_buf(),
                reason: format!(
                    "holds a run of other settings (another --profile?): its {field} is \
                     {recorded} where this run's is {asked}; give another --out, or remove \
                     the folder"
                ),
            })
        }
    }
}

/// Equal settings, numbers to 1e-9 relative: config.json keeps a computed
/// learning rate to fewer digits than the computation.
fn same_json(a: &Option<serde_json::Value>, b: &Option<serde_json::Value>) -> bool {
    use serde_json::Value;
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
                _ => x == y,
            },
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
            }
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }
    match (a, b) {
        (Some(a), Some(b)) => same(a, b),
        _ => a.is_none() && b.is_none(),
    }
}

/// The first field, by name, where two settings differ, and its two values.
fn first_difference(
    part: &str,
    recorded: Option<serde_json::Value>,
    asked: Option<serde_json::Value>,
) -> (String, String, String) {
    use serde_json::Value;
    if let (Some(Value::Object(recorded)), Some(Value::Object(asked))) = (&recorded, &asked) {
        for (key, value) in asked {
            let old = recorded.get(key).unwrap_or(&Value::Null);
            if !same_json(&Some(old.clone()), &Some(value.clone())) {
                return (format!("{part}.{key}"), old.to_string(), value.to_string());
            }
        }
    }
    let text = |v: Option<Value>| v.map_or_else(|| "?".to_string(), |v| v.to_string());
    (part.to_string(), text(recorded), text(asked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_differ_by_a_named_field_and_not_by_rounding() {
        let json = |text: &str| Some(serde_json::from_str::<serde_json::Value>(text).unwrap());
        let recorded = json(r#"{"epochs": 3, "learning_rate": 0.0994011992}"#);
        let rounded = json(r#"{"epochs": 3, "learning_rate": 0.09940119920000001}"#);
        assert!(same_json(&recorded, &rounded));
        let other = json(r#"{"epochs": 1, "learning_rate": 0.0994011992}"#);
        assert!(!same_json(&recorded, &other));
        let (field, was, is) = first_difference("fit", recorded, other);
        assert_eq!(
            (field.as_str(), was.as_str(), is.as_str()),
            ("fit.epochs", "3", "1")
        );
    }
}
