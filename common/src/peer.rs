//! Node-to-node messages: swarm replication (`POST /swarm/v1/push`).
//!
//! A push carries messages a node holds to another node that should hold
//! them too: a swarm peer right after a store, or a node that just joined
//! the swarm (hand-over). It bypasses the clients' ±60 s store window (a
//! hand-over moves old messages), so it is authenticated instead: the body
//! is signed by the sending node, whose key the receiver looks up in its
//! node list, and carries the send time so a captured push cannot be
//! replayed later to bring back deleted messages.
//!
//! ```text
//! headers: X-Allium-Node: <sender ed25519 hex>
//!          X-Allium-Signature: base64(Ed25519(sender, "allium-push-v1" 0x00 ‖ body))
//! body:    {"sent": ms, "messages": [{"pubkey", "namespace"?, "timestamp", "expiry", "data"}]}
//! answer:  {"confirmations": [{"hash", "signature"}]}   one per message now held
//! ```

use serde::{Deserialize, Serialize};

use crate::encoding::Base64Bytes;
use crate::identity::AccountId;
use crate::rpc::{Namespace, SwarmConfirmation};

/// Header naming the sending node.
pub const NODE_HEADER: &str = "x-allium-node";
/// Header carrying the sender's signature of the body.
pub const SIGNATURE_HEADER: &str = "x-allium-signature";
/// Header marking an owner-signed request a peer passes on (not to be
/// passed on again).
pub const FORWARDED_HEADER: &str = "x-allium-forwarded";
/// Domain separator of push signatures.
pub const PUSH_DOMAIN: &[u8] = b"allium-push-v1\0";
/// Most messages in one push.
pub const MAX_PUSH_MESSAGES: usize = 8;
/// Largest push body a node reads.
pub const MAX_PUSH_BODY: usize = 1024 * 1024;

/// One replicated message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedMessage {
    /// The mailbox.
    pub pubkey: AccountId,
    /// Its namespace.
    #[serde(default)]
    pub namespace: Namespace,
    /// The sender's timestamp.
    pub timestamp: u64,
    /// When it expires.
    pub expiry: u64,
    /// The stored bytes.
    pub data: Base64Bytes,
}

/// The body of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    /// When the sender signed it, Unix ms.
    pub sent: u64,
    /// The messages.
    pub messages: Vec<PushedMessage>,
}

/// The answer to a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// One per message the receiver now holds.
    pub confirmations: Vec<SwarmConfirmation>,
}

/// Domain separator of sync-request signatures.
pub const SYNC_DOMAIN: &[u8] = b"allium-sync-v1\0";

/// The body of `POST /swarm/v1/sync`: a (re)started node asks a swarm peer
/// to push it the swarm's messages. Signed like a push, with
/// [`SYNC_DOMAIN`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// When the sender signed it, Unix ms.
    pub sent: u64,
}

/// The bytes a node signs to ask for a sync.
pub fn sync_signed_bytes(body: &[u8]) -> Vec<u8> {
    [SYNC_DOMAIN, body].concat()
}

/// The bytes a sender signs: the domain separator and the exact body.
pub fn push_signed_bytes(body: &[u8]) -> Vec<u8> {
    [PUSH_DOMAIN, body].concat()
}
