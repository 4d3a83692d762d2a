//! Opening arbitrary bytes as a group's info and as its member list, for a
//! fixed group and a member that holds a fixed key for every generation,
//! never panics; an opened list is strictly increasing and at most
//! `MAX_LIST` long; an opened info is within the name and description
//! limits.
//!
//! A fuzzer cannot forge the group's signature, so raw inputs stop there.
//! The input is therefore also sealed and signed as a document body by the
//! group key (seed `91…91`, the vectors'), built by hand from the layout in
//! `docs/groups.md`: the first byte picks the kind (even: info, odd:
//! members), the rest is the body. That reaches the JSON and list parsers;
//! a list must then open exactly when an independent reading of the format
//! accepts it, and an info that opens must seal again and open the same.
#![no_main]

use std::sync::OnceLock;

use allium_common::Identity;
use allium_common::envelope::pad;
use allium_common::group::GroupId;
use allium_common::group::state::{
    DOCUMENT_FORMAT, DOCUMENT_LABEL, Info, MAX_DESCRIPTION_CHARS, MAX_LIST, MAX_NAME_CHARS, Member, open_members,
};
use allium_common::sodium::{self, Secret32};
use libfuzzer_sys::fuzz_target;

/// The fixed key of every generation: the vectors' `4b…4b`.
const KEY: [u8; 32] = [0x4b; 32];
/// Head fields of the documents this target seals around its input.
const GENERATION: u32 = 7;
const VERSION: u64 = 1_700_000_000_000;
const NONCE: [u8; 24] = [0x24; 24];
/// Bytes a document adds before the body's ciphertext, and its tag and
/// signature after: what the smallest document that verifies holds.
const MIN_LEN: usize = 1 + 1 + 4 + 8 + 24 + 16 + 64;

/// The vector group's key (`91…91`) and ID.
fn fixed() -> &'static (Identity, GroupId) {
    static FIXED: OnceLock<(Identity, GroupId)> = OnceLock::new();
    FIXED.get_or_init(|| {
        let key = Identity::from_ed25519_seed(&[0x91; 32]);
        let group = GroupId::from_ed25519(*key.ed25519_pk());
        (key, group)
    })
}

fn key_for(_generation: u32) -> Option<Secret32> {
    Some(Secret32::new(KEY))
}

/// A document of `kind` around `body`, sealed and signed as an admin
/// would (the layout of `docs/groups.md`, written independently of
/// `state.rs`).
fn document(kind: u8, body: &[u8]) -> Vec<u8> {
    let (key, group) = fixed();
    let mut out = vec![DOCUMENT_FORMAT, kind];
    out.extend_from_slice(&GENERATION.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    let ad = [group.to_bytes().as_slice(), &out].concat();
    out.extend_from_slice(&NONCE);
    out.extend_from_slice(&sodium::xchacha_encrypt(&KEY, &NONCE, &pad(body), &ad));
    let sig = key.sign(&[DOCUMENT_LABEL, &group.to_bytes(), &out].concat());
    out.extend_from_slice(&sig);
    out
}

/// The list a members body holds, read by hand: a u16 count, then that
/// many 33-byte entries (key, flags 0 or 1) in strictly increasing key
/// order, at most `MAX_LIST` of them.
fn expected_members(body: &[u8]) -> Option<Vec<Member>> {
    let (n, rest) = body.split_first_chunk::<2>()?;
    let n = usize::from(u16::from_be_bytes(*n));
    if n > MAX_LIST || rest.len() != n * 33 {
        return None;
    }
    let mut members = Vec::with_capacity(n);
    let mut last: Option<&[u8]> = None;
    for entry in rest.chunks_exact(33) {
        let (pk, flags) = entry.split_at(32);
        if flags[0] > 1 || last.is_some_and(|l| l >= pk) {
            return None;
        }
        last = Some(pk);
        let mut key = [0; 32];
        key.copy_from_slice(pk);
        members.push(Member {
            account: allium_common::AccountId::from_x25519(key),
            admin: flags[0] == 1,
        });
    }
    Some(members)
}

fn within_limits(info: &Info) -> bool {
    info.name.chars().count() <= MAX_NAME_CHARS
        && info
            .description
            .as_ref()
            .is_none_or(|d| d.chars().count() <= MAX_DESCRIPTION_CHARS)
}

/// Opens `data` both ways and checks what opened against its bytes.
/// Returns what opened.
fn check(data: &[u8], group: &GroupId) -> (Option<Info>, Option<Vec<Member>>) {
    let info = Info::open(data, group, key_for);
    let members = open_members(data, group, key_for);
    assert!(info.is_err() || members.is_err(), "one document opened as both kinds");
    for (kind, generation, version) in [
        info.as_ref().ok().map(|d| (1, d.generation, d.version)),
        members.as_ref().ok().map(|d| (2, d.generation, d.version)),
    ]
    .into_iter()
    .flatten()
    {
        assert!(data.len() >= MIN_LEN, "{} bytes opened", data.len());
        assert_eq!(data[..2], [DOCUMENT_FORMAT, kind]);
        assert_eq!(data[2..6], generation.to_be_bytes());
        assert_eq!(data[6..14], version.to_be_bytes());
    }
    if let Ok(info) = &info {
        assert!(within_limits(&info.body), "{:?}", info.body);
    }
    if let Ok(list) = &members {
        assert!(list.body.len() <= MAX_LIST, "{} members", list.body.len());
        assert!(
            list.body.windows(2).all(|w| w[0].account < w[1].account),
            "a list out of order or naming an account twice opened"
        );
    }
    (info.ok().map(|d| d.body), members.ok().map(|d| d.body))
}

fuzz_target!(|data: &[u8]| {
    let (key, group) = fixed();
    check(data, group);

    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    if selector & 1 == 0 {
        let (info, _) = check(&document(1, body), group);
        let parsed = serde_json::from_slice::<Info>(body).ok().filter(within_limits);
        assert_eq!(info, parsed, "the info opened is not what its JSON says");
        // What a member accepts, an admin can write back unchanged.
        if let Some(info) = info {
            match info.seal(key, GENERATION, &KEY, VERSION, &NONCE) {
                Ok(again) => assert_eq!(check(&again, group).0, Some(info)),
                Err(e) => assert!(body.len() > 60_000, "an info that opened does not seal: {e}"),
            }
        }
    } else {
        let (_, members) = check(&document(2, body), group);
        assert_eq!(
            members,
            expected_members(body),
            "the list opened is not what its bytes say"
        );
    }
});
