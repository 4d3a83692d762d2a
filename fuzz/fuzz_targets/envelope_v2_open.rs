//! Opening an envelope v2 from arbitrary bytes never panics, and what opens
//! names a sender whose Account ID matches its signing key.
#![no_main]

use std::sync::OnceLock;

use allium_common::keys::AccountKeyPair;
use allium_common::{AccountId, Identity, envelope_v2};
use libfuzzer_sys::fuzz_target;

/// The vector recipient (`b0…b0`) and its X-Wing key (`c2…c2`).
fn recipient() -> &'static (Identity, AccountKeyPair) {
    static RECIPIENT: OnceLock<(Identity, AccountKeyPair)> = OnceLock::new();
    RECIPIENT.get_or_init(|| {
        (
            Identity::from_ed25519_seed(&[0xb0; 32]),
            AccountKeyPair::from_seed(&[0xc2; 32]),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (identity, pair) = recipient();
    // The device holds the key for its own id, and (so that the fuzzer
    // reaches decapsulation and decryption without guessing 8 bytes) for
    // any id whose last byte is odd; other ids are unknown.
    let secret_for = |id: &[u8; 8]| (*id == pair.key_id() || id[7] & 1 == 1).then(|| pair.secret_key().clone());
    if let Ok(opened) = envelope_v2::open(identity, secret_for, data) {
        assert_eq!(
            AccountId::from_ed25519(&opened.sender_ed25519).ok(),
            Some(opened.sender)
        );
    }
});
