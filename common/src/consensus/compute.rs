//! Votes in, consensus out: a pure, deterministic function, so every seed
//! holding the same votes signs the same digest.
//!
//! Method 1 (`docs/protocol.md`):
//!
//! 1. Only votes of configured seeds for this period and period length
//!    count, one per seed (a seed that sent two different votes counts for
//!    none). More than half of the configured seeds must have voted.
//! 2. The method is the highest this code supports that more than two
//!    thirds of the voters list (dir-spec §3.8.1).
//! 3. Each parameter is the low median of the voters' values.
//! 4. A node is listed only if more than half of the *configured* seeds
//!    (not of the voters) list it. Its address, version and X25519 key are
//!    the combination most voters saw (ties: the smallest); its first-seen
//!    time is the low median; its previous swarm is the value most voters
//!    gave, "none" included (ties: none, then the smallest id). It is
//!    listed only once its first-seen time is `probation_ms` before the
//!    period starts, and flagged `guard` once it is `guard_after_ms`
//!    before (roles are earned, in the seeds' own measurements).
//! 5. At most [`MAX_PER_HOST`] nodes per host (IP address or DNS name),
//!    those seen first (earliest median first-seen, then smallest key).
//! 6. Swarms: [`assign_grouped`] from the previous swarms, so assignments
//!    are sticky and new nodes fill the smallest swarms, run on each
//!    node's [`rank`] (a hash of the period's shared random value and its
//!    key) instead of its key, and with no two members of a swarm in one
//!    subnet ([`subnet`]: /16, /32 or host name); a node no swarm can take
//!    is left out.

use std::collections::{BTreeMap, BTreeSet};

use super::random::{commits, rank, shared_random};
use super::{Consensus, ConsensusParams, MAX_PER_HOST, SUPPORTED_METHODS, Schedule, Vote, VoteEntry, threshold};
use crate::address::{NodeAddress, subnet};
use crate::encoding::Hex32;
use crate::swarm::SwarmId;
use crate::swarm::assign::assign_grouped;

/// Why no consensus could be computed for a period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComputeError {
    /// Not enough seeds voted.
    #[error("period {period}: {have} usable votes, {needed} of {seeds} seeds are needed")]
    TooFewVotes {
        /// The period.
        period: u64,
        /// Votes that count.
        have: usize,
        /// How many are needed.
        needed: usize,
        /// Configured seeds.
        seeds: usize,
    },
    /// No method this code supports is supported by more than two thirds
    /// of the voters.
    #[error("period {period}: no consensus method is supported by more than two thirds of the {voters} voters")]
    NoCommonMethod {
        /// The period.
        period: u64,
        /// Votes that count.
        voters: usize,
    },
}

/// The low median (the lower of the two middle values for an even count).
fn low_median<T: Ord + Copy>(mut values: Vec<T>) -> Option<T> {
    values.sort_unstable();
    values.get(values.len().checked_sub(1)? / 2).copied()
}

/// The most frequent value (ties: the smallest).
fn most_common<T: Ord + Clone>(values: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, usize> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    // max_by_key returns the last maximum; iterate in reverse so it is the
    // smallest value among the most frequent.
    counts.into_iter().rev().max_by_key(|(_, n)| *n).map(|(v, _)| v)
}

/// The votes that count: configured seed, this period and length, one per
/// seed; ascending by seed key.
fn usable<'a>(votes: &'a [Vote], seeds: &[[u8; 32]], schedule: &Schedule, period: u64) -> Vec<&'a Vote> {
    let mut by_seed: BTreeMap<[u8; 32], Vec<&Vote>> = BTreeMap::new();
    for v in votes {
        if seeds.contains(&v.seed.0) && v.period == period && v.period_ms == schedule.period_ms() {
            by_seed.entry(v.seed.0).or_default().push(v);
        }
    }
    by_seed
        .into_values()
        .filter_map(|vs| {
            let first = vs[0];
            vs.iter().all(|v| *v == first).then_some(first)
        })
        .collect()
}

/// Computes the consensus for `period` from `votes` (already verified),
/// with `seeds` the configured seed keys, as if no consensus came before
/// (the shared random value then has no earlier reveals: for tests and
/// tools). The result carries no signature.
pub fn compute(
    votes: &[Vote],
    seeds: &[[u8; 32]],
    schedule: &Schedule,
    period: u64,
) -> Result<Consensus, ComputeError> {
    compute_after(votes, seeds, schedule, period, None)
}

/// [`compute`] after the consensus `previous` (the one the seed holds),
/// whose commits this period's reveals are checked against
/// ([`super::random`]).
pub fn compute_after(
    votes: &[Vote],
    seeds: &[[u8; 32]],
    schedule: &Schedule,
    period: u64,
    previous: Option<&Consensus>,
) -> Result<Consensus, ComputeError> {
    let mut distinct: Vec<[u8; 32]> = seeds.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let votes = usable(votes, &distinct, schedule, period);
    let needed = threshold(distinct.len());
    if votes.len() < needed {
        return Err(ComputeError::TooFewVotes {
            period,
            have: votes.len(),
            needed,
            seeds: distinct.len(),
        });
    }
    let method = SUPPORTED_METHODS
        .iter()
        .rev()
        .copied()
        .find(|m| votes.iter().filter(|v| v.methods.contains(m)).count() * 3 > votes.len() * 2)
        .ok_or(ComputeError::NoCommonMethod {
            period,
            voters: votes.len(),
        })?;
    let median_of = |f: fn(&ConsensusParams) -> u32| low_median(votes.iter().map(|v| f(&v.params)).collect());
    let median_ms = |f: fn(&ConsensusParams) -> u64| low_median(votes.iter().map(|v| f(&v.params)).collect());
    let params = ConsensusParams {
        min_swarm_size: median_of(|p| p.min_swarm_size).unwrap_or_default(),
        target_swarm_size: median_of(|p| p.target_swarm_size).unwrap_or_default(),
        max_swarm_size: median_of(|p| p.max_swarm_size).unwrap_or_default(),
        probation_ms: median_ms(|p| p.probation_ms).unwrap_or_default(),
        guard_after_ms: median_ms(|p| p.guard_after_ms).unwrap_or_default(),
    };

    // Every listing of every node, by key.
    let mut listings: BTreeMap<[u8; 32], Vec<&VoteEntry>> = BTreeMap::new();
    for vote in &votes {
        for entry in &vote.nodes {
            listings.entry(entry.ed25519.0).or_default().push(entry);
        }
    }
    struct Agreed<'a> {
        entry: &'a VoteEntry,
        first_seen: u64,
        previous: Option<SwarmId>,
    }
    let starts = schedule.valid_after(period);
    let agreed: BTreeMap<[u8; 32], Agreed<'_>> = listings
        .into_iter()
        .filter(|(_, ls)| ls.len() >= needed)
        .filter_map(|(key, ls)| {
            let descriptor = most_common(ls.iter().map(|e| (e.address.as_str(), e.version.as_str(), e.x25519)))?;
            let entry = *ls
                .iter()
                .find(|e| (e.address.as_str(), e.version.as_str(), e.x25519) == descriptor)?;
            let first_seen = low_median(ls.iter().map(|e| e.first_seen).collect())?;
            let previous = most_common(ls.iter().map(|e| e.swarm_id))?;
            Some((
                key,
                Agreed {
                    entry,
                    first_seen,
                    previous,
                },
            ))
        })
        .filter(|(_, a)| starts.saturating_sub(a.first_seen) >= params.probation_ms)
        .collect();

    // At most MAX_PER_HOST per host, those seen first.
    let mut by_host: BTreeMap<String, Vec<(u64, [u8; 32])>> = BTreeMap::new();
    for (key, a) in &agreed {
        let host = a
            .entry
            .address
            .parse::<NodeAddress>()
            .map_or_else(|_| a.entry.address.clone(), |addr| addr.host.to_string());
        by_host.entry(host).or_default().push((a.first_seen, *key));
    }
    let live: BTreeSet<[u8; 32]> = by_host
        .into_values()
        .flat_map(|mut nodes| {
            nodes.sort_unstable();
            nodes.into_iter().take(MAX_PER_HOST).map(|(_, key)| key)
        })
        .collect();

    // Placement runs on ranks, not keys: where a new node lands (and which
    // member a swarm gives up) follows from the shared random value, which
    // nobody knew when the node registered.
    let srv = shared_random(period, &votes, previous);
    let by_rank: BTreeMap<[u8; 32], [u8; 32]> = live.iter().map(|k| (rank(&srv, k), *k)).collect();
    let ranked_live: BTreeSet<[u8; 32]> = by_rank.keys().copied().collect();
    let ranked_previous: BTreeMap<[u8; 32], SwarmId> = by_rank
        .iter()
        .filter_map(|(r, k)| Some((*r, agreed.get(k)?.previous?)))
        .collect();
    let groups: BTreeMap<[u8; 32], String> = by_rank
        .iter()
        .filter_map(|(r, k)| Some((*r, subnet(&agreed.get(k)?.entry.address))))
        .collect();
    let assignment: BTreeMap<[u8; 32], SwarmId> =
        assign_grouped(&ranked_previous, &ranked_live, &groups, &params.assign_params())
            .into_iter()
            .filter_map(|(r, swarm)| Some((*by_rank.get(&r)?, swarm)))
            .collect();
    let nodes = assignment
        .iter()
        .filter_map(|(key, swarm)| {
            let a = agreed.get(key)?;
            let mut entry = a.entry.as_entry(*swarm);
            entry.guard = starts.saturating_sub(a.first_seen) >= params.guard_after_ms;
            Some(entry)
        })
        .collect();
    Ok(Consensus {
        method,
        period,
        valid_after: schedule.valid_after(period),
        fresh_until: schedule.fresh_until(period),
        valid_until: schedule.valid_until(period),
        params,
        voters: votes.iter().map(|v| v.seed).collect(),
        srv: Hex32(srv),
        commits: commits(&votes),
        nodes,
        signatures: Vec::new(),
    })
}
