//! Optimizers of your own, run by recipe's trainer exactly as the built-in
//! ones of [`OptimizerConfig`](crate::OptimizerConfig) are: with every
//! hook, checkpointed with their state, recorded in `config.json` and
//! continued by resume.

use std::fmt;
use std::sync::Arc;

use burn::optim::ModuleOptimizer;

use crate::registry::{Settings, registered_wrapper};

/// An optimizer. Implement it for your own (any Burn
/// [`Optimizer`](burn::optim::Optimizer), Burn's or yours, turned into a
/// [`ModuleOptimizer`]), [register] it under its [`OptimizerFn::name`], and
/// set [`FitConfig::optimizer`](crate::FitConfig::optimizer) to
/// [`OptimizerConfig::custom`](crate::OptimizerConfig::custom)`(yours)`.
/// `config.json` records it as `{"name": NAME, "settings": ...}` (its
/// settings are its `Serialize` form), as it records a built-in one; Burn
/// checkpoints its per-parameter state, and a resumed run rebuilds it from
/// its settings and continues from that state.
///
/// Penalties and constraints run around it as around Burn's own
/// optimizers (the penalty's gradient joins the loss's, constraints follow
/// each step); only recipe's fused optimizers take them inside their
/// update.
///
/// [register]: crate::register_optimizer
pub trait OptimizerFn: Settings + Send + Sync + fmt::Debug {
    /// The name it is registered under.
    fn name(&self) -> &str;

    /// A fresh optimizer for a whole module (no state yet).
    fn init(&self) -> ModuleOptimizer;

    /// The learning rate a run gets when none is given.
    fn default_learning_rate(&self) -> f64;

    /// Whether its settings make sense; if not, why (checked before
    /// training starts).
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

/// An optimizer of your own inside [`OptimizerConfig`](crate::OptimizerConfig):
/// equal to another when their names and settings are.
#[derive(Debug, Clone)]
pub struct CustomOptimizer(pub Arc<dyn OptimizerFn>);

registered_wrapper!(CustomOptimizer, optimizers);

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use burn::module::Param;
    use burn::optim::{GradientsParams, LearningRate, Optimizer};
    use burn::tensor::{Device, Tensor};

    use super::*;
    use crate::{OptimizerConfig, register_optimizer};

    /// Steps each weight by `scale` times the learning rate against its
    /// gradient's sign (a stand-in for a user's own).
    #[derive(Debug, Clone, Serialize, Deserialize)]
    struct SignDescent {
        scale: f64,
    }

    impl Optimizer for SignDescent {
        type State<const D: usize> = ();

        fn step<const D: usize>(
            &self,
            lr: LearningRate,
            tensor: Tensor<D>,
            grad: Tensor<D>,
            _state: Option<()>,
        ) -> (Tensor<D>, Option<()>) {
            (tensor - grad.sign().mul_scalar(lr * self.scale), None)
        }

        fn to_device<const D: usize>(state: (), _device: &Device) {
            state
        }
    }

    impl OptimizerFn for SignDescent {
        fn name(&self) -> &str {
            "test-sign-descent"
        }

        fn init(&self) -> ModuleOptimizer {
            self.clone().into()
        }

        fn default_learning_rate(&self) -> f64 {
            0.01
        }

        fn check(&self) -> Result<(), String> {
            (self.scale > 0.0)
                .then_some(())
                .ok_or_else(|| format!("scale must be above 0, found {}", self.scale))
        }
    }

    fn registered() {
        // Other tests in this process may have registered it already.
        let _ = register_optimizer::<SignDescent>("test-sign-descent");
    }

    #[test]
    fn a_registered_optimizer_is_parsed_recorded_and_run_like_a_built_in_one() {
        registered();
        let optimizer: OptimizerConfig = r#"test-sign-descent:{"scale":2}"#.parse().unwrap();
        assert_eq!(optimizer.to_string(), r#"test-sign-descent:{"scale":2.0}"#);
        assert_eq!(optimizer.default_learning_rate(), 0.01);
        optimizer.validate().unwrap();
        // Recorded as a built-in one is: its name beside its settings.
        let json = serde_json::to_string(&optimizer).unwrap();
        assert_eq!(
            json,
            r#"{"name":"test-sign-descent","settings":{"scale":2.0}}"#
        );
        assert_eq!(
            serde_json::from_str::<OptimizerConfig>(&json).unwrap(),
            optimizer
        );
        let adam = serde_json::to_string(&OptimizerConfig::adam()).unwrap();
        assert_eq!(
            serde_json::from_str::<OptimizerConfig>(&adam).unwrap(),
            OptimizerConfig::adam()
        );
        // Its own update runs: 1 - 0.1 * 2 * sign(0.5), 1 - 0.1 * 2 * sign(-3).
        let device = Device::flex().autodiff();
        let weights = Param::from_tensor(Tensor::<1>::from_floats([1.0, 1.0], &device));
        let mut grads = GradientsParams::new();
        grads.register(weights.id, Tensor::<1>::from_floats([0.5, -3.0], &device));
        let stepped = optimizer.init().step(0.1, weights, grads);
        let values = stepped.val().to_data().try_to_vec::<f32>().unwrap();
        assert!(
            (values[0] - 0.8).abs() < 1e-6 && (values[1] - 1.2).abs() < 1e-6,
            "{values:?}"
        );
    }

    #[test]
    fn names_taken_or_unknown_and_bad_settings_are_refused() {
        registered();
        let err = register_optimizer::<SignDescent>("test-sign-descent").unwrap_err();
        assert!(err.to_string().contains("not registered yet"), "{err}");
        for built_in in ["adam", "adam-w", "rms-prop", "sgd"] {
            let err = register_optimizer::<SignDescent>(built_in).unwrap_err();
            assert!(err.to_string().contains("built-in"), "{built_in}: {err}");
        }
        let never: OptimizerConfig = r#"test-sign-descent:{"scale":0}"#.parse().unwrap();
        let err = never.validate().unwrap_err().to_string();
        assert!(
            err.contains("`optimizer`")
                && err.contains("test-sign-descent")
                && err.contains("scale"),
            "{err}"
        );
        for (text, needle) in [
            ("test-sign-descent:{scale}", "not JSON"),
            (r#"test-sign-descent:{"step":2}"#, "its settings do not fit"),
            ("test-sign-descent", "its settings do not fit"),
            ("lbfgs", "a registered optimizer's NAME"),
        ] {
            let err = text.parse::<OptimizerConfig>().unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
        let unknown = r#"{"name":"lbfgs","settings":null}"#;
        let err = serde_json::from_str::<OptimizerConfig>(unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("optimizer `lbfgs` is not registered"), "{err}");
        // A built-in one's misspelt field is still named.
        let misspelt = r#"{"name":"adam","beta1":0.9,"beta2":0.999,"epsilon":1e-8,"betta":1}"#;
        let err = serde_json::from_str::<OptimizerConfig>(misspelt)
            .unwrap_err()
            .to_string();
        assert!(err.contains("betta"), "{err}");
    }

    /// Every built-in optimizer's `config.json` name is one a user's cannot
    /// take, so that reading it back never mistakes one for the other.
    #[test]
    fn the_built_in_recorded_names_are_reserved() {
        for name in OptimizerConfig::NAMES.split(", ") {
            let optimizer: OptimizerConfig = name.parse().unwrap();
            let json = serde_json::to_value(&optimizer).unwrap();
            let recorded = json["name"].as_str().unwrap();
            assert!(
                crate::optimizer::RECORDED_NAMES.contains(&recorded),
                "{recorded}"
            );
        }
    }
}
