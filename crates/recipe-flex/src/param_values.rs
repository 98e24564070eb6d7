//! A parameter's values as an optimizer loop rewrites them: in place when
//! Flex holds the only reference to them, else read from the shared buffer
//! and written once into a new one.
//!
//! Burn's `Learner` hands the optimizer a clone of its model and keeps the
//! original until the step returns (`self.model().optimize(..)`), so in
//! `recipe train` every parameter's buffer is shared when the update loop
//! gets it. `Tensor::into_data` then copies it twice (once out of the
//! shared buffer, once more to align the copy: 5.5% of a `recipe train`
//! run of case A's net in `perf`), and the loop writes the copy. Here the loop reads the
//! shared buffer and writes each new weight straight into a fresh one: no
//! copy, and the same arithmetic, so the same bits.

use std::mem::MaybeUninit;

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{DType, Device, Tensor, TensorData};

/// The values of one `f32` parameter on Flex, ready for a loop.
pub(crate) enum ParamValues {
    /// The tensor's own buffer (or, where Flex could not hand it over, a
    /// copy), rewritten in place.
    Own(TensorData),
    /// A buffer someone else also holds, read; the new values go to `new`.
    Shared {
        old: FlexTensor,
        new: Vec<MaybeUninit<f32>>,
    },
}

impl ParamValues {
    /// The values of `param`, an `f32` tensor on Flex.
    pub(crate) fn of(param: Tensor<1>) -> Self {
        let n = param.dims()[0];
        let Ok(flex) = param.clone().try_into_primitive::<Flex>() else {
            return Self::Own(param.into_data());
        };
        // `flex` is the only other handle now: it is unique exactly when
        // `param` was.
        drop(param);
        let readable = flex.is_contiguous() && flex.layout().start_offset() == 0;
        if flex.is_unique() || !readable || flex.dtype() != DType::F32 {
            return Self::Own(flex.into_data());
        }
        let mut new = Vec::with_capacity(n);
        new.resize_with(n, MaybeUninit::uninit);
        Self::Shared { old: flex, new }
    }

    /// The view a loop reads the old weights from and writes the new ones
    /// to, or `None` when the values are not `f32`.
    pub(crate) fn weights(&mut self) -> Option<Weights<'_>> {
        match self {
            Self::Own(data) => data.as_mut_slice::<f32>().ok().map(Weights::InPlace),
            Self::Shared { old, new } => {
                let old = old.as_slice::<f32>()?.get(..new.len())?;
                Some(Weights::Into { old, new })
            }
        }
    }

    /// The parameter as it was, on `device` (no loop wrote it).
    pub(crate) fn into_unchanged(self, device: &Device) -> Tensor<1> {
        match self {
            Self::Own(data) => Tensor::from_data(data, (device, DType::F32)),
            Self::Shared { old, .. } => Tensor::from_primitive::<Flex>(old),
        }
    }

    /// The updated parameter, on `device`.
    ///
    /// # Safety
    ///
    /// A loop wrote every weight of the one view [`Self::weights`] gave
    /// (with `Weights::rewrite`, on the whole view or on pieces that cover
    /// it): a shared parameter's new buffer starts uninitialized.
    pub(crate) unsafe fn into_written(self, device: &Device) -> Tensor<1> {
        let data = match self {
            Self::Own(data) => data,
            Self::Shared { new, .. } => {
                let n = new.len();
                // SAFETY: every element was written (this function's contract).
                TensorData::new(unsafe { assume_written(new) }, [n])
            }
        };
        Tensor::from_data(data, (device, DType::F32))
    }
}

/// `values` as plain `f32`s.
///
/// # Safety
///
/// Every element of `values` was written.
unsafe fn assume_written(values: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut values = std::mem::ManuallyDrop::new(values);
    let (pointer, length, capacity) = (values.as_mut_ptr(), values.len(), values.capacity());
    // SAFETY: `MaybeUninit<f32>` has `f32`'s size and alignment, the
    // allocation is handed over whole (pointer, length, capacity of one
    // `Vec`, not dropped), and the caller says each element was written.
    unsafe { Vec::from_raw_parts(pointer.cast::<f32>(), length, capacity) }
}

/// Where a loop reads each weight and writes its new value.
pub(crate) enum Weights<'a> {
    /// Read and written in the same buffer.
    InPlace(&'a mut [f32]),
    /// Read from `old`, written to `new` (the same length).
    Into {
        old: &'a [f32],
        new: &'a mut [MaybeUninit<f32>],
    },
}

impl<'a> Weights<'a> {
    /// How many weights.
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::InPlace(values) => values.len(),
            Self::Into { old, .. } => old.len(),
        }
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The old weights.
    pub(crate) fn old(&self) -> &[f32] {
        match self {
            Self::InPlace(values) => values,
            Self::Into { old, .. } => old,
        }
    }

    /// Splits into the first `mid` weights and the rest.
    pub(crate) fn split_at(self, mid: usize) -> (Self, Self) {
        match self {
            Self::InPlace(values) => {
                let (a, b) = values.split_at_mut(mid);
                (Self::InPlace(a), Self::InPlace(b))
            }
            Self::Into { old, new } => {
                let (old_a, old_b) = old.split_at(mid);
                let (new_a, new_b) = new.split_at_mut(mid);
                (
                    Self::Into {
                        old: old_a,
                        new: new_a,
                    },
                    Self::Into {
                        old: old_b,
                        new: new_b,
                    },
                )
            }
        }
    }

    /// Splits into pieces of `len` weights (the last may be shorter).
    pub(crate) fn chunks(self, len: usize) -> Vec<Self> {
        let len = len.max(1);
        let mut pieces = Vec::with_capacity(self.len().div_ceil(len));
        let mut rest = self;
        while rest.len() > len {
            let (piece, after) = rest.split_at(len);
            pieces.push(piece);
            rest = after;
        }
        pieces.push(rest);
        pieces
    }

    /// Writes `new_weight(i, old weight i)` for every weight `i`, in order.
    /// One loop per variant, each compiled where it is inlined (the
    /// optimizer loops, once per vector width). Callers mark `new_weight`
    /// `#[inline(always)]`: a closure is inlined only when LLVM judges it
    /// cheap, and Adam's with a folded penalty was not (the loop then ran
    /// 1.6 times slower, element by element).
    #[inline(always)]
    // Index loops, as the optimizer loops were written before this type.
    #[allow(clippy::needless_range_loop)]
    pub(crate) fn rewrite(self, mut new_weight: impl FnMut(usize, f32) -> f32) {
        match self {
            Self::InPlace(values) => {
                for i in 0..values.len() {
                    values[i] = new_weight(i, values[i]);
                }
            }
            Self::Into { old, new } => {
                let new = &mut new[..old.len()];
                for i in 0..old.len() {
                    new[i] = MaybeUninit::new(new_weight(i, old[i]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(tensor: &Tensor<1>) -> Vec<f32> {
        tensor.to_data().try_to_vec::<f32>().unwrap()
    }

    fn doubled(param: Tensor<1>) -> Tensor<1> {
        let device = param.device();
        let mut values = ParamValues::of(param);
        values
            .weights()
            .expect("f32")
            .rewrite(|i, w| 2.0 * w + i as f32);
        // SAFETY: the rewrite above wrote every weight of the view.
        unsafe { values.into_written(&device) }
    }

    #[test]
    fn a_shared_parameter_is_read_and_left_as_it_was() {
        let device = Device::flex();
        let param = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        let holder = param.clone();
        assert!(matches!(
            ParamValues::of(param.clone()),
            ParamValues::Shared { .. }
        ));
        assert_eq!(values(&doubled(param)), [2.0, 5.0, 8.0]);
        assert_eq!(
            values(&holder),
            [1.0, 2.0, 3.0],
            "the other holder's values"
        );
    }

    #[test]
    fn an_unshared_parameter_is_rewritten_in_place() {
        let device = Device::flex();
        let param = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        assert!(matches!(
            ParamValues::of(param.clone() + 0.0),
            ParamValues::Own(_)
        ));
        assert_eq!(values(&doubled(param + 0.0)), [2.0, 5.0, 8.0]);
    }

    #[test]
    fn an_unwritten_shared_parameter_comes_back_as_it_was() {
        let device = Device::flex();
        let param = Tensor::<1>::from_floats([1.0, -2.0], &device);
        let holder = param.clone();
        let back = ParamValues::of(param).into_unchanged(&device);
        assert_eq!(values(&back), values(&holder));
    }

    #[test]
    fn pieces_cover_every_weight_once() {
        let mut buffer = vec![0.0f32; 10];
        let pieces = Weights::InPlace(&mut buffer).chunks(4);
        assert_eq!(
            pieces.iter().map(Weights::len).collect::<Vec<_>>(),
            [4, 4, 2]
        );
        for (k, piece) in pieces.into_iter().enumerate() {
            piece.rewrite(|i, _| (10 * k + i) as f32);
        }
        assert_eq!(buffer, [0., 1., 2., 3., 10., 11., 12., 13., 20., 21.]);
        let pieces = Weights::InPlace(&mut buffer).chunks(0);
        assert_eq!(pieces.len(), 10, "pieces of length 0 are taken as 1");
    }
}
