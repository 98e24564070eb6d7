//! Any classification data for the trainer: three Burn datasets, a batcher,
//! and what the data is.

use std::fmt;
use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::Dataset;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::{ClassBatch, DataError};

/// What a provider says about its data; recorded in `summary.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// The data's name (`MNIST`, a CSV file's name, ...).
    pub name: String,
    /// The shape of one example's input, without the batch dimension
    /// (`[784]` for flattened MNIST, `[1, 28, 28]` for a convolutional net).
    pub input_shape: Vec<usize>,
    /// Number of classes: targets are in `0..classes`.
    pub classes: usize,
    /// The class names, by index, when the data has names (a CSV label
    /// column of names); empty when the classes are only indices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub class_names: Vec<String>,
    /// Examples in the training, validation and test splits.
    pub split_sizes: [usize; 3],
    /// How the stored values became inputs (pixel scaling, per-column
    /// standardization, ...), as the provider records it: what a user of the
    /// saved weights must apply to new data.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub preprocessing: serde_json::Value,
}

/// A batcher shared between the loaders of the three splits.
pub type SharedBatcher<I, X> = Arc<dyn Batcher<I, ClassBatch<X>>>;

/// Classification data for the trainer: a training, a validation and a test
/// split, each any Burn `Dataset` of items `I`, one batcher that turns items
/// into a [`ClassBatch`] of inputs `X`, and the [`DataInfo`].
///
/// recipe's providers build one ([`Splits::flat_data`](crate::Splits::flat_data)
/// and [`Splits::shaped_data`](crate::Splits::shaped_data) for the IDX image
/// sets, [`FeatureSet`](crate::FeatureSet) for values already in memory);
/// [`ClassData::new`] takes your own datasets and batcher.
pub struct ClassData<I, X> {
    /// The split the network is fitted on.
    pub train: Arc<dyn Dataset<I>>,
    /// The split early stopping and model choice look at.
    pub valid: Arc<dyn Dataset<I>>,
    /// The untouched split, evaluated once at the end.
    pub test: Arc<dyn Dataset<I>>,
    /// Items to batches, for all three splits.
    pub batcher: SharedBatcher<I, X>,
    /// What the data is.
    pub info: DataInfo,
}

impl<I, X> Clone for ClassData<I, X> {
    fn clone(&self) -> Self {
        Self {
            train: self.train.clone(),
            valid: self.valid.clone(),
            test: self.test.clone(),
            batcher: self.batcher.clone(),
            info: self.info.clone(),
        }
    }
}

impl<I, X> fmt::Debug for ClassData<I, X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassData")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The batches' inputs, whose shape [`ClassData::check`] compares with the
/// [`DataInfo`]: a float or integer tensor of any rank, or your own input
/// type.
pub trait BatchInputs {
    /// The shape of the whole batch (first dimension: the batch).
    fn batch_shape(&self) -> Vec<usize>;

    /// The same inputs with autodiff enabled on their device, where
    /// dropout draws masks (for validating thinned nets: recipe-train's
    /// `FitConfig::validate_thinned`). `None`, the default, for inputs that
    /// cannot say how: implement it for a struct of your own by enabling
    /// autodiff on each of its tensors (`Tensor::autodiff`).
    fn with_autodiff(self) -> Option<Self>
    where
        Self: Sized,
    {
        None
    }
}

impl<const D: usize> BatchInputs for Tensor<D> {
    fn batch_shape(&self) -> Vec<usize> {
        self.dims().to_vec()
    }

    fn with_autodiff(self) -> Option<Self> {
        Some(self.autodiff())
    }
}

/// Integer inputs: token or category indices for an embedding.
impl<const D: usize> BatchInputs for Tensor<D, Int> {
    fn batch_shape(&self) -> Vec<usize> {
        self.dims().to_vec()
    }

    fn with_autodiff(self) -> Option<Self> {
        Some(self.autodiff())
    }
}

/// Which split, in errors.
const SPLITS: [&str; 3] = ["train", "valid", "test"];

impl<I, X> ClassData<I, X>
where
    I: Send + Sync + Clone + fmt::Debug + 'static,
    X: BatchInputs + Send + Clone + fmt::Debug + 'static,
{
    /// Your own data: three datasets, a batcher, a name and the class count.
    /// The input shape is read from the first training item (batched on
    /// `device`) and every item of every split is checked
    /// ([`ClassData::check_every_item`]), so that a ragged item is named
    /// here rather than breaking a batch in the middle of training.
    pub fn new(
        name: impl Into<String>,
        [train, valid, test]: [Arc<dyn Dataset<I>>; 3],
        batcher: SharedBatcher<I, X>,
        classes: usize,
        device: &Device,
    ) -> Result<Self, DataError> {
        let split_sizes = [train.len(), valid.len(), test.len()];
        let mut data = Self {
            train,
            valid,
            test,
            batcher,
            info: DataInfo {
                name: name.into(),
                input_shape: Vec::new(),
                classes,
                class_names: Vec::new(),
                split_sizes,
                preprocessing: serde_json::Value::Null,
            },
        };
        let first = data.first_batch(&data.train, "train", device)?;
        data.info.input_shape = first.inputs.batch_shape()[1..].to_vec();
        data.check(device)?;
        data.check_every_item(device)?;
        Ok(data)
    }

    /// The three splits, in order.
    pub fn splits(&self) -> [&Arc<dyn Dataset<I>>; 3] {
        [&self.train, &self.valid, &self.test]
    }

    /// Checks what can be checked without reading every item: no split is
    /// empty, at least two classes, and the first batch of each split has
    /// [`DataInfo::input_shape`] and targets in `0..classes` (batched on
    /// `device`).
    pub fn check(&self, device: &Device) -> Result<(), DataError> {
        if self.info.classes < 2 {
            return Err(DataError::invalid(
                "classes",
                "at least 2",
                self.info.classes,
            ));
        }
        for (set, split) in self.splits().into_iter().zip(SPLITS) {
            let batch = self.first_batch(set, split, device)?;
            let shape = batch.inputs.batch_shape();
            if shape[1..] != self.info.input_shape[..] {
                return Err(DataError::invalid(
                    format!("{} {split} inputs", self.info.name),
                    format!("the shape {:?} of every example", self.info.input_shape),
                    format!("{:?} in the first batch", &shape[1..]),
                ));
            }
            check_targets(&batch.targets, self.info.classes, &self.info.name, split)?;
        }
        Ok(())
    }

    /// Checks every item of every split, each batched alone on `device` (so
    /// that items of different shapes cannot break the batcher): its input
    /// shape is [`DataInfo::input_shape`] and its target is in
    /// `0..classes`. The error names the split and the item's index. This
    /// reads the whole data once; recipe's own providers check their values
    /// as they build them and skip it.
    pub fn check_every_item(&self, device: &Device) -> Result<(), DataError> {
        const TARGETS_PER_READ: usize = 1024;
        for (set, split) in self.splits().into_iter().zip(SPLITS) {
            let mut targets = Vec::with_capacity(TARGETS_PER_READ);
            for index in 0..set.len() {
                let item = set.get(index).map_err(|e| {
                    DataError::invalid(
                        format!("{} {split} item {index}", self.info.name),
                        "a readable item",
                        e,
                    )
                })?;
                let batch = self.batcher.batch(vec![item], device);
                let shape = batch.inputs.batch_shape();
                if shape.first() != Some(&1) || shape[1..] != self.info.input_shape[..] {
                    return Err(DataError::invalid(
                        format!("{} {split} item {index}", self.info.name),
                        format!(
                            "inputs of the shape {:?} (the first training item's)",
                            self.info.input_shape
                        ),
                        format!("{:?}", shape.get(1..).unwrap_or_default()),
                    ));
                }
                targets.push(batch.targets);
                if targets.len() == TARGETS_PER_READ || index + 1 == set.len() {
                    let first = index + 1 - targets.len();
                    let chunk = Tensor::cat(std::mem::take(&mut targets), 0);
                    if first_bad_target(&chunk, self.info.classes).is_some() {
                        return Err(self.bad_target(set, split, first, device));
                    }
                }
            }
        }
        Ok(())
    }

    /// The error for the first item from `first` on whose target is not a
    /// class index.
    fn bad_target(
        &self,
        set: &Arc<dyn Dataset<I>>,
        split: &str,
        first: usize,
        device: &Device,
    ) -> DataError {
        let classes = self.info.classes;
        for index in first..set.len() {
            let Ok(item) = set.get(index) else { break };
            let target = self.batcher.batch(vec![item], device).targets;
            if let Some(bad) = first_bad_target(&target, classes) {
                return DataError::invalid(
                    format!("{} {split} item {index}", self.info.name),
                    format!("a class index in 0..{classes}"),
                    bad,
                );
            }
        }
        DataError::invalid(
            format!("{} {split} labels", self.info.name),
            format!("class indices in 0..{classes}"),
            "one outside",
        )
    }

    /// A batch of the first few training examples (at most 16), on `device`.
    pub fn sample_batch(&self, device: &Device) -> Result<ClassBatch<X>, DataError> {
        self.first_batch(&self.train, "train", device)
    }

    fn first_batch(
        &self,
        set: &Arc<dyn Dataset<I>>,
        split: &str,
        device: &Device,
    ) -> Result<ClassBatch<X>, DataError> {
        let items: Vec<I> = (0..set.len().min(16))
            .map(|index| set.get(index))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                DataError::invalid(format!("{} {split}", self.info.name), "readable items", e)
            })?;
        if items.is_empty() {
            return Err(DataError::invalid(
                format!("{} {split}", self.info.name),
                "at least one example",
                0,
            ));
        }
        Ok(self.batcher.batch(items, device))
    }

    /// A loader over `set` (one of [`ClassData::splits`]) in batches of
    /// `batch_size`, shuffled with `shuffle` as its seed if given, on
    /// `device` if given.
    pub fn loader(
        &self,
        set: &Arc<dyn Dataset<I>>,
        batch_size: usize,
        shuffle: Option<u64>,
        device: Option<Device>,
    ) -> Arc<dyn DataLoader<ClassBatch<X>>> {
        let mut builder =
            DataLoaderBuilder::new(Shared(self.batcher.clone())).batch_size(batch_size);
        if let Some(seed) = shuffle {
            builder = builder.shuffle(seed);
        }
        if let Some(device) = device {
            builder = builder.set_device(device);
        }
        builder.build(set.clone())
    }
}

fn check_targets(
    targets: &Tensor<1, Int>,
    classes: usize,
    name: &str,
    split: &str,
) -> Result<(), DataError> {
    match first_bad_target(targets, classes) {
        Some(bad) => Err(DataError::invalid(
            format!("{name} {split} labels"),
            format!("class indices in 0..{classes}"),
            bad,
        )),
        None => Ok(()),
    }
}

/// The first of `targets` that is not a class index in `0..classes`.
fn first_bad_target(targets: &Tensor<1, Int>, classes: usize) -> Option<i64> {
    let values = targets
        .clone()
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .unwrap_or_default();
    values.into_iter().find(|&t| t < 0 || t as usize >= classes)
}

/// Burn's loader wants a batcher it owns; this one shares the data's.
struct Shared<I, X>(SharedBatcher<I, X>);

impl<I, X> Batcher<I, ClassBatch<X>> for Shared<I, X> {
    fn batch(&self, items: Vec<I>, device: &Device) -> ClassBatch<X> {
        self.0.batch(items, device)
    }
}

#[cfg(test)]
mod tests {
    use burn::data::dataset::InMemDataset;
    use burn::tensor::TensorData;

    use super::*;

    /// A user's own item: a row of any length and a label.
    #[derive(Debug, Clone)]
    struct Row {
        values: Vec<f32>,
        label: i64,
    }

    /// A user's own batcher, written the usual way: one tensor per item,
    /// concatenated (which breaks on rows of different lengths).
    struct RowBatcher;

    impl Batcher<Row, ClassBatch<Tensor<2>>> for RowBatcher {
        fn batch(&self, items: Vec<Row>, device: &Device) -> ClassBatch<Tensor<2>> {
            let rows = items
                .iter()
                .map(|row| Tensor::<1>::from_floats(row.values.as_slice(), device).unsqueeze())
                .collect();
            let labels: Vec<i64> = items.iter().map(|row| row.label).collect();
            ClassBatch {
                inputs: Tensor::cat(rows, 0),
                targets: Tensor::from_data(TensorData::new(labels.clone(), [labels.len()]), device),
            }
        }
    }

    fn rows(count: usize) -> Vec<Row> {
        (0..count)
            .map(|i| Row {
                values: vec![i as f32, 1.0, -1.0],
                label: (i % 3) as i64,
            })
            .collect()
    }

    fn data(train: Vec<Row>) -> Result<ClassData<Row, Tensor<2>>, DataError> {
        let set = |rows: Vec<Row>| Arc::new(InMemDataset::new(rows)) as Arc<dyn Dataset<Row>>;
        ClassData::new(
            "rows",
            [set(train), set(rows(20)), set(rows(20))],
            Arc::new(RowBatcher),
            3,
            &Device::flex(),
        )
    }

    #[test]
    fn own_datasets_and_batcher_give_the_shape_and_sizes() {
        let data = data(rows(2000)).unwrap();
        assert_eq!(data.info.input_shape, [3]);
        assert_eq!(data.info.split_sizes, [2000, 20, 20]);
    }

    /// The ragged row is far past the first batch: without the item check
    /// it would surface as a panic in the batcher during training.
    #[test]
    fn a_ragged_item_anywhere_is_named_by_split_and_index() {
        let mut train = rows(2000);
        train[1234].values.push(5.0);
        let error = data(train).unwrap_err().to_string();
        assert!(error.contains("rows train item 1234"), "{error}");
        assert!(error.contains("[3]") && error.contains("[4]"), "{error}");
    }

    #[test]
    fn a_label_outside_the_classes_is_named_by_item() {
        let mut train = rows(2000);
        train[1500].label = 7;
        let error = data(train).unwrap_err().to_string();
        assert!(error.contains("rows train item 1500"), "{error}");
        assert!(error.contains("0..3") && error.contains('7'), "{error}");
    }
}
