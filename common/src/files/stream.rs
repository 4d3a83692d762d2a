//! Chunking and encrypting a file, and the reverse. Both sides take the
//! chunks in order: the secretstream binds each record to its position and
//! the last to its `FINAL` tag, so a chunk changed, moved, dropped or added
//! is refused, and a file cut short is never taken for whole.

use zeroize::Zeroizing;

use super::{CHUNK_LEN, MAX_FILE_LEN, RECORD_LEN, chunk_count};
use crate::sodium::{SECRETSTREAM_HEADER_LEN, SecretStream};

/// Why a chunk could not be taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The file is larger than a file may be.
    #[error("a file holds at most {MAX_FILE_LEN} bytes, this one {0}")]
    TooLarge(u64),
    /// A chunk of the wrong length.
    #[error("a chunk is {CHUNK_LEN} bytes, this one {0}")]
    ChunkLength(usize),
    /// A chunk that does not authenticate at this position (changed,
    /// moved, or of another file).
    #[error("chunk {0} does not decrypt: damaged, out of place, or of another file")]
    Damaged(u64),
    /// The `FINAL` tag where it does not belong, or missing on the last.
    #[error("chunk {0} ends the file where it should not, or the last chunk does not")]
    Final(u64),
    /// More chunks than the file has.
    #[error("the file has {0} chunks; no more are taken")]
    Extra(u64),
    /// Plaintext given past the file's size.
    #[error("more plaintext than the file's {0} bytes")]
    Overrun(u64),
}

/// The stream of a file of `size` bytes, if a file may be that large.
fn start(
    key: &[u8; 32],
    header: &[u8; SECRETSTREAM_HEADER_LEN],
    size: u64,
) -> Result<(SecretStream, u64), StreamError> {
    if size > MAX_FILE_LEN {
        return Err(StreamError::TooLarge(size));
    }
    Ok((SecretStream::new(key, header), size))
}

/// Encrypts a file of a known size, 64 KiB at a time.
#[derive(Debug)]
pub struct Encryptor {
    stream: SecretStream,
    size: u64,
    next: u64,
}

impl Encryptor {
    /// An encryptor of a `size`-byte file under `key` and `header` (both
    /// chosen by the caller: the same ones give the same chunks).
    pub fn new(key: &[u8; 32], header: &[u8; SECRETSTREAM_HEADER_LEN], size: u64) -> Result<Self, StreamError> {
        let (stream, size) = start(key, header, size)?;
        Ok(Self { stream, size, next: 0 })
    }

    /// The number of chunks of the file.
    pub fn chunks(&self) -> u64 {
        chunk_count(self.size)
    }

    /// The index of the next chunk [`Encryptor::push`] makes.
    pub fn next_index(&self) -> u64 {
        self.next
    }

    /// Encrypts the next 64 KiB of the file (less for the last chunk, the
    /// rest of the file) into a chunk of [`CHUNK_LEN`] bytes.
    pub fn push(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, StreamError> {
        let count = self.chunks();
        if self.next >= count {
            return Err(StreamError::Extra(count));
        }
        let offset = self.next * RECORD_LEN as u64;
        let expected = (self.size - offset).min(RECORD_LEN as u64);
        if plaintext.len() as u64 != expected {
            return Err(StreamError::Overrun(self.size));
        }
        let last = self.next + 1 == count;
        let chunk = if plaintext.len() == RECORD_LEN {
            self.stream.push(plaintext, last)
        } else {
            let mut padded = Zeroizing::new(vec![0u8; RECORD_LEN]);
            padded[..plaintext.len()].copy_from_slice(plaintext);
            self.stream.push(&padded, last)
        };
        self.next += 1;
        Ok(chunk)
    }
}

/// Decrypts a file's chunks in order.
#[derive(Debug)]
pub struct Decryptor {
    stream: SecretStream,
    size: u64,
    next: u64,
}

impl Decryptor {
    /// A decryptor of the `size`-byte file under `key` and `header`.
    pub fn new(key: &[u8; 32], header: &[u8; SECRETSTREAM_HEADER_LEN], size: u64) -> Result<Self, StreamError> {
        let (stream, size) = start(key, header, size)?;
        Ok(Self { stream, size, next: 0 })
    }

    /// Whether every chunk was taken.
    pub fn is_done(&self) -> bool {
        self.next == chunk_count(self.size)
    }

    /// Decrypts the next chunk; returns its plaintext (the padding of the
    /// last chunk removed). A chunk that does not authenticate leaves the
    /// decryptor where it was (libsodium moves the state only on success),
    /// so the same chunk fetched again from another node can be pulled in
    /// its place. A `FINAL` tag out of place ends the decryptor.
    pub fn pull(&mut self, chunk: &[u8]) -> Result<Zeroizing<Vec<u8>>, StreamError> {
        let count = chunk_count(self.size);
        let index = self.next;
        if index >= count {
            return Err(StreamError::Extra(count));
        }
        if chunk.len() != CHUNK_LEN {
            return Err(StreamError::ChunkLength(chunk.len()));
        }
        let (mut plaintext, last) = self.stream.pull(chunk).map_err(|_| StreamError::Damaged(index))?;
        if last != (index + 1 == count) {
            // The state moved on: nothing after this is taken, and the
            // file is not done.
            self.next = u64::MAX;
            return Err(StreamError::Final(index));
        }
        let offset = index * RECORD_LEN as u64;
        let keep = usize::try_from((self.size - offset).min(RECORD_LEN as u64)).unwrap_or(RECORD_LEN);
        plaintext.truncate(keep);
        self.next = index + 1;
        Ok(plaintext)
    }
}
