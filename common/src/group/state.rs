//! The group's info and member list: written by an admin, sealed under
//! the current generation's key (so removed members and nodes read
//! neither) and signed by the group key (so members accept only what an
//! admin wrote).
//!
//! ```text
//! document = 0x01 ‖ kind (u8: 1 info, 2 members) ‖ generation (u32) ‖ version (u64) ‖ nonce (24)
//!          ‖ XChaCha20-Poly1305-IETF(key of the generation, nonce, ad = group_id ‖ every byte before the nonce, pad(body))
//!          ‖ signature (64)
//! signature = Ed25519(group key, "allium-group-document-v1" 0x00 ‖ group_id ‖ every byte before it)
//! info body    = JSON {"name": string, "description"?: string, "disappear"?: {"after": "send"|"read", "ms": u64}}
//! members body = n (u16) ‖ n × ( x25519 pk (32) ‖ flags (u8: 1 admin) ), in increasing key order
//! ```
//!
//! `version` increases with every edit (an admin's clock in ms); a member
//! keeps the document with the largest version that verifies, so a node
//! cannot roll the group back to an older name or member list.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::content::Disappear;
use crate::envelope::{MAX_ENVELOPE_LEN, pad, unpad};
use crate::identity::{AccountId, Identity};
use crate::sodium::{self, AEAD_TAG_LEN, XCHACHA_NONCE_LEN};

use super::GroupId;

/// Format byte.
pub const DOCUMENT_FORMAT: u8 = 0x01;
/// Domain label of the signature.
pub const DOCUMENT_LABEL: &[u8] = b"allium-group-document-v1\0";
/// Longest group name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Most members on a list: what a key message carries.
pub const MAX_LIST: usize = super::keys::MAX_MEMBERS;
const HEAD_LEN: usize = 1 + 1 + 4 + 8;
const KIND_INFO: u8 = 1;
const KIND_MEMBERS: u8 = 2;

/// Why a document could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// Too large for one stored message, or a field over its limit.
    #[error("the group document is too large: {0}")]
    TooLarge(String),
    /// Not the shape of a document, or not the kind asked for.
    #[error("the group document is malformed")]
    Malformed,
    /// Not signed by this group's key.
    #[error("the group document is not signed by this group's key")]
    BadSignature,
    /// Sealed under a generation whose key this member does not hold.
    #[error("sealed under generation {0}, whose key this member does not hold")]
    UnknownGeneration(u32),
    /// Does not decrypt with that generation's key.
    #[error("the group document does not decrypt")]
    Decrypt,
}

/// The group's name, description and disappearing setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// The name members see.
    pub name: String,
    /// A description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Messages disappear after this (every member follows it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disappear: Option<Disappear>,
}

/// One member on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    /// The member's account.
    pub account: AccountId,
    /// Whether it holds the group key (an admin).
    pub admin: bool,
}

/// A verified, opened document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document<T> {
    /// The generation it was sealed under.
    pub generation: u32,
    /// Its version (larger wins).
    pub version: u64,
    /// What it says.
    pub body: T,
}

impl Info {
    /// Whether the name and description are within their limits.
    fn within_limits(&self) -> bool {
        self.name.chars().count() <= MAX_NAME_CHARS
            && self
                .description
                .as_ref()
                .is_none_or(|d| d.chars().count() <= MAX_DESCRIPTION_CHARS)
    }

    /// Seals and signs this info.
    pub fn seal(
        &self,
        group_key: &Identity,
        generation: u32,
        key: &[u8; 32],
        version: u64,
        nonce: &[u8; XCHACHA_NONCE_LEN],
    ) -> Result<Vec<u8>, DocumentError> {
        if !self.within_limits() {
            return Err(DocumentError::TooLarge(format!(
                "a name has at most {MAX_NAME_CHARS} characters and a description {MAX_DESCRIPTION_CHARS}"
            )));
        }
        let body = serde_json::to_vec(self).map_err(|e| DocumentError::TooLarge(e.to_string()))?;
        seal(group_key, KIND_INFO, generation, key, version, nonce, &body)
    }

    /// Verifies and opens an info document of `group`.
    pub fn open(
        bytes: &[u8],
        group: &GroupId,
        key_for: impl Fn(u32) -> Option<Zeroizing<[u8; 32]>>,
    ) -> Result<Document<Self>, DocumentError> {
        let (generation, version, body) = open(bytes, group, KIND_INFO, key_for)?;
        let info: Self = serde_json::from_slice(&body).map_err(|_| DocumentError::Malformed)?;
        if !info.within_limits() {
            return Err(DocumentError::Malformed);
        }
        Ok(Document {
            generation,
            version,
            body: info,
        })
    }
}

/// Seals and signs a member list (sorted, one entry per account).
pub fn seal_members(
    members: &[Member],
    group_key: &Identity,
    generation: u32,
    key: &[u8; 32],
    version: u64,
    nonce: &[u8; XCHACHA_NONCE_LEN],
) -> Result<Vec<u8>, DocumentError> {
    let mut sorted = members.to_vec();
    // An account listed twice keeps its admin flag if either entry has it
    // (admins sort first within an account, and the first entry stays).
    sorted.sort_by(|a, b| a.account.cmp(&b.account).then(b.admin.cmp(&a.admin)));
    sorted.dedup_by_key(|m| m.account);
    if sorted.len() > MAX_LIST {
        return Err(DocumentError::TooLarge(format!("at most {MAX_LIST} members")));
    }
    let mut body = Vec::with_capacity(2 + sorted.len() * 33);
    // At most MAX_LIST (1,575): fits a u16.
    body.extend_from_slice(&(sorted.len() as u16).to_be_bytes());
    for m in &sorted {
        body.extend_from_slice(m.account.x25519());
        body.push(u8::from(m.admin));
    }
    seal(group_key, KIND_MEMBERS, generation, key, version, nonce, &body)
}

/// Verifies and opens a member list of `group`.
pub fn open_members(
    bytes: &[u8],
    group: &GroupId,
    key_for: impl Fn(u32) -> Option<Zeroizing<[u8; 32]>>,
) -> Result<Document<Vec<Member>>, DocumentError> {
    let (generation, version, body) = open(bytes, group, KIND_MEMBERS, key_for)?;
    let (n, rest) = body.split_first_chunk::<2>().ok_or(DocumentError::Malformed)?;
    let n = usize::from(u16::from_be_bytes(*n));
    if n > MAX_LIST || rest.len() != n * 33 {
        return Err(DocumentError::Malformed);
    }
    let mut members: Vec<Member> = Vec::with_capacity(n);
    for entry in rest.chunks_exact(33) {
        let (pk, flags) = entry.split_first_chunk::<32>().ok_or(DocumentError::Malformed)?;
        if flags.first().is_none_or(|&f| f > 1) {
            return Err(DocumentError::Malformed);
        }
        let member = Member {
            account: AccountId::from_x25519(*pk),
            admin: flags[0] == 1,
        };
        // Increasing key order, so one account appears once.
        if members.last().is_some_and(|last| last.account >= member.account) {
            return Err(DocumentError::Malformed);
        }
        members.push(member);
    }
    Ok(Document {
        generation,
        version,
        body: members,
    })
}

fn seal(
    group_key: &Identity,
    kind: u8,
    generation: u32,
    key: &[u8; 32],
    version: u64,
    nonce: &[u8; XCHACHA_NONCE_LEN],
    body: &[u8],
) -> Result<Vec<u8>, DocumentError> {
    let group = GroupId::from_ed25519(*group_key.ed25519_pk());
    let mut out = vec![DOCUMENT_FORMAT, kind];
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    let ad = [group.to_bytes().as_slice(), &out].concat();
    out.extend_from_slice(nonce);
    let padded = Zeroizing::new(pad(body));
    out.extend_from_slice(&sodium::xchacha_encrypt(key, nonce, &padded, &ad));
    let sig = group_key.sign(&[DOCUMENT_LABEL, &group.to_bytes(), &out].concat());
    out.extend_from_slice(&sig);
    if out.len() > MAX_ENVELOPE_LEN {
        return Err(DocumentError::TooLarge(format!("{} bytes", out.len())));
    }
    Ok(out)
}

fn open(
    bytes: &[u8],
    group: &GroupId,
    kind: u8,
    key_for: impl Fn(u32) -> Option<Zeroizing<[u8; 32]>>,
) -> Result<(u32, u64, Zeroizing<Vec<u8>>), DocumentError> {
    let (signed, sig) = bytes.split_last_chunk::<64>().ok_or(DocumentError::Malformed)?;
    if signed.len() < HEAD_LEN + XCHACHA_NONCE_LEN + AEAD_TAG_LEN || signed[0] != DOCUMENT_FORMAT || signed[1] != kind {
        return Err(DocumentError::Malformed);
    }
    if !sodium::sign_verify_detached(
        sig,
        &[DOCUMENT_LABEL, &group.to_bytes(), signed].concat(),
        group.ed25519(),
    ) {
        return Err(DocumentError::BadSignature);
    }
    let (head, rest) = signed.split_at(HEAD_LEN);
    let generation = u32::from_be_bytes(head[2..6].try_into().map_err(|_| DocumentError::Malformed)?);
    let version = u64::from_be_bytes(head[6..14].try_into().map_err(|_| DocumentError::Malformed)?);
    let (nonce, sealed) = rest
        .split_first_chunk::<XCHACHA_NONCE_LEN>()
        .ok_or(DocumentError::Malformed)?;
    let key = key_for(generation).ok_or(DocumentError::UnknownGeneration(generation))?;
    let ad = [group.to_bytes().as_slice(), head].concat();
    let padded = sodium::xchacha_decrypt(&key, nonce, sealed, &ad).map_err(|_| DocumentError::Decrypt)?;
    let body = Zeroizing::new(unpad(&padded).map_err(|_| DocumentError::Malformed)?.to_vec());
    Ok((generation, version, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::DisappearAfter;

    fn group_key() -> Identity {
        Identity::from_ed25519_seed(&[0x91; 32])
    }

    fn group() -> GroupId {
        GroupId::from_ed25519(*group_key().ed25519_pk())
    }

    fn key_of(generation: u32) -> Option<Zeroizing<[u8; 32]>> {
        (generation <= 4).then(|| Zeroizing::new([generation as u8; 32]))
    }

    fn info() -> Info {
        Info {
            name: "Allium builders".to_owned(),
            description: Some("where the protocol is argued".to_owned()),
            disappear: Some(Disappear {
                after: DisappearAfter::Send,
                ms: 86_400_000,
            }),
        }
    }

    fn account(i: u32) -> AccountId {
        let mut pk = [0u8; 32];
        pk[..4].copy_from_slice(&i.wrapping_mul(2_654_435_761).to_be_bytes());
        pk[31] = 1;
        AccountId::from_x25519(pk)
    }

    #[test]
    fn info_seals_opens_and_is_refused_to_a_member_without_the_key() {
        let bytes = info().seal(&group_key(), 4, &[4; 32], 10, &[1; 24]).unwrap();
        let opened = Info::open(&bytes, &group(), key_of).unwrap();
        assert_eq!((opened.generation, opened.version, opened.body), (4, 10, info()));
        let later = info().seal(&group_key(), 5, &[5; 32], 11, &[1; 24]).unwrap();
        assert_eq!(
            Info::open(&later, &group(), key_of),
            Err(DocumentError::UnknownGeneration(5)),
            "a removed member does not read the info written after"
        );
        let long = Info {
            name: "n".repeat(MAX_NAME_CHARS + 1),
            ..info()
        };
        assert!(matches!(
            long.seal(&group_key(), 4, &[4; 32], 1, &[1; 24]),
            Err(DocumentError::TooLarge(_))
        ));
    }

    #[test]
    fn info_over_its_limits_is_refused_when_read_too() {
        let long = serde_json::json!({"name": "n".repeat(MAX_NAME_CHARS + 1)}).to_string();
        let bytes = seal(&group_key(), KIND_INFO, 4, &[4; 32], 1, &[1; 24], long.as_bytes()).unwrap();
        assert_eq!(Info::open(&bytes, &group(), key_of), Err(DocumentError::Malformed));
    }

    #[test]
    fn documents_are_refused_when_forged_altered_or_of_another_kind() {
        let bytes = info().seal(&group_key(), 4, &[4; 32], 10, &[1; 24]).unwrap();
        let forger = Identity::from_ed25519_seed(&[0x92; 32]);
        let forged = info().seal(&forger, 4, &[4; 32], 10, &[1; 24]).unwrap();
        assert_eq!(Info::open(&forged, &group(), key_of), Err(DocumentError::BadSignature));
        for i in [2, 6, 13, 14, 40, bytes.len() - 70, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[i] ^= 1;
            assert_eq!(
                Info::open(&bad, &group(), key_of),
                Err(DocumentError::BadSignature),
                "byte {i}"
            );
        }
        assert_eq!(open_members(&bytes, &group(), key_of), Err(DocumentError::Malformed));
        assert_eq!(
            Info::open(&bytes[..50], &group(), key_of),
            Err(DocumentError::Malformed)
        );
    }

    #[test]
    fn a_list_of_a_thousand_members_fits_one_message_sorted_and_deduplicated() {
        let mut members: Vec<Member> = (0..1_000)
            .map(|i| Member {
                account: account(i),
                admin: i % 100 == 0,
            })
            .collect();
        members.push(members[5]);
        let bytes = seal_members(&members, &group_key(), 3, &[3; 32], 7, &[2; 24]).unwrap();
        assert!(bytes.len() < MAX_ENVELOPE_LEN, "{}", bytes.len());
        let opened = open_members(&bytes, &group(), key_of).unwrap();
        assert_eq!(opened.body.len(), 1_000, "the duplicate is dropped");
        assert!(opened.body.windows(2).all(|w| w[0].account < w[1].account));
        assert_eq!(opened.body.iter().filter(|m| m.admin).count(), 10);

        // An admin listed again as a plain member stays an admin, and
        // repeats do not count against the limit.
        let admin = members[0];
        assert!(admin.admin);
        let mut twice = vec![Member { admin: false, ..admin }; MAX_LIST + 1];
        twice.push(admin);
        let bytes = seal_members(&twice, &group_key(), 3, &[3; 32], 8, &[2; 24]).unwrap();
        assert_eq!(open_members(&bytes, &group(), key_of).unwrap().body, [admin]);
    }

    #[test]
    fn a_list_naming_an_account_twice_or_out_of_order_is_refused() {
        let (a, b) = (account(1).min(account(2)), account(1).max(account(2)));
        for order in [[b, a], [a, a]] {
            let mut body = 2u16.to_be_bytes().to_vec();
            for acc in order {
                body.extend_from_slice(acc.x25519());
                body.push(0);
            }
            let bytes = seal(&group_key(), KIND_MEMBERS, 3, &[3; 32], 1, &[2; 24], &body).unwrap();
            assert_eq!(open_members(&bytes, &group(), key_of), Err(DocumentError::Malformed));
        }
        let mut body = 1u16.to_be_bytes().to_vec();
        body.extend_from_slice(a.x25519());
        body.push(2);
        let bytes = seal(&group_key(), KIND_MEMBERS, 3, &[3; 32], 1, &[2; 24], &body).unwrap();
        assert_eq!(
            open_members(&bytes, &group(), key_of),
            Err(DocumentError::Malformed),
            "unknown flags"
        );
    }
}
