//! Reading the Ed25519 key, and a seed's signing-key certificate, out of
//! an arbitrary "certificate" (the bytes a TLS peer sends) never panics,
//! and the key found is the one `peer_key` finds.
#![no_main]

use allium_common::tls::{peer_key, peer_key_and_seed_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match peer_key_and_seed_key(data) {
        Ok((key, cert)) => {
            assert_eq!(peer_key(data), Ok(key));
            if let Some(cert) = cert {
                let _ = cert.check(1_700_000_000_000);
            }
        }
        Err(_) => assert!(peer_key(data).is_err()),
    }
});
