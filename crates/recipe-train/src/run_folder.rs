//! A run's hold on its output folder: one run at a time, and never over the
//! files of another run unless asked.
//!
//! The hold is an OS file lock on `<folder>/.recipe.lock` (which also holds
//! the owner's process id, for the message a second run gets). The operating
//! system releases the lock when the process ends, however it ends, so a run
//! killed with SIGKILL leaves no stale lock behind and `--resume` can take
//! its folder at once. The lock file itself stays: deleting it on exit would
//! let a third run lock a new file while a second still holds the old one.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::TrainError;
use crate::artifacts::RunArtifacts;
use crate::checkpoint::checkpoint_dir;

/// The name of the lock file inside a run folder.
pub const LOCK_FILE: &str = ".recipe.lock";

/// An exclusive hold on a run folder, released when dropped (or when the
/// process ends).
#[derive(Debug)]
pub struct RunFolderLock {
    dir: PathBuf,
    // Held for its OS lock, which lasts as long as the open file.
    _file: File,
}

impl RunFolderLock {
    /// Creates `dir` if needed and locks it for this process.
    ///
    /// Fails with [`TrainError::FolderInUse`] naming the process that holds
    /// the folder when another run has it, and with [`TrainError::Io`]
    /// naming the path when the folder or lock file cannot be made.
    pub fn acquire(dir: &Path) -> Result<Self, TrainError> {
        fs::create_dir_all(dir).map_err(|e| TrainError::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| TrainError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                return Err(TrainError::FolderInUse {
                    dir: dir.to_path_buf(),
                    reason: format!(
                        "another run is writing into this folder (process {}); wait for it \
                         to end or choose another output folder",
                        holder.trim()
                    ),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(TrainError::io(&path, e)),
        }
        let write_pid = |file: &mut File| -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            write!(file, "{}", std::process::id())?;
            file.sync_all()
        };
        write_pid(&mut file).map_err(|e| TrainError::io(&path, e))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    /// Prepares the locked folder for a new run: refuses a folder that holds
    /// the files of a run (`config.json`, `history.csv`, `summary.json`,
    /// weights or checkpoints) unless `overwrite`, in which case it removes
    /// exactly those files first, so that no file of the old run is left
    /// beside the new run's. Other files in the folder are never touched.
    pub fn prepare_new_run(&self, overwrite: bool) -> Result<(), TrainError> {
        let found = run_files(&self.dir);
        if found.is_empty() {
            return Ok(());
        }
        if !overwrite {
            let names: Vec<String> = found
                .iter()
                .filter_map(|path| path.file_name())
                .map(|name| name.to_string_lossy().into_owned())
                .collect();
            return Err(TrainError::FolderInUse {
                dir: self.dir.clone(),
                reason: format!(
                    "this folder already holds a run ({}); pass --overwrite (library: \
                     TrainOptions::overwrite) to replace it, --resume to continue an \
                     interrupted one, or choose another output folder",
                    names.join(", ")
                ),
            });
        }
        for path in found {
            let removed = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(|e| TrainError::io(&path, e))?;
        }
        Ok(())
    }
}

/// The files of a run present in `dir`.
fn run_files(dir: &Path) -> Vec<PathBuf> {
    let artifacts = RunArtifacts::new(dir);
    [
        artifacts.config(),
        artifacts.history(),
        artifacts.summary(),
        artifacts.model_record(),
        artifacts.model_safetensors(),
        artifacts.layers(),
        dir.join("averaged.bpk"),
        dir.join("averaged.safetensors"),
        artifacts.kept_checkpoints(),
        checkpoint_dir(dir),
    ]
    .into_iter()
    .filter(|path| path.exists())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("recipe-lock-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_second_hold_is_refused_naming_the_holder_until_the_first_ends() {
        let dir = fresh("twice");
        let first = RunFolderLock::acquire(&dir).unwrap();
        let error = RunFolderLock::acquire(&dir).unwrap_err().to_string();
        assert!(
            error.contains(&format!("process {}", std::process::id())),
            "{error}"
        );
        assert!(error.contains(&dir.display().to_string()), "{error}");
        drop(first);
        RunFolderLock::acquire(&dir).unwrap();
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_folder_holding_a_run_is_refused_unless_overwritten() {
        let dir = fresh("held");
        let lock = RunFolderLock::acquire(&dir).unwrap();
        lock.prepare_new_run(false).unwrap();
        fs::write(dir.join("history.csv"), "epoch\n").unwrap();
        fs::create_dir_all(checkpoint_dir(&dir)).unwrap();
        fs::write(dir.join("notes.txt"), "mine").unwrap();
        let error = lock.prepare_new_run(false).unwrap_err().to_string();
        assert!(error.contains("history.csv, checkpoint"), "{error}");
        assert!(error.contains("--overwrite"), "{error}");
        assert!(dir.join("history.csv").is_file(), "nothing removed");

        lock.prepare_new_run(true).unwrap();
        assert!(!dir.join("history.csv").exists());
        assert!(!checkpoint_dir(&dir).exists());
        assert_eq!(fs::read_to_string(dir.join("notes.txt")).unwrap(), "mine");
        fs::remove_dir_all(dir).unwrap();
    }
}
