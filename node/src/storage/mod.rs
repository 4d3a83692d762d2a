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
//! its own signed namespaces. Caps count message *data* bytes (not the few
//! dozen bytes of row overhead nor SQLite's page slack).
//!
//! Message data is never logged and no error carries it.

mod error;
mod handle;
mod schema;
mod store;

use std::fmt;

use allium_common::AccountId;
use allium_common::rpc::{Namespace, StoredMessage, message_hash};

pub use error::{Result, StorageError};
pub use handle::{HandleConfig, PendingInsert, StorageHandle};
pub use schema::{APPLICATION_ID, BUSY_TIMEOUT, MIGRATIONS};
pub use store::{MAX_PAGE_SIZE, SWEEP_CHUNK, Store};

/// Caps on what the store keeps. All counts are of message data bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageLimits {
    /// Most data bytes one mailbox `(account, namespace)` may hold.
    pub max_mailbox_bytes: u64,
    /// Most messages one mailbox may hold.
    pub max_mailbox_messages: u64,
    /// Most data bytes the whole store may hold.
    pub max_total_bytes: u64,
}

impl Default for StorageLimits {
    /// 64 MiB and 10,000 messages per mailbox, 4 GiB in all.
    fn default() -> Self {
        Self {
            max_mailbox_bytes: 64 * 1024 * 1024,
            max_mailbox_messages: 10_000,
            max_total_bytes: 4 * 1024 * 1024 * 1024,
        }
    }
}

/// A message to store. The caller computes `hash` (see
/// [`NewMessage::new`]); the store trusts it to be
/// `message_hash(account, namespace, data)` and only checks its form.
#[derive(Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The mailbox owner.
    pub account: AccountId,
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
}

impl NewMessage {
    /// A message with its hash computed by
    /// [`allium_common::rpc::message_hash`].
    pub fn new(account: AccountId, namespace: Namespace, timestamp_ms: u64, expiry_ms: u64, data: Vec<u8>) -> Self {
        let hash = message_hash(&account, namespace, &data);
        Self {
            account,
            namespace,
            hash,
            timestamp_ms,
            expiry_ms,
            data,
        }
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
    /// The owner.
    pub account: AccountId,
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
    pub rows: Vec<(AccountId, String)>,
    /// Where the next page starts, or `None` when the scan is complete.
    pub next: Option<u64>,
}

#[cfg(test)]
mod tests;
