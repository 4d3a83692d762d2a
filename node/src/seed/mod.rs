//! Seed mode: the registry of service nodes, and (in [`voting`]) the
//! seed's part in the consensus.
//!
//! A node announces itself (signed record, [`allium_common::announce`]). The
//! seed probes the announced address with a fresh challenge; only a node
//! that answers correctly is in the seed's vote. Every probe round
//! re-probes all known nodes and drops those that failed
//! `drop_after_failures` times in a row. What the network uses is not this
//! registry but the consensus computed from the votes of all seeds.
//!
//! Junk cannot crowd the registry:
//! - addresses follow one strict grammar ([`allium_common::address`]) and,
//!   unless the seed serves a local network (`allow_private_addresses`),
//!   must be public, as must the IP a probe actually reaches;
//! - an announce from an unknown key is *pending* until its first probe
//!   answers; pending announces have their own bound (oldest dropped
//!   first), apart from the known nodes, and each address may announce
//!   only so often;
//! - at most [`MAX_PER_IP`] nodes per IP address are listed (Tor's rule),
//!   the longest-known first;
//! - a probe has one deadline for its whole exchange and a probe round has
//!   one for all of its probes, so one slow node stalls nothing.
//!
//! The registry is saved to `DATA_DIR/registry.json` after every change
//! (written to a temporary file, synced, renamed, and the directory synced)
//! so a restarted seed remembers how long it has known each node. A
//! registry file that cannot be read is an error at start-up, never a
//! silent fresh start.

pub mod voting;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use allium_common::address::{NodeAddress, is_non_public};
use allium_common::announce::{Announce, ProbeRequest, ProbeResponse, probe_signed_bytes};
use allium_common::consensus::{Consensus, VoteEntry};
use allium_common::encoding::Hex32;
use allium_common::identity;
use allium_common::rpc::ErrorCode;
use allium_common::sodium;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::api_error::ApiError;
use crate::config::SeedMode;
use crate::error::{Error, Result};
use crate::peer::Links;
use crate::peer::outbound::{self, Call};
use crate::ratelimit::RateLimiter;
use crate::state::{Node, now_ms};

/// Most nodes the registry knows (listed, or verified and waiting).
pub const MAX_REGISTERED: usize = allium_common::node_list::MAX_NODES;
/// Most announces waiting for their first probe.
pub const MAX_PENDING: usize = 1024;
/// Most nodes listed per IP address.
pub const MAX_PER_IP: usize = 2;
/// How long a probe may take, all of it.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Probes in flight at once in a round.
const PROBE_CONCURRENCY: usize = 64;
/// Probes of new announces in flight at once (more wait for the round).
const ANNOUNCE_PROBES: usize = 16;
/// Announces per minute one IP address may make (a node makes one a
/// minute per seed, one every 2 s while it is not listed).
const ANNOUNCES_PER_MINUTE: u32 = 60;
/// Most addresses whose announce budget is tracked.
const MAX_ANNOUNCERS: usize = 100_000;

/// One known node: it has answered a probe at least once.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Registered {
    record: Announce,
    /// Passed a probe since its last announce of a new address.
    verified: bool,
    /// Consecutive failed probes.
    failures: u32,
    /// When it first passed a probe, Unix ms (earlier nodes keep their
    /// place under the per-IP cap).
    #[serde(default)]
    first_seen: u64,
    /// The IP address its last good probe reached.
    #[serde(default)]
    reached: Option<IpAddr>,
    /// Its last probe answer said it cannot store more now.
    #[serde(default)]
    full: bool,
}

/// An announce waiting for its first probe.
#[derive(Debug, Clone)]
struct Pending {
    record: Announce,
    since: u64,
}

/// What is saved to disk (files of earlier versions also held an epoch
/// and a swarm assignment: both are ignored now).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    nodes: BTreeMap<Hex32, Registered>,
}

#[derive(Debug, Default)]
struct State {
    saved: Saved,
    pending: HashMap<Hex32, Pending>,
}

/// The outcome of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probed {
    /// The node answered with a valid signature, over a connection to
    /// this IP address, saying whether it is full.
    Answered(IpAddr, bool),
    /// It did not (or not in time, or from an address the seed refuses).
    Failed,
}

/// The seed's registry.
#[derive(Debug)]
pub struct Registry {
    state: Mutex<State>,
    drop_after: u32,
    allow_private: bool,
    path: PathBuf,
    announcers: RateLimiter<IpAddr>,
    announce_probes: Arc<Semaphore>,
}

impl Registry {
    /// Opens the registry saved in `data_dir`, or a new, empty one if there
    /// is no file. A file that cannot be read or parsed is an error.
    pub fn open(data_dir: &Path, settings: &SeedMode) -> Result<Self> {
        let path = data_dir.join("registry.json");
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Saved>(&bytes).map_err(|e| Error::Config {
                path: Some(path.clone()),
                reason: format!(
                    "the seed registry is corrupt ({e}); restore it from a backup or move it away to \
                     start a new registry, which reassigns every swarm"
                ),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let per_minute = f64::from(ANNOUNCES_PER_MINUTE) / 60.0;
        Ok(Self {
            state: Mutex::new(State {
                saved,
                pending: HashMap::new(),
            }),
            drop_after: settings.drop_after_failures.max(1),
            allow_private: settings.allow_private_addresses,
            path,
            announcers: RateLimiter::new(per_minute, ANNOUNCES_PER_MINUTE, MAX_ANNOUNCERS),
            announce_probes: Arc::new(Semaphore::new(ANNOUNCE_PROBES)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the seed may list an address of this IP.
    fn allowed_ip(&self, ip: IpAddr) -> bool {
        self.allow_private || !is_non_public(ip)
    }

    /// Records an announce; returns whether the node must be probed now
    /// (new, or its address or version changed).
    pub fn announce(&self, record: Announce, now: u64) -> Result<bool, ApiError> {
        record.verify(now)?;
        let address: NodeAddress = record
            .address
            .parse()
            .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("address {e}")))?;
        if address.ip().is_some_and(|ip| !self.allowed_ip(ip)) {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                "address is not a public one; this seed lists only public addresses",
            ));
        }
        let mut state = self.lock();
        let key = record.ed25519;
        if let Some(known) = state.saved.nodes.get_mut(&key) {
            let moved = known.record.address != record.address || known.record.version != record.version;
            known.record = record;
            if moved {
                known.verified = false;
            }
            return Ok(!known.verified);
        }
        if state.saved.nodes.len() >= MAX_REGISTERED {
            return Err(ApiError::new(ErrorCode::InsufficientStorage, "the registry is full"));
        }
        if !state.pending.contains_key(&key) && state.pending.len() >= MAX_PENDING {
            // The oldest waiting announce makes room: junk ages out, and a
            // real node announces again.
            if let Some(oldest) = state.pending.iter().min_by_key(|(_, p)| p.since).map(|(k, _)| *k) {
                state.pending.remove(&oldest);
            }
        }
        state.pending.insert(key, Pending { record, since: now });
        Ok(true)
    }

    /// Records a probe result; returns whether the listed set may have
    /// changed.
    pub fn probe_result(&self, key: Hex32, probed: Probed, now: u64) -> bool {
        let mut state = self.lock();
        let drop_after = self.drop_after;
        let (reached, full) = match probed {
            Probed::Answered(ip, full) if self.allowed_ip(ip) => (Some(ip), full),
            _ => (None, false),
        };
        if let Some(pending) = state.pending.remove(&key) {
            let Some(ip) = reached else { return false };
            if state.saved.nodes.len() >= MAX_REGISTERED {
                return false;
            }
            state.saved.nodes.insert(
                key,
                Registered {
                    record: pending.record,
                    verified: true,
                    failures: 0,
                    first_seen: now,
                    reached: Some(ip),
                    full,
                },
            );
            return true;
        }
        let Some(node) = state.saved.nodes.get_mut(&key) else {
            return false;
        };
        let was_listed = node.verified;
        match reached {
            Some(ip) => {
                let changed = !was_listed || node.reached != Some(ip);
                node.verified = true;
                node.failures = 0;
                node.reached = Some(ip);
                if node.full != full {
                    tracing::info!(node = %hex::encode(key.0), full, "a node's storage changed state");
                    node.full = full;
                }
                if node.first_seen == 0 {
                    node.first_seen = now;
                }
                changed
            }
            None => {
                node.failures += 1;
                if node.failures >= drop_after {
                    state.saved.nodes.remove(&key);
                    was_listed
                } else {
                    false
                }
            }
        }
    }

    /// The verified nodes that may be listed: at most [`MAX_PER_IP`] per IP
    /// address, those known longest first.
    fn listable(saved: &Saved) -> BTreeSet<[u8; 32]> {
        let mut by_ip: BTreeMap<Option<IpAddr>, Vec<(u64, [u8; 32])>> = BTreeMap::new();
        for (key, node) in saved.nodes.iter().filter(|(_, n)| n.verified) {
            let ip = node
                .reached
                .or_else(|| node.record.address.parse::<NodeAddress>().ok().and_then(|a| a.ip()));
            by_ip.entry(ip).or_default().push((node.first_seen, key.0));
        }
        by_ip
            .into_values()
            .flat_map(|mut nodes| {
                nodes.sort_unstable();
                nodes.into_iter().take(MAX_PER_IP).map(|(_, key)| key)
            })
            .collect()
    }

    /// What this seed votes: the nodes it may list, each with its swarm in
    /// `previous` (the newest consensus the seed holds) and when the seed
    /// first reached it.
    pub fn vote_entries(&self, previous: Option<&Consensus>) -> Vec<VoteEntry> {
        let state = self.lock();
        Self::listable(&state.saved)
            .into_iter()
            .filter_map(|key| {
                let node = state.saved.nodes.get(&Hex32(key))?;
                Some(VoteEntry {
                    ed25519: node.record.ed25519,
                    x25519: node.record.x25519,
                    address: node.record.address.clone(),
                    version: node.record.version.clone(),
                    swarm_id: previous.and_then(|c| c.find(&key)).map(|n| n.swarm_id),
                    first_seen: node.first_seen,
                })
            })
            .collect()
    }

    /// Saves the registry, logging a failure (the next change tries again).
    fn persist(&self) {
        let state = self.lock();
        if let Err(e) = self.save(&state.saved) {
            tracing::error!(error = %e, path = %self.path.display(), "cannot save the registry");
        }
    }

    /// Writes the registry atomically and durably: a temporary file,
    /// synced, renamed over the old one, and the directory synced.
    fn save(&self, saved: &Saved) -> std::io::Result<()> {
        use std::io::Write as _;
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(saved).map_err(std::io::Error::other)?;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Every known and pending node with its address.
    fn probe_targets(&self) -> Vec<(Hex32, String)> {
        let state = self.lock();
        state
            .saved
            .nodes
            .iter()
            .map(|(k, n)| (*k, n.record.address.clone()))
            .chain(state.pending.iter().map(|(k, p)| (*k, p.record.address.clone())))
            .collect()
    }

    fn address_of(&self, key: &Hex32) -> Option<String> {
        let state = self.lock();
        state
            .saved
            .nodes
            .get(key)
            .map(|n| n.record.address.clone())
            .or_else(|| state.pending.get(key).map(|p| p.record.address.clone()))
    }

    /// Announces waiting for their first probe.
    pub fn pending(&self) -> usize {
        self.lock().pending.len()
    }

    /// Nodes known (listed or waiting under the per-IP cap).
    pub fn known(&self) -> usize {
        self.lock().saved.nodes.len()
    }

    /// Known nodes whose last probe said they are full.
    pub fn full(&self) -> usize {
        self.lock().saved.nodes.values().filter(|n| n.full).count()
    }
}

/// Handles `POST /seed/v1/announce` from `from`: records the node and
/// probes it at once if it is new (so a fresh network forms in seconds),
/// as long as few such probes are running; otherwise the next round does.
pub async fn announce(node: Arc<Node>, from: IpAddr, body: &[u8]) -> Result<(), ApiError> {
    let Some(registry) = node.registry() else {
        return Err(ApiError::new(ErrorCode::NotFound, "this node is not a seed"));
    };
    if !registry.announcers.allow(&from, Instant::now()) {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            "too many announces from this address; a node announces once a minute",
        ));
    }
    let record: Announce = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("malformed announce: {e}")))?;
    let key = record.ed25519;
    if registry.announce(record, now_ms())?
        && let Ok(permit) = Arc::clone(&registry.announce_probes).try_acquire_owned()
    {
        let node = Arc::clone(&node);
        tokio::spawn(async move {
            probe_one(&node, key).await;
            drop(permit);
        });
    }
    Ok(())
}

async fn probe_one(node: &Node, key: Hex32) {
    let Some(registry) = node.registry() else {
        return;
    };
    let Some(address) = registry.address_of(&key) else {
        return;
    };
    let probed = probe(node.peers.links(), node.identity.ed25519_pk(), &key.0, &address).await;
    if registry.probe_result(key, probed, now_ms()) {
        registry.persist();
    }
}

/// Sends a challenge to `address` and checks the answer is signed by `key`
/// (the whole exchange within the probe timeout); says which IP address
/// answered.
pub async fn probe(links: &Links, seed: &[u8; 32], key: &[u8; 32], address: &str) -> Probed {
    let challenge: [u8; 32] = sodium::random_array();
    let request = ProbeRequest {
        challenge: Hex32(challenge),
        seed: Hex32(*seed),
    };
    let call = Call {
        address: address.to_owned(),
        pin: Some(*key),
        path: "/probe/v1",
        headers: Vec::new(),
        content_type: "application/json",
        body: serde_json::to_vec(&request).unwrap_or_default(),
        deadline: PROBE_TIMEOUT,
        max_answer: 4096,
    };
    let Ok(answer) = outbound::call(links, call).await else {
        return Probed::Failed;
    };
    let (Ok(response), Some(remote)) = (answer.parse::<ProbeResponse>(), answer.remote) else {
        return Probed::Failed;
    };
    if identity::verify(key, &probe_signed_bytes(&challenge, seed), &response.signature.0) {
        Probed::Answered(remote.ip(), response.full)
    } else {
        Probed::Failed
    }
}

/// Probes every known and pending node every `probe_interval_ms`, forever.
/// A round ends at its deadline: probes still running are abandoned and
/// count for nothing.
pub async fn run_prober(node: Arc<Node>) {
    let Some(registry) = node.registry() else {
        return;
    };
    let interval = Duration::from_millis(node.config.seed_mode.probe_interval_ms.max(100));
    let round_deadline = interval.max(PROBE_TIMEOUT * 2);
    loop {
        tokio::time::sleep(interval).await;
        let mut probes = JoinSet::new();
        let mut changed = false;
        let round = async {
            for (key, address) in registry.probe_targets() {
                while probes.len() >= PROBE_CONCURRENCY {
                    if let Some(Ok((k, probed))) = probes.join_next().await {
                        changed |= registry.probe_result(k, probed, now_ms());
                    }
                }
                let links = Arc::clone(node.peers.links());
                let seed = *node.identity.ed25519_pk();
                probes.spawn(async move { (key, probe(&links, &seed, &key.0, &address).await) });
            }
            while let Some(joined) = probes.join_next().await {
                if let Ok((k, probed)) = joined {
                    changed |= registry.probe_result(k, probed, now_ms());
                }
            }
        };
        if tokio::time::timeout(round_deadline, round).await.is_err() {
            tracing::warn!("probe round cut off at its deadline; unfinished probes count for nothing");
        }
        if changed {
            registry.persist();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use allium_common::Identity;

    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn settings(allow_private: bool) -> SeedMode {
        SeedMode {
            allow_private_addresses: allow_private,
            ..SeedMode::default()
        }
    }

    fn record(seed: u8, address: &str) -> Announce {
        Announce::sign(&Identity::from_ed25519_seed(&[seed; 32]), address, "0.1.0", NOW)
    }

    fn ip(a: u8, b: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(203, 0, a, b))
    }

    #[test]
    fn at_most_two_nodes_per_ip_are_listed_the_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), &settings(false)).unwrap();
        for (i, seed_byte) in [1u8, 2, 3].into_iter().enumerate() {
            let r = record(seed_byte, &format!("203.0.114.9:{}", 1000 + i));
            assert!(registry.announce(r.clone(), NOW).unwrap());
            let when = NOW + u64::try_from(i).unwrap();
            assert!(registry.probe_result(r.ed25519, Probed::Answered(ip(114, 9), false), when));
        }
        let other = record(4, "203.0.114.10:1000");
        registry.announce(other.clone(), NOW).unwrap();
        registry.probe_result(other.ed25519, Probed::Answered(ip(114, 10), false), NOW + 9);
        let vote = registry.vote_entries(None);
        assert_eq!(vote.len(), 3, "two on 203.0.114.9, one on 203.0.114.10");
        let third = record(3, "203.0.114.9:1002").ed25519;
        assert!(vote.iter().all(|e| e.ed25519 != third), "the newest on a full IP waits");
        assert_eq!(registry.known(), 4);
    }

    #[test]
    fn junk_announces_stay_pending_bounded_and_apart_from_listed_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), &settings(true)).unwrap();
        let listed = record(1, "127.5.0.1:9");
        registry.announce(listed.clone(), NOW).unwrap();
        registry.probe_result(listed.ed25519, Probed::Answered(ip(1, 1), false), NOW);
        for i in 0..(MAX_PENDING + 100) {
            let junk = Announce::sign(
                &Identity::from_ed25519_seed(&sodium::random_array()),
                "127.6.0.1:9",
                "0.1.0",
                NOW,
            );
            registry.announce(junk, NOW + u64::try_from(i).unwrap()).unwrap();
        }
        assert_eq!(registry.pending(), MAX_PENDING);
        assert_eq!(registry.known(), 1, "junk never becomes a known node");
        // A pending node that fails its probe is forgotten at once.
        let key = registry.lock().pending.keys().next().copied().unwrap();
        registry.probe_result(key, Probed::Failed, NOW);
        assert_eq!(registry.pending(), MAX_PENDING - 1);
    }

    #[test]
    fn private_addresses_only_on_a_local_network() {
        let dir = tempfile::tempdir().unwrap();
        let public = Registry::open(dir.path(), &settings(false)).unwrap();
        for address in ["127.0.0.1:9", "10.1.2.3:9", "[::1]:9", "192.168.0.1:9"] {
            assert!(public.announce(record(1, address), NOW).is_err(), "{address}");
        }
        // A name that leads to a private address fails at its probe.
        let named = record(2, "node.example:9");
        assert!(public.announce(named.clone(), NOW).unwrap());
        assert!(!public.probe_result(named.ed25519, Probed::Answered("10.0.0.1".parse().unwrap(), false), NOW));
        assert_eq!(public.known(), 0);
        let local = Registry::open(dir.path(), &settings(true)).unwrap();
        assert!(local.announce(record(1, "127.0.0.1:9"), NOW).is_ok());
    }

    #[test]
    fn bad_addresses_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), &settings(true)).unwrap();
        for address in ["evil.example/x#:80", "a@b:80", "[fe80::1%eth0]:80", "1.2.3.4:080"] {
            let e = registry.announce(record(1, address), NOW).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{address}: {e:?}");
        }
    }

    #[test]
    fn the_registry_survives_a_restart_and_a_corrupt_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path(), &settings(true)).unwrap();
        let r = record(1, "127.5.0.1:9");
        registry.announce(r.clone(), NOW).unwrap();
        registry.probe_result(r.ed25519, Probed::Answered(ip(1, 1), false), NOW);
        registry.persist();
        let first = registry.vote_entries(None);
        drop(registry);
        let reopened = Registry::open(dir.path(), &settings(true)).unwrap();
        assert_eq!(reopened.known(), 1);
        assert_eq!(reopened.vote_entries(None), first, "first seen kept");
        assert!(!dir.path().join("registry.json.tmp").exists());
        std::fs::write(dir.path().join("registry.json"), b"{\"epoch\": 3, \"nodes\": [").unwrap();
        let e = Registry::open(dir.path(), &settings(true)).unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains("registry.json"), "{e}");
    }
}
