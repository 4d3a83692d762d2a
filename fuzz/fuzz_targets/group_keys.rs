//! Decoding a key message from arbitrary bytes against a fixed group never
//! panics, and what decodes has a valid entry count (a non-zero multiple of
//! 75, which the bytes hold exactly); opening it with a fixed member never
//! panics either.
#![no_main]

use std::sync::OnceLock;

use allium_common::Identity;
use allium_common::group::GroupId;
use allium_common::group::keys::{ENTRY_BLOCK, ENTRY_LEN, GroupKeys};
use libfuzzer_sys::fuzz_target;

/// The vector group (key `91…91`) and its member `a1…a1`.
fn fixed() -> &'static (GroupId, Identity) {
    static FIXED: OnceLock<(GroupId, Identity)> = OnceLock::new();
    FIXED.get_or_init(|| {
        let group_key = Identity::from_ed25519_seed(&[0x91; 32]);
        (
            GroupId::from_ed25519(*group_key.ed25519_pk()),
            Identity::from_ed25519_seed(&[0xa1; 32]),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let (group, member) = fixed();
    let Ok(keys) = GroupKeys::decode(data, group) else {
        return;
    };
    let n = keys.entries();
    assert!(n > 0 && n.is_multiple_of(ENTRY_BLOCK), "{n} entries");
    assert_eq!(data.len(), 1 + 33 + 4 + 32 + 2 + n * ENTRY_LEN + 64);
    assert_eq!(data[70..72], (n as u16).to_be_bytes());
    assert_eq!(data[34..38], keys.generation.to_be_bytes());
    let _ = keys.open(member.x25519_sk(), member.x25519_pk());
});
