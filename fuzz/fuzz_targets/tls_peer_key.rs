//! Reading the Ed25519 key out of an arbitrary "certificate" (the bytes a
//! TLS peer sends) never panics, and a key it finds is 32 bytes that the
//! same bytes give again.
#![no_main]

use allium_common::tls::peer_key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(key) = peer_key(data) {
        assert_eq!(peer_key(data), Ok(key));
    }
});
