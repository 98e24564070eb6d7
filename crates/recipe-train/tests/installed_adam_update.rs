//! `FusedAdam` and `FusedAdamW` hand every parameter's update to the
//! installed kernels' `adam_update` (recipe-flex's loop, recipe-cube's GPU
//! kernel, a user's), with the update they mean and the state's time, and
//! use what they return; where the kernels decline, Burn's optimizer runs.
//! Its own process: installing kernels is process-wide.

use std::sync::Mutex;

use burn::optim::{AdamConfig, Optimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use recipe_train::{
    AdamMoments, AdamRule, AdamTensors, AdamUpdate, AdamUpdated, FusedAdam, FusedAdamW,
    OptimizerKernels, install_optimizer_kernels, uninstall_optimizer_kernels,
};

/// Records every update it is asked for (with the parameter's length and
/// whether moments came with it); takes them when `take`, and then returns
/// the parameter plus 100, the gradient as the first moment and twice the
/// gradient as the second.
struct Recording {
    take: bool,
}

static ASKED: Mutex<Vec<(AdamUpdate, usize, bool)>> = Mutex::new(Vec::new());
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

impl OptimizerKernels for Recording {
    fn adam_update(
        &self,
        update: &AdamUpdate,
        tensors: AdamTensors,
    ) -> Result<AdamUpdated, Box<AdamTensors>> {
        let entry = (*update, tensors.param.dims()[0], tensors.moments.is_some());
        ASKED.lock().unwrap().push(entry);
        if !self.take {
            return Err(Box::new(tensors));
        }
        Ok(AdamUpdated {
            param: tensors.param + 100.0,
            moments: AdamMoments {
                moment_1: tensors.grad.clone(),
                moment_2: tensors.grad * 2.0,
            },
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
    let adamw = FusedAdamW::new(0.8, 0.99, 1e-6, 0.01).with_elastic_net(0.25, 0.5);
    let param = f64_matrix([1.0, -2.0, 3.0, 0.0], &device);
    let grad = f64_matrix([0.5, 0.5, -1.0, 2.0], &device);
    let (stepped, state) = adamw.step(0.1, param, grad.clone(), None);
    let (stepped, state) = adamw.step(0.1, stepped, grad.clone(), state);
    uninstall_optimizer_kernels();
    assert_eq!(values(&stepped), vec![201.0, 198.0, 203.0, 200.0]);
    let moments = state.unwrap().momentum;
    assert_eq!(moments.time, 2, "two updates counted");
    assert_eq!(moments.moment_1.dims(), [2, 2], "reshaped back");
    assert_eq!(values(&moments.moment_1), values(&grad));
    assert_eq!(values(&moments.moment_2), values(&(grad * 2.0)));
    let update = |time| AdamUpdate {
        learning_rate: 0.1,
        beta_1: 0.8,
        beta_2: 0.99,
        epsilon: 1e-6,
        time,
        rule: AdamRule::AdamW { weight_decay: 0.01 },
        l1: 0.25,
        l2: 0.5,
    };
    let asked = ASKED.lock().unwrap().clone();
    assert_eq!(asked, vec![(update(1), 4, false), (update(2), 4, true)]);
}

#[test]
fn where_the_kernel_declines_burns_adam_runs() {
    let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    ASKED.lock().unwrap().clear();
    install_optimizer_kernels(Recording { take: false });
    let device = Device::flex();
    let param = f64_matrix([1.0, -2.0, 3.0, 0.0], &device);
    let grad = f64_matrix([0.5, 0.5, -1.0, 2.0], &device);
    let fused = FusedAdam::new(0.9, 0.999, 1e-8);
    let (stepped, state) = fused.step(0.1, param.clone(), grad.clone(), None);
    let (stepped, state) = fused.step(0.1, stepped, grad.clone(), state);
    uninstall_optimizer_kernels();
    assert_eq!(ASKED.lock().unwrap().len(), 2, "the kernel was asked");
    assert_eq!(state.unwrap().momentum.time, 2);
    let burn = AdamConfig::new().with_epsilon(1e-8).build();
    let (expected, burn_state) = burn.step(0.1, param, grad.clone(), None);
    let (expected, _) = burn.step(0.1, expected, grad, burn_state);
    assert_eq!(values(&stepped), values(&expected));
}
