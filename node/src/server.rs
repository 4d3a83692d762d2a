//! The HTTP server: routes, body limits, rate limits, graceful shutdown.
//!
//! | route | what |
//! |---|---|
//! | `POST /storage_rpc/v1` | storage RPC ([`crate::rpc`]) |
//! | `POST /onion_req/v2` | onion relay ([`crate::relay`]) |
//! | `POST /swarm/v1/push` | replication from swarm peers |
//! | `POST /swarm/v1/sync` | a (re)started swarm peer asks for the swarm's messages |
//! | `POST /swarm/v1/forward` | a swarm peer passes on an owner's delete or expire |
//! | `POST /swarm/v1/digest` | a swarm peer's digest; the buckets that differ |
//! | `POST /swarm/v1/reconcile` | what a swarm peer holds in those buckets; what it lacks is pushed back |
//! | `POST /probe/v1` | a seed's reachability challenge |
//! | `POST /seed/v1/announce` | seed mode: a node registers |
//! | `POST /seed/v1/vote` | seed mode: this seed's vote for a period |
//! | `POST /seed/v1/consensus` | seed mode: this seed's consensus for a period, with the signatures it holds |
//! | `GET /health` | liveness and whether the node is listed |
//! | `GET /metrics` | Prometheus text |
//!
//! Requests that are not authenticated as a peer's are limited per client
//! address; peers' requests (relayed onions, pushes, syncs, digests) are
//! limited per peer ([`crate::peer`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use allium_common::announce::{ProbeRequest, ProbeResponse, probe_signed_bytes};
use allium_common::encoding::Sig64;
use allium_common::onion::MAX_ONION_BODY;
use allium_common::peer::{MAX_PUSH_BODY, MAX_RECONCILE_BODY, NODE_HEADER};
use allium_common::rpc::{ErrorCode, MAX_REQUEST_BODY};
use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use crate::api_error::ApiError;
use crate::listener::LinkPeer;
use crate::metrics::{Gauges, Metrics};
use crate::peer::{self, Budget};
use crate::rpc::{self, Origin};
use crate::state::{Node, now_ms};
use crate::{anti_entropy, relay, replication, seed};

type Shared = State<Arc<Node>>;

/// The router with every route and limit.
pub fn router(node: Arc<Node>) -> Router {
    let router = Router::new()
        .route(
            "/storage_rpc/v1",
            post(storage_rpc).layer(DefaultBodyLimit::max(MAX_REQUEST_BODY)),
        )
        .route(
            "/onion_req/v2",
            post(onion_req)
                .layer(DefaultBodyLimit::max(MAX_ONION_BODY))
                .layer(from_fn_with_state(Arc::clone(&node), relay_link)),
        )
        .merge(swarm_routes(Arc::clone(&node)))
        .route("/probe/v1", post(probe).layer(DefaultBodyLimit::max(1024)))
        .route("/seed/v1/announce", post(announce).layer(DefaultBodyLimit::max(4096)))
        .route("/seed/v1/vote", post(seed_vote).layer(DefaultBodyLimit::max(1024)))
        .route(
            "/seed/v1/consensus",
            post(seed_consensus).layer(DefaultBodyLimit::max(1024)),
        )
        .route("/health", get(health))
        .route("/metrics", get(metrics));
    let router = if node.config.access_log {
        router.layer(axum::middleware::from_fn(access_log))
    } else {
        router
    };
    router.with_state(node)
}

/// The node-to-node routes: only consensus members, over a link whose
/// certificate proves which one ([`peer::check_link`]), reach them.
fn swarm_routes(node: Arc<Node>) -> Router<Arc<Node>> {
    Router::new()
        .route("/swarm/v1/push", post(push).layer(DefaultBodyLimit::max(MAX_PUSH_BODY)))
        .route("/swarm/v1/sync", post(sync).layer(DefaultBodyLimit::max(1024)))
        .route(
            "/swarm/v1/forward",
            post(forward).layer(DefaultBodyLimit::max(MAX_REQUEST_BODY)),
        )
        .route(
            "/swarm/v1/digest",
            post(digest).layer(DefaultBodyLimit::max(MAX_DIGEST_BODY)),
        )
        .route(
            "/swarm/v1/reconcile",
            post(reconcile).layer(DefaultBodyLimit::max(MAX_RECONCILE_BODY)),
        )
        .route_layer(from_fn_with_state(node, member_link))
}

/// Refuses a node-to-node request before its body is read unless the
/// caller's certificate is a consensus member's.
async fn member_link(State(node): Shared, request: Request, next: Next) -> Response {
    match checked_link(&node, &request, true) {
        Ok(()) => next.run(request).await,
        Err(e) => error_response(&e),
    }
}

/// Refuses a relayed onion request whose relay is not the node its
/// certificate proves (clients, who name no node, pass).
async fn relay_link(State(node): Shared, request: Request, next: Next) -> Response {
    match checked_link(&node, &request, false) {
        Ok(()) => next.run(request).await,
        Err(e) => error_response(&e),
    }
}

fn checked_link(node: &Node, request: &Request, members_only: bool) -> Result<(), ApiError> {
    let link = request
        .extensions()
        .get::<LinkPeer>()
        .copied()
        .unwrap_or(LinkPeer::Anonymous);
    let claimed = request.headers().get(NODE_HEADER).map(HeaderValue::as_bytes);
    let result = peer::check_link(link, claimed, node.directory.current().as_deref(), members_only);
    if let Err(e) = &result {
        Metrics::inc(&node.metrics.link_refused);
        tracing::debug!(path = request.uri().path(), caller = %link, reason = %e.body()["message"], "refused by the link check");
    }
    result
}

/// One log line per request (only with `access_log = true`).
async fn access_log(
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    tracing::info!(
        target: "allium_node::access",
        %peer,
        %method,
        path,
        status = response.status().as_u16(),
        "request"
    );
    response
}

fn json_response(status: u16, body: &serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn error_response(e: &ApiError) -> Response {
    json_response(e.status(), &e.body())
}

/// Takes a token from the client IP's bucket. Every request that is not
/// authenticated as a peer's pays, whatever its address: a client that
/// shares an IP with a node gets no exemption.
fn rate_limited(node: &Node, ip: IpAddr) -> Option<Response> {
    Metrics::inc(&node.metrics.client_requests);
    if node.ip_limiter.allow(&ip, Instant::now()) {
        return None;
    }
    Metrics::inc(&node.metrics.rate_limited);
    Some(error_response(&ApiError::new(
        ErrorCode::RateLimited,
        "too many requests from this address; slow down",
    )))
}

async fn storage_rpc(State(node): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    if let Some(refused) = rate_limited(&node, peer.ip()) {
        return refused;
    }
    let reply = rpc::handle(&node, &body, Origin::Client).await;
    json_response(reply.status, &reply.body)
}

async fn onion_req(
    State(node): Shared,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // A relay proves it is one (and how many relays came before it); any
    // other sender is a client, whatever its address.
    let snapshot = node.directory.current();
    let hops = match node
        .peers
        .relayed_by(&node.identity, snapshot.as_deref(), &headers, &body, now_ms())
    {
        Ok(Some(relayed)) => {
            if let Err(e) = node.peers.spend(Budget::Relay, &relayed.from) {
                Metrics::inc(&node.metrics.rate_limited);
                return error_response(&e);
            }
            relayed.hops
        }
        Ok(None) => {
            if let Some(refused) = rate_limited(&node, peer.ip()) {
                return refused;
            }
            0
        }
        Err(e) => {
            Metrics::inc(&node.metrics.onion_rejected);
            return error_response(&e);
        }
    };
    let reply = relay::handle(&node, &body, hops).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::BAD_GATEWAY);
    (status, [(header::CONTENT_TYPE, reply.content_type)], reply.body).into_response()
}

async fn push(State(node): Shared, headers: HeaderMap, body: Bytes) -> Response {
    match replication::receive_push(&node, &headers, &body).await {
        Ok(answer) => json_response(200, &serde_json::to_value(answer).unwrap_or_default()),
        Err(e) => error_response(&e),
    }
}

async fn sync(State(node): Shared, headers: HeaderMap, body: Bytes) -> Response {
    match replication::receive_sync(&node, &headers, &body) {
        Ok(()) => json_response(200, &json!({ "accepted": true })),
        Err(e) => error_response(&e),
    }
}

async fn forward(State(node): Shared, headers: HeaderMap, body: Bytes) -> Response {
    match replication::receive_forward(&node, &headers, &body).await {
        Ok(reply) => json_response(reply.status, &reply.body),
        Err(e) => error_response(&e),
    }
}

/// A digest is 4,096 buckets of 36 bytes in base64: about 192 KiB.
const MAX_DIGEST_BODY: usize = 256 * 1024;

async fn digest(State(node): Shared, headers: HeaderMap, body: Bytes) -> Response {
    match anti_entropy::receive(&node, &headers, &body).await {
        Ok(answer) => json_response(200, &serde_json::to_value(answer).unwrap_or_default()),
        Err(e) => error_response(&e),
    }
}

async fn reconcile(State(node): Shared, headers: HeaderMap, body: Bytes) -> Response {
    match anti_entropy::receive_reconcile(&node, &headers, &body).await {
        Ok(answer) => json_response(200, &serde_json::to_value(answer).unwrap_or_default()),
        Err(e) => error_response(&e),
    }
}

async fn probe(State(node): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    // Each answer costs a signature: limited per address like a client.
    if let Some(refused) = rate_limited(&node, peer.ip()) {
        return refused;
    }
    let Ok(request) = serde_json::from_slice::<ProbeRequest>(&body) else {
        return error_response(&ApiError::new(ErrorCode::BadRequest, "malformed probe"));
    };
    let signature = Sig64(
        node.identity
            .sign(&probe_signed_bytes(&request.challenge.0, &request.seed.0)),
    );
    let response = ProbeResponse {
        signature,
        full: node.storage.is_full(),
    };
    json_response(200, &serde_json::to_value(response).unwrap_or_default())
}

async fn announce(State(node): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    if let Some(refused) = rate_limited(&node, peer.ip()) {
        return refused;
    }
    match seed::announce(Arc::clone(&node), peer.ip(), &body).await {
        Ok(()) => json_response(200, &json!({ "accepted": true })),
        Err(e) => error_response(&e),
    }
}

/// The voting and the period a seed-to-seed request asks for.
fn period_asked<'a>(node: &'a Node, body: &[u8]) -> Result<(&'a seed::voting::Voting, u64), ApiError> {
    let voting = node
        .voting()
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "this node is not a seed"))?;
    let request = serde_json::from_slice::<seed::voting::PeriodRequest>(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed request: {e}")))?;
    Ok((voting, request.period))
}

async fn seed_vote(State(node): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    if let Some(refused) = rate_limited(&node, peer.ip()) {
        return refused;
    }
    let answer = period_asked(&node, &body).and_then(|(voting, period)| {
        voting
            .vote(period)
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no vote for that period"))
    });
    match answer {
        Ok(vote) => json_response(200, &serde_json::to_value(vote).unwrap_or_default()),
        Err(e) => error_response(&e),
    }
}

async fn seed_consensus(State(node): Shared, ConnectInfo(peer): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    if let Some(refused) = rate_limited(&node, peer.ip()) {
        return refused;
    }
    let answer = period_asked(&node, &body).and_then(|(voting, period)| {
        voting
            .computed(period)
            .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no consensus for that period"))
    });
    match answer {
        Ok(doc) => json_response(200, &serde_json::to_value(doc).unwrap_or_default()),
        Err(e) => error_response(&e),
    }
}

async fn health(State(node): Shared) -> Response {
    let snap = node.directory.current();
    let body = json!({
        "status": "ok",
        "ed25519": node.id_hex(),
        "seed": node.seed.is_some(),
        "period": snap.as_ref().map(|s| s.list.period),
        "swarm_id": snap.as_ref().and_then(|s| s.my_swarm),
    });
    json_response(200, &body)
}

/// A seed's voting counter (0 on a node that is not a seed).
fn seed_counter(node: &Node, which: fn(&seed::voting::VotingStats) -> &std::sync::atomic::AtomicU64) -> u64 {
    node.voting()
        .map_or(0, |v| which(&v.stats).load(std::sync::atomic::Ordering::Relaxed))
}

async fn metrics(State(node): Shared) -> Response {
    let stats = node.storage.stats().await.unwrap_or_default();
    let files = node.storage.file_stats().await.unwrap_or_default();
    let snap = node.directory.current();
    let text = node.metrics.render(Gauges {
        messages: stats.messages,
        bytes: stats.bytes,
        file_bytes: files.bytes,
        connections_open: node.connections.open() as u64,
        connections_refused: node.connections.refused(),
        peer_budget_refused: node.peers.refused(),
        seed_pending: node.registry().map_or(0, |r| r.pending() as u64),
        seed_known: node.registry().map_or(0, |r| r.known() as u64),
        seed_full: node.registry().map_or(0, |r| r.full() as u64),
        storage_full: node.storage.is_full(),
        evicted: crate::storage::evicted(),
        consensus_period: snap.as_ref().map_or(0, |s| s.list.period),
        consensus_age_s: snap
            .as_ref()
            .map_or(0, |s| crate::state::now_ms().saturating_sub(s.list.valid_after) / 1000),
        consensus_signatures: snap.as_ref().map_or(0, |s| s.list.signatures.len() as u64),
        seed_votes_received: seed_counter(&node, |s| &s.votes_received),
        seed_failed_periods: seed_counter(&node, |s| &s.failed_periods),
        seed_disagreements: seed_counter(&node, |s| &s.disagreements),
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        text,
    )
        .into_response()
}
