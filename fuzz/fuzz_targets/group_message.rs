//! Opening a group message from arbitrary bytes, for a fixed group and a
//! member that holds a fixed key for generations 0 to 3, never panics;
//! `generation_of` never panics and reads bytes 1 to 4 of a message that
//! starts with the format byte; what opens was sealed under a generation
//! the member holds.
#![no_main]

use std::sync::OnceLock;

use allium_common::Identity;
use allium_common::group::GroupId;
use allium_common::group::message::{self, GroupMessageError, MESSAGE_FORMAT};
use allium_common::sodium::Secret32;
use libfuzzer_sys::fuzz_target;

/// The vector group (key `91…91`).
fn group() -> &'static GroupId {
    static GROUP: OnceLock<GroupId> = OnceLock::new();
    GROUP.get_or_init(|| GroupId::from_ed25519(*Identity::from_ed25519_seed(&[0x91; 32]).ed25519_pk()))
}

/// The vectors' generation key `4b…4b`, held for generations 0 to 3.
fn key_for(generation: u32) -> Option<Secret32> {
    (generation <= 3).then(|| Secret32::new([0x4b; 32]))
}

fuzz_target!(|data: &[u8]| {
    let generation = message::generation_of(data);
    let expected = match data {
        [MESSAGE_FORMAT, g0, g1, g2, g3, ..] => Some(u32::from_be_bytes([*g0, *g1, *g2, *g3])),
        _ => None,
    };
    assert_eq!(generation, expected);
    match message::open(group(), key_for, data) {
        Ok(opened) => {
            assert_eq!(Some(opened.generation), generation);
            assert!(opened.generation <= 3);
        }
        Err(GroupMessageError::UnknownGeneration(g)) => {
            assert_eq!(Some(g), generation);
            assert!(g > 3);
        }
        Err(_) => {}
    }
});
