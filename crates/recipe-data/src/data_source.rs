//! Where a run's data comes from, as `config.json` records it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{CsvSource, DatasetKind};

/// The data of a run that recipe loads itself (`train_mlp`, the CLI,
/// resume): an IDX image set by name, or a CSV table. In `config.json` an
/// image set is its name (`"mnist"`), a table an object (see [`CsvSource`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum DataSource {
    /// MNIST or Fashion-MNIST, found on disk.
    Idx(DatasetKind),
    /// A CSV table of numeric features and a label column.
    Csv(CsvSource),
}

impl DataSource {
    /// The image set, if this is one.
    pub fn idx(&self) -> Option<DatasetKind> {
        match self {
            DataSource::Idx(kind) => Some(*kind),
            DataSource::Csv(_) => None,
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
        for source in [idx, csv] {
            let text = serde_json::to_string(&source).unwrap();
            assert_eq!(serde_json::from_str::<DataSource>(&text).unwrap(), source);
        }
    }
}
