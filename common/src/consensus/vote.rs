//! A seed's vote: the nodes it measured itself, for one period.
//!
//! JSON shape:
//!
//! ```json
//! {"period": 7, "period_ms": 300000, "published": 1700000000000, "methods": [1],
//!  "params": {"min_swarm_size": 5, "target_swarm_size": 7, "max_swarm_size": 10},
//!  "seed": hex, "nodes": [{"ed25519": hex, "x25519": hex, "address": "host:port",
//!  "version": "0.1.0", "swarm_id": 42, "first_seen": 1699990000000}], "signature": base64}
//! ```
//!
//! `swarm_id` is the node's swarm in the newest consensus the seed holds
//! (absent for a node it holds none for); `first_seen` is when the seed
//! first reached it (Unix ms). The signature covers (`docs/protocol.md`):
//!
//! ```text
//! "allium-vote-v1" 0x00                  15 bytes
//! period u64 BE ‖ period_ms u64 BE ‖ published u64 BE
//! methods: count u8 ‖ each u32 BE
//! min_swarm_size u32 BE ‖ target_swarm_size u32 BE ‖ max_swarm_size u32 BE
//! probation_ms u64 BE ‖ guard_after_ms u64 BE
//! seed (32)
//! count u32 BE
//! per node, ascending by ed25519:
//!   ed25519 (32) ‖ x25519 (32) ‖ has_swarm u8 (0 or 1) ‖ swarm_id u64 BE (0 if none)
//!   ‖ first_seen u64 BE ‖ len u8 ‖ address ‖ len u8 ‖ version
//! ```

use serde::{Deserialize, Serialize};

use super::seed_key::{SeedKey, SigningKeyCert, signed_for};
use super::wire::{count, short_str};
use super::{ConsensusError, ConsensusParams, MAX_ENCODED_LEN, check_sorted};
use crate::encoding::{Hex32, Sig64};
use crate::node_list::{MAX_NODES, NodeEntry};
use crate::swarm::SwarmId;

/// Domain separator of a vote's signed bytes.
pub const VOTE_DOMAIN: &[u8; 15] = b"allium-vote-v1\0";
/// Most consensus methods one vote may list.
pub const MAX_METHODS: usize = 16;

/// One node as a seed saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoteEntry {
    /// Ed25519 key.
    pub ed25519: Hex32,
    /// X25519 key (the Ed25519 key's Montgomery form).
    pub x25519: Hex32,
    /// `host:port`.
    pub address: String,
    /// Software version.
    pub version: String,
    /// Its swarm in the newest consensus the seed holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swarm_id: Option<SwarmId>,
    /// When the seed first reached it, Unix ms.
    pub first_seen: u64,
}

/// A seed's signed vote for one period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vote {
    /// The period voted on.
    pub period: u64,
    /// The period length the seed runs with.
    pub period_ms: u64,
    /// When the vote was made, Unix ms.
    pub published: u64,
    /// Consensus methods the seed can compute.
    pub methods: Vec<u32>,
    /// Network parameters the seed proposes.
    pub params: ConsensusParams,
    /// Commit to the random value this seed reveals in its next vote
    /// ([`super::random`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<Hex32>,
    /// The random value this seed committed to in its previous vote.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reveal: Option<Hex32>,
    /// The voting seed's identity key.
    pub seed: Hex32,
    /// The nodes, ascending by Ed25519 key.
    pub nodes: Vec<VoteEntry>,
    /// The seed's signature over [`Vote::signed_bytes`]: by the identity,
    /// or by the signing key `cert` certifies.
    pub signature: Sig64,
    /// The identity's certificate for the key that signed (absent: the
    /// identity signed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<SigningKeyCert>,
}

impl VoteEntry {
    /// The entry as the consensus would list it in `swarm`.
    pub fn as_entry(&self, swarm_id: SwarmId) -> NodeEntry {
        NodeEntry {
            ed25519: self.ed25519,
            x25519: self.x25519,
            address: self.address.clone(),
            swarm_id,
            version: self.version.clone(),
            guard: false,
        }
    }
}

impl Vote {
    /// Signs a vote: sorts the nodes and checks the shape.
    #[allow(clippy::too_many_arguments)]
    pub fn sign<'a>(
        period: u64,
        period_ms: u64,
        published: u64,
        methods: Vec<u32>,
        params: ConsensusParams,
        mut nodes: Vec<VoteEntry>,
        seed: impl Into<SeedKey<'a>>,
    ) -> Result<Self, ConsensusError> {
        let seed = seed.into();
        nodes.sort_by_key(|n| n.ed25519);
        let mut vote = Self {
            period,
            period_ms,
            published,
            methods,
            params,
            commit: None,
            reveal: None,
            seed: Hex32(seed.identity()),
            nodes,
            signature: Sig64([0; 64]),
            cert: seed.cert.cloned(),
        };
        vote.check_shape()?;
        vote.nodes.iter().enumerate().try_for_each(|(index, n)| {
            n.as_entry(0)
                .check_key()
                .map_err(|reason| ConsensusError::BadNode { index, reason })
        })?;
        vote.signature = seed.sign(&vote.signed_bytes());
        Ok(vote)
    }

    /// The vote with this seed's commit for the next period and its reveal
    /// of the previous commit ([`super::random`]), signed again by `seed`.
    pub fn with_shared_random<'a>(
        mut self,
        commit: [u8; 32],
        reveal: Option<[u8; 32]>,
        seed: impl Into<SeedKey<'a>>,
    ) -> Self {
        self.commit = Some(Hex32(commit));
        self.reveal = reveal.map(Hex32);
        self.signature = seed.into().sign(&self.signed_bytes());
        self
    }

    /// The canonical bytes the seed signs (see the module docs).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.nodes.len() * 130);
        out.extend_from_slice(VOTE_DOMAIN);
        for n in [self.period, self.period_ms, self.published] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.push(u8::try_from(self.methods.len()).unwrap_or(u8::MAX));
        for m in &self.methods {
            out.extend_from_slice(&m.to_be_bytes());
        }
        self.params.encode(&mut out);
        out.push(u8::from(self.commit.is_some()) | (u8::from(self.reveal.is_some()) << 1));
        for value in [&self.commit, &self.reveal].into_iter().flatten() {
            out.extend_from_slice(&value.0);
        }
        out.extend_from_slice(&self.seed.0);
        count(&mut out, self.nodes.len());
        for n in &self.nodes {
            out.extend_from_slice(&n.ed25519.0);
            out.extend_from_slice(&n.x25519.0);
            out.push(u8::from(n.swarm_id.is_some()));
            out.extend_from_slice(&n.swarm_id.unwrap_or(0).to_be_bytes());
            out.extend_from_slice(&n.first_seen.to_be_bytes());
            short_str(&mut out, &n.address);
            short_str(&mut out, &n.version);
        }
        out
    }

    /// Decodes JSON bytes and checks the shape (not the signature: see
    /// [`Vote::verify`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, ConsensusError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(ConsensusError::TooLarge(bytes.len()));
        }
        let vote: Self = serde_json::from_slice(bytes).map_err(|e| ConsensusError::Malformed {
            what: "vote",
            reason: e.to_string(),
        })?;
        vote.check_shape()?;
        Ok(vote)
    }

    /// The JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn check_shape(&self) -> Result<(), ConsensusError> {
        if self.nodes.len() > MAX_NODES {
            return Err(ConsensusError::TooManyNodes(self.nodes.len()));
        }
        if self.methods.is_empty() || self.methods.len() > MAX_METHODS {
            return Err(ConsensusError::BadField(format!(
                "a vote lists 1 to {MAX_METHODS} methods, not {}",
                self.methods.len()
            )));
        }
        self.params.check()?;
        check_sorted(self.nodes.iter().map(|n| &n.ed25519.0))?;
        self.nodes.iter().enumerate().try_for_each(|(index, n)| {
            // The swarm id is not the vote's to check: a seed may hold none.
            n.as_entry(0)
                .check_fields()
                .map_err(|reason| ConsensusError::BadNode { index, reason })
        })
    }

    /// Checks that one of `seeds` made this vote and that its signature
    /// verifies.
    pub fn verify(&self, seeds: &[[u8; 32]]) -> Result<(), ConsensusError> {
        self.verify_after(seeds, None)
    }

    /// [`Vote::verify`], checking the keys only of nodes that `known` (a
    /// verified consensus) does not list with the same keys.
    pub fn verify_after(&self, seeds: &[[u8; 32]], known: Option<&super::Consensus>) -> Result<(), ConsensusError> {
        let bad = |reason| ConsensusError::BadVote {
            seed: hex::encode(self.seed.0),
            period: self.period,
            reason,
        };
        if !seeds.contains(&self.seed.0) {
            return Err(bad("not a trusted seed"));
        }
        self.check_shape()?;
        if let Some(cert) = &self.cert {
            if cert.identity != self.seed {
                return Err(bad("its key certificate is another seed's"));
            }
            cert.check(self.published)?;
        }
        if !signed_for(
            &self.seed.0,
            self.cert.as_ref(),
            &self.signed_bytes(),
            &self.signature.0,
            self.published,
        ) {
            return Err(bad("the signature does not verify"));
        }
        self.nodes.iter().enumerate().try_for_each(|(index, n)| {
            if known
                .and_then(|k| k.find(&n.ed25519.0))
                .is_some_and(|k| k.x25519 == n.x25519)
            {
                return Ok(());
            }
            n.as_entry(0)
                .check_key()
                .map_err(|reason| ConsensusError::BadNode { index, reason })
        })
    }
}
