//! Fuzzes the IDX decoder (raw and gzip): any bytes give a value or a typed
//! error, never a panic, a hang or an unbounded allocation.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = recipe_data::decode_idx(data, Path::new("fuzz-input")) {
        let count: usize = array.dims.iter().product();
        assert_eq!(count, array.data.len());
    }
});
