//! The key message: one generation's group key, sealed to every member.
//!
//! ```text
//! key message = 0x01 ‖ group_id (33) ‖ generation (u32) ‖ eph_x25519_pk (32)
//!             ‖ n (u16, a multiple of 75) ‖ n × entry (48) ‖ signature (64)
//! signature   = Ed25519(group key, "allium-group-keys-v1" 0x00 ‖ every byte above)
//! k_i         = BLAKE2b-256(key = X25519(eph, member_x25519),
//!                           "allium-group-keys-v1" 0x00 ‖ group_id ‖ generation ‖ eph_pk ‖ member_x25519)
//! entry_i     = XChaCha20-Poly1305-IETF(k_i, nonce = 0, ad = group_id ‖ generation, key (32))
//! ```
//!
//! Entries go in increasing byte order (they look random, so the order
//! says nothing of the members') and are padded with random-looking
//! entries to a multiple of [`ENTRY_BLOCK`], so the size tells the member
//! count only to within 75. A member finds its entry by trial decryption.

use zeroize::Zeroizing;

use crate::identity::Identity;
use crate::sodium::{self, AEAD_TAG_LEN, Secret32};

use super::GroupId;

/// Format byte.
pub const KEYS_FORMAT: u8 = 0x01;
/// Domain label of the signature and of each entry's key.
pub const KEYS_LABEL: &[u8] = b"allium-group-keys-v1\0";
/// Bytes of one entry: the key and its tag.
pub const ENTRY_LEN: usize = 32 + AEAD_TAG_LEN;
/// Entries are padded to a multiple of this (Session's figure).
pub const ENTRY_BLOCK: usize = 75;
/// Bytes before the entries.
const HEAD_LEN: usize = 1 + 33 + 4 + 32 + 2;
/// Largest key message: one stored message.
pub const MAX_KEYS_LEN: usize = crate::envelope::MAX_ENVELOPE_LEN;
/// Most members one key message carries: the entries, padded, must fit.
pub const MAX_MEMBERS: usize = (MAX_KEYS_LEN - HEAD_LEN - 64) / ENTRY_LEN / ENTRY_BLOCK * ENTRY_BLOCK;
const NONCE: [u8; sodium::XCHACHA_NONCE_LEN] = [0; sodium::XCHACHA_NONCE_LEN];

/// Why a key message could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupKeysError {
    /// No members, or more than [`MAX_MEMBERS`].
    #[error("a key message carries 1 to {MAX_MEMBERS} members, not {0}")]
    MemberCount(usize),
    /// A member's key is not a usable X25519 key.
    #[error("member {0}'s X25519 key is not usable")]
    MemberKey(usize),
    /// Not the shape of a key message.
    #[error("the key message is malformed")]
    Malformed,
    /// Another group's, or its signature does not verify.
    #[error("the key message is not signed by this group's key")]
    BadSignature,
    /// No entry opens with this member's key.
    #[error("the key message holds no key for this member")]
    NotAMember,
}

/// A verified key message: which generation it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupKeys {
    /// The generation (increases at every rekey).
    pub generation: u32,
    eph_pk: [u8; 32],
    entries: Vec<[u8; ENTRY_LEN]>,
    group: GroupId,
}

impl GroupKeys {
    /// Seals `key` of `generation` to each of `members` (their account
    /// X25519 keys), signed by `group_key`. `eph_seed` makes the ephemeral
    /// key and `pad_seed` the padding entries: fresh random bytes each
    /// time (fixed only in vectors).
    pub fn seal(
        group_key: &Identity,
        generation: u32,
        key: &[u8; 32],
        members: &[[u8; 32]],
        eph_seed: &[u8; 32],
        pad_seed: &[u8; 32],
    ) -> Result<Vec<u8>, GroupKeysError> {
        if members.is_empty() || members.len() > MAX_MEMBERS {
            return Err(GroupKeysError::MemberCount(members.len()));
        }
        let group = GroupId::from_ed25519(*group_key.ed25519_pk());
        let (eph_pk, eph_sk) = sodium::box_seed_keypair(eph_seed);
        let ad = ad(&group, generation);
        let mut entries: Vec<[u8; ENTRY_LEN]> = Vec::with_capacity(members.len().next_multiple_of(ENTRY_BLOCK));
        for (i, member) in members.iter().enumerate() {
            let shared = sodium::x25519(&eph_sk, member).map_err(|_| GroupKeysError::MemberKey(i))?;
            let k = entry_key(&shared, &group, generation, &eph_pk, member);
            let sealed = sodium::xchacha_encrypt(&k, &NONCE, key, &ad);
            entries.push(sealed.try_into().map_err(|_| GroupKeysError::Malformed)?);
        }
        let mut i: u32 = 0;
        while !entries.len().is_multiple_of(ENTRY_BLOCK) {
            entries.push(sodium::blake2b_keyed::<ENTRY_LEN>(pad_seed, &[&i.to_be_bytes()]));
            i += 1;
        }
        entries.sort_unstable();
        let mut out = Vec::with_capacity(HEAD_LEN + entries.len() * ENTRY_LEN + 64);
        out.push(KEYS_FORMAT);
        out.extend_from_slice(&group.to_bytes());
        out.extend_from_slice(&generation.to_be_bytes());
        out.extend_from_slice(&eph_pk);
        // At most MAX_MEMBERS (1,575) entries: fits a u16.
        out.extend_from_slice(&(entries.len() as u16).to_be_bytes());
        for e in &entries {
            out.extend_from_slice(e);
        }
        let sig = group_key.sign(&[KEYS_LABEL, &out].concat());
        out.extend_from_slice(&sig);
        Ok(out)
    }

    /// Reads a key message of `group` and checks its signature.
    pub fn decode(bytes: &[u8], group: &GroupId) -> Result<Self, GroupKeysError> {
        let (body, sig) = bytes.split_last_chunk::<64>().ok_or(GroupKeysError::Malformed)?;
        let (head, rest) = body.split_at_checked(HEAD_LEN).ok_or(GroupKeysError::Malformed)?;
        if head[0] != KEYS_FORMAT {
            return Err(GroupKeysError::Malformed);
        }
        if head[1..34] != group.to_bytes() {
            return Err(GroupKeysError::BadSignature);
        }
        let generation = u32::from_be_bytes(head[34..38].try_into().map_err(|_| GroupKeysError::Malformed)?);
        let eph_pk: [u8; 32] = head[38..70].try_into().map_err(|_| GroupKeysError::Malformed)?;
        let n = usize::from(u16::from_be_bytes(
            head[70..72].try_into().map_err(|_| GroupKeysError::Malformed)?,
        ));
        if n == 0 || n > MAX_MEMBERS || !n.is_multiple_of(ENTRY_BLOCK) || rest.len() != n * ENTRY_LEN {
            return Err(GroupKeysError::Malformed);
        }
        if !sodium::sign_verify_detached(sig, &[KEYS_LABEL, body].concat(), group.ed25519()) {
            return Err(GroupKeysError::BadSignature);
        }
        let entries: Vec<[u8; ENTRY_LEN]> = rest
            .chunks_exact(ENTRY_LEN)
            .map(|c| c.try_into().map_err(|_| GroupKeysError::Malformed))
            .collect::<Result<_, _>>()?;
        // Sorted, as written: the order must say nothing of the members.
        if entries.windows(2).any(|w| w[0] >= w[1]) {
            return Err(GroupKeysError::Malformed);
        }
        Ok(Self {
            generation,
            eph_pk,
            entries,
            group: *group,
        })
    }

    /// How many entries (members and padding) it holds.
    pub fn entries(&self) -> usize {
        self.entries.len()
    }

    /// The key of this generation, for the member whose account X25519
    /// key pair is (`member_sk`, `member_pk`).
    pub fn open(&self, member_sk: &[u8; 32], member_pk: &[u8; 32]) -> Result<Secret32, GroupKeysError> {
        let shared = sodium::x25519(member_sk, &self.eph_pk).map_err(|_| GroupKeysError::NotAMember)?;
        let k = entry_key(&shared, &self.group, self.generation, &self.eph_pk, member_pk);
        let ad = ad(&self.group, self.generation);
        for entry in &self.entries {
            if let Ok(key) = sodium::xchacha_decrypt(&k, &NONCE, entry, &ad) {
                let key: [u8; 32] = key.as_slice().try_into().map_err(|_| GroupKeysError::Malformed)?;
                return Ok(Zeroizing::new(key));
            }
        }
        Err(GroupKeysError::NotAMember)
    }
}

/// `group_id ‖ generation`: the associated data of entries and messages.
pub(super) fn ad(group: &GroupId, generation: u32) -> Vec<u8> {
    [group.to_bytes().as_slice(), &generation.to_be_bytes()].concat()
}

fn entry_key(shared: &[u8; 32], group: &GroupId, generation: u32, eph_pk: &[u8; 32], member: &[u8; 32]) -> Secret32 {
    Zeroizing::new(sodium::blake2b_keyed::<32>(
        shared,
        &[KEYS_LABEL, &group.to_bytes(), &generation.to_be_bytes(), eph_pk, member],
    ))
}
