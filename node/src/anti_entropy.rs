//! Periodic anti-entropy inside a swarm.
//!
//! Replication before the answer, the retry queue, hand-over and the sync a
//! restarted node asks for cover most failures, but not all: a node that was
//! hung (not restarted) while the nodes that took a store and held its
//! retries died never learns of that store. So every
//! `anti_entropy_interval_ms` (±25 %) a node sends a [`SwarmDigest`] of the
//! live messages it holds for its swarm to one random swarm peer; the peer
//! compares it with its own and pushes back its messages in the buckets that
//! differ. Each round repairs one direction (what the sender lacks); the
//! peer repairs the other in its own rounds. Tombstones keep deleted
//! messages from coming back this way.

use std::sync::Arc;
use std::time::Duration;

use allium_common::peer::{DigestRequest, DigestResponse, SwarmDigest, digest_signed_bytes};
use allium_common::rpc::ErrorCode;
use axum::http::HeaderMap;
use tokio::sync::Semaphore;

use crate::api_error::ApiError;
use crate::directory::Snapshot;
use crate::metrics::Metrics;
use crate::peer::{Call, Peers};
use crate::replication::{fresh_and_for_me, push_wanted, same_swarm_sender, swarm_peers};
use crate::state::{Node, now_ms};
use crate::storage::StorageError;

/// Hashes read per storage page while building a digest.
const DIGEST_PAGE: usize = 1024;
/// Largest answer to a digest (a list of at most 4,096 bucket numbers).
const MAX_DIGEST_ANSWER: usize = 64 * 1024;

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

/// One round: digest to one random peer. Returns the buckets it reported
/// as different (being pushed to this node).
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
    let call = Call {
        address: peer.address.clone(),
        path: "/swarm/v1/digest",
        headers: Peers::signed_headers(&node.identity, &digest_signed_bytes(&body)),
        content_type: "application/json",
        body,
        deadline: node.config.hop_timeout(),
        max_answer: MAX_DIGEST_ANSWER,
    };
    let response = node
        .peers
        .call(call)
        .await
        .map_err(|e| format!("{}: {e}", peer.address))?;
    if !response.is_success() {
        return Err(format!("{}: answered {}", peer.address, response.status));
    }
    let answer: DigestResponse = response.parse().map_err(|e| e.to_string())?;
    Metrics::inc(&node.metrics.anti_entropy_rounds);
    if !answer.differing.is_empty() {
        tracing::info!(peer = %peer.address, buckets = answer.differing.len(), "anti-entropy: a peer is pushing what this node lacks");
    }
    Ok(answer.differing)
}

/// Handles `POST /swarm/v1/digest` from a member of this node's swarm:
/// compares digests and pushes the sender this node's messages in the
/// buckets that differ.
pub async fn receive(node: &Arc<Node>, headers: &HeaderMap, body: &[u8]) -> Result<DigestResponse, ApiError> {
    let snap = node.directory.current().ok_or_else(ApiError::not_ready)?;
    let (sender, signature) = same_swarm_sender(node, &snap, headers, &digest_signed_bytes(body))?;
    let Some(mine) = snap.my_swarm else {
        return Err(ApiError::not_ready());
    };
    let request: DigestRequest = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed digest request: {e}")))?;
    fresh_and_for_me(node, request.to, request.sent)?;
    node.peers.first_time(&signature, now_ms())?;
    let Ok(busy) = Arc::clone(&node.anti_entropy.answering).try_acquire_owned() else {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "already comparing a digest; try again later",
        ));
    };
    let own = digest_of(node, &snap).await.map_err(|e| {
        tracing::warn!(error = %e, "anti-entropy: cannot read the store");
        ApiError::new(ErrorCode::Internal, "cannot read the message store")
    })?;
    let differing = own.differing(&request.digest);
    if !differing.is_empty() {
        node.metrics
            .anti_entropy_buckets_pushed
            .fetch_add(differing.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut buckets = vec![false; allium_common::peer::DIGEST_BUCKETS];
        for &b in &differing {
            if let Some(slot) = buckets.get_mut(b) {
                *slot = true;
            }
        }
        let wanted = move |account: &allium_common::AccountId, hash: &str| {
            snap.swarm_of(account) == Some(mine)
                && SwarmDigest::bucket_of(hash).is_some_and(|b| buckets.get(b).copied().unwrap_or(false))
        };
        let node = Arc::clone(node);
        tokio::spawn(async move {
            push_wanted(node, sender, wanted).await;
            drop(busy);
        });
    }
    Ok(DigestResponse { differing })
}
