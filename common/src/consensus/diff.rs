//! What changed between two consensuses, so that a node or client that
//! holds one period's document fetches only the difference to the next.
//!
//! JSON shape:
//!
//! ```json
//! {"from_period": 7, "from_digest": hex, "method": 1, "period": 8,
//!  "valid_after": ms, "fresh_until": ms, "valid_until": ms, "params": {...},
//!  "removed": [hex], "upserted": [{node entry}], "signatures": [...]}
//! ```
//!
//! Applied to the document whose digest is `from_digest`, it gives the new
//! document, which is then verified like any other (its signatures cover
//! the new document's digest, so a diff cannot forge anything: at worst it
//! fails to apply and the full document is fetched).

use serde::{Deserialize, Serialize};

use super::random::SeedCommit;
use super::{Consensus, ConsensusError, ConsensusParams, MAX_ENCODED_LEN, SeedSignature, UnverifiedConsensus};
use crate::encoding::Hex32;
use crate::node_list::{MAX_NODES, NodeEntry};

/// The difference from one consensus to a later one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusDiff {
    /// The period of the document it applies to.
    pub from_period: u64,
    /// The digest of the document it applies to.
    pub from_digest: Hex32,
    /// The new document's method.
    pub method: u32,
    /// The new document's period.
    pub period: u64,
    /// The new document's `valid_after`.
    pub valid_after: u64,
    /// The new document's `fresh_until`.
    pub fresh_until: u64,
    /// The new document's `valid_until`.
    pub valid_until: u64,
    /// The new document's parameters.
    pub params: ConsensusParams,
    /// The new document's voters.
    pub voters: Vec<Hex32>,
    /// The new document's shared random value.
    pub srv: Hex32,
    /// The new document's commits.
    pub commits: Vec<SeedCommit>,
    /// Keys of nodes no longer listed, ascending.
    pub removed: Vec<Hex32>,
    /// Entries new or changed, ascending by key.
    pub upserted: Vec<NodeEntry>,
    /// The new document's signatures.
    pub signatures: Vec<SeedSignature>,
}

impl Consensus {
    /// The difference from `base` to this document.
    pub fn diff_from(&self, base: &Self) -> ConsensusDiff {
        let removed = base
            .nodes
            .iter()
            .filter(|n| self.find(&n.ed25519.0).is_none())
            .map(|n| n.ed25519)
            .collect();
        let upserted = self
            .nodes
            .iter()
            .filter(|n| base.find(&n.ed25519.0) != Some(*n))
            .cloned()
            .collect();
        ConsensusDiff {
            from_period: base.period,
            from_digest: Hex32(base.digest()),
            method: self.method,
            period: self.period,
            valid_after: self.valid_after,
            fresh_until: self.fresh_until,
            valid_until: self.valid_until,
            params: self.params,
            voters: self.voters.clone(),
            srv: self.srv,
            commits: self.commits.clone(),
            removed,
            upserted,
            signatures: self.signatures.clone(),
        }
    }
}

impl ConsensusDiff {
    /// Decodes JSON bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ConsensusError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(ConsensusError::TooLarge(bytes.len()));
        }
        serde_json::from_slice(bytes).map_err(|e| ConsensusError::Malformed {
            what: "consensus diff",
            reason: e.to_string(),
        })
    }

    /// The JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The new document: `base` with the changes applied, shape-checked
    /// and still to be verified. Fails if `base` is not the document the
    /// diff was made from.
    pub fn apply(&self, base: &Consensus) -> Result<UnverifiedConsensus, ConsensusError> {
        if base.period != self.from_period || base.digest() != self.from_digest.0 {
            return Err(ConsensusError::BadField(format!(
                "the diff applies to period {} with another digest, not to the consensus held",
                self.from_period
            )));
        }
        if self.upserted.len() > MAX_NODES || self.removed.len() > MAX_NODES {
            return Err(ConsensusError::TooManyNodes(
                self.upserted.len().max(self.removed.len()),
            ));
        }
        // Both lists are sorted, so one merge pass builds the new list.
        let mut nodes = Vec::with_capacity(base.nodes.len() + self.upserted.len());
        let mut upserted = self.upserted.iter().peekable();
        for n in &base.nodes {
            while let Some(u) = upserted.next_if(|u| u.ed25519 < n.ed25519) {
                nodes.push(u.clone());
            }
            match upserted.next_if(|u| u.ed25519 == n.ed25519) {
                Some(u) => nodes.push(u.clone()),
                None if self.removed.binary_search(&n.ed25519).is_ok() => {}
                None => nodes.push(n.clone()),
            }
        }
        nodes.extend(upserted.cloned());
        let next = Consensus {
            method: self.method,
            period: self.period,
            valid_after: self.valid_after,
            fresh_until: self.fresh_until,
            valid_until: self.valid_until,
            params: self.params,
            voters: self.voters.clone(),
            srv: self.srv,
            commits: self.commits.clone(),
            nodes,
            signatures: self.signatures.clone(),
        };
        // The shape check also refuses unsorted or duplicated upserts.
        next.check_shape()?;
        Ok(next.into())
    }
}
