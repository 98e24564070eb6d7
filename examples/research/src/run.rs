//! The run the SIGKILL test and the `research-train` binary share.

use recipe_data::SplitConfig;
use recipe_models::MlpConfig;
use recipe_train::{
    LrSchedule, OptimizerConfig, ParamSelector, TrainConfig, WeightConstraint, WeightPenalty,
};

use crate::{ClipValue, Orthogonality, Signum, WarmRestarts};

/// An MLP with this crate's activation and residual block, dropout, its
/// penalty on the residual layer, its constraint on every weight and its
/// schedule (warm restarts after 2 epochs, then after 4 more) and its
/// optimizer (Signum, momentum 0.9): 5,000 MNIST training images, 10 epochs.
pub fn research_config() -> anyhow::Result<TrainConfig> {
    crate::register();
    let model = MlpConfig::new(784, vec![128, 128], 10)
        .with_activation(vec!["learned-swish:1.0".parse()?, "residual-relu".parse()?])
        .with_dropout(0.2);
    let mut config = TrainConfig::new(model);
    config.fit.optimizer = OptimizerConfig::custom(Signum { beta: 0.9 });
    config.fit.learning_rate = 1e-3;
    config.data.split = SplitConfig {
        valid_size: 1_000,
        train_limit: Some(5_000),
    };
    config.fit.epochs = 10;
    config.fit.seed = 7;
    config.fit.lr_schedule = LrSchedule::custom(WarmRestarts {
        period: 2.0,
        mult: 2.0,
        min_lr: 1e-5,
    });
    config.fit.penalties.push(WeightPenalty::new(
        Orthogonality { lambda: 1e-4 },
        ParamSelector::weights(vec!["layers.1".into()]),
    ));
    config.fit.constraints.push(WeightConstraint::new(
        ClipValue { limit: 0.5 },
        ParamSelector::default(),
    ));
    Ok(config)
}
