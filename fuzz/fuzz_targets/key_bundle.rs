//! Decoding a key bundle from arbitrary bytes never panics; verifying what
//! decodes, against a fixed account, never panics either; and a bundle that
//! verifies encodes back to exactly the bytes it was read from.
#![no_main]

use std::sync::OnceLock;

use allium_common::keys::UnverifiedKeyBundle;
use allium_common::{AccountId, Identity};
use libfuzzer_sys::fuzz_target;

/// The account of the vector bundle (identity `b0…b0`).
fn account() -> &'static AccountId {
    static ACCOUNT: OnceLock<AccountId> = OnceLock::new();
    ACCOUNT.get_or_init(|| Identity::from_ed25519_seed(&[0xb0; 32]).account_id())
}

fuzz_target!(|data: &[u8]| {
    let Ok(unverified) = UnverifiedKeyBundle::decode(data) else {
        return;
    };
    // An hour after the vector bundle was made.
    if let Ok(bundle) = unverified.verify(account(), 1_700_003_600_000) {
        assert_eq!(bundle.encode(), data, "a verified bundle encodes back to its bytes");
        assert_eq!(bundle.account_id(), *account());
        if let Some(key) = bundle.current_key(1_700_003_600_000) {
            assert!(key.is_valid_at(1_700_003_600_000));
        }
    }
});
