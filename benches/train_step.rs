//! Training and inference throughput of the three benchmark cases on the
//! default CPU backend, as JSON lines (the same figures as `recipe bench
//! --json --cases-only`), plus recipe's step against a bare Burn step, and
//! for the Adam case recipe's step with Burn's own Adam in place of
//! recipe's `FusedAdam`, and AdamW fused and Burn's.
//!
//! ```text
//! cargo bench --bench train_step
//! ```

use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer};
use recipe::backend::select_device;
use recipe::bench::{BenchSettings, bare_train_rate, cases, recipe_train_rate_with, run_case};
use recipe::train::{FusedAdamW, OptimizerConfig};

fn main() {
    recipe::allocator::keep_freed_memory();
    let device = select_device("cpu").expect("the default CPU backend");
    let settings = BenchSettings::default();
    for case in cases() {
        let result = run_case(&case, &device, settings);
        println!("{}", serde_json::to_string(&result).expect("JSON"));
        let bare = bare_train_rate(&case, &device, settings);
        println!(
            "{{\"case\": \"{}\", \"bare_burn_step_samples_per_sec\": {bare:.0}}}",
            case.name
        );
        if let OptimizerConfig::Adam {
            beta1,
            beta2,
            epsilon,
        } = case.optimizer
        {
            let burn_adam = AdamConfig::new()
                .with_beta_1(beta1)
                .with_beta_2(beta2)
                .with_epsilon(epsilon)
                .init();
            let rate = recipe_train_rate_with(&case, &device, burn_adam, settings);
            println!(
                "{{\"case\": \"{}\", \"with_burns_adam_samples_per_sec\": {rate:.0}}}",
                case.name
            );
            // The same for AdamW (decoupled weight decay 0.01): recipe's
            // fused loop against Burn's tensor operations.
            let adamw = |fused: bool| -> ModuleOptimizer {
                if fused {
                    FusedAdamW::new(beta1, beta2, epsilon, 0.01).into()
                } else {
                    AdamWConfig::new()
                        .with_beta_1(beta1)
                        .with_beta_2(beta2)
                        .with_epsilon(epsilon)
                        .with_weight_decay(0.01)
                        .init()
                }
            };
            let fused = recipe_train_rate_with(&case, &device, adamw(true), settings);
            let burn = recipe_train_rate_with(&case, &device, adamw(false), settings);
            println!(
                "{{\"case\": \"{}\", \"with_fused_adamw_samples_per_sec\": {fused:.0}, \"with_burns_adamw_samples_per_sec\": {burn:.0}}}",
                case.name
            );
        }
    }
}
