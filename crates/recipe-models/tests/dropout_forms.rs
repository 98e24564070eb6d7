//! The two dropout forms from one seed. The flex backend's generator is
//! global to the process, so tests that compare draws after seeding it run
//! here, one at a time, away from the unit tests that draw in parallel.

use std::sync::Mutex;

use burn::module::Module;
use burn::nn::DropoutConfig;
use burn::tensor::{Device, Distribution, Tensor};
use recipe_models::{DropoutForm, Mlp, MlpConfig};

static GENERATOR: Mutex<()> = Mutex::new(());

fn logits_of(mlp: &Mlp, input: Tensor<2>) -> Vec<f32> {
    mlp.forward(input).into_data().try_to_vec::<f32>().unwrap()
}

fn assert_close(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= 1e-5 * (1.0 + x.abs()),
            "{what}: {x} vs {y}"
        );
    }
}

#[test]
fn both_forms_thin_the_same_units_and_differ_only_by_the_scale() {
    let _one_at_a_time = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    let dropout = DropoutConfig::new(0.4).init();
    let input = Tensor::<2>::ones([8, 50], &device);
    device.seed(7);
    let inverted = DropoutForm::Inverted.forward(&dropout, input.clone());
    device.seed(7);
    let lecture = DropoutForm::Lecture.forward(&dropout, input.clone());
    let rescaled: Vec<f32> = (lecture * (1.0 / 0.6))
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let inverted: Vec<f32> = inverted.into_data().try_to_vec::<f32>().unwrap();
    assert!(inverted.contains(&0.0) && inverted.iter().any(|&v| v > 1.0));
    assert_close(&inverted, &rescaled, "same mask");
}

/// The lecture's dropout (no scaling in training, weights times 1 - p at
/// test) and inverted dropout are one net in two parametrizations:
/// converted, they agree in training (same seed, same masks) and at test
/// time, and converting back restores the weights.
#[test]
fn both_dropout_forms_compute_the_same_net_once_converted() {
    let _one_at_a_time = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    device.seed(11);
    let inverted = MlpConfig::new(6, vec![5, 4], 3)
        .with_input_dropout(0.2)
        .with_dropout(0.5)
        .init(&device)
        .unwrap();
    let lecture = inverted.clone().with_dropout_form(DropoutForm::Lecture);
    assert_eq!(lecture.dropout_form, DropoutForm::Lecture);
    let input = Tensor::<2>::random([16, 6], Distribution::Normal(0.0, 1.0), &device);
    let test_inverted = logits_of(&inverted.valid(), input.clone().inner());
    let test_lecture = logits_of(&lecture.valid(), input.clone().inner());
    assert_close(&test_inverted, &test_lecture, "test time");
    device.seed(5);
    let train_inverted = logits_of(&inverted, input.clone());
    device.seed(5);
    let train_lecture = logits_of(&lecture, input.clone());
    assert_close(&train_inverted, &train_lecture, "training, same masks");
    // Training really thinned the net, so the agreement is not the
    // identity's.
    assert!(
        train_inverted
            .iter()
            .zip(&test_inverted)
            .any(|(a, b)| (a - b).abs() > 1e-3)
    );
    let weights = |mlp: &Mlp| -> Vec<f32> {
        mlp.output
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap()
    };
    let back = lecture.with_dropout_form(DropoutForm::Inverted);
    assert_close(&weights(&back), &weights(&inverted), "round trip");
    assert!(weights(&back) != weights(&inverted.with_dropout_form(DropoutForm::Lecture)));
}

/// pylearn2's unscaled input dropout (Goodfellow et al.'s Maxout nets) under
/// inverted dropout elsewhere: in training it thins the inputs as the
/// lecture's form does (same masks, no scale), at test time the net is the
/// inverted one, and converting it keeps the test-time function.
#[test]
fn unscaled_input_dropout_trains_like_the_lecture_and_tests_like_inverted() {
    let _one_at_a_time = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let device = Device::flex().autodiff();
    device.seed(3);
    let unscaled = MlpConfig::new(6, vec![5], 3)
        .with_input_dropout(0.3)
        .with_input_dropout_form(Some(DropoutForm::Unscaled))
        .init(&device)
        .unwrap();
    assert_eq!(unscaled.input_dropout_form, DropoutForm::Unscaled);
    assert_eq!(unscaled.dropout_form, DropoutForm::Inverted);
    let in_form = |form| Mlp {
        input_dropout_form: form,
        ..unscaled.clone()
    };
    let (lecture, inverted) = (
        in_form(DropoutForm::Lecture),
        in_form(DropoutForm::Inverted),
    );
    let input = Tensor::<2>::random([16, 6], Distribution::Normal(0.0, 1.0), &device);
    let train = |mlp: &Mlp| {
        device.seed(9);
        logits_of(mlp, input.clone())
    };
    assert_close(&train(&unscaled), &train(&lecture), "training, same masks");
    assert!(train(&unscaled) != train(&inverted));
    let test = |mlp: &Mlp| logits_of(&mlp.valid(), input.clone().inner());
    assert_eq!(test(&unscaled), test(&inverted));
    assert!(test(&unscaled) != test(&lecture));
    let converted = unscaled.clone().with_dropout_form(DropoutForm::Lecture);
    assert_close(&test(&converted), &test(&unscaled), "converted, test time");
}
