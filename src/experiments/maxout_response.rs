//! What Maxout units learned: each unit is the max of its linear pieces, so
//! along any line through input space its response is piecewise linear.

use burn::tensor::{Device, Tensor, TensorData};
use recipe_models::Mlp;
use recipe_train::TrainError;

use crate::plots::{LineChart, Series};

/// One unit's pieces and output along a line `x(t) = a + t (b - a)`.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitResponse {
    /// The unit's index in its layer.
    pub unit: usize,
    /// Each linear piece's value at every `t`.
    pub pieces: Vec<Vec<(f64, f64)>>,
    /// The unit's output (the max of its pieces) at every `t`.
    pub output: Vec<(f64, f64)>,
}

/// The responses of `units` of the first hidden layer of `mlp`, which must
/// be a Maxout layer, along the line from input `a` (t = 0) to input `b`
/// (t = 1), sampled at `steps` points of `t` in `[-1, 2]`.
pub fn first_layer_responses(
    mlp: &Mlp,
    a: &[f32],
    b: &[f32],
    units: &[usize],
    steps: usize,
    device: &Device,
) -> Result<Vec<UnitResponse>, TrainError> {
    let Some(layer) = mlp.layers.first().filter(|layer| layer.pieces() > 1) else {
        return Err(TrainError::Learner(
            "the first hidden layer is not a Maxout layer".to_string(),
        ));
    };
    if a.len() != b.len() || steps < 2 {
        return Err(TrainError::Learner(
            "two inputs of one size and at least 2 steps are needed".to_string(),
        ));
    }
    let ts: Vec<f64> = (0..steps)
        .map(|i| -1.0 + 3.0 * i as f64 / (steps - 1) as f64)
        .collect();
    let inputs: Vec<f32> = ts
        .iter()
        .flat_map(|&t| a.iter().zip(b).map(move |(&x, &y)| x + t as f32 * (y - x)))
        .collect();
    let x = Tensor::<2>::from_data(TensorData::new(inputs, [steps, a.len()]), device);
    let pieces: Vec<f32> = layer
        .linear
        .forward(x)
        .into_data()
        .try_to_vec()
        .map_err(|e| TrainError::Learner(format!("{e:?}")))?;
    let count = layer.pieces();
    let width = layer.linear.weight.dims()[1] / count;
    let value = |step: usize, unit: usize, piece: usize| {
        pieces[(step * width + unit) * count + piece] as f64
    };
    Ok(units
        .iter()
        .filter(|&&unit| unit < width)
        .map(|&unit| UnitResponse {
            unit,
            pieces: (0..count)
                .map(|piece| {
                    ts.iter()
                        .enumerate()
                        .map(|(step, &t)| (t, value(step, unit, piece)))
                        .collect()
                })
                .collect(),
            output: ts
                .iter()
                .enumerate()
                .map(|(step, &t)| {
                    let best = (0..count)
                        .map(|piece| value(step, unit, piece))
                        .fold(f64::NEG_INFINITY, f64::max);
                    (t, best)
                })
                .collect(),
        })
        .collect())
}

/// Each unit's output (solid) over its pieces (dashed), one colour per unit.
pub fn response_chart(title: &str, responses: &[UnitResponse]) -> LineChart {
    let mut chart = LineChart::new(
        title,
        "t, along x = a + t (b - a) between two test images",
        "unit value (solid: max, dashed: pieces)",
    );
    for (index, response) in responses.iter().enumerate() {
        chart = chart.with(
            Series::new(format!("unit {}", response.unit), response.output.clone()).colored(index),
        );
        for piece in &response.pieces {
            chart = chart.with(
                Series::new("piece", piece.clone())
                    .colored(index)
                    .dashed()
                    .unlabelled(),
            );
        }
    }
    chart
}

#[cfg(test)]
mod tests {
    use super::*;
    use recipe_models::{ActivationConfig, MlpConfig};

    /// The output is the max of the pieces, and each piece is linear in t
    /// (equal second differences of zero, up to rounding).
    #[test]
    fn responses_are_piecewise_linear() {
        let device = Device::flex();
        let mlp = MlpConfig::new(4, vec![3], 2)
            .with_activation(vec![ActivationConfig::maxout(3)])
            .init(&device)
            .unwrap();
        let responses = first_layer_responses(
            &mlp,
            &[0.0, 0.5, 1.0, 0.2],
            &[1.0, 0.0, 0.3, 0.9],
            &[0, 2, 7],
            31,
            &device,
        )
        .unwrap();
        assert_eq!(responses.len(), 2, "unit 7 does not exist");
        for response in &responses {
            assert_eq!(response.pieces.len(), 3);
            for piece in &response.pieces {
                for w in piece.windows(3) {
                    let second = w[2].1 - 2.0 * w[1].1 + w[0].1;
                    assert!(second.abs() < 1e-5, "{second}");
                }
            }
            for (step, &(_, out)) in response.output.iter().enumerate() {
                let max = response
                    .pieces
                    .iter()
                    .map(|p| p[step].1)
                    .fold(f64::MIN, f64::max);
                assert_eq!(out, max);
            }
        }
        let relu = MlpConfig::new(4, vec![3], 2).init(&device).unwrap();
        assert!(first_layer_responses(&relu, &[0.0; 4], &[1.0; 4], &[0], 5, &device).is_err());
    }
}
