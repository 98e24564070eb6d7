//! Datasets for recipe: an IDX reader (raw or gzip), MNIST and Fashion-MNIST
//! found on disk, train/validation/test splits, and Burn `Dataset` + `Batcher`.
//!
//! The validation split is carved out of the *training* file (by default its
//! last 10,000 images), never out of the test set.
#![warn(missing_docs)]

mod batch;
mod error;
#[cfg(feature = "fetch")]
mod fetch;
mod idx;
mod images;
mod source;
mod split;

pub use batch::{ImageBatch, ImageBatcher, ImageDataset, ImageItem, Normalization};
pub use error::DataError;
#[cfg(feature = "fetch")]
pub use fetch::{Fetched, KnownFile, canonical_mirrors, fetch, fetch_dir, known_files, sha256_hex};
pub use idx::{IdxArray, decode_idx, read_idx, write_idx};
pub use images::{ImageSet, load_images};
pub use source::{DatasetFiles, DatasetKind, locate};
pub use split::{SplitConfig, Splits, load_splits};
