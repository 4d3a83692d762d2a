//! The manifest: what a message carries about a file, so its recipient can
//! find, fetch, decrypt and check it. It travels inside the end-to-end
//! encrypted message; nothing in it is ever shown to a node.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{MAX_FILE_LEN, chunk_count, chunk_id};
use crate::encoding::{from_base64, to_base64};
use crate::sodium::SECRETSTREAM_HEADER_LEN;

/// The manifest version this code writes and reads.
pub const MANIFEST_VERSION: u8 = 1;
/// Longest file name kept, in characters.
pub const MAX_NAME_CHARS: usize = 255;
/// Longest content type kept, in bytes.
pub const MAX_TYPE_LEN: usize = 127;

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON of the manifest's shape, or a field of the wrong form.
    #[error("malformed file manifest: {0}")]
    Malformed(String),
    /// Another version.
    #[error("file manifest version {0} is not supported")]
    Version(u8),
    /// Sizes that do not agree, or over the limit.
    #[error("file manifest sizes do not hold: {0}")]
    Size(String),
}

/// A file's manifest.
#[derive(Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The secretstream key.
    pub key: Zeroizing<[u8; 32]>,
    /// The secretstream header.
    pub header: [u8; SECRETSTREAM_HEADER_LEN],
    /// The upload key, from which the chunk IDs derive.
    pub upload_pk: [u8; 32],
    /// The file's exact size in bytes.
    pub size: u64,
    /// BLAKE2b-256 of the whole plaintext.
    pub digest: [u8; 32],
    /// The name the sender gave (at most [`MAX_NAME_CHARS`]; a recipient
    /// keeps only a safe last component of it when saving).
    pub name: String,
    /// Its media type, as the sender said (`application/octet-stream` if
    /// unknown).
    pub content_type: String,
}

impl std::fmt::Debug for Manifest {
    // Never print the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("upload_pk", &hex::encode(self.upload_pk))
            .field("size", &self.size)
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// The JSON form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    v: u8,
    key: String,
    header: String,
    upload_pk: String,
    chunks: u64,
    size: u64,
    digest: String,
    name: String,
    #[serde(rename = "type")]
    content_type: String,
}

impl Manifest {
    /// The number of chunks (at most 16,384 for a manifest that was read:
    /// a chunk index is a `u32`).
    pub fn chunks(&self) -> u32 {
        u32::try_from(chunk_count(self.size)).unwrap_or(u32::MAX)
    }

    /// The ID of chunk `index`.
    pub fn chunk_id(&self, index: u32) -> [u8; 32] {
        chunk_id(&self.upload_pk, index)
    }

    /// The JSON value carried in a message.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(Wire {
            v: MANIFEST_VERSION,
            key: to_base64(self.key.as_slice()),
            header: to_base64(&self.header),
            upload_pk: hex::encode(self.upload_pk),
            chunks: u64::from(self.chunks()),
            size: self.size,
            digest: hex::encode(self.digest),
            name: self.name.clone(),
            content_type: self.content_type.clone(),
        })
        .unwrap_or(serde_json::Value::Null)
    }

    /// Reads and checks a manifest: its version, every field's form, and
    /// that the chunk count is the size's.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, ManifestError> {
        let w: Wire = serde_json::from_value(value.clone()).map_err(|e| ManifestError::Malformed(e.to_string()))?;
        if w.v != MANIFEST_VERSION {
            return Err(ManifestError::Version(w.v));
        }
        if w.size > MAX_FILE_LEN {
            return Err(ManifestError::Size(format!("{} bytes is over the 1 GiB limit", w.size)));
        }
        if w.chunks != chunk_count(w.size) {
            return Err(ManifestError::Size(format!(
                "{} bytes take {} chunks, not {}",
                w.size,
                chunk_count(w.size),
                w.chunks
            )));
        }
        if w.name.chars().count() > MAX_NAME_CHARS || w.content_type.len() > MAX_TYPE_LEN {
            return Err(ManifestError::Malformed("name or type too long".into()));
        }
        let key = from_base64(&w.key)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
            .ok_or_else(|| ManifestError::Malformed("key".into()))?;
        let header = from_base64(&w.header)
            .ok()
            .and_then(|h| <[u8; SECRETSTREAM_HEADER_LEN]>::try_from(h.as_slice()).ok())
            .ok_or_else(|| ManifestError::Malformed("header".into()))?;
        let hex32 = |s: &str, what: &str| {
            hex::decode(s)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
                .ok_or_else(|| ManifestError::Malformed(what.into()))
        };
        Ok(Self {
            key: Zeroizing::new(key),
            header,
            upload_pk: hex32(&w.upload_pk, "upload_pk")?,
            size: w.size,
            digest: hex32(&w.digest, "digest")?,
            name: w.name,
            content_type: w.content_type,
        })
    }
}
