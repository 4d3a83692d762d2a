//! The seeds' shared random value, by commit and reveal over the votes
//! (the idea of Tor's shared randomness, proposal 250, in one round per
//! period): nobody, not a node and not a single seed, knows it before the
//! period's votes are out, so nobody can choose where a new node lands.
//!
//! Each seed draws a fresh 32-byte value `r` for each vote, and puts in
//! that vote `commit = BLAKE2b-256("allium-srv-commit-v1" 0x00 ‖ r)`;
//! in its vote for the next period it reveals `r`. The consensus for
//! period `p` records the commits of the votes it counted; the next
//! consensus takes the reveals whose commit the previous one recorded:
//!
//! ```text
//! srv(p) = BLAKE2b-256("allium-srv-v1" 0x00 ‖ u64be(p) ‖ srv(p − 1)
//!                      ‖ for each seed, ascending: seed (32) ‖ r (32))
//! ```
//!
//! where `srv(p − 1)` is 32 zero bytes if the previous consensus is not
//! for `p − 1`, and only seeds whose vote for `p` counts and reveals the
//! value the consensus for `p − 1` records them committing to take part. A
//! seed that withholds its reveal only leaves its value out: with one
//! honest seed's reveal in, the result is unpredictable to everyone else
//! before the votes (a last revealer can still choose between two
//! outcomes, as in Tor).
//!
//! New nodes are placed in the order of [`rank`], a hash of the shared
//! value and the node's key, so which swarm a new key lands in is not
//! known when it registers.

use serde::{Deserialize, Serialize};

use super::{Consensus, Vote};
use crate::encoding::Hex32;
use crate::sodium;

/// Domain of a commit.
pub const COMMIT_DOMAIN: &[u8] = b"allium-srv-commit-v1\0";
/// Domain of the shared random value.
pub const SRV_DOMAIN: &[u8] = b"allium-srv-v1\0";
/// Domain of a node's rank.
pub const RANK_DOMAIN: &[u8] = b"allium-rank-v1\0";

/// A seed's commit, as the consensus records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedCommit {
    /// The seed's identity.
    pub seed: Hex32,
    /// Its commit.
    pub commit: Hex32,
}

/// The commit to `reveal`.
pub fn commit_of(reveal: &[u8; 32]) -> [u8; 32] {
    sodium::blake2b::<32>(&[COMMIT_DOMAIN, reveal])
}

/// The shared random value of `period` from its counted `votes` (ascending
/// by seed) and the consensus before it.
pub fn shared_random(period: u64, votes: &[&Vote], previous: Option<&Consensus>) -> [u8; 32] {
    let previous = previous.filter(|c| c.period.checked_add(1) == Some(period));
    let prior = previous.map_or([0; 32], |c| c.srv.0);
    let period_bytes = period.to_be_bytes();
    let mut parts: Vec<&[u8]> = vec![SRV_DOMAIN, &period_bytes, &prior];
    for vote in votes {
        let Some(reveal) = &vote.reveal else { continue };
        let committed = previous.and_then(|c| {
            c.commits
                .binary_search_by_key(&vote.seed, |sc| sc.seed)
                .ok()
                .map(|i| c.commits[i].commit)
        });
        if committed.is_some_and(|c| c.0 == commit_of(&reveal.0)) {
            parts.push(&vote.seed.0);
            parts.push(&reveal.0);
        }
    }
    sodium::blake2b::<32>(&parts)
}

/// The commits of the counted `votes`, ascending by seed.
pub fn commits(votes: &[&Vote]) -> Vec<SeedCommit> {
    let mut out: Vec<SeedCommit> = votes
        .iter()
        .filter_map(|v| {
            Some(SeedCommit {
                seed: v.seed,
                commit: v.commit?,
            })
        })
        .collect();
    out.sort();
    out
}

/// A node's place in the order new nodes are placed in, this period.
pub fn rank(srv: &[u8; 32], node: &[u8; 32]) -> [u8; 32] {
    sodium::blake2b::<32>(&[RANK_DOMAIN, srv, node])
}
