//! What a service node tells a seed, and how the seed checks it.
//!
//! A node **announces** itself with a record signed by its own Ed25519 key
//! (so nobody can register an address under someone else's key). Before
//! listing it, the seed **probes** the announced address with a random
//! challenge that only the holder of that key can sign, which proves the
//! address really reaches that node.
//!
//! ```text
//! announce signed bytes = "allium-announce-v1" 0x00
//!     ‖ ed25519 (32) ‖ x25519 (32)
//!     ‖ u8 len ‖ address ‖ u8 len ‖ version ‖ u64be timestamp_ms
//! probe signed bytes    = "allium-probe-v1" 0x00 ‖ challenge (32) ‖ seed ed25519 (32)
//! ```

use serde::{Deserialize, Serialize};

use crate::encoding::{Hex32, Sig64};
use crate::identity::{self, Identity};
use crate::node_list::{MAX_ADDRESS_LEN, MAX_VERSION_LEN, NodeEntry};
use crate::rpc::{RpcError, check_clock};
use crate::swarm::INVALID_SWARM_ID;

/// Domain separator of announce signatures.
pub const ANNOUNCE_DOMAIN: &[u8] = b"allium-announce-v1\0";
/// Domain separator of probe signatures.
pub const PROBE_DOMAIN: &[u8] = b"allium-probe-v1\0";

/// A node's signed self-description (`POST /seed/v1/announce`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// The node's Ed25519 key.
    pub ed25519: Hex32,
    /// Its X25519 key (must be the Ed25519 key's Montgomery form).
    pub x25519: Hex32,
    /// `host:port` where it serves HTTP.
    pub address: String,
    /// Software version.
    pub version: String,
    /// When the record was signed, Unix ms (±60 s of the seed's clock).
    pub timestamp: u64,
    /// Signature over [`Announce::signed_bytes`].
    pub signature: Sig64,
}

/// A seed's challenge to a node (`POST /probe/v1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRequest {
    /// 32 random bytes.
    pub challenge: Hex32,
    /// The asking seed's Ed25519 key.
    pub seed: Hex32,
}

/// A node's answer to a probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResponse {
    /// Signature over [`probe_signed_bytes`].
    pub signature: Sig64,
    /// The node cannot store more messages now (its disk or its byte cap
    /// is full); it still serves what it holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full: bool,
}

impl Announce {
    /// The bytes the node signs.
    pub fn signed_bytes(
        ed25519: &[u8; 32],
        x25519: &[u8; 32],
        address: &str,
        version: &str,
        timestamp: u64,
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_DOMAIN.len() + 64 + address.len() + version.len() + 10);
        out.extend_from_slice(ANNOUNCE_DOMAIN);
        out.extend_from_slice(ed25519);
        out.extend_from_slice(x25519);
        for field in [address, version] {
            // Bounded by MAX_ADDRESS_LEN / MAX_VERSION_LEN, checked in verify.
            out.push(field.len().min(255) as u8);
            out.extend_from_slice(field.as_bytes());
        }
        out.extend_from_slice(&timestamp.to_be_bytes());
        out
    }

    /// A record for `node`, signed now.
    pub fn sign(node: &Identity, address: &str, version: &str, timestamp: u64) -> Self {
        let bytes = Self::signed_bytes(node.ed25519_pk(), node.x25519_pk(), address, version, timestamp);
        Self {
            ed25519: Hex32(*node.ed25519_pk()),
            x25519: Hex32(*node.x25519_pk()),
            address: address.to_owned(),
            version: version.to_owned(),
            timestamp,
            signature: Sig64(node.sign(&bytes)),
        }
    }

    /// Checks shape, freshness and signature with the seed's clock at
    /// `now_ms`.
    pub fn verify(&self, now_ms: u64) -> Result<(), RpcError> {
        let invalid = |param: &'static str, reason: &str| RpcError::InvalidParam {
            param,
            reason: reason.to_owned(),
        };
        if self.address.len() > MAX_ADDRESS_LEN {
            return Err(invalid("address", "too long"));
        }
        if self.version.is_empty() || self.version.len() > MAX_VERSION_LEN {
            return Err(invalid("version", "empty or too long"));
        }
        // The entry check covers host:port form and the key pairing.
        self.as_entry(0)
            .check_alone()
            .map_err(|reason| RpcError::InvalidParam {
                param: "announce",
                reason,
            })?;
        check_clock(self.timestamp, now_ms)?;
        let bytes = Self::signed_bytes(
            &self.ed25519.0,
            &self.x25519.0,
            &self.address,
            &self.version,
            self.timestamp,
        );
        if identity::verify(&self.ed25519.0, &bytes, &self.signature.0) {
            Ok(())
        } else {
            Err(RpcError::BadSignature)
        }
    }

    /// The node-list entry for this node in swarm `swarm_id`.
    pub fn as_entry(&self, swarm_id: u64) -> NodeEntry {
        NodeEntry {
            ed25519: self.ed25519,
            x25519: self.x25519,
            address: self.address.clone(),
            swarm_id: if swarm_id == INVALID_SWARM_ID { 0 } else { swarm_id },
            version: self.version.clone(),
            guard: false,
        }
    }
}

/// The bytes a node signs to answer a probe.
pub fn probe_signed_bytes(challenge: &[u8; 32], seed: &[u8; 32]) -> Vec<u8> {
    [PROBE_DOMAIN, challenge, seed].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn announce_round_trip_and_tamper() {
        let node = Identity::from_ed25519_seed(&[3; 32]);
        let a = Announce::sign(&node, "127.0.0.1:4000", "0.1.0", NOW);
        assert_eq!(a.verify(NOW), Ok(()));
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(serde_json::from_str::<Announce>(&json).unwrap(), a);
        let mut moved = a.clone();
        moved.address = "127.0.0.1:4001".into();
        assert_eq!(moved.verify(NOW), Err(RpcError::BadSignature));
        assert!(matches!(a.verify(NOW + 120_000), Err(RpcError::ClockSkew { .. })));
        let mut wrong_x = a.clone();
        wrong_x.x25519 = Hex32([9; 32]);
        assert!(matches!(wrong_x.verify(NOW), Err(RpcError::InvalidParam { .. })));
        let mut bad_addr = Announce::sign(&node, "nohost", "0.1.0", NOW);
        assert!(matches!(bad_addr.verify(NOW), Err(RpcError::InvalidParam { .. })));
        bad_addr.version = String::new();
        assert!(bad_addr.verify(NOW).is_err());
    }

    #[test]
    fn probe_signature_binds_challenge_and_seed() {
        let node = Identity::from_ed25519_seed(&[3; 32]);
        let sig = node.sign(&probe_signed_bytes(&[1; 32], &[2; 32]));
        assert!(identity::verify(
            node.ed25519_pk(),
            &probe_signed_bytes(&[1; 32], &[2; 32]),
            &sig
        ));
        assert!(!identity::verify(
            node.ed25519_pk(),
            &probe_signed_bytes(&[1; 32], &[3; 32]),
            &sig
        ));
    }
}
