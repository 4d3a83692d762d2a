//! Decoding an account state, and opening a sealed one, from arbitrary
//! bytes never panics; what decodes encodes back and decodes the same,
//! and split into pages of any size merges back to itself.
#![no_main]

use allium_common::Identity;
use allium_common::account::{AccountState, sealed};
use allium_common::rpc::Namespace;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(state) = AccountState::decode(data) {
        let again = AccountState::decode(&state.encode().expect("a decoded state encodes")).expect("and decodes");
        assert_eq!(again, state);
        let mut merged = state.clone();
        merged.merge(&state);
        assert_eq!(merged, state);
        let page_len = 64 + usize::from(data.first().copied().unwrap_or(0)) * 16;
        if let Ok(pages) = state.split(page_len) {
            let mut back = AccountState::default();
            for page in &pages {
                assert!(page.encode().expect("a page encodes").len() <= page_len);
                back.merge(page);
            }
            assert_eq!(back, state);
        }
    }
    let _ = sealed::open(&Identity::from_ed25519_seed(&[7; 32]), Namespace(3), data);
});
