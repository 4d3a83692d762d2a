//! [`Store`]: the synchronous message store, and the queries it shares with
//! the handle's writer thread and read-only connections.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use allium_common::MailboxId;
use allium_common::encoding::Base64Bytes;
use allium_common::files::{CHUNK_LEN, RECORD_LEN};
use allium_common::group::GroupId;
use allium_common::rpc::{MAX_DATA_LEN, MAX_RETRIEVE_COUNT, Namespace, StoredMessage, is_message_hash};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::error::{Result, StorageError};
use super::{HashPage, Inserted, LivePage, NewMessage, OwnerSig, Retrieved, Stats, StorageLimits, StoredRow, schema};

/// Most expired rows one sweep transaction deletes: a sweep never holds
/// the write lock for more than one such chunk at a time.
pub const SWEEP_CHUNK: usize = 1000;

/// Largest page [`Store::live_page`] returns (page sizes are clamped to
/// `1..=MAX_PAGE_SIZE`).
pub const MAX_PAGE_SIZE: usize = 1024;

/// The message store over one read-write SQLite connection.
///
/// Writes take `&mut self` and run in `IMMEDIATE` transactions; use
/// [`StorageHandle`](super::StorageHandle) from async code.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    limits: StorageLimits,
    path: PathBuf,
}

impl Store {
    /// Opens the store at `path`, creating the file and its directory if
    /// missing and migrating the schema to the current version. Refuses a
    /// database written by a newer version ([`StorageError::SchemaTooNew`]).
    pub fn open(path: impl AsRef<Path>, limits: StorageLimits) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let conn = schema::open_writer(&path)?;
        Ok(Self { conn, limits, path })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The caps this store enforces.
    pub fn limits(&self) -> StorageLimits {
        self.limits
    }

    /// Stores one message.
    ///
    /// Refuses a message whose expiry is not after `now_ms`, data larger than
    /// [`MAX_DATA_LEN`], a malformed hash, and a message that would take its
    /// mailbox or the store over a cap (after reclaiming expired messages).
    /// A live duplicate is stored once; its expiry moves to the later of the
    /// two ([`Inserted::Duplicate`]). A duplicate of an expired, not yet
    /// swept copy replaces it ([`Inserted::New`]: it is delivered again).
    pub fn insert(&mut self, msg: &NewMessage, now_ms: u64) -> Result<Inserted> {
        self.write("inserting a message", |tx, limits| insert(tx, limits, msg, now_ms))
    }

    /// Stores many messages in one transaction. Each message gets its own
    /// result (a full mailbox refuses that message only); the outer error is
    /// a database failure, after which nothing of the batch is stored.
    pub fn insert_batch(&mut self, msgs: &[NewMessage], now_ms: u64) -> Result<Vec<Result<Inserted>>> {
        self.write("inserting a batch", |tx, limits| {
            let mut results = Vec::with_capacity(msgs.len());
            for msg in msgs {
                match insert(tx, limits, msg, now_ms) {
                    Err(e) if e.is_fatal() => return Err(e),
                    r => results.push(r),
                }
            }
            Ok(results)
        })
    }

    /// Live messages of `(account, namespace)` after the one named
    /// `last_hash`, in insertion order. An unknown `last_hash` (never seen,
    /// swept, another mailbox's) starts from the beginning. At most
    /// `max_count` messages (clamped to `1..=MAX_RETRIEVE_COUNT`), and no
    /// more than `max_size_bytes` of data, except that the first message is
    /// always returned. `more` says whether live messages remain.
    pub fn retrieve(
        &self,
        account: &MailboxId,
        namespace: Namespace,
        last_hash: Option<&str>,
        max_count: usize,
        max_size_bytes: usize,
        now_ms: u64,
    ) -> Result<Retrieved> {
        retrieve(
            &self.conn,
            account,
            namespace,
            last_hash,
            max_count,
            max_size_bytes,
            now_ms,
        )
    }

    /// Deletes the messages named by `hashes` that belong to `account` (in
    /// any of its namespaces), keeping a tombstone of each until it would have expired
    /// (a copy that arrives again is refused). Returns the hashes deleted.
    pub fn delete(&mut self, account: &MailboxId, hashes: &[String]) -> Result<Vec<String>> {
        self.write("deleting messages", |tx, _| delete(tx, account, None, hashes, None))
    }

    /// Deletes every message of one mailbox whose timestamp is not after
    /// `up_to_ms` (the signing time of the owner's request, so the request
    /// played again later cannot touch newer messages), with tombstones as
    /// [`Store::delete`]. Returns the hashes deleted.
    pub fn delete_all(&mut self, account: &MailboxId, namespace: Namespace, up_to_ms: u64) -> Result<Vec<String>> {
        self.write("deleting a mailbox", |tx, _| {
            delete_all(tx, account, namespace, up_to_ms, None)
        })
    }

    /// Sets the expiry of the live messages named by `hashes` that belong to
    /// `account` to `new_expiry_ms` (earlier or later; the caller checks the
    /// TTL bounds), for each message only if `signed_at_ms` is later than
    /// the signing time of the `expire` that set its expiry last (so
    /// expires take effect in the order their owner signed them, whatever
    /// order they arrive in). Expired messages are not revived. Returns the
    /// hashes updated.
    pub fn expire(
        &mut self,
        account: &MailboxId,
        hashes: &[String],
        new_expiry_ms: u64,
        signed_at_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<String>> {
        self.write("changing expiries", |tx, _| {
            expire(tx, account, hashes, new_expiry_ms, signed_at_ms, now_ms)
        })
    }

    /// Deletes up to `limit` expired messages, [`SWEEP_CHUNK`] per
    /// transaction. Returns how many were deleted.
    pub fn sweep_expired(&mut self, now_ms: u64, limit: usize) -> Result<usize> {
        let mut total = 0;
        while total < limit {
            let chunk = (limit - total).min(SWEEP_CHUNK);
            let n = self.write("sweeping expired messages", |tx, _| sweep_chunk(tx, now_ms, chunk))?;
            total += n;
            if n < chunk {
                break;
            }
        }
        Ok(total)
    }

    /// One page of live messages with `seq > after_seq` that `filter`
    /// (account, hash) picks, oldest first. Start with `after_seq = 0` and go on
    /// with [`LivePage::next`] until it is `None`. `page_size` (clamped to
    /// `1..=MAX_PAGE_SIZE`) bounds the rows scanned, so a page may hold
    /// fewer rows, even none, and still have a next page.
    pub fn live_page(
        &self,
        after_seq: u64,
        now_ms: u64,
        page_size: usize,
        filter: impl Fn(&MailboxId, &str) -> bool,
    ) -> Result<LivePage> {
        live_page(&self.conn, after_seq, now_ms, page_size, &filter)
    }

    /// Calls `f` with every live message that `filter` (account, hash)
    /// picks (swarm hand-over), reading `page_size` rows at a time. Returns
    /// how many rows `f` saw.
    pub fn for_each_live(
        &self,
        now_ms: u64,
        page_size: usize,
        filter: impl Fn(&MailboxId, &str) -> bool,
        mut f: impl FnMut(StoredRow),
    ) -> Result<usize> {
        let mut seen = 0;
        let mut after = 0;
        loop {
            let page = live_page(&self.conn, after, now_ms, page_size, &filter)?;
            seen += page.rows.len();
            page.rows.into_iter().for_each(&mut f);
            match page.next {
                Some(next) => after = next,
                None => return Ok(seen),
            }
        }
    }

    /// Messages and data bytes in the whole store.
    pub fn stats(&self) -> Result<Stats> {
        stats(&self.conn)
    }

    /// Chunks and their bytes in namespace 16.
    pub fn file_stats(&self) -> Result<Stats> {
        file_stats(&self.conn)
    }

    /// Messages and data bytes in one mailbox.
    pub fn mailbox_stats(&self, account: &MailboxId, namespace: Namespace) -> Result<Stats> {
        mailbox_stats(&self.conn, account.key(), i64::from(namespace.0))
    }

    /// Copies the WAL into the database file and truncates the WAL.
    pub fn checkpoint(&self) -> Result<()> {
        let busy: i64 = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
            .map_err(StorageError::sql("checkpointing"))?;
        if busy != 0 {
            tracing::debug!(path = %self.path.display(), "checkpoint incomplete: readers active");
        }
        Ok(())
    }

    /// Checkpoints, lets SQLite refresh its statistics, and closes.
    pub fn close(self) -> Result<()> {
        self.checkpoint()?;
        self.conn
            .execute_batch("PRAGMA optimize;")
            .map_err(StorageError::sql("optimizing"))?;
        self.conn.close().map_err(|(_, e)| StorageError::sql("closing")(e))
    }

    /// The connection, for tests that need SQLite knobs (`max_page_count`).
    #[cfg(test)]
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in one `IMMEDIATE` transaction, committed if `f` succeeds.
    fn write<T>(&mut self, op: &'static str, f: impl FnOnce(&Connection, &StorageLimits) -> Result<T>) -> Result<T> {
        let (tx, limits) = self.begin(op)?;
        let out = f(&tx, limits)?;
        tx.commit().map_err(StorageError::sql(op))?;
        Ok(out)
    }

    /// Begins an `IMMEDIATE` transaction (for the writer thread's rounds).
    pub(crate) fn begin(&mut self, op: &'static str) -> Result<(Transaction<'_>, &StorageLimits)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StorageError::sql(op))?;
        Ok((tx, &self.limits))
    }
}

/// `u64` to SQLite's `i64`, or [`StorageError::OutOfRange`].
fn to_i64(field: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| StorageError::OutOfRange { field, value })
}

/// A stored `i64` that must not be negative.
fn to_u64(what: &str, value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| StorageError::Corrupt {
        what: format!("{what} is negative ({value})"),
    })
}

fn to_namespace(value: i64) -> Result<Namespace> {
    i16::try_from(value).map(Namespace).map_err(|_| StorageError::Corrupt {
        what: format!("namespace {value} is not an i16"),
    })
}

fn len_u64(len: usize) -> u64 {
    u64::try_from(len).unwrap_or(u64::MAX)
}

/// Stores one message inside the caller's transaction (see [`Store::insert`]).
pub(crate) fn insert(conn: &Connection, limits: &StorageLimits, msg: &NewMessage, now_ms: u64) -> Result<Inserted> {
    if msg.data.len() > MAX_DATA_LEN {
        return Err(StorageError::DataTooLarge {
            len: msg.data.len(),
            max: MAX_DATA_LEN,
        });
    }
    if !is_message_hash(&msg.hash) {
        return Err(StorageError::invalid_hash(&msg.hash));
    }
    if msg.expiry_ms <= now_ms {
        return Err(StorageError::Expired {
            hash: msg.hash.clone(),
            expiry_ms: msg.expiry_ms,
            now_ms,
        });
    }
    let expiry = to_i64("expiry_ms", msg.expiry_ms)?;
    let timestamp = to_i64("timestamp_ms", msg.timestamp_ms)?;
    // now_ms < expiry_ms <= i64::MAX here.
    let now = to_i64("now_ms", now_ms)?;
    if let Some(chunk) = msg.chunk
        && u64::from(chunk).saturating_mul(RECORD_LEN as u64) >= limits.max_file_bytes
    {
        return Err(StorageError::FileTooLarge {
            chunk,
            max_bytes: limits.max_file_bytes,
        });
    }
    if is_tombstoned(conn, &msg.hash, now)? {
        return Ok(Inserted::Deleted);
    }

    // Fast path: both caps have room, so try the insert at once; the
    // unique hash index tells us about a duplicate.
    let incoming = len_u64(msg.data.len());
    let account = msg.account.key();
    let namespace = i64::from(msg.namespace.0);
    let is_file = msg.namespace == Namespace::FILES;
    if mailbox_fits(
        limits,
        msg.namespace,
        &mailbox_stats(conn, account, namespace)?,
        incoming,
    ) && total_fits(limits, &stats(conn)?, incoming)
        && (!is_file || files_fit(limits, &file_stats(conn)?, incoming))
        && insert_row(conn, msg, timestamp, expiry)?
    {
        return Ok(Inserted::New);
    }

    // A duplicate, or a cap would refuse it.
    const OP: &str = "inserting a message";
    let existing = conn
        .prepare_cached("SELECT seq, account, namespace, expiry_ms, expiry_set_ms FROM messages WHERE hash = ?1")
        .and_then(|mut s| {
            s.query_row([&msg.hash], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, [u8; 32]>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()
        })
        .map_err(StorageError::sql(OP))?;
    if let Some((seq, stored_account, stored_ns, stored_expiry, expiry_set)) = existing {
        if stored_account != *account || stored_ns != namespace {
            return Err(StorageError::HashConflict { hash: msg.hash.clone() });
        }
        if stored_expiry > now {
            // A copy with a later expiry extends a message's life, unless
            // its owner set the expiry (a copy cannot undo an `expire`).
            if expiry > stored_expiry && expiry_set == 0 {
                conn.prepare_cached("UPDATE messages SET expiry_ms = ?1 WHERE seq = ?2")
                    .and_then(|mut s| s.execute(params![expiry, seq]))
                    .map_err(StorageError::sql(OP))?;
            }
            return Ok(Inserted::Duplicate);
        }
        // An expired copy the sweeper has not reached: store afresh.
        conn.prepare_cached("DELETE FROM messages WHERE seq = ?1")
            .and_then(|mut s| s.execute([seq]))
            .map_err(StorageError::sql(OP))?;
    }

    // The node's cap first: a message the node cannot take must not evict
    // anything on its way to being refused.
    check_total(conn, limits, msg, now)?;
    if is_file {
        check_files(conn, limits, msg, now)?;
    }
    check_mailbox(conn, limits, msg, now)?;
    if insert_row(conn, msg, timestamp, expiry)? {
        Ok(Inserted::New)
    } else {
        Ok(Inserted::Duplicate)
    }
}

/// Inserts the row unless its hash is already stored; says whether it did.
fn insert_row(conn: &Connection, msg: &NewMessage, timestamp: i64, expiry: i64) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT INTO messages \
             (hash, account, namespace, timestamp_ms, expiry_ms, data, owner_sig, credential, chunk) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (hash) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                msg.hash,
                msg.account.key().as_slice(),
                i64::from(msg.namespace.0),
                timestamp,
                expiry,
                msg.data,
                msg.owner_sig.map(|o| o.to_bytes().to_vec()),
                msg.credential,
                msg.chunk,
            ])
        })
        .map_err(StorageError::sql("inserting a message"))?;
    Ok(n > 0)
}

/// A mailbox's caps: `(messages, bytes)`. A chunk's mailbox holds its one
/// chunk, so an upload key cannot pile other data onto a chunk ID.
fn mailbox_caps(limits: &StorageLimits, namespace: Namespace) -> (u64, u64) {
    if namespace == Namespace::FILES {
        (1, CHUNK_LEN as u64)
    } else {
        (limits.max_mailbox_messages, limits.max_mailbox_bytes)
    }
}

fn mailbox_fits(limits: &StorageLimits, namespace: Namespace, usage: &Stats, incoming: u64) -> bool {
    let (max_messages, max_bytes) = mailbox_caps(limits, namespace);
    usage.messages.saturating_add(1) <= max_messages && usage.bytes.saturating_add(incoming) <= max_bytes
}

fn total_fits(limits: &StorageLimits, usage: &Stats, incoming: u64) -> bool {
    usage.bytes.saturating_add(incoming) <= limits.max_total_bytes
}

fn files_fit(limits: &StorageLimits, usage: &Stats, incoming: u64) -> bool {
    usage.bytes.saturating_add(incoming) <= limits.max_files_bytes
}

/// Messages evicted from full open mailboxes since the process started
/// (for the node's metrics).
static EVICTED: AtomicU64 = AtomicU64::new(0);

/// Messages evicted from full open mailboxes since the process started.
pub fn evicted() -> u64 {
    EVICTED.load(Ordering::Relaxed)
}

/// Makes room in the message's mailbox, or refuses it.
///
/// First the mailbox's expired messages go. Then, if it is still over a
/// cap:
/// - in namespace 0, the open inbox anyone may deposit into, the oldest
///   messages are evicted until the new one fits (each keeps a tombstone
///   until it would have expired, so a peer's copy does not come back and
///   push out another). A stranger who floods an inbox can push out old
///   messages, but never lock its owner out of new ones: a full inbox that
///   refused everything would stay locked for up to 14 days;
/// - in a signed namespace, only its owner writes: the owner's own store is
///   refused (`MailboxFull`), never its older data evicted.
fn check_mailbox(conn: &Connection, limits: &StorageLimits, msg: &NewMessage, now: i64) -> Result<()> {
    let account = msg.account.key();
    let namespace = i64::from(msg.namespace.0);
    let incoming = len_u64(msg.data.len());
    let fits = |s: &Stats| mailbox_fits(limits, msg.namespace, s, incoming);
    let mut usage = mailbox_stats(conn, account, namespace)?;
    if fits(&usage) {
        return Ok(());
    }
    let reclaimed = conn
        .prepare_cached(
            "DELETE FROM messages INDEXED BY messages_mailbox \
             WHERE account = ?1 AND namespace = ?2 AND expiry_ms <= ?3",
        )
        .and_then(|mut s| s.execute(params![account.as_slice(), namespace, now]))
        .map_err(StorageError::sql("reclaiming expired messages of a mailbox"))?;
    if reclaimed > 0 {
        usage = mailbox_stats(conn, account, namespace)?;
        if fits(&usage) {
            return Ok(());
        }
    }
    let (max_messages, max_bytes) = mailbox_caps(limits, msg.namespace);
    let needed = incoming <= max_bytes && max_messages > 0;
    if msg.namespace == Namespace::DEFAULT && needed {
        const OP: &str = "evicting the oldest message of a full inbox";
        let mut oldest = conn
            .prepare_cached(
                "DELETE FROM messages WHERE seq = (SELECT seq FROM messages INDEXED BY messages_mailbox \
                 WHERE account = ?1 AND namespace = ?2 ORDER BY seq LIMIT 1) RETURNING hash, expiry_ms",
            )
            .map_err(StorageError::sql(OP))?;
        while !fits(&usage) {
            let Some(gone) = oldest
                .query_row(params![account.as_slice(), namespace], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .optional()
                .map_err(StorageError::sql(OP))?
            else {
                break;
            };
            tombstone(conn, std::slice::from_ref(&gone))?;
            EVICTED.fetch_add(1, Ordering::Relaxed);
            usage = mailbox_stats(conn, account, namespace)?;
        }
        if fits(&usage) {
            return Ok(());
        }
    }
    Err(StorageError::MailboxFull {
        account: msg.account,
        namespace: msg.namespace.0,
        messages: usage.messages,
        bytes: usage.bytes,
        max_messages,
        max_bytes,
        incoming: msg.data.len(),
    })
}

/// Refuses the message if the store would exceed its byte cap, after
/// sweeping one chunk of expired messages.
fn check_total(conn: &Connection, limits: &StorageLimits, msg: &NewMessage, now: i64) -> Result<()> {
    let incoming = len_u64(msg.data.len());
    let fits = |s: &Stats| total_fits(limits, s, incoming);
    let mut usage = stats(conn)?;
    if fits(&usage) {
        return Ok(());
    }
    if sweep_chunk_i64(conn, now, SWEEP_CHUNK)? > 0 {
        usage = stats(conn)?;
        if fits(&usage) {
            return Ok(());
        }
    }
    Err(StorageError::StoreFull {
        bytes: usage.bytes,
        max_bytes: limits.max_total_bytes,
        incoming: msg.data.len(),
    })
}

/// Refuses a chunk if namespace 16 would exceed the files quota, after
/// sweeping one chunk of expired messages.
fn check_files(conn: &Connection, limits: &StorageLimits, msg: &NewMessage, now: i64) -> Result<()> {
    let incoming = len_u64(msg.data.len());
    let mut usage = file_stats(conn)?;
    if files_fit(limits, &usage, incoming) {
        return Ok(());
    }
    if sweep_chunk_i64(conn, now, SWEEP_CHUNK)? > 0 {
        usage = file_stats(conn)?;
        if files_fit(limits, &usage, incoming) {
            return Ok(());
        }
    }
    Err(StorageError::FilesFull {
        bytes: usage.bytes,
        max_bytes: limits.max_files_bytes,
        incoming: msg.data.len(),
    })
}

/// See [`Store::retrieve`]. Runs in one read transaction.
pub(crate) fn retrieve(
    conn: &Connection,
    account: &MailboxId,
    namespace: Namespace,
    last_hash: Option<&str>,
    max_count: usize,
    max_size_bytes: usize,
    now_ms: u64,
) -> Result<Retrieved> {
    const OP: &str = "retrieving messages";
    let count = max_count.clamp(1, MAX_RETRIEVE_COUNT);
    // Every stored expiry is <= i64::MAX, so a later `now` expires them all.
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let acct = account.key().as_slice();
    let ns = i64::from(namespace.0);
    let tx = conn.unchecked_transaction().map_err(StorageError::sql(OP))?;
    let after: i64 = match last_hash {
        Some(hash) => tx
            .prepare_cached("SELECT seq FROM messages WHERE hash = ?1 AND account = ?2 AND namespace = ?3")
            .and_then(|mut s| s.query_row(params![hash, acct, ns], |r| r.get(0)).optional())
            .map_err(StorageError::sql(OP))?
            .unwrap_or(0),
        None => 0,
    };
    let mut out = Retrieved::default();
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT hash, timestamp_ms, expiry_ms, data FROM messages INDEXED BY messages_mailbox \
                 WHERE account = ?1 AND namespace = ?2 AND seq > ?3 AND expiry_ms > ?4 \
                 ORDER BY seq LIMIT ?5",
            )
            .map_err(StorageError::sql(OP))?;
        let limit = i64::try_from(count + 1).unwrap_or(i64::MAX);
        let mut rows = stmt
            .query(params![acct, ns, after, now, limit])
            .map_err(StorageError::sql(OP))?;
        let mut size: usize = 0;
        while let Some(row) = rows.next().map_err(StorageError::sql(OP))? {
            if out.messages.len() >= count {
                out.more = true;
                break;
            }
            let data: Vec<u8> = row.get(3).map_err(StorageError::sql(OP))?;
            let next_size = size.saturating_add(data.len());
            if !out.messages.is_empty() && next_size > max_size_bytes {
                out.more = true;
                break;
            }
            size = next_size;
            out.messages.push(StoredMessage {
                hash: row.get(0).map_err(StorageError::sql(OP))?,
                timestamp: to_u64("timestamp_ms", row.get(1).map_err(StorageError::sql(OP))?)?,
                expiration: to_u64("expiry_ms", row.get(2).map_err(StorageError::sql(OP))?)?,
                data: Base64Bytes(data),
            });
        }
    }
    tx.finish().map_err(StorageError::sql(OP))?;
    Ok(out)
}

/// Whether the owner deleted a message with this hash that has not expired.
fn is_tombstoned(conn: &Connection, hash: &str, now: i64) -> Result<bool> {
    conn.prepare_cached("SELECT 1 FROM deleted WHERE hash = ?1 AND expiry_ms > ?2")
        .and_then(|mut s| s.exists(params![hash, now]))
        .map_err(StorageError::sql("checking tombstones"))
}

/// Remembers deleted messages until they would have expired, with the
/// owner's request that deleted them (`proof`; none for an eviction).
fn tombstone(conn: &Connection, deleted: &[(String, i64)]) -> Result<()> {
    tombstone_with(conn, deleted, None)
}

fn tombstone_with(conn: &Connection, deleted: &[(String, i64)], proof: Option<&str>) -> Result<()> {
    const OP: &str = "writing tombstones";
    let deletion: Option<i64> = match (proof, deleted.iter().map(|(_, e)| *e).max()) {
        (Some(request), Some(expiry)) => {
            conn.prepare_cached("INSERT INTO deletions (request, expiry_ms) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![request, expiry]))
                .map_err(StorageError::sql(OP))?;
            Some(conn.last_insert_rowid())
        }
        _ => None,
    };
    let mut stmt = conn
        .prepare_cached("INSERT OR REPLACE INTO deleted (hash, expiry_ms, deletion) VALUES (?1, ?2, ?3)")
        .map_err(StorageError::sql(OP))?;
    for (hash, expiry) in deleted {
        stmt.execute(params![hash, expiry, deletion])
            .map_err(StorageError::sql(OP))?;
    }
    Ok(())
}

/// The owner's request that deleted `hash` (if the node has one and the
/// tombstone is still kept).
pub(crate) fn deletion_proof(conn: &Connection, hash: &str) -> Result<Option<String>> {
    conn.prepare_cached(
        "SELECT deletions.request FROM deleted JOIN deletions ON deletions.id = deleted.deletion \
         WHERE deleted.hash = ?1",
    )
    .and_then(|mut s| s.query_row([hash], |r| r.get(0)).optional())
    .map_err(StorageError::sql("reading a deletion proof"))
}

/// See [`Store::delete`].
pub(crate) fn delete(
    conn: &Connection,
    account: &MailboxId,
    only: Option<Namespace>,
    hashes: &[String],
    proof: Option<&str>,
) -> Result<Vec<String>> {
    const OP: &str = "deleting messages";
    let mut stmt = conn
        .prepare_cached(
            "DELETE FROM messages WHERE hash = ?1 AND account = ?2 \
             AND ((namespace BETWEEN 11 AND 15) = ?3) AND (?4 IS NULL OR namespace = ?4) RETURNING expiry_ms",
        )
        .map_err(StorageError::sql(OP))?;
    let is_group = account.group().is_some();
    let only = only.map(|n| i64::from(n.0));
    let mut deleted = Vec::new();
    for hash in hashes {
        let expiry: Option<i64> = stmt
            .query_row(params![hash, account.key().as_slice(), is_group, only], |r| r.get(0))
            .optional()
            .map_err(StorageError::sql(OP))?;
        if let Some(expiry) = expiry {
            deleted.push((hash.clone(), expiry));
        }
    }
    tombstone_with(conn, &deleted, proof)?;
    Ok(deleted.into_iter().map(|(hash, _)| hash).collect())
}

/// See [`StorageHandle::is_revoked`]. A revocation's sub-key is at bytes
/// 34..66 (`0x02 ‖ group_id (33) ‖ member_pk (32) ‖ …`); the node stored it
/// only after checking the group key's signature.
pub(crate) fn is_revoked(conn: &Connection, group: &GroupId, member_pk: &[u8; 32], now_ms: u64) -> Result<bool> {
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "SELECT 1 FROM messages INDEXED BY messages_mailbox \
         WHERE account = ?1 AND namespace = ?2 AND expiry_ms > ?3 AND substr(data, 35, 32) = ?4",
    )
    .and_then(|mut s| {
        s.exists(params![
            group.ed25519().as_slice(),
            i64::from(Namespace::GROUP_REVOKED.0),
            now,
            member_pk.as_slice()
        ])
    })
    .map_err(StorageError::sql("checking revocations"))
}

/// See [`Store::delete_all`].
pub(crate) fn delete_all(
    conn: &Connection,
    account: &MailboxId,
    namespace: Namespace,
    up_to_ms: u64,
    proof: Option<&str>,
) -> Result<Vec<String>> {
    const OP: &str = "deleting a mailbox";
    let up_to = i64::try_from(up_to_ms).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "DELETE FROM messages WHERE account = ?1 AND namespace = ?2 AND timestamp_ms <= ?3 \
             RETURNING hash, expiry_ms",
        )
        .map_err(StorageError::sql(OP))?;
    let deleted = stmt
        .query_map(params![account.key().as_slice(), i64::from(namespace.0), up_to], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<(String, i64)>>>())
        .map_err(StorageError::sql(OP))?;
    tombstone_with(conn, &deleted, proof)?;
    Ok(deleted.into_iter().map(|(hash, _)| hash).collect())
}

/// See [`Store::expire`].
pub(crate) fn expire(
    conn: &Connection,
    account: &MailboxId,
    hashes: &[String],
    new_expiry_ms: u64,
    signed_at_ms: u64,
    now_ms: u64,
) -> Result<Vec<String>> {
    const OP: &str = "changing expiries";
    let expiry = to_i64("new_expiry_ms", new_expiry_ms)?;
    let signed_at = to_i64("signed_at_ms", signed_at_ms)?;
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "UPDATE messages SET expiry_ms = ?1, expiry_set_ms = ?2 \
             WHERE hash = ?3 AND account = ?4 AND expiry_ms > ?5 AND expiry_set_ms < ?2 \
             AND ((namespace BETWEEN 11 AND 15) = ?6)",
        )
        .map_err(StorageError::sql(OP))?;
    let mut updated = Vec::new();
    for hash in hashes {
        let n = stmt
            .execute(params![
                expiry,
                signed_at,
                hash,
                account.key().as_slice(),
                now,
                account.group().is_some()
            ])
            .map_err(StorageError::sql(OP))?;
        if n > 0 {
            updated.push(hash.clone());
        }
    }
    Ok(updated)
}

/// Deletes up to `limit` expired messages in the caller's transaction.
pub(crate) fn sweep_chunk(conn: &Connection, now_ms: u64, limit: usize) -> Result<usize> {
    sweep_chunk_i64(conn, i64::try_from(now_ms).unwrap_or(i64::MAX), limit)
}

fn sweep_chunk_i64(conn: &Connection, now: i64, limit: usize) -> Result<usize> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Tombstones of messages that would have expired by now are no longer
    // needed: an expired copy is refused anyway.
    conn.prepare_cached(
        "DELETE FROM deleted WHERE hash IN (\
         SELECT hash FROM deleted INDEXED BY deleted_expiry WHERE expiry_ms <= ?1 LIMIT ?2)",
    )
    .and_then(|mut s| s.execute(params![now, limit]))
    .map_err(StorageError::sql("sweeping tombstones"))?;
    // A deletion's proof lives as long as its longest tombstone.
    conn.prepare_cached(
        "DELETE FROM deletions WHERE id IN (\
         SELECT id FROM deletions INDEXED BY deletions_expiry WHERE expiry_ms <= ?1 LIMIT ?2)",
    )
    .and_then(|mut s| s.execute(params![now, limit]))
    .map_err(StorageError::sql("sweeping deletion proofs"))?;
    conn.prepare_cached(
        "DELETE FROM messages WHERE seq IN (\
         SELECT seq FROM messages INDEXED BY messages_expiry WHERE expiry_ms <= ?1 LIMIT ?2)",
    )
    .and_then(|mut s| s.execute(params![now, limit]))
    .map_err(StorageError::sql("sweeping expired messages"))
}

/// See [`StorageHandle::live_hashes`]: account and hash of up to
/// `page_size` live messages after `after_seq`, and where to go on.
pub(crate) fn live_hashes(conn: &Connection, after_seq: u64, now_ms: u64, page_size: usize) -> Result<HashPage> {
    const OP: &str = "reading live hashes";
    let Ok(after) = i64::try_from(after_seq) else {
        return Ok(HashPage::default());
    };
    let size = page_size.clamp(1, MAX_PAGE_SIZE);
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, account, hash, namespace FROM messages NOT INDEXED \
             WHERE seq > ?1 AND expiry_ms > ?2 ORDER BY seq LIMIT ?3",
        )
        .map_err(StorageError::sql(OP))?;
    let mut rows = stmt
        .query(params![after, now, i64::try_from(size).unwrap_or(i64::MAX)])
        .map_err(StorageError::sql(OP))?;
    let (mut out, mut last, mut scanned) = (Vec::new(), after, 0);
    while let Some(row) = rows.next().map_err(StorageError::sql(OP))? {
        scanned += 1;
        last = row.get(0).map_err(StorageError::sql(OP))?;
        out.push((
            MailboxId::from_stored(
                row.get(1).map_err(StorageError::sql(OP))?,
                to_namespace(row.get(3).map_err(StorageError::sql(OP))?)?,
            ),
            row.get(2).map_err(StorageError::sql(OP))?,
        ));
    }
    let next = (scanned == size).then(|| to_u64("seq", last)).transpose()?;
    Ok(HashPage { rows: out, next })
}

/// See [`StorageHandle::hashes_with_prefix`].
pub(crate) fn hashes_with_prefix(
    conn: &Connection,
    prefix: &str,
    now_ms: u64,
    limit: usize,
) -> Result<Vec<(MailboxId, String)>> {
    const OP: &str = "reading a digest bucket";
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    // Base64 digits are all below '~', so this range is exactly the
    // prefix, read through the hash index.
    let end = format!("{prefix}~");
    let mut stmt = conn
        .prepare_cached(
            "SELECT account, hash, namespace FROM messages WHERE hash >= ?1 AND hash < ?2 AND expiry_ms > ?3 LIMIT ?4",
        )
        .map_err(StorageError::sql(OP))?;
    let mut rows = stmt
        .query(params![prefix, end, now, i64::try_from(limit).unwrap_or(i64::MAX)])
        .map_err(StorageError::sql(OP))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(StorageError::sql(OP))? {
        out.push((
            MailboxId::from_stored(
                row.get(0).map_err(StorageError::sql(OP))?,
                to_namespace(row.get(2).map_err(StorageError::sql(OP))?)?,
            ),
            row.get(1).map_err(StorageError::sql(OP))?,
        ));
    }
    Ok(out)
}

/// See [`StorageHandle::messages_with_hashes`].
pub(crate) fn messages_with_hashes(conn: &Connection, hashes: &[String], now_ms: u64) -> Result<Vec<NewMessage>> {
    const OP: &str = "reading messages by hash";
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT account, namespace, hash, timestamp_ms, expiry_ms, data, owner_sig, credential, chunk \
             FROM messages WHERE hash = ?1 AND expiry_ms > ?2",
        )
        .map_err(StorageError::sql(OP))?;
    let mut out = Vec::with_capacity(hashes.len());
    for hash in hashes {
        let mut rows = stmt.query(params![hash, now]).map_err(StorageError::sql(OP))?;
        let Some(row) = rows.next().map_err(StorageError::sql(OP))? else {
            continue;
        };
        let owner_sig: Option<Vec<u8>> = row.get(6).map_err(StorageError::sql(OP))?;
        let namespace = to_namespace(row.get(1).map_err(StorageError::sql(OP))?)?;
        out.push(NewMessage {
            account: MailboxId::from_stored(row.get(0).map_err(StorageError::sql(OP))?, namespace),
            namespace,
            hash: row.get(2).map_err(StorageError::sql(OP))?,
            timestamp_ms: to_u64("timestamp_ms", row.get(3).map_err(StorageError::sql(OP))?)?,
            expiry_ms: to_u64("expiry_ms", row.get(4).map_err(StorageError::sql(OP))?)?,
            data: row.get(5).map_err(StorageError::sql(OP))?,
            owner_sig: owner_sig.as_deref().and_then(OwnerSig::from_bytes),
            credential: row.get(7).map_err(StorageError::sql(OP))?,
            chunk: row.get(8).map_err(StorageError::sql(OP))?,
        });
    }
    Ok(out)
}

/// See [`Store::live_page`]. Reads the metadata of a page first and the
/// data only of rows that pass the filter, in one read transaction.
pub(crate) fn live_page(
    conn: &Connection,
    after_seq: u64,
    now_ms: u64,
    page_size: usize,
    filter: &dyn Fn(&MailboxId, &str) -> bool,
) -> Result<LivePage> {
    const OP: &str = "reading live messages";
    let Ok(after) = i64::try_from(after_seq) else {
        return Ok(LivePage::default());
    };
    let size = page_size.clamp(1, MAX_PAGE_SIZE);
    let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
    let tx = conn.unchecked_transaction().map_err(StorageError::sql(OP))?;
    let mut scanned = 0;
    let mut last = after;
    let mut picked = Vec::new();
    {
        let mut stmt = tx
            .prepare_cached(
                "SELECT seq, account, namespace, hash, timestamp_ms, expiry_ms \
                 FROM messages NOT INDEXED WHERE seq > ?1 AND expiry_ms > ?2 ORDER BY seq LIMIT ?3",
            )
            .map_err(StorageError::sql(OP))?;
        let limit = i64::try_from(size).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![after, now, limit]).map_err(StorageError::sql(OP))?;
        while let Some(row) = rows.next().map_err(StorageError::sql(OP))? {
            scanned += 1;
            let seq: i64 = row.get(0).map_err(StorageError::sql(OP))?;
            last = seq;
            let namespace = to_namespace(row.get(2).map_err(StorageError::sql(OP))?)?;
            let account = MailboxId::from_stored(row.get(1).map_err(StorageError::sql(OP))?, namespace);
            let hash: String = row.get(3).map_err(StorageError::sql(OP))?;
            if !filter(&account, &hash) {
                continue;
            }
            picked.push((
                seq,
                account,
                namespace,
                hash,
                to_u64("timestamp_ms", row.get(4).map_err(StorageError::sql(OP))?)?,
                to_u64("expiry_ms", row.get(5).map_err(StorageError::sql(OP))?)?,
            ));
        }
    }
    let mut page = LivePage {
        rows: Vec::with_capacity(picked.len()),
        next: None,
    };
    {
        let mut data_stmt = tx
            .prepare_cached("SELECT data, owner_sig, credential, chunk FROM messages WHERE seq = ?1")
            .map_err(StorageError::sql(OP))?;
        for (seq, account, namespace, hash, timestamp_ms, expiry_ms) in picked {
            let Some((data, owner_sig, credential, chunk)) = data_stmt
                .query_row([seq], |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, Option<Vec<u8>>>(1)?,
                        r.get::<_, Option<Vec<u8>>>(2)?,
                        r.get::<_, Option<u32>>(3)?,
                    ))
                })
                .optional()
                .map_err(StorageError::sql(OP))?
            else {
                continue;
            };
            page.rows.push(StoredRow {
                seq: to_u64("seq", seq)?,
                message: NewMessage {
                    account,
                    namespace,
                    hash,
                    timestamp_ms,
                    expiry_ms,
                    data,
                    owner_sig: owner_sig.as_deref().and_then(OwnerSig::from_bytes),
                    credential,
                    chunk,
                },
            });
        }
    }
    if scanned == size {
        page.next = Some(to_u64("seq", last)?);
    }
    tx.finish().map_err(StorageError::sql(OP))?;
    Ok(page)
}

/// Messages and data bytes in the whole store.
pub(crate) fn stats(conn: &Connection) -> Result<Stats> {
    let (messages, bytes) = conn
        .prepare_cached("SELECT messages, bytes FROM totals WHERE id = 0")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))))
        .map_err(StorageError::sql("reading store totals"))?;
    Ok(Stats {
        messages: to_u64("total messages", messages)?,
        bytes: to_u64("total bytes", bytes)?,
    })
}

/// Chunks and their bytes in namespace 16.
pub(crate) fn file_stats(conn: &Connection) -> Result<Stats> {
    let (messages, bytes) = conn
        .prepare_cached("SELECT messages, bytes FROM file_totals WHERE id = 0")
        .and_then(|mut s| s.query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))))
        .map_err(StorageError::sql("reading file totals"))?;
    Ok(Stats {
        messages: to_u64("file chunks", messages)?,
        bytes: to_u64("file bytes", bytes)?,
    })
}

/// Messages and data bytes in one mailbox.
pub(crate) fn mailbox_stats(conn: &Connection, account: &[u8; 32], namespace: i64) -> Result<Stats> {
    let row = conn
        .prepare_cached("SELECT messages, bytes FROM mailboxes WHERE account = ?1 AND namespace = ?2")
        .and_then(|mut s| {
            s.query_row(params![account.as_slice(), namespace], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .optional()
        })
        .map_err(StorageError::sql("reading mailbox totals"))?;
    match row {
        Some((messages, bytes)) => Ok(Stats {
            messages: to_u64("mailbox messages", messages)?,
            bytes: to_u64("mailbox bytes", bytes)?,
        }),
        None => Ok(Stats::default()),
    }
}
