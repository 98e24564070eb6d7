//! Sampled thinned nets from one seed. Burn's random generator is per
//! backend and process-wide, so this comparison of draws after seeding it
//! has a binary of its own, away from test threads that draw in parallel.

use burn::module::Module;
use burn::tensor::Device;
use recipe_data::FeatureSet;
use recipe_models::MlpConfig;
use recipe_train::{MonteCarloEvaluation, evaluate, evaluate_monte_carlo, thinned_copy};

/// A net in evaluation mode on a plain device (as a run's kept net is)
/// still yields sampled masks through its thinned copy: the same for the
/// same seed, others for another seed. The net's own evaluation is
/// deterministic, so only the masks can move the figure.
#[test]
fn a_thinned_copy_samples_the_same_masks_for_the_same_seed() {
    let plain = Device::flex();
    plain.seed(1);
    let net = MlpConfig::new(6, vec![48], 4)
        .with_dropout(0.5)
        .init(&plain)
        .unwrap()
        .valid();
    // 40 examples of 6 features in 4 classes, every split the same.
    let values = (0..40 * 6).map(|i| ((i * 7 % 13) as f32) / 13.0).collect();
    let labels = (0..40).map(|i| (i / 3) % 4).collect();
    let set = FeatureSet::new(values, &[6], labels).unwrap();
    let sets = [set.clone(), set.clone(), set];
    let data =
        FeatureSet::class_data::<2>("toy", sets, 4, Vec::new(), serde_json::Value::Null).unwrap();
    let loader = |device: &Device| data.loader(&data.test, 16, None, Some(device.clone()));
    let deterministic = evaluate(&net, &loader(&plain)).unwrap();
    let sample = |seed| -> MonteCarloEvaluation {
        let (thinned, device) = thinned_copy(&net, &plain, seed);
        assert!(device.is_autodiff());
        evaluate_monte_carlo(&thinned, &loader(&device), &[1]).unwrap()[0]
    };
    let (first, again, other) = (sample(7), sample(7), sample(8));
    assert!((first.loss - deterministic.loss).abs() > 1e-3, "{first:?}");
    assert_eq!(first, again);
    assert!(
        (first.loss - other.loss).abs() > 1e-5,
        "{first:?} {other:?}"
    );
}
