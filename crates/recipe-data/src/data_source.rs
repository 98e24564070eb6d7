//! Where a run's data comes from, as `config.json` records it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CsvSource, DataInfo, DatasetKind};

/// Where a run's data comes from: an IDX image set by name or a CSV table,
/// which recipe loads itself (`train_mlp`, the CLI, resume), or data handed
/// to the trainer in code, recorded as its provider describes it. In
/// `config.json` an image set is its name (`"mnist"`), a table an object
/// (see [`CsvSource`]), provided data its [`DataInfo`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum DataSource {
    /// MNIST or Fashion-MNIST, found on disk.
    Idx(DatasetKind),
    /// A CSV table of numeric features and a label column.
    Csv(CsvSource),
    /// Data your code loaded and handed to the trainer (your own datasets,
    /// or recipe's providers used directly), as its [`DataInfo`] describes
    /// it. recipe cannot load it again: a resume gets it from your code.
    Provided(DataInfo),
}

impl DataSource {
    /// The name its provider gives the data ([`DataInfo::name`]): the image
    /// set's name, the CSV file's name, or provided data's own.
    pub fn data_name(&self) -> String {
        match self {
            DataSource::Idx(kind) => kind.to_string(),
            DataSource::Csv(source) => source.data_name(),
            DataSource::Provided(info) => info.name.clone(),
        }
    }

    /// The image set, if this is one.
    pub fn idx(&self) -> Option<DatasetKind> {
        match self {
            DataSource::Idx(kind) => Some(*kind),
            DataSource::Csv(_) | DataSource::Provided(_) => None,
        }
    }
}

impl Default for DataSource {
    fn default() -> Self {
        DataSource::Idx(DatasetKind::default())
    }
}

impl From<DatasetKind> for DataSource {
    fn from(kind: DatasetKind) -> Self {
        DataSource::Idx(kind)
    }
}

impl From<CsvSource> for DataSource {
    fn from(source: CsvSource) -> Self {
        DataSource::Csv(source)
    }
}

impl fmt::Display for DataSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataSource::Idx(kind) => kind.fmt(f),
            DataSource::Csv(source) => write!(f, "{}", source.path.display()),
            DataSource::Provided(info) => write!(f, "{} (provided in code)", info.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image set stays a bare name in JSON (as `config.json` had it
    /// before tables existed); a table is an object; both read back.
    #[test]
    fn json_forms() {
        let idx = DataSource::from(DatasetKind::FashionMnist);
        assert_eq!(serde_json::to_string(&idx).unwrap(), "\"fashion-mnist\"");
        let csv = DataSource::from(CsvSource::new("t.csv", "label"));
        let json = serde_json::to_string(&csv).unwrap();
        assert!(
            json.starts_with("{\"path\":\"t.csv\",\"label\":\"label\""),
            "{json}"
        );
        let provided = DataSource::Provided(DataInfo {
            name: "points".into(),
            input_shape: vec![2],
            classes: 3,
            split_sizes: [80, 10, 10],
            ..DataInfo::default()
        });
        let json = serde_json::to_string(&provided).unwrap();
        assert!(json.starts_with("{\"name\":\"points\""), "{json}");
        for source in [idx, csv, provided] {
            let text = serde_json::to_string(&source).unwrap();
            assert_eq!(serde_json::from_str::<DataSource>(&text).unwrap(), source);
        }
    }
}
