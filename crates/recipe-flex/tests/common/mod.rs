//! What the folding tests share: a small net, a fixed batch, its weights.

use burn::tensor::{Device, Int, Tensor, TensorData};
use recipe_data::ClassBatch;
use recipe_models::{ActivationConfig, Mlp, MlpConfig};

/// Every weight and bias of `net`, layer by layer.
pub fn weights(net: &Mlp) -> Vec<f32> {
    let linears = net.layers.iter().map(|l| &l.linear).chain([&net.output]);
    linears
        .flat_map(|linear| {
            let weight = linear.weight.val().into_data().try_to_vec::<f32>().unwrap();
            let bias = linear.bias.as_ref().unwrap().val().into_data();
            weight.into_iter().chain(bias.try_to_vec::<f32>().unwrap())
        })
        .collect()
}

/// A 6-8-5-3 net of `activation` whose weights are drawn now (Burn draws
/// them at their first use, and its random numbers are shared with the
/// other tests' threads), and a fixed batch of 12 inputs.
pub fn net_and_batch(
    activation: ActivationConfig,
    device: &Device,
) -> (Mlp, ClassBatch<Tensor<2>>) {
    let net = MlpConfig::new(6, vec![8, 5], 3)
        .with_activation(vec![activation])
        .init(device)
        .unwrap();
    let _ = net.forward(Tensor::zeros([1, 6], device));
    let inputs: Vec<f32> = (0..72)
        .map(|i| ((i * 37) % 17) as f32 / 17.0 - 0.5)
        .collect();
    let batch = ClassBatch {
        inputs: Tensor::<2>::from_data(TensorData::new(inputs, [12, 6]), device),
        targets: Tensor::<1, Int>::from_ints([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], device),
    };
    (net, batch)
}
