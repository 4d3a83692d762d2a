//! Result types: the `body` of a successful answer, per method.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::encoding::{Base64Bytes, Hex32, Sig64};

/// One swarm member's confirmation that it holds a stored message:
/// `signature` is that node's Ed25519 signature over the ASCII `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmConfirmation {
    /// The message hash the node computed.
    pub hash: String,
    /// The node's signature of `hash`.
    pub signature: Sig64,
}

/// Result of `store`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreResult {
    /// The message hash.
    pub hash: String,
    /// Confirmations keyed by node Ed25519 key (hex): the node that took
    /// the request and every member that confirmed replication in time.
    pub swarm: BTreeMap<String, SwarmConfirmation>,
}

/// A message as `retrieve` returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMessage {
    /// Message hash.
    pub hash: String,
    /// Sender's timestamp, Unix ms.
    pub timestamp: u64,
    /// Expiry, Unix ms.
    pub expiration: u64,
    /// The stored bytes (an envelope), base64.
    pub data: Base64Bytes,
}

/// Result of `retrieve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrieveResult {
    /// Messages after `last_hash`, oldest first.
    pub messages: Vec<StoredMessage>,
    /// Whether more messages are waiting beyond `max_count`/`max_size`.
    pub more: bool,
}

/// Result of `delete` and `delete_all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResult {
    /// Hashes of the messages that were deleted.
    pub deleted: Vec<String>,
}

/// Result of `expire`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireResult {
    /// Hashes whose expiry was changed.
    pub updated: Vec<String>,
    /// The new expiry, Unix ms.
    pub expiry: u64,
}

/// A node as `get_swarm` names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmNode {
    /// Ed25519 public key.
    pub ed25519: Hex32,
    /// X25519 public key.
    pub x25519: Hex32,
    /// `host:port`.
    pub address: String,
}

/// Result of `get_swarm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSwarmResult {
    /// The swarm id as 16 lowercase hex digits.
    pub swarm: String,
    /// Its members.
    pub snodes: Vec<SwarmNode>,
}

/// Result of `info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoResult {
    /// Software version, `x.y.z`.
    pub version: String,
    /// Protocol version ([`super::PROTOCOL_VERSION`]); absent means 1.
    #[serde(default = "protocol_one")]
    pub protocol: u32,
    /// The node's Ed25519 key.
    pub ed25519: Hex32,
    /// The node's X25519 key.
    pub x25519: Hex32,
    /// The node's swarm, if it has one yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_id: Option<u64>,
    /// Period of the consensus the node follows, if it has one yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u64>,
    /// The node's clock, Unix ms (lets a client measure its own skew).
    pub timestamp: u64,
}

fn protocol_one() -> u32 {
    1
}

/// One entry of a `batch`/`sequence` result: `{"code": status, "body": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubResult {
    /// HTTP status of the sub-request.
    pub code: u16,
    /// Its result, or its error body.
    pub body: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieve_result_shape() {
        let r = RetrieveResult {
            messages: vec![StoredMessage {
                hash: "h".into(),
                timestamp: 1,
                expiration: 2,
                data: Base64Bytes(b"hi".to_vec()),
            }],
            more: false,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"messages":[{"hash":"h","timestamp":1,"expiration":2,"data":"aGk="}],"more":false}"#
        );
    }
}
