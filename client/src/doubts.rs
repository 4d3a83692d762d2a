//! Which nodes failed during one command, and how surely.
//!
//! What a failed request says about who failed differs in strength. A
//! relay that could not connect to the next hop (502) names it for
//! certain. A relay whose next hop did not answer in time (504) names a
//! run of hops: every relay waits as long for the next, so when the
//! destination hangs, the guard's wait ends first and its report names
//! the middle, the exit and the destination alike. A timeout of the whole
//! path, or an answer that does not decrypt, names nobody. So each node
//! gets a score for the rest of the command: [`CERTAIN`] when named alone,
//! one point when named in a run or as the destination of an unexplained
//! failure. Nodes with any doubt are chosen as middles or exits of rebuilt
//! paths only when nothing else fits; destinations are chosen among the
//! members with the least doubt, so the one live member of a swarm whose
//! other members hang is found within one pass over the members (two if a
//! hung relay's failure was blamed on it too). None of this ever touches a
//! guard.

use std::collections::{HashMap, HashSet};

use allium_common::node_list::NodeEntry;

/// The score of a node named for certain.
pub const CERTAIN: u32 = 2;

/// Doubts about nodes, for one command.
#[derive(Debug, Default, Clone)]
pub struct Doubts {
    scores: HashMap<[u8; 32], u32>,
}

impl Doubts {
    /// Adds `weight` to `node`'s score.
    pub fn add(&mut self, node: [u8; 32], weight: u32) {
        let score = self.scores.entry(node).or_default();
        *score = score.saturating_add(weight);
    }

    /// A relay's report naming `run` (one node: for certain).
    pub fn named(&mut self, run: &[[u8; 32]]) {
        let weight = if run.len() == 1 { CERTAIN } else { 1 };
        for node in run {
            self.add(*node, weight);
        }
    }

    /// `node`'s score.
    pub fn score(&self, node: &[u8; 32]) -> u32 {
        self.scores.get(node).copied().unwrap_or(0)
    }

    /// Every node with any doubt (not to be chosen as a relay).
    pub fn doubted(&self) -> HashSet<[u8; 32]> {
        self.scores.keys().copied().collect()
    }

    /// The members a request may go to, leaving out `excluded`. With
    /// `fresh_only` (the caller wants a member other than those already
    /// asked), only members with no doubt at all, possibly none; otherwise
    /// the members with the least doubt (all members if `excluded` left
    /// none), never none while there are members.
    pub fn candidates<'a>(
        &self,
        members: &'a [NodeEntry],
        excluded: &HashSet<[u8; 32]>,
        fresh_only: bool,
    ) -> Vec<&'a NodeEntry> {
        let mut base: Vec<&NodeEntry> = members.iter().filter(|m| !excluded.contains(&m.ed25519.0)).collect();
        if fresh_only {
            base.retain(|m| self.score(&m.ed25519.0) == 0);
            return base;
        }
        if base.is_empty() {
            base = members.iter().collect();
        }
        let least = base.iter().map(|m| self.score(&m.ed25519.0)).min().unwrap_or(0);
        base.retain(|m| self.score(&m.ed25519.0) == least);
        base
    }
}

#[cfg(test)]
mod tests {
    use allium_common::encoding::Hex32;

    use super::*;

    fn member(n: u8) -> NodeEntry {
        NodeEntry {
            ed25519: Hex32([n; 32]),
            x25519: Hex32([n; 32]),
            address: format!("10.{n}.0.1:1"),
            swarm_id: 1,
            version: "0.1.0".into(),
            guard: true,
        }
    }

    fn ids(v: &[&NodeEntry]) -> Vec<u8> {
        v.iter().map(|m| m.ed25519.0[0]).collect()
    }

    /// Five members hang and one answers; every failure through a hung
    /// node is blamed on a run that includes the destination. Picking the
    /// least doubted member each time reaches the live one within one pass
    /// over the members, or two if it was blamed once already (for a hung
    /// relay in front of it): it is never left out for good.
    #[test]
    fn the_live_member_is_always_found() {
        let members: Vec<NodeEntry> = (1..=6).map(member).collect();
        let live = [6u8; 32];
        for blamed_before in [false, true] {
            for order in 0..6u8 {
                let mut doubts = Doubts::default();
                if blamed_before {
                    doubts.named(&[[100; 32], [101; 32], live]);
                }
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let pool = doubts.candidates(&members, &HashSet::new(), false);
                    // Pick deterministically, rotating with `order`.
                    let pick = pool[usize::from(order) % pool.len()].ed25519.0;
                    if pick == live {
                        break;
                    }
                    doubts.named(&[[100 + attempts; 32], [150 + attempts; 32], pick]);
                    let bound = if blamed_before {
                        2 * members.len()
                    } else {
                        members.len()
                    };
                    assert!(
                        usize::from(attempts) < bound,
                        "order {order}: the live member was not found"
                    );
                }
            }
        }
    }

    #[test]
    fn a_node_named_alone_is_certain_and_runs_are_doubtful() {
        let mut d = Doubts::default();
        d.named(&[[1; 32]]);
        d.named(&[[2; 32], [3; 32]]);
        assert_eq!(
            (d.score(&[1; 32]), d.score(&[2; 32]), d.score(&[3; 32])),
            (CERTAIN, 1, 1)
        );
        assert_eq!(d.doubted().len(), 3);
        assert_eq!(d.score(&[4; 32]), 0);
    }

    #[test]
    fn candidates_prefer_the_least_doubted_and_never_run_out_unless_asked() {
        let members: Vec<NodeEntry> = (1..=4).map(member).collect();
        let mut d = Doubts::default();
        d.add([1; 32], 2);
        d.add([2; 32], 1);
        assert_eq!(ids(&d.candidates(&members, &HashSet::new(), false)), [3, 4]);
        let excluded: HashSet<[u8; 32]> = [[3; 32], [4; 32]].into();
        assert_eq!(ids(&d.candidates(&members, &excluded, false)), [2]);
        assert!(
            d.candidates(&members, &excluded, true).is_empty(),
            "no fresh member left"
        );
        // Everything excluded: all members again, least doubted first.
        let all: HashSet<[u8; 32]> = (1..=4).map(|n| [n; 32]).collect();
        assert_eq!(ids(&d.candidates(&members, &all, false)), [3, 4]);
        assert_eq!(ids(&d.candidates(&members, &[[1; 32]].into(), true)), [3, 4]);
    }
}
