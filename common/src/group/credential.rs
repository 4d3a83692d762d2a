//! Member credentials: what lets a member read or write the group's swarm
//! without telling the nodes its Account ID (`docs/groups.md`).
//!
//! ```text
//! credential = 0x01 ‖ group_id (33) ‖ member_pk (32) ‖ rights (u8) ‖ issued_ms (u64) ‖ signature (64)
//! revocation = 0x02 ‖ group_id (33) ‖ member_pk (32) ‖ revoked_ms (u64) ‖ signature (64)
//! signature  = Ed25519(group key, "allium-group-credential-v1" 0x00 ‖ every byte before it)
//! member_seed = BLAKE2b-256(key = group seed, "allium-group-member-v1" 0x00 ‖ member account id (33))
//! ```
//!
//! `member_pk` is a per-member *sub-key*, made from the group seed and the
//! member's Account ID, so that every admin derives the same one and the
//! nodes never see the Account ID. A node that holds a revocation for a
//! sub-key refuses its credential, whenever it was issued.

use zeroize::Zeroizing;

use crate::identity::{ACCOUNT_PREFIX, AccountId, Identity};
use crate::sodium::{self, Secret32};

use super::GroupId;

/// Format byte of a credential.
pub const CREDENTIAL_FORMAT: u8 = 0x01;
/// Format byte of a revocation.
pub const REVOCATION_FORMAT: u8 = 0x02;
/// Domain label of both signatures.
pub const CREDENTIAL_LABEL: &[u8] = b"allium-group-credential-v1\0";
/// Domain label of a member's sub-key seed.
pub const MEMBER_LABEL: &[u8] = b"allium-group-member-v1\0";
/// Bytes of a credential: 139.
pub const CREDENTIAL_LEN: usize = 1 + 33 + 32 + 1 + 8 + 64;
/// Bytes of a revocation: 138.
pub const REVOCATION_LEN: usize = 1 + 33 + 32 + 8 + 64;

/// What a credential allows, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rights(u8);

impl Rights {
    /// Read the group's namespaces.
    pub const READ: Self = Self(1);
    /// Store into the messages namespace.
    pub const WRITE: Self = Self(2);
    /// Delete (its own messages; an admin signs as the group instead).
    pub const DELETE: Self = Self(4);
    /// What a member gets: read, write, delete.
    pub const MEMBER: Self = Self(1 | 2 | 4);

    /// Whether every right of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits.
    pub const fn bits(self) -> u8 {
        self.0
    }
}

/// Why a credential or revocation could not be read or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Not the length of one.
    #[error("a credential is {CREDENTIAL_LEN} bytes and a revocation {REVOCATION_LEN}, not {0}")]
    Length(usize),
    /// Another format byte.
    #[error("format {0} is not a credential or revocation")]
    Format(u8),
    /// Rights bits this code does not know.
    #[error("unknown rights bits {0:#04x}")]
    Rights(u8),
    /// For another group.
    #[error("issued for another group")]
    WrongGroup,
    /// The group key did not sign it.
    #[error("not signed by the group's key")]
    BadSignature,
}

/// A verified credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential {
    /// The member's sub-key: requests are signed with it.
    pub member_pk: [u8; 32],
    /// What it allows.
    pub rights: Rights,
    /// When it was issued (Unix ms, the admin's clock).
    pub issued_ms: u64,
}

/// A verified revocation: `member_pk` is no longer a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    /// The revoked sub-key.
    pub member_pk: [u8; 32],
    /// When (Unix ms, the admin's clock).
    pub revoked_ms: u64,
}

/// The sub-key seed of `member` in the group whose seed is `group_seed`.
pub fn member_seed(group_seed: &[u8; 32], member: &AccountId) -> Secret32 {
    let mut id = [ACCOUNT_PREFIX; 33];
    id[1..].copy_from_slice(member.x25519());
    Zeroizing::new(sodium::blake2b_keyed::<32>(group_seed, &[MEMBER_LABEL, &id]))
}

impl Credential {
    /// A credential for `member_pk` with `rights`, signed by `group_key`.
    pub fn issue(group_key: &Identity, member_pk: &[u8; 32], rights: Rights, issued_ms: u64) -> Vec<u8> {
        let group = GroupId::from_ed25519(*group_key.ed25519_pk());
        let mut out = vec![CREDENTIAL_FORMAT];
        out.extend_from_slice(&group.to_bytes());
        out.extend_from_slice(member_pk);
        out.push(rights.0);
        out.extend_from_slice(&issued_ms.to_be_bytes());
        sign_into(group_key, out)
    }

    /// Reads and verifies a credential of `group`.
    pub fn verify(bytes: &[u8], group: &GroupId) -> Result<Self, CredentialError> {
        let body = checked(bytes, CREDENTIAL_FORMAT, CREDENTIAL_LEN, group)?;
        let rights = body[66];
        if rights & !Rights::MEMBER.0 != 0 {
            return Err(CredentialError::Rights(rights));
        }
        Ok(Self {
            member_pk: body[34..66]
                .try_into()
                .map_err(|_| CredentialError::Length(bytes.len()))?,
            rights: Rights(rights),
            issued_ms: u64::from_be_bytes(
                body[67..75]
                    .try_into()
                    .map_err(|_| CredentialError::Length(bytes.len()))?,
            ),
        })
    }
}

impl Revocation {
    /// A revocation of `member_pk`, signed by `group_key`.
    pub fn issue(group_key: &Identity, member_pk: &[u8; 32], revoked_ms: u64) -> Vec<u8> {
        let group = GroupId::from_ed25519(*group_key.ed25519_pk());
        let mut out = vec![REVOCATION_FORMAT];
        out.extend_from_slice(&group.to_bytes());
        out.extend_from_slice(member_pk);
        out.extend_from_slice(&revoked_ms.to_be_bytes());
        sign_into(group_key, out)
    }

    /// Reads and verifies a revocation of `group`.
    pub fn verify(bytes: &[u8], group: &GroupId) -> Result<Self, CredentialError> {
        let body = checked(bytes, REVOCATION_FORMAT, REVOCATION_LEN, group)?;
        Ok(Self {
            member_pk: body[34..66]
                .try_into()
                .map_err(|_| CredentialError::Length(bytes.len()))?,
            revoked_ms: u64::from_be_bytes(
                body[66..74]
                    .try_into()
                    .map_err(|_| CredentialError::Length(bytes.len()))?,
            ),
        })
    }
}

fn sign_into(group_key: &Identity, mut out: Vec<u8>) -> Vec<u8> {
    let sig = group_key.sign(&[CREDENTIAL_LABEL, &out].concat());
    out.extend_from_slice(&sig);
    out
}

/// The signed part of `bytes` once its length, format, group and
/// signature check out.
fn checked<'a>(bytes: &'a [u8], format: u8, len: usize, group: &GroupId) -> Result<&'a [u8], CredentialError> {
    if bytes.len() != len {
        return Err(CredentialError::Length(bytes.len()));
    }
    let (body, sig) = bytes
        .split_last_chunk::<64>()
        .ok_or(CredentialError::Length(bytes.len()))?;
    if body[0] != format {
        return Err(CredentialError::Format(body[0]));
    }
    if body[1..34] != group.to_bytes() {
        return Err(CredentialError::WrongGroup);
    }
    if !sodium::sign_verify_detached(sig, &[CREDENTIAL_LABEL, body].concat(), group.ed25519()) {
        return Err(CredentialError::BadSignature);
    }
    Ok(body)
}
