//! What `recipe diagnose --apply` tries: the remedies the diagnosis
//! suggests, each applied to the diagnosed run ([`Remedy::apply`]).

use recipe_train::{Diagnosis, TrainConfig, TrainError};

use crate::experiments::Variant;

/// The diagnosed run itself, then one variant per run that the diagnosis'
/// suggestions make of it (a suggestion may give two runs, e.g. ReLU and
/// Maxout for a saturating activation, or none, e.g. more data). A variant
/// two suggestions make alike is tried once.
pub fn remedies(diagnosis: &Diagnosis, run: &TrainConfig) -> Result<Vec<Variant>, TrainError> {
    let mut variants = vec![Variant::new("as diagnosed", run.clone())];
    for remedy in &diagnosis.suggestions {
        for (name, config) in remedy.apply(run)? {
            if !variants.iter().any(|v| v.name == name) {
                variants.push(Variant::new(name, config));
            }
        }
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
    use recipe_models::{ActivationConfig, MlpConfig};
    use recipe_train::{Regularizer, Remedy, Verdict};

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

    fn diagnosis(verdict: Verdict, suggestions: Vec<Remedy>) -> Diagnosis {
        Diagnosis {
            verdict,
            evidence: Vec::new(),
            checks: Vec::new(),
            suggestions,
            warnings: Vec::new(),
        }
    }

    /// Each suggestion becomes its runs, in the diagnosis' order, once.
    #[test]
    fn the_suggestions_become_the_variants() {
        let found = diagnosis(
            Verdict::Optimization,
            vec![
                Remedy::NonSaturatingActivation,
                Remedy::OtherActivation,
                Remedy::AdaptiveOptimizer,
            ],
        );
        let names: Vec<String> = remedies(&found, &run())
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(
            names,
            [
                "as diagnosed",
                "relu, init auto",
                "maxout:2, init auto",
                "adam lr 1e-3"
            ]
        );
        let good = diagnosis(Verdict::Good, vec![Remedy::Nothing]);
        assert_eq!(remedies(&good, &run()).unwrap().len(), 1);
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
