//! The onion relay: `POST /onion_req/v2`.
//!
//! The node peels its layer. A relay layer is forwarded to the named next
//! node and its answer returned unchanged; a final layer is executed as a
//! storage RPC and answered encrypted under the layer's key. Failures to
//! reach the next hop come back as a plain HTTP error naming the relay that
//! failed (the client knows which hop follows it), never as a hang: each
//! hop has its own timeout.
//!
//! Nothing here logs payloads, keys, or the previous and next hop together.

use allium_common::onion::{self, Peeled};
use allium_common::rpc::ErrorCode;
use allium_common::sodium;

use crate::api_error::ApiError;
use crate::metrics::Metrics;
use crate::rpc::{self, Origin};
use crate::state::Node;

/// A relay answer: status, content type and body bytes.
#[derive(Debug)]
pub struct RelayReply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

impl RelayReply {
    fn error(e: &ApiError) -> Self {
        Self {
            status: e.status(),
            content_type: "application/json",
            body: e.body().to_string().into_bytes(),
        }
    }
}

/// Handles one onion request body.
pub async fn handle(node: &Node, body: &[u8]) -> RelayReply {
    let peeled = match onion::peel(body, node.identity.x25519_sk(), node.identity.x25519_pk()) {
        Ok(p) => p,
        Err(e) => {
            Metrics::inc(&node.metrics.onion_rejected);
            return RelayReply::error(&ApiError::new(
                ErrorCode::BadRequest,
                format!("onion layer rejected: {e}"),
            ));
        }
    };
    match peeled {
        Peeled::Relay { next_ed25519, body } => forward(node, &next_ed25519, body).await,
        Peeled::Final { request, key } => {
            Metrics::inc(&node.metrics.onion_final);
            let reply = rpc::handle(node, &request, Origin::Client).await;
            match onion::encrypt_response(&key, reply.status, &reply.body, &sodium::random_array()) {
                Ok(encoded) => RelayReply {
                    status: 200,
                    content_type: "text/plain",
                    body: encoded.into_bytes(),
                },
                Err(e) => RelayReply::error(&ApiError::new(
                    ErrorCode::Internal,
                    format!("cannot encrypt the response: {e}"),
                )),
            }
        }
    }
}

async fn forward(node: &Node, next: &[u8; 32], body: Vec<u8>) -> RelayReply {
    let me = node.id_hex();
    let failed = |code: ErrorCode, why: &str| {
        Metrics::inc(&node.metrics.relay_failures);
        RelayReply::error(
            &ApiError::new(code, format!("relay {me} could not reach the next hop: {why}"))
                .with_details(serde_json::json!({ "relay": me })),
        )
    };
    let Some(address) = node
        .directory
        .current()
        .and_then(|s| s.list.find(next).map(|n| n.address.clone()))
    else {
        return failed(ErrorCode::BadGateway, "it is not in this relay's node list");
    };
    let sent = node
        .http
        .post(format!("http://{address}/onion_req/v2"))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send();
    let response = match tokio::time::timeout(node.config.hop_timeout(), sent).await {
        Err(_) => return failed(ErrorCode::GatewayTimeout, "no answer in time"),
        Ok(Err(e)) if e.is_timeout() => {
            return failed(ErrorCode::GatewayTimeout, "no answer in time");
        }
        Ok(Err(_)) => return failed(ErrorCode::BadGateway, "connection failed"),
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    let content_type = if response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        "application/json"
    } else {
        "text/plain"
    };
    match read_limited(response, onion::MAX_ENCODED_RESPONSE).await {
        Ok(bytes) => {
            Metrics::inc(&node.metrics.relayed_hops);
            RelayReply {
                status,
                content_type,
                body: bytes,
            }
        }
        Err(why) => failed(ErrorCode::BadGateway, why),
    }
}

/// Reads a response body, refusing more than `limit` bytes.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > limit {
                    return Err("its answer is larger than any onion response");
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(_) => return Err("its answer broke off"),
        }
    }
}
