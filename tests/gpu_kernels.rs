//! recipe-cube's GPU kernels against Burn's own tensor code, forward and
//! backward (and SGD's and Adam's updates), on whatever wgpu finds (in CI: Mesa's
//! software Vulkan, lavapipe). Compiled only with the `wgpu` feature:
//!
//! ```text
//! cargo test --release --features wgpu --test gpu_kernels
//! ```
//!
//! The kernels are called directly (not installed), except in the one test
//! that check how recipe-flex's fused optimizers find the GPU kernels (they hold
//! [`KERNELS`] while its own are installed); the inputs are fixed numbers,
//! not draws from Burn's process-wide random generator.
#![cfg(feature = "wgpu")]

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::tensor::activation as burn_fn;
use burn::tensor::{Device, Tensor, TensorData};
use recipe::backend::select_device;
use recipe_cube::{CubeActivations, CubeOptimizers};
use recipe_models::ActivationKernels;
use recipe_models::kernels::max_over_pieces_unfused;
use recipe_train::{
    AdamMoments, AdamRule, AdamTensors, AdamUpdate, AdamUpdated, FoldedHooks, OptimizerConfig,
    OptimizerKernels, PenaltyGradient, SgdMomentum, SgdTensors, SgdUpdate, SgdUpdated,
    renorm_columns,
};

/// Selecting a device installs the `recipe` binary's kernels, process-wide;
/// the test that installs its own holds this lock while it runs.
static KERNELS: Mutex<()> = Mutex::new(());

/// Updates taken by [`CountingCube`] so far (a test reads it before and
/// after, holding [`KERNELS`]).
static CUBE_UPDATES: AtomicUsize = AtomicUsize::new(0);

/// Max-norm constraints and penalty values [`CountingCube`] computed so far.
static CUBE_HOOKS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];

/// recipe-cube's optimizer kernels, counting the updates they take;
/// `build` is the trait's default, as `CubeOptimizers`'.
struct CountingCube;

impl OptimizerKernels for CountingCube {
    fn build_folded(
        &self,
        config: &OptimizerConfig,
        folded: &[FoldedHooks],
    ) -> Option<burn::optim::ModuleOptimizer> {
        CubeOptimizers.build_folded(config, folded)
    }

    fn max_norm(&self, matrix: &Tensor<2>, unit_dim: usize, max_norm: f64) -> Option<Tensor<2>> {
        let done = CubeOptimizers.max_norm(matrix, unit_dim, max_norm)?;
        CUBE_HOOKS[0].fetch_add(1, Ordering::SeqCst);
        Some(done)
    }

    fn elastic_net_value(&self, weights: &Tensor<1>, l1: f64, l2: f64) -> Option<Tensor<1>> {
        let done = CubeOptimizers.elastic_net_value(weights, l1, l2)?;
        CUBE_HOOKS[1].fetch_add(1, Ordering::SeqCst);
        Some(done)
    }

    fn sgd_update(
        &self,
        update: &SgdUpdate,
        tensors: SgdTensors,
    ) -> Result<SgdUpdated, Box<SgdTensors>> {
        let done = CubeOptimizers.sgd_update(update, tensors)?;
        CUBE_UPDATES.fetch_add(1, Ordering::SeqCst);
        Ok(done)
    }

    fn adam_update(
        &self,
        update: &AdamUpdate,
        tensors: AdamTensors,
    ) -> Result<AdamUpdated, Box<AdamTensors>> {
        let done = CubeOptimizers.adam_update(update, tensors)?;
        CUBE_UPDATES.fetch_add(1, Ordering::SeqCst);
        Ok(done)
    }
}

fn wgpu_device() -> Device {
    let _kernels = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
    select_device("wgpu").unwrap()
}

fn gpu() -> Device {
    wgpu_device().autodiff()
}

/// `count` numbers spread over `[-range, range]` without ties (a 32-bit
/// linear congruential sequence; fixed, so every run sees the same inputs).
fn spread(count: usize, range: f32) -> Vec<f32> {
    let mut state = 12345u32;
    (0..count)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 * range - range
        })
        .collect()
}

fn tensor(shape: [usize; 2], range: f32, device: &Device) -> Tensor<2> {
    let values = spread(shape[0] * shape[1], range);
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The value and the input gradient of `sum(w * f(x))`.
fn value_and_gradient(
    x: &Tensor<2>,
    w: &Tensor<2>,
    f: impl FnOnce(Tensor<2>) -> Tensor<2>,
) -> (Vec<f32>, Vec<f32>) {
    let x = x.clone().require_grad();
    let y = f(x.clone());
    let grads = (y.clone() * w.clone()).sum().backward();
    let gradient = x.grad(&grads).expect("x is tracked");
    (
        y.inner().into_data().try_to_vec().unwrap(),
        gradient.into_data().try_to_vec().unwrap(),
    )
}

fn max_abs_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// Bit for bit, with the first difference in the message (not both
/// vectors: they have thousands of elements).
fn assert_identical(found: &[f32], expected: &[f32], what: &str) {
    assert_eq!(found.len(), expected.len(), "{what}: lengths");
    if let Some(i) = (0..found.len()).find(|&i| found[i].to_bits() != expected[i].to_bits()) {
        panic!(
            "{what}: element {i} is {} where Burn has {}",
            found[i], expected[i]
        );
    }
}

fn fused(
    kernel: fn(&CubeActivations, Tensor<1>) -> Result<Tensor<1>, Tensor<1>>,
) -> impl FnOnce(Tensor<2>) -> Tensor<2> {
    move |x| {
        let shape = x.shape();
        kernel(&CubeActivations, x.flatten(0, 1))
            .expect("an f32 tensor on the GPU")
            .reshape(shape)
    }
}

/// Burn computes sigmoid as `exp(-log(1 + exp(-x)))` and the kernel as
/// `1 / (1 + exp(-x))`: the same function with other roundings, so values
/// and gradients agree to 1e-6, not bit for bit. The gradient is computed
/// from the kept output in the order of Burn's `sigmoid_backward`.
#[test]
fn sigmoid_and_tanh_kernels_agree_with_burns_forward_and_backward() {
    let device = gpu();
    let x = tensor([16, 300], 12.0, &device);
    let w = tensor([16, 300], 1.0, &device);
    for (kernel, burns, name) in [
        (
            CubeActivations::sigmoid as fn(&CubeActivations, _) -> _,
            burn_fn::sigmoid as fn(Tensor<2>) -> Tensor<2>,
            "sigmoid",
        ),
        (CubeActivations::tanh, burn_fn::tanh, "tanh"),
    ] {
        let (value, gradient) = value_and_gradient(&x, &w, fused(kernel));
        let (burn_value, burn_gradient) = value_and_gradient(&x, &w, burns);
        let values = max_abs_difference(&value, &burn_value);
        let gradients = max_abs_difference(&gradient, &burn_gradient);
        assert!(values <= 1e-6, "{name} values differ by {values}");
        assert!(gradients <= 4e-6, "{name} gradients differ by {gradients}");
    }
}

/// The max and its gradient are exact, so the Maxout kernels are bit for
/// bit Burn's reshape + `max_dim` (the inputs have no ties), also for an
/// input that is not contiguous in memory.
#[test]
fn maxout_kernels_are_bit_for_bit_burns_forward_and_backward() {
    let device = gpu();
    let x = tensor([8, 60 * 5], 3.0, &device);
    let w = tensor([8, 60], 1.0, &device);
    let kernel = |x: Tensor<2>| CubeActivations.max_over_pieces(x, 5).unwrap();
    let burns = |x: Tensor<2>| max_over_pieces_unfused(x, 5);
    let transposed = tensor([60 * 5, 8], 3.0, &device).transpose();
    for (input, layout) in [(x, "contiguous"), (transposed, "transposed")] {
        let (value, gradient) = value_and_gradient(&input, &w, kernel);
        let (burn_value, burn_gradient) = value_and_gradient(&input, &w, burns);
        assert_identical(&value, &burn_value, &format!("{layout} max"));
        assert_identical(&gradient, &burn_gradient, &format!("{layout} gradient"));
    }
}

#[test]
fn inference_without_autodiff_takes_the_same_kernels() {
    let device = wgpu_device();
    let x = tensor([4, 12], 6.0, &device);
    let max: Vec<f32> = CubeActivations
        .max_over_pieces(x.clone(), 3)
        .unwrap()
        .into_data()
        .try_to_vec()
        .unwrap();
    let burns: Vec<f32> = max_over_pieces_unfused(x.clone(), 3)
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_identical(&max, &burns, "max without autodiff");
    let y: Vec<f32> = fused(CubeActivations::sigmoid)(x.clone())
        .into_data()
        .try_to_vec()
        .unwrap();
    let burns: Vec<f32> = burn_fn::sigmoid(x).into_data().try_to_vec().unwrap();
    assert!(max_abs_difference(&y, &burns) <= 1e-6);
}

#[test]
fn tensors_off_the_gpu_are_handed_back() {
    let x = Tensor::<1>::from_floats([0.5, -1.0], &Device::flex());
    assert!(CubeActivations.sigmoid(x).is_err());
    let on_gpu = Tensor::<2>::zeros([2, 7], &gpu());
    assert!(CubeActivations.max_over_pieces(on_gpu, 2).is_err());
}

/// SGD's update as Burn's tensor code computes it (recipe-flex's fallback
/// path): the penalty's gradient first, then Burn's `Sgd` with momentum.
fn sgd_by_tensors(update: &SgdUpdate, tensors: SgdTensors) -> SgdUpdated {
    let SgdTensors {
        param,
        grad,
        velocity,
    } = tensors;
    let sign = param.clone().sign();
    let mut penalty = param.zeros_like();
    if update.l1 != 0.0 {
        penalty = penalty + sign.mul_scalar(update.l1);
    }
    if update.l2 != 0.0 {
        penalty = penalty + param.clone().mul_scalar(update.l2);
    }
    let grad = grad + penalty;
    let Some(momentum) = update.momentum else {
        let param = param - grad.mul_scalar(update.learning_rate);
        return SgdUpdated {
            param,
            velocity: None,
        };
    };
    let velocity = match velocity {
        Some(v) => grad
            .clone()
            .mul_scalar(momentum.gradient_weight)
            .add(v.mul_scalar(momentum.momentum)),
        None => grad.clone(),
    };
    let step = if momentum.nesterov {
        velocity.clone().mul_scalar(momentum.momentum).add(grad)
    } else {
        velocity.clone()
    };
    SgdUpdated {
        param: param - step.mul_scalar(update.learning_rate),
        velocity: Some(velocity),
    }
}

fn flat(tensor: &Tensor<1>) -> Vec<f32> {
    tensor.to_data().try_to_vec().unwrap()
}

/// Every form of the update (plain, the first momentum step, momentum,
/// Nesterov, with and without an L1/L2 penalty) agrees with the tensor
/// code within 2 units in the last place of the weights' scale: the kernel
/// does the same operations in the same order, but one kernel lets the
/// shader compiler contract `a * b + c` into a fused multiply-add, which
/// separate kernels cannot.
#[test]
fn the_sgd_kernel_agrees_with_burns_tensor_code() {
    let device = wgpu_device();
    let n = 5_000;
    let param = Tensor::<1>::from_floats(spread(n, 3.0).as_slice(), &device);
    let grad = Tensor::<1>::from_floats(&spread(2 * n, 1.0)[n..], &device);
    let velocity = grad.clone().mul_scalar(-0.5).add_scalar(0.25);
    let momentum = |nesterov| {
        Some(SgdMomentum {
            momentum: 0.9,
            gradient_weight: 0.75,
            nesterov,
        })
    };
    let update = |momentum, l1, l2| SgdUpdate {
        learning_rate: 0.05,
        momentum,
        l1,
        l2,
    };
    let cases = [
        ("plain", update(None, 0.0, 0.0), false),
        ("plain, L2", update(None, 0.0, 0.01), false),
        (
            "first momentum step",
            update(momentum(false), 0.0, 0.0),
            false,
        ),
        ("momentum", update(momentum(false), 0.0, 0.0), true),
        ("Nesterov", update(momentum(true), 0.0, 0.0), true),
        (
            "Nesterov, L1 + L2",
            update(momentum(true), 0.001, 0.01),
            true,
        ),
        ("first step, L1", update(momentum(true), 0.001, 0.0), false),
    ];
    for (what, update, with_velocity) in cases {
        let tensors = SgdTensors {
            param: param.clone(),
            grad: grad.clone(),
            velocity: with_velocity.then(|| velocity.clone()),
        };
        let expected = sgd_by_tensors(&update, tensors.clone());
        let found = CubeOptimizers
            .sgd_update(&update, tensors)
            .unwrap_or_else(|_| panic!("{what}: the kernel declined wgpu tensors"));
        let (p, q) = (flat(&found.param), flat(&expected.param));
        let moved = max_abs_difference(&p, &flat(&param));
        assert!(moved > 1e-3, "{what}: the update moved nothing");
        assert!(
            max_abs_difference(&p, &q) <= 2.0 * 3.0 * f32::EPSILON,
            "{what}: weights differ by {}",
            max_abs_difference(&p, &q)
        );
        match (found.velocity, expected.velocity) {
            (Some(v), Some(w)) => assert!(
                max_abs_difference(&flat(&v), &flat(&w)) <= 2.0 * 2.0 * f32::EPSILON,
                "{what}: velocities differ"
            ),
            (None, None) => {}
            _ => panic!("{what}: a velocity where there should be none, or none"),
        }
    }
}

#[test]
fn the_sgd_kernel_declines_what_is_not_on_the_gpu_or_tracked() {
    let update = SgdUpdate {
        learning_rate: 0.1,
        momentum: None,
        l1: 0.0,
        l2: 0.0,
    };
    let on = |device: &Device| SgdTensors {
        param: Tensor::<1>::ones([3], device),
        grad: Tensor::<1>::ones([3], device),
        velocity: None,
    };
    assert!(
        CubeOptimizers
            .sgd_update(&update, on(&Device::flex()))
            .is_err()
    );
    assert!(CubeOptimizers.sgd_update(&update, on(&gpu())).is_err());
}

/// recipe-train's `FusedSgd`, on wgpu tensors, runs the kernel (counted)
/// when recipe-cube's kernels alone are installed (as in a build without
/// recipe-flex), and trains the same weights as the tensor code over a few
/// steps.
#[test]
fn fused_sgd_runs_the_kernel_on_the_gpu() {
    use burn::optim::Optimizer;

    let device = wgpu_device();
    let _kernels = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
    let before = CUBE_UPDATES.load(Ordering::SeqCst);
    recipe_train::install_optimizer_kernels(CountingCube);
    let sgd = recipe_train::FusedSgd::with_momentum(0.9, 0.0, true).with_elastic_net(0.001, 0.01);
    let start = tensor([40, 30], 2.0, &device);
    let (mut param, mut state) = (start.clone(), None);
    let (mut expected, mut velocity) = (start.clone(), None::<Tensor<1>>);
    let update = SgdUpdate {
        learning_rate: 0.05,
        momentum: Some(SgdMomentum {
            momentum: 0.9,
            gradient_weight: 1.0,
            nesterov: true,
        }),
        l1: 0.001,
        l2: 0.01,
    };
    for step in 0..3 {
        let grad = tensor([40, 30], 1.0 + step as f32, &device);
        (param, state) = sgd.step(0.05, param, grad.clone(), state);
        let flat = |t: Tensor<2>| t.reshape([1200]);
        let done = sgd_by_tensors(
            &update,
            SgdTensors {
                param: flat(expected),
                grad: flat(grad),
                velocity,
            },
        );
        (expected, velocity) = (done.param.reshape([40, 30]), done.velocity);
    }
    recipe_train::uninstall_optimizer_kernels();
    assert_eq!(
        CUBE_UPDATES.load(Ordering::SeqCst) - before,
        3,
        "the kernel ran once a step"
    );
    let (found, expected): (Vec<f32>, Vec<f32>) = (
        param.into_data().try_to_vec().unwrap(),
        expected.into_data().try_to_vec().unwrap(),
    );
    assert!(max_abs_difference(&found, &expected) <= 1e-5);
    assert!(max_abs_difference(&found, &flat_start(&start)) > 1e-2);
}

fn flat_start(start: &Tensor<2>) -> Vec<f32> {
    start.to_data().try_to_vec().unwrap()
}

/// With recipe-cube's kernels alone installed (a build without recipe-flex),
/// `OptimizerConfig::init` builds recipe's fused SGD and Adam, whose steps
/// of a linear layer on wgpu run the kernels (counted): the same weights as
/// Burn's own optimizers (kernels uninstalled) within rounding.
#[test]
fn recipes_optimizers_run_the_gpu_kernels_without_recipe_flex() {
    use burn::nn::{Linear, LinearConfig};
    use burn::optim::GradientsParams;
    let device = gpu();
    let _kernels = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
    let linear: Linear = LinearConfig::new(30, 20).init(&device);
    let inputs = tensor([8, 30], 1.0, &device);
    let train = |config: &OptimizerConfig, mut linear: Linear| {
        let mut optimizer = config.init();
        for _ in 0..3 {
            let loss = linear.forward(inputs.clone()).square().sum();
            let grads = GradientsParams::from_grads(loss.backward(), &linear);
            linear = optimizer.step(0.01, linear, grads);
        }
        linear.weight.val().into_data().try_to_vec::<f32>().unwrap()
    };
    for config in [OptimizerConfig::sgd(0.9), OptimizerConfig::adam()] {
        let before = CUBE_UPDATES.load(Ordering::SeqCst);
        recipe_train::install_optimizer_kernels(CountingCube);
        let with_kernels = train(&config, linear.clone());
        recipe_train::uninstall_optimizer_kernels();
        // Weight and bias, three steps.
        assert_eq!(
            CUBE_UPDATES.load(Ordering::SeqCst) - before,
            6,
            "{config:?}: the kernels ran"
        );
        let burns = train(&config, linear.clone());
        let start = linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(
            max_abs_difference(&with_kernels, &burns) <= 1e-5,
            "{config:?}"
        );
        assert!(
            max_abs_difference(&with_kernels, &start) > 1e-3,
            "{config:?}: nothing moved"
        );
    }
}

/// `grad + l1 sign(w) + l2 w` in tensor code, as recipe-train's fused
/// optimizers add a folded penalty where no kernel takes it.
fn with_penalty(param: &Tensor<1>, grad: Tensor<1>, l1: f32, l2: f32) -> Tensor<1> {
    let mut penalty = param.zeros_like();
    if l1 != 0.0 {
        penalty = penalty + param.clone().sign().mul_scalar(l1);
    }
    if l2 != 0.0 {
        penalty = penalty + param.clone().mul_scalar(l2);
    }
    grad + penalty
}

/// The update by Burn's own `Adam` or `AdamW` on the same device (the
/// penalty's gradient added first, as recipe-flex's fallback does).
fn adam_by_burn(update: &AdamUpdate, tensors: AdamTensors) -> AdamUpdated {
    use burn::optim::{
        AdamConfig, AdamState, AdamWConfig, AdamWState, AdaptiveMomentumState, Optimizer,
    };
    let AdamTensors {
        param,
        grad,
        moments,
    } = tensors;
    let grad = with_penalty(&param, grad, update.l1, update.l2);
    let state =
        moments.map(|m| AdaptiveMomentumState::new(update.time - 1, m.moment_1, m.moment_2));
    let lr = update.learning_rate;
    let (param, state) = match update.rule {
        AdamRule::Adam => {
            let adam = AdamConfig::new()
                .with_beta_1(update.beta_1)
                .with_beta_2(update.beta_2)
                .with_epsilon(update.epsilon)
                .build();
            let (param, state) = adam.step(lr, param, grad, state.map(AdamState::new));
            (param, state.unwrap().momentum)
        }
        AdamRule::AdamW { weight_decay } => {
            let adamw = AdamWConfig::new()
                .with_beta_1(update.beta_1)
                .with_beta_2(update.beta_2)
                .with_epsilon(update.epsilon)
                .with_weight_decay(weight_decay)
                .build();
            let state = state.map(|momentum| AdamWState { momentum });
            let (param, state) = adamw.step(lr, param, grad, state);
            (param, state.unwrap().momentum)
        }
    };
    assert_eq!(state.time, update.time, "Burn's count of updates");
    AdamUpdated {
        param,
        moments: AdamMoments {
            moment_1: state.moment_1,
            moment_2: state.moment_2,
        },
    }
}

/// Every form of Adam's and AdamW's update (the first, a later one, AdamW
/// with and without its decay, an L1/L2 penalty) agrees with Burn's `Adam`
/// and `AdamW` on the same GPU within 4 units in the last place of the
/// weights' scale (moments: 2 of theirs): the kernel does the same
/// operations in the same order, but in one kernel the shader compiler may
/// contract `a * b + c` into a fused multiply-add, which separate kernels
/// cannot. Measured on lavapipe: bit for bit except with an L2 penalty
/// (`g + w * l2`: 1.2e-7 on 2 of 5,000 weights of about 3, the moments by
/// one unit in their last place).
#[test]
fn the_adam_kernel_agrees_with_burns_adam_and_adamw() {
    let device = wgpu_device();
    let n = 5_000;
    let param = Tensor::<1>::from_floats(spread(n, 3.0).as_slice(), &device);
    let grad = Tensor::<1>::from_floats(&spread(2 * n, 1.0)[n..], &device);
    let moment_1 = grad.clone().mul_scalar(-0.5).add_scalar(0.25);
    let moment_2 = grad
        .clone()
        .powf_scalar(2.0)
        .mul_scalar(0.7)
        .add_scalar(0.01);
    let update = |rule, time, l1, l2| AdamUpdate {
        learning_rate: 0.01,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        time,
        rule,
        l1,
        l2,
    };
    let adamw = |weight_decay| AdamRule::AdamW { weight_decay };
    let cases = [
        ("Adam, first update", update(AdamRule::Adam, 1, 0.0, 0.0)),
        ("Adam, update 3", update(AdamRule::Adam, 3, 0.0, 0.0)),
        ("Adam, L1 + L2", update(AdamRule::Adam, 3, 0.001, 0.01)),
        ("AdamW, first update", update(adamw(0.01), 1, 0.0, 0.0)),
        ("AdamW, update 3", update(adamw(0.01), 3, 0.0, 0.0)),
        ("AdamW without decay", update(adamw(0.0), 3, 0.0, 0.0)),
        ("AdamW, L1", update(adamw(0.01), 2, 0.001, 0.0)),
    ];
    for (what, update) in cases {
        let tensors = AdamTensors {
            param: param.clone(),
            grad: grad.clone(),
            moments: (update.time > 1).then(|| AdamMoments {
                moment_1: moment_1.clone(),
                moment_2: moment_2.clone(),
            }),
        };
        let expected = adam_by_burn(&update, tensors.clone());
        let found = CubeOptimizers
            .adam_update(&update, tensors)
            .unwrap_or_else(|_| panic!("{what}: the kernel declined wgpu tensors"));
        let (p, q) = (flat(&found.param), flat(&expected.param));
        assert!(
            max_abs_difference(&p, &flat(&param)) > 1e-3,
            "{what}: nothing moved"
        );
        let weights = max_abs_difference(&p, &q);
        assert!(
            weights <= 4.0 * 3.0 * f32::EPSILON,
            "{what}: weights differ by {weights}"
        );
        for (found, expected, name) in [
            (&found.moments.moment_1, &expected.moments.moment_1, "first"),
            (
                &found.moments.moment_2,
                &expected.moments.moment_2,
                "second",
            ),
        ] {
            let (f, e) = (flat(found), flat(expected));
            let scale = e.iter().fold(0.0f32, |m, x| m.max(x.abs()));
            let differ = max_abs_difference(&f, &e);
            assert!(
                differ <= 2.0 * scale * f32::EPSILON,
                "{what}: {name} moments differ by {differ} (scale {scale})"
            );
        }
    }
}

/// Tensors off the GPU, tracked by autodiff, or with moments that do not
/// fit the update's time are handed back.
#[test]
fn the_adam_kernel_declines_what_it_cannot_take() {
    let update = |time| AdamUpdate {
        learning_rate: 0.1,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        time,
        rule: AdamRule::Adam,
        l1: 0.0,
        l2: 0.0,
    };
    let on = |device: &Device, with_moments: bool| AdamTensors {
        param: Tensor::<1>::ones([3], device),
        grad: Tensor::<1>::ones([3], device),
        moments: with_moments.then(|| AdamMoments {
            moment_1: Tensor::<1>::ones([3], device),
            moment_2: Tensor::<1>::ones([3], device),
        }),
    };
    let adam = |time, tensors| CubeOptimizers.adam_update(&update(time), tensors);
    assert!(adam(1, on(&Device::flex(), false)).is_err());
    assert!(adam(1, on(&gpu(), false)).is_err(), "autodiff");
    let device = wgpu_device();
    assert!(
        adam(2, on(&device, false)).is_err(),
        "update 2 without moments"
    );
    assert!(adam(1, on(&device, true)).is_err(), "update 1 with moments");
    assert!(adam(2, on(&device, true)).is_ok());
}

/// recipe-train's `FusedAdamW` (with an L1/L2 penalty), on wgpu tensors,
/// runs the kernel (counted) when the binary's pair of kernels is
/// installed, and trains the same weights as Burn's `AdamW` over a few
/// steps.
#[cfg(feature = "flex")]
#[test]
fn fused_adamw_runs_the_kernel_on_the_gpu() {
    use burn::optim::{AdamWConfig, Optimizer};
    let device = wgpu_device();
    let _kernels = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
    let before = CUBE_UPDATES.load(Ordering::SeqCst);
    recipe_train::install_optimizer_kernels((recipe_flex::FlexKernels, CountingCube));
    let fused = recipe_train::FusedAdamW::new(0.9, 0.999, 1e-8, 0.01).with_elastic_net(0.001, 0.01);
    let burn = AdamWConfig::new()
        .with_epsilon(1e-8)
        .with_weight_decay(0.01)
        .build();
    let start = tensor([40, 30], 2.0, &device);
    let (mut param, mut state) = (start.clone(), None);
    let (mut expected, mut burn_state) = (start.clone(), None);
    for step in 0..3 {
        let grad = tensor([40, 30], 1.0 + step as f32, &device);
        (param, state) = fused.step(0.01, param, grad.clone(), state);
        let flat_expected = expected.clone().reshape([1200]);
        let penalized = with_penalty(&flat_expected, grad.reshape([1200]), 0.001, 0.01);
        (expected, burn_state) = burn.step(0.01, expected, penalized.reshape([40, 30]), burn_state);
    }
    recipe_train::uninstall_optimizer_kernels();
    assert_eq!(
        CUBE_UPDATES.load(Ordering::SeqCst) - before,
        3,
        "the kernel ran once a step"
    );
    assert_eq!(state.unwrap().momentum.time, 3);
    let (found, expected): (Vec<f32>, Vec<f32>) = (
        param.into_data().try_to_vec().unwrap(),
        expected.into_data().try_to_vec().unwrap(),
    );
    assert!(max_abs_difference(&found, &expected) <= 1e-5);
    assert!(max_abs_difference(&found, &flat_start(&start)) > 1e-2);
}

/// The one-launch max-norm against the tensor code (`renorm_columns`, on
/// the transpose for rows): units at or under the bound exactly as they
/// were, the others within float roundings (the kernel adds the squares in
/// another order). Columns (linear weights) and rows (convolution
/// filters), a unit longer than a cube's 128 threads, a unit of one.
#[test]
fn the_max_norm_kernel_agrees_with_the_tensor_code() {
    let device = wgpu_device();
    let bound = 2.0;
    let cases = [
        ([300, 70], 1, true),
        ([70, 300], 0, true),
        ([3000, 2], 1, false),
        ([1, 5], 1, false),
    ];
    for (shape, unit_dim, mixed) in cases {
        let matrix = tensor(shape, 0.2, &device);
        let expected = match unit_dim {
            1 => renorm_columns(matrix.clone(), bound),
            _ => renorm_columns(matrix.clone().transpose(), bound).transpose(),
        };
        let found = CubeOptimizers
            .max_norm(&matrix, unit_dim, bound)
            .expect("an f32 matrix on the GPU");
        assert_eq!(found.dims(), shape);
        let values = |t: Tensor<2>| t.into_data().try_to_vec::<f32>().unwrap();
        let (found, expected, before) = (values(found), values(expected), values(matrix));
        let mut rescaled = 0;
        for i in 0..found.len() {
            if expected[i].to_bits() == before[i].to_bits() {
                assert_eq!(
                    found[i].to_bits(),
                    before[i].to_bits(),
                    "{shape:?}: element {i} moved"
                );
            } else {
                rescaled += 1;
                let tolerance = 2e-6 * expected[i].abs().max(1e-3);
                assert!(
                    (found[i] - expected[i]).abs() <= tolerance,
                    "{shape:?}: element {i} is {} where the tensor code has {}",
                    found[i],
                    expected[i]
                );
            }
        }
        if mixed {
            assert!(
                rescaled > 0 && rescaled < found.len(),
                "{shape:?}: {rescaled} of {} rescaled: the case tests one side only",
                found.len()
            );
        }
    }
}

/// `l1 Σ|w| + l2/2 Σw²` as one element-wise launch and Burn's sum, against
/// the tensor code's value, to float roundings of the sum.
#[test]
fn the_penalty_value_agrees_with_the_tensor_code() {
    let device = wgpu_device();
    for n in [1, 1000, 784 * 512] {
        let weights = Tensor::<1>::from_data(TensorData::new(spread(n, 0.1), [n]), &device);
        for (l1, l2) in [(1e-4, 0.0), (0.0, 1e-3), (1e-5, 1e-4)] {
            let matrix = weights.clone().unsqueeze_dim::<2>(0);
            let (expected, _) = PenaltyGradient::elastic_net_tensors(matrix, l1, l2);
            let found = CubeOptimizers
                .elastic_net_value(&weights, l1, l2)
                .expect("an f32 vector on the GPU");
            assert_eq!(found.dims(), [1]);
            let found = found.into_scalar::<f32>();
            let expected = expected.into_scalar::<f32>();
            assert!(expected > 0.0);
            assert!(
                (found - expected).abs() <= 1e-5 * expected,
                "{n} weights, l1 {l1}, l2 {l2}: {found} where the tensor code has {expected}"
            );
        }
    }
}

/// Tensors on the CPU or tracked by autodiff, and matrices of more units
/// than a launch can hold cubes, are left to the tensor code.
#[test]
fn the_hook_kernels_decline_what_is_not_on_the_gpu_or_tracked() {
    for device in [Device::flex(), gpu()] {
        let matrix = Tensor::<2>::ones([3, 4], &device);
        assert!(CubeOptimizers.max_norm(&matrix, 1, 1.0).is_none());
        let weights = Tensor::<1>::ones([3], &device);
        assert!(
            CubeOptimizers
                .elastic_net_value(&weights, 1e-3, 0.0)
                .is_none()
        );
    }
    // More units than a launch can count cubes: the tensor code's.
    let wide = Tensor::<2>::ones([1, 70_000], &wgpu_device());
    assert!(CubeOptimizers.max_norm(&wide, 1, 1.0).is_none());
    assert!(CubeOptimizers.max_norm(&wide, 0, 1.0).is_some());
}

/// A training step of recipe's own (the benchmark's case A) with L1, L2
/// and max-norm on wgpu, with recipe-cube's kernels alone installed: the
/// constraint runs the max-norm kernel once per weight matrix (three) and
/// the penalties' values run the value kernel once per weight matrix
/// (three: L1 and L2 are read together, with their summed strengths).
#[test]
fn recipes_hooks_run_the_gpu_kernels() {
    use recipe::bench::{TrainSteps, cases, hook_variants};
    let device = wgpu_device();
    let _kernels = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
    let (name, hooks) = hook_variants().pop().expect("the variant with every hook");
    assert_eq!(name, "L1 + L2 + max-norm");
    let before = [0, 1].map(|i| CUBE_HOOKS[i].load(Ordering::SeqCst));
    recipe_train::install_optimizer_kernels(CountingCube);
    let mut steps = TrainSteps::recipe(&cases()[0], &device).with_hooks(hooks);
    steps.step();
    recipe_train::uninstall_optimizer_kernels();
    let after = [0, 1].map(|i| CUBE_HOOKS[i].load(Ordering::SeqCst));
    assert_eq!(after[0] - before[0], 3, "max-norm kernels");
    assert_eq!(after[1] - before[1], 3, "penalty value kernels");
}

/// The constraints folded into recipe's optimizer on wgpu (each weight
/// matrix constrained right after its update, by recipe-cube's max-norm
/// kernel) train what the step's own pass after the optimizer trains:
/// the same kernels on the same values, so the same numbers (compared
/// within 1e-6 rather than bit for bit only because a GPU's reductions
/// need not be deterministic from one launch to the next).
#[test]
fn folded_constraints_train_the_same_weights_on_the_gpu() {
    use burn::tensor::Int;
    use burn::train::TrainStep;
    use recipe_data::ClassBatch;
    use recipe_models::{Mlp, MlpConfig};
    use recipe_train::{
        Classifier, MaxNorm, ParamSelector, Regularizer, StepHooks, WeightConstraint,
        WeightPenalty, fold_hooks,
    };
    let device = gpu();
    let _kernels = KERNELS.lock().unwrap_or_else(|e| e.into_inner());
    let net: Mlp = MlpConfig::new(30, vec![20, 16], 4).init(&device).unwrap();
    let _ = net.forward(Tensor::zeros([1, 30], &device));
    let batch = ClassBatch {
        inputs: tensor([8, 30], 1.0, &device),
        targets: Tensor::<1, Int>::from_ints([0, 1, 2, 3, 0, 1, 2, 3], &device),
    };
    let hooks = StepHooks::new(
        vec![WeightPenalty::new(
            Regularizer::L1L2 { l1: 1e-3, l2: 1e-2 },
            ParamSelector::default(),
        )],
        vec![WeightConstraint::new(
            MaxNorm { max_norm: 0.5 },
            ParamSelector::default(),
        )],
    );
    let train =
        |(mut optimizer, mut classifier): (burn::optim::ModuleOptimizer, Classifier<Mlp>)| {
            for _ in 0..3 {
                let output = classifier.step(batch.clone());
                classifier = classifier.optimize(&mut optimizer, 0.5.into(), output.grads);
            }
            let weights = [
                &classifier.net.layers[0].linear.weight,
                &classifier.net.output.weight,
            ];
            weights
                .iter()
                .flat_map(|w| w.val().into_data().try_to_vec::<f32>().unwrap())
                .collect::<Vec<f32>>()
        };
    let configs = [OptimizerConfig::sgd(0.9), OptimizerConfig::adam()];
    recipe_train::install_optimizer_kernels(CountingCube);
    let trained: Vec<_> = configs
        .iter()
        .map(|config| {
            let classifier = || Classifier::with_hooks(net.clone(), hooks.clone());
            let (folding, folded) = fold_hooks(config, classifier());
            let folded_constraints = folded.hooks.constraints_folded;
            let unconstrained = Classifier::with_hooks(
                net.clone(),
                StepHooks::new(hooks.penalties.clone(), Vec::new()),
            );
            (
                folded_constraints,
                train((folding, folded)),
                train((config.init(), classifier())),
                train((config.init(), unconstrained)),
            )
        })
        .collect();
    recipe_train::uninstall_optimizer_kernels();
    for (config, (folded_constraints, folded, applied, unconstrained)) in
        configs.iter().zip(trained)
    {
        assert!(folded_constraints, "{config:?}");
        assert!(max_abs_difference(&folded, &applied) <= 1e-6, "{config:?}");
        assert!(
            max_abs_difference(&folded, &unconstrained) > 1e-3,
            "{config:?}: the constraint changed nothing"
        );
    }
}
