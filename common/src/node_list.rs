//! The signed node list: a seed's snapshot of the network.
//!
//! JSON shape (kept exactly; other implementations rely on it):
//!
//! ```json
//! {"epoch": 7, "nodes": [{"ed25519": hex, "x25519": hex, "address": "host:port",
//!   "swarm_id": 42, "version": "0.1.0"}], "signer": hex, "signature": base64}
//! ```
//!
//! The signature covers a canonical binary encoding, not the JSON text, so
//! that JSON re-serialisation (key order, whitespace, number formats) can
//! never break verification:
//!
//! ```text
//! "allium-node-list-v1" 0x00        domain separation, 20 bytes
//! epoch                 u64 BE
//! count                 u32 BE
//! per node, ascending by ed25519:
//!   ed25519 (32) ‖ x25519 (32) ‖ swarm_id u64 BE
//!   ‖ len u8 ‖ address (UTF-8) ‖ len u8 ‖ version (UTF-8)
//! ```

use serde::{Deserialize, Serialize};

use crate::address::NodeAddress;
use crate::encoding::{Hex32, Sig64};
use crate::identity::{self, Identity};
use crate::sodium;
use crate::swarm::{INVALID_SWARM_ID, SwarmId, SwarmRing};

/// Domain separator at the start of the signed bytes.
pub const SIGNING_DOMAIN: &[u8; 20] = b"allium-node-list-v1\0";
/// Most nodes a list may hold (bounds decoding work and memory).
pub const MAX_NODES: usize = 10_000;
pub use crate::address::MAX_ADDRESS_LEN;
/// Longest `version`.
pub const MAX_VERSION_LEN: usize = 32;
/// Largest encoded node list a decoder reads, in bytes.
pub const MAX_ENCODED_LEN: usize = 4 * 1024 * 1024;

/// Why a node list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NodeListError {
    /// Not JSON of the node-list shape.
    #[error("malformed node list: {0}")]
    Malformed(String),
    /// Larger than [`MAX_ENCODED_LEN`].
    #[error("node list is {0} bytes, more than the {MAX_ENCODED_LEN} a client reads")]
    TooLarge(usize),
    /// More than [`MAX_NODES`] nodes.
    #[error("node list has {0} nodes, more than {MAX_NODES}")]
    TooManyNodes(usize),
    /// Nodes not in ascending order of Ed25519 key, or a key twice.
    #[error("nodes are not sorted by ed25519 key without duplicates (at index {0})")]
    Order(usize),
    /// A node entry is invalid.
    #[error("node {index}: {reason}")]
    BadNode {
        /// Position in `nodes`.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// Signed by a key that is not a trusted seed.
    #[error("signed by {0}, which is not a trusted seed")]
    UntrustedSigner(String),
    /// The signature does not verify.
    #[error("the seed's signature does not verify")]
    BadSignature,
}

/// One service node in the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    /// Ed25519 public key (the node's identity).
    pub ed25519: Hex32,
    /// X25519 public key (onion layers are encrypted to it); must be the
    /// Ed25519 key's Montgomery form.
    pub x25519: Hex32,
    /// `host:port` where the node serves HTTP.
    pub address: String,
    /// The node's swarm.
    pub swarm_id: SwarmId,
    /// Software version, `x.y.z`.
    pub version: String,
}

/// A signed snapshot of the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeList {
    /// Increases with every new snapshot from a seed.
    pub epoch: u64,
    /// The nodes, ascending by Ed25519 key.
    pub nodes: Vec<NodeEntry>,
    /// The signing seed's Ed25519 key.
    pub signer: Hex32,
    /// The seed's signature over [`NodeList::signed_bytes`].
    pub signature: Sig64,
}

impl NodeEntry {
    /// Checks this entry on its own (address form, version, swarm id, and
    /// that the X25519 key belongs to the Ed25519 key); the error says what
    /// is wrong.
    pub fn check_alone(&self) -> Result<(), String> {
        if let Err(e) = self.address.parse::<NodeAddress>() {
            return Err(format!("address {e}"));
        }
        if self.version.len() > MAX_VERSION_LEN || self.version.is_empty() {
            return Err("version is empty or too long".into());
        }
        if self.swarm_id == INVALID_SWARM_ID {
            return Err("swarm_id is the reserved invalid id".into());
        }
        match sodium::ed25519_pk_to_x25519(&self.ed25519.0) {
            Ok(x) if x == self.x25519.0 => Ok(()),
            _ => Err("x25519 key does not belong to the ed25519 key".into()),
        }
    }

    fn check(&self, index: usize) -> Result<(), NodeListError> {
        self.check_alone()
            .map_err(|reason| NodeListError::BadNode { index, reason })
    }
}

impl NodeList {
    /// The canonical bytes the seed signs (see the module docs).
    pub fn signed_bytes(epoch: u64, nodes: &[NodeEntry]) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + nodes.len() * 120);
        out.extend_from_slice(SIGNING_DOMAIN);
        out.extend_from_slice(&epoch.to_be_bytes());
        // `nodes.len()` is bounded by MAX_NODES for any list that verifies.
        out.extend_from_slice(&(nodes.len() as u32).to_be_bytes());
        for n in nodes {
            out.extend_from_slice(&n.ed25519.0);
            out.extend_from_slice(&n.x25519.0);
            out.extend_from_slice(&n.swarm_id.to_be_bytes());
            for field in [&n.address, &n.version] {
                // Lengths are bounded by MAX_ADDRESS_LEN / MAX_VERSION_LEN
                // (checked before signing and after decoding).
                out.push(field.len() as u8);
                out.extend_from_slice(field.as_bytes());
            }
        }
        out
    }

    /// Signs a snapshot: sorts the nodes, checks every entry, signs.
    pub fn sign(epoch: u64, mut nodes: Vec<NodeEntry>, seed: &Identity) -> Result<Self, NodeListError> {
        nodes.sort_by_key(|n| n.ed25519);
        let unsigned = Self {
            epoch,
            nodes,
            signer: Hex32(*seed.ed25519_pk()),
            signature: Sig64([0; 64]),
        };
        unsigned.check_shape()?;
        let signature = Sig64(seed.sign(&Self::signed_bytes(epoch, &unsigned.nodes)));
        Ok(Self { signature, ..unsigned })
    }

    /// Decodes JSON bytes and checks the shape (not the signature: see
    /// [`NodeList::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, NodeListError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(NodeListError::TooLarge(bytes.len()));
        }
        let list: Self = serde_json::from_slice(bytes).map_err(|e| NodeListError::Malformed(e.to_string()))?;
        list.check_shape()?;
        Ok(list)
    }

    /// Parses a JSON value (a `node_list` RPC result) and checks the shape.
    pub fn from_value(value: serde_json::Value) -> Result<Self, NodeListError> {
        let list: Self = serde_json::from_value(value).map_err(|e| NodeListError::Malformed(e.to_string()))?;
        list.check_shape()?;
        Ok(list)
    }

    /// The JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn check_shape(&self) -> Result<(), NodeListError> {
        if self.nodes.len() > MAX_NODES {
            return Err(NodeListError::TooManyNodes(self.nodes.len()));
        }
        if let Some(i) = self.nodes.windows(2).position(|w| w[0].ed25519 >= w[1].ed25519) {
            return Err(NodeListError::Order(i + 1));
        }
        self.nodes.iter().enumerate().try_for_each(|(i, n)| n.check(i))
    }

    /// Verifies that a trusted seed signed this snapshot.
    pub fn verify(&self, trusted_seeds: &[[u8; 32]]) -> Result<(), NodeListError> {
        if !trusted_seeds.contains(&self.signer.0) {
            return Err(NodeListError::UntrustedSigner(hex::encode(self.signer.0)));
        }
        self.check_shape()?;
        let msg = Self::signed_bytes(self.epoch, &self.nodes);
        if identity::verify(&self.signer.0, &msg, &self.signature.0) {
            Ok(())
        } else {
            Err(NodeListError::BadSignature)
        }
    }

    /// The swarm ids in this list.
    pub fn swarm_ring(&self) -> SwarmRing {
        SwarmRing::new(self.nodes.iter().map(|n| n.swarm_id))
    }

    /// The members of one swarm.
    pub fn swarm_members(&self, swarm: SwarmId) -> impl Iterator<Item = &NodeEntry> {
        self.nodes.iter().filter(move |n| n.swarm_id == swarm)
    }

    /// The entry of a node by Ed25519 key (binary search: nodes are sorted).
    pub fn find(&self, ed25519: &[u8; 32]) -> Option<&NodeEntry> {
        self.nodes
            .binary_search_by(|n| n.ed25519.0.cmp(ed25519))
            .ok()
            .and_then(|i| self.nodes.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn entry(seed: u8, swarm_id: u64) -> NodeEntry {
        let id = Identity::from_ed25519_seed(&[seed; 32]);
        NodeEntry {
            ed25519: Hex32(*id.ed25519_pk()),
            x25519: Hex32(*id.x25519_pk()),
            address: format!("127.0.0.1:{}", 20000 + u16::from(seed)),
            swarm_id,
            version: "0.1.0".into(),
        }
    }

    fn seed() -> Identity {
        Identity::from_ed25519_seed(&[0xee; 32])
    }

    #[test]
    fn sign_decode_verify() {
        let list = NodeList::sign(3, vec![entry(2, 10), entry(1, 10), entry(3, 20)], &seed()).unwrap();
        assert!(list.nodes.windows(2).all(|w| w[0].ed25519 < w[1].ed25519));
        let decoded = NodeList::decode(&list.encode()).unwrap();
        assert_eq!(decoded, list);
        assert_eq!(decoded.verify(&[*seed().ed25519_pk()]), Ok(()));
        assert_eq!(decoded.swarm_ring().ids(), &[10, 20]);
        assert_eq!(decoded.swarm_members(10).count(), 2);
        assert!(decoded.find(&list.nodes[1].ed25519.0).is_some());
    }

    #[test]
    fn untrusted_or_altered_lists_are_refused() {
        let list = NodeList::sign(3, vec![entry(1, 10), entry(2, 20)], &seed()).unwrap();
        let other = Identity::from_ed25519_seed(&[0xdd; 32]);
        assert!(matches!(
            list.verify(&[*other.ed25519_pk()]),
            Err(NodeListError::UntrustedSigner(_))
        ));
        let trusted = [*seed().ed25519_pk()];
        let mut bumped = list.clone();
        bumped.epoch += 1;
        assert_eq!(bumped.verify(&trusted), Err(NodeListError::BadSignature));
        let mut moved = list.clone();
        moved.nodes[0].swarm_id = 30;
        assert_eq!(moved.verify(&trusted), Err(NodeListError::BadSignature));
        let mut readdressed = list;
        readdressed.nodes[1].address = "10.0.0.1:1".into();
        assert_eq!(readdressed.verify(&trusted), Err(NodeListError::BadSignature));
    }

    #[test]
    fn bad_entries_are_refused() {
        let mut e = entry(1, 10);
        e.x25519 = entry(2, 10).x25519;
        assert!(matches!(
            NodeList::sign(1, vec![e], &seed()),
            Err(NodeListError::BadNode { index: 0, .. })
        ));
        for address in [
            "nohost",
            ":80",
            "h:0",
            "h:65536",
            "h:+80",
            "a b:1",
            "evil.example/x#:80",
        ] {
            let mut e = entry(1, 10);
            e.address = address.into();
            assert!(NodeList::sign(1, vec![e], &seed()).is_err(), "{address} accepted");
        }
        let mut e = entry(1, INVALID_SWARM_ID);
        assert!(NodeList::sign(1, vec![e.clone()], &seed()).is_err());
        e.swarm_id = 1;
        e.version = "x".repeat(33);
        assert!(NodeList::sign(1, vec![e], &seed()).is_err());
        assert!(NodeList::sign(1, vec![entry(1, 1), entry(1, 1)], &seed()).is_err());
    }

    #[test]
    fn decoder_refuses_unsorted_and_oversized_input() {
        let mut list = NodeList::sign(1, vec![entry(1, 1), entry(2, 1)], &seed()).unwrap();
        list.nodes.swap(0, 1);
        assert_eq!(NodeList::decode(&list.encode()), Err(NodeListError::Order(1)));
        assert!(matches!(
            NodeList::decode(&vec![b' '; MAX_ENCODED_LEN + 1]),
            Err(NodeListError::TooLarge(_))
        ));
        assert!(matches!(NodeList::decode(b"{}"), Err(NodeListError::Malformed(_))));
    }
}
