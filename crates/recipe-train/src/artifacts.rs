//! The files a run leaves behind, written atomically.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::{ModuleSnapshot, SafetensorsStore};
use serde::Serialize;

use crate::TrainError;

/// Writes `bytes` to `path` so that a crash at any moment leaves either the
/// old file or the new one: write a temporary file in the same folder, fsync
/// it, rename it over `path`, then fsync the folder.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    let io = |e: std::io::Error| TrainError::io(path, e);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(io)?;
    let name = path
        .file_name()
        .ok_or_else(|| TrainError::io(path, "not a file path"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(error) = written.and_then(|()| fs::rename(&tmp, path)) {
        // A full disk must not keep the partial copy it could not finish.
        let _ = fs::remove_file(&tmp);
        return Err(io(error));
    }
    if let Ok(dir) = fs::File::open(dir) {
        // Persist the rename; not every platform can fsync a folder.
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The files of one run in its output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunArtifacts {
    /// The output folder.
    pub dir: PathBuf,
}

impl RunArtifacts {
    /// Artifacts in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `config.json`: every setting of the run.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// `history.csv`: one line per epoch.
    pub fn history(&self) -> PathBuf {
        self.dir.join("history.csv")
    }

    /// `layers.csv`: per-layer gradient norms per epoch, when recorded.
    pub fn layers(&self) -> PathBuf {
        self.dir.join("layers.csv")
    }

    /// `summary.json`: the final evaluation.
    pub fn summary(&self) -> PathBuf {
        self.dir.join("summary.json")
    }

    /// `model.bpk`: the weights in Burn's record format (burnpack).
    pub fn model_record(&self) -> PathBuf {
        self.dir.join("model.bpk")
    }

    /// `model.safetensors`: the weights for NumPy and PyTorch users.
    pub fn model_safetensors(&self) -> PathBuf {
        self.dir.join("model.safetensors")
    }

    /// `checkpoints/`: the weights of the epochs a run keeps
    /// ([`KeepCheckpoints`](crate::KeepCheckpoints)) and their listing.
    pub fn kept_checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// Writes `value` as pretty JSON.
    pub fn write_json(&self, path: &Path, value: &impl Serialize) -> Result<(), TrainError> {
        let json = serde_json::to_string_pretty(value).map_err(|e| TrainError::io(path, e))?;
        write_atomic(path, format!("{json}\n").as_bytes())
    }

    /// Saves the weights in both formats.
    pub fn write_model<M: Module + ModuleSnapshot>(&self, model: &M) -> Result<(), TrainError> {
        write_weights(model, &self.model_record(), &self.model_safetensors())
    }

    /// `averaged.bpk` and `averaged.safetensors`: a run's averaged weights
    /// when they are not its model.
    pub fn write_averaged_model<M: Module + ModuleSnapshot>(
        &self,
        model: &M,
    ) -> Result<(), TrainError> {
        write_weights(
            model,
            &self.dir.join("averaged.bpk"),
            &self.dir.join("averaged.safetensors"),
        )
    }

    /// Saves a kept epoch's weights as `checkpoints/<stem>.bpk` and
    /// `.safetensors`, in the formats of `model.bpk` and `model.safetensors`.
    pub fn write_kept_model<M: Module + ModuleSnapshot>(
        &self,
        model: &M,
        stem: &str,
    ) -> Result<(), TrainError> {
        let folder = self.kept_checkpoints();
        write_weights(
            model,
            &folder.join(format!("{stem}.bpk")),
            &folder.join(format!("{stem}.safetensors")),
        )
    }
}

/// The weights in Burn's record format at `record` and as safetensors at
/// `safetensors`, each written atomically.
fn write_weights<M: Module + ModuleSnapshot>(
    model: &M,
    record: &Path,
    safetensors: &Path,
) -> Result<(), TrainError> {
    let bytes = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| TrainError::io(record, format!("{e:?}")))?;
    write_atomic(record, &bytes)?;

    let mut store = SafetensorsStore::from_bytes(None);
    model
        .save_into(&mut store)
        .map_err(|e| TrainError::io(safetensors, e))?;
    let bytes = store
        .get_bytes()
        .map_err(|e| TrainError::io(safetensors, e))?;
    write_atomic(safetensors, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("recipe-atomic-{}", std::process::id()));
        let path = dir.join("summary.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("summary.json")]);
        fs::remove_dir_all(dir).unwrap();
    }

    /// A write that fails (here the rename: a folder is in the way; on a
    /// full disk, the write) names the path and leaves no partial copy.
    #[test]
    fn a_failed_write_names_the_path_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("recipe-atomic-fail-{}", std::process::id()));
        let path = dir.join("history.csv");
        fs::create_dir_all(path.join("in-the-way")).unwrap();
        let error = write_atomic(&path, b"epoch\n").unwrap_err().to_string();
        assert!(error.starts_with(&path.display().to_string()), "{error}");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("history.csv")]);
        fs::remove_dir_all(dir).unwrap();
    }
}
