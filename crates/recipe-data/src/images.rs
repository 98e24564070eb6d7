//! A labelled image set read from a pair of IDX files.

use std::path::Path;

use crate::{DataError, read_idx};

/// Images and their labels, as stored: `u8` pixels, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSet {
    /// All pixels, image after image (`len = count * rows * cols`).
    pub pixels: Vec<u8>,
    /// One label per image.
    pub labels: Vec<u8>,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
}

impl ImageSet {
    /// Images from memory: `pixels` holds `labels.len()` images of
    /// `rows * cols` pixels each, row-major.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
    ) -> Result<Self, DataError> {
        if rows == 0 || cols == 0 {
            return Err(DataError::invalid(
                "image size",
                "at least 1x1",
                format!("{rows}x{cols}"),
            ));
        }
        if pixels.len() != labels.len() * rows * cols {
            return Err(DataError::invalid(
                "pixels",
                format!(
                    "{} values ({} labels x {rows}x{cols})",
                    labels.len() * rows * cols,
                    labels.len()
                ),
                format!("{} values", pixels.len()),
            ));
        }
        Ok(Self {
            pixels,
            labels,
            rows,
            cols,
        })
    }

    /// Checks that the pixels match the labels and every label is below
    /// `classes`; `what` names the set in the error.
    pub fn check(&self, what: &str, classes: usize) -> Result<(), DataError> {
        if self.pixels.len() != self.len() * self.image_size() {
            return Err(DataError::invalid(
                format!("{what} pixels"),
                format!("{} images of {}x{}", self.len(), self.rows, self.cols),
                format!("{} values", self.pixels.len()),
            ));
        }
        match self.labels.iter().position(|&l| l as usize >= classes) {
            Some(index) => Err(DataError::invalid(
                format!("{what} label of image {index}"),
                format!("a class in 0..{classes}"),
                self.labels[index],
            )),
            None => Ok(()),
        }
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set has no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels per image.
    pub fn image_size(&self) -> usize {
        self.rows * self.cols
    }

    /// The pixels of image `index`.
    pub fn image(&self, index: usize) -> &[u8] {
        let size = self.image_size();
        &self.pixels[index * size..(index + 1) * size]
    }

    /// A copy of the images in `range`, in order.
    ///
    /// # Panics
    /// If `range` reaches past the last image.
    pub fn slice(&self, range: std::ops::Range<usize>) -> ImageSet {
        let size = self.image_size();
        ImageSet {
            pixels: self.pixels[range.start * size..range.end * size].to_vec(),
            labels: self.labels[range].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }
}

/// Reads an image file (IDX, 3 dimensions) and its label file (IDX, 1
/// dimension), checking that they agree and that every label is below `classes`.
pub fn load_images(images: &Path, labels: &Path, classes: usize) -> Result<ImageSet, DataError> {
    let image_array = read_idx(images)?;
    if image_array.dims.len() != 3 {
        return Err(DataError::Format {
            path: images.to_path_buf(),
            expected: "3 dimensions (count, rows, cols) for an image file".into(),
            found: format!(
                "{} dimensions {:?}",
                image_array.dims.len(),
                image_array.dims
            ),
        });
    }
    let label_array = read_idx(labels)?;
    if label_array.dims.len() != 1 {
        return Err(DataError::Format {
            path: labels.to_path_buf(),
            expected: "1 dimension (count) for a label file".into(),
            found: format!(
                "{} dimensions {:?}",
                label_array.dims.len(),
                label_array.dims
            ),
        });
    }
    let (image_count, label_count) = (image_array.dims[0], label_array.dims[0]);
    if image_count != label_count {
        return Err(DataError::CountMismatch {
            images: images.to_path_buf(),
            image_count,
            labels: labels.to_path_buf(),
            label_count,
        });
    }
    if let Some((index, &label)) = label_array
        .data
        .iter()
        .enumerate()
        .find(|&(_, &label)| label as usize >= classes)
    {
        return Err(DataError::LabelOutOfRange {
            path: labels.to_path_buf(),
            index,
            label,
            classes,
        });
    }
    Ok(ImageSet {
        pixels: image_array.data,
        labels: label_array.data,
        rows: image_array.dims[1],
        cols: image_array.dims[2],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IdxArray, write_idx};
    use std::path::PathBuf;

    fn write(dir: &Path, name: &str, dims: Vec<usize>, data: Vec<u8>) -> PathBuf {
        let path = dir.join(name);
        write_idx(&path, &IdxArray { dims, data }, false).unwrap();
        path
    }

    #[test]
    fn pairs_must_agree() {
        let dir = std::env::temp_dir().join(format!("recipe-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let images = write(&dir, "img", vec![2, 2, 2], vec![0, 1, 2, 3, 4, 5, 6, 7]);
        let labels = write(&dir, "lbl", vec![2], vec![3, 9]);
        let set = load_images(&images, &labels, 10).unwrap();
        assert_eq!((set.len(), set.rows, set.cols), (2, 2, 2));
        assert_eq!(set.image(1), &[4, 5, 6, 7]);

        let three = write(&dir, "lbl3", vec![3], vec![1, 2, 3]);
        let err = load_images(&images, &three, 10).unwrap_err();
        assert!(err.to_string().contains("2 images but"), "{err}");

        let bad = write(&dir, "lblbad", vec![2], vec![1, 12]);
        let err = load_images(&images, &bad, 10).unwrap_err();
        assert!(err.to_string().contains("label 12 at index 1"), "{err}");

        let err = load_images(&labels, &labels, 10).unwrap_err();
        assert!(err.to_string().contains("3 dimensions"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
