//! Image sets (MNIST, Fashion-MNIST, or `u8` images already in memory) as
//! [`ClassData`] for the trainer.

use std::sync::Arc;

use burn::data::dataset::Dataset;
use burn::tensor::Tensor;

use crate::{
    ClassData, DataError, DataInfo, ImageBatcher, ImageDataset, ImageItem, ImageSet, Normalization,
    ShapedImageBatcher, SharedBatcher, Splits,
};

/// Images in memory, as a provider: three [`ImageSet`]s (e.g. built with
/// [`ImageSet::new`] from `Vec<u8>` pixels and labels) and their class count.
#[derive(Debug, Clone)]
pub struct ImageSplits {
    /// The data's name, for `summary.json`.
    pub name: String,
    /// Training, validation and test images.
    pub sets: [ImageSet; 3],
    /// Number of classes (every label must be below it).
    pub classes: usize,
}

impl ImageSplits {
    /// The three sets as [`ClassData`] of inputs of `input_shape`, pixels
    /// normalized as `standardize` asks, batched by what `batcher` makes of
    /// that normalization.
    fn class_data<X>(
        &self,
        standardize: bool,
        input_shape: Vec<usize>,
        batcher: impl FnOnce(Normalization) -> Result<SharedBatcher<ImageItem, X>, DataError>,
    ) -> Result<ClassData<ImageItem, X>, DataError> {
        for (set, split) in self.sets.iter().zip(["train", "valid", "test"]) {
            set.check(&format!("{} {split}", self.name), self.classes)?;
        }
        let normalization = if standardize {
            Normalization::standardize_from(&self.sets[0])?
        } else {
            Normalization::Unit
        };
        let [train, valid, test] = self
            .sets
            .each_ref()
            .map(|set| Arc::new(ImageDataset::new(set.clone())) as Arc<dyn Dataset<ImageItem>>);
        Ok(ClassData {
            info: DataInfo {
                name: self.name.clone(),
                input_shape,
                classes: self.classes,
                class_names: Vec::new(),
                split_sizes: [train.len(), valid.len(), test.len()],
                preprocessing: serde_json::to_value(normalization).unwrap_or_default(),
            },
            train,
            valid,
            test,
            batcher: batcher(normalization)?,
        })
    }

    /// Flattened images (`[batch, rows * cols]`), for an MLP, pixels scaled
    /// to [0, 1] or standardized with the training split's statistics.
    pub fn flat_data(
        &self,
        standardize: bool,
    ) -> Result<ClassData<ImageItem, Tensor<2>>, DataError> {
        let pixels = self.sets[0].image_size();
        self.class_data(standardize, vec![pixels], |normalization| {
            Ok(Arc::new(ImageBatcher::new(normalization)))
        })
    }

    /// Images that keep a shape of `D - 1` sizes, e.g. `[1, 28, 28]` with
    /// `D = 4` for a convolutional network (`[batch, 1, 28, 28]` batches).
    pub fn shaped_data<const D: usize>(
        &self,
        standardize: bool,
        shape: &[usize],
    ) -> Result<ClassData<ImageItem, Tensor<D>>, DataError> {
        let pixels = self.sets[0].image_size();
        if shape.iter().product::<usize>() != pixels {
            return Err(DataError::invalid(
                "image shape",
                format!("sizes whose product is {pixels} pixels"),
                format!("{shape:?}"),
            ));
        }
        self.class_data(standardize, shape.to_vec(), |normalization| {
            Ok(Arc::new(ShapedImageBatcher::<D>::new(
                normalization,
                shape,
            )?))
        })
    }
}

impl Splits {
    /// These splits as an in-memory image provider.
    pub fn provider(&self) -> ImageSplits {
        ImageSplits {
            name: self.kind.to_string(),
            sets: [self.train.clone(), self.valid.clone(), self.test.clone()],
            classes: self.kind.classes(),
        }
    }

    /// Flattened images for an MLP: see [`ImageSplits::flat_data`].
    pub fn flat_data(
        &self,
        standardize: bool,
    ) -> Result<ClassData<ImageItem, Tensor<2>>, DataError> {
        self.provider().flat_data(standardize)
    }

    /// Images with their shape, e.g. `[1, 28, 28]`: see
    /// [`ImageSplits::shaped_data`].
    pub fn shaped_data<const D: usize>(
        &self,
        standardize: bool,
        shape: &[usize],
    ) -> Result<ClassData<ImageItem, Tensor<D>>, DataError> {
        self.provider().shaped_data(standardize, shape)
    }
}
