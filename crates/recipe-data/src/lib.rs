//! Datasets for recipe: an IDX reader (raw or gzip), MNIST and Fashion-MNIST
//! found on disk, train/validation/test splits, and Burn `Dataset` + `Batcher`.
//!
//! The trainer takes [`ClassData`]: any three Burn datasets, a batcher to a
//! [`ClassBatch`] of inputs of any shape, and a [`DataInfo`]. Providers:
//! [`Splits`] (MNIST, Fashion-MNIST) and [`ImageSplits`] (`u8` images in
//! memory), flattened or with their shape, [`FeatureSet`] (`f32`
//! values in memory) and [`CsvSource`] (a CSV table).
//!
//! The validation split is carved out of the *training* file (by default its
//! last 10,000 images), never out of the test set.
#![warn(missing_docs)]

mod batch;
mod class_batch;
mod class_data;
mod csv_table;
mod data_source;
mod error;
mod features;
#[cfg(feature = "fetch")]
mod fetch;
mod idx;
mod image_data;
mod images;
mod source;
mod split;

pub use batch::{
    ImageBatch, ImageBatcher, ImageDataset, ImageItem, Normalization, ShapedImageBatcher,
};
pub use class_batch::ClassBatch;
pub use class_data::{BatchInputs, ClassData, DataInfo, SharedBatcher};
pub use csv_table::CsvSource;
pub use data_source::DataSource;
pub use error::DataError;
pub use features::{FeatureBatcher, FeatureItem, FeatureSet};
#[cfg(feature = "fetch")]
pub use fetch::{Fetched, KnownFile, canonical_mirrors, fetch, fetch_dir, known_files, sha256_hex};
pub use idx::{IdxArray, decode_idx, read_idx, write_idx};
pub use image_data::ImageSplits;
pub use images::{ImageSet, load_images};
pub use recipe_core::InvalidSetting;
pub use source::{DatasetFiles, DatasetKind, locate};
pub use split::{SplitConfig, Splits, load_splits};
