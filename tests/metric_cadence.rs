//! How often the metrics are read from the device changes no figure.
//!
//! A binary of its own, like `determinism.rs`: the runs compared draw from
//! Burn's process-wide random generator, which a training in another test
//! thread would draw from too.

mod common;
use common::{csv_without_seconds, device, on_cpu, quiet};
use recipe::models::MlpConfig;
use recipe::train::{
    GradientClipping, READ_METRICS_EVERY, Regularizer, TrainConfig, TrainOptions, train_mlp,
};

/// How often the metrics are read from the device changes no figure of the
/// history: loss, accuracy, penalty and gradient norm, train and valid.
#[test]
fn the_metric_read_cadence_changes_no_figure() {
    let device = device();
    let mut config = TrainConfig::new(MlpConfig::new(784, vec![32], 10));
    config.data.split.train_limit = Some(1_000);
    config.data.split.valid_size = 1_000;
    config.fit.epochs = 2;
    config.fit.batch_size = 64;
    config.fit.regularizer = Some(Regularizer::L2 { lambda: 1e-3 });
    config.fit.gradient_clipping = Some(GradientClipping::GlobalNorm(1.0));
    let history = |read_metrics_every| {
        let options = TrainOptions {
            read_metrics_every,
            ..quiet()
        };
        let trained = train_mlp(&config, &device, &options).unwrap();
        csv_without_seconds(&trained.history.to_csv())
    };
    let every_step = history(1);
    assert!(every_step[0].contains("grad_norm_max"), "{every_step:?}");
    for read_metrics_every in [0, 7, READ_METRICS_EVERY] {
        let found = history(read_metrics_every);
        if on_cpu() {
            assert_eq!(found, every_step, "read every {read_metrics_every}");
        } else {
            assert_close(&found, &every_step, read_metrics_every);
        }
    }
}

/// On a GPU backend two runs of the same cadence already differ in the
/// last digits (measured on wgpu over lavapipe: reading every step twice,
/// the epoch means differed by about 1e-7 relative, likely CubeCL's
/// autotuning, which picks kernels by timing): the same columns, every
/// figure within 1e-5 relative.
fn assert_close(found: &[String], expected: &[String], read_metrics_every: usize) {
    assert_eq!(found.len(), expected.len(), "{found:?}\n{expected:?}");
    assert_eq!(found[0], expected[0]);
    for (found_line, expected_line) in found.iter().zip(expected).skip(1) {
        for (a, b) in found_line.split(',').zip(expected_line.split(',')) {
            match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(a), Ok(b)) => assert!(
                    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()),
                    "read every {read_metrics_every}: {found_line} against {expected_line}"
                ),
                _ => assert_eq!(a, b),
            }
        }
    }
}
