//! Seed mode: the registry of service nodes and the signed node list.
//!
//! A node announces itself (signed record, [`allium_common::announce`]). The
//! seed probes the announced address with a fresh challenge; only a node
//! that answers correctly is listed. Every probe round re-probes all known
//! nodes and drops those that failed `drop_after_failures` times in a row.
//! Whenever the set of listed nodes (or an address) changes, swarm ids are
//! re-assigned ([`allium_common::swarm::assign`]: stable, deterministic) and
//! a new snapshot is signed with a larger epoch.
//!
//! The registry is saved to `DATA_DIR/registry.json` after every change so
//! a restarted seed keeps its swarm assignment and its epochs keep growing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use allium_common::announce::{Announce, ProbeRequest, ProbeResponse, probe_signed_bytes};
use allium_common::encoding::Hex32;
use allium_common::identity::{self, Identity};
use allium_common::node_list::NodeList;
use allium_common::rpc::ErrorCode;
use allium_common::sodium;
use allium_common::swarm::SwarmId;
use allium_common::swarm::assign::{AssignParams, assign};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::api_error::ApiError;
use crate::config::SeedMode;
use crate::peer::outbound::{self, Call};
use crate::state::{Node, now_ms};

/// Most nodes the registry tracks (listed or waiting for a probe).
pub const MAX_REGISTERED: usize = allium_common::node_list::MAX_NODES;
/// How long a probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Probes in flight at once.
const PROBE_CONCURRENCY: usize = 32;

/// One known node.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Registered {
    record: Announce,
    /// Passed a probe since its last announce of a new address.
    verified: bool,
    /// Consecutive failed probes.
    failures: u32,
}

/// What is saved to disk.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    epoch: u64,
    nodes: BTreeMap<Hex32, Registered>,
    assignment: BTreeMap<Hex32, SwarmId>,
}

#[derive(Debug, Default)]
struct State {
    saved: Saved,
    snapshot: Option<NodeList>,
}

/// The seed's registry.
#[derive(Debug)]
pub struct Registry {
    state: Mutex<State>,
    params: AssignParams,
    drop_after: u32,
    path: PathBuf,
}

impl Registry {
    /// Opens the registry saved in `data_dir` (or a new, empty one).
    pub fn open(data_dir: &std::path::Path, settings: &SeedMode) -> Self {
        let path = data_dir.join("registry.json");
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Saved>(&bytes).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "registry file unreadable: starting a new registry");
                Saved::default()
            }),
            Err(_) => Saved::default(),
        };
        let params = AssignParams {
            min_size: settings.min_swarm_size,
            target_size: settings.target_swarm_size,
            max_size: settings.max_swarm_size,
        };
        Self {
            state: Mutex::new(State { saved, snapshot: None }),
            params,
            drop_after: settings.drop_after_failures.max(1),
            path,
        }
    }

    /// The newest signed snapshot.
    pub fn snapshot(&self) -> Option<NodeList> {
        self.lock().snapshot.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records an announce; returns whether the node must be probed now
    /// (new, or its address or version changed).
    pub fn announce(&self, record: Announce, now: u64) -> Result<bool, ApiError> {
        record.verify(now)?;
        let mut state = self.lock();
        let key = record.ed25519;
        match state.saved.nodes.get_mut(&key) {
            Some(known) if known.record.address == record.address && known.record.version == record.version => {
                known.record = record;
                Ok(!known.verified)
            }
            Some(known) => {
                known.record = record;
                known.verified = false;
                Ok(true)
            }
            None => {
                if state.saved.nodes.len() >= MAX_REGISTERED {
                    return Err(ApiError::new(ErrorCode::InsufficientStorage, "the registry is full"));
                }
                state.saved.nodes.insert(
                    key,
                    Registered {
                        record,
                        verified: false,
                        failures: 0,
                    },
                );
                Ok(true)
            }
        }
    }

    /// Records a probe result; returns whether the listed set changed.
    fn probe_result(&self, key: Hex32, ok: bool) -> bool {
        let mut state = self.lock();
        let drop_after = self.drop_after;
        let Some(node) = state.saved.nodes.get_mut(&key) else {
            return false;
        };
        let was_listed = node.verified;
        if ok {
            node.verified = true;
            node.failures = 0;
            !was_listed
        } else {
            node.failures += 1;
            if node.failures >= drop_after {
                state.saved.nodes.remove(&key);
                was_listed
            } else {
                false
            }
        }
    }

    /// Re-assigns swarms and signs a new snapshot if anything changed (or
    /// if there is no snapshot yet); returns the new snapshot.
    pub fn rebuild(&self, seed: &Identity) -> Option<NodeList> {
        let mut state = self.lock();
        let live: BTreeSet<[u8; 32]> = state
            .saved
            .nodes
            .iter()
            .filter(|(_, n)| n.verified)
            .map(|(k, _)| k.0)
            .collect();
        let previous: BTreeMap<[u8; 32], SwarmId> = state.saved.assignment.iter().map(|(k, v)| (k.0, *v)).collect();
        let assignment = assign(&previous, &live, &self.params);
        let entries: Vec<_> = assignment
            .iter()
            .filter_map(|(k, swarm)| state.saved.nodes.get(&Hex32(*k)).map(|n| n.record.as_entry(*swarm)))
            .collect();
        let unchanged = state.snapshot.as_ref().is_some_and(|s| {
            let mut sorted = entries.clone();
            sorted.sort_by_key(|e| e.ed25519);
            s.nodes == sorted
        });
        if unchanged {
            return None;
        }
        // Epochs grow by at least one and never fall behind the clock, so
        // they keep growing across restarts even if the file was lost.
        let epoch = (state.saved.epoch + 1).max(now_ms());
        match NodeList::sign(epoch, entries, seed) {
            Ok(list) => {
                state.saved.epoch = epoch;
                state.saved.assignment = assignment.into_iter().map(|(k, v)| (Hex32(k), v)).collect();
                tracing::info!(
                    epoch,
                    nodes = list.nodes.len(),
                    swarms = list.swarm_ring().ids().len(),
                    "new node list"
                );
                state.snapshot = Some(list.clone());
                self.save(&state.saved);
                Some(list)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot sign the node list");
                None
            }
        }
    }

    fn save(&self, saved: &Saved) {
        let tmp = self.path.with_extension("json.tmp");
        let result = serde_json::to_vec(saved)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = result {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot save the registry");
        }
    }

    fn probe_targets(&self) -> Vec<(Hex32, String)> {
        self.lock()
            .saved
            .nodes
            .iter()
            .map(|(k, n)| (*k, n.record.address.clone()))
            .collect()
    }

    fn address_of(&self, key: &Hex32) -> Option<String> {
        self.lock().saved.nodes.get(key).map(|n| n.record.address.clone())
    }
}

/// Handles `POST /seed/v1/announce`: records the node and probes it at once
/// if it is new, so a fresh network forms in seconds.
pub async fn announce(node: Arc<Node>, body: &[u8]) -> Result<(), ApiError> {
    let Some(registry) = node.registry.as_ref() else {
        return Err(ApiError::new(ErrorCode::NotFound, "this node is not a seed"));
    };
    let record: Announce = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed announce: {e}")))?;
    let key = record.ed25519;
    if registry.announce(record, now_ms())? {
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            probe_one(&node, key).await;
        });
    }
    Ok(())
}

async fn probe_one(node: &Node, key: Hex32) {
    let Some(registry) = node.registry.as_ref() else {
        return;
    };
    let Some(address) = registry.address_of(&key) else {
        return;
    };
    let ok = probe(node.peers.http(), node.identity.ed25519_pk(), &key.0, &address).await;
    if registry.probe_result(key, ok) {
        publish(node, registry);
    }
}

/// Rebuilds the snapshot and, if it changed, follows it locally too (so
/// the seed knows which addresses are nodes, and `/health` shows the epoch).
fn publish(node: &Node, registry: &Registry) {
    if let Some(list) = registry.rebuild(&node.identity)
        && let Err(e) = node.directory.install(list)
    {
        tracing::warn!(error = %e, "the seed refused its own node list");
    }
}

/// Sends a challenge to `address` and checks the answer is signed by `key`
/// (the whole exchange within the probe timeout).
pub async fn probe(http: &reqwest::Client, seed: &[u8; 32], key: &[u8; 32], address: &str) -> bool {
    let challenge: [u8; 32] = sodium::random_array();
    let request = ProbeRequest {
        challenge: Hex32(challenge),
        seed: Hex32(*seed),
    };
    let call = Call {
        address: address.to_owned(),
        path: "/probe/v1",
        headers: Vec::new(),
        content_type: "application/json",
        body: serde_json::to_vec(&request).unwrap_or_default(),
        deadline: PROBE_TIMEOUT,
        max_answer: 4096,
    };
    let Ok(answer) = outbound::call(http, call).await else {
        return false;
    };
    let Ok(answer) = answer.parse::<ProbeResponse>() else {
        return false;
    };
    identity::verify(key, &probe_signed_bytes(&challenge, seed), &answer.signature.0)
}

/// Probes every registered node every `probe_interval_ms`, forever.
pub async fn run_prober(node: Arc<Node>) {
    let Some(registry) = node.registry.as_ref() else {
        return;
    };
    registry.rebuild(&node.identity);
    let interval = Duration::from_millis(node.config.seed_mode.probe_interval_ms.max(100));
    loop {
        tokio::time::sleep(interval).await;
        let mut probes = JoinSet::new();
        let mut changed = false;
        for (key, address) in registry.probe_targets() {
            while probes.len() >= PROBE_CONCURRENCY {
                if let Some(Ok((k, ok))) = probes.join_next().await {
                    changed |= registry.probe_result(k, ok);
                }
            }
            let http = node.peers.http().clone();
            let seed = *node.identity.ed25519_pk();
            probes.spawn(async move { (key, probe(&http, &seed, &key.0, &address).await) });
        }
        while let Some(joined) = probes.join_next().await {
            if let Ok((k, ok)) = joined {
                changed |= registry.probe_result(k, ok);
            }
        }
        if changed {
            publish(&node, registry);
        }
    }
}
