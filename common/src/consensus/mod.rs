//! The network consensus: what the seeds measured, and the one document a
//! majority of them signs.
//!
//! Every seed measures the nodes itself (announce, probe, how long known)
//! and publishes a signed [`Vote`] for each numbered period. The consensus
//! for a period is a deterministic function of the votes ([`compute`]): any
//! seed holding the same votes computes byte for byte the same document,
//! and every seed signs the same digest. Clients and nodes use a consensus
//! only when more than half of the seeds they trust signed it
//! ([`UnverifiedConsensus::verify`]); they never go back to an older period
//! and refuse two different documents for one period.
//!
//! This is the design Tor adopted after single-authority lists proved a
//! trust bottleneck (dir-spec §0.2, §3.8): one stolen seed key, one seed
//! with a wrong clock or a different registry can no longer decide what the
//! network looks like.
//!
//! Pure code: no I/O, and time is passed in.

mod compute;
mod diff;
mod document;
pub mod random;
mod schedule;
mod seed_key;
mod vote;

#[cfg(test)]
mod tests;

pub use compute::{ComputeError, compute, compute_after};
pub use diff::ConsensusDiff;
pub use document::{
    Consensus, ConsensusParams, DEFAULT_GUARD_AFTER_MS, DEFAULT_PROBATION_MS, SeedSignature, UnverifiedConsensus,
};
pub use schedule::{Schedule, VALID_PERIODS};
pub use seed_key::{CERT_BINARY_LEN, MAX_CERT_LIFETIME_MS, SEED_KEY_DOMAIN, SeedKey, SigningKeyCert, signed_for};
pub use vote::{Vote, VoteEntry};

/// Consensus methods this code can compute, oldest first. A vote lists the
/// methods its seed supports; the consensus uses the highest one that more
/// than two thirds of the voters support (Tor's rule, dir-spec §3.8.1), so
/// the format can change without splitting the network.
pub const SUPPORTED_METHODS: &[u32] = &[1];
/// Most seeds a network may have (bounds signatures and votes).
pub const MAX_SEEDS: usize = 32;
/// Most nodes the consensus lists per host (Tor's `AuthDirMaxServersPerAddr`).
pub const MAX_PER_HOST: usize = 2;
/// Largest encoded vote or consensus a decoder reads, in bytes.
pub const MAX_ENCODED_LEN: usize = 4 * 1024 * 1024;
/// How long before its `valid_after` a consensus is already accepted (a
/// client whose clock is slow still takes it): one day, as arti does.
pub const MAX_EARLY_MS: u64 = 24 * 60 * 60 * 1000;
/// How long after its `valid_until` a consensus is still accepted (the
/// seeds may be unreachable for a while): three days, as arti does.
pub const MAX_LATE_MS: u64 = 3 * 24 * 60 * 60 * 1000;

/// Signatures a consensus needs when `seeds` seeds are trusted: more than
/// half of them (arti's `n/2 + 1`).
pub const fn threshold(seeds: usize) -> usize {
    seeds / 2 + 1
}

/// Why a vote or a consensus was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConsensusError {
    /// Not JSON of the expected shape.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// `vote` or `consensus`.
        what: &'static str,
        /// The decoder's message.
        reason: String,
    },
    /// Larger than [`MAX_ENCODED_LEN`].
    #[error("{0} bytes, more than the {MAX_ENCODED_LEN} a decoder reads")]
    TooLarge(usize),
    /// More than [`crate::node_list::MAX_NODES`] nodes.
    #[error("{0} nodes, more than {max}", max = crate::node_list::MAX_NODES)]
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
    /// A field outside its range.
    #[error("{0}")]
    BadField(String),
    /// A vote signed by a key that is not a trusted seed, or whose
    /// signature does not verify.
    #[error("vote of {seed} for period {period}: {reason}")]
    BadVote {
        /// The seed key the vote names.
        seed: String,
        /// Its period.
        period: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// A seed's signing-key certificate does not hold.
    #[error("signing key of seed {seed}: {reason}")]
    BadSeedKey {
        /// The identity the certificate names.
        seed: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// Fewer valid signatures of trusted seeds than [`threshold`].
    #[error(
        "consensus for period {period} has {valid} valid signatures of trusted seeds, {needed} of {seeds} are needed"
    )]
    TooFewSignatures {
        /// The period.
        period: u64,
        /// Distinct trusted seeds whose signature verifies.
        valid: usize,
        /// How many are needed.
        needed: usize,
        /// Trusted seeds.
        seeds: usize,
    },
    /// Past its `valid_until` by more than [`MAX_LATE_MS`].
    #[error("consensus for period {period} expired at {valid_until} (Unix ms); it is now {now}")]
    Expired {
        /// The period.
        period: u64,
        /// Its end of validity.
        valid_until: u64,
        /// The time it was checked at.
        now: u64,
    },
    /// Before its `valid_after` by more than [`MAX_EARLY_MS`].
    #[error("consensus for period {period} is valid only from {valid_after} (Unix ms); it is now {now}")]
    NotYetValid {
        /// The period.
        period: u64,
        /// Its start of validity.
        valid_after: u64,
        /// The time it was checked at.
        now: u64,
    },
}

/// The canonical encoding helpers shared by votes and the consensus.
pub(crate) mod wire {
    use crate::node_list::NodeEntry;

    /// `len u8 ‖ bytes` (lengths are bounded by the entry checks).
    pub fn short_str(out: &mut Vec<u8>, s: &str) {
        out.push(u8::try_from(s.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(s.as_bytes());
    }

    /// `count u32 BE` of a bounded list.
    pub fn count(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
    }

    /// One consensus entry: `ed25519 ‖ x25519 ‖ swarm_id u64 BE ‖ flags u8
    /// ‖ address ‖ version`, strings as [`short_str`], flags bit 0 = guard.
    pub fn entry(out: &mut Vec<u8>, n: &NodeEntry) {
        out.extend_from_slice(&n.ed25519.0);
        out.extend_from_slice(&n.x25519.0);
        out.extend_from_slice(&n.swarm_id.to_be_bytes());
        out.push(u8::from(n.guard));
        short_str(out, &n.address);
        short_str(out, &n.version);
    }
}

/// Checks that `keys` ascend strictly; the error names the first index out
/// of place.
pub(crate) fn check_sorted<'a>(keys: impl Iterator<Item = &'a [u8; 32]>) -> Result<(), ConsensusError> {
    let mut previous: Option<&[u8; 32]> = None;
    for (i, key) in keys.enumerate() {
        if previous.is_some_and(|p| p >= key) {
            return Err(ConsensusError::Order(i));
        }
        previous = Some(key);
    }
    Ok(())
}
