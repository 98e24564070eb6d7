//! What `recipe diagnose --apply` tries: the remedies the flowchart suggests
//! for a verdict, as variants of the diagnosed run.

use recipe_models::{ActivationConfig, InitConfig};
use recipe_train::{
    EarlyStoppingConfig, MaxNormConfig, OptimizerConfig, Regularizer, TrainConfig, TrainError,
    Verdict,
};

use crate::experiments::{Variant, with_dropout};

/// The diagnosed run itself, then one variant per remedy for `verdict`.
pub fn remedies(verdict: Verdict, run: &TrainConfig) -> Result<Vec<Variant>, TrainError> {
    let mut variants = vec![Variant::new("as diagnosed", run.clone())];
    let with = |change: &dyn Fn(&mut TrainConfig)| {
        let mut config = run.clone();
        change(&mut config);
        config
    };
    match verdict {
        Verdict::Optimization => {
            // Undo any overfitting fix first: it can only hurt here.
            let base = with(&|c| {
                c.model.dropout = 0.0;
                c.model.input_dropout = 0.0;
                c.model.alpha_dropout = 0.0;
                c.model.dropconnect = 0.0;
                c.regularizer = None;
                c.max_norm = None;
                c.early_stopping = None;
            });
            let relu = {
                let mut c = base.clone();
                c.model.activation = vec![ActivationConfig::relu()];
                c.model.initializer = InitConfig::Auto;
                c
            };
            let maxout = {
                let mut c = base.clone();
                c.model.activation = vec![ActivationConfig::maxout(2)];
                c.model.initializer = InitConfig::Auto;
                c
            };
            let adam = {
                let mut c = base.clone();
                c.optimizer = OptimizerConfig::adam();
                c.learning_rate = 1e-3;
                c
            };
            variants.push(Variant::new("relu, init auto", relu));
            variants.push(Variant::new("maxout:2, init auto", maxout));
            variants.push(Variant::new("adam lr 1e-3", adam));
        }
        Verdict::Overfitting => {
            variants.push(Variant::new(
                "early stopping, patience 3, restore best",
                with(&|c| {
                    c.early_stopping = Some(EarlyStoppingConfig {
                        patience: 3,
                        restore_best_weights: true,
                        ..EarlyStoppingConfig::default()
                    })
                }),
            ));
            variants.push(Variant::new(
                "L2 1e-4",
                with(&|c| c.regularizer = Some(Regularizer::L2 { lambda: 1e-4 })),
            ));
            variants.push(Variant::new(
                "dropout 0.2 in / 0.5 hidden",
                with_dropout(&with(&|c| c.model.alpha_dropout = 0.0)),
            ));
            variants.push(Variant::new(
                "dropout + max-norm 1",
                TrainConfig {
                    max_norm: Some(MaxNormConfig::new(1.0)?),
                    ..with_dropout(&with(&|c| c.model.alpha_dropout = 0.0))
                },
            ));
        }
        Verdict::Good => {}
    }
    Ok(variants)
}

/// The shallow baseline the flowchart compares a deep net against: the same
/// run with only its first hidden layer (`None` for a one-layer net).
pub fn shallow_baseline(run: &TrainConfig) -> Option<TrainConfig> {
    if run.model.hidden.len() < 2 {
        return None;
    }
    let mut config = run.clone();
    config.model.hidden.truncate(1);
    config.model.activation.truncate(1);
    Some(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use recipe_models::MlpConfig;

    fn run() -> TrainConfig {
        let mut config = TrainConfig::new(
            MlpConfig::new(784, vec![500; 5], 10)
                .with_activation(vec![ActivationConfig::sigmoid()])
                .with_dropout(0.5),
        );
        config.regularizer = Some(Regularizer::L2 { lambda: 1e-4 });
        config
    }

    #[test]
    fn optimization_remedies_drop_overfitting_fixes() {
        let variants = remedies(Verdict::Optimization, &run()).unwrap();
        assert_eq!(variants[0].name, "as diagnosed");
        for variant in &variants[1..] {
            assert_eq!(variant.config.model.dropout, 0.0, "{}", variant.name);
            assert!(variant.config.regularizer.is_none(), "{}", variant.name);
        }
        assert_eq!(
            variants[1].config.model.activation,
            vec![ActivationConfig::relu()]
        );
    }

    #[test]
    fn overfitting_remedies_add_one_fix_each() {
        let variants = remedies(Verdict::Overfitting, &run()).unwrap();
        assert_eq!(variants.len(), 5);
        assert!(variants[1].config.early_stopping.is_some());
        assert!(remedies(Verdict::Good, &run()).unwrap().len() == 1);
    }

    #[test]
    fn the_baseline_is_the_first_layer_alone() {
        let baseline = shallow_baseline(&run()).unwrap();
        assert_eq!(baseline.model.hidden, vec![500]);
        let mut shallow = run();
        shallow.model.hidden = vec![500];
        assert!(shallow_baseline(&shallow).is_none());
    }
}
