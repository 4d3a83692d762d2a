//! Decoding a device record from arbitrary bytes never panics, and what
//! decodes encodes back to exactly the bytes it was read from; verifying it
//! against a fixed account never panics, nor does opening a share with a
//! fixed device, whether or not its signature holds.
#![no_main]

use std::sync::OnceLock;

use allium_common::devices::{DeviceRecord, DeviceSecret, UnverifiedRecord};
use allium_common::{AccountId, Identity};
use libfuzzer_sys::fuzz_target;

/// The account of the device vectors (identity `b0…b0`).
fn account() -> &'static AccountId {
    static ACCOUNT: OnceLock<AccountId> = OnceLock::new();
    ACCOUNT.get_or_init(|| Identity::from_ed25519_seed(&[0xb0; 32]).account_id())
}

/// The vector laptop (device key `d1…d1`, X-Wing key `d2…d2`), which the
/// vector share is for.
fn laptop() -> &'static DeviceSecret {
    static LAPTOP: OnceLock<DeviceSecret> = OnceLock::new();
    LAPTOP.get_or_init(|| DeviceSecret::from_seeds(&[0xd1; 32], &[0xd2; 32], "laptop", 1_700_000_000_000))
}

fuzz_target!(|data: &[u8]| {
    let Ok(unverified) = UnverifiedRecord::decode(data) else {
        return;
    };
    assert_eq!(
        unverified.to_bytes(),
        data,
        "a record that decodes encodes back to its bytes"
    );
    let record = unverified.record().clone();
    if let DeviceRecord::Share(share) = &record
        && let Ok(pair) = share.open(account(), laptop())
    {
        assert_eq!(pair.key_id(), share.key_id, "a share opens only to the key it names");
        assert_eq!(share.to, laptop().keys().sign_pk);
    }
    if let Ok(verified) = unverified.verify(account()) {
        assert_eq!(verified.record, record);
    }
});
