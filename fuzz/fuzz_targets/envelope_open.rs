//! Opening an envelope from arbitrary bytes must return an error, never
//! panic, and only succeed for a correctly signed envelope.
#![no_main]

use allium_common::{Identity, envelope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let recipient = Identity::from_ed25519_seed(&[0xb0; 32]);
    if let Ok(opened) = envelope::open(&recipient, data) {
        // Anything that opens must re-verify under its claimed sender.
        assert_eq!(
            allium_common::AccountId::from_ed25519(&opened.sender_ed25519).ok(),
            Some(opened.sender)
        );
    }
});
