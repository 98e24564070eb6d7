use super::*;
use burn::tensor::{TensorData, Tolerance};

fn apply(config: &str, input: [f32; 4]) -> Vec<f32> {
    let device = Device::flex();
    let activation: ActivationConfig = config.parse().unwrap();
    let x = Tensor::<1>::from_floats(input, &device);
    activation
        .init(4, &device)
        .unwrap()
        .forward(x)
        .into_data()
        .try_to_vec::<f32>()
        .unwrap()
}

/// Expected values computed with NumPy 2.4 (float64, printed to 8 digits):
/// ```python
/// x = np.array([-2.0, -0.5, 0.0, 1.5]); sig = 1 / (1 + np.exp(-x))
/// elu = np.where(x > 0, x, np.exp(x) - 1)
/// selu = 1.0507009873554805 * np.where(x > 0, x, 1.6732632423543772 * (np.exp(x) - 1))
/// gelu = 0.5 * x * (1 + erf(x / sqrt(2)))      # math.erf, vectorized
/// silu = x * sig; mish = x * np.tanh(np.log1p(np.exp(x)))
/// softplus_beta2 = np.log1p(np.exp(2 * x)) / 2; hard_sigmoid = np.clip(0.2 * x + 0.5, 0, 1)
/// ```
#[test]
fn element_wise_values_match_numpy() {
    let x = [-2.0, -0.5, 0.0, 1.5];
    let cases: &[(&str, [f64; 4])] = &[
        ("identity", [-2.0, -0.5, 0.0, 1.5]),
        ("sigmoid", [0.11920292, 0.37754067, 0.5, 0.81757448]),
        ("tanh", [-0.96402758, -0.46211716, 0.0, 0.90514825]),
        ("relu", [0.0, 0.0, 0.0, 1.5]),
        ("leaky-relu:0.1", [-0.2, -0.05, 0.0, 1.5]),
        ("prelu:0.25", [-0.5, -0.125, 0.0, 1.5]),
        ("elu", [-0.86466472, -0.39346934, 0.0, 1.5]),
        ("selu", [-1.52016647, -0.69175819, 0.0, 1.57605148]),
        ("gelu", [-0.04550026, -0.15426877, 0.0, 1.3997892]),
        ("silu", [-0.23840584, -0.18877033, 0.0, 1.22636171]),
        ("mish", [-0.25250148, -0.22074377, 0.0, 1.40337827]),
        (
            "softplus:2",
            [0.00907496, 0.15663084, 0.34657359, 1.52429368],
        ),
        ("hard-sigmoid", [0.1, 0.4, 0.5, 0.8]),
    ];
    for (name, expected) in cases {
        let got = apply(name, x);
        TensorData::new(got, [4]).assert_approx_eq::<f32>(
            &TensorData::new(expected.map(|v| v as f32).to_vec(), [4]),
            Tolerance::absolute(1e-5),
        );
    }
}

#[test]
fn names_round_trip_through_display() {
    for name in [
        "identity",
        "sigmoid",
        "relu",
        "leaky-relu:0.2",
        "prelu:0.25",
        "elu:0.5",
        "softplus:3",
        "maxout:4",
        "prelu-per-unit:0.1",
    ] {
        let config: ActivationConfig = name.parse().unwrap();
        assert_eq!(config.to_string(), name);
        assert_eq!(
            config.to_string().parse::<ActivationConfig>().unwrap(),
            config
        );
    }
}

#[test]
fn unknown_and_malformed_names_are_errors() {
    let err = "relux".parse::<ActivationConfig>().unwrap_err();
    assert!(matches!(err, ModelError::UnknownActivation { .. }));
    assert!(err.to_string().contains("leaky-relu"));
    assert!("maxout:0".parse::<ActivationConfig>().is_err());
    assert!("maxout:two".parse::<ActivationConfig>().is_err());
    assert!("relu:3".parse::<ActivationConfig>().is_err());
    assert!("softplus:-1".parse::<ActivationConfig>().is_err());
}

#[test]
fn aliases_resolve_to_their_target() {
    assert_eq!(
        "swish".parse::<ActivationConfig>().unwrap().to_string(),
        "silu"
    );
    assert_eq!(
        "LeakyRelu:0.2"
            .parse::<ActivationConfig>()
            .unwrap()
            .to_string(),
        "leaky-relu:0.2"
    );
    assert_eq!(
        "none".parse::<ActivationConfig>().unwrap(),
        ActivationConfig::identity()
    );
}

/// Maxout is registered like any activation: its linear map has `pieces`
/// outputs per unit, and the unit is their max.
#[test]
fn maxout_combines_pieces() {
    let device = Device::flex();
    let maxout: ActivationConfig = "maxout:3".parse().unwrap();
    assert_eq!(maxout.pieces(), 3);
    let x = Tensor::<2>::from_floats([[1.0, 5.0, -1.0, -2.0, -3.0, -0.5]], &device);
    let y = maxout.init(2, &device).unwrap().forward2(x);
    assert_eq!(y.into_data().try_to_vec::<f32>().unwrap(), vec![5.0, -0.5]);
}

#[test]
fn serde_form_is_the_text_form() {
    let json = serde_json_like(&ActivationConfig::leaky_relu(0.01));
    assert_eq!(json, r#""leaky-relu:0.01""#);
    let back: ActivationConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ActivationConfig::leaky_relu(0.01));
    let err = serde_json::from_str::<ActivationConfig>(r#""relux""#).unwrap_err();
    assert!(
        err.to_string().contains("unknown activation `relux`"),
        "{err}"
    );
}

/// Runs written before activations were open stored them as tagged objects.
#[test]
fn the_old_tagged_form_still_reads() {
    for (json, text) in [
        (r#"{"name":"relu"}"#, "relu"),
        (
            r#"{"name":"leaky-relu","negative_slope":0.1}"#,
            "leaky-relu:0.1",
        ),
        (r#"{"name":"maxout","pieces":3}"#, "maxout:3"),
        (
            r#"{"name":"prelu","num_parameters":1,"alpha":0.25}"#,
            "prelu:0.25",
        ),
        (
            r#"{"name":"prelu","num_parameters":64,"alpha":0.25}"#,
            "prelu-per-unit:0.25",
        ),
    ] {
        let config: ActivationConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.to_string(), text, "{json}");
    }
}

fn serde_json_like(config: &ActivationConfig) -> String {
    burn::config::config_to_json(config)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect()
}

#[derive(Debug)]
struct Doubled;

impl ActivationFn for Doubled {
    fn spec(&self) -> String {
        "doubled-for-test".into()
    }
    fn forward(&self, x: Tensor<2>, _params: &[Tensor<1>]) -> Tensor<2> {
        x.mul_scalar(2.0)
    }
}

#[test]
fn registered_names_resolve_and_cannot_be_taken_twice() {
    register_activation("doubled-for-test", "doubled-for-test", |_| {
        Ok(ActivationConfig::new(Doubled))
    })
    .unwrap();
    let config: ActivationConfig = "doubled_for_test".parse().unwrap();
    assert_eq!(config.to_string(), "doubled-for-test");
    assert!(
        activation_names()
            .iter()
            .any(|name| name.name == "doubled-for-test")
    );
    let again = register_activation("Doubled-For-Test", "x", |_| Ok(ActivationConfig::relu()));
    assert!(again.is_err(), "a second registration must be refused");
    assert!(register_activation("relu", "relu", |_| Ok(ActivationConfig::relu())).is_err());
    assert!(register_activation("bad:name", "x", |_| Ok(ActivationConfig::relu())).is_err());
}
