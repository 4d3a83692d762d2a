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
//! queue worked by [`run_queue`], with exponential backoff.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use allium_common::encoding::{self, Base64Bytes, Hex32};
use allium_common::identity;
use allium_common::node_list::NodeEntry;
use allium_common::peer::{
    FORWARDED_HEADER, MAX_PUSH_MESSAGES, NODE_HEADER, PushRequest, PushResponse, PushedMessage, SIGNATURE_HEADER,
    SyncRequest, push_signed_bytes, sync_signed_bytes,
};
use allium_common::rpc::{ErrorCode, MAX_CLOCK_SKEW_MS, MAX_DATA_LEN, MAX_TTL_MS, SwarmConfirmation, check_clock};
use serde_json::Value;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::api_error::ApiError;
use crate::directory::{Change, Snapshot};
use crate::metrics::Metrics;
use crate::rpc::confirmation;
use crate::state::{Node, now_ms};
use crate::storage::{Inserted, NewMessage};

/// Deliveries waiting for a retry, at most.
pub const QUEUE_CAPACITY: usize = 4096;
/// Deliveries in flight at once from the queue.
const MAX_IN_FLIGHT: usize = 16;
/// Attempts before a delivery is given up (the hand-over of the next node
/// list change covers what is given up).
const MAX_ATTEMPTS: u32 = 10;
/// How long a store waits for its peers before answering.
const SYNC_TIMEOUT: Duration = Duration::from_secs(2);
/// After a peer let a store wait the whole [`SYNC_TIMEOUT`], stores stop
/// waiting for it this long (its copies go through the retry queue), so a
/// hung peer costs one store 2 s, not every store until the seed drops it.
const STALL_FOR: Duration = Duration::from_secs(30);
/// Messages read from storage per hand-over page.
const HAND_OVER_PAGE: usize = 256;

/// A delivery to one peer.
#[derive(Debug)]
enum Job {
    /// Push messages.
    Push { peer: [u8; 32], messages: Vec<NewMessage> },
    /// Pass on an owner-signed request.
    Forward { peer: [u8; 32], request: Value },
}

/// A delivery with its retry state.
#[derive(Debug)]
pub struct Delivery {
    job: Job,
    attempt: u32,
    /// When the delivery was first queued (for the lag gauge).
    since: Instant,
}

/// The sending side of replication.
#[derive(Debug)]
pub struct Replicator {
    queue: mpsc::Sender<Delivery>,
    /// Bounds the deliveries waiting out a backoff (each is a sleeping
    /// task, outside the queue, so a long backoff never blocks the queue).
    backoffs: Arc<Semaphore>,
    /// Peers that timed out a synchronous push, and until when stores do
    /// not wait for them. At most one entry per swarm peer.
    stalled: std::sync::Mutex<HashMap<[u8; 32], Instant>>,
}

impl Replicator {
    /// A replicator and the queue [`run_queue`] must work.
    pub fn new() -> (Self, mpsc::Receiver<Delivery>) {
        let (queue, rx) = mpsc::channel(QUEUE_CAPACITY);
        (
            Self {
                queue,
                backoffs: Arc::new(Semaphore::new(QUEUE_CAPACITY)),
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
            );
        }
        let mut tasks = JoinSet::new();
        for peer in peers {
            let http = node.http.clone();
            let body = push_body(&messages);
            let signature = node.identity.sign(&push_signed_bytes(&body));
            let me = node.id_hex();
            tasks.spawn(async move {
                let result = tokio::time::timeout(SYNC_TIMEOUT, send_push(&http, &peer, &me, &signature, body)).await;
                (peer, result.unwrap_or(Err(PushError::Timeout)))
            });
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
                    );
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
    pub fn forward_signed(&self, node: &Node, snap: &Snapshot, request: Value) {
        for peer in swarm_peers(node, snap) {
            self.enqueue(
                node,
                Job::Forward {
                    peer: peer.ed25519.0,
                    request: request.clone(),
                },
            );
        }
    }

    /// Queues `messages` for `peer`, [`MAX_PUSH_MESSAGES`] per push.
    fn enqueue_push(&self, node: &Node, peer: [u8; 32], messages: &[NewMessage]) {
        for chunk in messages.chunks(MAX_PUSH_MESSAGES) {
            self.enqueue(
                node,
                Job::Push {
                    peer,
                    messages: chunk.to_vec(),
                },
            );
        }
    }

    fn enqueue(&self, node: &Node, job: Job) {
        let delivery = Delivery {
            job,
            attempt: 0,
            since: Instant::now(),
        };
        match self.queue.try_send(delivery) {
            Ok(()) => {
                node.metrics.replication_queue.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => tracing::warn!("replication queue full: a delivery was dropped; hand-over will repair it"),
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
    #[error("unreachable: {0}")]
    Http(#[from] reqwest::Error),
    #[error("refused with status {0}")]
    Status(u16),
    #[error("peer is no longer in the node list")]
    UnknownPeer,
    #[error("peer confirmed {got} of {sent} messages")]
    Incomplete { got: usize, sent: usize },
}

fn push_body(messages: &[NewMessage]) -> Vec<u8> {
    let request = PushRequest {
        sent: now_ms(),
        messages: messages
            .iter()
            .map(|m| PushedMessage {
                pubkey: m.account,
                namespace: m.namespace,
                timestamp: m.timestamp_ms,
                expiry: m.expiry_ms,
                data: Base64Bytes(m.data.clone()),
            })
            .collect(),
    };
    serde_json::to_vec(&request).unwrap_or_default()
}

async fn send_push(
    http: &reqwest::Client,
    peer: &NodeEntry,
    me: &str,
    signature: &[u8; 64],
    body: Vec<u8>,
) -> Result<PushResponse, PushError> {
    let response = http
        .post(format!("http://{}/swarm/v1/push", peer.address))
        .header(NODE_HEADER, me)
        .header(SIGNATURE_HEADER, encoding::to_base64(signature))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(PushError::Status(response.status().as_u16()));
    }
    Ok(response.json::<PushResponse>().await?)
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

async fn send_forward(http: &reqwest::Client, peer: &NodeEntry, request: &Value) -> Result<(), PushError> {
    let response = http
        .post(format!("http://{}/storage_rpc/v1", peer.address))
        .header(FORWARDED_HEADER, "1")
        .json(request)
        .send()
        .await?;
    // A 4xx from a peer (e.g. already deleted, clock moved on) will not get
    // better by retrying; only server-side failures are retried.
    if response.status().is_server_error() {
        return Err(PushError::Status(response.status().as_u16()));
    }
    Ok(())
}

/// Works the retry queue until the replicator is dropped.
pub async fn run_queue(node: Arc<Node>, mut rx: mpsc::Receiver<Delivery>) {
    let mut in_flight = JoinSet::new();
    while let Some(delivery) = rx.recv().await {
        node.metrics.replication_queue.fetch_sub(1, Ordering::Relaxed);
        while in_flight.len() >= MAX_IN_FLIGHT {
            in_flight.join_next().await;
        }
        let node = Arc::clone(&node);
        in_flight.spawn(async move { deliver(node, delivery).await });
    }
    while in_flight.join_next().await.is_some() {}
}

async fn deliver(node: Arc<Node>, delivery: Delivery) {
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
            let body = push_body(messages);
            let signature = node.identity.sign(&push_signed_bytes(&body));
            let me = node.id_hex();
            let sent = send_push(&node.http, &peer, &me, &signature, body);
            tokio::time::timeout(node.config.hop_timeout(), sent)
                .await
                .unwrap_or(Err(PushError::Timeout))
                .map(drop)
        }
        (Job::Forward { request, .. }, Some(peer)) => {
            let sent = send_forward(&node.http, &peer, request);
            tokio::time::timeout(node.config.hop_timeout(), sent)
                .await
                .unwrap_or(Err(PushError::Timeout))
        }
    };
    match result {
        Ok(()) => {
            Metrics::inc(&node.metrics.replicated_out);
            if let Job::Push { peer, .. } = &delivery.job {
                node.replicator.set_stalled(*peer, false);
            }
        }
        Err(PushError::UnknownPeer) => {}
        Err(e) if delivery.attempt + 1 >= MAX_ATTEMPTS => {
            tracing::warn!(error = %e, attempts = MAX_ATTEMPTS, "replication given up");
        }
        Err(_) => {
            let attempt = delivery.attempt + 1;
            let backoff = Duration::from_millis(250u64.saturating_mul(1 << attempt.min(6)));
            let retry = Delivery {
                job: delivery.job,
                attempt,
                since: delivery.since,
            };
            let Ok(permit) = Arc::clone(&node.replicator.backoffs).try_acquire_owned() else {
                tracing::warn!("too many deliveries waiting to retry: one was dropped; hand-over will repair it");
                return;
            };
            let queue = node.replicator.queue.clone();
            let node = Arc::clone(&node);
            tokio::spawn(async move {
                tokio::time::sleep(backoff).await;
                if queue.try_send(retry).is_ok() {
                    node.metrics.replication_queue.fetch_add(1, Ordering::Relaxed);
                }
                drop(permit);
            });
        }
    }
}

/// Pushes, to every node that has just joined a swarm, the messages of that
/// swarm's accounts that this node holds.
pub async fn hand_over(node: Arc<Node>, change: Change) {
    push_swarm_messages(node, change.newcomers.into_iter().collect()).await;
}

/// Pushes to each of `nodes` the messages of its swarm this node holds.
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
    let filter = move |account: &allium_common::AccountId, _: &str| {
        snap_for_filter.swarm_of(account).is_some_and(|s| wanted.contains(&s))
    };
    each_live_page(&node, filter, "hand-over", |messages| {
        let mut by_swarm: BTreeMap<u64, Vec<NewMessage>> = BTreeMap::new();
        for message in messages {
            if let Some(swarm) = snap.swarm_of(&message.account) {
                by_swarm.entry(swarm).or_default().push(message);
            }
        }
        for (swarm, messages) in by_swarm {
            for peer in targets.get(&swarm).into_iter().flatten() {
                node.replicator.enqueue_push(&node, *peer, &messages);
            }
        }
    })
    .await;
}

/// Reads every live message `filter` (account, hash) picks, a page at a
/// time, and hands each page to `each`; stops with a warning naming `what`
/// on a storage failure.
async fn each_live_page(
    node: &Node,
    filter: impl Fn(&allium_common::AccountId, &str) -> bool + Clone + Send + 'static,
    what: &str,
    mut each: impl FnMut(Vec<NewMessage>),
) {
    let mut after = 0;
    loop {
        let page = match node
            .storage
            .live_page(after, now_ms(), HAND_OVER_PAGE, filter.clone())
            .await
        {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "{what} stopped: storage failure");
                return;
            }
        };
        each(page.rows.into_iter().map(|r| r.message).collect());
        match page.next {
            Some(next) => after = next,
            None => return,
        }
    }
}

/// Queues, for `peer`, every live message this node holds that `wanted`
/// (account, hash) picks: the repair half of anti-entropy.
pub(crate) async fn push_wanted(
    node: Arc<Node>,
    peer: [u8; 32],
    wanted: impl Fn(&allium_common::AccountId, &str) -> bool + Clone + Send + 'static,
) {
    each_live_page(&node, wanted, "anti-entropy push", |messages| {
        node.replicator.enqueue_push(&node, peer, &messages);
    })
    .await;
}

/// Accepts a push from another node (`POST /swarm/v1/push`).
pub async fn receive_push(
    node: &Node,
    sender_hex: Option<&str>,
    signature_b64: Option<&str>,
    body: &[u8],
) -> Result<PushResponse, ApiError> {
    let snap = node.directory.current().ok_or_else(ApiError::not_ready)?;
    // Not in a swarm yet (e.g. just joined and the list is on its way): the
    // sender retries, rather than this node dropping what it cannot place.
    if snap.my_swarm.is_none() {
        return Err(ApiError::not_ready());
    }
    let sender = signed_by_peer(sender_hex, signature_b64, &push_signed_bytes(body))?;
    if snap.list.find(&sender).is_none() {
        return Err(unauthorized("the sender is not in this node's node list"));
    }
    let request: PushRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed push: {e}")))?;
    let now = now_ms();
    check_clock(request.sent, now).map_err(ApiError::from)?;
    if request.messages.len() > MAX_PUSH_MESSAGES {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("a push holds at most {MAX_PUSH_MESSAGES} messages"),
        ));
    }
    let latest_expiry = now.saturating_add(MAX_TTL_MS + MAX_CLOCK_SKEW_MS);
    let accepted: Vec<NewMessage> = request
        .messages
        .into_iter()
        .filter(|m| {
            snap.is_mine(&m.pubkey) && m.data.0.len() <= MAX_DATA_LEN && m.expiry > now && m.expiry <= latest_expiry
        })
        .map(|m| NewMessage::new(m.pubkey, m.namespace, m.timestamp, m.expiry, m.data.0))
        .collect();
    let hashes: Vec<String> = accepted.iter().map(|m| m.hash.clone()).collect();
    let results = node.storage.insert_batch(accepted, now).await?;
    let mut confirmations = Vec::with_capacity(hashes.len());
    for (hash, result) in hashes.iter().zip(results) {
        match result {
            Ok(inserted) => {
                if inserted == Inserted::New {
                    Metrics::inc(&node.metrics.replicated_in);
                }
                confirmations.push(confirmation(node, hash));
            }
            Err(e) => tracing::debug!(error = %e, "pushed message not stored"),
        }
    }
    Ok(PushResponse { confirmations })
}

/// Asks every other member of this node's swarm to push it the swarm's
/// messages. A node does this when it (re)starts and finds itself listed,
/// so it recovers what was stored while it was down even if the nodes that
/// took those stores (and held their retries) have died since.
pub async fn request_sync(node: Arc<Node>) {
    let Some(snap) = node.directory.current() else { return };
    let body = serde_json::to_vec(&SyncRequest { sent: now_ms() }).unwrap_or_default();
    let signature = encoding::to_base64(&node.identity.sign(&sync_signed_bytes(&body)));
    for peer in swarm_peers(&node, &snap) {
        let sent = node
            .http
            .post(format!("http://{}/swarm/v1/sync", peer.address))
            .header(NODE_HEADER, node.id_hex())
            .header(SIGNATURE_HEADER, signature.clone())
            .header("content-type", "application/json")
            .body(body.clone())
            .send();
        match tokio::time::timeout(node.config.hop_timeout(), sent).await {
            Ok(Ok(r)) if r.status().is_success() => {}
            _ => tracing::debug!(peer = %peer.address, "sync request not accepted"),
        }
    }
}

/// Handles `POST /swarm/v1/sync` from a member of this node's swarm.
pub fn receive_sync(
    node: &Arc<Node>,
    sender_hex: Option<&str>,
    signature_b64: Option<&str>,
    body: &[u8],
) -> Result<(), ApiError> {
    let snap = node.directory.current().ok_or_else(ApiError::not_ready)?;
    let sender = signed_by_peer(sender_hex, signature_b64, &sync_signed_bytes(body))?;
    let same_swarm = snap.my_swarm.is_some() && snap.list.find(&sender).map(|n| n.swarm_id) == snap.my_swarm;
    if !same_swarm {
        return Err(unauthorized("the sender is not in this node's swarm"));
    }
    let request: SyncRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed sync request: {e}")))?;
    check_clock(request.sent, now_ms()).map_err(ApiError::from)?;
    tokio::spawn(push_swarm_messages(Arc::clone(node), vec![Hex32(sender)]));
    Ok(())
}

fn unauthorized(why: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, why.to_owned())
}

/// The sender named in the node header, if its signature over `signed`
/// (from the signature header) verifies.
pub(crate) fn signed_by_peer(
    sender_hex: Option<&str>,
    signature_b64: Option<&str>,
    signed: &[u8],
) -> Result<[u8; 32], ApiError> {
    let sender = sender_hex
        .and_then(|h| encoding::hex_array::<32>(h).ok())
        .ok_or_else(|| unauthorized("missing or malformed x-allium-node header"))?;
    let signature: [u8; 64] = signature_b64
        .and_then(|s| encoding::from_base64(s).ok())
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| unauthorized("missing or malformed x-allium-signature header"))?;
    if identity::verify(&sender, signed, &signature) {
        Ok(sender)
    } else {
        Err(unauthorized("the peer's signature does not verify"))
    }
}
