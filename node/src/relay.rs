//! The onion relay: `POST /onion_req/v2`.
//!
//! The node peels its layer. A relay layer is forwarded to the named next
//! node and its answer returned unchanged; a final layer is executed as a
//! storage RPC and answered encrypted under the layer's key. Failures to
//! reach the next hop come back as a plain HTTP error naming the relay that
//! failed (the client knows which hop follows it), never as a hang: each
//! hop has one deadline for its whole exchange.
//!
//! One client request costs the network at most [`MAX_RELAYS`] relayed
//! hops: every forward carries its hop count under a MAC the next node
//! checks ([`crate::peer`]), and a node that would be one relay too many
//! refuses, as does a node named as its own next hop. The count tells a
//! relay its position in the path, which the size of the body (the padding
//! buckets of `docs/protocol.md` §9) already tells it.
//!
//! Nothing here logs payloads, keys, or the previous and next hop together.

use allium_common::onion::{self, Peeled};
use allium_common::peer::MAX_RELAYS;
use allium_common::rpc::ErrorCode;
use allium_common::sodium;

use crate::api_error::ApiError;
use crate::metrics::Metrics;
use crate::peer::{Call, CallError};
use crate::rpc::{self, Origin};
use crate::state::{Node, now_ms};

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

/// Handles one onion request body that has passed `hops` relays (0 from a
/// client).
pub async fn handle(node: &Node, body: &[u8], hops: u8) -> RelayReply {
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
        Peeled::Relay { next_ed25519, body } => {
            if let Some(refusal) = refuse_relay(node, &next_ed25519, hops) {
                Metrics::inc(&node.metrics.onion_rejected);
                return RelayReply::error(&refusal);
            }
            forward(node, &next_ed25519, hops + 1, body).await
        }
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

/// Why this node must not relay to `next` after `hops` relays, if it must
/// not.
fn refuse_relay(node: &Node, next: &[u8; 32], hops: u8) -> Option<ApiError> {
    let me = node.id_hex();
    if next == node.identity.ed25519_pk() {
        return Some(
            ApiError::new(ErrorCode::BadRequest, "the onion names this relay as its own next hop")
                .with_details(serde_json::json!({ "relay": me })),
        );
    }
    if hops >= MAX_RELAYS {
        return Some(
            ApiError::new(
                ErrorCode::BadRequest,
                format!("the onion has passed {hops} relays; at most {MAX_RELAYS} may relay one request"),
            )
            .with_details(serde_json::json!({ "relay": me, "max_relays": MAX_RELAYS })),
        );
    }
    None
}

async fn forward(node: &Node, next: &[u8; 32], hops: u8, body: Vec<u8>) -> RelayReply {
    let me = node.id_hex();
    let failed = |code: ErrorCode, why: &str| {
        Metrics::inc(&node.metrics.relay_failures);
        RelayReply::error(
            &ApiError::new(code, format!("relay {me} could not reach the next hop: {why}"))
                .with_details(serde_json::json!({ "relay": me })),
        )
    };
    let Some(entry) = node.directory.current().and_then(|s| s.list.find(next).cloned()) else {
        return failed(ErrorCode::BadGateway, "it is not in this relay's node list");
    };
    let Some(headers) = node.peers.relay_headers(&node.identity, &entry, hops, &body, now_ms()) else {
        return failed(ErrorCode::BadGateway, "its key is unusable");
    };
    let call = Call {
        address: entry.address.clone(),
        pin: Some(entry.ed25519.0),
        path: "/onion_req/v2",
        headers,
        content_type: "application/octet-stream",
        body,
        deadline: node.config.hop_timeout(),
        max_answer: onion::MAX_ENCODED_RESPONSE,
    };
    match node.peers.call(call).await {
        Ok(answer) => {
            Metrics::inc(&node.metrics.relayed_hops);
            RelayReply {
                status: answer.status,
                content_type: if answer.json { "application/json" } else { "text/plain" },
                body: answer.body,
            }
        }
        Err(CallError::Timeout) => failed(ErrorCode::GatewayTimeout, "no answer in time"),
        Err(CallError::TooLarge) => failed(ErrorCode::BadGateway, "its answer is larger than any onion response"),
        Err(CallError::Unreachable) => failed(ErrorCode::BadGateway, "connection failed"),
        Err(_) => failed(ErrorCode::BadGateway, "its answer broke off"),
    }
}
