//! Verifying arbitrary bytes as a credential and as a revocation of a fixed
//! group never panics, and what verifies has the exact length of its kind,
//! its format byte and the group's ID, and carries the fields its bytes
//! hold.
//!
//! A fuzzer cannot forge the group's signature, so raw inputs stop there.
//! The input is therefore also signed as a body with the group key (whose
//! seed, `91…91`, is the vectors'): that reaches the rights check and the
//! field parsing, and verification must then succeed exactly when the body
//! is well formed by an independent reading of `docs/groups.md`.
#![no_main]

use std::sync::OnceLock;

use allium_common::Identity;
use allium_common::group::GroupId;
use allium_common::group::credential::{
    CREDENTIAL_FORMAT, CREDENTIAL_LABEL, CREDENTIAL_LEN, Credential, REVOCATION_FORMAT, REVOCATION_LEN, Revocation,
    Rights,
};
use libfuzzer_sys::fuzz_target;

/// The vector group's key (`91…91`) and ID.
fn fixed() -> &'static (Identity, GroupId) {
    static FIXED: OnceLock<(Identity, GroupId)> = OnceLock::new();
    FIXED.get_or_init(|| {
        let key = Identity::from_ed25519_seed(&[0x91; 32]);
        let group = GroupId::from_ed25519(*key.ed25519_pk());
        (key, group)
    })
}

/// The fields of a credential, rights as bits (`Rights` has no public
/// constructor from bits, so 0, 3, 5 and 6 cannot be built here).
type Fields = ([u8; 32], u8, u64);

/// What the bytes before the signature say, read by hand: a credential's
/// body is 75 bytes, a revocation's 74, both starting with their format
/// byte and the group's 33-byte ID; rights other than read (1), write (2)
/// and delete (4) are refused.
fn expected_credential(body: &[u8], group: &GroupId) -> Option<Fields> {
    if body.len() != CREDENTIAL_LEN - 64 || body[0] != CREDENTIAL_FORMAT || body[1..34] != group.to_bytes() {
        return None;
    }
    (body[66] & !0b111 == 0).then(|| (bytes(&body[34..66]), body[66], u64::from_be_bytes(bytes(&body[67..75]))))
}

fn expected_revocation(body: &[u8], group: &GroupId) -> Option<Revocation> {
    if body.len() != REVOCATION_LEN - 64 || body[0] != REVOCATION_FORMAT || body[1..34] != group.to_bytes() {
        return None;
    }
    Some(Revocation {
        member_pk: bytes(&body[34..66]),
        revoked_ms: u64::from_be_bytes(bytes(&body[66..74])),
    })
}

/// A fixed-size copy of a slice whose length the caller checked.
fn bytes<const N: usize>(slice: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(slice);
    out
}

/// Checks what verified against the bytes it verified from.
fn check(data: &[u8], group: &GroupId) {
    let credential = Credential::verify(data, group);
    let revocation = Revocation::verify(data, group);
    assert!(
        credential.is_err() || revocation.is_err(),
        "one input verified as both kinds"
    );
    if let Ok(c) = credential {
        assert_eq!(data.len(), CREDENTIAL_LEN);
        assert_eq!(data[0], CREDENTIAL_FORMAT);
        assert_eq!(data[1..34], group.to_bytes());
        assert_eq!(data[34..66], c.member_pk);
        assert_eq!(data[66], c.rights.bits());
        assert!(
            Rights::MEMBER.contains(c.rights),
            "unknown rights {:#04x}",
            c.rights.bits()
        );
        assert_eq!(data[67..75], c.issued_ms.to_be_bytes());
    }
    if let Ok(r) = revocation {
        assert_eq!(data.len(), REVOCATION_LEN);
        assert_eq!(data[0], REVOCATION_FORMAT);
        assert_eq!(data[1..34], group.to_bytes());
        assert_eq!(data[34..66], r.member_pk);
        assert_eq!(data[66..74], r.revoked_ms.to_be_bytes());
    }
}

fuzz_target!(|data: &[u8]| {
    let (key, group) = fixed();
    check(data, group);

    // The input as a body, signed by the group key as an admin would.
    let sig = key.sign(&[CREDENTIAL_LABEL, data].concat());
    let signed = [data, &sig].concat();
    check(&signed, group);
    let credential = Credential::verify(&signed, group).map(|c| (c.member_pk, c.rights.bits(), c.issued_ms));
    match expected_credential(data, group) {
        Some(want) => assert_eq!(credential, Ok(want), "a well-formed credential"),
        None => assert!(credential.is_err(), "a malformed credential verified"),
    }
    let revocation = Revocation::verify(&signed, group);
    match expected_revocation(data, group) {
        Some(want) => assert_eq!(revocation, Ok(want)),
        None => assert!(revocation.is_err(), "a malformed revocation verified"),
    }
});
