//! `FusedSgd` hands every parameter's update to the installed kernels'
//! `sgd_update` (recipe-flex's loop, recipe-cube's GPU kernel, a user's),
//! with the update it means, and uses what they return; where they
//! decline, the tensor code runs. `OptimizerConfig::init` builds it for
//! installed kernels that keep `OptimizerKernels::build`'s default. Its own
//! process: installing kernels is process-wide.

use std::sync::Mutex;

use burn::nn::{Linear, LinearConfig};
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use recipe_train::{
    FusedSgd, OptimizerConfig, OptimizerKernels, SgdMomentum, SgdTensors, SgdUpdate, SgdUpdated,
    install_optimizer_kernels, uninstall_optimizer_kernels,
};

/// Records every update it is asked for; takes them when `take`, and then
/// returns the parameter plus 100 and the gradient as the velocity.
struct Recording {
    take: bool,
}

static ASKED: Mutex<Vec<(SgdUpdate, usize, bool)>> = Mutex::new(Vec::new());
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl OptimizerKernels for Recording {
    fn sgd_update(
        &self,
        update: &SgdUpdate,
        tensors: SgdTensors,
    ) -> Result<SgdUpdated, Box<SgdTensors>> {
        let entry = (*update, tensors.param.dims()[0], tensors.velocity.is_some());
        ASKED.lock().unwrap().push(entry);
        if !self.take {
            return Err(Box::new(tensors));
        }
        Ok(SgdUpdated {
            param: tensors.param + 100.0,
            velocity: Some(tensors.grad),
        })
    }
}

fn f64_matrix(values: [f64; 4], device: &Device) -> Tensor<2> {
    Tensor::from_data(
        TensorData::new(values.to_vec(), [2, 2]),
        (device, DType::F64),
    )
}

fn values(tensor: &Tensor<2>) -> Vec<f64> {
    tensor
        .to_data()
        .convert::<f64>()
        .try_to_vec::<f64>()
        .unwrap()
}

#[test]
fn every_update_goes_to_the_installed_kernel() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ASKED.lock().unwrap().clear();
    install_optimizer_kernels(Recording { take: true });
    let device = Device::flex();
    let sgd = FusedSgd::with_momentum(0.9, 0.0, true).with_elastic_net(0.25, 0.5);
    let param = f64_matrix([1.0, -2.0, 3.0, 0.0], &device);
    let grad = f64_matrix([0.5, 0.5, -1.0, 2.0], &device);
    let (stepped, state) = sgd.step(0.1, param, grad.clone(), None);
    uninstall_optimizer_kernels();
    assert_eq!(values(&stepped), vec![101.0, 98.0, 103.0, 100.0]);
    let velocity = state.unwrap().velocity.expect("the kernel's velocity");
    assert_eq!(velocity.dims(), [2, 2], "reshaped back");
    assert_eq!(values(&velocity), values(&grad));
    let asked = ASKED.lock().unwrap().clone();
    let expected = SgdUpdate {
        learning_rate: 0.1,
        momentum: Some(SgdMomentum {
            momentum: 0.9,
            gradient_weight: 1.0,
            nesterov: true,
        }),
        l1: 0.25,
        l2: 0.5,
    };
    assert_eq!(asked, vec![(expected, 4, false)]);
}

#[test]
fn where_the_kernel_declines_the_tensor_code_runs() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ASKED.lock().unwrap().clear();
    install_optimizer_kernels(Recording { take: false });
    let device = Device::flex();
    let param = f64_matrix([1.0, -2.0, 3.0, 0.0], &device);
    let grad = f64_matrix([0.5, 0.5, -1.0, 2.0], &device);
    let (stepped, _) = FusedSgd::plain().step(0.1, param, grad, None);
    uninstall_optimizer_kernels();
    assert_eq!(ASKED.lock().unwrap().len(), 1, "the kernel was asked");
    let expected = [0.95, -2.05, 3.1, -0.2];
    for (found, expected) in values(&stepped).iter().zip(expected) {
        assert!((found - expected).abs() < 1e-12, "{found} vs {expected}");
    }
}

/// With kernels that keep the default `build`, recipe's SGD (with a
/// momentum ramp here) is the fused optimizer and every parameter's update
/// (weight and bias) is the kernel's.
#[test]
fn the_default_build_asks_the_kernel_for_every_parameter() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ASKED.lock().unwrap().clear();
    install_optimizer_kernels(Recording { take: true });
    let device = Device::flex().autodiff();
    let linear: Linear = LinearConfig::new(3, 2).init(&device);
    let before = linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
    let loss = linear.forward(Tensor::<2>::ones([4, 3], &device)).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &linear);
    let config = OptimizerConfig::sgd(0.9)
        .with_momentum_ramp("0.5:10".parse().unwrap())
        .unwrap();
    let mut optimizer = config.init();
    let linear = optimizer.step(0.1, linear, grads);
    uninstall_optimizer_kernels();
    let after = linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(*a, b + 100.0, "the kernel's result is the weight");
    }
    let asked = ASKED.lock().unwrap().clone();
    let lengths: Vec<usize> = asked.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(lengths.len(), 2, "weight and bias: {lengths:?}");
    assert!(lengths.contains(&6) && lengths.contains(&2), "{lengths:?}");
    let momentum = asked[0].0.momentum.expect("momentum").momentum;
    assert_eq!(momentum, 0.5, "the ramp's first momentum");
}
