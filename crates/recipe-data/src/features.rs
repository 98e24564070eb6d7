//! Numeric features already in memory (`Vec<f32>` plus labels), as a Burn
//! dataset and a provider of [`ClassData`].

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::{Dataset, DatasetError};
use burn::tensor::{Device, Tensor, TensorData};

use crate::{ClassBatch, ClassData, DataError, DataInfo};

/// One example: its values (row-major in the example's shape) and its class.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureItem {
    /// The input values.
    pub values: Vec<f32>,
    /// Class index.
    pub label: usize,
}

/// Examples of one shape, in memory: `values` holds `labels.len()` examples
/// of `shape.iter().product()` values each.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSet {
    values: Vec<f32>,
    labels: Vec<usize>,
    shape: Vec<usize>,
}

impl FeatureSet {
    /// Checks that `values` holds one example of `shape` per label and that
    /// every value is finite.
    pub fn new(values: Vec<f32>, shape: &[usize], labels: Vec<usize>) -> Result<Self, DataError> {
        let size: usize = shape.iter().product();
        if shape.is_empty() || size == 0 {
            return Err(DataError::invalid(
                "feature shape",
                "at least one value per example",
                format!("{shape:?}"),
            ));
        }
        if values.len() != labels.len() * size {
            return Err(DataError::invalid(
                "feature values",
                format!("{} ({} labels x {size})", labels.len() * size, labels.len()),
                values.len(),
            ));
        }
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(DataError::invalid(
                format!("value {} of example {}", index % size, index / size),
                "a finite number",
                values[index],
            ));
        }
        Ok(Self {
            values,
            labels,
            shape: shape.to_vec(),
        })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The shape of one example.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The classes, by example.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// The values of example `index`.
    pub fn example(&self, index: usize) -> &[f32] {
        let size = self.values.len() / self.len().max(1);
        &self.values[index * size..(index + 1) * size]
    }

    /// Training, validation and test sets as [`ClassData`] of `classes`
    /// classes named `name`, batched as `[batch, shape...]` (`D` = 1 + the
    /// rank of one example). `preprocessing` records how the values were
    /// made (`Null` for none).
    pub fn class_data<const D: usize>(
        name: &str,
        sets: [FeatureSet; 3],
        classes: usize,
        class_names: Vec<String>,
        preprocessing: serde_json::Value,
    ) -> Result<ClassData<FeatureItem, Tensor<D>>, DataError> {
        let shape = sets[0].shape.clone();
        if shape.len() + 1 != D {
            return Err(DataError::invalid(
                "feature shape",
                format!("{} sizes (the batch dimension makes {D})", D - 1),
                format!("{shape:?}"),
            ));
        }
        for (set, split) in sets.iter().zip(["train", "valid", "test"]) {
            set.check(name, split, &shape, classes)?;
        }
        let split_sizes = [sets[0].len(), sets[1].len(), sets[2].len()];
        let [train, valid, test] = sets.map(|set| Arc::new(set) as Arc<dyn Dataset<FeatureItem>>);
        Ok(ClassData {
            train,
            valid,
            test,
            batcher: Arc::new(FeatureBatcher::<D> {
                shape: shape.clone(),
            }),
            info: DataInfo {
                name: name.to_string(),
                input_shape: shape,
                classes,
                class_names,
                split_sizes,
                preprocessing,
            },
        })
    }

    fn check(
        &self,
        name: &str,
        split: &str,
        shape: &[usize],
        classes: usize,
    ) -> Result<(), DataError> {
        if self.is_empty() {
            return Err(DataError::invalid(
                format!("{name} {split}"),
                "at least one example",
                0,
            ));
        }
        if self.shape != shape {
            return Err(DataError::invalid(
                format!("{name} {split} example shape"),
                format!("{shape:?}, as in the training split"),
                format!("{:?}", self.shape),
            ));
        }
        match self.labels.iter().position(|&l| l >= classes) {
            Some(index) => Err(DataError::invalid(
                format!("{name} {split} label of example {index}"),
                format!("a class in 0..{classes}"),
                self.labels[index],
            )),
            None => Ok(()),
        }
    }
}

impl Dataset<FeatureItem> for FeatureSet {
    fn get(&self, index: usize) -> Result<FeatureItem, DatasetError> {
        if index >= self.len() {
            return Err(DatasetError::new(std::io::Error::other(format!(
                "index {index} out of range for {} examples",
                self.len()
            ))));
        }
        Ok(FeatureItem {
            values: self.example(index).to_vec(),
            label: self.labels[index],
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// Stacks [`FeatureItem`]s of one shape into `[batch, shape...]`.
#[derive(Debug, Clone)]
pub struct FeatureBatcher<const D: usize> {
    /// The shape of one example (`D - 1` sizes).
    pub shape: Vec<usize>,
}

impl<const D: usize> Batcher<FeatureItem, ClassBatch<Tensor<D>>> for FeatureBatcher<D> {
    fn batch(&self, items: Vec<FeatureItem>, device: &Device) -> ClassBatch<Tensor<D>> {
        let mut shape = [items.len(); D];
        shape[1..].copy_from_slice(&self.shape);
        let labels: Vec<i64> = items.iter().map(|item| item.label as i64).collect();
        let values: Vec<f32> = items.into_iter().flat_map(|item| item.values).collect();
        ClassBatch {
            inputs: Tensor::from_data(TensorData::new(values, shape), device),
            targets: Tensor::from_data(TensorData::new(labels, [shape[0]]), device),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(values: &[f32], labels: &[usize]) -> FeatureSet {
        FeatureSet::new(values.to_vec(), &[2], labels.to_vec()).unwrap()
    }

    /// Two examples of two values: the batch is `[2, 2]` in example order,
    /// the targets the labels.
    #[test]
    fn batches_stack_examples_in_order() {
        let train = set(&[1.0, 2.0, 3.0, 4.0], &[1, 0]);
        let data = FeatureSet::class_data::<2>(
            "toy",
            [train.clone(), train.clone(), train],
            2,
            vec![],
            serde_json::Value::Null,
        )
        .unwrap();
        let items = vec![data.train.get(1).unwrap(), data.train.get(0).unwrap()];
        let batch = data.batcher.batch(items, &Device::flex());
        assert_eq!(batch.inputs.dims(), [2, 2]);
        assert_eq!(
            batch.inputs.into_data().try_to_vec::<f32>().unwrap(),
            [3.0, 4.0, 1.0, 2.0]
        );
        let targets = batch
            .targets
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .unwrap();
        assert_eq!(targets, [0, 1]);
        assert_eq!(data.info.input_shape, [2]);
        assert_eq!(data.info.split_sizes, [2, 2, 2]);
    }

    #[test]
    fn bad_sets_are_errors_naming_what_is_wrong() {
        let ragged = FeatureSet::new(vec![1.0, 2.0, 3.0], &[2], vec![0, 1]).unwrap_err();
        assert!(ragged.to_string().contains("feature values"), "{ragged}");
        let nan = FeatureSet::new(vec![1.0, f32::NAN], &[2], vec![0]).unwrap_err();
        assert!(nan.to_string().contains("value 1 of example 0"), "{nan}");
        let good = set(&[1.0, 2.0], &[0]);
        let out_of_range = set(&[1.0, 2.0], &[3]);
        let error = FeatureSet::class_data::<2>(
            "toy",
            [good.clone(), good.clone(), out_of_range],
            2,
            vec![],
            serde_json::Value::Null,
        )
        .unwrap_err();
        assert!(
            error.to_string().contains("toy test label of example 0"),
            "{error}"
        );
        let other_shape = FeatureSet::new(vec![1.0; 3], &[3], vec![0]).unwrap();
        let error = FeatureSet::class_data::<2>(
            "toy",
            [good.clone(), other_shape, good],
            2,
            vec![],
            serde_json::Value::Null,
        )
        .unwrap_err();
        assert!(error.to_string().contains("valid example shape"), "{error}");
    }
}
