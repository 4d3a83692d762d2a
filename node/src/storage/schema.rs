//! Opening connections and migrating the schema.
//!
//! The schema version is SQLite's `PRAGMA user_version`; [`MIGRATIONS`]\[i\]
//! takes a database from version `i` to `i + 1`. All pending migrations run
//! in one `IMMEDIATE` transaction, so a failed upgrade leaves the database
//! as it was. A database whose version is newer than `MIGRATIONS.len()` is
//! refused: an older node must not write into a schema it does not know.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::error::{Result, StorageError};

/// `PRAGMA application_id` of an Allium message store ("Allm").
pub const APPLICATION_ID: i64 = 0x416C_6C6D;

/// How long a connection waits for a lock before giving up with
/// [`StorageError::Busy`].
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Page-cache size of the writer connection, KiB (negative in the pragma).
/// Big enough to keep the hash and mailbox indexes of a few million
/// messages in SQLite's own cache: at 1M messages, 32 MiB left the writer
/// re-reading index pages from the OS for every insert (~25 % slower).
const WRITER_CACHE_KIB: i64 = 128 * 1024;
/// Page-cache size of each reader connection, KiB.
const READER_CACHE_KIB: i64 = 8 * 1024;
/// After a checkpoint, the WAL file is truncated to at most this size.
const JOURNAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;
/// The writer checkpoints when the WAL reaches this many pages (64 MiB at
/// 4 KiB pages) instead of SQLite's 1,000. Each checkpoint fsyncs twice,
/// and index pages that several rounds dirty are copied once per
/// checkpoint, so rarer checkpoints write much less: measured here, 1 KiB
/// messages in rounds of 64 went from ~18,000 to ~25,000 inserts/s.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 16 * 1024;

/// Version 1: messages keyed by hash and ordered by an insertion sequence,
/// per-mailbox and total counters kept by triggers.
const V1: &str = "
CREATE TABLE messages (
    seq          INTEGER PRIMARY KEY,
    hash         TEXT    NOT NULL UNIQUE,
    account      BLOB    NOT NULL CHECK (length(account) = 32),
    namespace    INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    expiry_ms    INTEGER NOT NULL,
    data         BLOB    NOT NULL
);
CREATE INDEX messages_mailbox ON messages (account, namespace, seq);
CREATE INDEX messages_expiry ON messages (expiry_ms);

CREATE TABLE mailboxes (
    account   BLOB    NOT NULL,
    namespace INTEGER NOT NULL,
    messages  INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    PRIMARY KEY (account, namespace)
) WITHOUT ROWID;

CREATE TABLE totals (
    id       INTEGER PRIMARY KEY CHECK (id = 0),
    messages INTEGER NOT NULL,
    bytes    INTEGER NOT NULL
);
INSERT INTO totals (id, messages, bytes) VALUES (0, 0, 0);

CREATE TRIGGER messages_counted_in AFTER INSERT ON messages BEGIN
    INSERT INTO mailboxes (account, namespace, messages, bytes)
        VALUES (new.account, new.namespace, 1, length(new.data))
        ON CONFLICT (account, namespace) DO UPDATE
        SET messages = messages + 1, bytes = bytes + excluded.bytes;
    UPDATE totals SET messages = messages + 1, bytes = bytes + length(new.data) WHERE id = 0;
END;

CREATE TRIGGER messages_counted_out AFTER DELETE ON messages BEGIN
    UPDATE mailboxes SET messages = messages - 1, bytes = bytes - length(old.data)
        WHERE account = old.account AND namespace = old.namespace;
    DELETE FROM mailboxes
        WHERE account = old.account AND namespace = old.namespace AND messages <= 0;
    UPDATE totals SET messages = messages - 1, bytes = bytes - length(old.data) WHERE id = 0;
END;
";

/// Version 2: tombstones. The hash of a message its owner deleted is kept
/// until the message would have expired, so a copy pushed again by a peer
/// that missed the delete (replication retry, hand-over, sync) is not
/// stored again.
const V2: &str = "
CREATE TABLE deleted (
    hash      TEXT    PRIMARY KEY,
    expiry_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX deleted_expiry ON deleted (expiry_ms);
";

/// Version 3: protocol 2.
/// - `owner_sig`: in a signed namespace, the owner's key and signature of
///   the store (96 bytes), so the message can be passed on to peers with
///   proof that the owner put it there (peers refuse it otherwise).
/// - `expiry_set_ms`: the signing time of the owner's `expire` that set
///   `expiry_ms` (0 if none did): an older `expire`, played again or
///   arriving late, changes nothing, and a copy pushed again cannot undo it.
const V3: &str = "
ALTER TABLE messages ADD COLUMN owner_sig BLOB CHECK (owner_sig IS NULL OR length(owner_sig) = 96);
ALTER TABLE messages ADD COLUMN expiry_set_ms INTEGER NOT NULL DEFAULT 0;
";

/// Version 4: the owner's signed request behind each tombstone, so a node
/// can prove a deletion to a peer that missed it (and still holds the
/// message). A tombstone without one (an eviction) stays local.
const V4: &str = "
CREATE TABLE deletions (
    id        INTEGER PRIMARY KEY,
    request   TEXT    NOT NULL,
    expiry_ms INTEGER NOT NULL
);
CREATE INDEX deletions_expiry ON deletions (expiry_ms);
ALTER TABLE deleted ADD COLUMN deletion INTEGER;
";

/// Version 5: protocol 6, groups. A group member's store into the group's
/// namespace 11 is signed by the member's sub-key, whose credential (signed
/// by the group key) is kept with it, so the message can be passed on to
/// peers with proof that a member put it there. Groups share the `account`
/// column with accounts: the namespace (11–15 for groups only) tells them
/// apart.
const V5: &str = "
ALTER TABLE messages ADD COLUMN credential BLOB CHECK (credential IS NULL OR length(credential) = 139);
";

/// Version 6: protocol 7, file chunks (`docs/files.md`).
/// - `chunk`: a chunk's index in its upload, kept with the upload key's
///   signature so the chunk can be passed on with proof of who stored it.
/// - `file_totals`: the bytes namespace 16 holds, for the files quota,
///   kept by triggers like `totals`.
///
/// Namespace 16 was an account's until protocol 7 and no client used it:
/// rows left there would now be read as chunks, so they go.
const V6: &str = "
DELETE FROM messages WHERE namespace = 16;
ALTER TABLE messages ADD COLUMN chunk INTEGER CHECK (chunk IS NULL OR (chunk >= 0 AND chunk <= 4294967295));

CREATE TABLE file_totals (
    id       INTEGER PRIMARY KEY CHECK (id = 0),
    messages INTEGER NOT NULL,
    bytes    INTEGER NOT NULL
);
INSERT INTO file_totals (id, messages, bytes) VALUES (0, 0, 0);

CREATE TRIGGER files_counted_in AFTER INSERT ON messages WHEN new.namespace = 16 BEGIN
    UPDATE file_totals SET messages = messages + 1, bytes = bytes + length(new.data) WHERE id = 0;
END;

CREATE TRIGGER files_counted_out AFTER DELETE ON messages WHEN old.namespace = 16 BEGIN
    UPDATE file_totals SET messages = messages - 1, bytes = bytes - length(old.data) WHERE id = 0;
END;
";

/// The migrations, oldest first: entry `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this code writes.
pub fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Opens (creating if needed) the writer connection: WAL, `synchronous =
/// NORMAL`, busy timeout, then migrates the schema.
pub fn open_writer(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let open_err = |source| StorageError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    check_version(&conn, path)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StorageError::Open {
            path: path.to_path_buf(),
            source: rusqlite::Error::InvalidParameterName(format!("journal_mode stayed {mode:?} instead of WAL")),
        });
    }
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
    conn.pragma_update(None, "temp_store", "MEMORY").map_err(open_err)?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)
        .map_err(open_err)?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT)
        .map_err(open_err)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES)
        .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(32);
    migrate(conn, path)
}

/// Opens a read-only connection to a store the writer has already opened
/// and migrated.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let open_err = |source| StorageError::Open {
        path: path.to_path_buf(),
        source,
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)
        .map_err(open_err)?;
    conn.set_prepared_statement_cache_capacity(16);
    let version = check_version(&conn, path)?;
    if version != current_version() {
        return Err(StorageError::Open {
            path: path.to_path_buf(),
            source: rusqlite::Error::InvalidParameterName(format!(
                "reader found schema version {version}, expected {}",
                current_version()
            )),
        });
    }
    Ok(conn)
}

/// Reads `user_version` and `application_id`; refuses a newer schema or a
/// foreign database. Returns the version.
fn check_version(conn: &Connection, path: &Path) -> Result<i64> {
    let open_err = |source| StorageError::Open {
        path: path.to_path_buf(),
        source,
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(open_err)?;
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(open_err)?;
    if version > current_version() {
        return Err(StorageError::SchemaTooNew {
            path: path.to_path_buf(),
            found: version,
            known: current_version(),
        });
    }
    if version > 0 && app != APPLICATION_ID {
        return Err(StorageError::NotAStore {
            path: path.to_path_buf(),
            found: app,
            expected: APPLICATION_ID,
        });
    }
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(open_err)?;
        if tables > 0 {
            return Err(StorageError::NotAStore {
                path: path.to_path_buf(),
                found: app,
                expected: APPLICATION_ID,
            });
        }
    }
    Ok(version)
}

/// Applies every pending migration in one transaction.
fn migrate(mut conn: Connection, path: &Path) -> Result<Connection> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|source| StorageError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    // Re-read under the write lock: another process may have migrated.
    let from: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|source| StorageError::Open {
            path: path.to_path_buf(),
            source,
        })?;
    if from > current_version() {
        return Err(StorageError::SchemaTooNew {
            path: path.to_path_buf(),
            found: from,
            known: current_version(),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if version <= from {
            continue;
        }
        let mig_err = |source| StorageError::Migration {
            path: path.to_path_buf(),
            version,
            source,
        };
        tx.execute_batch(sql).map_err(mig_err)?;
        // Pragmas take no bound parameters; both values are our integers.
        tx.execute_batch(&format!(
            "PRAGMA user_version = {version}; PRAGMA application_id = {APPLICATION_ID};"
        ))
        .map_err(mig_err)?;
        tracing::info!(path = %path.display(), version, "message store schema migrated");
    }
    tx.commit().map_err(|source| StorageError::Migration {
        path: path.to_path_buf(),
        version: current_version(),
        source,
    })?;
    Ok(conn)
}
