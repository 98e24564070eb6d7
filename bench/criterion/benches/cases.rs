//! Criterion's statistics for the three cases of `recipe bench`: one
//! training step (recipe's step, as Burn's Learner calls it) and one
//! inference pass of 1000 images, on the default CPU backend.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use recipe::backend::select_device;
use recipe::bench::{Inference, TrainSteps, cases};

fn bench_cases(c: &mut Criterion) {
    recipe::allocator::keep_freed_memory();
    let device = select_device("cpu").expect("the default CPU backend");
    for case in cases() {
        let letter = &case.name[..1];
        let mut group = c.benchmark_group(format!("case {letter}"));
        group.sample_size(20);
        group.throughput(Throughput::Elements(case.batch_size as u64));
        let mut steps = TrainSteps::recipe(&case, &device);
        group.bench_function("train step", |b| b.iter(|| steps.step()));
        group.throughput(Throughput::Elements(1000));
        let inference = Inference::new(&case, &device);
        group.bench_function("inference, batch 1000", |b| b.iter(|| inference.run()));
        group.finish();
    }
}

criterion_group!(benches, bench_cases);
criterion_main!(benches);
