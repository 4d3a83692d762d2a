//! [`StorageHandle`]: the async face of the store.
//!
//! One dedicated writer thread owns the read-write connection. Writes reach
//! it as jobs over a bounded queue; each round it takes every job already
//! queued (up to [`HandleConfig::max_round`]), runs them all in ONE
//! transaction, commits, and only then answers each job through its own
//! oneshot (group commit: one commit, and one WAL append, for many stores).
//! If the round's transaction fails as a whole (disk full, I/O error), it is
//! rolled back and the jobs are run again one transaction each, so one bad
//! job cannot fail its neighbours.
//!
//! Enqueueing never waits: a full queue is [`StorageError::QueueFull`] at
//! once, which the node answers with 503 (another swarm member can take the
//! store). Waiting would only move the queue into memory elsewhere. The
//! queue is bounded twice: in jobs ([`HandleConfig::queue_capacity`]) and
//! in the bytes those jobs carry ([`HandleConfig::max_queued_bytes`]), so
//! a queue of big batches cannot take gigabytes of memory.
//!
//! Reads run on a small pool of read-only connections (WAL lets them read
//! while the writer writes) inside `tokio::task::spawn_blocking`, at most
//! [`HandleConfig::readers`] at a time; further readers wait their turn
//! asynchronously. The handle needs a Tokio runtime for reads.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use allium_common::MailboxId;
use allium_common::group::GroupId;
use allium_common::rpc::Namespace;
use rusqlite::Connection;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError, broadcast, mpsc, oneshot};

use super::error::{Result, StorageError};
use super::store::{self, SWEEP_CHUNK, Store};
use super::{HashPage, Inserted, LivePage, Mailbox, NewMessage, Retrieved, Stats, StorageLimits, schema};

/// Sizes of the handle's queues and pools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleConfig {
    /// Write jobs that may wait for the writer (clamped to `1..=1<<20`).
    pub queue_capacity: usize,
    /// Most messages (or other jobs) committed in one transaction.
    pub max_round: usize,
    /// Most messages in one [`StorageHandle::insert_batch`] call.
    pub max_batch: usize,
    /// Most bytes (message data plus a small allowance per item) that
    /// queued jobs may hold; past it enqueueing fails with
    /// [`StorageError::QueueFull`].
    pub max_queued_bytes: usize,
    /// Read-only connections (and concurrent blocking reads).
    pub readers: usize,
    /// Capacity of the new-message notification channel; a subscriber that
    /// falls further behind gets `RecvError::Lagged`.
    pub notify_capacity: usize,
}

impl Default for HandleConfig {
    fn default() -> Self {
        Self {
            queue_capacity: 1024,
            max_round: 1024,
            max_batch: 1024,
            max_queued_bytes: 256 * 1024 * 1024,
            readers: 4,
            notify_capacity: 1024,
        }
    }
}

impl HandleConfig {
    /// The config with every size in its allowed range (channels panic on 0).
    fn clamped(self) -> Self {
        const MAX: usize = 1 << 20;
        Self {
            queue_capacity: self.queue_capacity.clamp(1, MAX),
            max_round: self.max_round.clamp(1, MAX),
            max_batch: self.max_batch.clamp(1, MAX),
            max_queued_bytes: self.max_queued_bytes.clamp(1, u32::MAX as usize),
            readers: self.readers.clamp(1, 64),
            notify_capacity: self.notify_capacity.clamp(1, MAX),
        }
    }
}

/// A write for the writer thread.
#[derive(Debug)]
enum Op {
    Insert {
        msg: NewMessage,
        now_ms: u64,
    },
    InsertBatch {
        msgs: Vec<NewMessage>,
        now_ms: u64,
    },
    Delete {
        account: MailboxId,
        only: Option<Namespace>,
        hashes: Vec<String>,
        proof: Option<String>,
    },
    DeleteAll {
        account: MailboxId,
        namespace: Namespace,
        up_to_ms: u64,
        proof: Option<String>,
    },
    Expire {
        account: MailboxId,
        hashes: Vec<String>,
        new_expiry_ms: u64,
        signed_at_ms: u64,
        now_ms: u64,
    },
    Sweep {
        now_ms: u64,
        limit: usize,
    },
}

/// What a write produced.
#[derive(Debug)]
enum Outcome {
    Inserted(Inserted),
    Batch(Vec<Result<Inserted>>),
    Hashes(Vec<String>),
    Count(usize),
}

type Reply = oneshot::Sender<Result<Outcome>>;

#[derive(Debug)]
struct Job {
    op: Op,
    reply: Reply,
    /// This job's share of the queued-bytes budget, given back when the
    /// job is dropped (answered, or refused by a full queue).
    _budget: OwnedSemaphorePermit,
}

impl Op {
    /// Messages (or 1) this job adds to a round.
    fn weight(&self) -> usize {
        match self {
            Self::InsertBatch { msgs, .. } => msgs.len().max(1),
            _ => 1,
        }
    }

    /// Bytes this job holds while queued.
    fn bytes(&self) -> usize {
        const PER_ITEM: usize = 128;
        match self {
            Self::Insert { msg, .. } => msg.data.len() + PER_ITEM,
            Self::InsertBatch { msgs, .. } => msgs.iter().map(|m| m.data.len() + PER_ITEM).sum::<usize>() + PER_ITEM,
            Self::Delete { hashes, proof, .. } => {
                hashes.iter().map(|h| h.len() + PER_ITEM).sum::<usize>()
                    + proof.as_ref().map_or(0, String::len)
                    + PER_ITEM
            }
            Self::Expire { hashes, .. } => hashes.iter().map(|h| h.len() + PER_ITEM).sum::<usize>() + PER_ITEM,
            Self::DeleteAll { proof, .. } => proof.as_ref().map_or(0, String::len) + PER_ITEM,
            Self::Sweep { .. } => PER_ITEM,
        }
    }
}

#[derive(Debug)]
enum Msg {
    // Boxed: a job is large, and the queue holds many.
    Job(Box<Job>),
    Close(oneshot::Sender<()>),
}

/// A handle to the message store, cheap to clone and share between tasks.
///
/// Dropping the last clone lets the writer finish every queued write,
/// checkpoint and close the database in the background;
/// [`close`](Self::close) does the same and waits for it.
#[derive(Clone)]
pub struct StorageHandle {
    inner: Arc<Inner>,
}

struct Inner {
    tx: mpsc::Sender<Msg>,
    /// Set while inserts fail for lack of space, cleared by the next one
    /// that succeeds.
    full: Arc<AtomicBool>,
    budget: Arc<Semaphore>,
    readers: Arc<Readers>,
    notify: broadcast::Sender<Mailbox>,
    config: HandleConfig,
    path: PathBuf,
}

impl fmt::Debug for StorageHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageHandle")
            .field("path", &self.inner.path)
            .field("config", &self.inner.config)
            .field(
                "queued",
                &self
                    .inner
                    .config
                    .queue_capacity
                    .saturating_sub(self.inner.tx.capacity()),
            )
            .finish()
    }
}

/// An insert that has been queued; [`wait`](Self::wait) for its result.
#[derive(Debug)]
#[must_use = "the result says whether the message was stored"]
pub struct PendingInsert {
    rx: oneshot::Receiver<Result<Outcome>>,
}

impl PendingInsert {
    /// Waits until the writer has committed (or refused) the message.
    pub async fn wait(self) -> Result<Inserted> {
        match reply(self.rx).await? {
            Outcome::Inserted(i) => Ok(i),
            other => Err(unexpected(&other)),
        }
    }
}

impl StorageHandle {
    /// Opens the store (see [`Store::open`]), its read-only connections and
    /// its writer thread. Blocking: call it at start-up or from
    /// `spawn_blocking`.
    pub fn open(path: impl AsRef<Path>, limits: StorageLimits, config: HandleConfig) -> Result<Self> {
        let config = config.clamped();
        let path = path.as_ref().to_path_buf();
        let store = Store::open(&path, limits)?;
        let conns = (0..config.readers)
            .map(|_| schema::open_reader(&path))
            .collect::<Result<Vec<_>>>()?;
        let readers = Arc::new(Readers {
            conns: Mutex::new(conns),
            permits: Arc::new(Semaphore::new(config.readers)),
            path: path.clone(),
        });
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let budget = Arc::new(Semaphore::new(config.max_queued_bytes));
        let (notify, _) = broadcast::channel(config.notify_capacity);
        let writer_notify = notify.clone();
        let full = Arc::new(AtomicBool::new(false));
        let writer_full = Arc::clone(&full);
        std::thread::Builder::new()
            .name("allium-store-writer".into())
            .spawn(move || run_writer(store, rx, config.max_round, &writer_notify, &writer_full))
            .map_err(|e| StorageError::Worker {
                what: format!("cannot start the writer thread: {e}"),
            })?;
        tracing::info!(path = %path.display(), "message store open");
        Ok(Self {
            inner: Arc::new(Inner {
                tx,
                full,
                budget,
                readers,
                notify,
                config,
                path,
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether the last inserts failed for lack of space (the disk, or the
    /// store's byte cap); the next insert that succeeds clears it. Stores
    /// are attempted all along, so a node takes them again as soon as
    /// space returns.
    pub fn is_full(&self) -> bool {
        self.inner.full.load(Ordering::Relaxed)
    }

    /// Stores one message (see [`Store::insert`]) and waits for the commit.
    pub async fn insert(&self, msg: NewMessage, now_ms: u64) -> Result<Inserted> {
        self.enqueue_insert(msg, now_ms)?.wait().await
    }

    /// Queues one message without waiting: [`StorageError::QueueFull`] or
    /// [`StorageError::Closed`] at once, otherwise a [`PendingInsert`].
    pub fn enqueue_insert(&self, msg: NewMessage, now_ms: u64) -> Result<PendingInsert> {
        Ok(PendingInsert {
            rx: self.enqueue(Op::Insert { msg, now_ms })?,
        })
    }

    /// Stores up to [`HandleConfig::max_batch`] messages as one job (see
    /// [`Store::insert_batch`]).
    pub async fn insert_batch(&self, msgs: Vec<NewMessage>, now_ms: u64) -> Result<Vec<Result<Inserted>>> {
        let max = self.inner.config.max_batch;
        if msgs.len() > max {
            return Err(StorageError::BatchTooLarge { len: msgs.len(), max });
        }
        match self.submit(Op::InsertBatch { msgs, now_ms }).await? {
            Outcome::Batch(results) => Ok(results),
            other => Err(unexpected(&other)),
        }
    }

    /// See [`Store::retrieve`].
    pub async fn retrieve(
        &self,
        account: MailboxId,
        namespace: Namespace,
        last_hash: Option<String>,
        max_count: usize,
        max_size_bytes: usize,
        now_ms: u64,
    ) -> Result<Retrieved> {
        self.inner
            .readers
            .read(move |conn| {
                store::retrieve(
                    conn,
                    &account,
                    namespace,
                    last_hash.as_deref(),
                    max_count,
                    max_size_bytes,
                    now_ms,
                )
            })
            .await
    }

    /// See [`Store::delete`]; `proof` is the owner's signed request (JSON),
    /// kept with the tombstones so the deletion can be proved to a peer.
    pub async fn delete(&self, account: MailboxId, hashes: Vec<String>, proof: Option<String>) -> Result<Vec<String>> {
        self.delete_in(account, None, hashes, proof).await
    }

    /// [`StorageHandle::delete`], touching only namespace `only` when it
    /// is given (a group member deletes only in the messages namespace).
    pub async fn delete_in(
        &self,
        account: MailboxId,
        only: Option<Namespace>,
        hashes: Vec<String>,
        proof: Option<String>,
    ) -> Result<Vec<String>> {
        self.hashes(Op::Delete {
            account,
            only,
            hashes,
            proof,
        })
        .await
    }

    /// Whether `group` holds a live revocation of the member sub-key
    /// `member_pk` (stored, verified, in its namespace 15).
    pub async fn is_revoked(&self, group: GroupId, member_pk: [u8; 32], now_ms: u64) -> Result<bool> {
        self.inner
            .readers
            .read(move |conn| store::is_revoked(conn, &group, &member_pk, now_ms))
            .await
    }

    /// See [`Store::delete_all`]; `proof` as for [`StorageHandle::delete`].
    pub async fn delete_all(
        &self,
        account: MailboxId,
        namespace: Namespace,
        up_to_ms: u64,
        proof: Option<String>,
    ) -> Result<Vec<String>> {
        self.hashes(Op::DeleteAll {
            account,
            namespace,
            up_to_ms,
            proof,
        })
        .await
    }

    /// The owner's request that deleted `hash`, if this node keeps its
    /// tombstone with one.
    pub async fn deletion_proof(&self, hash: String) -> Result<Option<String>> {
        self.inner
            .readers
            .read(move |conn| store::deletion_proof(conn, &hash))
            .await
    }

    /// See [`Store::expire`].
    pub async fn expire(
        &self,
        account: MailboxId,
        hashes: Vec<String>,
        new_expiry_ms: u64,
        signed_at_ms: u64,
        now_ms: u64,
    ) -> Result<Vec<String>> {
        self.hashes(Op::Expire {
            account,
            hashes,
            new_expiry_ms,
            signed_at_ms,
            now_ms,
        })
        .await
    }

    /// Deletes up to `limit` expired messages, one writer job (and one
    /// transaction) per [`SWEEP_CHUNK`], so stores interleave with a long
    /// sweep. Returns how many were deleted.
    pub async fn sweep_expired(&self, now_ms: u64, limit: usize) -> Result<usize> {
        let mut total = 0;
        while total < limit {
            let chunk = (limit - total).min(SWEEP_CHUNK);
            let n = match self.submit(Op::Sweep { now_ms, limit: chunk }).await? {
                Outcome::Count(n) => n,
                other => return Err(unexpected(&other)),
            };
            total += n;
            if n < chunk {
                break;
            }
        }
        Ok(total)
    }

    /// See [`Store::live_page`].
    pub async fn live_page(
        &self,
        after_seq: u64,
        now_ms: u64,
        page_size: usize,
        filter: impl Fn(&MailboxId, &str) -> bool + Send + 'static,
    ) -> Result<LivePage> {
        self.inner
            .readers
            .read(move |conn| store::live_page(conn, after_seq, now_ms, page_size, &filter))
            .await
    }

    /// Account and hash of up to `page_size` live messages with
    /// `seq > after_seq` (no data is read), and where the next page starts
    /// (`None` when the scan is complete). For swarm digests.
    pub async fn live_hashes(&self, after_seq: u64, now_ms: u64, page_size: usize) -> Result<HashPage> {
        self.inner
            .readers
            .read(move |conn| store::live_hashes(conn, after_seq, now_ms, page_size))
            .await
    }

    /// Account and hash of up to `limit` live messages whose hash starts
    /// with `prefix` (a digest bucket's, see `SwarmDigest::bucket_prefix`),
    /// read through the hash index.
    pub async fn hashes_with_prefix(
        &self,
        prefix: String,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<(MailboxId, String)>> {
        self.inner
            .readers
            .read(move |conn| store::hashes_with_prefix(conn, &prefix, now_ms, limit))
            .await
    }

    /// The live messages among `hashes`, data included (missing and
    /// expired ones are left out).
    pub async fn messages_with_hashes(&self, hashes: Vec<String>, now_ms: u64) -> Result<Vec<NewMessage>> {
        self.inner
            .readers
            .read(move |conn| store::messages_with_hashes(conn, &hashes, now_ms))
            .await
    }

    /// Messages and data bytes in the whole store.
    pub async fn stats(&self) -> Result<Stats> {
        self.inner.readers.read(store::stats).await
    }

    /// Chunks and their bytes in namespace 16.
    pub async fn file_stats(&self) -> Result<Stats> {
        self.inner.readers.read(store::file_stats).await
    }

    /// Messages and data bytes in one mailbox.
    pub async fn mailbox_stats(&self, account: MailboxId, namespace: Namespace) -> Result<Stats> {
        self.inner
            .readers
            .read(move |conn| store::mailbox_stats(conn, account.key(), i64::from(namespace.0)))
            .await
    }

    /// Mailboxes that received a new message, sent after the commit that
    /// stored it (for long-polling `retrieve`). Duplicates send nothing.
    pub fn subscribe(&self) -> broadcast::Receiver<Mailbox> {
        self.inner.notify.subscribe()
    }

    /// Refuses new work, finishes every write already queued, checkpoints
    /// and closes the database, and waits for all of it. Reads still
    /// running finish; later calls on any clone fail with
    /// [`StorageError::Closed`]. Closing twice is harmless.
    pub async fn close(&self) -> Result<()> {
        self.inner.readers.close();
        let (ack, done) = oneshot::channel();
        if self.inner.tx.send(Msg::Close(ack)).await.is_err() {
            return Ok(()); // Already closed.
        }
        done.await.map_err(|_| StorageError::Worker {
            what: "the writer thread stopped before closing the store".into(),
        })?;
        tracing::info!(path = %self.inner.path.display(), "message store closed");
        Ok(())
    }

    fn enqueue(&self, op: Op) -> Result<oneshot::Receiver<Result<Outcome>>> {
        let config = &self.inner.config;
        let full = || StorageError::QueueFull {
            capacity: config.queue_capacity,
            max_bytes: config.max_queued_bytes,
        };
        // A job bigger than the whole budget may still run on an empty queue.
        let bytes = op.bytes().min(config.max_queued_bytes);
        let bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        let budget = match Arc::clone(&self.inner.budget).try_acquire_many_owned(bytes) {
            Ok(permit) => permit,
            Err(TryAcquireError::NoPermits) => return Err(full()),
            Err(TryAcquireError::Closed) => return Err(StorageError::Closed),
        };
        let (reply, rx) = oneshot::channel();
        let job = Job {
            op,
            reply,
            _budget: budget,
        };
        match self.inner.tx.try_send(Msg::Job(Box::new(job))) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(full()),
            Err(TrySendError::Closed(_)) => Err(StorageError::Closed),
        }
    }

    async fn submit(&self, op: Op) -> Result<Outcome> {
        reply(self.enqueue(op)?).await
    }

    async fn hashes(&self, op: Op) -> Result<Vec<String>> {
        match self.submit(op).await? {
            Outcome::Hashes(h) => Ok(h),
            other => Err(unexpected(&other)),
        }
    }
}

async fn reply(rx: oneshot::Receiver<Result<Outcome>>) -> Result<Outcome> {
    rx.await.map_err(|_| StorageError::Worker {
        what: "the writer thread dropped a job".into(),
    })?
}

fn unexpected(outcome: &Outcome) -> StorageError {
    let kind = match outcome {
        Outcome::Inserted(_) => "an insert result",
        Outcome::Batch(_) => "a batch result",
        Outcome::Hashes(_) => "a list of hashes",
        Outcome::Count(_) => "a count",
    };
    StorageError::Worker {
        what: format!("the writer answered with {kind} to another kind of job"),
    }
}

/// The read-only connections.
struct Readers {
    conns: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    path: PathBuf,
}

impl Readers {
    /// Runs `f` on a pooled read-only connection in `spawn_blocking`.
    async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StorageError::Closed)?;
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit; // Released when the blocking read ends, even if the caller gave up.
            let conn = match readers.lock().pop() {
                Some(conn) => conn,
                None => schema::open_reader(&readers.path)?,
            };
            let out = f(&conn);
            if !readers.permits.is_closed() {
                readers.lock().push(conn);
            }
            out
        })
        .await
        .map_err(|e| StorageError::Worker {
            what: format!("a read task failed: {e}"),
        })?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn close(&self) {
        self.permits.close();
        self.lock().clear();
    }
}

/// The writer thread: rounds of group-committed jobs until the queue is
/// closed (by [`StorageHandle::close`]) or every sender is gone, then a
/// checkpoint and close.
fn run_writer(
    mut store: Store,
    mut rx: mpsc::Receiver<Msg>,
    max_round: usize,
    notify: &broadcast::Sender<Mailbox>,
    full: &AtomicBool,
) {
    let mut closers = Vec::new();
    let mut round = Vec::with_capacity(max_round.min(4096));
    // Adds a message to the round; returns the messages it adds.
    let mut take = |msg: Msg, round: &mut Vec<Job>, rx: &mut mpsc::Receiver<Msg>| match msg {
        Msg::Job(job) => {
            let weight = job.op.weight();
            round.push(*job);
            weight
        }
        Msg::Close(ack) => {
            closers.push(ack);
            rx.close(); // Refuse new jobs; the queued ones are still drained.
            0
        }
    };
    while let Some(first) = rx.blocking_recv() {
        // Bounded by messages, not jobs: a round of batches stays short.
        let mut weight = take(first, &mut round, &mut rx);
        while weight < max_round {
            match rx.try_recv() {
                Ok(msg) => weight += take(msg, &mut round, &mut rx),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        if !round.is_empty() {
            let jobs = std::mem::take(&mut round);
            // A panic must cost one round, not the store: the writer goes
            // on (its jobs are answered with an error when dropped, and an
            // open transaction rolls back as it unwinds).
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_round(&mut store, jobs, notify, full);
            }));
            if ran.is_err() {
                tracing::error!("the message store's writer recovered from a panic; that round's writes failed");
            }
        }
    }
    let path = store.path().display().to_string();
    if let Err(e) = store.close() {
        tracing::warn!(path, error = %e, "closing the message store failed");
    }
    for ack in closers {
        let _ = ack.send(());
    }
}

/// Runs one round in one transaction; on a database failure, again one
/// job per transaction. Answers every job after its commit.
fn run_round(store: &mut Store, jobs: Vec<Job>, notify: &broadcast::Sender<Mailbox>, full: &AtomicBool) {
    let ops: Vec<&Op> = jobs.iter().map(|j| &j.op).collect();
    let outcomes = match run_group(store, &ops) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::warn!(jobs = jobs.len(), error = %e, "group commit failed; retrying one job per transaction");
            ops.iter()
                .map(|&op| run_group(store, &[op]).and_then(|mut v| v.pop().unwrap_or_else(|| Err(missing()))))
                .collect()
        }
    };
    announce(&ops, &outcomes, notify);
    note_space(&ops, &outcomes, full);
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        let _ = job.reply.send(outcome); // The caller may have given up.
    }
}

fn missing() -> StorageError {
    StorageError::Worker {
        what: "a job produced no result".into(),
    }
}

/// Applies `ops` in one transaction. `Err` means the transaction was
/// rolled back; per-job refusals are inside the `Ok`.
fn run_group(store: &mut Store, ops: &[&Op]) -> Result<Vec<Result<Outcome>>> {
    const OP: &str = "committing a group of writes";
    let (tx, limits) = store.begin(OP)?;
    let mut outcomes = Vec::with_capacity(ops.len());
    for op in ops {
        let outcome = apply(&tx, limits, op);
        if let Err(e) = outcome {
            if e.is_fatal() {
                return Err(e); // `tx` rolls back on drop.
            }
            outcomes.push(Err(e));
        } else {
            outcomes.push(outcome);
        }
    }
    tx.commit().map_err(StorageError::sql(OP))?;
    Ok(outcomes)
}

fn apply(conn: &Connection, limits: &StorageLimits, op: &Op) -> Result<Outcome> {
    match op {
        Op::Insert { msg, now_ms } => store::insert(conn, limits, msg, *now_ms).map(Outcome::Inserted),
        Op::InsertBatch { msgs, now_ms } => {
            let mut results = Vec::with_capacity(msgs.len());
            for msg in msgs {
                match store::insert(conn, limits, msg, *now_ms) {
                    Err(e) if e.is_fatal() => return Err(e),
                    r => results.push(r),
                }
            }
            Ok(Outcome::Batch(results))
        }
        Op::Delete {
            account,
            only,
            hashes,
            proof,
        } => store::delete(conn, account, *only, hashes, proof.as_deref()).map(Outcome::Hashes),
        Op::DeleteAll {
            account,
            namespace,
            up_to_ms,
            proof,
        } => store::delete_all(conn, account, *namespace, *up_to_ms, proof.as_deref()).map(Outcome::Hashes),
        Op::Expire {
            account,
            hashes,
            new_expiry_ms,
            signed_at_ms,
            now_ms,
        } => store::expire(conn, account, hashes, *new_expiry_ms, *signed_at_ms, *now_ms).map(Outcome::Hashes),
        Op::Sweep { now_ms, limit } => store::sweep_chunk(conn, *now_ms, *limit).map(Outcome::Count),
    }
}

/// Sets the full flag when an insert of the round failed for lack of space,
/// and clears it when inserts were stored and none failed so.
fn note_space(ops: &[&Op], outcomes: &[Result<Outcome>], full: &AtomicBool) {
    let results = ops.iter().zip(outcomes).flat_map(|(op, outcome)| match (op, outcome) {
        (Op::Insert { .. }, Ok(Outcome::Inserted(i))) => vec![Ok(*i)],
        (Op::Insert { .. } | Op::InsertBatch { .. }, Err(e)) => vec![Err(e.is_out_of_space())],
        (Op::InsertBatch { .. }, Ok(Outcome::Batch(results))) => results
            .iter()
            .map(|r| r.as_ref().copied().map_err(StorageError::is_out_of_space))
            .collect(),
        _ => Vec::new(),
    });
    let (mut out_of_space, mut stored) = (false, false);
    for result in results {
        out_of_space |= result == Err(true);
        stored |= result == Ok(Inserted::New);
    }
    if out_of_space {
        full.store(true, Ordering::Relaxed);
    } else if stored {
        full.store(false, Ordering::Relaxed);
    }
}

/// Tells subscribers which mailboxes got new messages in a committed round.
fn announce(ops: &[&Op], outcomes: &[Result<Outcome>], notify: &broadcast::Sender<Mailbox>) {
    if notify.receiver_count() == 0 {
        return;
    }
    let mut seen = HashSet::new();
    for (op, outcome) in ops.iter().zip(outcomes) {
        match (op, outcome) {
            (Op::Insert { msg, .. }, Ok(Outcome::Inserted(Inserted::New))) => {
                seen.insert(Mailbox {
                    account: msg.account,
                    namespace: msg.namespace,
                });
            }
            (Op::InsertBatch { msgs, .. }, Ok(Outcome::Batch(results))) => {
                for (msg, r) in msgs.iter().zip(results) {
                    if matches!(r, Ok(Inserted::New)) {
                        seen.insert(Mailbox {
                            account: msg.account,
                            namespace: msg.namespace,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    for mailbox in seen {
        let _ = notify.send(mailbox); // No subscriber is fine.
    }
}

#[cfg(test)]
mod tests {
    use allium_common::AccountId;
    use allium_common::rpc::MAX_DATA_LEN;
    use tempfile::TempDir;

    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn job(op: Op) -> (Job, oneshot::Receiver<Result<Outcome>>) {
        let budget = Arc::new(Semaphore::new(1)).try_acquire_many_owned(1).unwrap();
        let (reply, rx) = oneshot::channel();
        (
            Job {
                op,
                reply,
                _budget: budget,
            },
            rx,
        )
    }

    fn insert(i: u8, len: usize) -> Op {
        let account = AccountId::from_x25519([i; 32]);
        let msg = NewMessage::new(account.into(), Namespace(0), NOW, NOW + 60_000, vec![i; len]);
        Op::Insert { msg, now_ms: NOW }
    }

    /// One job that fills the disk must not fail the small jobs committed
    /// in the same round: the round is retried one job per transaction.
    #[test]
    fn a_round_that_fails_is_retried_job_by_job() {
        let dir = TempDir::new().unwrap();
        let mut store = Store::open(dir.path().join("s.sqlite"), StorageLimits::default()).unwrap();
        crate::storage::tests::limit_file_size(&store, 6);
        let (notify, mut seen) = broadcast::channel(16);
        let (a, a_rx) = job(insert(1, 100));
        let (big, big_rx) = job(Op::InsertBatch {
            msgs: (0..4)
                .map(|i| {
                    let account = AccountId::from_x25519([9; 32]);
                    NewMessage::new(account.into(), Namespace(0), NOW, NOW + 60_000, vec![i; MAX_DATA_LEN])
                })
                .collect(),
            now_ms: NOW,
        });
        let (b, b_rx) = job(insert(2, 100));
        let full = AtomicBool::new(false);
        run_round(&mut store, vec![a, big, b], &notify, &full);
        assert!(
            full.load(Ordering::Relaxed),
            "the disk-full insert marks the store full"
        );

        assert!(matches!(
            a_rx.blocking_recv().unwrap(),
            Ok(Outcome::Inserted(Inserted::New))
        ));
        assert!(matches!(
            b_rx.blocking_recv().unwrap(),
            Ok(Outcome::Inserted(Inserted::New))
        ));
        assert!(matches!(
            big_rx.blocking_recv().unwrap(),
            Err(StorageError::DiskFull { .. })
        ));
        assert_eq!(store.stats().unwrap().messages, 2);
        let mut announced = [seen.try_recv().unwrap(), seen.try_recv().unwrap()];
        announced.sort_by_key(|m| *m.account.key());
        assert_eq!(announced[0].account, AccountId::from_x25519([1; 32]).into());
        assert_eq!(announced[1].account, AccountId::from_x25519([2; 32]).into());
        assert!(seen.try_recv().is_err());
    }
}
