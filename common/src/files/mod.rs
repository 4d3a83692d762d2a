//! Files (`docs/files.md`): a file is encrypted as one secretstream with a
//! fresh key, one record per 64 KiB of plaintext, and each record is a
//! chunk of exactly [`CHUNK_LEN`] bytes stored on the swarm its ID maps
//! to. This module holds what sender and recipient must agree on byte for
//! byte: the chunking and encryption ([`Encryptor`], [`Decryptor`]), the
//! chunk IDs, and the manifest a message carries.

mod chunk_id;
mod manifest;
mod stream;

#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;

pub use chunk_id::{CHUNK_PREFIX, ChunkId, ChunkIdError};
pub use manifest::{MANIFEST_VERSION, MAX_NAME_CHARS, MAX_TYPE_LEN, Manifest, ManifestError};
pub use stream::{Decryptor, Encryptor, StreamError};

use crate::sodium::{self, SECRETSTREAM_ABYTES};

/// Plaintext bytes per chunk (the last chunk's plaintext is padded with
/// zeros to this length).
pub const RECORD_LEN: usize = 64 * 1024;
/// Bytes of every chunk: one secretstream record.
pub const CHUNK_LEN: usize = RECORD_LEN + SECRETSTREAM_ABYTES;
/// The largest file: 1 GiB.
pub const MAX_FILE_LEN: u64 = 1 << 30;
/// The most chunks of one file (of [`MAX_FILE_LEN`]): a chunk index is
/// below this.
pub const MAX_FILE_CHUNKS: u32 = (MAX_FILE_LEN / RECORD_LEN as u64) as u32;
/// Domain label of chunk IDs.
pub const CHUNK_LABEL: &[u8] = b"allium-file-chunk-v1\0";

const _: () = assert!(CHUNK_LEN <= crate::rpc::MAX_DATA_LEN, "a chunk must fit one store");

/// How many chunks a file of `size` bytes takes (an empty file one).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(RECORD_LEN as u64).max(1)
}

/// The ID of chunk `index` of the upload whose key is `upload_pk`: where
/// the chunk is stored, derived by every holder of the manifest.
pub fn chunk_id(upload_pk: &[u8; 32], index: u32) -> [u8; 32] {
    sodium::blake2b(&[CHUNK_LABEL, upload_pk, &index.to_be_bytes()])
}

/// The BLAKE2b-256 digest of a whole file, as the manifest names it.
pub fn digest(plaintext: &[u8]) -> [u8; 32] {
    sodium::blake2b(&[plaintext])
}
