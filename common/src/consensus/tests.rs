//! Unit tests of votes, the computation and the document.

use super::*;
use crate::Identity;
use crate::encoding::Hex32;

const PERIOD_MS: u64 = 1000;
const PERIOD: u64 = 1_700_000_000;

fn seed(i: u8) -> Identity {
    Identity::from_ed25519_seed(&[0xe0 + i; 32])
}

fn seeds(n: u8) -> Vec<[u8; 32]> {
    (0..n).map(|i| *seed(i).ed25519_pk()).collect()
}

fn node(i: u8, host: &str, swarm: Option<u64>, first_seen: u64) -> VoteEntry {
    let id = Identity::from_ed25519_seed(&[i; 32]);
    VoteEntry {
        ed25519: Hex32(*id.ed25519_pk()),
        x25519: Hex32(*id.x25519_pk()),
        address: format!("{host}:{}", 20000 + u16::from(i)),
        version: "0.1.0".into(),
        swarm_id: swarm,
        first_seen,
    }
}

fn key(i: u8) -> [u8; 32] {
    *Identity::from_ed25519_seed(&[i; 32]).ed25519_pk()
}

fn vote(by: u8, nodes: Vec<VoteEntry>) -> Vote {
    Vote::sign(
        PERIOD,
        PERIOD_MS,
        PERIOD * PERIOD_MS - 500,
        SUPPORTED_METHODS.to_vec(),
        ConsensusParams::default(),
        nodes,
        &seed(by),
    )
    .unwrap()
}

fn schedule() -> Schedule {
    Schedule::new(PERIOD_MS)
}

fn signed(mut c: Consensus, by: &[u8]) -> Consensus {
    let digest = c.digest();
    for i in by {
        c.add_signature(Consensus::signature_by(&seed(*i), &digest));
    }
    c
}

fn now() -> u64 {
    PERIOD * PERIOD_MS + 10
}

#[test]
fn a_node_needs_more_than_half_of_the_configured_seeds() {
    let (a, b, c) = (
        node(1, "10.1.0.1", None, 5),
        node(2, "10.2.0.1", None, 5),
        node(3, "10.3.0.1", None, 5),
    );
    let votes = vec![
        vote(0, vec![a.clone(), b.clone(), c]),
        vote(1, vec![a.clone(), b]),
        vote(2, vec![a]),
    ];
    let consensus = compute(&votes, &seeds(3), &schedule(), PERIOD).unwrap();
    let listed: Vec<[u8; 32]> = consensus.nodes.iter().map(|n| n.ed25519.0).collect();
    assert!(listed.contains(&key(1)) && listed.contains(&key(2)));
    assert!(!listed.contains(&key(3)), "one seed of three is not a majority");
    let mut voters = seeds(3);
    voters.sort_unstable();
    assert_eq!(consensus.voters.iter().map(|v| v.0).collect::<Vec<_>>(), voters);
    // Computed from two votes of three, it says which two.
    let two = compute(&votes[1..], &seeds(3), &schedule(), PERIOD).unwrap();
    assert_eq!(two.voters.len(), 2);
    assert!(two.voters.iter().all(|v| v.0 != *seed(0).ed25519_pk()));
    // Of five configured seeds, two votes are not enough, whatever they say.
    let e = compute(&votes[..2], &seeds(5), &schedule(), PERIOD).unwrap_err();
    assert_eq!(
        e,
        ComputeError::TooFewVotes {
            period: PERIOD,
            have: 2,
            needed: 3,
            seeds: 5
        }
    );
    // Three of five voted, but a node listed by two of them is not in.
    let votes5 = vec![
        vote(0, vec![node(1, "10.1.0.1", None, 5)]),
        vote(1, vec![node(1, "10.1.0.1", None, 5)]),
        vote(2, vec![]),
    ];
    assert!(
        compute(&votes5, &seeds(5), &schedule(), PERIOD)
            .unwrap()
            .nodes
            .is_empty()
    );
}

#[test]
fn votes_of_others_periods_and_equivocating_seeds_do_not_count() {
    let a = node(1, "10.1.0.1", None, 5);
    let mut late = vote(2, vec![a.clone()]);
    late.period += 1;
    let stranger = Vote::sign(
        PERIOD,
        PERIOD_MS,
        0,
        vec![1],
        ConsensusParams::default(),
        vec![a.clone()],
        &seed(9),
    )
    .unwrap();
    let votes = vec![vote(0, vec![a.clone()]), late, stranger];
    assert!(matches!(
        compute(&votes, &seeds(3), &schedule(), PERIOD),
        Err(ComputeError::TooFewVotes { have: 1, .. })
    ));
    // Seed 1 signed two different votes: it counts for neither.
    let votes = vec![
        vote(0, vec![a.clone()]),
        vote(1, vec![a.clone()]),
        vote(1, vec![]),
        vote(2, vec![]),
    ];
    let c = compute(&votes, &seeds(3), &schedule(), PERIOD).unwrap();
    assert!(
        c.nodes.is_empty(),
        "only seed 0 lists the node among the votes that count"
    );
}

#[test]
fn the_method_is_the_highest_more_than_two_thirds_support() {
    let mut votes: Vec<Vote> = (0..3).map(|i| vote(i, vec![])).collect();
    votes[2].methods = vec![99];
    assert_eq!(
        compute(&votes, &seeds(3), &schedule(), PERIOD).unwrap_err(),
        ComputeError::NoCommonMethod {
            period: PERIOD,
            voters: 3
        },
        "two of three is not more than two thirds"
    );
    votes[2].methods = vec![1, 99];
    assert_eq!(compute(&votes, &seeds(3), &schedule(), PERIOD).unwrap().method, 1);
}

#[test]
fn parameters_and_times_are_medians_and_the_schedule() {
    let mut votes: Vec<Vote> = (0..3).map(|i| vote(i, vec![])).collect();
    votes[0].params.min_swarm_size = 1;
    votes[1].params.min_swarm_size = 3;
    votes[2].params.target_swarm_size = 9;
    let c = compute(&votes, &seeds(3), &schedule(), PERIOD).unwrap();
    assert_eq!(c.params.min_swarm_size, 3);
    assert_eq!(c.params.target_swarm_size, 7);
    assert_eq!(
        (c.valid_after, c.fresh_until, c.valid_until),
        (PERIOD * 1000, PERIOD * 1000 + 1000, PERIOD * 1000 + 3000)
    );
}

#[test]
fn at_most_two_nodes_per_host_the_earliest_seen_and_one_per_subnet_in_a_swarm() {
    let nodes = vec![
        node(1, "10.9.0.1", None, 30),
        node(2, "10.9.0.1", None, 10),
        node(3, "10.9.0.1", None, 20),
        node(4, "10.8.0.2", None, 40),
    ];
    let votes: Vec<Vote> = (0..3).map(|i| vote(i, nodes.clone())).collect();
    let c = compute(&votes, &seeds(3), &schedule(), PERIOD).unwrap();
    assert!(c.find(&key(1)).is_none(), "the third on 10.9.0.1, seen last, waits");
    // A network this small is one swarm, which takes one node of 10.9/16.
    assert!(c.find(&key(4)).is_some());
    assert_eq!(
        [2, 3].iter().filter(|i| c.find(&key(**i)).is_some()).count(),
        1,
        "one of the two allowed on 10.9.0.1: a swarm holds one node per /16"
    );
    assert_eq!(c.nodes.len(), 2);
}

#[test]
fn swarms_stick_and_the_descriptor_is_the_majoritys() {
    let params = ConsensusParams {
        min_swarm_size: 1,
        target_swarm_size: 1,
        max_swarm_size: 1,
        ..ConsensusParams::default()
    };
    let mut votes: Vec<Vote> = (0..3)
        .map(|i| {
            vote(
                i,
                vec![
                    node(1, "10.1.0.1", Some(500), 5),
                    node(2, "10.2.0.1", Some(u64::MAX / 2), 5),
                ],
            )
        })
        .collect();
    // One seed saw node 2 move to another address, and missed node 1's swarm.
    votes[0].nodes[1].address = "10.7.0.1:1".into();
    votes[0].nodes[0].swarm_id = None;
    for v in &mut votes {
        v.params = params;
    }
    let c = compute(&votes, &seeds(3), &schedule(), PERIOD).unwrap();
    assert_eq!(c.find(&key(1)).unwrap().swarm_id, 500);
    assert_eq!(c.find(&key(2)).unwrap().swarm_id, u64::MAX / 2);
    assert_eq!(c.find(&key(2)).unwrap().address, "10.2.0.1:20002");
}

#[test]
fn a_consensus_needs_a_majority_of_signatures_and_a_plausible_time() {
    let votes: Vec<Vote> = (0..3).map(|i| vote(i, vec![node(1, "10.1.0.1", None, 5)])).collect();
    let c = compute(&votes, &seeds(3), &schedule(), PERIOD).unwrap();
    let trusted = seeds(3);
    let decode = |c: &Consensus| Consensus::decode(&c.encode()).unwrap();
    let one = signed(c.clone(), &[0]);
    assert_eq!(
        decode(&one).verify(&trusted, now()).unwrap_err(),
        ConsensusError::TooFewSignatures {
            period: PERIOD,
            valid: 1,
            needed: 2,
            seeds: 3
        }
    );
    // The same signature twice is one seed.
    let mut doubled = one.clone();
    doubled.signatures.push(doubled.signatures[0].clone());
    assert!(Consensus::decode(&doubled.encode()).is_err(), "a seed signs once");
    // A stranger's signature does not count.
    let mut with_stranger = one.clone();
    with_stranger.add_signature(Consensus::signature_by(&seed(9), &c.digest()));
    assert!(decode(&with_stranger).verify(&trusted, now()).is_err());
    let two = signed(c.clone(), &[0, 2]);
    assert_eq!(decode(&two).verify(&trusted, now()).unwrap(), two);
    // Altered after signing: no signature holds.
    let mut moved = two.clone();
    moved.nodes[0].swarm_id ^= 1;
    assert!(matches!(
        decode(&moved).verify(&trusted, now()),
        Err(ConsensusError::TooFewSignatures { valid: 0, .. })
    ));
    let late = c.valid_until + MAX_LATE_MS + 1;
    assert!(matches!(
        decode(&two).verify(&trusted, late),
        Err(ConsensusError::Expired { .. })
    ));
    let early = c.valid_after - MAX_EARLY_MS - 1;
    assert!(matches!(
        decode(&two).verify(&trusted, early),
        Err(ConsensusError::NotYetValid { .. })
    ));
    assert!(
        decode(&two).verify(&[], now()).is_err(),
        "no trusted seed, no consensus"
    );
}

#[test]
fn a_vote_verifies_only_from_a_trusted_seed_unaltered() {
    let v = vote(1, vec![node(1, "10.1.0.1", Some(3), 5)]);
    let decoded = Vote::decode(&v.encode()).unwrap();
    assert_eq!(decoded, v);
    assert!(decoded.verify(&seeds(3)).is_ok());
    assert!(decoded.verify(&seeds(1)).is_err(), "seed 1 is not trusted");
    let mut altered = v.clone();
    altered.nodes[0].first_seen += 1;
    assert!(altered.verify(&seeds(3)).is_err());
    let mut unsorted = vote(1, vec![node(1, "10.1.0.1", None, 5), node(2, "10.2.0.1", None, 5)]);
    unsorted.nodes.swap(0, 1);
    assert!(matches!(
        Vote::decode(&unsorted.encode()),
        Err(ConsensusError::Order(1))
    ));
    let mut no_methods = v;
    no_methods.methods.clear();
    assert!(Vote::decode(&no_methods.encode()).is_err());
}

#[test]
fn a_diff_rebuilds_the_next_document_and_nothing_else() {
    let base_votes: Vec<Vote> = (0..3)
        .map(|i| {
            vote(
                i,
                vec![
                    node(1, "10.1.0.1", None, 5),
                    node(2, "10.2.0.1", None, 5),
                    node(3, "10.3.0.1", None, 5),
                ],
            )
        })
        .collect();
    let base = signed(compute(&base_votes, &seeds(3), &schedule(), PERIOD).unwrap(), &[0, 1]);
    // Next period: node 2 gone, node 4 new, node 3 moved.
    let mut next_nodes = vec![
        node(1, "10.1.0.1", None, 5),
        node(3, "10.3.0.9", None, 5),
        node(4, "10.4.0.1", None, 5),
    ];
    for n in &mut next_nodes {
        n.swarm_id = base.find(&n.ed25519.0).map(|e| e.swarm_id);
    }
    let next_votes: Vec<Vote> = (0..3)
        .map(|i| {
            let mut v = vote(i, next_nodes.clone());
            v.period = PERIOD + 1;
            Vote::sign(
                v.period,
                v.period_ms,
                v.published,
                v.methods,
                v.params,
                v.nodes,
                &seed(i),
            )
            .unwrap()
        })
        .collect();
    let next = signed(
        compute(&next_votes, &seeds(3), &schedule(), PERIOD + 1).unwrap(),
        &[1, 2],
    );
    let diff = next.diff_from(&base);
    assert_eq!(diff.removed, vec![Hex32(key(2))]);
    assert_eq!(diff.upserted.len(), 2, "node 3 changed, node 4 is new: {diff:?}");
    let decoded = ConsensusDiff::decode(&diff.encode()).unwrap();
    let rebuilt = decoded
        .apply(&base)
        .unwrap()
        .verify_after(&seeds(3), now(), Some(&base))
        .unwrap();
    assert_eq!(rebuilt, next);
    // A diff does not apply to another base...
    assert!(diff.apply(&next).is_err());
    // ...and a doctored one fails verification: the signatures cover the
    // next document's digest.
    let mut doctored = diff.clone();
    doctored.upserted[0].swarm_id ^= 1;
    assert!(doctored.apply(&base).unwrap().verify(&seeds(3), now()).is_err());
    // Unchanged network: the diff carries no node.
    let same = signed(
        Consensus {
            period: PERIOD + 1,
            ..base.clone()
        },
        &[0, 1],
    );
    let empty = same.diff_from(&base);
    assert!(empty.removed.is_empty() && empty.upserted.is_empty());
}

#[test]
fn incremental_verification_still_checks_new_keys() {
    let id = Identity::from_ed25519_seed(&[7; 32]);
    let other = Identity::from_ed25519_seed(&[8; 32]);
    let good = crate::node_list::NodeEntry {
        ed25519: Hex32(*id.ed25519_pk()),
        x25519: Hex32(*id.x25519_pk()),
        address: "10.7.0.1:1".into(),
        swarm_id: 1,
        version: "0.1.0".into(),
        guard: false,
    };
    let known = Consensus::assemble(&schedule(), PERIOD, vec![good.clone()], &[&seed(0), &seed(1)]).unwrap();
    // The same node with a foreign X25519 key: the pair is new, so it is checked.
    let mut bad = good;
    bad.x25519 = Hex32(*other.x25519_pk());
    let mut forged = known.clone();
    forged.period += 1;
    forged.nodes = vec![bad];
    forged.signatures.clear();
    let digest = forged.digest();
    forged.add_signature(Consensus::signature_by(&seed(0), &digest));
    forged.add_signature(Consensus::signature_by(&seed(1), &digest));
    let offered = Consensus::decode(&forged.encode()).unwrap();
    assert!(matches!(
        offered.verify_after(&seeds(3), now(), Some(&known)),
        Err(ConsensusError::BadNode { index: 0, .. })
    ));
}

#[test]
fn roles_are_earned_probation_then_guard() {
    let starts = schedule().valid_after(PERIOD);
    let mut votes: Vec<Vote> = (0..3)
        .map(|i| {
            vote(
                i,
                vec![
                    // Known for a day, for an hour, for a minute.
                    node(1, "10.1.0.1", None, starts - 86_400_000),
                    node(2, "10.2.0.1", None, starts - 3_600_000),
                    node(3, "10.3.0.1", None, starts - 60_000),
                ],
            )
        })
        .collect();
    for v in &mut votes {
        v.params.probation_ms = 600_000;
        v.params.guard_after_ms = 7_200_000;
    }
    let c = compute(&votes, &seeds(3), &schedule(), PERIOD).unwrap();
    assert!(c.find(&key(3)).is_none(), "a node known for a minute is on probation");
    assert!(c.find(&key(1)).unwrap().guard, "a day: a guard");
    assert!(!c.find(&key(2)).unwrap().guard, "an hour: listed, not a guard");
    // The flag is signed: clearing it breaks every signature.
    let signed_c = signed(c, &[0, 1]);
    let mut demoted = signed_c.clone();
    demoted.nodes.iter_mut().for_each(|n| n.guard = false);
    assert!(
        Consensus::decode(&demoted.encode())
            .unwrap()
            .verify(&seeds(3), now())
            .is_err()
    );
    assert!(
        Consensus::decode(&signed_c.encode())
            .unwrap()
            .verify(&seeds(3), now())
            .is_ok()
    );
}

#[test]
fn a_vote_with_a_foreign_x25519_key_is_refused_even_incrementally() {
    let good = node(1, "10.1.0.1", None, 5);
    let known = Consensus::assemble(&schedule(), PERIOD, vec![good.as_entry(3)], &[&seed(0), &seed(1)]).unwrap();
    let mut v = vote(2, vec![good]);
    assert!(v.verify_after(&seeds(3), Some(&known)).is_ok());
    v.nodes[0].x25519 = node(2, "10.2.0.1", None, 5).x25519;
    v.signature = crate::encoding::Sig64(seed(2).sign(&v.signed_bytes()));
    let decoded = Vote::decode(&v.encode()).unwrap();
    for known in [None, Some(&known)] {
        assert!(matches!(
            decoded.verify_after(&seeds(3), known),
            Err(ConsensusError::BadNode { index: 0, .. })
        ));
    }
}

/// Votes of seeds 0..3 for `period` on `nodes`, each committing to
/// `0x70 + i` and revealing `reveals[i]`.
fn votes_with_random(period: u64, nodes: &[VoteEntry], reveals: [Option<[u8; 32]>; 3]) -> Vec<Vote> {
    (0..3u8)
        .map(|i| {
            Vote::sign(
                period,
                PERIOD_MS,
                period * PERIOD_MS - 500,
                SUPPORTED_METHODS.to_vec(),
                ConsensusParams::default(),
                nodes.to_vec(),
                &seed(i),
            )
            .unwrap()
            .with_shared_random(random::commit_of(&[0x70 + i; 32]), reveals[usize::from(i)], &seed(i))
        })
        .collect()
}

#[test]
fn the_shared_random_value_takes_only_reveals_of_recorded_commits() {
    let r = |i: u8| Some([0x70 + i; 32]);
    let previous = compute(
        &votes_with_random(PERIOD - 1, &[], [None; 3]),
        &seeds(3),
        &schedule(),
        PERIOD - 1,
    )
    .unwrap();
    assert_eq!(previous.commits.len(), 3, "the counted votes' commits are recorded");
    let srv = |reveals: [Option<[u8; 32]>; 3]| {
        let votes = votes_with_random(PERIOD, &[], reveals);
        let c = compute_after(&votes, &seeds(3), &schedule(), PERIOD, Some(&previous)).unwrap();
        // The order votes arrive in changes nothing.
        let reversed: Vec<Vote> = votes.into_iter().rev().collect();
        let again = compute_after(&reversed, &seeds(3), &schedule(), PERIOD, Some(&previous)).unwrap();
        assert_eq!(c.srv, again.srv);
        c.srv
    };
    let all = srv([r(0), r(1), r(2)]);
    let withheld = srv([None, r(1), r(2)]);
    assert_ne!(all, withheld, "each reveal that counts changes the value");
    assert_ne!(withheld, srv([None, None, None]));
    assert_eq!(
        srv([Some([0; 32]), r(1), r(2)]),
        withheld,
        "a reveal that does not match its recorded commit counts for nothing"
    );
    assert_eq!(
        srv([r(1), r(0), r(2)]),
        srv([None, None, r(2)]),
        "nor does another seed's value"
    );
    // Without the consensus before, no reveal counts.
    let alone = compute(
        &votes_with_random(PERIOD, &[], [r(0), r(1), r(2)]),
        &seeds(3),
        &schedule(),
        PERIOD,
    )
    .unwrap();
    assert_ne!(alone.srv, all);
}

#[test]
fn where_new_nodes_land_follows_the_shared_random_value() {
    // Two swarms (5 and 6 members, target 7) and three new nodes: the
    // first new nodes in rank order fill the smaller swarm first.
    let a = 1u64 << 62;
    let b = 3u64 << 62;
    let mut nodes: Vec<VoteEntry> = (1..=5).map(|i| node(i, &format!("10.{i}.0.1"), Some(a), 0)).collect();
    nodes.extend((6..=11).map(|i| node(i, &format!("10.{i}.0.1"), Some(b), 0)));
    nodes.extend((12..=14).map(|i| node(i, &format!("10.{i}.0.1"), None, 0)));
    let mut previous = compute(
        &votes_with_random(PERIOD - 1, &[], [None; 3]),
        &seeds(3),
        &schedule(),
        PERIOD - 1,
    )
    .unwrap();
    let mut landed: std::collections::BTreeSet<u64> = std::collections::BTreeSet::new();
    for s in 0..16u8 {
        previous.srv = Hex32([s; 32]);
        let c = compute_after(
            &votes_with_random(PERIOD, &nodes, [None; 3]),
            &seeds(3),
            &schedule(),
            PERIOD,
            Some(&previous),
        )
        .unwrap();
        // The established nodes stay where they were.
        assert!((1..=5).all(|i| c.find(&key(i)).unwrap().swarm_id == a));
        assert!((6..=11).all(|i| c.find(&key(i)).unwrap().swarm_id == b));
        landed.insert(c.find(&key(12)).unwrap().swarm_id);
    }
    assert_eq!(landed.len(), 2, "node 12's swarm is not fixed by its key");
}
