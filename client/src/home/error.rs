//! [`HomeError`]: everything the client's home directory can refuse or fail with.
//!
//! No variant carries a key, a seed or a message body. Caller-supplied
//! strings that are repeated (contact names, cursor keys) are cut to
//! [`ECHO_MAX`] characters and shown with `{:?}` so control characters
//! cannot reach a terminal.

use std::path::PathBuf;

use allium_common::AccountId;

/// The longest piece of a caller-supplied string an error repeats.
pub const ECHO_MAX: usize = 64;

/// Result of a home-directory operation.
pub type Result<T, E = HomeError> = std::result::Result<T, E>;

/// Why an operation on the home directory failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HomeError {
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// `create` found a key file already there; it is never overwritten.
    #[error(
        "an identity already exists at {}; refusing to overwrite it \
         (use another --home, or move the file away if you really mean to replace it)",
        path.display()
    )]
    IdentityExists {
        /// The existing key file.
        path: PathBuf,
    },
    /// `open` found no key file.
    #[error("no identity at {}; run `allium init` or `allium restore` first", path.display())]
    NoIdentity {
        /// Where the key file was expected.
        path: PathBuf,
    },
    /// The key file can be read by group or others.
    #[error(
        "{} is readable by other users (mode {mode:03o}); anyone who reads it can \
         impersonate you. Run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyPermissions {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The key file is not a valid key (the reason never quotes its content).
    #[error("{}: not a valid identity key file: {reason}", path.display())]
    KeyFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The database belongs to another identity than the key file.
    #[error(
        "{} belongs to account {stored}, but the key file is for {key}; \
         this home directory was mixed up",
        path.display()
    )]
    IdentityMismatch {
        /// The database.
        path: PathBuf,
        /// The Account ID the database records.
        stored: String,
        /// The Account ID of the key file.
        key: AccountId,
    },
    /// A SQLite operation failed.
    #[error("{}: database error while {op}: {source}", path.display())]
    Database {
        /// The database.
        path: PathBuf,
        /// What the home was doing.
        op: &'static str,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer client.
    #[error(
        "{} has schema version {found}, but this client knows only up to {known}; \
         use a newer allium",
        path.display()
    )]
    SchemaTooNew {
        /// The database.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this code knows.
        known: i64,
    },
    /// The database file is not an Allium client database.
    #[error("{} is not an Allium client database (application_id {found:#x})", path.display())]
    NotAHomeDatabase {
        /// The database.
        path: PathBuf,
        /// Its `application_id`.
        found: i64,
    },
    /// A schema migration failed; the database is left as it was.
    #[error("{}: migrating to schema version {version} failed: {source}", path.display())]
    Migration {
        /// The database.
        path: PathBuf,
        /// The version being migrated to.
        version: i64,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// A stored row could not be decoded (edited by hand, or a bug).
    #[error("{}: corrupt {what}: {reason}", path.display())]
    Corrupt {
        /// The database.
        path: PathBuf,
        /// Which kind of row.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A contact name is not acceptable.
    #[error("invalid contact name {name:?}: {reason}")]
    InvalidContactName {
        /// The name (cut to [`ECHO_MAX`] characters).
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A contact with this name (ignoring ASCII case) exists.
    #[error("there is already a contact named {name:?}")]
    ContactExists {
        /// The existing contact's name.
        name: String,
    },
    /// The account is already saved under another name.
    #[error("{account} is already a contact, named {name:?}")]
    ContactAccountExists {
        /// The account.
        account: AccountId,
        /// The name it is saved under.
        name: String,
    },
    /// The contact list is full.
    #[error("the contact list is full ({limit} contacts); remove some first")]
    TooManyContacts {
        /// The limit.
        limit: usize,
    },
    /// A message body is larger than a message can carry.
    #[error("message body is {len} bytes, more than the {max} a message can carry")]
    BodyTooLarge {
        /// Body length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Envelope data is larger than a node accepts.
    #[error("message data is {len} bytes, more than the {max} a node accepts")]
    DataTooLarge {
        /// Data length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A TTL outside what nodes accept.
    #[error("TTL {ttl_ms} ms is outside {min} ..= {max} ms")]
    InvalidTtl {
        /// The TTL given.
        ttl_ms: u64,
        /// Shortest TTL.
        min: u64,
        /// Longest TTL.
        max: u64,
    },
    /// The outbox is full of unconfirmed messages.
    #[error("the outbox holds {limit} unsent messages already; wait until some are delivered or expire")]
    OutboxFull {
        /// The limit.
        limit: usize,
    },
    /// The node list is larger than a client reads.
    #[error("node list is {len} bytes of JSON, more than the {max} the cache keeps")]
    NodeListTooLarge {
        /// JSON length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A number does not fit SQLite's signed 64-bit integers.
    #[error("{what} {value} is out of range (at most {})", i64::MAX)]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// Some other argument is not acceptable (a hash, a cursor or meta key).
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// The value (cut to [`ECHO_MAX`] characters).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// `s` cut to [`ECHO_MAX`] characters, for repeating in an error.
pub(crate) fn echo(s: &str) -> String {
    match s.char_indices().nth(ECHO_MAX) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}
