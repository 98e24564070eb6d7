//! Reading many one-number tensors back from the device at once.

use burn::tensor::{Device, Tensor, TensorData, TensorReadError, Transaction};

/// The first element of each tensor as `f64`, read with one transaction
/// per device (a transaction reads from one device).
pub(crate) fn read_scalars<'a>(
    tensors: impl Iterator<Item = &'a Tensor<1>>,
) -> Result<Vec<f64>, TensorReadError> {
    let tensors: Vec<&Tensor<1>> = tensors.collect();
    // Each device's tensors, by their position in `tensors`.
    let mut groups: Vec<(Device, Vec<usize>)> = Vec::new();
    for (position, tensor) in tensors.iter().enumerate() {
        let device = tensor.device();
        match groups.iter_mut().find(|(known, _)| *known == device) {
            Some((_, positions)) => positions.push(position),
            None => groups.push((device, vec![position])),
        }
    }
    let mut values = vec![0.0; tensors.len()];
    for (_, positions) in groups {
        let transaction = positions.iter().fold(Transaction::default(), |t, &i| {
            t.register(tensors[i].clone())
        });
        for (&position, data) in positions.iter().zip(transaction.try_execute()?) {
            values[position] = first_value(data)?;
        }
    }
    Ok(values)
}

fn first_value(data: TensorData) -> Result<f64, TensorReadError> {
    let actual = data.num_elements();
    data.iter::<f64>()
        .next()
        .ok_or(TensorReadError::InvalidShape {
            expected: 1,
            actual,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_tensors_first_number_in_order() {
        let device = Device::flex();
        let tensors = [
            Tensor::<1>::from_floats([1.5], &device),
            Tensor::<1>::from_floats([-2.0, 9.0], &device),
            Tensor::<1>::from_floats([0.25], &device),
        ];
        assert_eq!(read_scalars(tensors.iter()).unwrap(), [1.5, -2.0, 0.25]);
    }

    #[test]
    fn an_empty_tensor_is_an_error_not_a_zero() {
        let device = Device::flex();
        let tensors = [Tensor::<1>::zeros([0], &device)];
        let error = read_scalars(tensors.iter()).unwrap_err();
        assert!(error.to_string().contains("Expected 1"), "{error}");
    }
}
