//! The lecture's first claim: a deep sigmoid MLP does worse than a shallow one
//! *on the training data* (vanishing gradients), while ReLU and Maxout at the
//! same depth train fine.

use std::path::Path;

use burn::tensor::Device;
use recipe_data::load_splits;
use recipe_models::{ActivationConfig, MlpConfig};
use recipe_train::{History, LayerGradient, OptimizerConfig, TrainConfig, TrainError};

use super::train_seeded;
use serde::{Deserialize, Serialize};

/// Train the same MLP at several depths with several activations.
#[derive(Debug, Clone)]
pub struct DepthSweep {
    /// Activations to compare.
    pub activations: Vec<ActivationConfig>,
    /// Numbers of hidden layers.
    pub depths: Vec<usize>,
    /// Width of every hidden layer (units, for Maxout).
    pub width: usize,
    /// Everything else (dataset, optimizer, epochs, ...); its `model` is replaced per run.
    pub base: TrainConfig,
}

/// One run of a [`DepthSweep`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DepthSweepRow {
    /// The activation.
    pub activation: String,
    /// Hidden layers.
    pub depth: usize,
    /// Final training accuracy (no dropout).
    pub train_accuracy: f64,
    /// Final training loss.
    pub train_loss: f64,
    /// Test accuracy.
    pub test_accuracy: f64,
    /// Training seconds.
    pub seconds: f64,
    /// The run's per-epoch history.
    #[serde(default)]
    pub history: History,
    /// Each weight's gradient norm per epoch, when the sweep records them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layer_gradients: Vec<LayerGradient>,
}

impl DepthSweepRow {
    /// The gradient norm of each weight at the run's first step, first
    /// layer to output (empty when not recorded).
    pub fn first_step_gradients(&self) -> Vec<(&str, f64)> {
        self.layer_gradients
            .iter()
            .filter(|r| r.epoch == 1)
            .map(|r| (r.parameter.as_str(), r.grad_norm_first_step))
            .collect()
    }

    /// How far each weight moved from its initial values by the end of the
    /// run (`||W - W0|| / ||W0||` at the last epoch's last step), first
    /// layer to output (empty when not recorded).
    pub fn final_movements(&self) -> Vec<(&str, f64)> {
        let last = self.layer_gradients.iter().map(|r| r.epoch).max();
        self.layer_gradients
            .iter()
            .filter(|r| Some(r.epoch) == last)
            .map(|r| (r.parameter.as_str(), r.weight_movement))
            .collect()
    }

    /// The first hidden layer's final movement over the last hidden
    /// layer's (the output layer left out).
    pub fn first_to_last_hidden_movement(&self) -> Option<f64> {
        hidden_ratio(self.final_movements())
    }

    /// The first-step gradient norm of the first hidden layer's weights
    /// over the last hidden layer's (the output layer left out).
    pub fn first_to_last_hidden_ratio(&self) -> Option<f64> {
        hidden_ratio(self.first_step_gradients())
    }
}

/// The first hidden layer's value over the last hidden layer's, of values
/// by parameter in the network's order (`layers.*` are the hidden layers).
fn hidden_ratio(values: Vec<(&str, f64)>) -> Option<f64> {
    let hidden: Vec<f64> = values
        .into_iter()
        .filter(|(name, _)| name.starts_with("layers."))
        .map(|(_, value)| value)
        .collect();
    match (hidden.first(), hidden.last()) {
        (Some(first), Some(last)) if hidden.len() >= 2 && *last > 0.0 => Some(first / last),
        _ => None,
    }
}

impl DepthSweep {
    /// The lecture's setting: sigmoid vs ReLU vs Maxout (2 pieces) at depths
    /// 1, 3, 5, 7, 9, width 500, plain SGD with learning rate 0.1, batch 100,
    /// `auto` init (Glorot for sigmoid and Maxout, He for ReLU).
    pub fn lecture(epochs: usize, train_limit: Option<usize>) -> Self {
        let mut base = TrainConfig::new(MlpConfig::new(784, vec![500], 10));
        base.fit.epochs = epochs;
        base.fit.record_layer_gradients = true;
        base.data.split.train_limit = train_limit;
        Self {
            activations: vec![
                ActivationConfig::sigmoid(),
                ActivationConfig::relu(),
                ActivationConfig::maxout(2),
            ],
            depths: vec![1, 3, 5, 7, 9],
            width: 500,
            base,
        }
    }

    /// Many activations at one depth (3 hidden layers of 500), trained with
    /// Adam (learning rate 1e-3), `auto` init: the ReLU variants of the
    /// lecture, Maxout, and the saturating sigmoid and tanh.
    pub fn activations(epochs: usize, train_limit: Option<usize>) -> Self {
        let mut base = TrainConfig::new(MlpConfig::new(784, vec![500], 10));
        base.fit.optimizer = OptimizerConfig::adam();
        base.fit.learning_rate = 1e-3;
        base.fit.epochs = epochs;
        base.data.split.train_limit = train_limit;
        let activations = [
            "sigmoid",
            "tanh",
            "relu",
            "leaky-relu",
            "prelu",
            "elu",
            "selu",
            "gelu",
            "silu",
            "maxout:2",
        ];
        Self {
            activations: activations
                .iter()
                .map(|name| name.parse().expect("a known activation"))
                .collect(),
            depths: vec![3],
            width: 500,
            base,
        }
    }

    /// Maxout with 2 to 5 pieces against ReLU at one depth (3 hidden layers
    /// of 500 units), Adam with learning rate 1e-3.
    pub fn maxout_pieces(epochs: usize, train_limit: Option<usize>) -> Self {
        let mut sweep = Self::activations(epochs, train_limit);
        sweep.activations = std::iter::once(ActivationConfig::relu())
            .chain((2..=5).map(ActivationConfig::maxout))
            .collect();
        sweep
    }

    /// Runs every (activation, depth) pair, calling `on_row` after each. With
    /// `out_dir`, each run keeps its artifacts in `out_dir/<activation>-<depth>`.
    pub fn run(
        &self,
        device: &Device,
        out_dir: Option<&Path>,
        mut on_row: impl FnMut(&DepthSweepRow),
    ) -> Result<Vec<DepthSweepRow>, TrainError> {
        let splits = load_splits(
            self.base.image_set()?,
            self.base.data.data_dir.as_deref(),
            &self.base.data.split,
        )?;
        let mut rows = Vec::new();
        for activation in &self.activations {
            for &depth in &self.depths {
                let mut config = self.base.clone();
                config.network = MlpConfig::new(
                    splits.train.image_size(),
                    vec![self.width; depth],
                    splits.kind.classes(),
                )
                .with_activation(vec![activation.clone()])
                .into();
                let out =
                    out_dir.map(|dir| dir.join(format!("{}-{depth}", activation_slug(activation))));
                let name = config.network.describe();
                let trained = train_seeded(&config, &splits, device, name, out)?;
                let row = DepthSweepRow {
                    activation: activation.to_string(),
                    depth,
                    train_accuracy: trained.summary.train_accuracy,
                    train_loss: trained.summary.train_loss,
                    test_accuracy: trained.summary.test_accuracy,
                    seconds: trained.summary.train_seconds,
                    history: trained.history.clone(),
                    layer_gradients: trained.layer_gradients.clone(),
                };
                on_row(&row);
                rows.push(row);
            }
        }
        Ok(rows)
    }

    /// Training accuracy (solid) and test accuracy (dashed) against depth,
    /// one colour per activation.
    pub fn depth_chart(&self, rows: &[DepthSweepRow]) -> crate::plots::LineChart {
        use crate::plots::{LineChart, Series};
        let mut chart = LineChart::new(
            "Accuracy by depth (solid: training, dashed: test)",
            "hidden layers",
            "accuracy",
        );
        for (index, activation) in self.activations.iter().enumerate() {
            let name = activation.to_string();
            let points = |f: fn(&DepthSweepRow) -> f64| {
                rows.iter()
                    .filter(|r| r.activation == name)
                    .map(|r| (r.depth as f64, f(r)))
                    .collect::<Vec<_>>()
            };
            chart = chart
                .with(Series::new(name.clone(), points(|r| r.train_accuracy)).colored(index))
                .with(
                    Series::new(name.clone(), points(|r| r.test_accuracy))
                        .colored(index)
                        .dashed()
                        .unlabelled(),
                );
        }
        chart
    }

    /// The gradient norm of each layer's weights at the first step
    /// (log10), first hidden layer to output, one line per activation at
    /// the greatest depth: the vanishing gradient itself.
    pub fn gradient_chart(&self, rows: &[DepthSweepRow]) -> crate::plots::LineChart {
        self.by_layer_chart(
            rows,
            "Gradient by layer at the first step",
            "log10(gradient norm of the weights)",
            DepthSweepRow::first_step_gradients,
        )
    }

    /// How far each layer's weights moved from their initial values by the
    /// end of training (log10 of `||W - W0|| / ||W0||`), first hidden layer
    /// to output, one line per activation at the greatest depth: the first
    /// layers of the sigmoid net stay nearly where they started.
    pub fn movement_chart(&self, rows: &[DepthSweepRow]) -> crate::plots::LineChart {
        self.by_layer_chart(
            rows,
            "Weight movement by layer after training",
            "log10(||W - W0|| / ||W0||)",
            DepthSweepRow::final_movements,
        )
    }

    /// One line per activation at the greatest depth: log10 of a per-layer
    /// value (`per_layer`, first hidden layer to output) against the layer.
    fn by_layer_chart(
        &self,
        rows: &[DepthSweepRow],
        title: &str,
        y_label: &str,
        per_layer: fn(&DepthSweepRow) -> Vec<(&str, f64)>,
    ) -> crate::plots::LineChart {
        use crate::plots::{LineChart, Series};
        let depth = self.depths.iter().copied().max().unwrap_or(0);
        let mut chart = LineChart::new(
            format!("{title}, {depth} hidden layers"),
            "layer (1: first hidden, last: output)",
            y_label,
        );
        for (index, activation) in self.activations.iter().enumerate() {
            let name = activation.to_string();
            let Some(row) = rows
                .iter()
                .find(|r| r.activation == name && r.depth == depth)
            else {
                continue;
            };
            let points = per_layer(row)
                .into_iter()
                .enumerate()
                .filter(|(_, (_, value))| *value > 0.0)
                .map(|(layer, (_, value))| ((layer + 1) as f64, value.log10()))
                .collect();
            chart = chart.with(Series::new(name, points).colored(index));
        }
        chart
    }

    /// A Markdown table: one line per depth, one column per activation, each
    /// cell `train accuracy / test accuracy`.
    pub fn markdown_table(&self, rows: &[DepthSweepRow]) -> String {
        let names: Vec<String> = self.activations.iter().map(|a| a.to_string()).collect();
        let mut table = format!(
            "| hidden layers | {} |\n|---|{}\n",
            names
                .iter()
                .map(|n| format!("{n} train / test"))
                .collect::<Vec<_>>()
                .join(" | "),
            "---|".repeat(names.len())
        );
        for &depth in &self.depths {
            let cells: Vec<String> = names
                .iter()
                .map(|name| {
                    rows.iter()
                        .find(|r| r.depth == depth && &r.activation == name)
                        .map_or("-".to_string(), |r| {
                            format!("{:.3} / {:.3}", r.train_accuracy, r.test_accuracy)
                        })
                })
                .collect();
            table.push_str(&format!("| {depth} | {} |\n", cells.join(" | ")));
        }
        table
    }
}

fn activation_slug(activation: &ActivationConfig) -> String {
    activation.to_string().replace([':', '(', ')'], "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_a_line_per_depth_and_a_column_per_activation() {
        let sweep = DepthSweep::lecture(1, None);
        let rows = vec![DepthSweepRow {
            activation: "relu".into(),
            depth: 3,
            train_accuracy: 0.99,
            train_loss: 0.05,
            test_accuracy: 0.97,
            seconds: 1.0,
            history: History::default(),
            layer_gradients: Vec::new(),
        }];
        let table = sweep.markdown_table(&rows);
        assert_eq!(table.lines().count(), 2 + 5);
        assert!(table.contains("| 3 | - | 0.990 / 0.970 | - |"), "{table}");
        assert!(table.starts_with("| hidden layers | sigmoid train / test | relu"));
    }
}
