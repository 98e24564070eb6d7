//! A CSV table as a provider: numeric feature columns and a label column.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::{ClassData, DataError, FeatureItem, FeatureSet};

/// Where a CSV table's examples come from and how they are split.
///
/// The table has a header line and one example per row: the column named
/// `label` holds the class (integers `0..`, or names, which are numbered in
/// sorted order), every other column a number. Without a separate test
/// table, the rows are shuffled with `shuffle_seed` and `test_fraction` of
/// them held out for test; `valid_fraction` of the remaining rows validate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvSource {
    /// The table.
    pub path: PathBuf,
    /// The label column's name.
    pub label: String,
    /// A test table with the same columns; `None` holds rows out instead.
    #[serde(default)]
    pub test_path: Option<PathBuf>,
    /// With no test table, the share of rows held out for test.
    pub test_fraction: f64,
    /// The share of the training rows (after the test rows are taken) that
    /// validate.
    pub valid_fraction: f64,
    /// Seed of the row shuffle before splitting.
    pub shuffle_seed: u64,
    /// Standardize each feature with the training rows' mean and standard
    /// deviation (a constant column is only centred).
    pub standardize: bool,
    /// The last [`CsvSource::load`], shared by clones, so that a caller
    /// that loads to learn the data's shape and a trainer that loads to
    /// train read the file once.
    #[serde(skip)]
    loaded: LoadedTable,
}

/// What the table files were when they were read: a file changed since
/// (size or modification time) is read again.
type FileStamps = Vec<Option<(u64, SystemTime)>>;

/// One [`CsvSource::load`]: the settings and file stamps it was loaded
/// with, and the data.
struct Loaded {
    settings: CsvSource,
    stamps: FileStamps,
    data: ClassData<FeatureItem, Tensor<2>>,
}

/// The memo of the last load, shared by clones.
#[derive(Clone, Default)]
struct LoadedTable(Arc<Mutex<Option<Loaded>>>);

impl fmt::Debug for LoadedTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoadedTable")
    }
}

/// The memo is not part of what a source is.
impl PartialEq for LoadedTable {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl CsvSource {
    /// The table at `path` labelled by column `label`: 20% of the rows for
    /// test, 20% of the rest for validation, shuffled with seed 0, features
    /// standardized.
    pub fn new(path: impl Into<PathBuf>, label: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            label: label.into(),
            test_path: None,
            test_fraction: 0.2,
            valid_fraction: 0.2,
            shuffle_seed: 0,
            standardize: true,
            loaded: LoadedTable::default(),
        }
    }

    /// What the loaded data is called: the training table's file name.
    pub fn data_name(&self) -> String {
        self.path.file_name().map_or_else(
            || self.path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        )
    }

    /// Reads the table(s), splits, standardizes, and hands out
    /// `[batch, features]` batches. A second load with the same settings
    /// (by this source or a clone) of unchanged files returns the first
    /// one's data without reading again.
    pub fn load(&self) -> Result<ClassData<FeatureItem, Tensor<2>>, DataError> {
        let stamps = self.file_stamps();
        let mut memo = self.loaded.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(loaded) = memo.as_ref()
            && loaded.settings == *self
            && loaded.stamps == stamps
        {
            return Ok(loaded.data.clone());
        }
        let data = self.read()?;
        // The memo keeps the settings without itself (no cycle of Arcs).
        let settings = Self {
            loaded: LoadedTable::default(),
            ..self.clone()
        };
        *memo = Some(Loaded {
            settings,
            stamps,
            data: data.clone(),
        });
        Ok(data)
    }

    /// The size and modification time of the table files, as far as the
    /// filesystem tells them.
    fn file_stamps(&self) -> FileStamps {
        [Some(&self.path), self.test_path.as_ref()]
            .into_iter()
            .flatten()
            .map(|path| {
                let meta = std::fs::metadata(path).ok()?;
                Some((meta.len(), meta.modified().ok()?))
            })
            .collect()
    }

    fn read(&self) -> Result<ClassData<FeatureItem, Tensor<2>>, DataError> {
        self.check()?;
        let table = CsvTable::read(&self.path, &self.label)?;
        let test_table = match &self.test_path {
            Some(path) => Some(CsvTable::read(path, &self.label)?),
            None => None,
        };
        if let Some(test) = &test_table
            && test.columns != table.columns
        {
            return Err(DataError::table(
                &test.path,
                "header",
                format!(
                    "the feature columns of {}: {:?}",
                    self.path.display(),
                    table.columns
                ),
                format!("{:?}", test.columns),
            ));
        }
        let classes = Classes::from_labels(&table, test_table.as_ref())?;
        let [train_rows, valid_rows, test_rows] = self.split(table.rows())?;
        let width = table.columns.len();
        let pick = |rows: &[usize], from: &CsvTable| -> Result<(Vec<f32>, Vec<usize>), DataError> {
            let mut values = Vec::with_capacity(rows.len() * width);
            let mut labels = Vec::with_capacity(rows.len());
            for &row in rows {
                values.extend_from_slice(from.row(row));
                labels.push(classes.index(from, row)?);
            }
            Ok((values, labels))
        };
        let mut sets = [
            pick(&train_rows, &table)?,
            pick(&valid_rows, &table)?,
            match &test_table {
                Some(test) => pick(&(0..test.rows()).collect::<Vec<_>>(), test)?,
                None => pick(&test_rows, &table)?,
            },
        ];
        let preprocessing = if self.standardize {
            let scaling = Standardization::fit(&sets[0].0, width);
            for (values, _) in &mut sets {
                scaling.apply(values);
            }
            serde_json::json!({
                "features": table.columns,
                "standardize": { "mean": scaling.mean, "std": scaling.std },
            })
        } else {
            serde_json::json!({ "features": table.columns })
        };
        let [train, valid, test] = sets;
        let set =
            |(values, labels): (Vec<f32>, Vec<usize>)| FeatureSet::new(values, &[width], labels);
        FeatureSet::class_data::<2>(
            &self.data_name(),
            [set(train)?, set(valid)?, set(test)?],
            classes.count,
            classes.names,
            preprocessing,
        )
    }

    fn check(&self) -> Result<(), DataError> {
        for (field, value) in [
            ("test_fraction", self.test_fraction),
            ("valid_fraction", self.valid_fraction),
        ] {
            if !(value > 0.0 && value < 1.0) {
                return Err(DataError::invalid(
                    field,
                    "a share strictly between 0 and 1",
                    value,
                ));
            }
        }
        Ok(())
    }

    /// Shuffled row indices cut into train, valid and test; test is empty
    /// when a test table is given.
    fn split(&self, rows: usize) -> Result<[Vec<usize>; 3], DataError> {
        let mut order: Vec<usize> = (0..rows).collect();
        shuffle(&mut order, self.shuffle_seed);
        let test = if self.test_path.is_some() {
            0
        } else {
            (rows as f64 * self.test_fraction).round() as usize
        };
        let valid = ((rows - test) as f64 * self.valid_fraction).round() as usize;
        if test == 0 && self.test_path.is_none() || valid == 0 || rows - test - valid == 0 {
            return Err(DataError::table(
                &self.path,
                "",
                "enough rows for a training, a validation and a test split",
                format!("{rows} rows ({test} for test, {valid} for validation)"),
            ));
        }
        let test_rows = order.split_off(rows - test);
        let valid_rows = order.split_off(rows - test - valid);
        Ok([order, valid_rows, test_rows])
    }
}

/// Fisher-Yates with SplitMix64: the same order on every platform.
fn shuffle(order: &mut [usize], seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    for i in (1..order.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

/// A table as read: feature values row by row, and the raw labels.
#[derive(Debug)]
struct CsvTable {
    path: PathBuf,
    /// The label column's name.
    label: String,
    columns: Vec<String>,
    values: Vec<f32>,
    labels: Vec<String>,
    /// The file's line number of each row, for errors.
    lines: Vec<u64>,
}

impl CsvTable {
    fn read(path: &Path, label: &str) -> Result<Self, DataError> {
        let file = std::fs::File::open(path).map_err(|reason| DataError::Io {
            path: path.to_path_buf(),
            reason,
        })?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(file);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(path, e))?
            .iter()
            .map(|name| name.trim().to_string())
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(DataError::table(
                path,
                "",
                "a header line naming the columns",
                "an empty file",
            ));
        }
        let Some(label_at) = header.iter().position(|name| name == label) else {
            return Err(DataError::table(
                path,
                "header",
                format!("a label column named `{label}`"),
                format!("the columns {header:?}"),
            ));
        };
        let columns: Vec<String> = header
            .iter()
            .enumerate()
            .filter(|&(at, _)| at != label_at)
            .map(|(_, name)| name.clone())
            .collect();
        let mut table = Self {
            path: path.to_path_buf(),
            label: label.to_string(),
            columns,
            values: Vec::new(),
            labels: Vec::new(),
            lines: Vec::new(),
        };
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(path, e))?;
            let line = record.position().map_or(0, |p| p.line());
            for (at, cell) in record.iter().enumerate() {
                if at == label_at {
                    table.labels.push(cell.trim().to_string());
                    continue;
                }
                let value = cell.trim().parse::<f32>().ok().filter(|v| v.is_finite());
                let Some(value) = value else {
                    return Err(DataError::table(
                        path,
                        format!("line {line}, column `{}`", header[at]),
                        "a finite number",
                        format!("`{cell}`"),
                    ));
                };
                table.values.push(value);
            }
            table.lines.push(line);
        }
        if table.labels.is_empty() {
            return Err(DataError::table(
                path,
                "",
                "at least one row after the header",
                "none",
            ));
        }
        Ok(table)
    }

    fn rows(&self) -> usize {
        self.labels.len()
    }

    fn row(&self, row: usize) -> &[f32] {
        let width = self.columns.len();
        &self.values[row * width..(row + 1) * width]
    }
}

fn csv_error(path: &Path, error: csv::Error) -> DataError {
    match error.kind() {
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => DataError::table(
            path,
            format!("line {}", pos.as_ref().map_or(0, |p| p.line())),
            format!("{expected_len} fields, as in the header"),
            format!("{len} fields"),
        ),
        _ => DataError::table(path, "", "a readable CSV table", error),
    }
}

/// How label values become class indices.
struct Classes {
    count: usize,
    /// Empty for integer labels, else the names by index.
    names: Vec<String>,
}

impl Classes {
    /// Integer labels if every label of both tables is one, else names
    /// (those of the training table, sorted).
    fn from_labels(train: &CsvTable, test: Option<&CsvTable>) -> Result<Self, DataError> {
        let all = || {
            train
                .labels
                .iter()
                .chain(test.into_iter().flat_map(|t| &t.labels))
        };
        if all().all(|label| label.parse::<usize>().is_ok()) {
            let count = all()
                .filter_map(|l| l.parse::<usize>().ok())
                .max()
                .unwrap_or(0)
                + 1;
            return Ok(Self {
                count,
                names: Vec::new(),
            });
        }
        let names: BTreeSet<&String> = train.labels.iter().collect();
        Ok(Self {
            count: names.len(),
            names: names.into_iter().cloned().collect(),
        })
    }

    fn index(&self, table: &CsvTable, row: usize) -> Result<usize, DataError> {
        let label = &table.labels[row];
        let found = if self.names.is_empty() {
            label.parse::<usize>().ok()
        } else {
            self.names.iter().position(|name| name == label)
        };
        found.ok_or_else(|| {
            DataError::table(
                &table.path,
                format!("line {}, column `{}`", table.lines[row], table.label),
                if self.names.is_empty() {
                    "a class index".to_string()
                } else {
                    format!("one of the training table's classes {:?}", self.names)
                },
                format!("`{label}`"),
            )
        })
    }
}

/// Per-column mean and standard deviation of the training rows.
struct Standardization {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Standardization {
    fn fit(values: &[f32], width: usize) -> Self {
        let rows = (values.len() / width).max(1) as f64;
        let mut mean = vec![0.0f64; width];
        for row in values.chunks(width) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64 / rows;
            }
        }
        let mut var = vec![0.0f64; width];
        for row in values.chunks(width) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2) / rows;
            }
        }
        Self {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: var
                .iter()
                .map(|&v| if v > 0.0 { v.sqrt() as f32 } else { 1.0 })
                .collect(),
        }
    }

    fn apply(&self, values: &mut [f32]) {
        for row in values.chunks_mut(self.mean.len()) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::data::dataset::Dataset;

    use super::*;

    /// A file in a fresh temporary folder holding `text`.
    fn table(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("recipe-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn error(source: &CsvSource) -> String {
        source.load().unwrap_err().to_string()
    }

    /// Ten rows, class names: the classes are numbered in sorted order, the
    /// splits (2 test, round(8 x 0.2) = 2 valid, 6 train) partition the
    /// rows, and without standardization every value is as written.
    #[test]
    fn named_labels_split_into_disjoint_sets() {
        let mut text = String::from("x,kind,y\n");
        for row in 0..10 {
            let kind = ["dog", "cat"][row % 2];
            text.push_str(&format!("{row},{kind},{}\n", row * 10));
        }
        let mut source = CsvSource::new(table("named.csv", &text), "kind");
        source.standardize = false;
        let data = source.load().unwrap();
        assert_eq!(data.info.class_names, ["cat", "dog"]);
        assert_eq!(data.info.classes, 2);
        assert_eq!(data.info.input_shape, [2]);
        assert_eq!(data.info.split_sizes, [6, 2, 2]);
        let mut seen = Vec::new();
        for set in data.splits() {
            for index in 0..set.len() {
                let item = set.get(index).unwrap();
                let row = item.values[0] as usize;
                assert_eq!(item.values[1], (row * 10) as f32);
                assert_eq!(item.label, usize::from(row.is_multiple_of(2)), "dog is 1");
                seen.push(row);
            }
        }
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(
            data.info.preprocessing["features"],
            serde_json::json!(["x", "y"])
        );
    }

    /// Integer labels with a separate test table; standardized features
    /// have mean 0 and standard deviation 1 on the training rows, and the
    /// recorded statistics turn the raw test values into the test inputs.
    #[test]
    fn integer_labels_a_test_file_and_standardization() {
        let mut text = String::from("label,a\n");
        for row in 0..20 {
            text.push_str(&format!("{},{}\n", row % 3, row as f32 * 0.5));
        }
        let mut source = CsvSource::new(table("ints.csv", &text), "label");
        source.test_path = Some(table("ints-test.csv", "label,a\n2,100\n0,-4\n"));
        let data = source.load().unwrap();
        assert!(data.info.class_names.is_empty());
        assert_eq!(data.info.classes, 3);
        assert_eq!(data.info.split_sizes, [16, 4, 2]);
        let values: Vec<f32> = (0..data.train.len())
            .map(|i| data.train.get(i).unwrap().values[0])
            .collect();
        let mean = values.iter().sum::<f32>() / 16.0;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 16.0;
        assert!(
            mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
            "{mean} {var}"
        );
        let stats = &data.info.preprocessing["standardize"];
        let (m, s) = (
            stats["mean"][0].as_f64().unwrap(),
            stats["std"][0].as_f64().unwrap(),
        );
        let first = data.test.get(0).unwrap();
        assert_eq!(first.label, 2);
        assert!(((100.0 - m) / s - first.values[0] as f64).abs() < 1e-4);
    }

    /// A clone loads what the first load read; other settings or a
    /// rewritten file read again.
    #[test]
    fn a_second_load_reads_again_only_what_changed() {
        let path = table(
            "memo.csv",
            "a,label\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n7,0\n8,1\n",
        );
        let source = CsvSource::new(&path, "label");
        let first = source.load().unwrap();
        let same = source.clone().load().unwrap();
        assert!(Arc::ptr_eq(&first.train, &same.train), "read once");
        let mut other = source.clone();
        other.standardize = false;
        assert!(!Arc::ptr_eq(&first.train, &other.load().unwrap().train));
        std::fs::write(&path, "a,b,label\n1,1,0\n2,2,1\n3,3,0\n4,4,1\n5,5,0\n").unwrap();
        // A length change is seen even where the clock is too coarse.
        assert_eq!(source.load().unwrap().info.input_shape, [2]);
    }

    #[test]
    fn bad_tables_name_the_file_line_and_column() {
        let cases = [
            ("empty.csv", "", "a header line naming the columns"),
            ("nolabel.csv", "a,b\n1,2\n", "a label column named `kind`"),
            (
                "cell.csv",
                "a,kind\n1,x\n2,y\nthree,x\n",
                "line 4, column `a`: expected a finite number, found `three`",
            ),
            (
                "ragged.csv",
                "a,kind\n1,x\n2,y,7\n",
                "line 3: expected 2 fields, as in the header, found 3 fields",
            ),
            (
                "header-only.csv",
                "a,kind\n",
                "at least one row after the header",
            ),
        ];
        for (name, text, needle) in cases {
            let message = error(&CsvSource::new(table(name, text), "kind"));
            assert!(
                message.contains(needle) && message.contains(name),
                "{message}"
            );
        }
        let mut rows = String::from("a,kind\n");
        for row in 0..10 {
            rows.push_str(&format!("{row},{}\n", ["x", "y"][row % 2]));
        }
        let mut source = CsvSource::new(table("train.csv", &rows), "kind");
        source.test_path = Some(table("test.csv", "a,kind\n1,x\n2,z\n"));
        let message = error(&source);
        assert!(
            message.contains("test.csv, line 3, column `kind`") && message.contains("`z`"),
            "{message}"
        );
        source.test_path = None;
        source.test_fraction = 1.5;
        assert!(error(&source).contains("test_fraction"));
        let tiny = CsvSource::new(table("tiny.csv", "a,kind\n1,x\n2,y\n"), "kind");
        assert!(error(&tiny).contains("enough rows"), "{}", error(&tiny));
    }
}
