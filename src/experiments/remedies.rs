//! What `recipe diagnose --apply` tries: the remedies the flowchart suggests
//! for a verdict, as variants of the diagnosed run.

use recipe_models::{ActivationConfig, InitConfig, MlpConfig};
use recipe_train::{
    EarlyStoppingConfig, FitConfig, MaxNormConfig, OptimizerConfig, Regularizer, TrainConfig,
    TrainError, Verdict,
};

use crate::experiments::{Variant, with_dropout};

/// The diagnosed run itself, then one variant per remedy for `verdict`.
/// Only for recipe's MLP (an error naming `network` otherwise): the remedies
/// change its activation and dropout.
pub fn remedies(verdict: Verdict, run: &TrainConfig) -> Result<Vec<Variant>, TrainError> {
    let diagnosed = run.mlp()?;
    let mut variants = vec![Variant::new("as diagnosed", run.clone())];
    let with = |change: &dyn Fn(&mut MlpConfig, &mut FitConfig)| {
        let mut config = run.clone();
        let mut mlp = diagnosed.clone();
        change(&mut mlp, &mut config.fit);
        config.network = mlp.into();
        config
    };
    match verdict {
        Verdict::Optimization => {
            // Undo any overfitting fix first: it can only hurt here.
            let undo_overfitting_fixes = |m: &mut MlpConfig, f: &mut FitConfig| {
                m.dropout = 0.0;
                m.input_dropout = 0.0;
                m.alpha_dropout = 0.0;
                m.dropconnect = 0.0;
                f.regularizer = None;
                f.max_norm = None;
                f.early_stopping = None;
            };
            let relu = with(&|m, f| {
                undo_overfitting_fixes(m, f);
                m.activation = vec![ActivationConfig::relu()];
                m.initializer = InitConfig::Auto;
            });
            let maxout = with(&|m, f| {
                undo_overfitting_fixes(m, f);
                m.activation = vec![ActivationConfig::maxout(2)];
                m.initializer = InitConfig::Auto;
            });
            let adam = with(&|m, f| {
                undo_overfitting_fixes(m, f);
                f.optimizer = OptimizerConfig::adam();
                f.learning_rate = f.optimizer.default_learning_rate();
            });
            variants.push(Variant::new("relu, init auto", relu));
            variants.push(Variant::new("maxout:2, init auto", maxout));
            variants.push(Variant::new("adam lr 1e-3", adam));
        }
        Verdict::Overfitting => {
            variants.push(Variant::new(
                "early stopping, patience 3, restore best",
                with(&|_, f| {
                    f.early_stopping = Some(EarlyStoppingConfig {
                        patience: 3,
                        restore_best_weights: true,
                        ..EarlyStoppingConfig::default()
                    })
                }),
            ));
            variants.push(Variant::new(
                "L2 1e-4",
                with(&|_, f| f.regularizer = Some(Regularizer::L2 { lambda: 1e-4 })),
            ));
            let dropout = with_dropout(&with(&|m, _| m.alpha_dropout = 0.0))?;
            let mut max_norm = dropout.clone();
            max_norm.fit.max_norm = Some(MaxNormConfig::new(1.0)?);
            variants.push(Variant::new("dropout 0.2 in / 0.5 hidden", dropout));
            variants.push(Variant::new("dropout + max-norm 1", max_norm));
        }
        Verdict::Good => {}
    }
    Ok(variants)
}

/// The shallow baseline the flowchart compares a deep net against: the same
/// run with only its first hidden layer (`None` for a one-layer net).
/// `None` for a network of your own, too: recipe cannot make it shallower.
pub fn shallow_baseline(run: &TrainConfig) -> Option<TrainConfig> {
    let mut mlp = run.network.mlp()?.clone();
    if mlp.hidden.len() < 2 {
        return None;
    }
    mlp.hidden.truncate(1);
    mlp.activation.truncate(1);
    Some(TrainConfig {
        network: mlp.into(),
        ..run.clone()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> TrainConfig {
        let mut config = TrainConfig::new(
            MlpConfig::new(784, vec![500; 5], 10)
                .with_activation(vec![ActivationConfig::sigmoid()])
                .with_dropout(0.5),
        );
        config.fit.regularizer = Some(Regularizer::L2 { lambda: 1e-4 });
        config
    }

    #[test]
    fn optimization_remedies_drop_overfitting_fixes() {
        let variants = remedies(Verdict::Optimization, &run()).unwrap();
        assert_eq!(variants[0].name, "as diagnosed");
        for variant in &variants[1..] {
            let mlp = variant.config.mlp().unwrap();
            assert_eq!(mlp.dropout, 0.0, "{}", variant.name);
            assert!(variant.config.fit.regularizer.is_none(), "{}", variant.name);
        }
        assert_eq!(
            variants[1].config.mlp().unwrap().activation,
            vec![ActivationConfig::relu()]
        );
    }

    #[test]
    fn overfitting_remedies_add_one_fix_each() {
        let variants = remedies(Verdict::Overfitting, &run()).unwrap();
        assert_eq!(variants.len(), 5);
        assert!(variants[1].config.fit.early_stopping.is_some());
        assert!(remedies(Verdict::Good, &run()).unwrap().len() == 1);
    }

    #[test]
    fn the_baseline_is_the_first_layer_alone() {
        let baseline = shallow_baseline(&run()).unwrap();
        assert_eq!(baseline.mlp().unwrap().hidden, vec![500]);
        let mut shallow = run();
        shallow.mlp_mut().unwrap().hidden = vec![500];
        assert!(shallow_baseline(&shallow).is_none());
    }
}
