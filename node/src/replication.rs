//! Swarm replication: every member of a swarm holds every live message of
//! the swarm's accounts.
//!
//! - **On store**, the node that accepted the message pushes it to every
//!   other member before answering ([`Replicator::replicate_now`]), so a
//!   message the client saw acknowledged survives the death of that node.
//!   Peers that do not answer in time get it later from the retry queue.
//! - **Owner-signed changes** (`delete`, `delete_all`, `expire`) are passed
//!   on as the original signed request, which each peer verifies itself.
//! - **Hand-over**: when a node list brings a node into a swarm (a new node,
//!   or one that moved), every member pushes that swarm's messages to it
//!   ([`hand_over`]). Pushes are idempotent (messages are keyed by hash), so
//!   hearing the same message from several members costs only bandwidth.
//!
//! All deliveries that are not answered at once go through one bounded
//! queue worked by [`run_queue`], with exponential backoff. Nothing is
//! dropped for want of room: whoever queues waits for space (a store's
//! answer, a hand-over's next page), and the queue takes new work only
//! while the deliveries it holds (waiting, in flight or backing off) are
//! fewer than [`CAPACITY`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use allium_common::encoding::{Base64Bytes, Hex32};
use allium_common::node_list::NodeEntry;
use allium_common::peer::{
    DeletionProof, ForwardRequest, MAX_PUSH_BODY, MAX_PUSH_MESSAGES, PushRequest, PushResponse, PushedMessage,
    SyncRequest, forward_signed_bytes, push_signed_bytes, sync_signed_bytes,
};
use allium_common::rpc::{
    ErrorCode, MAX_CLOCK_SKEW_MS, MAX_DATA_LEN, MAX_TTL_MS, Namespace, SwarmConfirmation, check_clock,
};
use axum::http::HeaderMap;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::api_error::ApiError;
use crate::directory::{Change, Snapshot};
use crate::metrics::Metrics;
use crate::peer::outbound::{self, Call, CallError};
use crate::peer::{Budget, Links, Peers};
use crate::rpc::confirmation;
use crate::state::{Node, now_ms};
use crate::storage::{Inserted, NewMessage, OwnerSig};

/// Deliveries the queue holds at most (waiting, in flight and backing off).
pub const CAPACITY: usize = 8192;
/// KiB of messages the queue holds at most, whoever queued them (64 MiB):
/// a hand-over of large messages waits for room rather than holding a copy
/// of the store in memory.
const MAX_QUEUED_KIB: u32 = 64 * 1024;
/// Deliveries handed over but not yet taken by the queue.
const CHANNEL: usize = 1024;
/// Deliveries in flight at once from the queue.
const MAX_IN_FLIGHT: usize = 16;
/// Attempts before a push is given up (anti-entropy repairs what is given
/// up). A forwarded owner request is retried until the peer applies it or
/// leaves the node list.
const MAX_PUSH_ATTEMPTS: u32 = 10;
/// How long a store waits for its peers before answering.
const SYNC_TIMEOUT: Duration = Duration::from_secs(2);
/// After a peer let a store wait the whole [`SYNC_TIMEOUT`], stores stop
/// waiting for it this long (its copies go through the retry queue), so a
/// hung peer costs one store 2 s, not every store until the seed drops it.
const STALL_FOR: Duration = Duration::from_secs(30);
/// Pushes per second the queue sends one peer at most: a quarter of the
/// default per-peer push budget (`pushes_per_second_per_peer`), so a
/// hand-over or repair never spends the budget the peer's live stores
/// need, and never gets the 429s that would send it into backoff.
const QUEUE_PUSHES_PER_SECOND: u32 = 50;
/// What a push body may hold, leaving room under [`MAX_PUSH_BODY`] for the
/// request's envelope.
const PUSH_BODY_BUDGET: usize = MAX_PUSH_BODY - 64 * 1024;
/// Bytes a pushed message adds to a push body beside its base64 data (keys,
/// signature, numbers and JSON punctuation), rounded up.
const PUSHED_MESSAGE_OVERHEAD: usize = 512;
/// Messages read from storage per hand-over page.
const HAND_OVER_PAGE: usize = 256;
/// Largest answer to a push, sync or forwarded request (confirmations, and
/// up to 8 deletion proofs of up to 1,000 hashes each).
const MAX_PUSH_ANSWER: usize = 1024 * 1024;

/// A delivery to one peer.
#[derive(Debug)]
enum Job {
    /// Push messages.
    Push { peer: [u8; 32], messages: Vec<NewMessage> },
    /// Pass on an owner-signed request.
    Forward { peer: [u8; 32], request: Value },
}

impl Job {
    /// The node the job is for.
    fn peer(&self) -> [u8; 32] {
        match self {
            Self::Push { peer, .. } | Self::Forward { peer, .. } => *peer,
        }
    }

    /// What the job holds in memory, in KiB (at least 1), as counted
    /// against [`MAX_QUEUED_KIB`].
    fn kib(&self) -> u32 {
        let bytes = match self {
            Self::Push { messages, .. } => messages
                .iter()
                .map(|m| m.data.len() + PUSHED_MESSAGE_OVERHEAD)
                .sum::<usize>(),
            Self::Forward { request, .. } => request.to_string().len(),
        };
        u32::try_from(bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, MAX_QUEUED_KIB)
    }
}

/// A delivery with its retry state.
#[derive(Debug)]
pub struct Delivery {
    job: Job,
    attempt: u32,
    /// When the delivery was first queued (for the lag gauge).
    since: Instant,
    /// Its share of [`MAX_QUEUED_KIB`], given back when it is dropped
    /// (delivered, given up, or its peer left).
    _room: OwnedSemaphorePermit,
}

impl Delivery {
    /// Whether another attempt may follow a failed one.
    fn may_retry(&self) -> bool {
        match self.job {
            Job::Push { .. } => self.attempt + 1 < MAX_PUSH_ATTEMPTS,
            Job::Forward { .. } => true,
        }
    }

    /// How long to wait before attempt `attempt + 1`: 0.5 s doubling to
    /// about a minute.
    fn backoff(&self) -> Duration {
        Duration::from_millis(250u64.saturating_mul(1 << (self.attempt + 1).min(8)))
    }
}

/// The sending side of replication.
#[derive(Debug)]
pub struct Replicator {
    queue: mpsc::Sender<Delivery>,
    /// KiB of deliveries the queue may hold ([`MAX_QUEUED_KIB`]).
    room: Arc<Semaphore>,
    /// Peers that timed out a synchronous push, and until when stores do
    /// not wait for them. At most one entry per swarm peer.
    stalled: std::sync::Mutex<HashMap<[u8; 32], Instant>>,
}

impl Replicator {
    /// A replicator and the queue [`run_queue`] must work.
    pub fn new() -> (Self, mpsc::Receiver<Delivery>) {
        let (queue, rx) = mpsc::channel(CHANNEL);
        (
            Self {
                queue,
                room: Arc::new(Semaphore::new(MAX_QUEUED_KIB as usize)),
                stalled: std::sync::Mutex::new(HashMap::new()),
            },
            rx,
        )
    }

    /// Pushes freshly stored messages to every other member of this node's
    /// swarm, waiting up to 2 s; returns the confirmations received.
    /// Members that fail are queued for retry; members that recently let a
    /// store time out are not waited for, only queued.
    pub async fn replicate_now(
        &self,
        node: &Node,
        snap: &Snapshot,
        messages: Vec<NewMessage>,
    ) -> BTreeMap<String, SwarmConfirmation> {
        let (peers, stalled): (Vec<NodeEntry>, Vec<NodeEntry>) = swarm_peers(node, snap)
            .into_iter()
            .partition(|p| !self.is_stalled(&p.ed25519.0));
        for peer in stalled {
            Metrics::inc(&node.metrics.replication_not_waited);
            self.enqueue(
                node,
                Job::Push {
                    peer: peer.ed25519.0,
                    messages: messages.clone(),
                },
            )
            .await;
        }
        let mut tasks = JoinSet::new();
        for peer in peers {
            let links = Arc::clone(node.peers.links());
            let call = push_call(node, &peer, &messages, SYNC_TIMEOUT);
            tasks.spawn(async move { (peer, send_push(&links, call).await) });
        }
        let mut confirmations = BTreeMap::new();
        while let Some(joined) = tasks.join_next().await {
            let Ok((peer, result)) = joined else { continue };
            match result.and_then(|r| complete(r, messages.len())) {
                Ok(response) => {
                    Metrics::inc(&node.metrics.replicated_out);
                    if let Some(c) = response.confirmations.into_iter().next() {
                        confirmations.insert(hex::encode(peer.ed25519.0), c);
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = %hex::encode(peer.ed25519.0), error = %e, "replication deferred");
                    if matches!(e, PushError::Timeout) {
                        Metrics::inc(&node.metrics.replication_sync_timeouts);
                        self.set_stalled(peer.ed25519.0, true);
                    }
                    self.enqueue(
                        node,
                        Job::Push {
                            peer: peer.ed25519.0,
                            messages: messages.clone(),
                        },
                    )
                    .await;
                }
            }
        }
        confirmations
    }

    /// Whether stores currently skip waiting for `peer`.
    fn is_stalled(&self, peer: &[u8; 32]) -> bool {
        let Ok(mut stalled) = self.stalled.lock() else {
            return false;
        };
        let now = Instant::now();
        stalled.retain(|_, until| *until > now);
        stalled.contains_key(peer)
    }

    /// Marks `peer` as stalled for [`STALL_FOR`], or clears the mark (a
    /// delivery to it went through).
    fn set_stalled(&self, peer: [u8; 32], stalled: bool) {
        if let Ok(mut map) = self.stalled.lock() {
            if stalled {
                map.insert(peer, Instant::now() + STALL_FOR);
            } else {
                map.remove(&peer);
            }
        }
    }

    /// Queues an owner-signed request for every other swarm member.
    pub async fn forward_signed(&self, node: &Node, snap: &Snapshot, request: Value) {
        for peer in swarm_peers(node, snap) {
            self.enqueue(
                node,
                Job::Forward {
                    peer: peer.ed25519.0,
                    request: request.clone(),
                },
            )
            .await;
        }
    }

    /// Queues `messages` for `peer` in as few pushes as fit
    /// ([`push_batches`]).
    pub(crate) async fn enqueue_push(&self, node: &Node, peer: [u8; 32], messages: &[NewMessage]) {
        for batch in push_batches(messages) {
            self.enqueue(
                node,
                Job::Push {
                    peer,
                    messages: batch.to_vec(),
                },
            )
            .await;
        }
    }

    /// Queues a delivery, waiting for room if the queue is full, by count
    /// or by bytes (never dropping it); only a node shutting down loses
    /// what it queues.
    async fn enqueue(&self, node: &Node, job: Job) {
        let Ok(room) = Arc::clone(&self.room).acquire_many_owned(job.kib()).await else {
            return; // Closed: never, the semaphore lives as long as the queue.
        };
        let delivery = Delivery {
            job,
            attempt: 0,
            since: Instant::now(),
            _room: room,
        };
        node.metrics.replication_queue.fetch_add(1, Ordering::Relaxed);
        if self.queue.send(delivery).await.is_err() {
            node.metrics.replication_queue.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!("replication queue closed (shutting down)");
        }
    }
}

/// The other members of this node's swarm.
pub(crate) fn swarm_peers(node: &Node, snap: &Snapshot) -> Vec<NodeEntry> {
    let Some(swarm) = snap.my_swarm else {
        return Vec::new();
    };
    let me = node.identity.ed25519_pk();
    snap.members(swarm)
        .into_iter()
        .filter(|n| &n.ed25519.0 != me)
        .cloned()
        .collect()
}

/// Why a delivery failed.
#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error("no answer in time")]
    Timeout,
    #[error("{0}")]
    Call(CallError),
    #[error("refused with status {0}")]
    Status(u16),
    #[error("peer is no longer in the node list")]
    UnknownPeer,
    #[error("peer confirmed {got} of {sent} messages")]
    Incomplete { got: usize, sent: usize },
}

impl From<CallError> for PushError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Timeout => Self::Timeout,
            other => Self::Call(other),
        }
    }
}

/// Splits `messages` into pushes of at most [`MAX_PUSH_MESSAGES`] whose
/// bodies stay under [`PUSH_BODY_BUDGET`] (estimated from the data's base64
/// length plus [`PUSHED_MESSAGE_OVERHEAD`]). A message too large for any
/// push alone still gets one of its own; the receiver's limits decide.
fn push_batches(messages: &[NewMessage]) -> Vec<&[NewMessage]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, m) in messages.iter().enumerate() {
        let size = m.data.len().div_ceil(3) * 4 + PUSHED_MESSAGE_OVERHEAD;
        if i > start && (i - start == MAX_PUSH_MESSAGES || bytes + size > PUSH_BODY_BUDGET) {
            batches.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < messages.len() {
        batches.push(&messages[start..]);
    }
    batches
}

/// The signed call that pushes `messages` to `peer`.
fn push_call(node: &Node, peer: &NodeEntry, messages: &[NewMessage], deadline: Duration) -> Call {
    let request = PushRequest {
        to: peer.ed25519,
        sent: now_ms(),
        messages: messages
            .iter()
            .map(|m| PushedMessage {
                chunk: m.chunk,
                pubkey: m.account,
                namespace: m.namespace,
                timestamp: m.timestamp_ms,
                expiry: m.expiry_ms,
                data: Base64Bytes(m.data.clone()),
                pubkey_ed25519: m.owner_sig.map(|o| Hex32(o.ed25519)),
                signature: m.owner_sig.map(|o| allium_common::encoding::Sig64(o.signature)),
                credential: m.credential.clone().map(Base64Bytes),
            })
            .collect(),
    };
    let body = serde_json::to_vec(&request).unwrap_or_default();
    Peers::signed_call(
        &node.identity,
        peer,
        "/swarm/v1/push",
        push_signed_bytes,
        body,
        deadline,
        MAX_PUSH_ANSWER,
    )
}

/// Sends a push and reads the peer's confirmations.
async fn send_push(links: &Links, call: Call) -> Result<PushResponse, PushError> {
    let answer = outbound::call(links, call).await?;
    if !answer.is_success() {
        return Err(PushError::Status(answer.status));
    }
    Ok(answer.parse::<PushResponse>()?)
}

/// A push counts as delivered only if every message was confirmed; a peer
/// that could not place some (e.g. its node list is older) gets a retry.
fn complete(response: PushResponse, sent: usize) -> Result<PushResponse, PushError> {
    let got = response.confirmations.len();
    if got == sent {
        Ok(response)
    } else {
        Err(PushError::Incomplete { got, sent })
    }
}

async fn send_forward(node: &Node, peer: &NodeEntry, request: &Value) -> Result<(), PushError> {
    let body = serde_json::to_vec(&ForwardRequest {
        to: peer.ed25519,
        sent: now_ms(),
        request: request.clone(),
    })
    .unwrap_or_default();
    let call = Peers::signed_call(
        &node.identity,
        peer,
        "/swarm/v1/forward",
        forward_signed_bytes,
        body,
        node.config.hop_timeout(),
        MAX_PUSH_ANSWER,
    );
    let answer = node.peers.call(call).await?;
    // Retried until the peer has applied it: any answer but a success may
    // change (a peer without the list yet, a busy peer, a budget spent),
    // except a request the peer finds invalid, which no retry mends.
    match answer.status {
        200..=299 => Ok(()),
        400 | 401 | 406 | 413 => {
            tracing::warn!(peer = %peer.address, status = answer.status, "a peer refused a forwarded owner request");
            Ok(())
        }
        status => Err(PushError::Status(status)),
    }
}

/// Handles `POST /swarm/v1/forward`: an owner's `delete`, `delete_all` or
/// `expire` passed on by a node that holds the account by right (a member
/// of its swarm now, or under a list replaced recently). The owner's
/// signature is checked here again; its signing time may be older than
/// the clock window.
pub async fn receive_forward(node: &Node, headers: &HeaderMap, body: &[u8]) -> Result<crate::rpc::Reply, ApiError> {
    let (sender, signature) = node.peers.signed_by(headers, &forward_signed_bytes(body))?;
    if !node.directory.recently_listed(&sender) {
        return Err(unauthorized("the sender is not in this node's node list"));
    }
    node.peers.spend(Budget::Control, &sender)?;
    let request: ForwardRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed forward: {e}")))?;
    fresh_and_for_me(node, request.to, request.sent)?;
    node.peers.first_time(&signature, now_ms())?;
    let call =
        match allium_common::rpc::Request::from_json(request.request.to_string().as_bytes()).map_err(ApiError::from)? {
            allium_common::rpc::Request::Single(
                call @ (allium_common::rpc::Call::Delete(_)
                | allium_common::rpc::Call::DeleteAll(_)
                | allium_common::rpc::Call::Expire(_)),
            ) => call,
            _ => {
                return Err(ApiError::new(
                    ErrorCode::BadRequest,
                    "only delete, delete_all and expire are passed on",
                ));
            }
        };
    let account = call
        .mailbox()
        .copied()
        .ok_or_else(|| ApiError::new(ErrorCode::BadRequest, "no account"))?;
    if !node.directory.holds_by_right(&sender, &account) {
        return Err(unauthorized("the sender is not a member of that account's swarm"));
    }
    let method = call.method();
    let reply = match crate::rpc::execute(
        node,
        call,
        crate::rpc::Origin::Peer,
        allium_common::rpc::MAX_RETRIEVE_SIZE,
    )
    .await
    {
        Ok(body) => crate::rpc::Reply { status: 200, body },
        Err(e) => e.into(),
    };
    node.metrics.count_request(method, reply.status);
    Ok(reply)
}

/// Works the queue until the replicator is dropped: at most
/// [`MAX_IN_FLIGHT`] deliveries at once, failed ones retried after their
/// backoff, and new ones taken only while fewer than [`CAPACITY`] are held.
pub async fn run_queue(node: Arc<Node>, mut rx: mpsc::Receiver<Delivery>) {
    let mut in_flight: JoinSet<(Delivery, Result<(), PushError>)> = JoinSet::new();
    // Deliveries waiting for their time (a backoff, or their peer's pace),
    // by when they are due.
    let mut due_at: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut waiting: HashMap<u64, Delivery> = HashMap::new();
    let mut pacer = Pacer::new(QUEUE_PUSHES_PER_SECOND);
    let mut serial = 0u64;
    let mut open = true;
    loop {
        let held = in_flight.len() + waiting.len();
        let room = in_flight.len() < MAX_IN_FLIGHT;
        let next_due = due_at.peek().map(|Reverse((due, _))| *due);
        // Every delivery gets a slot in its peer's pace, after its backoff
        // if it is a retry; it is sent at that slot.
        let mut schedule = |delivery: Delivery, earliest: Instant, in_flight: &mut JoinSet<_>| {
            let slot = pacer.reserve(delivery.job.peer(), earliest);
            if slot <= Instant::now() {
                let node = Arc::clone(&node);
                in_flight.spawn(async move { attempt(node, delivery).await });
            } else {
                serial += 1;
                due_at.push(Reverse((slot, serial)));
                waiting.insert(serial, delivery);
            }
        };
        tokio::select! {
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                let Ok((delivery, result)) = joined else { continue };
                if let Some(retry) = settle(&node, delivery, result) {
                    let earliest = Instant::now() + retry.backoff();
                    schedule(Delivery { attempt: retry.attempt + 1, ..retry }, earliest, &mut in_flight);
                }
            }
            () = sleep_until(next_due), if room && next_due.is_some() => {
                if let Some(Reverse((_, id))) = due_at.pop()
                    && let Some(delivery) = waiting.remove(&id)
                {
                    let node = Arc::clone(&node);
                    in_flight.spawn(async move { attempt(node, delivery).await });
                }
            }
            received = rx.recv(), if open && room && held < CAPACITY => match received {
                Some(delivery) => {
                    node.metrics.replication_queue.fetch_sub(1, Ordering::Relaxed);
                    schedule(delivery, Instant::now(), &mut in_flight);
                }
                None => open = false,
            },
            else => break,
        }
        node.metrics
            .replication_backing_off
            .store(waiting.len() as u64, Ordering::Relaxed);
    }
}

/// Spreads the queue's deliveries to each peer at most `per_second` apart.
#[derive(Debug)]
struct Pacer {
    interval: Duration,
    /// Each peer's next free slot.
    next: HashMap<[u8; 32], Instant>,
}

impl Pacer {
    fn new(per_second: u32) -> Self {
        Self {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: HashMap::new(),
        }
    }

    /// Books `peer`'s first free slot at or after `earliest`.
    fn reserve(&mut self, peer: [u8; 32], earliest: Instant) -> Instant {
        if self.next.len() >= allium_common::node_list::MAX_NODES {
            let now = Instant::now();
            self.next.retain(|_, next| *next > now);
        }
        let next = self.next.entry(peer).or_insert(earliest);
        let slot = (*next).max(earliest);
        *next = slot + self.interval;
        slot
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

/// One attempt at a delivery.
async fn attempt(node: Arc<Node>, delivery: Delivery) -> (Delivery, Result<(), PushError>) {
    let lag = delivery.since.elapsed();
    node.metrics
        .replication_lag_ms
        .store(u64::try_from(lag.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    let peer = node.directory.current().and_then(|s| match &delivery.job {
        Job::Push { peer, .. } | Job::Forward { peer, .. } => s.list.find(peer).cloned(),
    });
    let result = match (&delivery.job, peer) {
        (_, None) => Err(PushError::UnknownPeer),
        (Job::Push { messages, .. }, Some(peer)) => {
            let call = push_call(&node, &peer, messages, node.config.hop_timeout());
            match send_push(node.peers.links(), call).await {
                Ok(mut answer) => {
                    learn_deletions(&node, std::mem::take(&mut answer.deleted)).await;
                    complete(answer, messages.len()).map(drop)
                }
                Err(e) => Err(e),
            }
        }
        (Job::Forward { request, .. }, Some(peer)) => send_forward(&node, &peer, request).await,
    };
    (delivery, result)
}

/// Books an attempt's outcome; returns the delivery if it is to be tried
/// again.
fn settle(node: &Node, delivery: Delivery, result: Result<(), PushError>) -> Option<Delivery> {
    match result {
        Ok(()) => {
            Metrics::inc(&node.metrics.replicated_out);
            if let Job::Push { peer, .. } = &delivery.job {
                node.replicator.set_stalled(*peer, false);
            }
            None
        }
        // The peer left the list: it is no longer owed anything.
        Err(PushError::UnknownPeer) => None,
        Err(e) if !delivery.may_retry() => {
            tracing::warn!(error = %e, attempts = delivery.attempt + 1, "replication given up; anti-entropy will repair it");
            None
        }
        Err(_) => Some(delivery),
    }
}

/// The nodes that gain an account, by its (old swarm, new swarm).
type GainedBySwarms = HashMap<(Option<u64>, u64), Vec<[u8; 32]>>;

/// After a node-list change, pushes every live message this node holds to
/// each node that holds its account's mailbox under the new list but did
/// not under the old one: a node that joined or moved into the account's
/// swarm, and, when the account moved to another swarm (its swarm was
/// dissolved or split, or a new swarm id came between), every member of the
/// swarm it moved to. Any holder pushes; pushes are idempotent.
pub async fn hand_over(node: Arc<Node>, change: Change) {
    let Some(old) = change.old else {
        // The first list since this node started: it asks its swarm for a
        // sync instead (see `request_sync`).
        return;
    };
    let new = change.new;
    let me = *node.identity.ed25519_pk();
    // Who gains an account depends only on its old and new swarm: computed
    // once per pair.
    let gained: Arc<std::sync::Mutex<GainedBySwarms>> = Arc::default();
    let targets = {
        let (old, new, gained) = (Arc::clone(&old), Arc::clone(&new), Arc::clone(&gained));
        move |account: &allium_common::MailboxId| -> Vec<[u8; 32]> {
            let Some(new_swarm) = new.swarm_of(account) else {
                return Vec::new();
            };
            let old_swarm = old.swarm_of(account);
            let mut gained = gained.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            gained
                .entry((old_swarm, new_swarm))
                .or_insert_with(|| {
                    new.members(new_swarm)
                        .into_iter()
                        .map(|n| n.ed25519.0)
                        .filter(|k| *k != me && !old.holds(k, account))
                        .collect()
                })
                .clone()
        }
    };
    let filter = {
        let targets = targets.clone();
        move |account: &allium_common::MailboxId, _: &str| !targets(account).is_empty()
    };
    let mut handed = 0usize;
    let mut pages = LivePages::new(filter, "hand-over");
    while let Some(messages) = pages.next(&node).await {
        let mut by_target: BTreeMap<[u8; 32], Vec<NewMessage>> = BTreeMap::new();
        for message in messages {
            for peer in targets(&message.account) {
                by_target.entry(peer).or_default().push(message.clone());
            }
        }
        for (peer, messages) in by_target {
            handed += messages.len();
            node.replicator.enqueue_push(&node, peer, &messages).await;
        }
    }
    if handed > 0 {
        tracing::info!(copies = handed, "hand-over queued");
    }
}

/// Pushes to each of `nodes` the messages of its swarm this node holds (a
/// sync a restarted member asked for).
async fn push_swarm_messages(node: Arc<Node>, nodes: Vec<Hex32>) {
    let Some(snap) = node.directory.current() else {
        return;
    };
    let me = Hex32(*node.identity.ed25519_pk());
    // Swarms that gained members, with those members (never this node).
    let mut targets: BTreeMap<u64, Vec<[u8; 32]>> = BTreeMap::new();
    for key in nodes.iter().filter(|k| **k != me) {
        if let Some(entry) = snap.list.find(&key.0) {
            targets.entry(entry.swarm_id).or_default().push(key.0);
        }
    }
    if targets.is_empty() {
        return;
    }
    let wanted: Vec<u64> = targets.keys().copied().collect();
    let snap_for_filter = Arc::clone(&snap);
    let filter = move |account: &allium_common::MailboxId, _: &str| {
        snap_for_filter.swarm_of(account).is_some_and(|s| wanted.contains(&s))
    };
    let mut pages = LivePages::new(filter, "sync");
    while let Some(messages) = pages.next(&node).await {
        let mut by_swarm: BTreeMap<u64, Vec<NewMessage>> = BTreeMap::new();
        for message in messages {
            if let Some(swarm) = snap.swarm_of(&message.account) {
                by_swarm.entry(swarm).or_default().push(message);
            }
        }
        for (swarm, messages) in by_swarm {
            for peer in targets.get(&swarm).into_iter().flatten() {
                node.replicator.enqueue_push(&node, *peer, &messages).await;
            }
        }
    }
}

/// Every live message a filter (account, hash) picks, a page at a time;
/// ends with a warning naming what it was for on a storage failure.
struct LivePages<F> {
    filter: F,
    what: &'static str,
    after: Option<u64>,
}

impl<F: Fn(&allium_common::MailboxId, &str) -> bool + Clone + Send + 'static> LivePages<F> {
    fn new(filter: F, what: &'static str) -> Self {
        Self {
            filter,
            what,
            after: Some(0),
        }
    }

    /// The next page (possibly empty), or `None` at the end.
    async fn next(&mut self, node: &Node) -> Option<Vec<NewMessage>> {
        let after = self.after?;
        match node
            .storage
            .live_page(after, now_ms(), HAND_OVER_PAGE, self.filter.clone())
            .await
        {
            Ok(page) => {
                self.after = page.next;
                Some(page.rows.into_iter().map(|r| r.message).collect())
            }
            Err(e) => {
                tracing::warn!(error = %e, "{} stopped: storage failure", self.what);
                self.after = None;
                None
            }
        }
    }
}

/// Accepts a push from another node (`POST /swarm/v1/push`).
///
/// A push is taken only from a node that holds those messages by right:
/// for each message, the sender must be a member of the account's swarm in
/// the node list in force, or have been one under a list replaced recently
/// (a hand-over after a change) and the message must be older than that
/// change; and the account must map to this node's swarm. Anything else is
/// not stored and not confirmed.
pub async fn receive_push(node: &Node, headers: &HeaderMap, body: &[u8]) -> Result<PushResponse, ApiError> {
    let snap = node.directory.current().ok_or_else(ApiError::not_ready)?;
    // Not in a swarm yet (e.g. just joined and the list is on its way): the
    // sender retries, rather than this node dropping what it cannot place.
    if snap.my_swarm.is_none() {
        return Err(ApiError::not_ready());
    }
    let (sender, _) = node.peers.signed_by(headers, &push_signed_bytes(body))?;
    if snap.list.find(&sender).is_none() && !node.directory.recently_listed(&sender) {
        return Err(unauthorized("the sender is not in this node's node list"));
    }
    node.peers.spend(Budget::Push, &sender)?;
    let request: PushRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed push: {e}")))?;
    if request.to.0 != *node.identity.ed25519_pk() {
        return Err(ApiError::new(ErrorCode::BadRequest, "this push is for another node"));
    }
    let now = now_ms();
    check_clock(request.sent, now).map_err(ApiError::from)?;
    if request.messages.len() > MAX_PUSH_MESSAGES {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("a push holds at most {MAX_PUSH_MESSAGES} messages"),
        ));
    }
    let latest_expiry = now.saturating_add(MAX_TTL_MS + MAX_CLOCK_SKEW_MS);
    let (accepted, refused): (Vec<PushedMessage>, Vec<PushedMessage>) = request.messages.into_iter().partition(|m| {
        snap.is_mine(&m.pubkey)
            // A former member hands over only what it held when it left.
            && node
                .directory
                .held_until(&sender, &m.pubkey)
                .is_some_and(|until| m.timestamp <= until.saturating_add(MAX_CLOCK_SKEW_MS))
            && m.data.0.len() <= MAX_DATA_LEN
            && m.expiry > now
            && m.expiry <= latest_expiry
            && m.timestamp <= now.saturating_add(MAX_CLOCK_SKEW_MS)
            && m.expiry.saturating_sub(m.timestamp) <= MAX_TTL_MS
            && m.owner_signed()
    });
    if !refused.is_empty() {
        node.metrics
            .push_refused
            .fetch_add(refused.len() as u64, Ordering::Relaxed);
        tracing::debug!(
            peer = %hex::encode(sender),
            refused = refused.len(),
            "pushed messages refused: not this node's, or the sender does not hold them by right"
        );
    }
    let accepted: Vec<NewMessage> = accepted
        .into_iter()
        .map(|m| {
            let owner_sig = match (m.pubkey_ed25519, m.signature) {
                (Some(ed), Some(sig)) if m.namespace != Namespace::DEFAULT => Some(OwnerSig {
                    ed25519: ed.0,
                    signature: sig.0,
                }),
                _ => None,
            };
            NewMessage::new(m.pubkey, m.namespace, m.timestamp, m.expiry, m.data.0)
                .signed_by_owner(owner_sig)
                .with_credential(m.credential.map(|c| c.0))
                .with_chunk(m.chunk)
        })
        .collect();
    let hashes: Vec<String> = accepted.iter().map(|m| m.hash.clone()).collect();
    let results = node.storage.insert_batch(accepted, now).await?;
    let mut confirmations = Vec::with_capacity(hashes.len());
    let mut deleted = Vec::new();
    for (hash, result) in hashes.iter().zip(results) {
        match result {
            Ok(inserted) => {
                if inserted == Inserted::New {
                    Metrics::inc(&node.metrics.replicated_in);
                }
                if inserted == Inserted::Deleted
                    && let Ok(Some(request)) = node.storage.deletion_proof(hash.clone()).await
                    && let Ok(request) = serde_json::from_str(&request)
                {
                    deleted.push(DeletionProof {
                        hash: hash.clone(),
                        request,
                    });
                }
                confirmations.push(confirmation(node, hash));
            }
            Err(e) => tracing::debug!(error = %e, "pushed message not stored"),
        }
    }
    Ok(PushResponse { confirmations, deleted })
}

/// Applies the owner's deletions a peer proved in its answer to a push:
/// this node missed them (it still had the messages). Each is the owner's
/// signed request, checked again here as a request passed on by a peer.
async fn learn_deletions(node: &Node, proofs: Vec<DeletionProof>) {
    for proof in proofs {
        let call = match allium_common::rpc::Request::from_json(proof.request.to_string().as_bytes()) {
            Ok(allium_common::rpc::Request::Single(
                call @ (allium_common::rpc::Call::Delete(_) | allium_common::rpc::Call::DeleteAll(_)),
            )) => call,
            _ => continue,
        };
        match crate::rpc::execute(node, call, crate::rpc::Origin::Peer, 0).await {
            Ok(answer) => {
                let gone = answer["deleted"].as_array().map_or(0, Vec::len);
                Metrics::inc(&node.metrics.deletions_learned);
                tracing::debug!(hash = %proof.hash, deleted = gone, "applied a deletion a peer proved");
            }
            Err(e) => tracing::debug!(hash = %proof.hash, error = %e.message, "a peer's deletion proof was refused"),
        }
    }
}

/// Asks every other member of this node's swarm to push it the swarm's
/// messages. A node does this when it (re)starts and finds itself listed,
/// so it recovers what was stored while it was down even if the nodes that
/// took those stores (and held their retries) have died since.
pub async fn request_sync(node: Arc<Node>) {
    let Some(snap) = node.directory.current() else { return };
    for peer in swarm_peers(&node, &snap) {
        let body = serde_json::to_vec(&SyncRequest {
            to: peer.ed25519,
            sent: now_ms(),
        })
        .unwrap_or_default();
        let call = Peers::signed_call(
            &node.identity,
            &peer,
            "/swarm/v1/sync",
            sync_signed_bytes,
            body,
            node.config.hop_timeout(),
            MAX_PUSH_ANSWER,
        );
        match node.peers.call(call).await {
            Ok(answer) if answer.is_success() => {}
            _ => tracing::debug!(peer = %peer.address, "sync request not accepted"),
        }
    }
}

/// Handles `POST /swarm/v1/sync` from a member of this node's swarm.
pub fn receive_sync(node: &Arc<Node>, headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    let snap = node.directory.current().ok_or_else(ApiError::not_ready)?;
    let sender = same_swarm_sender(node, &snap, headers, &sync_signed_bytes(body))?;
    let request: SyncRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed sync request: {e}")))?;
    fresh_and_for_me(node, request.to, request.sent)?;
    node.peers.first_time(&sender.1, now_ms())?;
    tokio::spawn(push_swarm_messages(Arc::clone(node), vec![Hex32(sender.0)]));
    Ok(())
}

/// The sender (and its signature) of a signed control request, which must
/// be a member of this node's swarm with budget left.
pub(crate) fn same_swarm_sender(
    node: &Node,
    snap: &Snapshot,
    headers: &HeaderMap,
    signed: &[u8],
) -> Result<([u8; 32], [u8; 64]), ApiError> {
    let sender = node.peers.signed_by(headers, signed)?;
    let same_swarm = snap.my_swarm.is_some() && snap.list.find(&sender.0).map(|n| n.swarm_id) == snap.my_swarm;
    if !same_swarm {
        return Err(unauthorized("the sender is not in this node's swarm"));
    }
    node.peers.spend(Budget::Control, &sender.0)?;
    Ok(sender)
}

/// Refuses a control request addressed to another node or signed outside
/// the clock window.
pub(crate) fn fresh_and_for_me(node: &Node, to: Hex32, sent: u64) -> Result<(), ApiError> {
    if to.0 != *node.identity.ed25519_pk() {
        return Err(ApiError::new(ErrorCode::BadRequest, "this request is for another node"));
    }
    check_clock(sent, now_ms()).map_err(ApiError::from)
}

fn unauthorized(why: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, why.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(n: u64, len: usize) -> NewMessage {
        NewMessage::new(
            allium_common::AccountId::from_x25519([7; 32]).into(),
            Namespace::DEFAULT,
            1_800_000_000_000 + n,
            1_800_000_600_000,
            vec![0; len],
        )
    }

    #[test]
    fn pushes_are_filled_up_to_the_count_and_the_body_budget() {
        let small: Vec<NewMessage> = (0..200).map(|n| message(n, 100)).collect();
        let sizes: Vec<usize> = push_batches(&small).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![64, 64, 64, 8]);

        let large: Vec<NewMessage> = (0..20).map(|n| message(n, MAX_DATA_LEN)).collect();
        let batches = push_batches(&large);
        assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), 20, "nothing lost");
        for batch in &batches {
            let body = serde_json::to_vec(&PushRequest {
                to: Hex32([1; 32]),
                sent: 1_800_000_000_000,
                messages: batch
                    .iter()
                    .map(|m| PushedMessage {
                        chunk: None,
                        pubkey: m.account,
                        namespace: m.namespace,
                        timestamp: m.timestamp_ms,
                        expiry: m.expiry_ms,
                        data: Base64Bytes(m.data.clone()),
                        pubkey_ed25519: Some(Hex32([2; 32])),
                        signature: Some(allium_common::encoding::Sig64([3; 64])),
                        credential: None,
                    })
                    .collect(),
            })
            .unwrap();
            assert!(
                body.len() <= MAX_PUSH_BODY,
                "{} messages make {} bytes",
                batch.len(),
                body.len()
            );
        }
        assert!(batches[0].len() >= 8, "eight of the largest fit in one push");
        assert!(push_batches(&[]).is_empty());
    }

    #[test]
    fn the_pacer_spaces_each_peer_and_leaves_others_alone() {
        let mut pacer = Pacer::new(50);
        let t0 = Instant::now();
        let slots: Vec<Duration> = (0..4).map(|_| pacer.reserve([1; 32], t0) - t0).collect();
        assert_eq!(slots, [0, 20, 40, 60].map(Duration::from_millis));
        assert_eq!(pacer.reserve([2; 32], t0), t0, "another peer is not held back");
        // A retry due later than the peer's next slot goes at its own time.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(pacer.reserve([1; 32], later), later);
        assert_eq!(pacer.reserve([1; 32], t0) - t0, Duration::from_millis(5020));
    }
}
