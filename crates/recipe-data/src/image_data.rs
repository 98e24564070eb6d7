//! Image sets (MNIST, Fashion-MNIST, or `u8` images already in memory) as
//! [`ClassData`] for the trainer.

use std::sync::Arc;

use burn::data::dataset::Dataset;
use burn::tensor::Tensor;

use crate::{
    ClassData, DataError, DataInfo, ImageBatcher, ImageDataset, ImageItem, ImageSet, Normalization,
    ShapedImageBatcher, SharedBatcher, Splits,
};

/// Three image sets, their class count and how pixels are scaled, as
/// [`ClassData`] whose batches come from `batcher`.
fn image_class_data<X>(
    name: &str,
    sets: [&ImageSet; 3],
    classes: usize,
    normalization: Normalization,
    input_shape: Vec<usize>,
    batcher: SharedBatcher<ImageItem, X>,
) -> Result<ClassData<ImageItem, X>, DataError> {
    for (set, split) in sets.iter().zip(["train", "valid", "test"]) {
        set.check(&format!("{name} {split}"), classes)?;
    }
    let [train, valid, test] =
        sets.map(|set| Arc::new(ImageDataset::new(set.clone())) as Arc<dyn Dataset<ImageItem>>);
    Ok(ClassData {
        info: DataInfo {
            name: name.to_string(),
            input_shape,
            classes,
            class_names: Vec::new(),
            split_sizes: [train.len(), valid.len(), test.len()],
            preprocessing: serde_json::to_value(normalization).unwrap_or_default(),
        },
        train,
        valid,
        test,
        batcher,
    })
}

/// `Normalization::standardize_from(train)` when asked, else `Unit`.
fn normalization_for(train: &ImageSet, standardize: bool) -> Result<Normalization, DataError> {
    if standardize {
        Normalization::standardize_from(train)
    } else {
        Ok(Normalization::Unit)
    }
}

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
    /// Flattened images (`[batch, rows * cols]`), for an MLP, pixels scaled
    /// to [0, 1] or standardized with the training split's statistics.
    pub fn flat_data(
        &self,
        standardize: bool,
    ) -> Result<ClassData<ImageItem, Tensor<2>>, DataError> {
        let [train, valid, test] = &self.sets;
        let normalization = normalization_for(train, standardize)?;
        image_class_data(
            &self.name,
            [train, valid, test],
            self.classes,
            normalization,
            vec![train.image_size()],
            Arc::new(ImageBatcher::new(normalization)),
        )
    }

    /// Images that keep a shape of `D - 1` sizes, e.g. `[1, 28, 28]` with
    /// `D = 4` for a convolutional network (`[batch, 1, 28, 28]` batches).
    pub fn shaped_data<const D: usize>(
        &self,
        standardize: bool,
        shape: &[usize],
    ) -> Result<ClassData<ImageItem, Tensor<D>>, DataError> {
        let [train, valid, test] = &self.sets;
        if shape.iter().product::<usize>() != train.image_size() {
            return Err(DataError::invalid(
                "image shape",
                format!("sizes whose product is {} pixels", train.image_size()),
                format!("{shape:?}"),
            ));
        }
        let normalization = normalization_for(train, standardize)?;
        image_class_data(
            &self.name,
            [train, valid, test],
            self.classes,
            normalization,
            shape.to_vec(),
            Arc::new(ShapedImageBatcher::<D>::new(normalization, shape)?),
        )
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
