//! Property tests of the consensus: its computation does not depend on the
//! order the votes arrived in; votes, documents and diffs round-trip.
#![allow(clippy::unwrap_used)]

use allium_common::Identity;
use allium_common::consensus::{
    Consensus, ConsensusDiff, ConsensusParams, SUPPORTED_METHODS, Schedule, Vote, VoteEntry, compute,
};
use allium_common::encoding::Hex32;
use proptest::prelude::*;

const PERIOD_MS: u64 = 60_000;

fn seed(i: usize) -> Identity {
    Identity::from_ed25519_seed(&[0xa0 + u8::try_from(i).unwrap(); 32])
}

fn entry(i: u8, host: u8, swarm: Option<u64>, first_seen: u64) -> VoteEntry {
    let id = Identity::from_ed25519_seed(&[i; 32]);
    VoteEntry {
        ed25519: Hex32(*id.ed25519_pk()),
        x25519: Hex32(*id.x25519_pk()),
        address: format!("10.{host}.0.1:{}", 1000 + u16::from(i)),
        version: "0.1.0".into(),
        swarm_id: swarm,
        first_seen,
    }
}

/// A seed's view: which of the nodes it lists, with what previous swarm
/// (three possible values, so seeds agree and disagree) and first-seen
/// time.
fn view() -> impl Strategy<Value = Vec<(bool, u8, u8, u64)>> {
    proptest::collection::vec((any::<bool>(), 0u8..4, 0u8..3, 0u64..100), 12)
}

fn votes_from(views: &[Vec<(bool, u8, u8, u64)>], period: u64) -> Vec<Vote> {
    views
        .iter()
        .enumerate()
        .map(|(s, view)| {
            let nodes = view
                .iter()
                .enumerate()
                .filter(|(_, (listed, ..))| *listed)
                .map(|(i, &(_, swarm, host, seen))| {
                    let swarm = [None, Some(10), Some(u64::MAX / 2), Some(7)][usize::from(swarm)];
                    entry(u8::try_from(i).unwrap() + 1, host, swarm, seen)
                })
                .collect();
            Vote::sign(
                period,
                PERIOD_MS,
                0,
                SUPPORTED_METHODS.to_vec(),
                ConsensusParams::default(),
                nodes,
                &seed(s),
            )
            .unwrap()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_consensus_does_not_depend_on_vote_order(
        views in proptest::collection::vec(view(), 2..6),
        configured in 2usize..7,
        rotate in 0usize..6,
        period in 1u64..1_000_000,
    ) {
        let seeds: Vec<[u8; 32]> = (0..configured.max(views.len())).map(|i| *seed(i).ed25519_pk()).collect();
        let schedule = Schedule::new(PERIOD_MS);
        let votes = votes_from(&views, period);
        let mut reordered = votes.clone();
        reordered.reverse();
        reordered.rotate_left(rotate % votes.len());
        let mut seeds_reordered = seeds.clone();
        seeds_reordered.reverse();
        let a = compute(&votes, &seeds, &schedule, period);
        let b = compute(&reordered, &seeds_reordered, &schedule, period);
        prop_assert_eq!(&a, &b);
        if let Ok(c) = a {
            // Every listed node is listed by a majority of the configured seeds.
            for n in &c.nodes {
                let listing = votes.iter().filter(|v| v.nodes.iter().any(|e| e.ed25519 == n.ed25519)).count();
                prop_assert!(listing > seeds.len() / 2);
            }
            prop_assert_eq!(c.digest(), b.unwrap().digest());
        }
    }

    #[test]
    fn votes_and_consensuses_round_trip(views in proptest::collection::vec(view(), 3..4), period in 1u64..1_000_000) {
        let seeds: Vec<[u8; 32]> = (0..3).map(|i| *seed(i).ed25519_pk()).collect();
        let votes = votes_from(&views, period);
        for v in &votes {
            let decoded = Vote::decode(&v.encode()).unwrap();
            prop_assert_eq!(&decoded, v);
            prop_assert!(decoded.verify(&seeds).is_ok());
        }
        let mut c = compute(&votes, &seeds, &Schedule::new(PERIOD_MS), period).unwrap();
        let digest = c.digest();
        for i in [2, 0] {
            c.add_signature(Consensus::signature_by(&seed(i), &digest));
        }
        let decoded = Consensus::decode(&c.encode()).unwrap();
        prop_assert_eq!(decoded.digest(), digest);
        prop_assert_eq!(decoded.verify(&seeds, c.valid_after).unwrap(), c);
    }

    #[test]
    fn a_diff_applied_to_its_base_gives_the_new_document(
        before in proptest::collection::vec(view(), 3..4),
        after in proptest::collection::vec(view(), 3..4),
        period in 1u64..1_000_000,
    ) {
        let seeds: Vec<[u8; 32]> = (0..3).map(|i| *seed(i).ed25519_pk()).collect();
        let schedule = Schedule::new(PERIOD_MS);
        let base = compute(&votes_from(&before, period), &seeds, &schedule, period).unwrap();
        let next = compute(&votes_from(&after, period + 1), &seeds, &schedule, period + 1).unwrap();
        let diff = ConsensusDiff::decode(&next.diff_from(&base).encode()).unwrap();
        prop_assert_eq!(diff.apply(&base).unwrap().into_unchecked(), next);
    }

    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Vote::decode(&bytes);
        let _ = Consensus::decode(&bytes);
        let _ = ConsensusDiff::decode(&bytes);
    }
}
