//! The service node's message store: SQLite, no networking.
//!
//! - [`Store`] is the synchronous store over one read-write connection
//!   (WAL, `synchronous = NORMAL`, schema versioned by `user_version`).
//! - [`StorageHandle`] is what the node's async code uses: `Clone + Send +
//!   Sync`, one dedicated writer thread fed by a bounded queue that commits
//!   whatever is queued in one transaction per round (group commit), and a
//!   small pool of read-only connections for `retrieve` and friends.
//!
//! Every operation takes `now_ms` from the caller; nothing here reads a
//! clock. A message is *live* while `expiry_ms > now_ms`; expired messages
//! are never returned, and are deleted by [`Store::sweep_expired`] (or
//! reclaimed on the spot when a cap would refuse a new message).
//!
//! A *mailbox* is one `(account, namespace)` pair: a stranger filling an
//! account's public namespace 0 cannot crowd out what the owner keeps in
//! its own signed namespaces. A full namespace 0 makes room by evicting its
//! oldest messages; a full signed namespace refuses its owner's store. Caps count message *data* bytes (not the few
//! dozen bytes of row overhead nor SQLite's page slack).
//!
//! Message data is never logged and no error carries it.

mod error;
mod handle;
mod schema;
mod store;

use std::fmt;

use allium_common::MailboxId;
use allium_common::rpc::{Namespace, StoredMessage, message_hash};

pub use error::{Result, StorageError};
pub use handle::{HandleConfig, PendingInsert, StorageHandle};
pub use schema::{APPLICATION_ID, BUSY_TIMEOUT, MIGRATIONS};
pub use store::{MAX_PAGE_SIZE, SWEEP_CHUNK, Store, evicted};

/// Caps on what the store keeps. All counts are of message data bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLimits {
    /// Most data bytes one mailbox `(account, namespace)` may hold.
    pub max_mailbox_bytes: u64,
    /// Most messages one mailbox may hold.
    pub max_mailbox_messages: u64,
    /// Most data bytes the whole store may hold.
    pub max_total_bytes: u64,
    /// Most data bytes of file chunks (namespace 16) the store may hold,
    /// within `max_total_bytes`.
    pub max_files_bytes: u64,
    /// The largest file whose chunks the store takes: a chunk whose index
    /// starts past it is refused.
    pub max_file_bytes: u64,
}

impl Default for StorageLimits {
    /// 64 MiB and 10,000 messages per mailbox, 4 GiB in all, a quarter of
    /// it for file chunks, files of up to 1 GiB.
    fn default() -> Self {
        Self {
            max_mailbox_bytes: 64 * 1024 * 1024,
            max_mailbox_messages: 10_000,
            max_total_bytes: 4 * 1024 * 1024 * 1024,
            max_files_bytes: 1024 * 1024 * 1024,
            max_file_bytes: allium_common::files::MAX_FILE_LEN,
        }
    }
}

/// A message to store. The caller computes `hash` (see
/// [`NewMessage::new`]); the store trusts it to be
/// `message_hash(account, namespace, data)` and only checks its form.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The mailbox: an account's, or a group's.
    pub account: MailboxId,
    /// The mailbox namespace.
    pub namespace: Namespace,
    /// `message_hash(account, namespace, data)`.
    pub hash: String,
    /// The sender's timestamp, Unix ms.
    pub timestamp_ms: u64,
    /// When the message expires, Unix ms.
    pub expiry_ms: u64,
    /// The stored bytes (an envelope).
    pub data: Vec<u8>,
    /// Outside namespace 0: the owner's signature of the store, kept so the
    /// message can be passed on to peers with proof that the owner put it
    /// there.
    pub owner_sig: Option<OwnerSig>,
    /// For a group member's store: the credential (signed by the group key)
    /// naming the key in `owner_sig`.
    pub credential: Option<Vec<u8>>,
    /// For a file chunk: its index in its upload (the key in `owner_sig`
    /// is the upload key).
    pub chunk: Option<u32>,
}

/// An owner's signature of a store into a signed namespace:
/// `Ed25519(owner, "store" ‖ namespace ‖ timestamp ‖ hash)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OwnerSig {
    /// The owner's Ed25519 key.
    pub ed25519: [u8; 32],
    /// The signature.
    pub signature: [u8; 64],
}

impl OwnerSig {
    /// The 96 bytes kept in the store: key ‖ signature.
    pub fn to_bytes(&self) -> [u8; 96] {
        let mut out = [0u8; 96];
        out[..32].copy_from_slice(&self.ed25519);
        out[32..].copy_from_slice(&self.signature);
        out
    }

    /// Reads [`OwnerSig::to_bytes`]'s form.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let ed25519: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
        let signature: [u8; 64] = bytes.get(32..96)?.try_into().ok()?;
        (bytes.len() == 96).then_some(Self { ed25519, signature })
    }
}

impl fmt::Debug for OwnerSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerSig")
            .field("ed25519", &hex::encode(self.ed25519))
            .finish_non_exhaustive()
    }
}

impl NewMessage {
    /// A message with its hash computed by
    /// [`allium_common::rpc::message_hash`].
    pub fn new(account: MailboxId, namespace: Namespace, timestamp_ms: u64, expiry_ms: u64, data: Vec<u8>) -> Self {
        let hash = message_hash(&account, namespace, &data);
        Self {
            account,
            namespace,
            hash,
            timestamp_ms,
            expiry_ms,
            data,
            owner_sig: None,
            credential: None,
            chunk: None,
        }
    }

    /// The message with the owner's signature of its store.
    pub fn signed_by_owner(self, owner_sig: Option<OwnerSig>) -> Self {
        Self { owner_sig, ..self }
    }

    /// The message with the credential of the group member whose key is in
    /// `owner_sig`.
    pub fn with_credential(self, credential: Option<Vec<u8>>) -> Self {
        Self { credential, ..self }
    }

    /// The chunk with its index in its upload.
    pub fn with_chunk(self, chunk: Option<u32>) -> Self {
        Self { chunk, ..self }
    }
}

impl fmt::Debug for NewMessage {
    // Never print the data: it is someone's message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewMessage")
            .field("account", &self.account)
            .field("namespace", &self.namespace)
            .field("hash", &self.hash)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("expiry_ms", &self.expiry_ms)
            .field("data_len", &self.data.len())
            .field("owner_sig", &self.owner_sig)
            .field("credential", &self.credential.is_some())
            .field("chunk", &self.chunk)
            .finish()
    }
}

/// What an insert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The message was stored.
    New,
    /// A live message with this hash was already stored; it was kept (its
    /// expiry moved later if the new one expires later, never earlier).
    Duplicate,
    /// The owner deleted a message with this hash before it expired; it is
    /// not stored again.
    Deleted,
}

/// The answer to a retrieve.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retrieved {
    /// Live messages after `last_hash`, oldest first.
    pub messages: Vec<StoredMessage>,
    /// Whether more live messages follow the last one returned.
    pub more: bool,
}

/// Message and data-byte counts (of the store or one mailbox). They
/// include expired messages not yet swept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Messages stored.
    pub messages: u64,
    /// Data bytes stored.
    pub bytes: u64,
}

/// A mailbox: one account's namespace. [`StorageHandle::subscribe`] sends
/// the mailboxes that received new messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mailbox {
    /// The account or group.
    pub account: MailboxId,
    /// The namespace.
    pub namespace: Namespace,
}

/// A stored message with its mailbox and insertion sequence, as swarm
/// hand-over reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// Insertion sequence (the cursor for [`Store::live_page`]).
    pub seq: u64,
    /// The message, ready to insert on another node.
    pub message: NewMessage,
}

/// One page of [`Store::live_page`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LivePage {
    /// The live rows of this page whose account passed the filter.
    pub rows: Vec<StoredRow>,
    /// Where the next page starts (pass it as `after_seq`), or `None` when
    /// the scan is complete.
    pub next: Option<u64>,
}

/// One page of [`StorageHandle::live_hashes`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HashPage {
    /// Account and hash of each live message of this page.
    pub rows: Vec<(MailboxId, String)>,
    /// Where the next page starts, or `None` when the scan is complete.
    pub next: Option<u64>,
}

#[cfg(test)]
mod file_tests;
#[cfg(test)]
mod tests;
