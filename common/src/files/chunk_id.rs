//! A chunk's mailbox ID: `04` ‖ hex of [`super::chunk_id`]. A chunk is a
//! mailbox of its own, in namespace 16 only, so a file's chunks land on
//! the swarms their IDs map to.

use std::fmt;
use std::str::FromStr;

/// First byte of a chunk's mailbox ID (an account's is `0x05`, a group's
/// `0x03`).
pub const CHUNK_PREFIX: u8 = 0x04;

/// The mailbox of one chunk of one upload.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId([u8; 32]);

impl ChunkId {
    /// The mailbox of chunk `index` of the upload whose key is
    /// `upload_pk`.
    pub fn of(upload_pk: &[u8; 32], index: u32) -> Self {
        Self(super::chunk_id(upload_pk, index))
    }

    /// The mailbox whose 32 bytes are `id` (as a node stores it).
    pub const fn from_bytes(id: [u8; 32]) -> Self {
        Self(id)
    }

    /// The 32 bytes that place the chunk on the ring.
    pub const fn bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether this is chunk `index` of the upload key `upload_pk`: what a
    /// node checks before it lets that key store or delete here.
    pub fn is_chunk_of(&self, upload_pk: &[u8; 32], index: u32) -> bool {
        super::chunk_id(upload_pk, index) == self.0
    }
}

/// Why a chunk ID could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a chunk ID is 66 hex characters starting with 04")]
pub struct ChunkIdError;

impl FromStr for ChunkId {
    type Err = ChunkIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::decode(s).map_err(|_| ChunkIdError)?;
        match bytes.split_first() {
            Some((&CHUNK_PREFIX, rest)) => Ok(Self(rest.try_into().map_err(|_| ChunkIdError)?)),
            _ => Err(ChunkIdError),
        }
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CHUNK_PREFIX:02x}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({self})")
    }
}
