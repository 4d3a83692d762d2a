//! Private groups (`docs/groups.md`): a group is its own account, whose
//! Ed25519 key (the group key) the admins hold. This module holds what
//! members and admins must agree on byte for byte: the Group ID, the key
//! message an admin writes at every rekey ([`keys`]) and the group
//! message members exchange ([`message`]).

pub mod credential;
pub mod keys;
pub mod message;
pub mod state;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

/// First byte of a Group ID (an account's is `0x05`).
pub const GROUP_PREFIX: u8 = 0x03;

/// A group's ID: `03` ‖ hex of its Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId([u8; 32]);

impl GroupId {
    /// The ID of the group key `ed25519_pk`.
    pub const fn from_ed25519(ed25519_pk: [u8; 32]) -> Self {
        Self(ed25519_pk)
    }

    /// The group key's Ed25519 public key.
    pub const fn ed25519(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 33 bytes signed and bound into every group format.
    pub fn to_bytes(&self) -> [u8; 33] {
        let mut out = [GROUP_PREFIX; 33];
        out[1..].copy_from_slice(&self.0);
        out
    }
}

/// Why a Group ID could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Group ID is 66 hex characters starting with 03")]
pub struct GroupIdError;

impl FromStr for GroupId {
    type Err = GroupIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| GroupIdError)?;
        match bytes.split_first() {
            Some((&GROUP_PREFIX, rest)) => Ok(Self(rest.try_into().map_err(|_| GroupIdError)?)),
            _ => Err(GroupIdError),
        }
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{GROUP_PREFIX:02x}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupId({self})")
    }
}
