//! Keeping freed memory in the process, which makes training on the CPU
//! backends up to twice as fast.
//!
//! Every tensor operation of a CPU backend allocates its output (a 128x512
//! f32 activation is 256 KiB). With glibc's default settings, blocks that
//! large are mapped and unmapped around every operation, and the top of the
//! heap is trimmed back to the OS, so each step pays for page faults and for
//! the kernel zeroing fresh pages (about 10% of a profile of case A, before
//! counting cache misses). Raising the mmap and trim thresholds keeps those
//! blocks in the heap for reuse. `recipe bench` measured case A
//! (784-512-512-10, Adam, batch 128) on Flex at 11,500 to 15,400 training
//! samples/s without it and 21,800 to 23,400 with it (BENCHMARKS.md).
//!
//! The cost: memory freed by the process is not returned to the OS until it
//! exits, so the resident size stays at its peak. That is the right trade
//! for a training process, and why this is a function for binaries to call,
//! not something the library crates do behind your back.

/// Tunes glibc's allocator for training: no `mmap` below 1 GiB, no trimming
/// of the heap, 256 MiB of padding when it grows. Call it once, first thing
/// in `main`. Does nothing on other platforms and C libraries.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; called before
        // other threads allocate, as glibc asks.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
            libc::mallopt(libc::M_TOP_PAD, 256 << 20);
        }
    }
}
