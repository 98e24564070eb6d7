//! Which vector instructions the element-wise loops are compiled for, and
//! the macro that compiles a loop once per instruction set and picks the
//! widest the CPU has at run time.
//!
//! Every loop dispatched this way does the same IEEE arithmetic on each
//! element whatever the vector width (Rust never contracts `a * b + c` into
//! an FMA, and the lanes are independent), so the choice changes speed,
//! never a bit of the result; `tests` below and each loop's own tests check
//! that. Measured on a 2-core Intel Xeon (BENCHMARKS.md, 2026-12-05), the
//! width did not matter for case B (AVX2 and AVX-512 within the noise, in
//! paired rounds of one binary with `RECIPE_SIMD`): the loops are short and
//! bound by memory and by the matrix products around them. One macro for
//! every loop keeps the dispatch in one place and lets a benchmark compare
//! the widths.

use std::sync::OnceLock;

/// The instruction sets the loops are compiled for, narrowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum SimdLevel {
    /// x86-64's baseline (SSE2), or any other architecture.
    Baseline,
    /// AVX2 and FMA: 8 lanes of `f32`.
    Avx2,
    /// AVX-512 Foundation: 16 lanes of `f32`.
    Avx512,
}

impl SimdLevel {
    /// The widest level this CPU has.
    fn detected() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Self::Avx2;
            }
        }
        Self::Baseline
    }

    /// A level named by `RECIPE_SIMD` (`avx512`, `avx2` or `baseline`).
    fn named(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "avx512" => Some(Self::Avx512),
            "avx2" => Some(Self::Avx2),
            "baseline" => Some(Self::Baseline),
            _ => None,
        }
    }
}

/// The level the loops run at: the widest the CPU has, or narrower where
/// the environment variable `RECIPE_SIMD` asks for it (`avx2`, `baseline`),
/// so that a benchmark can compare the two in one binary. A wider level
/// than the CPU has, or a name it does not know, is ignored (with a line
/// on standard error): the loops never run instructions the CPU lacks.
pub(crate) fn level() -> SimdLevel {
    static LEVEL: OnceLock<SimdLevel> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let detected = level_of_cpu();
        let Ok(asked) = std::env::var("RECIPE_SIMD") else {
            return detected;
        };
        match SimdLevel::named(&asked) {
            Some(level) => level.min(detected),
            None => {
                eprintln!(
                    "recipe-flex: RECIPE_SIMD={asked:?} is not avx512, avx2 or baseline; \
                     using {detected:?}"
                );
                detected
            }
        }
    })
}

/// Defines `$name(args)`, which runs `$kernel(args)` compiled for the
/// level [`level`] picks, and `$name_at(level, args)`, which runs it
/// compiled for a given level (capped at the CPU's). `$kernel` must be
/// `#[inline(always)]`, so that its body is compiled inside each variant.
/// Generic parameters go in brackets: `[F: Fn(f32) -> f32]`.
macro_rules! simd_dispatch {
    (
        $(#[$meta:meta])*
        $vis:vis fn $name:ident / $name_at:ident [$($generics:tt)*]
            ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)? => $kernel:ident
    ) => {
        $(#[$meta])*
        #[inline(always)]
        $vis fn $name<$($generics)*>($($arg: $ty),*) $(-> $ret)? {
            $name_at($crate::simd::level(), $($arg),*)
        }

        /// The same, compiled for `level` (no wider than the CPU's).
        #[inline(always)]
        #[allow(dead_code)]
        $vis fn $name_at<$($generics)*>(
            level: $crate::simd::SimdLevel,
            $($arg: $ty),*
        ) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn avx512<$($generics)*>($($arg: $ty),*) $(-> $ret)? {
                    $kernel($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                fn avx2<$($generics)*>($($arg: $ty),*) $(-> $ret)? {
                    $kernel($($arg),*)
                }
                match level.min($crate::simd::level_of_cpu()) {
                    // SAFETY: the CPU has AVX-512F, AVX2 and FMA (`level_of_cpu`).
                    $crate::simd::SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                    // SAFETY: the CPU has AVX2 and FMA (`level_of_cpu`).
                    $crate::simd::SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                    $crate::simd::SimdLevel::Baseline => {}
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = level;
            $kernel($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

/// The widest level this CPU has, whatever `RECIPE_SIMD` says: the bound
/// that keeps `$name_at` from running instructions the CPU lacks.
pub(crate) fn level_of_cpu() -> SimdLevel {
    static CPU: OnceLock<SimdLevel> = OnceLock::new();
    *CPU.get_or_init(SimdLevel::detected)
}

/// Every level this CPU can run, narrowest first (for tests that compare
/// them).
#[cfg(test)]
pub(crate) fn levels_of_cpu() -> Vec<SimdLevel> {
    [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512]
        .into_iter()
        .filter(|level| *level <= level_of_cpu())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_and_unknown_ones_refused() {
        assert_eq!(SimdLevel::named("AVX2 "), Some(SimdLevel::Avx2));
        assert_eq!(SimdLevel::named("avx512"), Some(SimdLevel::Avx512));
        assert_eq!(SimdLevel::named("baseline"), Some(SimdLevel::Baseline));
        assert_eq!(SimdLevel::named("sse9"), None);
    }

    #[test]
    fn the_chosen_level_is_never_wider_than_the_cpu() {
        assert!(level() <= level_of_cpu());
        assert_eq!(levels_of_cpu().last(), Some(&level_of_cpu()));
    }
}
