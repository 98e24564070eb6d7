//! Where the dataset files are.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DataError;

/// The image-classification datasets recipe knows. Both are 28x28 grey
/// images in 10 classes, 60,000 for training and 10,000 for testing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Handwritten digits (LeCun, Cortes, Burges); vendored in `data/mnist/`.
    #[default]
    Mnist,
    /// Zalando's clothing images (Xiao et al. 2017); Debian's `dataset-fashion-mnist`.
    FashionMnist,
}

impl DatasetKind {
    /// The dataset's name as used on the command line and in folder names.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// Number of classes.
    pub fn classes(self) -> usize {
        10
    }

    /// Pixels per image (both sets are 28x28).
    pub fn pixels(self) -> usize {
        28 * 28
    }

    /// Folders searched when no data folder is given, in order.
    ///
    /// `$RECIPE_DATA_DIR/<name>`, `./data/<name>`, the `data/<name>` folder of
    /// the recipe checkout this program was built from, the cache folder
    /// `recipe data fetch` downloads into ([`DatasetKind::cache_dir`]), and,
    /// for Fashion-MNIST, Debian's `/usr/share/datasets/fashion-mnist`.
    pub fn default_dirs(self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(root) = std::env::var_os("RECIPE_DATA_DIR") {
            dirs.push(PathBuf::from(root).join(self.name()));
        }
        dirs.push(Path::new("data").join(self.name()));
        let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
        dirs.push(checkout.join(self.name()));
        dirs.extend(self.cache_dir());
        if self == DatasetKind::FashionMnist {
            dirs.push(PathBuf::from("/usr/share/datasets/fashion-mnist"));
        }
        dirs
    }

    /// `$XDG_CACHE_HOME/recipe/datasets/<name>`, by default
    /// `~/.cache/recipe/datasets/<name>`.
    pub fn cache_dir(self) -> Option<PathBuf> {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))?;
        Some(cache.join("recipe").join("datasets").join(self.name()))
    }

    fn hint(self) -> &'static str {
        match self {
            DatasetKind::Mnist => {
                "MNIST ships with recipe in data/mnist/; pass --data-dir to point elsewhere"
            }
            DatasetKind::FashionMnist => {
                "install it with `apt-get install dataset-fashion-mnist`, download it with `recipe data fetch fashion-mnist`, or pass --data-dir"
            }
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DatasetKind {
    type Err = DataError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion-mnist" | "fashion" => Ok(DatasetKind::FashionMnist),
            _ => Err(DataError::invalid(
                "dataset",
                "mnist or fashion-mnist",
                text,
            )),
        }
    }
}

/// The four files of an MNIST-style dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetFiles {
    /// Training images (idx3).
    pub train_images: PathBuf,
    /// Training labels (idx1).
    pub train_labels: PathBuf,
    /// Test images (idx3).
    pub test_images: PathBuf,
    /// Test labels (idx1).
    pub test_labels: PathBuf,
}

const FILE_STEMS: [&str; 4] = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
];

/// Finds the dataset's four files (raw or `.gz`) in `data_dir` (or in
/// `data_dir/<name>`), or, when no folder is given, in
/// [`DatasetKind::default_dirs`].
pub fn locate(kind: DatasetKind, data_dir: Option<&Path>) -> Result<DatasetFiles, DataError> {
    let candidates = match data_dir {
        Some(dir) => vec![dir.to_path_buf(), dir.join(kind.name())],
        None => kind.default_dirs(),
    };
    let find = |dir: &Path, stem: &str| {
        [stem.to_string(), format!("{stem}.gz")]
            .into_iter()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
    };
    for dir in &candidates {
        let found: Vec<PathBuf> = FILE_STEMS.iter().filter_map(|s| find(dir, s)).collect();
        if let [train_images, train_labels, test_images, test_labels] = found.as_slice() {
            return Ok(DatasetFiles {
                train_images: train_images.clone(),
                train_labels: train_labels.clone(),
                test_images: test_images.clone(),
                test_labels: test_labels.clone(),
            });
        }
    }
    Err(DataError::NotFound {
        dataset: kind.name().to_string(),
        file: format!("{}[.gz] and its three siblings", FILE_STEMS[0]),
        searched: candidates,
        hint: kind.hint().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!("mnist".parse::<DatasetKind>().unwrap(), DatasetKind::Mnist);
        assert_eq!(
            "Fashion_MNIST".parse::<DatasetKind>().unwrap(),
            DatasetKind::FashionMnist
        );
        let err = "cifar".parse::<DatasetKind>().unwrap_err();
        assert!(err.to_string().contains("`dataset`"), "{err}");
    }

    #[test]
    fn missing_dataset_lists_where_it_looked() {
        let dir = std::env::temp_dir().join("recipe-no-such-dataset");
        let err = locate(DatasetKind::FashionMnist, Some(&dir)).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("recipe-no-such-dataset"), "{message}");
        assert!(
            message.contains("apt-get install dataset-fashion-mnist"),
            "{message}"
        );
    }

    #[test]
    fn vendored_mnist_is_found() {
        let files = locate(DatasetKind::Mnist, None).unwrap();
        assert!(files.train_images.ends_with("train-images-idx3-ubyte.gz"));
    }
}
