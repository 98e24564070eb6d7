//! The IDX format of MNIST: a 4-byte magic (`0, 0, type, ndims`), `ndims`
//! big-endian `u32` sizes, then the data. Files may be gzip-compressed.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::DataError;

/// The IDX type code for unsigned bytes, the only element type MNIST uses.
const UNSIGNED_BYTE: u8 = 0x08;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Sizes of each dimension, outermost first (`[count, rows, cols]` for images).
    pub dims: Vec<usize>,
    /// The elements in row-major order.
    pub data: Vec<u8>,
}

/// Reads an IDX file of unsigned bytes, raw or gzip-compressed (detected by
/// its content, not its name).
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let bytes = fs::read(path).map_err(|reason| DataError::Io {
        path: path.to_path_buf(),
        reason,
    })?;
    decode_idx(&bytes, path)
}

/// Decodes the bytes of an IDX file, raw or gzip-compressed; `path` only
/// names the source in errors. Never panics, whatever the bytes (fuzzed:
/// `fuzz/fuzz_targets/idx.rs`).
pub fn decode_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    let decompressed;
    let bytes = if bytes.starts_with(&GZIP_MAGIC) {
        let mut raw = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut raw)
            .map_err(|reason| DataError::Gzip {
                path: path.to_path_buf(),
                reason,
            })?;
        decompressed = raw;
        &decompressed
    } else {
        bytes
    };
    parse_idx(bytes, path)
}

/// Parses IDX bytes; `path` only names the source in errors.
pub(crate) fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    let format = |expected: &str, found: String| DataError::Format {
        path: path.to_path_buf(),
        expected: expected.to_string(),
        found,
    };
    if bytes.len() < 4 {
        return Err(format(
            "a 4-byte magic number",
            format!("{} bytes in all", bytes.len()),
        ));
    }
    let magic = &bytes[..4];
    if magic[0] != 0 || magic[1] != 0 {
        return Err(format(
            "magic starting with 0x0000",
            format!(
                "0x{:02x}{:02x}{:02x}{:02x}",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    if magic[2] != UNSIGNED_BYTE {
        return Err(format(
            "element type 0x08 (unsigned byte)",
            format!("type 0x{:02x}", magic[2]),
        ));
    }
    let ndims = magic[3] as usize;
    if ndims == 0 {
        return Err(format("at least 1 dimension", "0 dimensions".to_string()));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err(format(
            "a complete header",
            format!(
                "{} bytes, fewer than the {header} the header needs",
                bytes.len()
            ),
        ));
    }
    let dims: Vec<usize> = bytes[4..header]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            format(
                "dimensions whose product fits in memory",
                format!("{dims:?}"),
            )
        })?;
    let data = &bytes[header..];
    if data.len() != expected {
        return Err(DataError::Length {
            path: path.to_path_buf(),
            expected,
            found: data.len(),
        });
    }
    Ok(IdxArray {
        dims,
        data: data.to_vec(),
    })
}

/// Writes an IDX file of unsigned bytes, gzip-compressed when `gzip` is set.
/// The file is written to a temporary name in the same folder, then renamed.
pub fn write_idx(path: &Path, array: &IdxArray, gzip: bool) -> Result<(), DataError> {
    let io = |reason| DataError::Io {
        path: path.to_path_buf(),
        reason,
    };
    let mut bytes = vec![0, 0, UNSIGNED_BYTE, array.dims.len() as u8];
    for &d in &array.dims {
        let d = u32::try_from(d).map_err(|_| {
            DataError::invalid(
                "dims",
                "sizes that fit in a u32",
                format!("{:?}", array.dims),
            )
        })?;
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(&array.data);
    let bytes = if gzip {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&bytes).map_err(io)?;
        encoder.finish().map_err(io)?
    } else {
        bytes
    };
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".tmp");
    let mut file = fs::File::create(&tmp).map_err(io)?;
    file.write_all(&bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("recipe-idx-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        let dir = temp_dir("roundtrip");
        let array = IdxArray {
            dims: vec![3, 2, 2],
            data: (0..12).collect(),
        };
        for gzip in [false, true] {
            let path = dir.join(format!("x-{gzip}.idx"));
            write_idx(&path, &array, gzip).unwrap();
            let raw = fs::read(&path).unwrap();
            assert_eq!(raw.starts_with(&GZIP_MAGIC), gzip);
            assert_eq!(read_idx(&path).unwrap(), array);
        }
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn header_layout_is_the_mnist_one() {
        let dir = temp_dir("layout");
        let path = dir.join("labels.idx1");
        write_idx(
            &path,
            &IdxArray {
                dims: vec![2],
                data: vec![7, 1],
            },
            false,
        )
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), [0, 0, 8, 1, 0, 0, 0, 2, 7, 1]);
        fs::remove_dir_all(dir).unwrap();
    }

    fn parse(bytes: &[u8]) -> Result<IdxArray, DataError> {
        parse_idx(bytes, Path::new("bad.idx"))
    }

    #[test]
    fn bad_headers_are_named_errors() {
        let message = |bytes: &[u8]| parse(bytes).unwrap_err().to_string();
        assert!(message(&[0, 0]).contains("4-byte magic"));
        assert!(message(&[1, 0, 8, 1, 0, 0, 0, 0]).contains("magic starting with 0x0000"));
        assert!(message(&[0, 0, 0x0d, 1, 0, 0, 0, 0]).contains("type 0x0d"));
        assert!(message(&[0, 0, 8, 0]).contains("0 dimensions"));
        assert!(message(&[0, 0, 8, 3, 0, 0, 0, 1]).contains("header needs"));
        let truncated = message(&[0, 0, 8, 1, 0, 0, 0, 5, 1, 2]);
        assert!(
            truncated.contains("promises 5 data bytes, the file has 2 (truncated?)"),
            "{truncated}"
        );
        assert!(message(&[0, 0, 8, 1, 0, 0, 0, 1, 1, 2]).contains("promises 1"));
        assert!(message(&[0, 0, 8, 1, 0, 0, 0, 1, 1, 2]).contains("bad.idx"));
    }

    #[test]
    fn huge_promises_do_not_allocate() {
        let bytes = [
            0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255,
        ];
        assert!(parse(&bytes).is_err());
    }

    #[test]
    fn corrupt_gzip_and_missing_files() {
        let dir = temp_dir("gzip");
        let path = dir.join("broken.gz");
        let array = IdxArray {
            dims: vec![100],
            data: vec![3; 100],
        };
        write_idx(&path, &array, true).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 2);
        fs::write(&path, &bytes).unwrap();
        let err = read_idx(&path).unwrap_err();
        assert!(matches!(err, DataError::Gzip { .. }), "{err}");
        assert!(err.to_string().contains("broken.gz"));
        let err = read_idx(&dir.join("absent.idx")).unwrap_err();
        assert!(err.to_string().contains("absent.idx"), "{err}");
        fs::remove_dir_all(dir).unwrap();
    }

    /// Replays the fuzzer's seed corpus (and any crash it found, kept in
    /// `fuzz/regressions/idx/`): every input decodes to a value or an error.
    #[test]
    fn fuzz_corpus_decodes_without_panicking() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut inputs = 0;
        let mut valid = 0;
        for dir in ["corpus/idx", "regressions/idx"] {
            let Ok(entries) = fs::read_dir(root.join(dir)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let bytes = fs::read(&path).unwrap();
                inputs += 1;
                if let Ok(array) = decode_idx(&bytes, &path) {
                    assert_eq!(array.dims.iter().product::<usize>(), array.data.len());
                    valid += 1;
                }
            }
        }
        assert!(inputs >= 17, "the seed corpus is missing: {inputs} inputs");
        // labels, images and empty, raw and gzip.
        assert_eq!(valid, 6);
    }
}
