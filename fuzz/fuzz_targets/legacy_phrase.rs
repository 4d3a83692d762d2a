//! Turning arbitrary text into an identity never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = allium_common::mnemonic::seed_from_phrase(text, "");
    }
});
