//! Opening `allium.db` and migrating its schema.
//!
//! The schema version is SQLite's `PRAGMA user_version`; [`MIGRATIONS`]\[i\]
//! takes a database from version `i` to `i + 1`. All pending migrations run
//! in one `IMMEDIATE` transaction, so a failed upgrade leaves the database
//! as it was. A database whose version is newer than `MIGRATIONS.len()` is
//! refused: an older client must not write into a schema it does not know.
//! `PRAGMA application_id` marks the file as an Allium client database, so
//! a node's message store (or any other SQLite file) is not mistaken for one.

use std::fs;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::error::{HomeError, Result};

/// `PRAGMA application_id` of an Allium client database ("AlCl").
pub const APPLICATION_ID: i64 = 0x416C_436C;

/// How long a connection waits for another `allium` process (a running
/// `allium watch`, say) to release the write lock.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Version 1.
///
/// - `meta`: small settings, key → text.
/// - `contacts`: names are unique ignoring ASCII case, and an account has
///   at most one name, so `name_of` is well defined.
/// - `history`: delivered messages both ways. A message is identified by its
///   swarm hash and direction (a note to self is sent once and received
///   once). `local_ms` is this client's clock when the message was sent or
///   received; listings are ordered by it, never by the sender's claimed
///   timestamp, which a sender could set far in the future.
/// - `outbox`: messages not yet confirmed by a swarm node. `AUTOINCREMENT`
///   so an id is never reused for a different message.
/// - `cursors`: last retrieved hash per swarm node or swarm; the row order
///   (rowid) is recency, for evicting the stalest.
/// - `node_list`: the one cached signed node list, as JSON.
const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE contacts (
    name       TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
    account_id TEXT NOT NULL UNIQUE CHECK (length(account_id) = 66)
) WITHOUT ROWID;

CREATE TABLE history (
    id          INTEGER PRIMARY KEY,
    direction   INTEGER NOT NULL CHECK (direction IN (0, 1)),
    hash        TEXT    NOT NULL,
    peer        TEXT    NOT NULL CHECK (length(peer) = 66),
    sent_ms     INTEGER NOT NULL,
    received_ms INTEGER,
    local_ms    INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    UNIQUE (hash, direction)
);
CREATE INDEX history_time ON history (local_ms, id);
CREATE INDEX history_peer_time ON history (peer, local_ms, id);

CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient  TEXT    NOT NULL CHECK (length(recipient) = 66),
    data       BLOB    NOT NULL,
    body       TEXT    NOT NULL,
    ttl_ms     INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX outbox_expiry ON outbox (expires_ms);

CREATE TABLE cursors (
    key  TEXT NOT NULL UNIQUE,
    hash TEXT NOT NULL
);

CREATE TABLE node_list (
    id         INTEGER PRIMARY KEY CHECK (id = 0),
    json       TEXT    NOT NULL,
    fetched_ms INTEGER NOT NULL,
    source     TEXT    NOT NULL
);
";

/// Version 2: the outbox backs off.
///
/// - `outbox.next_attempt_ms`: when the next attempt to send is due (local
///   clock, Unix ms); items queued before this version are due at once.
const V2: &str = "
ALTER TABLE outbox ADD COLUMN next_attempt_ms INTEGER NOT NULL DEFAULT 0;
CREATE INDEX outbox_due ON outbox (next_attempt_ms, id);
";

/// Version 3: the account state the account's devices share
/// (`docs/account-sync.md`).
///
/// - `account_state`: this device's merged state per namespace, encoded
///   (`allium_common::account::AccountState`), and when a copy of it was
///   last stored in the swarm (null: never).
const V3: &str = "
CREATE TABLE account_state (
    namespace INTEGER PRIMARY KEY,
    state     BLOB    NOT NULL,
    stored_ms INTEGER
);
";

/// Version 4: contacts live in the shared state, and the outbox holds
/// control messages (`docs/account-sync.md`).
///
/// - The `contacts` table moves into the contacts' namespace (3) of
///   `account_state`: each contact becomes a nickname and an approval,
///   stamped now by device 0 (so any edit another device made since wins),
///   merged into whatever that namespace held; then the table is dropped.
/// - `outbox.control`: 1 for a message that is not a text in a
///   conversation (a copy of a sent message for this account's other
///   devices, an acceptance, a receipt); confirming it records no history.
const V4: &str = "
CREATE TEMP TABLE moved (key TEXT PRIMARY KEY, entry TEXT NOT NULL);
INSERT INTO moved (key, entry)
    SELECT key, value FROM account_state, json_each(CAST(state AS TEXT)) WHERE namespace = 3;
INSERT OR IGNORE INTO moved (key, entry)
    SELECT 'contact/' || lower(account_id) || '/' || field,
           json_object('stamp', json_object('at', CAST(unixepoch('subsec') * 1000 AS INTEGER),
                                            'device', '00000000000000000000000000000000'),
                       'value', CASE field WHEN 'nickname' THEN name ELSE json('true') END)
    FROM contacts, (SELECT 'nickname' AS field UNION ALL SELECT 'approved');
INSERT INTO account_state (namespace, state, stored_ms)
    SELECT 3, CAST(json_group_object(key, json(entry)) AS BLOB), NULL FROM moved HAVING count(*) > 0
    ON CONFLICT (namespace) DO UPDATE SET state = excluded.state, stored_ms = NULL;
DROP TABLE moved;
DROP TABLE contacts;
ALTER TABLE outbox ADD COLUMN control INTEGER NOT NULL DEFAULT 0 CHECK (control IN (0, 1));
";

/// Version 5: disappearing messages, receipts and unsend
/// (`docs/account-sync.md`).
///
/// - `history.expires_ms`: when the message disappears from the history
///   (network time, Unix ms); null: it stays.
/// - `history.receipt`: for a sent message, what the recipient confirmed:
///   0 nothing, 1 delivered, 2 read.
/// - `history.copy_hash`: for a sent message, the hash of its copy in this
///   account's own swarm (deleted with it by `unsend`).
/// - `outbox.disappear_ms`: a disappearing message's time, which its
///   history entry gets when the store is confirmed.
const V5: &str = "
ALTER TABLE history ADD COLUMN expires_ms INTEGER;
ALTER TABLE history ADD COLUMN receipt INTEGER NOT NULL DEFAULT 0 CHECK (receipt IN (0, 1, 2));
ALTER TABLE history ADD COLUMN copy_hash TEXT;
CREATE INDEX history_expiry ON history (expires_ms) WHERE expires_ms IS NOT NULL;
ALTER TABLE outbox ADD COLUMN disappear_ms INTEGER;
";

/// Version 6: this device's account keys for envelope v2
/// (`docs/envelope-v2.md`).
///
/// - `account_keys`: the X-Wing secret key (its 32-byte seed, from which
///   the public key follows) of each key this device holds, with the
///   window it was published for and when the next key is due. A row is
///   deleted when its retention ends (`secure_delete` is on, so the bytes
///   are overwritten).
const V6: &str = "
CREATE TABLE account_keys (
    key_id         BLOB    PRIMARY KEY CHECK (length(key_id) = 8),
    secret         BLOB    NOT NULL CHECK (length(secret) = 32),
    valid_from_ms  INTEGER NOT NULL,
    valid_until_ms INTEGER NOT NULL,
    rotate_at_ms   INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 7: sending with envelope v2 (`docs/envelope-v2.md`).
///
/// - `bundle_cache`: the newest verified key bundle of each account this
///   one wrote to, and when it was fetched (local clock).
/// - `history.envelope`, `outbox.envelope`: the envelope version a message
///   was sealed with (1: no forward secrecy; 2).
const V7: &str = "
CREATE TABLE bundle_cache (
    account    TEXT    PRIMARY KEY CHECK (length(account) = 66),
    bundle     BLOB    NOT NULL,
    fetched_ms INTEGER NOT NULL
) WITHOUT ROWID;
ALTER TABLE history ADD COLUMN envelope INTEGER NOT NULL DEFAULT 1 CHECK (envelope IN (1, 2));
ALTER TABLE outbox ADD COLUMN envelope INTEGER NOT NULL DEFAULT 1 CHECK (envelope IN (1, 2));
";

/// Version 8: this device and the account's other devices
/// (`docs/devices.md`).
///
/// - `device`: this device's own keys, one row: the seeds of its device key
///   (Ed25519) and of the X-Wing key that key shares are sealed to, both
///   random, with the name it gave itself.
/// - `devices`: the devices this one trusts (itself among them once it is
///   on the account's list): their public keys and name, which device
///   vouched for each (`NULL`: this device itself) and since when.
/// - `removed_devices`: devices taken off the account, never trusted again.
const V8: &str = "
CREATE TABLE device (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    sign_seed  BLOB    NOT NULL CHECK (length(sign_seed) = 32),
    xwing_seed BLOB    NOT NULL CHECK (length(xwing_seed) = 32),
    name       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE devices (
    sign_pk    BLOB    PRIMARY KEY CHECK (length(sign_pk) = 32),
    xwing_pk   BLOB    NOT NULL CHECK (length(xwing_pk) = 1216),
    name       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    vouched_by BLOB    CHECK (vouched_by IS NULL OR length(vouched_by) = 32),
    trusted_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE removed_devices (
    sign_pk    BLOB    PRIMARY KEY CHECK (length(sign_pk) = 32),
    removed_by BLOB    NOT NULL CHECK (length(removed_by) = 32),
    removed_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 9: private groups (`docs/groups.md`).
///
/// - `groups`: the groups this account is in (`joined` = 1) or invited to
///   by a stranger (0, until the inviter is accepted): the member's
///   sub-key seed and credential, the group seed if this account is an
///   admin, and the newest info and member list versions seen (a node
///   cannot roll them back).
/// - `group_keys`: the key of each generation this member could open.
/// - `group_members`: the newest member list.
/// - `group_history`: messages read from (or sent to) a group.
const V9: &str = "
CREATE TABLE groups (
    id              TEXT    PRIMARY KEY CHECK (length(id) = 66),
    name            TEXT    NOT NULL,
    description     TEXT,
    seed            BLOB    CHECK (seed IS NULL OR length(seed) = 32),
    member_seed     BLOB    NOT NULL CHECK (length(member_seed) = 32),
    credential      BLOB    NOT NULL,
    inviter         TEXT,
    joined          INTEGER NOT NULL CHECK (joined IN (0, 1)),
    created_ms      INTEGER NOT NULL,
    info_version    INTEGER NOT NULL DEFAULT 0,
    members_version INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE group_keys (
    group_id   TEXT    NOT NULL,
    generation INTEGER NOT NULL,
    key        BLOB    NOT NULL CHECK (length(key) = 32),
    PRIMARY KEY (group_id, generation)
) WITHOUT ROWID;
CREATE TABLE group_members (
    group_id TEXT    NOT NULL,
    account  TEXT    NOT NULL CHECK (length(account) = 66),
    admin    INTEGER NOT NULL CHECK (admin IN (0, 1)),
    PRIMARY KEY (group_id, account)
) WITHOUT ROWID;
CREATE TABLE group_history (
    id        INTEGER PRIMARY KEY,
    group_id  TEXT    NOT NULL,
    hash      TEXT    NOT NULL UNIQUE,
    sender    TEXT    NOT NULL CHECK (length(sender) = 66),
    sent_ms   INTEGER NOT NULL,
    local_ms  INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    body      TEXT    NOT NULL
);
CREATE INDEX group_history_time ON group_history (group_id, local_ms, id);
";

/// Version 10: files (`docs/files.md`).
///
/// - `files`: the files messages carried, by the message's hash (history or
///   group history) and place among its attachments: the manifest (with
///   the file's key), where the file was saved, and for a file this device
///   sent, the upload that stored it.
/// - `uploads`: a file being (or that was) stored: the upload key's seed
///   (to store and, on `unsend`, delete its chunks), and which chunks a
///   swarm confirmed, one bit each, so an interrupted upload resumes.
/// - `downloads`: a file being fetched: the file that holds its chunks as
///   fetched, and which it holds, so an interrupted download resumes.
const V10: &str = "
CREATE TABLE files (
    hash     TEXT    NOT NULL,
    idx      INTEGER NOT NULL CHECK (idx >= 0),
    manifest TEXT    NOT NULL,
    name     TEXT    NOT NULL,
    size     INTEGER NOT NULL CHECK (size >= 0),
    type     TEXT    NOT NULL,
    saved    TEXT,
    upload   INTEGER,
    PRIMARY KEY (hash, idx)
) WITHOUT ROWID;
CREATE TABLE uploads (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    path        TEXT    NOT NULL,
    size        INTEGER NOT NULL CHECK (size >= 0),
    modified_ms INTEGER NOT NULL,
    manifest    TEXT    NOT NULL,
    seed        BLOB    NOT NULL CHECK (length(seed) = 32),
    done        BLOB    NOT NULL,
    expires_ms  INTEGER NOT NULL,
    created_ms  INTEGER NOT NULL,
    sent        INTEGER NOT NULL DEFAULT 0 CHECK (sent IN (0, 1))
);
CREATE INDEX uploads_path ON uploads (path, size, modified_ms);
CREATE TABLE downloads (
    hash TEXT    NOT NULL,
    idx  INTEGER NOT NULL,
    part TEXT    NOT NULL,
    held BLOB    NOT NULL,
    PRIMARY KEY (hash, idx)
) WITHOUT ROWID;
";

/// The migrations, oldest first: entry `i` upgrades version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10];

/// The schema version this code writes.
pub fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Opens (creating if needed) the database at `path`: mode 0600, WAL,
/// busy timeout, foreign schema and newer versions refused, pending
/// migrations applied.
pub(crate) fn open(path: &Path) -> Result<Connection> {
    create_private_file(path)?;
    let open_err = |source| HomeError::Database {
        path: path.to_path_buf(),
        op: "opening the database",
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
        tracing::warn!(path = %path.display(), mode, "SQLite refused WAL mode; continuing without it");
    }
    conn.pragma_update(None, "synchronous", "NORMAL").map_err(open_err)?;
    conn.pragma_update(None, "foreign_keys", true).map_err(open_err)?;
    conn.pragma_update(None, "secure_delete", true).map_err(open_err)?;
    migrate(conn, path)
}

/// SQLite creates files with mode 0644 (less the umask). The database holds
/// private history, so it is created 0600 first; SQLite gives its `-wal`
/// and `-shm` files the mode of the database file. An existing file with
/// looser permissions is tightened.
fn create_private_file(path: &Path) -> Result<()> {
    let io_err = |source| HomeError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(io_err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(io_err)?.permissions().mode();
        if mode & 0o077 != 0 {
            file.set_permissions(fs::Permissions::from_mode(0o600))
                .map_err(io_err)?;
        }
    }
    drop(file);
    Ok(())
}

/// Reads `user_version` and `application_id`; refuses a newer schema or a
/// foreign database. Returns the version.
fn check_version(conn: &Connection, path: &Path) -> Result<i64> {
    let open_err = |source| HomeError::Database {
        path: path.to_path_buf(),
        op: "reading the schema version",
        source,
    };
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(open_err)?;
    let app: i64 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(open_err)?;
    if version > 0 && app != APPLICATION_ID {
        return Err(HomeError::NotAHomeDatabase {
            path: path.to_path_buf(),
            found: app,
        });
    }
    if version > current_version() {
        return Err(HomeError::SchemaTooNew {
            path: path.to_path_buf(),
            found: version,
            known: current_version(),
        });
    }
    if version == 0 {
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(open_err)?;
        if tables > 0 {
            return Err(HomeError::NotAHomeDatabase {
                path: path.to_path_buf(),
                found: app,
            });
        }
    }
    Ok(version)
}

/// Applies every pending migration in one transaction.
fn migrate(mut conn: Connection, path: &Path) -> Result<Connection> {
    let db_err = |source| HomeError::Database {
        path: path.to_path_buf(),
        op: "migrating the schema",
        source,
    };
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    // Re-read under the write lock: another process may have migrated.
    let from: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db_err)?;
    if from > current_version() {
        return Err(HomeError::SchemaTooNew {
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
        let mig_err = |source| HomeError::Migration {
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
        tracing::debug!(path = %path.display(), version, "client database schema migrated");
    }
    tx.commit().map_err(|source| HomeError::Migration {
        path: path.to_path_buf(),
        version: current_version(),
        source,
    })?;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_database_gets_the_current_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allium.db");
        let conn = open(&path).unwrap();
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, current_version());
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        drop(conn);
        // Reopening runs no migration and keeps the version.
        let conn = open(&path).unwrap();
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, current_version());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn a_version_1_outbox_item_is_due_at_once_after_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allium.db");
        {
            // A database as version 1 left it, with one queued message.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(V1).unwrap();
            conn.execute_batch(&format!(
                "PRAGMA user_version = 1; PRAGMA application_id = {APPLICATION_ID};"
            ))
            .unwrap();
            conn.execute(
                "INSERT INTO outbox (recipient, data, body, ttl_ms, created_ms, expires_ms, attempts)
                 VALUES (?1, x'00', 'old', 60000, 5, 60005, 3)",
                ["05".repeat(33)],
            )
            .unwrap();
        }
        let conn = open(&path).unwrap();
        let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, current_version(), "upgraded through every migration");
        let (attempts, next): (i64, i64) = conn
            .query_row("SELECT attempts, next_attempt_ms FROM outbox", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((attempts, next), (3, 0));
    }

    #[test]
    fn version_3_contacts_move_into_the_shared_state() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allium.db");
        let (bob, carol) = ("05".to_owned() + &"ab".repeat(32), "05".to_owned() + &"cd".repeat(32));
        {
            let conn = Connection::open(&path).unwrap();
            for sql in [V1, V2, V3] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(&format!(
                "PRAGMA user_version = 3; PRAGMA application_id = {APPLICATION_ID};"
            ))
            .unwrap();
            conn.execute("INSERT INTO contacts (name, account_id) VALUES ('Bob', ?1)", [&bob])
                .unwrap();
            conn.execute(
                "INSERT INTO contacts (name, account_id) VALUES ('carol \"c\"', ?1)",
                [&carol],
            )
            .unwrap();
            // Something another device synced before the upgrade stays.
            let earlier = format!(
                r#"{{"contact/{bob}/name":{{"stamp":{{"at":5,"device":"{}"}},"value":"Robert"}}}}"#,
                "11".repeat(16)
            );
            conn.execute(
                "INSERT INTO account_state (namespace, state, stored_ms) VALUES (3, ?1, 7)",
                [earlier.into_bytes()],
            )
            .unwrap();
        }
        let conn = open(&path).unwrap();
        let bytes: Vec<u8> = conn
            .query_row("SELECT state FROM account_state WHERE namespace = 3", [], |r| r.get(0))
            .unwrap();
        let state = allium_common::account::AccountState::decode(&bytes).unwrap();
        let get = |k: String| state.get(&k).cloned();
        assert_eq!(get(format!("contact/{bob}/nickname")), Some(serde_json::json!("Bob")));
        assert_eq!(get(format!("contact/{bob}/approved")), Some(serde_json::json!(true)));
        assert_eq!(get(format!("contact/{bob}/name")), Some(serde_json::json!("Robert")));
        assert_eq!(
            get(format!("contact/{carol}/nickname")),
            Some(serde_json::json!("carol \"c\"")),
            "quotes survive the JSON"
        );
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema WHERE name = 'contacts'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(tables, 0, "the table is gone");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("allium.db");
        let conn = open(&path).unwrap();
        conn.execute_batch(&format!("PRAGMA user_version = {};", current_version() + 1))
            .unwrap();
        drop(conn);
        let err = open(&path).unwrap_err();
        let (v, v_next) = (current_version(), current_version() + 1);
        assert!(
            matches!(err, HomeError::SchemaTooNew { found, known, .. } if found == v_next && known == v),
            "{err}"
        );
        assert!(err.to_string().contains("newer allium"), "{err}");
    }

    #[test]
    fn foreign_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x); PRAGMA user_version = 1;")
            .unwrap();
        assert!(matches!(open(&path), Err(HomeError::NotAHomeDatabase { .. })));
        let path = dir.path().join("unversioned.db");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x);")
            .unwrap();
        assert!(matches!(open(&path), Err(HomeError::NotAHomeDatabase { .. })));
    }
}
