//! Node addresses (from announces and node lists) from arbitrary bytes:
//! parsing never panics, and whatever parses is written back exactly as it
//! was given (one spelling per address).
#![no_main]

use allium_common::address::NodeAddress;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(address) = text.parse::<NodeAddress>()
    {
        assert_eq!(address.to_string(), text);
        let _ = address.ip().map(allium_common::address::is_non_public);
    }
});
