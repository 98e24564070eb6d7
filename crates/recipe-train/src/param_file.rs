//! A set of parameter values by path, as a file: what the weight averager
//! and the layer recorder keep beside a run to continue it after a resume.
//!
//! Layout: a magic line, a JSON line (`count`, a number the owner gives
//! meaning to, and each parameter's path and matrix shape), then the values
//! as little-endian `f32`, parameter after parameter.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};

use crate::{TrainError, write_atomic};

const MAGIC: &str = "recipe parameters 1";

/// Parameter matrices by path, and a count.
#[derive(Debug)]
pub(crate) struct ParamFile {
    pub(crate) count: usize,
    pub(crate) params: Vec<(String, Tensor<2>)>,
}

impl ParamFile {
    /// Writes the file atomically.
    pub(crate) fn write(&self, path: &Path) -> Result<(), TrainError> {
        let shapes: Vec<(&str, [usize; 2])> = self
            .params
            .iter()
            .map(|(name, values)| (name.as_str(), values.dims()))
            .collect();
        let header = serde_json::json!({ "count": self.count, "params": shapes });
        let mut bytes = format!("{MAGIC}\n{header}\n").into_bytes();
        for (_, values) in &self.params {
            let data = values.clone().into_data().convert::<f32>();
            for value in data.iter::<f32>() {
                bytes.extend_from_slice(&value.to_le_bytes());
            }
        }
        write_atomic(path, &bytes)
    }

    /// Reads what [`ParamFile::write`] wrote, onto `device`; an error names
    /// the file and what is wrong with it.
    pub(crate) fn read(path: &Path, device: &Device) -> Result<Self, TrainError> {
        let bytes = std::fs::read(path).map_err(|e| TrainError::io(path, e))?;
        Self::from_bytes(&bytes, device).map_err(|why| TrainError::io(path, why))
    }

    fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, String> {
        let mut lines = bytes.splitn(3, |&b| b == b'\n');
        if lines.next() != Some(MAGIC.as_bytes()) {
            return Err(format!(
                "not a parameter file recipe wrote (no `{MAGIC}` line)"
            ));
        }
        let header: serde_json::Value = lines
            .next()
            .and_then(|line| serde_json::from_slice(line).ok())
            .ok_or("no readable header line")?;
        let mut values = lines.next().unwrap_or_default();
        let count = header["count"].as_u64().ok_or("no count")? as usize;
        let shapes: Vec<(String, [usize; 2])> = serde_json::from_value(header["params"].clone())
            .map_err(|e| format!("parameter list: {e}"))?;
        let mut params = Vec::with_capacity(shapes.len());
        for (name, shape) in shapes {
            let len = shape[0] * shape[1] * 4;
            if values.len() < len {
                return Err(format!("the values of {name} are cut short"));
            }
            let (these, rest) = values.split_at(len);
            values = rest;
            let floats: Vec<f32> = these
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            params.push((
                name,
                Tensor::from_data(TensorData::new(floats, shape), device),
            ));
        }
        if !values.is_empty() {
            return Err(format!("{} bytes after the last parameter", values.len()));
        }
        Ok(Self { count, params })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_a_cut_file_is_named() {
        let device = Device::flex();
        let dir = std::env::temp_dir().join(format!("recipe-params-{}", std::process::id()));
        let path = dir.join("p.bin");
        let file = ParamFile {
            count: 7,
            params: vec![(
                "layers.0.linear.weight".into(),
                Tensor::from_data(
                    TensorData::new(vec![1.0f32, -2.5, 3.0, 0.25], [2, 2]),
                    &device,
                ),
            )],
        };
        file.write(&path).unwrap();
        let read = ParamFile::read(&path, &device).unwrap();
        assert_eq!(read.count, 7);
        assert_eq!(read.params[0].0, "layers.0.linear.weight");
        assert_eq!(
            read.params[0]
                .1
                .clone()
                .into_data()
                .try_to_vec::<f32>()
                .unwrap(),
            [1.0, -2.5, 3.0, 0.25]
        );
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let error = ParamFile::read(&path, &device).unwrap_err().to_string();
        assert!(
            error.contains("p.bin") && error.contains("cut short"),
            "{error}"
        );
        std::fs::write(&path, b"hello\n").unwrap();
        let error = ParamFile::read(&path, &device).unwrap_err().to_string();
        assert!(error.contains("not a parameter file"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
