//! Backends: which were compiled in (Cargo features) and which one a run
//! uses (`--device`).

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, Tensor};

use crate::remote::{RemoteError, WorkerAddress};

/// A backend a run can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// The default CPU backend of this build (Flex when compiled in, else NdArray).
    Cpu,
    /// Burn's pure-Rust CPU backend (feature `flex`, the default).
    Flex,
    /// Burn's NdArray CPU backend (feature `ndarray`; deprecated upstream).
    Ndarray,
    /// WebGPU through wgpu: Vulkan, Metal, DX12 (feature `wgpu`).
    Wgpu,
    /// Vulkan through wgpu, failing if no Vulkan driver (feature `vulkan`).
    Vulkan,
    /// NVIDIA CUDA (feature `cuda`).
    Cuda,
}

/// Asking for a backend this build lacks, or one with no device.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Not a backend name at all.
    #[error("unknown device `{name}`; this build supports: {supported}")]
    Unknown {
        /// The name given.
        name: String,
        /// The names this build accepts.
        supported: String,
    },
    /// A real backend that this build was compiled without.
    #[error(
        "device `{name}` is not compiled into this build (rebuild with `--features {feature}`); \
         this build supports: {supported}"
    )]
    NotCompiled {
        /// The backend asked for.
        name: String,
        /// The Cargo feature that adds it.
        feature: &'static str,
        /// The names this build accepts.
        supported: String,
    },
    /// An index given to a backend with one device.
    #[error("device `{name}`: the {backend} backend has one device and takes no index")]
    NoIndex {
        /// The name given.
        name: String,
        /// The backend.
        backend: &'static str,
    },
    /// An index that is not a number.
    #[error("device `{name}`: expected NAME or NAME:INDEX with INDEX a number, e.g. cuda:1")]
    BadIndex {
        /// The name given.
        name: String,
    },
    /// A worker address (`ws://HOST:PORT/INDEX`) that is malformed, not
    /// compiled in, or not answering.
    #[error(transparent)]
    Remote(#[from] crate::remote::RemoteError),
    /// [`KERNELS_ENV`] set to something other than `recipe` or `burn`.
    #[error(
        "{KERNELS_ENV}={value}: expected `recipe` (recipe's fused kernels, the default) or `burn` (Burn's own tensor code)"
    )]
    Kernels {
        /// The value found.
        value: String,
    },
    /// The backend is compiled in but found no usable device.
    #[error("device `{name}` is compiled in but not usable here: {reason}")]
    Unavailable {
        /// The backend asked for.
        name: String,
        /// What the backend said.
        reason: String,
    },
}

impl BackendChoice {
    const ALL: [BackendChoice; 6] = [
        BackendChoice::Cpu,
        BackendChoice::Flex,
        BackendChoice::Ndarray,
        BackendChoice::Wgpu,
        BackendChoice::Vulkan,
        BackendChoice::Cuda,
    ];

    /// The name used by `--device`.
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Cpu => "cpu",
            BackendChoice::Flex => "flex",
            BackendChoice::Ndarray => "ndarray",
            BackendChoice::Wgpu => "wgpu",
            BackendChoice::Vulkan => "vulkan",
            BackendChoice::Cuda => "cuda",
        }
    }

    fn feature(self) -> &'static str {
        match self {
            BackendChoice::Cpu | BackendChoice::Flex => "flex",
            other => other.name(),
        }
    }

    /// Whether this build can run it.
    pub fn is_compiled(self) -> bool {
        match self {
            BackendChoice::Cpu => cfg!(any(feature = "flex", feature = "ndarray")),
            BackendChoice::Flex => cfg!(feature = "flex"),
            BackendChoice::Ndarray => cfg!(feature = "ndarray"),
            BackendChoice::Wgpu => cfg!(feature = "wgpu"),
            BackendChoice::Vulkan => cfg!(feature = "vulkan"),
            BackendChoice::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The `--device` names this build accepts, comma separated.
    pub fn supported() -> String {
        Self::ALL
            .iter()
            .filter(|b| b.is_compiled())
            .map(|b| b.name())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the backend has several devices to choose from by index
    /// (`cuda:1`, `wgpu:1`); the CPU backends have one.
    fn indexed(self) -> bool {
        matches!(
            self,
            BackendChoice::Wgpu | BackendChoice::Vulkan | BackendChoice::Cuda
        )
    }

    /// The Burn device, without checking that it works: device `index` of
    /// the backend (for wgpu and Vulkan the index-th discrete GPU), or its
    /// default device.
    #[allow(deprecated, unreachable_code, unused_variables)] // NdArray is deprecated upstream but still offered.
    fn device(self, index: Option<usize>) -> Result<Device, BackendError> {
        if !self.is_compiled() {
            return Err(BackendError::NotCompiled {
                name: self.name().to_string(),
                feature: self.feature(),
                supported: Self::supported(),
            });
        }
        Ok(match self {
            #[cfg(feature = "flex")]
            BackendChoice::Cpu | BackendChoice::Flex => Device::flex(),
            #[cfg(all(feature = "ndarray", not(feature = "flex")))]
            BackendChoice::Cpu => Device::ndarray(),
            #[cfg(feature = "ndarray")]
            BackendChoice::Ndarray => Device::ndarray(),
            #[cfg(feature = "wgpu")]
            BackendChoice::Wgpu => Device::wgpu(gpu_kind(index)),
            #[cfg(feature = "vulkan")]
            BackendChoice::Vulkan => Device::vulkan(gpu_kind(index)),
            #[cfg(feature = "cuda")]
            BackendChoice::Cuda => Device::cuda(index.unwrap_or(0)),
            _ => unreachable!("is_compiled() checked the feature"),
        })
    }

    /// The Burn device, checked by running one small operation on it, so a
    /// missing GPU or driver is an error here rather than a panic mid-run.
    /// It also installs recipe's fused kernels ([`install_kernels`]), which
    /// apply only to tensors of the backend they are written for.
    pub fn select(self) -> Result<Device, BackendError> {
        self.select_at(None)
    }

    /// [`BackendChoice::select`] for device `index` of the backend.
    pub fn select_at(self, index: Option<usize>) -> Result<Device, BackendError> {
        install_kernels()?;
        let device = self.device(index)?;
        let name = match index {
            Some(index) => format!("{}:{index}", self.name()),
            None => self.name().to_string(),
        };
        let hint = match (self, index) {
            (BackendChoice::Wgpu | BackendChoice::Vulkan, Some(_)) => {
                " (the index counts discrete GPUs; the name alone takes the best device wgpu finds)"
            }
            _ => "",
        };
        let probe = device.clone();
        let previous_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let outcome = std::panic::catch_unwind(move || {
            let x = Tensor::<1>::from_floats([1.0, 2.0], &probe);
            x.sum().into_scalar::<f32>()
        });
        std::panic::set_hook(previous_hook);
        match outcome {
            Ok(3.0) => Ok(device),
            Ok(sum) => Err(BackendError::Unavailable {
                name,
                reason: format!("a test sum gave {sum}, expected 3{hint}"),
            }),
            Err(panic) => Err(BackendError::Unavailable {
                name,
                reason: panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "the backend panicked".to_string())
                    + hint,
            }),
        }
    }
}

impl fmt::Display for BackendChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendChoice {
    type Err = BackendError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let name = text.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| BackendError::Unknown {
                name: text.to_string(),
                supported: Self::supported(),
            })
    }
}

/// The wgpu device kind for an index: the index-th discrete GPU, or the
/// best available device.
#[cfg(any(feature = "wgpu", feature = "vulkan"))]
fn gpu_kind(index: Option<usize>) -> burn::tensor::DeviceKind {
    match index {
        Some(index) => burn::tensor::DeviceKind::DiscreteGpu(index),
        None => burn::tensor::DeviceKind::DefaultDevice,
    }
}

/// Parses a `--device` name, `NAME` or `NAME:INDEX` (`cuda:1`; for wgpu and
/// Vulkan the index-th discrete GPU), or a worker's address
/// `ws://HOST:PORT/INDEX` (feature `remote`), and returns a working device.
pub fn select_device(name: &str) -> Result<Device, BackendError> {
    if WorkerAddress::is_remote(name) {
        return Ok(remote_device(name.parse()?)?);
    }
    let (backend, index) = match name.split_once(':') {
        Some((backend, index)) => (backend, Some(index)),
        None => (name, None),
    };
    let choice: BackendChoice = backend.parse()?;
    let index = match index {
        None => None,
        Some(_) if !choice.indexed() => {
            return Err(BackendError::NoIndex {
                name: name.to_string(),
                backend: choice.name(),
            });
        }
        Some(index) => Some(index.trim().parse().map_err(|_| BackendError::BadIndex {
            name: name.to_string(),
        })?),
    };
    choice.select_at(index)
}

#[cfg(feature = "remote")]
fn remote_device(worker: WorkerAddress) -> Result<Device, RemoteError> {
    worker.connect()
}

#[cfg(not(feature = "remote"))]
fn remote_device(worker: WorkerAddress) -> Result<Device, RemoteError> {
    Err(RemoteError::NotCompiled {
        given: worker.to_string(),
    })
}

/// The environment variable that names the device wherever no `--device` is
/// given: the CLI, the examples and the integration tests read it, so
/// `RECIPE_DEVICE=wgpu cargo test --features wgpu` runs the tests on wgpu.
pub const DEVICE_ENV: &str = "RECIPE_DEVICE";

/// The device that [`DEVICE_ENV`] names, or the CPU where it is unset.
pub fn device_from_env() -> Result<Device, BackendError> {
    select_device(&std::env::var(DEVICE_ENV).unwrap_or_else(|_| "cpu".to_string()))
}

/// The environment variable that chooses between recipe's fused kernels
/// (`recipe`, the default) and Burn's own tensor code everywhere (`burn`):
/// to measure what the kernels bring, or to rule them out.
pub const KERNELS_ENV: &str = "RECIPE_KERNELS";

/// Installs the fused kernels of the backends compiled in: the CPU
/// optimizers and activations of `recipe-flex` (tensors in Flex's memory),
/// and the GPU activations and SGD update of `recipe-cube` (tensors on a
/// Cube device; the update runs inside recipe-flex's fused SGD, so a build
/// without `flex` keeps Burn's SGD on the GPU).
/// Each declines the other's tensors, so one pair serves every device.
/// With [`KERNELS_ENV`]`=burn` it uninstalls them instead.
pub fn install_kernels() -> Result<(), BackendError> {
    if kernels_from_env()? == "burn" {
        recipe_models::kernels::uninstall_activation_kernels();
        recipe_train::uninstall_optimizer_kernels();
    } else {
        install_recipe_kernels();
    }
    Ok(())
}

/// Which kernels [`KERNELS_ENV`] asks for: `recipe` (also where it is
/// unset) or `burn`; an error naming the variable for anything else.
pub fn kernels_from_env() -> Result<&'static str, BackendError> {
    match std::env::var(KERNELS_ENV).as_deref() {
        Err(_) | Ok("recipe") => Ok("recipe"),
        Ok("burn") => Ok("burn"),
        Ok(value) => Err(BackendError::Kernels {
            value: value.to_string(),
        }),
    }
}

fn install_recipe_kernels() {
    #[cfg(feature = "flex")]
    recipe_flex::install();
    #[cfg(all(
        feature = "flex",
        any(feature = "wgpu", feature = "vulkan", feature = "cuda")
    ))]
    {
        recipe_models::install_activation_kernels((
            recipe_flex::FlexActivations,
            recipe_cube::CubeActivations,
        ));
        recipe_train::install_optimizer_kernels((
            recipe_flex::FlexKernels,
            recipe_cube::CubeOptimizers,
        ));
    }
    #[cfg(all(
        not(feature = "flex"),
        any(feature = "wgpu", feature = "vulkan", feature = "cuda")
    ))]
    recipe_cube::install();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_works_and_unknown_names_list_what_is_supported() {
        let device = select_device("cpu").unwrap();
        assert!(!device.is_autodiff());
        let err = select_device("tpu").unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu`"), "{err}");
        assert!(err.contains("cpu"), "{err}");
    }

    #[test]
    fn indices_go_to_gpu_backends_only() {
        let err = select_device("cpu:1").unwrap_err().to_string();
        assert!(err.contains("has one device and takes no index"), "{err}");
        let err = select_device("cuda:one").unwrap_err().to_string();
        assert!(err.contains("NAME:INDEX"), "{err}");
        let err = select_device("tpu:1").unwrap_err().to_string();
        assert!(err.contains("unknown device `tpu`"), "{err}");
        if !BackendChoice::Cuda.is_compiled() {
            let err = select_device("cuda:1").unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }

    #[test]
    fn backends_left_out_of_the_build_say_which_feature_adds_them() {
        for choice in BackendChoice::ALL {
            if !choice.is_compiled() {
                let err = choice.select().unwrap_err().to_string();
                assert!(
                    err.contains(&format!("--features {}", choice.feature())),
                    "{err}"
                );
            }
        }
    }
}
