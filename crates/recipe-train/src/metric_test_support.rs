//! Steps to feed metrics in their tests, and a toy split to evaluate on.

use std::sync::Arc;

use burn::data::dataloader::{DataLoader, Progress};
use burn::tensor::{Device, Int, Tensor};
use burn::train::ClassificationOutput;
use burn::train::metric::MetricMetadata;
use recipe_data::{ClassBatch, FeatureSet};

/// Metadata of a step; the metrics under test do not read it.
pub(crate) fn metadata() -> MetricMetadata {
    MetricMetadata {
        progress: Progress {
            items_processed: 1,
            items_total: 1,
            unit: None,
        },
        iteration: Some(1),
        lr: None,
    }
}

/// Seven classification steps of different batch sizes over five classes,
/// outputs and targets from a fixed recurrence (some right, some wrong),
/// losses with no short binary form.
pub(crate) fn classification_steps() -> Vec<ClassificationOutput> {
    let device = Device::flex();
    let classes = 5;
    let mut state = 12_345_u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize
    };
    (0..7)
        .map(|step| {
            let batch = 3 + step * 2;
            let outputs: Vec<f32> = (0..batch * classes)
                .map(|_| (next() % 1000) as f32 / 997.0)
                .collect();
            let targets: Vec<i64> = (0..batch).map(|_| (next() % classes) as i64).collect();
            let losses: Vec<f32> = (0..batch).map(|_| (next() % 1000) as f32 / 331.0).collect();
            ClassificationOutput::new(
                Tensor::<1>::from_floats(losses.as_slice(), &device),
                Tensor::<1>::from_floats(outputs.as_slice(), &device).reshape([batch, classes]),
                Tensor::<1, Int>::from_ints(targets.as_slice(), &device),
            )
        })
        .collect()
}

/// `examples` examples of `features` features in 3 classes (values
/// `(i * 37 % 11) / 11`, labels `i * 7 % 3`), in batches of `batch_size`
/// on `device` (a last batch smaller when it does not divide).
pub(crate) fn toy_loader(
    device: &Device,
    examples: usize,
    features: usize,
    batch_size: usize,
) -> Arc<dyn DataLoader<ClassBatch<Tensor<2>>>> {
    let values = (0..examples * features)
        .map(|i| ((i * 37 % 11) as f32) / 11.0)
        .collect();
    let labels = (0..examples).map(|i| i * 7 % 3).collect();
    let set = FeatureSet::new(values, &[features], labels).unwrap();
    let data = FeatureSet::class_data::<2>(
        "toy",
        [set.clone(), set.clone(), set],
        3,
        Vec::new(),
        serde_json::Value::Null,
    )
    .unwrap();
    data.loader(&data.test, batch_size, None, Some(device.clone()))
}
