//! The consensus at 10,000 nodes: computing it, verifying it whole and
//! incrementally, and diffs between periods.
//!
//! Run: `cargo bench -p allium-common --bench consensus`. Sizes are printed
//! once before the timings. Results are in `docs/benchmarks.md`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use allium_common::Identity;
use allium_common::consensus::{
    Consensus, ConsensusDiff, ConsensusParams, SUPPORTED_METHODS, Schedule, Vote, VoteEntry, compute,
};
use allium_common::encoding::Hex32;
use criterion::{Criterion, criterion_group, criterion_main};

const NODES: usize = 10_000;
const PERIOD_MS: u64 = 300_000;
const PERIOD: u64 = 5_800_000;

fn seed(i: u8) -> Identity {
    Identity::from_ed25519_seed(&[0xe0 + i; 32])
}

fn entries(n: usize, salt: u8) -> Vec<VoteEntry> {
    (0..n)
        .map(|i| {
            let mut s = [salt; 32];
            s[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let id = Identity::from_ed25519_seed(&s);
            VoteEntry {
                ed25519: Hex32(*id.ed25519_pk()),
                x25519: Hex32(*id.x25519_pk()),
                // Distinct /16s and hosts, like a real network.
                address: format!("{}.{}.0.1:22021", 11 + i / 256 % 200, i % 256),
                version: "0.1.0".into(),
                swarm_id: None,
                first_seen: 1_700_000_000_000 + i as u64,
            }
        })
        .collect()
}

fn votes(period: u64, nodes: &[VoteEntry]) -> Vec<Vote> {
    (0..3)
        .map(|i| {
            Vote::sign(
                period,
                PERIOD_MS,
                0,
                SUPPORTED_METHODS.to_vec(),
                ConsensusParams::default(),
                nodes.to_vec(),
                &seed(i),
            )
            .unwrap()
        })
        .collect()
}

fn signed(mut c: Consensus) -> Consensus {
    let digest = c.digest();
    for i in 0..3 {
        c.add_signature(Consensus::signature_by(&seed(i), &digest));
    }
    c
}

fn bench(c: &mut Criterion) {
    let keys: Vec<[u8; 32]> = (0..3).map(|i| *seed(i).ed25519_pk()).collect();
    let schedule = Schedule::new(PERIOD_MS);
    let now = schedule.valid_after(PERIOD + 1);
    let mut nodes = entries(NODES, 1);
    let first_votes = votes(PERIOD, &nodes);
    let base = signed(compute(&first_votes, &keys, &schedule, PERIOD).unwrap());
    for n in &mut nodes {
        n.swarm_id = base.find(&n.ed25519.0).map(|e| e.swarm_id);
    }
    // The next period: 1 % of the nodes left, as many joined.
    let leaving = NODES / 100;
    let mut next_nodes: Vec<VoteEntry> = nodes[leaving..].to_vec();
    next_nodes.extend(entries(leaving, 2));
    let next_votes = votes(PERIOD + 1, &next_nodes);
    let next = signed(compute(&next_votes, &keys, &schedule, PERIOD + 1).unwrap());
    let same = signed(compute(&votes(PERIOD + 1, &nodes), &keys, &schedule, PERIOD + 1).unwrap());
    let encoded = next.encode();
    let diff = next.diff_from(&base);
    let empty_diff = same.diff_from(&base);
    eprintln!(
        "consensus of {NODES} nodes: {} bytes ({:.0} per node); vote: {} bytes; diff after 1% churn: {} bytes \
         ({} removed, {} new or changed); diff of an unchanged network: {} bytes",
        encoded.len(),
        encoded.len() as f64 / NODES as f64,
        first_votes[0].encode().len(),
        diff.encode().len(),
        diff.removed.len(),
        diff.upserted.len(),
        empty_diff.encode().len(),
    );

    let mut g = c.benchmark_group("consensus_10k");
    g.sample_size(10);
    g.bench_function("compute_from_3_votes", |b| {
        b.iter(|| compute(black_box(&next_votes), &keys, &schedule, PERIOD + 1).unwrap())
    });
    g.bench_function("verify_a_vote", |b| {
        b.iter(|| black_box(&next_votes[0]).verify(&keys).unwrap())
    });
    g.bench_function("verify_a_vote_after_the_current_consensus", |b| {
        b.iter(|| black_box(&next_votes[0]).verify_after(&keys, Some(&base)).unwrap())
    });
    g.bench_function("decode", |b| b.iter(|| Consensus::decode(black_box(&encoded)).unwrap()));
    let decoded = Consensus::decode(&encoded).unwrap();
    g.bench_function("verify_full", |b| {
        b.iter(|| decoded.clone().verify(&keys, now).unwrap())
    });
    g.bench_function("verify_incremental_after_1pct_churn", |b| {
        b.iter(|| decoded.clone().verify_after(&keys, now, Some(&base)).unwrap())
    });
    let diff_bytes = diff.encode();
    g.bench_function("diff_decode_apply_verify_after_1pct_churn", |b| {
        b.iter(|| {
            ConsensusDiff::decode(black_box(&diff_bytes))
                .unwrap()
                .apply(&base)
                .unwrap()
                .verify_after(&keys, now, Some(&base))
                .unwrap()
        })
    });
    let empty_bytes = empty_diff.encode();
    g.bench_function("diff_decode_apply_verify_unchanged", |b| {
        b.iter(|| {
            ConsensusDiff::decode(black_box(&empty_bytes))
                .unwrap()
                .apply(&base)
                .unwrap()
                .verify_after(&keys, now, Some(&base))
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
