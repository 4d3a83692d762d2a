//! Periodic anti-entropy inside a swarm.
//!
//! Replication before the answer, the retry queue, hand-over and the sync a
//! restarted node asks for cover most failures, but not all: a node that was
//! hung (not restarted) while the nodes that took a store and held its
//! retries died never learns of that store. So every
//! `anti_entropy_interval_ms` (±25 %) a node sends a [`SwarmDigest`] of the
//! live messages it holds for its swarm to one random swarm peer; the peer
//! compares it with its own and answers the buckets that differ. The node
//! then lists the hashes it holds in those buckets ([`ReconcileRequest`]),
//! and the peer pushes back the messages it holds there that are not
//! listed: a repair moves what is missing, not whole buckets. Each round
//! repairs one direction (what the sender lacks); the peer repairs the
//! other in its own rounds. Tombstones keep deleted messages from coming
//! back this way.

use std::sync::Arc;
use std::time::Duration;

use std::collections::HashSet;

use allium_common::encoding::Base64Bytes;
use allium_common::node_list::NodeEntry;
use allium_common::peer::{
    BucketHashes, DIGEST_BUCKETS, DigestRequest, DigestResponse, MAX_PUSH_MESSAGES, MAX_RECONCILE_HASHES,
    ReconcileRequest, ReconcileResponse, SwarmDigest, digest_signed_bytes, reconcile_signed_bytes,
};
use allium_common::rpc::ErrorCode;
use axum::http::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api_error::ApiError;
use crate::directory::Snapshot;
use crate::metrics::Metrics;
use crate::peer::Peers;
use crate::replication::{fresh_and_for_me, same_swarm_sender, swarm_peers};
use crate::state::{Node, now_ms};
use crate::storage::StorageError;

/// Hashes read per storage page while building a digest.
const DIGEST_PAGE: usize = 1024;
/// Largest answer to a digest (a list of at most 4,096 bucket numbers).
const MAX_DIGEST_ANSWER: usize = 64 * 1024;
/// Hashes of one bucket a node reads at most when answering a reconcile:
/// a bucket holds 1/4,096 of the swarm's messages, about 244 in a store of
/// a million.
const BUCKET_READ_LIMIT: usize = 4 * MAX_RECONCILE_HASHES;
/// Messages one reconcile pushes at most (their hashes are held in memory
/// until pushed); the rest waits for a later round.
const MAX_PUSHED_PER_RECONCILE: usize = 65_536;
/// How often, and how long apart, a round asks a busy peer again.
const BUSY_RETRIES: u32 = 20;
const BUSY_WAIT: Duration = Duration::from_millis(500);

/// State of the digest exchange.
#[derive(Debug)]
pub struct AntiEntropy {
    /// One digest answered at a time, its repair push included: both scan
    /// the store, so peers asking often cannot make the node scan in
    /// parallel or pile up pushes.
    answering: Arc<Semaphore>,
}

impl Default for AntiEntropy {
    fn default() -> Self {
        Self {
            answering: Arc::new(Semaphore::new(1)),
        }
    }
}

/// The digest of the live messages this node holds for its own swarm.
pub async fn digest_of(node: &Node, snap: &Snapshot) -> Result<SwarmDigest, StorageError> {
    let mut digest = SwarmDigest::default();
    let Some(mine) = snap.my_swarm else {
        return Ok(digest);
    };
    let now = now_ms();
    let mut after = 0;
    loop {
        let page = node.storage.live_hashes(after, now, DIGEST_PAGE).await?;
        for (account, hash) in &page.rows {
            if snap.swarm_of(account) == Some(mine) {
                digest.add(hash);
            }
        }
        match page.next {
            Some(n) => after = n,
            None => return Ok(digest),
        }
    }
}

/// Sends this node's digest to a random swarm peer every interval, until
/// the task is dropped. Does nothing if the interval is 0.
pub async fn run(node: Arc<Node>) {
    let interval = node.config.timing.anti_entropy_interval_ms;
    if interval == 0 {
        return;
    }
    loop {
        // ±25 % so the members of a swarm do not all scan at once.
        let jitter = u64::from_le_bytes(allium_common::sodium::random_array()) % (interval / 2 + 1);
        tokio::time::sleep(Duration::from_millis(interval - interval / 4 + jitter)).await;
        if let Err(e) = round(&node).await {
            tracing::debug!(error = %e, "anti-entropy round failed");
        }
    }
}

/// One round: digest to one random peer, then what this node holds in the
/// buckets that differ. Returns those buckets (the peer pushes this node
/// what it lacks in them).
pub async fn round(node: &Arc<Node>) -> Result<Vec<usize>, String> {
    let snap = node.directory.current().ok_or("no node list yet")?;
    let peers = swarm_peers(node, &snap);
    let peer = peers
        .get(allium_common::sodium::random_index(peers.len()))
        .ok_or("no swarm peers")?;
    let digest = digest_of(node, &snap).await.map_err(|e| e.to_string())?;
    let body = serde_json::to_vec(&DigestRequest {
        to: peer.ed25519,
        sent: now_ms(),
        digest,
    })
    .map_err(|e| e.to_string())?;
    let answer: DigestResponse = call_peer(
        node,
        peer,
        "/swarm/v1/digest",
        digest_signed_bytes,
        body,
        MAX_DIGEST_ANSWER,
    )
    .await?
    .parse()
    .map_err(|e| e.to_string())?;
    Metrics::inc(&node.metrics.anti_entropy_rounds);
    if !answer.differing.is_empty() {
        let pushing = reconcile(node, &snap, peer, &answer.differing).await?;
        if pushing > 0 {
            tracing::info!(peer = %peer.address, buckets = answer.differing.len(), messages = pushing, "anti-entropy: a peer is pushing what this node lacks");
        }
    }
    Ok(answer.differing)
}

/// Tells `peer` what this node holds in the `differing` buckets, in
/// requests of at most [`MAX_RECONCILE_HASHES`] hashes; returns how many
/// messages the peer said it is pushing back.
async fn reconcile(node: &Arc<Node>, snap: &Snapshot, peer: &NodeEntry, differing: &[usize]) -> Result<u64, String> {
    let mine = snap.my_swarm.ok_or("not in a swarm")?;
    let now = now_ms();
    let (mut batch, mut listed, mut pushing) = (Vec::new(), 0, 0);
    for &bucket in differing.iter().take(DIGEST_BUCKETS) {
        let Some(prefix) = SwarmDigest::bucket_prefix(bucket) else {
            continue;
        };
        let rows = node
            .storage
            .hashes_with_prefix(prefix, now, MAX_RECONCILE_HASHES)
            .await
            .map_err(|e| e.to_string())?;
        let hashes: Vec<u8> = rows
            .iter()
            .filter(|(account, _)| snap.swarm_of(account) == Some(mine))
            .filter_map(|(_, hash)| raw_hash(hash))
            .flatten()
            .collect();
        let count = hashes.len() / 32;
        if listed + count > MAX_RECONCILE_HASHES && !batch.is_empty() {
            pushing += send_reconcile(node, peer, std::mem::take(&mut batch)).await?;
            listed = 0;
        }
        listed += count;
        batch.push(BucketHashes {
            bucket: u16::try_from(bucket).map_err(|_| "bucket out of range")?,
            hashes: Base64Bytes(hashes),
        });
    }
    if !batch.is_empty() {
        pushing += send_reconcile(node, peer, batch).await?;
    }
    Ok(pushing)
}

/// Sends one reconcile request, waiting while the peer is busy with
/// another (429) up to [`BUSY_RETRIES`] times.
async fn send_reconcile(node: &Arc<Node>, peer: &NodeEntry, buckets: Vec<BucketHashes>) -> Result<u64, String> {
    for _ in 0..BUSY_RETRIES {
        let body = serde_json::to_vec(&ReconcileRequest {
            to: peer.ed25519,
            sent: now_ms(),
            buckets: buckets.clone(),
        })
        .map_err(|e| e.to_string())?;
        match call_peer(node, peer, "/swarm/v1/reconcile", reconcile_signed_bytes, body, 1024).await {
            Ok(answer) => {
                let answer: ReconcileResponse = answer.parse().map_err(|e| e.to_string())?;
                return Ok(answer.pushing);
            }
            Err(CallOutcome::Busy) => tokio::time::sleep(BUSY_WAIT).await,
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!("{}: busy; the rest waits for the next round", peer.address))
}

/// Why a call to a peer did not succeed.
#[derive(Debug, thiserror::Error)]
enum CallOutcome {
    #[error("busy (429)")]
    Busy,
    #[error("{0}")]
    Failed(String),
}

impl From<CallOutcome> for String {
    fn from(e: CallOutcome) -> Self {
        e.to_string()
    }
}

/// A signed control call to `peer`; a 2xx answer, or why not.
async fn call_peer(
    node: &Node,
    peer: &NodeEntry,
    path: &'static str,
    signed: fn(&[u8]) -> Vec<u8>,
    body: Vec<u8>,
    max_answer: usize,
) -> Result<crate::peer::Answer, CallOutcome> {
    let call = Peers::signed_call(
        &node.identity,
        peer,
        path,
        signed,
        body,
        node.config.hop_timeout(),
        max_answer,
    );
    let answer = node
        .peers
        .call(call)
        .await
        .map_err(|e| CallOutcome::Failed(format!("{}: {e}", peer.address)))?;
    match answer.status {
        429 => Err(CallOutcome::Busy),
        _ if answer.is_success() => Ok(answer),
        status => Err(CallOutcome::Failed(format!("{}: answered {status}", peer.address))),
    }
}

/// The 32 raw bytes of a base64 message hash.
fn raw_hash(hash: &str) -> Option<[u8; 32]> {
    allium_common::encoding::from_base64(hash).ok()?.try_into().ok()
}

/// Handles `POST /swarm/v1/digest` from a member of this node's swarm:
/// compares digests and answers the buckets that differ.
pub async fn receive(node: &Arc<Node>, headers: &HeaderMap, body: &[u8]) -> Result<DigestResponse, ApiError> {
    let snap = node.directory.current().ok_or_else(ApiError::not_ready)?;
    let (_, signature) = same_swarm_sender(node, &snap, headers, &digest_signed_bytes(body))?;
    let request: DigestRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed digest request: {e}")))?;
    fresh_and_for_me(node, request.to, request.sent)?;
    node.peers.first_time(&signature, now_ms())?;
    let _busy = busy_or_429(node)?;
    let own = digest_of(node, &snap).await.map_err(store_failed)?;
    let differing = own.differing(&request.digest);
    node.metrics
        .anti_entropy_buckets_differing
        .fetch_add(differing.len() as u64, std::sync::atomic::Ordering::Relaxed);
    Ok(DigestResponse { differing })
}

/// Handles `POST /swarm/v1/reconcile` from a member of this node's swarm:
/// queues for it this node's messages of the swarm in the listed buckets
/// that it did not list.
pub async fn receive_reconcile(
    node: &Arc<Node>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<ReconcileResponse, ApiError> {
    let snap = node.directory.current().ok_or_else(ApiError::not_ready)?;
    let (sender, signature) = same_swarm_sender(node, &snap, headers, &reconcile_signed_bytes(body))?;
    let Some(mine) = snap.my_swarm else {
        return Err(ApiError::not_ready());
    };
    let request: ReconcileRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed reconcile request: {e}")))?;
    request
        .check()
        .map_err(|why| ApiError::new(ErrorCode::BadRequest, format!("malformed reconcile request: {why}")))?;
    fresh_and_for_me(node, request.to, request.sent)?;
    node.peers.first_time(&signature, now_ms())?;
    let busy = busy_or_429(node)?;
    let now = now_ms();
    let mut lacking = Vec::new();
    for listed in &request.buckets {
        if lacking.len() >= MAX_PUSHED_PER_RECONCILE {
            break;
        }
        let Some(prefix) = SwarmDigest::bucket_prefix(usize::from(listed.bucket)) else {
            continue;
        };
        let has: HashSet<&[u8]> = listed.hashes.0.chunks_exact(32).collect();
        let rows = node
            .storage
            .hashes_with_prefix(prefix, now, BUCKET_READ_LIMIT)
            .await
            .map_err(store_failed)?;
        lacking.extend(rows.into_iter().filter_map(|(account, hash)| {
            let raw = raw_hash(&hash)?;
            (snap.swarm_of(&account) == Some(mine) && !has.contains(&raw[..])).then_some(hash)
        }));
        lacking.truncate(MAX_PUSHED_PER_RECONCILE);
    }
    let pushing = lacking.len() as u64;
    node.metrics
        .anti_entropy_messages_pushed
        .fetch_add(pushing, std::sync::atomic::Ordering::Relaxed);
    if !lacking.is_empty() {
        // Read and queued a push at a time; the queue's room bounds memory.
        let node = Arc::clone(node);
        tokio::spawn(async move {
            for hashes in lacking.chunks(MAX_PUSH_MESSAGES) {
                match node.storage.messages_with_hashes(hashes.to_vec(), now_ms()).await {
                    Ok(messages) => node.replicator.enqueue_push(&node, sender, &messages).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "anti-entropy push stopped: storage failure");
                        break;
                    }
                }
            }
            drop(busy);
        });
    }
    Ok(ReconcileResponse { pushing })
}

/// The right to compare or reconcile now, or a 429: one at a time, since
/// each reads the store at length.
fn busy_or_429(node: &Node) -> Result<OwnedSemaphorePermit, ApiError> {
    Arc::clone(&node.anti_entropy.answering)
        .try_acquire_owned()
        .map_err(|_| ApiError::new(ErrorCode::RateLimited, "comparing with another peer; try again later"))
}

fn store_failed(e: StorageError) -> ApiError {
    tracing::warn!(error = %e, "anti-entropy: cannot read the store");
    ApiError::new(ErrorCode::Internal, "cannot read the message store")
}
