//! One parameter tensor as penalties and constraints see it: where it sits
//! in the network, its shape, and its values grouped by unit.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;

/// Where a parameter sits in a network and what shape it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamInfo {
    /// Dotted path from the network's root, e.g. `layers.0.linear.weight`
    /// or `conv1.weight`.
    pub path: String,
    /// The type of the module that holds it, e.g. `Linear`, `Conv2d`,
    /// `Activation` (what Burn's derive names the struct or enum).
    pub module: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Whether training moves it. False for a buffer that Burn visits as
    /// a parameter (batch normalization's running mean and variance) and
    /// for a parameter frozen with `set_require_grad(false)` (`no_grad`)
    /// after Burn drew its values, which no selector picks. Both are told
    /// apart only on an autodiff device (the training network); a
    /// parameter frozen before its lazy initialization counts as
    /// trainable, since asking would draw its values then.
    pub trainable: bool,
}

impl ParamInfo {
    /// A trainable parameter at `path` in a module of type `module`.
    pub fn new(path: impl Into<String>, module: impl Into<String>, shape: Vec<usize>) -> Self {
        Self {
            path: path.into(),
            module: module.into(),
            shape,
            trainable: true,
        }
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Whether the parameter is a bias (its name is `bias`).
    pub fn is_bias(&self) -> bool {
        is_bias_path(&self.path)
    }

    /// The axis that indexes output units:
    /// - a linear weight `[d_input, d_output]` (Burn's layout): 1;
    /// - a convolution kernel `[out_channels, in_channels / groups, k...]`: 0;
    /// - a transposed convolution kernel `[in_channels, out_channels / groups, k...]`: 1;
    /// - any other rank-2 parameter: the last axis, as for a linear weight;
    /// - a rank-1 parameter: 0 (each value is a unit of its own).
    pub fn unit_axis(&self) -> usize {
        match self.rank() {
            0 | 1 => 0,
            2 => 1,
            _ if self.module.starts_with("ConvTranspose") => 1,
            _ => 0,
        }
    }

    /// Number of output units.
    pub fn units(&self) -> usize {
        self.shape.get(self.unit_axis()).copied().unwrap_or(1)
    }

    /// Weights per unit (the fan-in).
    pub fn fan_in(&self) -> usize {
        let total: usize = self.shape.iter().product();
        total / self.units().max(1)
    }
}

/// Whether the parameter at `path` is named `bias`.
pub(crate) fn is_bias_path(path: &str) -> bool {
    path == "bias" || path.ends_with(".bias")
}

/// A parameter's values as a matrix of units: for a linear weight the
/// `[d_input, d_output]` matrix itself (`unit_dim` 1: a unit per column);
/// for a convolution kernel `[out_channels, rest]` (`unit_dim` 0: a unit
/// per row); for a rank-1 parameter `[1, n]` (`unit_dim` 1).
#[derive(Debug, Clone)]
pub struct ParamTensor {
    /// Where the parameter sits.
    pub info: ParamInfo,
    /// The values, grouped by unit along `unit_dim`.
    pub matrix: Tensor<2>,
    /// 0 when units are rows, 1 when units are columns.
    pub unit_dim: usize,
}

impl ParamTensor {
    /// Every value, flattened in the parameter's own order when `unit_dim`
    /// follows it (always for linear weights and convolution kernels).
    pub fn flat(&self) -> Tensor<1> {
        self.matrix.clone().reshape([-1])
    }

    /// The L2 norm of each unit's weights, shaped to broadcast against
    /// [`ParamTensor::matrix`]: `[1, units]` or `[units, 1]`.
    pub fn unit_norms(&self) -> Tensor<2> {
        self.unit_sums(self.matrix.clone().powi_scalar(2)).sqrt()
    }

    /// A tensor shaped like [`ParamTensor::matrix`] (e.g. a gradient)
    /// brought back to the parameter's own shape, `D` being its rank.
    pub fn to_param_shape<const D: usize>(&self, matrix: Tensor<2>) -> Tensor<D> {
        let dims: [usize; D] = std::array::from_fn(|i| self.info.shape[i]);
        let axis = self.info.unit_axis();
        if D < 2 || axis == D - 1 || axis == 0 {
            return matrix.reshape(dims);
        }
        let mut moved = dims;
        moved.swap(0, axis);
        matrix.reshape(moved).swap_dims(0, axis)
    }

    /// Sums `values` (shaped like the matrix) over each unit's weights.
    pub fn unit_sums(&self, values: Tensor<2>) -> Tensor<2> {
        values.sum_dim(1 - self.unit_dim)
    }

    pub(crate) fn from_param<const D: usize>(info: ParamInfo, values: Tensor<D>) -> Self {
        let axis = info.unit_axis();
        let dims = values.dims();
        let (matrix, unit_dim) = if D < 2 {
            (values.reshape([1, dims.iter().product::<usize>()]), 1)
        } else if axis == D - 1 {
            let units = dims[D - 1];
            (
                values.reshape([dims.iter().product::<usize>() / units, units]),
                1,
            )
        } else {
            // Bring the unit axis first (a copy only when it is not already).
            let moved = if axis == 0 {
                values
            } else {
                values.swap_dims(0, axis)
            };
            let units = dims[axis];
            (
                moved.reshape([units, dims.iter().product::<usize>() / units]),
                0,
            )
        };
        Self {
            info,
            matrix,
            unit_dim,
        }
    }

    /// Puts a matrix of this layout back into the parameter's shape.
    fn into_param<const D: usize>(info: &ParamInfo, matrix: Tensor<2>) -> Tensor<D> {
        let axis = info.unit_axis();
        let mut dims = [0usize; D];
        dims.copy_from_slice(&info.shape);
        if D < 2 || axis == D - 1 || axis == 0 {
            return matrix.reshape(dims);
        }
        let mut moved = dims;
        moved.swap(0, axis);
        matrix.reshape(moved).swap_dims(0, axis)
    }
}

/// Tracks the dotted path and the holding module while Burn walks a module.
#[derive(Debug, Default)]
pub(crate) struct PathStack {
    names: Vec<String>,
    modules: Vec<String>,
}

impl PathStack {
    pub(crate) fn enter(&mut self, name: &str, container_type: &str) {
        self.names.push(name.to_string());
        let module = container_type
            .split_once(':')
            .map_or(container_type, |(_, name)| name);
        self.modules.push(module.to_string());
    }

    pub(crate) fn exit(&mut self) {
        self.names.pop();
        self.modules.pop();
    }

    /// The info of `param`, the parameter Burn is visiting.
    pub(crate) fn info<const D: usize>(&self, param: &Param<Tensor<D>>) -> ParamInfo {
        // `lazy_shape`, not `dims`: listing a parameter must not
        // initialize it (that would draw its random values now, from
        // whatever seed the device holds at this moment).
        ParamInfo {
            path: self.path(),
            module: self.modules.last().cloned().unwrap_or_default(),
            shape: param.lazy_shape().to_vec(),
            trainable: is_trainable(param),
        }
    }

    /// The dotted path of the parameter Burn is visiting.
    pub(crate) fn path(&self) -> String {
        self.names.join(".")
    }
}

/// Whether training moves `param`: an uninitialized parameter always (it
/// is a lazily drawn weight), an initialized one unless its tensor lives on
/// an autodiff device without requiring a gradient (a running statistic, a
/// frozen parameter). On a device without autodiff nothing tells them apart.
fn is_trainable<const D: usize>(param: &Param<Tensor<D>>) -> bool {
    if !param.is_initialized() {
        return true;
    }
    let value = param.base();
    !value.is_autodiff() || value.is_require_grad()
}

/// The sum of the squared entries of one parameter's gradient.
pub(crate) struct GradientSquares {
    /// The parameter's dotted path.
    pub(crate) path: String,
    /// The parameter's rank (2 or more for a weight).
    pub(crate) rank: usize,
    /// Shape `[1]`, on the gradient's device, not read back.
    pub(crate) sum: Tensor<1>,
}

/// The squared-gradient sum of every float parameter of `module` that has a
/// gradient in `grads`, in the module's order.
pub(crate) fn gradient_squares<M: Module>(
    module: &M,
    grads: &GradientsParams,
) -> Vec<GradientSquares> {
    struct Visitor<'a> {
        grads: &'a GradientsParams,
        stack: PathStack,
        found: Vec<GradientSquares>,
    }
    impl ModuleVisitor for Visitor<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.stack.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.stack.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(grad) = self.grads.get::<D>(param.id) {
                self.found.push(GradientSquares {
                    path: self.stack.path(),
                    rank: D,
                    sum: grad.square().sum(),
                });
            }
        }
    }
    let mut visitor = Visitor {
        grads,
        stack: PathStack::default(),
        found: Vec::new(),
    };
    module.visit(&mut visitor);
    visitor.found
}

/// Calls `visit` with every float parameter of `module` that `select`
/// picks, as a [`ParamTensor`] (values in the graph, so penalties get
/// gradients).
pub fn visit_params<M: Module>(
    module: &M,
    select: impl FnMut(&ParamInfo) -> bool,
    visit: impl FnMut(ParamTensor),
) {
    struct Visitor<S, F> {
        stack: PathStack,
        select: S,
        visit: F,
    }
    impl<S: FnMut(&ParamInfo) -> bool, F: FnMut(ParamTensor)> ModuleVisitor for Visitor<S, F> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.stack.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.stack.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let info = self.stack.info(param);
            if (self.select)(&info) {
                (self.visit)(ParamTensor::from_param(info, param.val()));
            }
        }
    }
    module.visit(&mut Visitor {
        stack: PathStack::default(),
        select,
        visit,
    });
}

/// The [`ParamInfo`] of every float parameter of `module`, in visiting order.
pub fn param_infos<M: Module>(module: &M) -> Vec<ParamInfo> {
    let mut infos = Vec::new();
    visit_params(
        module,
        |info| {
            infos.push(info.clone());
            false
        },
        |_| {},
    );
    infos
}

/// Replaces every float parameter that `select` picks by the matrix that
/// `update` returns for it (in the [`ParamTensor`] layout), outside the
/// autodiff graph: the new values keep the parameter's identity and stay
/// trainable.
pub fn map_params<M: Module>(
    module: M,
    select: impl FnMut(&ParamInfo) -> bool,
    update: impl FnMut(&ParamTensor) -> Tensor<2>,
) -> M {
    struct Mapper<S, F> {
        stack: PathStack,
        select: S,
        update: F,
    }
    impl<S, F> ModuleMapper for Mapper<S, F>
    where
        S: FnMut(&ParamInfo) -> bool,
        F: FnMut(&ParamTensor) -> Tensor<2>,
    {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.stack.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.stack.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let info = self.stack.info(&param);
            if !(self.select)(&info) {
                return param;
            }
            let update = &mut self.update;
            param.map(|tensor| {
                let tracked = tensor.is_require_grad();
                let autodiff = tensor.is_autodiff();
                let view = ParamTensor::from_param(info.clone(), tensor.without_autodiff());
                let values: Tensor<D> = ParamTensor::into_param(&info, update(&view));
                let values = if autodiff { values.autodiff() } else { values };
                if tracked {
                    values.require_grad()
                } else {
                    values
                }
            })
        }
    }
    module.map(&mut Mapper {
        stack: PathStack::default(),
        select,
        update,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::conv::Conv2dConfig;
    use burn::tensor::Device;
    use recipe_models::{ActivationConfig, MlpConfig};

    fn trainable(module: &impl Module) -> Vec<(String, bool)> {
        param_infos(module)
            .into_iter()
            .map(|info| (info.path, info.trainable))
            .collect()
    }

    /// On the training (autodiff) device, batch norm's running statistics
    /// and a frozen parameter are known not to train; on a plain device
    /// nothing tells them apart.
    #[test]
    fn running_statistics_and_frozen_parameters_do_not_train() {
        use burn::nn::{BatchNormConfig, LinearConfig};
        let expect = |pairs: &[(&str, bool)]| -> Vec<(String, bool)> {
            pairs
                .iter()
                .map(|(path, t)| (path.to_string(), *t))
                .collect()
        };
        let norm = BatchNormConfig::new(2).init(&Device::flex().autodiff());
        assert_eq!(
            trainable(&norm),
            expect(&[
                ("gamma", true),
                ("beta", true),
                ("running_mean", false),
                ("running_var", false)
            ])
        );
        let norm = BatchNormConfig::new(2).init(&Device::flex());
        assert!(trainable(&norm).iter().all(|(_, t)| *t));

        let device = Device::flex().autodiff();
        let linear = LinearConfig::new(2, 2).init(&device);
        let _ = linear.forward(Tensor::<2>::zeros([1, 2], &device));
        assert_eq!(
            trainable(&linear),
            expect(&[("weight", true), ("bias", true)])
        );
        let frozen = linear.no_grad();
        assert_eq!(
            trainable(&frozen),
            expect(&[("weight", false), ("bias", false)])
        );
        // Frozen before Burn drew its values: counted as trainable, since
        // asking would draw them now.
        let lazy = LinearConfig::new(2, 2).init(&device).no_grad();
        assert_eq!(
            trainable(&lazy),
            expect(&[("weight", true), ("bias", true)])
        );
    }

    #[test]
    fn paths_modules_and_unit_axes() {
        let device = Device::flex();
        let mlp = MlpConfig::new(4, vec![3], 2)
            .with_activation(vec![ActivationConfig::maxout(2)])
            .init(&device)
            .unwrap();
        let infos = param_infos(&mlp);
        let weight = &infos[0];
        assert_eq!(weight.path, "layers.0.linear.weight");
        assert_eq!(weight.module, "Linear");
        assert_eq!(weight.shape, vec![4, 6]);
        assert_eq!(
            (weight.unit_axis(), weight.units(), weight.fan_in()),
            (1, 6, 4)
        );
        assert!(infos[1].is_bias());

        let conv = Conv2dConfig::new([3, 5], [2, 2]).init(&device);
        let kernel = &param_infos(&conv)[0];
        assert_eq!(
            (kernel.module.as_str(), kernel.shape.clone()),
            ("Conv2d", vec![5, 3, 2, 2])
        );
        assert_eq!(
            (kernel.unit_axis(), kernel.units(), kernel.fan_in()),
            (0, 5, 12)
        );
    }

    /// Listing parameters (as `TrainConfig::check_hooks` does before
    /// training) must not initialize Burn's lazy parameters: that would draw
    /// their random values from the seed the device holds at that moment, not
    /// the one the run's first forward pass sees.
    #[test]
    fn listing_parameters_leaves_them_uninitialized() {
        let device = Device::flex();
        let mlp = MlpConfig::new(4, vec![3], 2).init(&device).unwrap();
        assert!(!mlp.layers[0].linear.weight.is_initialized());
        assert_eq!(param_infos(&mlp).len(), 4);
        assert!(!mlp.layers[0].linear.weight.is_initialized());
        assert!(!mlp.output.weight.is_initialized());
    }

    /// A conv kernel's unit matrix has one row per output filter, and
    /// `map_params` puts it back in place unchanged.
    #[test]
    fn conv_kernels_group_by_filter_and_map_back() {
        let device = Device::flex();
        let conv = Conv2dConfig::new([2, 3], [2, 2]).init(&device);
        let before = conv.weight.val().into_data();
        let mut seen = Vec::new();
        visit_params(
            &conv,
            |info| !info.is_bias(),
            |param| seen.push((param.unit_dim, param.matrix.dims())),
        );
        assert_eq!(seen, vec![(0, [3, 8])]);
        let same = map_params(conv, |_| true, |param| param.matrix.clone());
        assert_eq!(same.weight.val().into_data(), before);
    }
}
