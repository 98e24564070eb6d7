//! Burn `Dataset` and `Batcher` for image sets.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::{ClassBatch, DataError, ImageSet};

/// One image and its label, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageItem {
    /// Pixels, row-major, 0..=255.
    pub pixels: Vec<u8>,
    /// Class index.
    pub label: u8,
}

/// A Burn dataset over an [`ImageSet`].
#[derive(Debug, Clone)]
pub struct ImageDataset {
    set: Arc<ImageSet>,
}

impl ImageDataset {
    /// Wraps an image set.
    pub fn new(set: impl Into<Arc<ImageSet>>) -> Self {
        Self { set: set.into() }
    }

    /// The underlying images.
    pub fn images(&self) -> &ImageSet {
        &self.set
    }
}

impl Dataset<ImageItem> for ImageDataset {
    fn get(&self, index: usize) -> Result<ImageItem, burn::data::dataset::DatasetError> {
        if index >= self.set.len() {
            return Err(burn::data::dataset::DatasetError::new(
                std::io::Error::other(format!(
                    "index {index} out of range for {} images",
                    self.set.len()
                )),
            ));
        }
        Ok(ImageItem {
            pixels: self.set.image(index).to_vec(),
            label: self.set.labels[index],
        })
    }

    fn len(&self) -> usize {
        self.set.len()
    }
}

/// How pixels become inputs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Normalization {
    /// `pixel / 255`, in [0, 1].
    #[default]
    Unit,
    /// `(pixel / 255 - mean) / std`, with the training split's mean and std.
    Standardize {
        /// Mean of `pixel / 255` over the training split.
        mean: f32,
        /// Standard deviation of `pixel / 255` over the training split.
        std: f32,
    },
}

impl Normalization {
    /// Standardization with the mean and standard deviation of `set`.
    pub fn standardize_from(set: &ImageSet) -> Result<Self, DataError> {
        let n = set.pixels.len() as f64;
        let mean = set.pixels.iter().map(|&p| p as f64 / 255.0).sum::<f64>() / n;
        let var = set
            .pixels
            .iter()
            .map(|&p| (p as f64 / 255.0 - mean).powi(2))
            .sum::<f64>()
            / n;
        if var.is_nan() || var <= 0.0 {
            return Err(DataError::invalid(
                "standardize",
                "training images whose pixels are not all equal",
                "zero variance",
            ));
        }
        Ok(Self::Standardize {
            mean: mean as f32,
            std: var.sqrt() as f32,
        })
    }

    fn apply(&self, pixel: u8) -> f32 {
        let unit = pixel as f32 / 255.0;
        match *self {
            Normalization::Unit => unit,
            Normalization::Standardize { mean, std } => (unit - mean) / std,
        }
    }
}

/// A batch of flattened images and their labels: `inputs` is
/// `[batch, rows * cols]` normalized pixels.
pub type ImageBatch = ClassBatch<Tensor<2>>;

/// Turns [`ImageItem`]s into an [`ImageBatch`] on a device.
#[derive(Debug, Clone, Default)]
pub struct ImageBatcher {
    /// How pixels are scaled.
    pub normalization: Normalization,
}

impl ImageBatcher {
    /// A batcher with the given normalization.
    pub fn new(normalization: Normalization) -> Self {
        Self { normalization }
    }
}

impl Batcher<ImageItem, ImageBatch> for ImageBatcher {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ImageBatch {
        let batch = items.len();
        let size = items.first().map_or(0, |item| item.pixels.len());
        let mut pixels = Vec::with_capacity(batch * size);
        let mut labels = Vec::with_capacity(batch);
        for item in &items {
            pixels.extend(item.pixels.iter().map(|&p| self.normalization.apply(p)));
            labels.push(item.label as i64);
        }
        ClassBatch {
            inputs: Tensor::from_data(TensorData::new(pixels, [batch, size]), device),
            targets: Tensor::from_data(TensorData::new(labels, [batch]), device),
        }
    }
}

/// Turns [`ImageItem`]s into a batch of images that keep their shape, e.g.
/// `[batch, 1, 28, 28]` (`D = 4`) for a convolutional network.
#[derive(Debug, Clone)]
pub struct ShapedImageBatcher<const D: usize> {
    /// How pixels are scaled.
    pub normalization: Normalization,
    /// The shape of one image, without the batch dimension (`D - 1` sizes
    /// whose product is the pixels per image).
    pub shape: Vec<usize>,
}

impl<const D: usize> ShapedImageBatcher<D> {
    /// A batcher giving each image the shape `shape` (`D - 1` sizes).
    pub fn new(normalization: Normalization, shape: &[usize]) -> Result<Self, DataError> {
        if shape.len() + 1 != D {
            return Err(DataError::invalid(
                "image shape",
                format!("{} sizes (the batch dimension makes {D})", D - 1),
                format!("{shape:?}"),
            ));
        }
        Ok(Self {
            normalization,
            shape: shape.to_vec(),
        })
    }
}

impl<const D: usize> Batcher<ImageItem, ClassBatch<Tensor<D>>> for ShapedImageBatcher<D> {
    fn batch(&self, items: Vec<ImageItem>, device: &Device) -> ClassBatch<Tensor<D>> {
        let flat = ImageBatcher::new(self.normalization).batch(items, device);
        let [batch, _] = flat.inputs.dims();
        let mut shape = [batch; D];
        shape[1..].copy_from_slice(&self.shape);
        ClassBatch {
            inputs: flat.inputs.reshape(shape),
            targets: flat.targets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> ImageSet {
        ImageSet {
            pixels: vec![0, 255, 51, 102],
            labels: vec![4, 2],
            rows: 1,
            cols: 2,
        }
    }

    #[test]
    fn batches_scale_pixels_to_unit_range() {
        let dataset = ImageDataset::new(set());
        let items = vec![dataset.get(1).unwrap(), dataset.get(0).unwrap()];
        let batch = ImageBatcher::default().batch(items, &Device::flex());
        let images: Vec<f32> = batch.inputs.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(images, vec![0.2, 0.4, 0.0, 1.0]);
        let targets: Vec<i64> = batch
            .targets
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        assert_eq!(targets, vec![2, 4]);
        assert!(dataset.get(2).is_err());
    }

    /// The shaped batcher gives the flat batch's values in `[batch, 1, 1, 2]`.
    #[test]
    fn shaped_batches_keep_the_image_shape() {
        let dataset = ImageDataset::new(set());
        let items = vec![dataset.get(0).unwrap(), dataset.get(1).unwrap()];
        let batcher = ShapedImageBatcher::<4>::new(Normalization::Unit, &[1, 1, 2]).unwrap();
        let batch = batcher.batch(items.clone(), &Device::flex());
        assert_eq!(batch.inputs.dims(), [2, 1, 1, 2]);
        let flat = ImageBatcher::default().batch(items, &Device::flex());
        assert_eq!(
            batch.inputs.into_data(),
            flat.inputs.reshape([2, 1, 1, 2]).into_data()
        );
        assert!(ShapedImageBatcher::<4>::new(Normalization::Unit, &[1, 2]).is_err());
    }

    #[test]
    fn standardization_uses_training_statistics() {
        // pixels / 255 = [0, 1, 0.2, 0.4]: mean 0.4, population std 0.3741657.
        let normalization = Normalization::standardize_from(&set()).unwrap();
        let Normalization::Standardize { mean, std } = normalization else {
            panic!("expected standardization");
        };
        assert!((mean - 0.4).abs() < 1e-6 && (std - 0.374_165_7).abs() < 1e-6);
        let blank = ImageSet {
            pixels: vec![7; 4],
            ..set()
        };
        assert!(Normalization::standardize_from(&blank).is_err());
    }
}
