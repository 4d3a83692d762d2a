//! Test vectors for the seed's swarm assignment (`swarm::assign`), so that
//! another implementation can replay the same history and compare.
//!
//! `tests/vectors/swarm_assign.json` holds a scripted history: each step
//! lists the nodes that join and leave, and the assignment computed from
//! the previous step's assignment and the new live set. To regenerate it
//! after a deliberate change of the algorithm, run
//! `ALLIUM_WRITE_VECTORS=1 cargo test -p allium-common --test swarm_assign`
//! and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use allium_common::sodium;
use allium_common::swarm::SwarmId;
use allium_common::swarm::assign::{AssignParams, NodeKey, assign};
use serde_json::{Map, Value, json};

const KEY_DOMAIN: &[u8] = b"allium-assign-vector";

/// Node `i`'s Ed25519 key: BLAKE2b-256("allium-assign-vector" ‖ u32be(i)).
fn node(i: u32) -> NodeKey {
    sodium::blake2b::<32>(&[KEY_DOMAIN, &i.to_be_bytes()])
}

/// One step of the script: which nodes join, which leave.
enum Op {
    Join(Vec<u32>),
    /// The `count` lowest-keyed members of swarm `swarm`.
    LeaveFromSwarm {
        swarm: SwarmId,
        count: usize,
    },
    /// Everyone but the `keep` lowest-keyed nodes.
    LeaveAllBut {
        keep: usize,
    },
}

fn script() -> Vec<Op> {
    let mut ops = vec![Op::Join((0..20).collect())];
    // Single joins until the spare nodes form a new swarm.
    ops.extend((20..28).map(|i| Op::Join(vec![i])));
    // The new swarm starves: topped up from above target, then from above
    // min, then dissolved once the others can absorb it.
    const NEWEST: SwarmId = 0xc000_0000_0000_0000;
    ops.extend([
        Op::LeaveFromSwarm {
            swarm: NEWEST,
            count: 1,
        },
        Op::LeaveFromSwarm {
            swarm: 1 << 63,
            count: 2,
        },
        Op::LeaveFromSwarm {
            swarm: 1 << 63,
            count: 1,
        },
        Op::LeaveFromSwarm {
            swarm: NEWEST,
            count: 1,
        },
        Op::LeaveFromSwarm {
            swarm: NEWEST,
            count: 1,
        },
        Op::LeaveFromSwarm {
            swarm: NEWEST,
            count: 1,
        },
        Op::Join((100..106).collect()),
        Op::LeaveAllBut { keep: 4 },
        Op::Join(vec![200, 201, 202]),
    ]);
    ops
}

fn run() -> Value {
    let params = AssignParams::DEFAULT;
    let mut live: BTreeSet<NodeKey> = BTreeSet::new();
    let mut out: BTreeMap<NodeKey, SwarmId> = BTreeMap::new();
    let mut steps = Vec::new();
    for op in script() {
        let (mut joined, mut left) = (Vec::new(), Vec::new());
        match op {
            Op::Join(ids) => joined = ids.into_iter().map(node).collect(),
            Op::LeaveFromSwarm { swarm, count } => {
                left = out
                    .iter()
                    .filter(|(_, id)| **id == swarm)
                    .map(|(k, _)| *k)
                    .take(count)
                    .collect();
            }
            Op::LeaveAllBut { keep } => left = live.iter().skip(keep).copied().collect(),
        }
        live.extend(joined.iter().copied());
        for k in &left {
            live.remove(k);
        }
        out = assign(&out, &live, &params);
        let assignment: Map<String, Value> = out
            .iter()
            .map(|(k, id)| (hex::encode(k), json!(format!("{id:016x}"))))
            .collect();
        steps.push(json!({
            "join": joined.iter().map(hex::encode).collect::<Vec<_>>(),
            "leave": left.iter().map(hex::encode).collect::<Vec<_>>(),
            "assignment": assignment,
        }));
    }
    json!({
        "description": "Replay: start from an empty assignment; at each step add `join` to and remove `leave` from the live set, then assign(previous assignment, live set, params) must equal `assignment` (node ed25519 hex -> swarm id as 16 hex digits).",
        "params": {
            "min_size": params.min_size,
            "target_size": params.target_size,
            "max_size": params.max_size,
        },
        "node_keys": "node i = BLAKE2b-256(\"allium-assign-vector\" || u32 big-endian i)",
        "steps": steps,
    })
}

#[test]
fn assignment_vectors() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/swarm_assign.json");
    let computed = run();
    if std::env::var_os("ALLIUM_WRITE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&computed).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        return;
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        stored, computed,
        "swarm_assign.json differs from what the code computes"
    );
}

/// The stored vectors also replay from the file alone, as another
/// implementation would.
#[test]
fn vectors_replay_from_the_file() {
    let stored: Value = serde_json::from_str(include_str!("vectors/swarm_assign.json")).unwrap();
    let params = AssignParams::DEFAULT;
    let keys = |v: &Value| -> Vec<NodeKey> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|h| hex::decode(h.as_str().unwrap()).unwrap().try_into().unwrap())
            .collect()
    };
    let mut live = BTreeSet::new();
    let mut out = BTreeMap::new();
    let mut swarm_counts = Vec::new();
    for step in stored["steps"].as_array().unwrap() {
        live.extend(keys(&step["join"]));
        for k in keys(&step["leave"]) {
            live.remove(&k);
        }
        out = assign(&out, &live, &params);
        let expected: BTreeMap<NodeKey, SwarmId> = step["assignment"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let key: NodeKey = hex::decode(k).unwrap().try_into().unwrap();
                (key, u64::from_str_radix(v.as_str().unwrap(), 16).unwrap())
            })
            .collect();
        assert_eq!(out, expected);
        swarm_counts.push(out.values().collect::<BTreeSet<_>>().len());
    }
    // The script does exercise splits, repairs and the tiny-network rule.
    assert_eq!(swarm_counts.first(), Some(&3));
    assert!(swarm_counts.contains(&4));
    assert!(swarm_counts.windows(2).any(|w| w[0] == 4 && w[1] == 3));
    assert_eq!(swarm_counts.last(), Some(&1));
}
