//! Reading a file manifest from arbitrary JSON never panics; what reads
//! back has a chunk count that is its size's, is within the size limit, and
//! writes out to JSON that reads back the same.
#![no_main]

use allium_common::files::{MAX_FILE_LEN, Manifest, chunk_count};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(m) = Manifest::from_json(&value) else {
        return;
    };
    assert!(m.size <= MAX_FILE_LEN);
    assert_eq!(u64::from(m.chunks()), chunk_count(m.size));
    assert_eq!(value["chunks"].as_u64(), Some(u64::from(m.chunks())));
    assert_eq!(Manifest::from_json(&m.to_json()).as_ref(), Ok(&m));
});
