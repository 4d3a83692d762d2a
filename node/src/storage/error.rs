//! [`StorageError`]: everything the message store can refuse or fail with.

use std::path::PathBuf;

use allium_common::MailboxId;
use rusqlite::ErrorCode;

/// The longest piece of a caller-supplied string an error repeats.
const ECHO_MAX: usize = 64;

/// Why a storage operation failed.
///
/// Variants fall in three groups:
/// - refusals of one message ([`MailboxFull`](Self::MailboxFull),
///   [`StoreFull`](Self::StoreFull), [`FilesFull`](Self::FilesFull),
///   [`FileTooLarge`](Self::FileTooLarge), [`Expired`](Self::Expired),
///   [`DataTooLarge`](Self::DataTooLarge), [`InvalidHash`](Self::InvalidHash),
///   [`OutOfRange`](Self::OutOfRange), [`HashConflict`](Self::HashConflict)):
///   the store is fine, this message is not taken;
/// - back-pressure and lifecycle ([`QueueFull`](Self::QueueFull),
///   [`Closed`](Self::Closed)): try again later or elsewhere (HTTP 503);
/// - database failures ([`DiskFull`](Self::DiskFull), [`Sqlite`](Self::Sqlite),
///   [`Busy`](Self::Busy), opening and migration errors).
///
/// No variant carries message data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The mailbox `(account, namespace)` would exceed its message or byte
    /// cap (expired messages were reclaimed first). HTTP 507.
    #[error(
        "mailbox {account} namespace {namespace} is full: it holds {messages} messages \
         and {bytes} bytes, the limits are {max_messages} messages and {max_bytes} bytes, \
         and this message adds {incoming} bytes"
    )]
    MailboxFull {
        /// The mailbox owner.
        account: MailboxId,
        /// The mailbox namespace.
        namespace: i16,
        /// Messages the mailbox holds now.
        messages: u64,
        /// Data bytes the mailbox holds now.
        bytes: u64,
        /// The per-mailbox message cap.
        max_messages: u64,
        /// The per-mailbox byte cap.
        max_bytes: u64,
        /// Data bytes of the refused message.
        incoming: usize,
    },
    /// The whole store would exceed its byte cap (after reclaiming expired
    /// messages). HTTP 507.
    #[error(
        "the message store is full: {bytes} of {max_bytes} data bytes used, \
         this message adds {incoming}"
    )]
    StoreFull {
        /// Data bytes stored now.
        bytes: u64,
        /// The total byte cap.
        max_bytes: u64,
        /// Data bytes of the refused message.
        incoming: usize,
    },
    /// Namespace 16 would exceed the node's files quota (after reclaiming
    /// expired messages). HTTP 507.
    #[error(
        "the node's files quota is full: {bytes} of {max_bytes} bytes of file chunks stored, \
         this chunk adds {incoming}"
    )]
    FilesFull {
        /// Chunk bytes stored now.
        bytes: u64,
        /// The files quota.
        max_bytes: u64,
        /// Data bytes of the refused chunk.
        incoming: usize,
    },
    /// A chunk lies past the largest file the node takes. HTTP 413.
    #[error("this node takes files of up to {max_bytes} bytes; chunk {chunk} starts past that")]
    FileTooLarge {
        /// The chunk's index in its upload.
        chunk: u32,
        /// The node's per-file limit.
        max_bytes: u64,
    },
    /// SQLite reported `SQLITE_FULL`: the disk (or the file size limit) is
    /// full. HTTP 507.
    #[error("disk full while {op}: {source}")]
    DiskFull {
        /// What the store was doing.
        op: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The message's expiry is not after `now_ms`.
    #[error("message {hash} expired at {expiry_ms} ms, it is now {now_ms} ms")]
    Expired {
        /// Message hash.
        hash: String,
        /// Its expiry, Unix ms.
        expiry_ms: u64,
        /// The time the caller passed in.
        now_ms: u64,
    },
    /// The data is larger than [`allium_common::rpc::MAX_DATA_LEN`].
    #[error("message data is {len} bytes, the limit is {max}")]
    DataTooLarge {
        /// Length of the data.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The hash is not 43 characters of unpadded base64.
    #[error("{hash:?} is not a message hash (43 characters of unpadded base64)")]
    InvalidHash {
        /// The offending string (at most 64 characters of it).
        hash: String,
    },
    /// A number does not fit SQLite's signed 64-bit integers.
    #[error("{field} = {value} is out of range (at most {max})", max = i64::MAX)]
    OutOfRange {
        /// Which field.
        field: &'static str,
        /// Its value.
        value: u64,
    },
    /// The hash is already stored under another mailbox: the caller passed
    /// a hash that is not `message_hash(account, namespace, data)`.
    #[error("hash {hash} is already stored for another mailbox")]
    HashConflict {
        /// Message hash.
        hash: String,
    },
    /// An insert batch through the handle is larger than its limit.
    #[error("a batch of {len} messages is larger than the limit of {max}")]
    BatchTooLarge {
        /// Messages in the batch.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The writer's queue is full: the node is overloaded. HTTP 503.
    #[error(
        "the storage write queue is full (at most {capacity} jobs and {max_bytes} bytes \
         may wait); try again later"
    )]
    QueueFull {
        /// Most jobs that may wait.
        capacity: usize,
        /// Most bytes that waiting jobs may hold.
        max_bytes: usize,
    },
    /// The store has been closed. HTTP 503.
    #[error("the message store is closed")]
    Closed,
    /// The directory for the database could not be created.
    #[error("cannot create the database directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or configured.
    #[error("cannot open the message store {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer allium-node.
    #[error(
        "the message store {path} has schema version {found}, newer than version {known} \
         that this allium-node knows; run a newer allium-node or use another data directory"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this code knows.
        known: i64,
    },
    /// The file is a SQLite database of some other program.
    #[error("{path} is not an Allium message store (application_id {found:#x}, expected {expected:#x})")]
    NotAStore {
        /// The database file.
        path: PathBuf,
        /// Its `application_id`.
        found: i64,
        /// Ours.
        expected: i64,
    },
    /// A schema migration failed; the database is left at the version before it.
    #[error("migrating the message store {path} to schema version {version} failed: {source}")]
    Migration {
        /// The database file.
        path: PathBuf,
        /// The version that failed.
        version: i64,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database stayed locked past the busy timeout. HTTP 503.
    #[error("the message store was busy while {op}: {source}")]
    Busy {
        /// What the store was doing.
        op: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// Any other SQLite error.
    #[error("SQLite error while {op}: {source}")]
    Sqlite {
        /// What the store was doing.
        op: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row does not have the shape the schema promises.
    #[error("corrupt row in the message store: {what}")]
    Corrupt {
        /// What was wrong.
        what: String,
    },
    /// A storage worker (writer thread or blocking read task) failed.
    #[error("storage worker failed: {what}")]
    Worker {
        /// What happened.
        what: String,
    },
}

impl StorageError {
    /// Wraps a SQLite error from `op`, sorting out disk-full and busy.
    pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| match source.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => Self::DiskFull { op, source },
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Self::Busy { op, source },
            _ => Self::Sqlite { op, source },
        }
    }

    /// An [`InvalidHash`](Self::InvalidHash) that repeats at most
    /// [`ECHO_MAX`] characters of the input.
    pub(crate) fn invalid_hash(hash: &str) -> Self {
        Self::InvalidHash {
            hash: hash.chars().take(ECHO_MAX).collect(),
        }
    }

    /// Whether the error is about the database rather than one message:
    /// a transaction that saw it must be rolled back.
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::DiskFull { .. }
                | Self::Busy { .. }
                | Self::Sqlite { .. }
                | Self::Corrupt { .. }
                | Self::Worker { .. }
                | Self::Closed
        )
    }

    /// Whether the node should answer 507 Insufficient Storage.
    pub fn is_insufficient_storage(&self) -> bool {
        matches!(
            self,
            Self::MailboxFull { .. } | Self::StoreFull { .. } | Self::FilesFull { .. } | Self::DiskFull { .. }
        )
    }

    /// Whether the node should answer 413: the message is larger than the
    /// node takes.
    pub fn is_too_large(&self) -> bool {
        matches!(self, Self::FileTooLarge { .. })
    }

    /// Whether the store (or its disk) has no room left, as opposed to one
    /// mailbox being full.
    pub fn is_out_of_space(&self) -> bool {
        matches!(self, Self::StoreFull { .. } | Self::DiskFull { .. })
    }

    /// Whether the failure is temporary back-pressure (HTTP 503): the same
    /// request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::QueueFull { .. } | Self::Closed | Self::Busy { .. })
    }
}

/// `Result` with [`StorageError`].
pub type Result<T, E = StorageError> = std::result::Result<T, E>;
