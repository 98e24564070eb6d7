//! Downloading MNIST and Fashion-MNIST from their canonical mirrors, each
//! file checked against a known SHA-256 before it is kept.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::{DataError, DatasetKind};

/// One file of a dataset as published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownFile {
    /// File name on the mirrors, e.g. `train-images-idx3-ubyte.gz`.
    pub name: &'static str,
    /// SHA-256 of the `.gz` file on the canonical mirrors.
    pub gzip_sha256: &'static str,
    /// SHA-256 of the decompressed IDX bytes. Mirrors and packagers
    /// recompress (Debian's Fashion-MNIST, recipe's vendored MNIST), which
    /// changes the `.gz` bytes but not these.
    pub content_sha256: &'static str,
}

/// The four files of `kind` and their checksums. The `.gz` sums are the ones
/// torchvision, TensorFlow Datasets and Zalando publish; the content sums
/// were computed here from recipe's vendored MNIST and Debian's Fashion-MNIST
/// and agree with those published alongside the canonical `.gz` files.
pub fn known_files(kind: DatasetKind) -> [KnownFile; 4] {
    match kind {
        DatasetKind::Mnist => [
            KnownFile {
                name: "train-images-idx3-ubyte.gz",
                gzip_sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                content_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            },
            KnownFile {
                name: "train-labels-idx1-ubyte.gz",
                gzip_sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                content_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            },
            KnownFile {
                name: "t10k-images-idx3-ubyte.gz",
                gzip_sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                content_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            },
            KnownFile {
                name: "t10k-labels-idx1-ubyte.gz",
                gzip_sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                content_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            },
        ],
        DatasetKind::FashionMnist => [
            KnownFile {
                name: "train-images-idx3-ubyte.gz",
                gzip_sha256: "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
                content_sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            },
            KnownFile {
                name: "train-labels-idx1-ubyte.gz",
                gzip_sha256: "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
                content_sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            },
            KnownFile {
                name: "t10k-images-idx3-ubyte.gz",
                gzip_sha256: "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
                content_sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            },
            KnownFile {
                name: "t10k-labels-idx1-ubyte.gz",
                gzip_sha256: "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
                content_sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
            },
        ],
    }
}

/// The canonical mirrors of `kind`, tried in order.
pub fn canonical_mirrors(kind: DatasetKind) -> &'static [&'static str] {
    match kind {
        DatasetKind::Mnist => &[
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ],
        DatasetKind::FashionMnist => &[
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ],
    }
}

/// Where `recipe data fetch` puts `kind` by default, a folder
/// [`DatasetKind::default_dirs`] searches: `$RECIPE_DATA_DIR/<name>` when
/// that is set, else `$XDG_CACHE_HOME/recipe/datasets/<name>` (by default
/// `~/.cache/recipe/datasets/<name>`).
pub fn fetch_dir(kind: DatasetKind) -> PathBuf {
    match std::env::var_os("RECIPE_DATA_DIR") {
        Some(root) => PathBuf::from(root).join(kind.name()),
        None => kind
            .cache_dir()
            .unwrap_or_else(|| Path::new("data").join(kind.name())),
    }
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// A file with the right checksum was already there.
    AlreadyThere(PathBuf),
    /// Downloaded from this URL and checked.
    Downloaded {
        /// Where it was written.
        path: PathBuf,
        /// Where it came from.
        url: String,
    },
}

/// No dataset file is larger than this; a mirror that sends more is wrong.
const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;

/// Downloads the four files of `kind` into `dir` from the first of `mirrors`
/// (base URLs ending in `/`, or not) that serves each one with a known
/// checksum. A file already in `dir` with a known checksum is kept. Each
/// download goes to a temporary file in `dir` that is checked, synced and
/// renamed into place; one that fails its checksum is deleted and the next
/// mirror is tried. The error lists every mirror's failure.
pub fn fetch(kind: DatasetKind, mirrors: &[String], dir: &Path) -> Result<Vec<Fetched>, DataError> {
    fs::create_dir_all(dir).map_err(|reason| DataError::Io {
        path: dir.to_path_buf(),
        reason,
    })?;
    let agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(20)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(600)))
        .build()
        .new_agent();
    known_files(kind)
        .iter()
        .map(|file| fetch_file(&agent, file, mirrors, dir))
        .collect()
}

fn fetch_file(
    agent: &ureq::Agent,
    file: &KnownFile,
    mirrors: &[String],
    dir: &Path,
) -> Result<Fetched, DataError> {
    let path = dir.join(file.name);
    if path.is_file() && verify(&path, file).is_ok() {
        return Ok(Fetched::AlreadyThere(path));
    }
    let temporary = dir.join(format!(".{}.part{}", file.name, std::process::id()));
    let mut failures = Vec::new();
    for mirror in mirrors {
        let url = format!("{}/{}", mirror.trim_end_matches('/'), file.name);
        let outcome = download(agent, &url, &temporary).and_then(|()| verify(&temporary, file));
        match outcome {
            Ok(()) => {
                fs::rename(&temporary, &path).map_err(|reason| DataError::Io {
                    path: path.clone(),
                    reason,
                })?;
                if let Ok(folder) = fs::File::open(dir) {
                    let _ = folder.sync_all();
                }
                return Ok(Fetched::Downloaded { path, url });
            }
            Err(reason) => {
                let _ = fs::remove_file(&temporary);
                failures.push(format!("{url}: {reason}"));
            }
        }
    }
    Err(DataError::Download {
        path,
        failures: if failures.is_empty() {
            vec!["no mirror given".to_string()]
        } else {
            failures
        },
    })
}

/// Streams `url` into `temporary` (created anew) and syncs it.
fn download(agent: &ureq::Agent, url: &str, temporary: &Path) -> Result<(), String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut body = response
        .body_mut()
        .with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .reader();
    let mut out =
        fs::File::create(temporary).map_err(|e| format!("{}: {e}", temporary.display()))?;
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = match body.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("the transfer broke off: {e}")),
        };
        out.write_all(&buffer[..read])
            .map_err(|e| format!("{}: {e}", temporary.display()))?;
    }
    out.sync_all()
        .map_err(|e| format!("{}: {e}", temporary.display()))
}

/// The SHA-256 of `bytes`, as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `path` against `file`'s `.gz` checksum, or else against the
/// checksum of its decompressed bytes.
fn verify(path: &Path, file: &KnownFile) -> Result<(), String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let gzip = sha256_hex(&bytes);
    if gzip == file.gzip_sha256 {
        return Ok(());
    }
    let mut content = Sha256::new();
    let decompressed = io::copy(
        &mut GzDecoder::new(bytes.as_slice()),
        &mut HashWriter(&mut content),
    );
    match decompressed {
        Ok(_) if hex(&content.finalize()) == file.content_sha256 => Ok(()),
        _ => Err(format!(
            "checksum mismatch: SHA-256 {gzip}, expected {} (or decompressed bytes with SHA-256 {}); the file was deleted",
            file.gzip_sha256, file.content_sha256
        )),
    }
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored MNIST was recompressed (mtime 0), so its `.gz` sums
    /// differ from the mirrors'; its contents must match the known ones.
    #[test]
    fn the_vendored_mnist_passes_the_content_check() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
        for file in known_files(DatasetKind::Mnist) {
            verify(&dir.join(file.name), &file).unwrap();
        }
        let wrong = KnownFile {
            content_sha256: known_files(DatasetKind::Mnist)[1].content_sha256,
            ..known_files(DatasetKind::Mnist)[0]
        };
        let error = verify(&dir.join(wrong.name), &wrong).unwrap_err();
        assert!(error.contains("checksum mismatch"), "{error}");
    }
}
