//! Which of a classifier's hooks its optimizer runs itself: L1/L2 penalty
//! gradients inside the update, constraints right after each parameter's
//! update.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use burn::module::ParamGroup;
use burn::optim::ModuleOptimizer;

use crate::optimizer_kernels::build_installed_folded;
use crate::penalty_gradient::folded_penalties;
use crate::{Classifier, Classify, FoldedHooks, OptimizerConfig, ParamConstraints};

/// The optimizer for `config` and the classifier to train with it, with as
/// much of the classifier's hooks as the installed kernels' optimizer can
/// run inside its own step
/// ([`OptimizerKernels::build_folded`](crate::OptimizerKernels::build_folded)):
///
/// - the network's L1/L2 penalties, whose gradients the update adds (the
///   classifier's step then leaves them out and only reports their value);
///   not when something reads the gradients between the step and the
///   optimizer (gradient clipping, per-layer gradient norms), which must
///   see the penalty's part;
/// - every constraint, any [`Constraint`](crate::Constraint) yours
///   included, applied to each parameter right after its own update rather
///   than to the whole network after the optimizer: the same values, read
///   while they are still in cache (the classifier then skips its own
///   pass). A parameter the optimizer does not step (it had no gradient)
///   is then not constrained either.
///
/// Where the kernels build no such optimizer, the optimizer is
/// `config`'s and the classifier keeps every hook.
///
/// The trainer calls it; a program that gives recipe's [`Classifier`] to
/// Burn's own `Learner` calls it to get the same optimizer.
pub fn fold_hooks<N: Classify>(
    config: &OptimizerConfig,
    mut model: Classifier<N>,
) -> (ModuleOptimizer, Classifier<N>) {
    let hooks = &model.hooks;
    let reads_gradients = hooks.gradient_clipping.is_some() || hooks.layer_gradients.is_some();
    let penalties: BTreeMap<String, (f64, f64)> = if reads_gradients {
        BTreeMap::new()
    } else {
        folded_penalties(&model.net, &hooks.penalties)
            .into_iter()
            .map(|(path, l1, l2)| (path, (l1, l2)))
            .collect()
    };
    let constrained = ParamConstraints::of(&model.net, &hooks.constraints);
    if penalties.is_empty() && constrained.is_empty() {
        return (config.init(), model);
    }
    let groups = groups(&penalties, constrained);
    match build_installed_folded(config, &groups) {
        Some(optimizer) => {
            if !penalties.is_empty() {
                let paths: BTreeSet<String> = penalties.into_keys().collect();
                model.hooks.folded_penalties = Some(Arc::new(paths));
            }
            model.hooks.constraints_folded = !model.hooks.constraints.is_empty();
            (optimizer, model)
        }
        None => (config.init(), model),
    }
}

/// One group per constrained parameter (with its penalty, if folded), and
/// one per penalty strength for the other penalized parameters.
fn groups(
    penalties: &BTreeMap<String, (f64, f64)>,
    constrained: Vec<ParamConstraints>,
) -> Vec<FoldedHooks> {
    let constrained_paths: BTreeSet<String> =
        constrained.iter().map(|c| c.info.path.clone()).collect();
    let mut by_strength: Vec<((f64, f64), Vec<String>)> = Vec::new();
    for (path, strength) in penalties {
        if constrained_paths.contains(path) {
            continue;
        }
        match by_strength.iter_mut().find(|(s, _)| s == strength) {
            Some((_, paths)) => paths.push(path.clone()),
            None => by_strength.push((*strength, vec![path.clone()])),
        }
    }
    let mut groups: Vec<FoldedHooks> = by_strength
        .into_iter()
        .map(|((l1, l2), paths)| FoldedHooks::penalty(classifier_group(paths.iter()), l1, l2))
        .collect();
    for constraints in constrained {
        let path = constraints.info.path.clone();
        let (l1, l2) = penalties.get(&path).copied().unwrap_or((0.0, 0.0));
        groups.push(
            FoldedHooks::penalty(classifier_group([&path]), l1, l2).with_constraints(constraints),
        );
    }
    groups
}

/// The group of the network's parameters at `paths`: the optimizer steps
/// the classifier, whose network is its `net` field.
pub(crate) fn classifier_group<'a>(paths: impl IntoIterator<Item = &'a String>) -> ParamGroup {
    ParamGroup::from_paths(paths.into_iter().map(|p| format!("net.{p}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaxNorm, ParamInfo, ParamSelector, StepHooks, WeightConstraint};
    use burn::tensor::Device;
    use recipe_models::{Mlp, MlpConfig};

    fn constrained(path: &str) -> ParamConstraints {
        ParamConstraints {
            info: ParamInfo::new(path, "Linear", vec![4, 3]),
            constraints: vec![Arc::new(MaxNorm { max_norm: 1.0 })],
        }
    }

    /// A constrained parameter gets a group of its own, with its penalty;
    /// the other penalized parameters share one group per strength.
    #[test]
    fn a_group_per_constrained_parameter_and_per_strength() {
        let penalties: BTreeMap<String, (f64, f64)> = [
            ("a.weight", (0.0, 1e-4)),
            ("a.bias", (0.0, 1e-4)),
            ("b.weight", (1e-5, 0.0)),
            ("c.weight", (0.0, 1e-4)),
        ]
        .into_iter()
        .map(|(path, strength)| (path.to_string(), strength))
        .collect();
        let groups = groups(
            &penalties,
            vec![constrained("a.weight"), constrained("d.weight")],
        );
        let described: Vec<(f64, f64, Option<String>)> = groups
            .iter()
            .map(|g| {
                (
                    g.l1,
                    g.l2,
                    g.constraints.as_ref().map(|c| c.info.path.clone()),
                )
            })
            .collect();
        assert_eq!(
            described,
            [
                (0.0, 1e-4, None),
                (1e-5, 0.0, None),
                (0.0, 1e-4, Some("a.weight".into())),
                (0.0, 0.0, Some("d.weight".into())),
            ]
        );
        let id = burn::module::ParamId::new();
        let matches = |group: &FoldedHooks, path: &str| group.group.matches(&id, Some(path));
        assert!(matches(&groups[2], "net.a.weight") && !matches(&groups[2], "net.a.bias"));
        assert!(matches(&groups[0], "net.a.bias") && matches(&groups[0], "net.c.weight"));
        assert!(
            !matches(&groups[0], "net.a.weight"),
            "a.weight is in its own group"
        );
        assert!(!groups[3].has_penalty());
    }

    /// Without installed kernels there is no folding optimizer: the step
    /// keeps its constraints.
    #[test]
    fn without_kernels_the_step_keeps_its_constraints() {
        let device = Device::flex().autodiff();
        let net: Mlp = MlpConfig::new(4, vec![3], 2).init(&device).unwrap();
        let constraint = WeightConstraint::new(MaxNorm { max_norm: 1.0 }, ParamSelector::default());
        let hooks = StepHooks::new(vec![], vec![constraint]);
        let (_, classifier) =
            fold_hooks(&OptimizerConfig::adam(), Classifier::with_hooks(net, hooks));
        assert!(!classifier.hooks.constraints_folded);
        assert_eq!(
            ParamConstraints::of(&classifier.net, &classifier.hooks.constraints).len(),
            2
        );
    }
}
