//! The consensus document, and the signatures of the seeds that computed it.
//!
//! JSON shape (the node entries keep the shape of the single-seed node list):
//!
//! ```json
//! {"method": 1, "period": 7, "valid_after": ms, "fresh_until": ms, "valid_until": ms,
//!  "params": {"min_swarm_size": 5, "target_swarm_size": 7, "max_swarm_size": 10,
//!             "probation_ms": 900000, "guard_after_ms": 691200000},
//!  "voters": [hex], "srv": hex, "commits": [{"seed": hex, "commit": hex}],
//!  "nodes": [{"ed25519": hex, "x25519": hex, "address": "host:port", "swarm_id": 42,
//!  "version": "0.1.0"}],
//!  "signatures": [{"seed": hex, "signature": base64, "cert"?: {...}}]}
//! ```
//!
//! Every seed signs the same digest, `BLAKE2b-256` of the canonical bytes:
//!
//! ```text
//! "allium-consensus-v1" 0x00                        20 bytes
//! method u32 BE ‖ period u64 BE
//! valid_after u64 BE ‖ fresh_until u64 BE ‖ valid_until u64 BE
//! min_swarm_size u32 BE ‖ target_swarm_size u32 BE ‖ max_swarm_size u32 BE
//! probation_ms u64 BE ‖ guard_after_ms u64 BE
//! voters: count u32 BE ‖ seed key (32) each, ascending
//! srv (32) ‖ commits: count u32 BE ‖ (seed (32) ‖ commit (32)) each, ascending
//! count u32 BE
//! per node, ascending by ed25519:
//!   ed25519 (32) ‖ x25519 (32) ‖ swarm_id u64 BE ‖ flags u8 (bit 0: guard)
//!   ‖ len u8 ‖ address ‖ len u8 ‖ version
//! ```
//!
//! and a seed's signature is Ed25519 over `"allium-consensus-sig-v1" 0x00 ‖
//! digest`, so checking several signatures hashes the document once.

use serde::{Deserialize, Serialize};

use super::random::SeedCommit;
use super::seed_key::{SeedKey, SigningKeyCert, signed_for};
use super::wire::{count, entry};
use super::{ConsensusError, MAX_EARLY_MS, MAX_ENCODED_LEN, MAX_LATE_MS, MAX_SEEDS, check_sorted, threshold};
use crate::encoding::{Hex32, Sig64};
use crate::identity::Identity;
use crate::node_list::{MAX_NODES, NodeEntry};
use crate::sodium;
use crate::swarm::assign::AssignParams;
use crate::swarm::{SwarmId, SwarmRing};

/// Domain separator of the document's canonical bytes.
pub const CONSENSUS_DOMAIN: &[u8; 20] = b"allium-consensus-v1\0";
/// Domain separator of a seed's signature over the digest.
pub const SIGNATURE_DOMAIN: &[u8; 24] = b"allium-consensus-sig-v1\0";
/// Largest swarm size a network may use.
pub const MAX_SWARM_SIZE: u32 = 1000;
/// Default probation: three periods of five minutes.
pub const DEFAULT_PROBATION_MS: u64 = 15 * 60 * 1000;
/// Default age of a guard: about eight days, as Tor asks of its guards.
pub const DEFAULT_GUARD_AFTER_MS: u64 = 8 * 24 * 60 * 60 * 1000;

/// Network parameters the seeds vote on; the consensus holds their medians.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    /// Fewest members of a swarm.
    pub min_swarm_size: u32,
    /// The size new nodes fill swarms up to.
    pub target_swarm_size: u32,
    /// Most members of a swarm.
    pub max_swarm_size: u32,
    /// How long a majority of the seeds must have known a node before it
    /// is listed (and so stores messages for a swarm or relays), ms.
    pub probation_ms: u64,
    /// How long a majority of the seeds must have known a node before
    /// clients may choose it as a guard, ms.
    pub guard_after_ms: u64,
}

impl ConsensusParams {
    /// The swarm bounds for [`crate::swarm::assign::assign`].
    pub fn assign_params(&self) -> AssignParams {
        let size = |n: u32| usize::try_from(n).unwrap_or(usize::MAX);
        AssignParams {
            min_size: size(self.min_swarm_size),
            target_size: size(self.target_swarm_size),
            max_size: size(self.max_swarm_size),
        }
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        for n in [self.min_swarm_size, self.target_swarm_size, self.max_swarm_size] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        for n in [self.probation_ms, self.guard_after_ms] {
            out.extend_from_slice(&n.to_be_bytes());
        }
    }

    pub(crate) fn check(&self) -> Result<(), ConsensusError> {
        let ordered = 1 <= self.min_swarm_size
            && self.min_swarm_size <= self.target_swarm_size
            && self.target_swarm_size <= self.max_swarm_size
            && self.max_swarm_size <= MAX_SWARM_SIZE;
        if ordered {
            Ok(())
        } else {
            Err(ConsensusError::BadField(format!(
                "swarm sizes must be 1 <= min <= target <= max <= {MAX_SWARM_SIZE}: {self:?}"
            )))
        }
    }
}

impl Default for ConsensusParams {
    fn default() -> Self {
        let p = AssignParams::DEFAULT;
        let size = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Self {
            min_swarm_size: size(p.min_size),
            target_swarm_size: size(p.target_size),
            max_swarm_size: size(p.max_size),
            probation_ms: DEFAULT_PROBATION_MS,
            guard_after_ms: DEFAULT_GUARD_AFTER_MS,
        }
    }
}

/// One seed's signature over the consensus digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedSignature {
    /// The seed's identity key.
    pub seed: Hex32,
    /// Ed25519 over [`SIGNATURE_DOMAIN`] ‖ digest, by the identity or by
    /// the signing key `cert` certifies.
    pub signature: Sig64,
    /// The identity's certificate for the key that signed (absent: the
    /// identity signed). It must cover the document's `valid_after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<SigningKeyCert>,
}

/// A consensus whose signatures a majority of trusted seeds made and whose
/// time is acceptable; only [`UnverifiedConsensus::verify`] and the seeds'
/// own computation make one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consensus {
    /// The consensus method it was computed with.
    pub method: u32,
    /// Its period.
    pub period: u64,
    /// When it starts to be valid, Unix ms.
    pub valid_after: u64,
    /// When the next one is due, Unix ms.
    pub fresh_until: u64,
    /// When it stops being valid, Unix ms.
    pub valid_until: u64,
    /// Network parameters (medians of the votes).
    pub params: ConsensusParams,
    /// The seeds whose votes it was computed from, ascending (a seed that
    /// computed another document can tell which votes it missed).
    pub voters: Vec<Hex32>,
    /// The shared random value of this period ([`super::random`]).
    pub srv: Hex32,
    /// The counted votes' commits, ascending by seed: the next period's
    /// reveals are checked against them.
    pub commits: Vec<SeedCommit>,
    /// The nodes, ascending by Ed25519 key.
    pub nodes: Vec<NodeEntry>,
    /// Seed signatures, ascending by seed key.
    pub signatures: Vec<SeedSignature>,
}

/// A consensus as it came off the wire: its shape is checked, its
/// signatures and times are not. Only [`UnverifiedConsensus::verify`]
/// turns it into a [`Consensus`] (the "unchecked until verified" pattern of
/// arti's tor-checkable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedConsensus(Consensus);

impl Consensus {
    /// The canonical bytes (see the module docs): everything but the
    /// signatures.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.nodes.len() * 120);
        out.extend_from_slice(CONSENSUS_DOMAIN);
        out.extend_from_slice(&self.method.to_be_bytes());
        for n in [self.period, self.valid_after, self.fresh_until, self.valid_until] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        self.params.encode(&mut out);
        count(&mut out, self.voters.len());
        for v in &self.voters {
            out.extend_from_slice(&v.0);
        }
        out.extend_from_slice(&self.srv.0);
        count(&mut out, self.commits.len());
        for c in &self.commits {
            out.extend_from_slice(&c.seed.0);
            out.extend_from_slice(&c.commit.0);
        }
        count(&mut out, self.nodes.len());
        for n in &self.nodes {
            entry(&mut out, n);
        }
        out
    }

    /// The digest every seed signs.
    pub fn digest(&self) -> [u8; 32] {
        sodium::blake2b::<32>(&[&self.signed_bytes()])
    }

    fn signature_message(digest: &[u8; 32]) -> Vec<u8> {
        [SIGNATURE_DOMAIN.as_slice(), digest].concat()
    }

    /// This seed's signature over `digest` (the digest of this document).
    pub fn signature_by<'a>(seed: impl Into<SeedKey<'a>>, digest: &[u8; 32]) -> SeedSignature {
        let seed = seed.into();
        SeedSignature {
            seed: Hex32(seed.identity()),
            signature: seed.sign(&Self::signature_message(digest)),
            cert: seed.cert.cloned(),
        }
    }

    /// Whether `signature` is `signature.seed`'s over `digest`, for a
    /// document valid from `valid_after` (which a certified signing key
    /// must cover).
    pub fn signature_verifies(signature: &SeedSignature, digest: &[u8; 32], valid_after: u64) -> bool {
        signed_for(
            &signature.seed.0,
            signature.cert.as_ref(),
            &Self::signature_message(digest),
            &signature.signature.0,
            valid_after,
        )
    }

    /// Adds a signature (replacing an earlier one of the same seed) and
    /// keeps the list sorted. The caller checks it first.
    pub fn add_signature(&mut self, signature: SeedSignature) {
        match self.signatures.binary_search_by_key(&signature.seed, |s| s.seed) {
            Ok(i) => self.signatures[i] = signature,
            Err(i) => self.signatures.insert(i, signature),
        }
    }

    /// The trusted seeds whose signature over this document verifies.
    pub fn valid_signers(&self, seeds: &[[u8; 32]]) -> Vec<[u8; 32]> {
        let digest = self.digest();
        let mut signers: Vec<[u8; 32]> = self
            .signatures
            .iter()
            .filter(|s| seeds.contains(&s.seed.0) && Self::signature_verifies(s, &digest, self.valid_after))
            .map(|s| s.seed.0)
            .collect();
        signers.sort_unstable();
        signers.dedup();
        signers
    }

    /// Whether more than half of `seeds` signed it.
    pub fn has_majority(&self, seeds: &[[u8; 32]]) -> bool {
        self.valid_signers(seeds).len() >= threshold(seeds.len())
    }

    pub(crate) fn check_shape(&self) -> Result<(), ConsensusError> {
        if self.nodes.len() > MAX_NODES {
            return Err(ConsensusError::TooManyNodes(self.nodes.len()));
        }
        if self.signatures.len() > MAX_SEEDS {
            return Err(ConsensusError::BadField(format!(
                "{} signatures, more than {MAX_SEEDS}",
                self.signatures.len()
            )));
        }
        let times_ordered = self.valid_after < self.fresh_until && self.fresh_until <= self.valid_until;
        if !times_ordered {
            return Err(ConsensusError::BadField(
                "valid_after < fresh_until <= valid_until does not hold".into(),
            ));
        }
        self.params.check()?;
        if self.voters.len() > MAX_SEEDS {
            return Err(ConsensusError::BadField(format!(
                "{} voters, more than {MAX_SEEDS}",
                self.voters.len()
            )));
        }
        if self.commits.len() > MAX_SEEDS {
            return Err(ConsensusError::BadField(format!(
                "{} commits, more than {MAX_SEEDS}",
                self.commits.len()
            )));
        }
        check_sorted(self.voters.iter().map(|v| &v.0))?;
        check_sorted(self.commits.iter().map(|c| &c.seed.0))?;
        check_sorted(self.signatures.iter().map(|s| &s.seed.0))?;
        check_sorted(self.nodes.iter().map(|n| &n.ed25519.0))?;
        self.nodes.iter().enumerate().try_for_each(|(index, n)| {
            n.check_fields()
                .map_err(|reason| ConsensusError::BadNode { index, reason })
        })
    }

    /// Checks that every X25519 key belongs to its Ed25519 key, except for
    /// entries `known` (a verified consensus) already lists with the same
    /// pair: those were checked when it was.
    fn check_keys(&self, known: Option<&Self>) -> Result<(), ConsensusError> {
        self.nodes.iter().enumerate().try_for_each(|(index, n)| {
            if known
                .and_then(|k| k.find(&n.ed25519.0))
                .is_some_and(|k| k.x25519 == n.x25519)
            {
                return Ok(());
            }
            n.check_key()
                .map_err(|reason| ConsensusError::BadNode { index, reason })
        })
    }

    /// The JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes JSON bytes and checks the shape.
    pub fn decode(bytes: &[u8]) -> Result<UnverifiedConsensus, ConsensusError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(ConsensusError::TooLarge(bytes.len()));
        }
        let c: Self = serde_json::from_slice(bytes).map_err(|e| ConsensusError::Malformed {
            what: "consensus",
            reason: e.to_string(),
        })?;
        c.check_shape()?;
        Ok(UnverifiedConsensus(c))
    }

    /// Parses a JSON value (a `node_list` answer) and checks the shape.
    pub fn from_value(value: serde_json::Value) -> Result<UnverifiedConsensus, ConsensusError> {
        let c: Self = serde_json::from_value(value).map_err(|e| ConsensusError::Malformed {
            what: "consensus",
            reason: e.to_string(),
        })?;
        c.check_shape()?;
        Ok(UnverifiedConsensus(c))
    }

    /// The swarm ids in this consensus.
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

    /// A consensus of `nodes` for `period` of `schedule`, signed by
    /// `seeds`, made without votes: for fixtures, tests and tools. Sorts the
    /// nodes and checks the shape.
    pub fn assemble(
        schedule: &super::Schedule,
        period: u64,
        mut nodes: Vec<NodeEntry>,
        seeds: &[&Identity],
    ) -> Result<Self, ConsensusError> {
        nodes.sort_by_key(|n| n.ed25519);
        let mut voters: Vec<Hex32> = seeds.iter().map(|s| Hex32(*s.ed25519_pk())).collect();
        voters.sort_unstable();
        voters.dedup();
        let mut c = Self {
            method: super::SUPPORTED_METHODS[0],
            period,
            valid_after: schedule.valid_after(period),
            fresh_until: schedule.fresh_until(period),
            valid_until: schedule.valid_until(period),
            params: ConsensusParams::default(),
            voters,
            srv: Hex32([0; 32]),
            commits: Vec::new(),
            nodes,
            signatures: Vec::new(),
        };
        c.check_shape()?;
        c.check_keys(None)?;
        let digest = c.digest();
        for seed in seeds {
            c.add_signature(Self::signature_by(*seed, &digest));
        }
        Ok(c)
    }

    /// Whether the two documents list the same nodes in the same swarms
    /// (periods and signatures aside).
    pub fn same_network(&self, other: &Self) -> bool {
        self.nodes == other.nodes
    }
}

impl From<Consensus> for UnverifiedConsensus {
    /// A document to check again (a verified one passes again, unless it
    /// expired meanwhile).
    fn from(c: Consensus) -> Self {
        Self(c)
    }
}

impl UnverifiedConsensus {
    /// The period it claims (for choosing among several before verifying).
    pub fn period(&self) -> u64 {
        self.0.period
    }

    /// The digest of what it claims (to notice two documents for one period).
    pub fn digest(&self) -> [u8; 32] {
        self.0.digest()
    }

    /// The seeds whose votes it claims to be computed from.
    pub fn voters(&self) -> &[Hex32] {
        &self.0.voters
    }

    /// Checks that more than half of `seeds` signed it, that `now` (Unix
    /// ms) is within its validity, give or take [`MAX_EARLY_MS`] before and
    /// [`MAX_LATE_MS`] after, and that every node's keys belong together.
    pub fn verify(self, seeds: &[[u8; 32]], now: u64) -> Result<Consensus, ConsensusError> {
        self.verify_after(seeds, now, None)
    }

    /// [`UnverifiedConsensus::verify`], checking the keys only of nodes
    /// that `known` (a consensus verified before) does not list with the
    /// same keys: following the network from period to period costs what
    /// changed, not the whole list.
    pub fn verify_after(
        self,
        seeds: &[[u8; 32]],
        now: u64,
        known: Option<&Consensus>,
    ) -> Result<Consensus, ConsensusError> {
        let c = self.0;
        let valid = c.valid_signers(seeds).len();
        let needed = threshold(seeds.len());
        if valid < needed || seeds.is_empty() {
            return Err(ConsensusError::TooFewSignatures {
                period: c.period,
                valid,
                needed,
                seeds: seeds.len(),
            });
        }
        if now > c.valid_until.saturating_add(MAX_LATE_MS) {
            return Err(ConsensusError::Expired {
                period: c.period,
                valid_until: c.valid_until,
                now,
            });
        }
        if now.saturating_add(MAX_EARLY_MS) < c.valid_after {
            return Err(ConsensusError::NotYetValid {
                period: c.period,
                valid_after: c.valid_after,
                now,
            });
        }
        c.check_keys(known)?;
        Ok(c)
    }

    /// The document without any check of its signatures or times: for
    /// tests and tools that inspect what a peer sent, never for use.
    pub fn into_unchecked(self) -> Consensus {
        self.0
    }
}
