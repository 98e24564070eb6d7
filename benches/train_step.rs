//! Training and inference throughput of the three benchmark cases on the
//! default CPU backend, as JSON lines (the same figures as `recipe bench
//! --json --cases-only`), plus recipe's step against a bare Burn step.
//!
//! ```text
//! cargo bench --bench train_step
//! ```

use recipe::backend::select_device;
use recipe::bench::{BenchSettings, bare_train_rate, cases, run_case};

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
    }
}
