//! Train / validation / test splits.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{DataError, DatasetKind, ImageSet, load_images, locate};

/// How the training file is split into training and validation data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitConfig {
    /// Number of images at the *end* of the training file held out for validation.
    pub valid_size: usize,
    /// Use only the first N of the remaining training images (all when `None`).
    pub train_limit: Option<usize>,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            valid_size: 10_000,
            train_limit: None,
        }
    }
}

/// The three splits of a dataset.
#[derive(Debug, Clone)]
pub struct Splits {
    /// Which dataset they come from.
    pub kind: DatasetKind,
    /// Training images: the start of the training file.
    pub train: ImageSet,
    /// Validation images: the end of the training file.
    pub valid: ImageSet,
    /// The test file, untouched.
    pub test: ImageSet,
}

impl SplitConfig {
    /// Splits a training set into (train, valid).
    pub fn split(&self, full: &ImageSet) -> Result<(ImageSet, ImageSet), DataError> {
        let n = full.len();
        if self.valid_size == 0 || self.valid_size >= n {
            return Err(DataError::invalid(
                "valid_size",
                format!("between 1 and {} (the training file has {n} images)", n - 1),
                self.valid_size,
            ));
        }
        let available = n - self.valid_size;
        let train_len = match self.train_limit {
            Some(0) => return Err(DataError::invalid("train_limit", "at least 1", 0)),
            Some(limit) if limit > available => {
                return Err(DataError::invalid(
                    "train_limit",
                    format!("at most {available} (the images left after validation)"),
                    limit,
                ));
            }
            Some(limit) => limit,
            None => available,
        };
        Ok((full.slice(0..train_len), full.slice(available..n)))
    }
}

/// Finds, reads and splits a dataset.
pub fn load_splits(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    split: &SplitConfig,
) -> Result<Splits, DataError> {
    let files = locate(kind, data_dir)?;
    let full = load_images(&files.train_images, &files.train_labels, kind.classes())?;
    let test = load_images(&files.test_images, &files.test_labels, kind.classes())?;
    if (test.rows, test.cols) != (full.rows, full.cols) {
        return Err(DataError::Format {
            path: files.test_images,
            expected: format!("{}x{} images like the training file", full.rows, full.cols),
            found: format!("{}x{}", test.rows, test.cols),
        });
    }
    let (train, valid) = split.split(&full)?;
    Ok(Splits {
        kind,
        train,
        valid,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> ImageSet {
        ImageSet {
            pixels: (0..n).map(|i| i as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
            rows: 1,
            cols: 1,
        }
    }

    #[test]
    fn validation_is_the_end_of_the_training_file() {
        let config = SplitConfig {
            valid_size: 3,
            train_limit: Some(4),
        };
        let (train, valid) = config.split(&set(10)).unwrap();
        assert_eq!(train.pixels, vec![0, 1, 2, 3]);
        assert_eq!(valid.pixels, vec![7, 8, 9]);
    }

    #[test]
    fn impossible_splits_name_the_field() {
        let full = set(10);
        for (config, field) in [
            (
                SplitConfig {
                    valid_size: 10,
                    train_limit: None,
                },
                "`valid_size`",
            ),
            (
                SplitConfig {
                    valid_size: 0,
                    train_limit: None,
                },
                "`valid_size`",
            ),
            (
                SplitConfig {
                    valid_size: 3,
                    train_limit: Some(8),
                },
                "`train_limit`",
            ),
            (
                SplitConfig {
                    valid_size: 3,
                    train_limit: Some(0),
                },
                "`train_limit`",
            ),
        ] {
            let err = config.split(&full).unwrap_err();
            assert!(err.to_string().contains(field), "{err}");
        }
    }

    #[test]
    fn real_mnist_splits_to_50k_10k_10k() {
        let splits = load_splits(DatasetKind::Mnist, None, &SplitConfig::default()).unwrap();
        assert_eq!(
            (splits.train.len(), splits.valid.len(), splits.test.len()),
            (50_000, 10_000, 10_000)
        );
        assert_eq!((splits.train.rows, splits.train.cols), (28, 28));
        // The first training label of MNIST is a 5, the first test label a 7.
        assert_eq!((splits.train.labels[0], splits.test.labels[0]), (5, 7));
    }

    /// Debian's `dataset-fashion-mnist` (installed by `.ci/run`). Outside CI a
    /// machine without it skips this test, saying so.
    #[test]
    fn fashion_mnist_is_found_where_debian_puts_it() {
        let files = match crate::locate(DatasetKind::FashionMnist, None) {
            Ok(files) => files,
            Err(err) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: {err}");
                return;
            }
            Err(err) => panic!("{err}"),
        };
        assert!(files.train_images.is_file());
        let splits = load_splits(DatasetKind::FashionMnist, None, &SplitConfig::default()).unwrap();
        assert_eq!((splits.train.len(), splits.test.len()), (50_000, 10_000));
        // Fashion-MNIST's first training and test images are both ankle boots (class 9).
        assert_eq!((splits.train.labels[0], splits.test.labels[0]), (9, 9));
    }
}
