//! One service node as the consensus lists it ([`crate::consensus`]).
//!
//! JSON shape (kept exactly; other implementations rely on it):
//!
//! ```json
//! {"ed25519": hex, "x25519": hex, "address": "host:port", "swarm_id": 42, "version": "0.1.0",
//!  "guard": true}
//! ```
//!
//! `guard` (absent when false) is the consensus's flag for nodes clients
//! may choose as guards.

use serde::{Deserialize, Serialize};

use crate::address::NodeAddress;
use crate::encoding::Hex32;
use crate::sodium;
use crate::swarm::{INVALID_SWARM_ID, SwarmId};

/// Most nodes a list may hold (bounds decoding work and memory).
pub const MAX_NODES: usize = 10_000;
pub use crate::address::MAX_ADDRESS_LEN;
/// Longest `version`.
pub const MAX_VERSION_LEN: usize = 32;
pub use crate::consensus::MAX_ENCODED_LEN;

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
    /// Known long enough to a majority of the seeds to be a guard.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub guard: bool,
}

impl NodeEntry {
    /// Checks this entry on its own (address form, version, swarm id, and
    /// that the X25519 key belongs to the Ed25519 key); the error says what
    /// is wrong.
    pub fn check_alone(&self) -> Result<(), String> {
        self.check_fields()?;
        self.check_key()
    }

    /// The cheap part of [`NodeEntry::check_alone`]: address, version and
    /// swarm id.
    pub fn check_fields(&self) -> Result<(), String> {
        if let Err(e) = self.address.parse::<NodeAddress>() {
            return Err(format!("address {e}"));
        }
        if self.version.len() > MAX_VERSION_LEN || self.version.is_empty() {
            return Err("version is empty or too long".into());
        }
        if self.swarm_id == INVALID_SWARM_ID {
            return Err("swarm_id is the reserved invalid id".into());
        }
        Ok(())
    }

    /// The costly part (about 75 µs): that the X25519 key is the Ed25519
    /// key's Montgomery form.
    pub fn check_key(&self) -> Result<(), String> {
        match sodium::ed25519_pk_to_x25519(&self.ed25519.0) {
            Ok(x) if x == self.x25519.0 => Ok(()),
            _ => Err("x25519 key does not belong to the ed25519 key".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    fn entry(seed: u8, swarm_id: u64) -> NodeEntry {
        let id = Identity::from_ed25519_seed(&[seed; 32]);
        NodeEntry {
            ed25519: Hex32(*id.ed25519_pk()),
            x25519: Hex32(*id.x25519_pk()),
            address: format!("127.0.0.1:{}", 20000 + u16::from(seed)),
            swarm_id,
            version: "0.1.0".into(),
            guard: false,
        }
    }

    #[test]
    fn bad_entries_are_refused() {
        assert_eq!(entry(1, 10).check_alone(), Ok(()));
        let mut e = entry(1, 10);
        e.x25519 = entry(2, 10).x25519;
        assert!(e.check_alone().is_err());
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
            assert!(e.check_alone().is_err(), "{address} accepted");
        }
        assert!(entry(1, INVALID_SWARM_ID).check_alone().is_err());
        let mut e = entry(1, 1);
        e.version = "x".repeat(33);
        assert!(e.check_alone().is_err());
    }
}
