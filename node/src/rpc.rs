//! Executes storage RPC requests: the body of `POST /storage_rpc/v1` and of
//! every onion request's final layer.
//!
//! Order of checks for each call: parse → stateless validation (limits,
//! clock window, the owner's signature or a group member's credential and
//! signature; see `allium_common::rpc`) → node list present → mailbox in
//! this node's swarm (else 421 with the right swarm) → a member's
//! credential not revoked (else 403) → rate limits → storage.

use std::collections::BTreeMap;
use std::time::Instant;

use allium_common::MailboxId;
use allium_common::encoding::Sig64;
use allium_common::rpc::{
    Call, DEFAULT_RETRIEVE_SIZE, DeleteResult, ErrorCode, ExpireResult, InfoResult, MAX_RETRIEVE_COUNT,
    MAX_RETRIEVE_SIZE, Namespace, PROTOCOL_VERSION, Request, RetrieveResult, StoreResult, SubResult, SwarmConfirmation,
};
use serde_json::{Value, json};

use crate::api_error::ApiError;
use crate::directory::Snapshot;
use crate::metrics::Metrics;
use crate::state::{Node, VERSION, ms, now_ms};
use crate::storage::{Inserted, NewMessage, OwnerSig};

/// Who sent the request: decides how old an owner's signing time may be
/// and whether owner-signed changes are passed on to the rest of the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client, directly or through an onion path: signing times within
    /// the clock window; changes are passed on.
    Client,
    /// A swarm peer passing on a client's signed request
    /// (`/swarm/v1/forward`): the signing time may be older; not passed on
    /// again.
    Peer,
}

/// A status and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: Value,
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status(),
            body: e.body(),
        }
    }
}

/// Parses and executes a request body.
pub async fn handle(node: &Node, body: &[u8], origin: Origin) -> Reply {
    let request = match Request::from_json(body) {
        Ok(r) => r,
        Err(e) => {
            node.metrics.count_request("other", e.code().status());
            return ApiError::from(e).into();
        }
    };
    match request {
        Request::Single(call) => {
            let method = call.method();
            let reply = match execute(node, call, origin, MAX_RETRIEVE_SIZE).await {
                Ok(body) => Reply { status: 200, body },
                Err(e) => e.into(),
            };
            node.metrics.count_request(method, reply.status);
            reply
        }
        Request::Batch(calls) => run_batch(node, calls, origin, false, "batch").await,
        Request::Sequence(calls) => run_batch(node, calls, origin, true, "sequence").await,
    }
}

async fn run_batch(node: &Node, calls: Vec<Call>, origin: Origin, stop_on_error: bool, name: &str) -> Reply {
    // The retrieves of a batch share one answer's worth of data.
    let retrieves = calls
        .iter()
        .filter(|c| matches!(c, Call::Retrieve(_) | Call::RetrievePublic(_)))
        .count();
    let share = MAX_RETRIEVE_SIZE / retrieves.max(1);
    let results: Vec<SubResult> = if stop_on_error {
        // `sequence`: in order, stopping at the first failure.
        let mut results = Vec::with_capacity(calls.len());
        for call in calls {
            let result = run_counted(node, call, origin, share).await;
            let failed = result.code != 200;
            results.push(result);
            if failed {
                break;
            }
        }
        results
    } else {
        // `batch`: independent calls run together, so their stores share
        // the store's group commit.
        futures_util::future::join_all(calls.into_iter().map(|call| run_counted(node, call, origin, share))).await
    };
    node.metrics.count_request(name, 200);
    Reply {
        status: 200,
        body: json!({ "results": results }),
    }
}

async fn run_counted(node: &Node, call: Call, origin: Origin, data_budget: usize) -> SubResult {
    let method = call.method();
    let (code, body) = match execute(node, call, origin, data_budget).await {
        Ok(body) => (200, body),
        Err(e) => (e.status(), e.body()),
    };
    node.metrics.count_request(method, code);
    SubResult { code, body }
}

/// The most messages and data bytes one retrieve answers: what the caller
/// asked for, within the node's bounds and the `data_budget` of its batch.
fn page_bounds(max_count: Option<u32>, max_size: Option<u64>, data_budget: usize) -> (usize, usize) {
    let count = max_count.map_or(MAX_RETRIEVE_COUNT, |c| (c as usize).clamp(1, MAX_RETRIEVE_COUNT));
    let size = max_size
        .map_or(DEFAULT_RETRIEVE_SIZE, |s| usize::try_from(s).unwrap_or(usize::MAX))
        .clamp(1, data_budget.max(1));
    (count, size)
}

/// Executes one call; a `retrieve` returns at most `data_budget` bytes of
/// message data (but always at least one message).
pub async fn execute(node: &Node, call: Call, origin: Origin, data_budget: usize) -> Result<Value, ApiError> {
    let now = now_ms();
    match origin {
        Origin::Client => call.validate(now)?,
        Origin::Peer => call.validate_forwarded(now)?,
    }
    let snapshot = node.directory.current();
    // Calls about a mailbox must reach its swarm.
    if let Some(mailbox) = call.mailbox() {
        let snap = snapshot.as_deref().ok_or_else(ApiError::not_ready)?;
        check_swarm(snap, mailbox)?;
    }
    // A group member signed: its group must not have revoked it.
    if let (Some(MailboxId::Group(group)), Some(member)) = (call.mailbox(), call.member_key())
        && node.storage.is_revoked(*group, *member, now).await?
    {
        Metrics::inc(&node.metrics.revoked_refused);
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the group revoked this member's credential",
        ));
    }
    match call {
        Call::Store(p) => {
            let now_instant = Instant::now();
            if !node.mailbox_limiter.allow(&p.pubkey, now_instant)
                || !node
                    .mailbox_bytes_limiter
                    .allow_cost(&p.pubkey, p.data.0.len() as f64, now_instant)
            {
                Metrics::inc(&node.metrics.rate_limited);
                return Err(ApiError::new(
                    ErrorCode::RateLimited,
                    "too many stores into this mailbox; slow down",
                ));
            }
            let owner_sig = match (&p.pubkey_ed25519, &p.signature) {
                (Some(ed), Some(sig)) if p.namespace != Namespace::DEFAULT => Some(OwnerSig {
                    ed25519: ed.0,
                    signature: sig.0,
                }),
                _ => None,
            };
            let msg = NewMessage::new(p.pubkey, p.namespace, p.timestamp, p.expiry(), p.data.0.clone())
                .signed_by_owner(owner_sig)
                .with_credential(p.credential.as_ref().map(|c| c.0.clone()))
                .with_chunk(p.chunk);
            let hash = msg.hash.clone();
            if node.storage.insert(msg.clone(), now).await? == Inserted::New {
                Metrics::inc(&node.metrics.stored_messages);
            }
            let mut swarm = BTreeMap::new();
            swarm.insert(node.id_hex(), confirmation(node, &hash));
            // Replicate before answering, so an acknowledged message is
            // already on every reachable swarm member if this node dies.
            if let Some(snap) = snapshot.as_deref() {
                swarm.extend(node.replicator.replicate_now(node, snap, vec![msg]).await);
            }
            Ok(to_value(&StoreResult { hash, swarm }))
        }
        Call::Retrieve(p) => {
            let (max_count, max_size) = page_bounds(p.max_count, p.max_size, data_budget);
            let last = p.last_hash.clone().filter(|h| !h.is_empty());
            let waiting = match p.wait_ms {
                Some(w) if w > 0 => node.waiters.subscribe(p.pubkey, p.namespace).map(|s| (s, w)),
                _ => None,
            };
            let mut found = node
                .storage
                .retrieve(p.pubkey, p.namespace, last.clone(), max_count, max_size, now)
                .await?;
            if found.messages.is_empty()
                && let Some((subscription, wait)) = waiting
                && subscription.wait(ms(wait)).await
            {
                found = node
                    .storage
                    .retrieve(p.pubkey, p.namespace, last, max_count, max_size, now_ms())
                    .await?;
            }
            Ok(to_value(&RetrieveResult {
                messages: found.messages,
                more: found.more,
            }))
        }
        Call::RetrievePublic(p) => {
            // Anyone may ask, so no long-poll: a held request is the
            // owner's to ask for.
            let (max_count, max_size) = page_bounds(p.max_count, p.max_size, data_budget);
            let last = p.last_hash.clone().filter(|h| !h.is_empty());
            let found = node
                .storage
                .retrieve(p.pubkey, p.namespace, last, max_count, max_size, now)
                .await?;
            Ok(to_value(&RetrieveResult {
                messages: found.messages,
                more: found.more,
            }))
        }
        Call::Delete(ref p) => {
            let proof = Some(call.to_json().to_string());
            // A member deletes group messages, never keys, info, members or
            // revocations.
            let only = p.credential.as_ref().map(|_| Namespace::GROUP_MESSAGES);
            let deleted = node
                .storage
                .delete_in(p.pubkey, only, p.messages.clone(), proof)
                .await?;
            forward_to_swarm(node, snapshot.as_deref(), &call, origin).await;
            Ok(to_value(&DeleteResult { deleted }))
        }
        Call::DeleteAll(ref p) => {
            let proof = Some(call.to_json().to_string());
            let deleted = node
                .storage
                .delete_all(p.pubkey, p.namespace, p.timestamp, proof)
                .await?;
            forward_to_swarm(node, snapshot.as_deref(), &call, origin).await;
            Ok(to_value(&DeleteResult { deleted }))
        }
        Call::Expire(ref p) => {
            let updated = node
                .storage
                .expire(p.pubkey, p.messages.clone(), p.expiry, p.timestamp, now)
                .await?;
            forward_to_swarm(node, snapshot.as_deref(), &call, origin).await;
            Ok(to_value(&ExpireResult {
                updated,
                expiry: p.expiry,
            }))
        }
        Call::GetSwarm(p) => {
            let snap = snapshot.as_deref().ok_or_else(ApiError::not_ready)?;
            let result = snap
                .swarm_result(&p.pubkey)
                .ok_or_else(|| ApiError::new(ErrorCode::Unavailable, "the node list has no swarms yet"))?;
            Ok(to_value(&result))
        }
        Call::Info => Ok(to_value(&InfoResult {
            version: VERSION.to_owned(),
            protocol: PROTOCOL_VERSION,
            ed25519: allium_common::encoding::Hex32(*node.identity.ed25519_pk()),
            x25519: allium_common::encoding::Hex32(*node.identity.x25519_pk()),
            swarm_id: snapshot.as_ref().and_then(|s| s.my_swarm),
            period: snapshot.as_ref().map(|s| s.list.period),
            timestamp: now,
        })),
        Call::NodeList(params) => {
            // A diff from the asker's period, if this node still has that
            // document and the asker would not get the same one again.
            if let Some(since) = params.since_period
                && snapshot.as_ref().is_some_and(|s| s.list.period > since)
                && let Some(diff) = node.directory.diff_since(since)
            {
                return Ok(to_value(&diff));
            }
            let list = match (node.voting(), snapshot) {
                (Some(voting), _) => voting.current(),
                (None, Some(snap)) => Some(snap.list.clone()),
                (None, None) => None,
            };
            list.map(|l| to_value(&l)).ok_or_else(ApiError::not_ready)
        }
        _ => Err(ApiError::new(
            ErrorCode::BadRequest,
            "method not supported by this node",
        )),
    }
}

/// 421 with the right swarm unless this node's swarm holds `account`.
fn check_swarm(snap: &Snapshot, account: &MailboxId) -> Result<(), ApiError> {
    if snap.is_mine(account) {
        return Ok(());
    }
    let right = snap.swarm_result(account).map(|r| to_value(&r)).unwrap_or(Value::Null);
    Err(ApiError::new(
        ErrorCode::WrongSwarm,
        "this node's swarm does not hold that account; ask the swarm named in details",
    )
    .with_details(right))
}

/// This node's signature over a message hash.
pub fn confirmation(node: &Node, hash: &str) -> SwarmConfirmation {
    SwarmConfirmation {
        hash: hash.to_owned(),
        signature: Sig64(node.identity.sign(hash.as_bytes())),
    }
}

/// Passes an owner-signed change on to the other swarm members, once: a
/// peer that receives it from another peer does not pass it on again.
async fn forward_to_swarm(node: &Node, snapshot: Option<&Snapshot>, call: &Call, origin: Origin) {
    if origin == Origin::Peer {
        return;
    }
    if let Some(snap) = snapshot {
        node.replicator.forward_signed(node, snap, call.to_json()).await;
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}
