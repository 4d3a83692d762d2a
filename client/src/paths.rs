//! Onion paths and requests through them.
//!
//! The client keeps two paths of three relays (guard, middle, exit) with
//! different guards; a request picks one and appends its destination. No
//! path holds two nodes of one /16 (IPv4) or /32 (IPv6), so one operator's
//! network cannot see both ends. A path that fails three times in a row is
//! replaced.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use allium_common::node_list::{NodeEntry, NodeList};
use allium_common::onion::{self, Hop, LayerSecrets};
use allium_common::sodium::{self, random_index};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::transport::{Peer, Post, SendError, Transport};

/// Relays per path (guard, middle, exit); the destination is a fourth hop.
pub const RELAYS: usize = 3;
/// Paths kept at once.
pub const PATHS: usize = 2;
/// Failures in a row after which a path is rebuilt.
pub const MAX_FAILURES: u32 = 3;

/// One path of relays.
#[derive(Debug, Clone)]
pub struct Path {
    /// Guard, middle, exit.
    pub relays: Vec<NodeEntry>,
    failures: u32,
}

/// The client's paths.
#[derive(Debug, Default)]
pub struct Paths {
    paths: Vec<Path>,
}

/// Why a request did not get an answer from its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFailure {
    /// What happened, for people.
    pub reason: String,
    /// The hop that is probably down, when the failure says: the guard if
    /// it could not be reached, else the hop after the relay that reported.
    pub dead: Option<[u8; 32]>,
    /// No other path can help (Tor is not usable).
    pub fatal: bool,
}

impl PathFailure {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            dead: None,
            fatal: false,
        }
    }
}

/// The /16 (IPv4) or /32 (IPv6) of a node's address: nodes with the same
/// key must not share a path, so one operator's network cannot see both
/// ends of it. Loopback is no exception: a local network gives each node
/// its own 127.x address, so the rule runs in tests too.
fn subnet_key(address: &str) -> String {
    match address.parse::<SocketAddr>() {
        Ok(SocketAddr::V4(a)) => {
            let o = a.ip().octets();
            format!("{}.{}", o[0], o[1])
        }
        Ok(SocketAddr::V6(a)) => {
            let s = a.ip().segments();
            format!("{:x}:{:x}", s[0], s[1])
        }
        // A host name: its name stands for its network.
        Err(_) => address.rsplit_once(':').map_or(address, |(h, _)| h).to_owned(),
    }
}

/// The guards of `paths`, leaving out path `except`.
fn guards_of(paths: &[Path], except: Option<usize>) -> HashSet<[u8; 32]> {
    paths
        .iter()
        .enumerate()
        .filter(|(j, _)| Some(*j) != except)
        .filter_map(|(_, p)| p.relays.first())
        .map(|g| g.ed25519.0)
        .collect()
}

/// `nodes` in random order (Fisher-Yates with libsodium's randomness).
fn shuffled<'a>(nodes: impl Iterator<Item = &'a NodeEntry>) -> Vec<&'a NodeEntry> {
    let mut nodes: Vec<&NodeEntry> = nodes.collect();
    for i in (1..nodes.len()).rev() {
        nodes.swap(i, random_index(i + 1));
    }
    nodes
}

/// Picks `RELAYS` relays at random, none in `excluded` (keys) and no two
/// sharing a subnet key, with a guard not in `guards_in_use`.
fn build_path(list: &NodeList, excluded: &HashSet<[u8; 32]>, guards_in_use: &HashSet<[u8; 32]>) -> Option<Path> {
    let guard = shuffled(list.nodes.iter())
        .into_iter()
        .find(|n| !excluded.contains(&n.ed25519.0) && !guards_in_use.contains(&n.ed25519.0))?;
    path_from_guard(list, guard, excluded)
}

/// A path that starts at `guard`, completed with random relays in other
/// subnets, none in `excluded`.
fn path_from_guard(list: &NodeList, guard: &NodeEntry, excluded: &HashSet<[u8; 32]>) -> Option<Path> {
    let candidates = shuffled(
        list.nodes
            .iter()
            .filter(|n| n.ed25519 != guard.ed25519 && !excluded.contains(&n.ed25519.0)),
    );
    let mut relays = vec![guard.clone()];
    let mut subnets: HashSet<String> = [subnet_key(&guard.address)].into();
    for node in candidates {
        if relays.len() == RELAYS {
            break;
        }
        if subnets.insert(subnet_key(&node.address)) {
            relays.push(node.clone());
        }
    }
    (relays.len() == RELAYS).then_some(Path { relays, failures: 0 })
}

impl Paths {
    /// Builds the paths from a node list.
    pub fn build(list: &NodeList) -> Result<Self> {
        let mut paths = Self::default();
        for _ in 0..PATHS {
            paths.add(list)?;
        }
        Ok(paths)
    }

    fn add(&mut self, list: &NodeList) -> Result<()> {
        let guards = guards_of(&self.paths, None);
        let path = build_path(list, &HashSet::new(), &guards).ok_or_else(|| {
            Error::NoPath(format!(
                "{} nodes are listed; {PATHS} paths of {RELAYS} relays in distinct subnets with distinct guards need more",
                list.nodes.len()
            ))
        })?;
        self.paths.push(path);
        Ok(())
    }

    /// A path for a request to `destination`: a random one of the kept
    /// paths that does not contain it, or else a one-off path that avoids
    /// it and starts at one of the kept guards (the two guards are distinct,
    /// so one of them is not the destination): a one-off path never shows
    /// the client's address to a new node.
    pub fn for_destination(&self, list: &NodeList, destination: &NodeEntry) -> Result<(Option<usize>, Path)> {
        let usable: Vec<usize> = (0..self.paths.len())
            .filter(|&i| self.paths[i].relays.iter().all(|r| r.ed25519 != destination.ed25519))
            .collect();
        if !usable.is_empty() {
            let i = usable[random_index(usable.len())];
            return Ok((Some(i), self.paths[i].clone()));
        }
        let excluded: HashSet<[u8; 32]> = [destination.ed25519.0].into();
        let guards: Vec<&NodeEntry> = self
            .paths
            .iter()
            .filter_map(|p| p.relays.first())
            .filter(|g| g.ed25519 != destination.ed25519)
            .collect();
        let one_off = match guards.get(random_index(guards.len())) {
            Some(guard) => path_from_guard(list, guard, &excluded),
            // No kept paths at all (not built yet): any guard.
            None => build_path(list, &excluded, &HashSet::new()),
        };
        one_off
            .map(|p| (None, p))
            .ok_or_else(|| Error::NoPath("too few nodes to route around the destination".into()))
    }

    /// Records a failure of kept path `i`; rebuilds it after
    /// [`MAX_FAILURES`] in a row. Returns whether it was rebuilt.
    pub fn failed(&mut self, i: usize, list: &NodeList) -> bool {
        let Some(path) = self.paths.get_mut(i) else {
            return false;
        };
        path.failures += 1;
        if path.failures < MAX_FAILURES {
            return false;
        }
        let old = self.paths.remove(i);
        let guards = guards_of(&self.paths, None);
        // Avoid the failed path's nodes if the network is big enough.
        let avoid: HashSet<[u8; 32]> = old.relays.iter().map(|r| r.ed25519.0).collect();
        let rebuilt = build_path(list, &avoid, &guards).or_else(|| build_path(list, &HashSet::new(), &guards));
        self.paths.insert(i.min(self.paths.len()), rebuilt.unwrap_or(old));
        true
    }

    /// Rebuilds at once every kept path that goes through `dead`, avoiding
    /// the nodes in `avoid`. Returns whether a path changed.
    pub fn replace_containing(&mut self, dead: &[u8; 32], list: &NodeList, avoid: &HashSet<[u8; 32]>) -> bool {
        let mut changed = false;
        for i in 0..self.paths.len() {
            if self.paths[i].relays.iter().all(|r| &r.ed25519.0 != dead) {
                continue;
            }
            let guards = guards_of(&self.paths, Some(i));
            if let Some(p) = build_path(list, avoid, &guards) {
                self.paths[i] = p;
                changed = true;
            }
        }
        changed
    }

    /// Records a success of kept path `i`.
    pub fn succeeded(&mut self, i: usize) {
        if let Some(p) = self.paths.get_mut(i) {
            p.failures = 0;
        }
    }

    /// The relays' Ed25519 keys, hex, path by path (what is saved so a
    /// client keeps its guards across runs instead of exposing new ones
    /// every time).
    pub fn to_keys(&self) -> Vec<Vec<String>> {
        self.paths
            .iter()
            .map(|p| p.relays.iter().map(|r| hex::encode(r.ed25519.0)).collect())
            .collect()
    }

    /// The paths named by `keys` (saved, or in use) over a newer `list`,
    /// changing as little as possible: a path whose relays are all still
    /// listed stays as it is; one that lost a relay is rebuilt around its
    /// guard if the guard is still listed; only a path whose guard is gone
    /// gets a new guard. So a node-list refresh (after a 421, or a stale
    /// cache) never shows this client's address to a new node while its
    /// guards are alive. Falls back to [`Paths::build`] for what is missing.
    pub fn follow(list: &NodeList, keys: &[Vec<String>]) -> Result<Self> {
        let find = |k: &String| {
            allium_common::encoding::hex_array::<32>(k)
                .ok()
                .and_then(|k| list.find(&k).cloned())
        };
        let mut kept = Self::default();
        for path in keys.iter().take(PATHS) {
            let in_use = guards_of(&kept.paths, None);
            let Some(guard) = path.first().and_then(find).filter(|g| !in_use.contains(&g.ed25519.0)) else {
                continue;
            };
            let relays: Option<Vec<NodeEntry>> = path.iter().map(find).collect();
            match relays.filter(|r| r.len() == RELAYS) {
                Some(relays) => kept.paths.push(Path { relays, failures: 0 }),
                None => kept.paths.extend(path_from_guard(list, &guard, &HashSet::new())),
            }
        }
        while kept.paths.len() < PATHS {
            kept.add(list)?;
        }
        Ok(kept)
    }

    /// The kept paths (for `allium nodes`).
    pub fn paths(&self) -> &[Path] {
        &self.paths
    }
}

/// Sends `request` (a JSON-RPC object) to `destination` through `path`;
/// returns the destination's status and body, or why the path failed.
pub async fn request(
    transport: &Transport,
    path: &Path,
    destination: &NodeEntry,
    request: &Value,
    timeout: Duration,
) -> std::result::Result<(u16, Value), PathFailure> {
    let hops: Vec<Hop> = path
        .relays
        .iter()
        .chain(std::iter::once(destination))
        .map(|n| Hop {
            ed25519: n.ed25519.0,
            x25519: n.x25519.0,
        })
        .collect();
    let secrets: Vec<LayerSecrets> = hops
        .iter()
        .map(|_| LayerSecrets {
            ephemeral_sk: sodium::random_array(),
            nonce: sodium::random_array(),
        })
        .collect();
    let built =
        onion::build_request(&hops, request, &secrets).map_err(|e| PathFailure::new(format!("cannot build: {e}")))?;
    let guard = path.relays.first().ok_or_else(|| PathFailure::new("empty path"))?;
    let post = Post {
        address: &guard.address,
        path: "/onion_req/v2",
        content_type: "application/octet-stream",
        body: built.body,
        timeout,
        max_reply: onion::MAX_ENCODED_RESPONSE,
    };
    let reply = transport.post(Peer::Guard, post).await.map_err(|e| match e {
        SendError::Timeout => PathFailure::new("the path timed out"),
        SendError::Refused | SendError::Unreachable(_) => PathFailure {
            reason: "guard unreachable".into(),
            dead: Some(guard.ed25519.0),
            fatal: false,
        },
        SendError::Tor(reason) => PathFailure {
            reason,
            dead: None,
            fatal: true,
        },
        SendError::TooLarge(_) | SendError::Broken(_) | SendError::Invalid(_) => {
            PathFailure::new("the answer broke off")
        }
    })?;
    let (status, bytes) = (reply.status, reply.body);
    if status != 200 {
        // A relay's plain error names the relay that could not go on; the
        // hop after it is the one that is down.
        let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let reason = error["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned);
        let dead = error["details"]["relay"]
            .as_str()
            .and_then(|r| allium_common::encoding::hex_array::<32>(r).ok())
            .and_then(|relay| hops.iter().position(|h| h.ed25519 == relay))
            .and_then(|i| hops.get(i + 1))
            .map(|h| h.ed25519);
        return Err(PathFailure {
            reason,
            dead,
            fatal: false,
        });
    }
    onion::decrypt_response(&built.response_key, &bytes).map_err(|e| PathFailure::new(format!("bad answer: {e}")))
}

/// Whether `ip` belongs to a listed node (used in tests and diagnostics).
pub fn is_node_ip(list: &NodeList, ip: IpAddr) -> bool {
    list.nodes
        .iter()
        .any(|n| n.address.parse::<SocketAddr>().is_ok_and(|a| a.ip() == ip))
}

#[cfg(test)]
mod tests {
    use allium_common::Identity;
    use allium_common::encoding::Hex32;

    use super::*;

    fn list(addresses: &[&str]) -> NodeList {
        let seed = Identity::from_ed25519_seed(&[0xee; 32]);
        let nodes = addresses
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let id = Identity::from_ed25519_seed(&[i as u8 + 1; 32]);
                NodeEntry {
                    ed25519: Hex32(*id.ed25519_pk()),
                    x25519: Hex32(*id.x25519_pk()),
                    address: (*a).to_owned(),
                    swarm_id: 1,
                    version: "0.1.0".into(),
                }
            })
            .collect();
        NodeList::sign(1, nodes, &seed).unwrap()
    }

    #[test]
    fn paths_have_distinct_guards_and_subnets() {
        let l = list(&[
            "10.1.0.1:1",
            "10.2.0.1:1",
            "10.3.0.1:1",
            "10.4.0.1:1",
            "10.5.0.1:1",
            "10.6.0.1:1",
        ]);
        for _ in 0..50 {
            let p = Paths::build(&l).unwrap();
            assert_ne!(p.paths[0].relays[0].ed25519, p.paths[1].relays[0].ed25519);
            for path in p.paths() {
                let subnets: HashSet<String> = path.relays.iter().map(|r| subnet_key(&r.address)).collect();
                assert_eq!(subnets.len(), RELAYS);
            }
        }
    }

    #[test]
    fn one_subnet_cannot_fill_a_path() {
        let l = list(&["10.0.1.1:1", "10.0.2.2:1", "10.0.3.3:1", "10.0.4.4:1"]);
        assert!(matches!(Paths::build(&l), Err(Error::NoPath(_))), "one /16");
        // Loopback is no exception: one address, many ports is one network.
        let local = list(&["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"]);
        assert!(matches!(Paths::build(&local), Err(Error::NoPath(_))));
        let devnet = list(&["127.2.0.1:1", "127.3.0.1:1", "127.4.0.1:1", "127.5.0.1:1"]);
        assert!(Paths::build(&devnet).is_ok());
    }

    /// Nodes `i` of `addresses` for every `i` not in `gone`, with the same
    /// keys as in the full list.
    fn list_without(addresses: &[&str], gone: &[usize]) -> NodeList {
        let full = list(addresses);
        let nodes = full
            .nodes
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !gone.contains(i))
            .map(|(_, n)| n)
            .collect();
        NodeList::sign(2, nodes, &Identity::from_ed25519_seed(&[0xee; 32])).unwrap()
    }

    fn guards(p: &Paths) -> Vec<[u8; 32]> {
        p.paths().iter().map(|path| path.relays[0].ed25519.0).collect()
    }

    #[test]
    fn following_a_new_list_keeps_guards_that_are_still_listed() {
        let addrs: Vec<String> = (1..=10).map(|i| format!("10.{i}.0.1:1")).collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let full = list(&refs);
        for _ in 0..20 {
            let p = Paths::build(&full).unwrap();
            // Same list (e.g. a 421 refresh that changed nothing): identical.
            let same = Paths::follow(&full, &p.to_keys()).unwrap();
            assert_eq!(same.to_keys(), p.to_keys());
            // A non-guard relay of path 0 left (one that is not path 1's
            // guard either): both paths keep their guards.
            let index = |k: &[u8; 32]| full.nodes.iter().position(|n| &n.ed25519.0 == k).unwrap();
            let Some(gone) = p.paths[0].relays[1..]
                .iter()
                .find(|r| r.ed25519 != p.paths[1].relays[0].ed25519)
            else {
                continue;
            };
            let middle = index(&gone.ed25519.0);
            let smaller = list_without(&refs, &[middle]);
            let followed = Paths::follow(&smaller, &p.to_keys()).unwrap();
            assert_eq!(guards(&followed), guards(&p));
            assert!(
                followed.paths[0]
                    .relays
                    .iter()
                    .all(|r| smaller.find(&r.ed25519.0).is_some())
            );
            let subnets: HashSet<String> = followed.paths[0]
                .relays
                .iter()
                .map(|r| subnet_key(&r.address))
                .collect();
            assert_eq!(subnets.len(), RELAYS);
            // Path 1's guard left: only it changes guard.
            let guard1 = index(&p.paths[1].relays[0].ed25519.0);
            let without_guard = list_without(&refs, &[guard1]);
            let followed = Paths::follow(&without_guard, &p.to_keys()).unwrap();
            let g = guards(&followed);
            assert_eq!(g[0], guards(&p)[0]);
            assert_ne!(g[1], guards(&p)[1]);
            assert_ne!(g[0], g[1]);
        }
        // Keys that name nothing: fresh paths.
        let junk = vec![vec!["00".to_owned()], vec![]];
        assert_eq!(Paths::follow(&full, &junk).unwrap().paths().len(), PATHS);
    }

    #[test]
    fn a_one_off_path_starts_at_a_kept_guard() {
        let addrs: Vec<String> = (1..=8).map(|i| format!("10.{i}.0.1:1")).collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let l = list(&refs);
        for _ in 0..50 {
            let p = Paths::build(&l).unwrap();
            let kept = guards(&p);
            // A destination on both kept paths forces a one-off path.
            let shared = p.paths[0]
                .relays
                .iter()
                .find(|r| p.paths[1].relays.iter().any(|s| s.ed25519 == r.ed25519))
                .cloned();
            let destination = shared.unwrap_or_else(|| p.paths[0].relays[0].clone());
            let (index, path) = p.for_destination(&l, &destination).unwrap();
            assert!(path.relays.iter().all(|r| r.ed25519 != destination.ed25519));
            assert!(
                kept.contains(&path.relays[0].ed25519.0),
                "a new guard would see the client"
            );
            if index.is_none() {
                assert_ne!(path.relays[0].ed25519, destination.ed25519);
            }
        }
    }

    #[test]
    fn three_failures_rebuild_a_path_and_destination_is_avoided() {
        let addrs: Vec<String> = (1..=8).map(|i| format!("10.{i}.0.1:1")).collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let l = list(&refs);
        let mut p = Paths::build(&l).unwrap();
        assert!(!p.failed(0, &l));
        assert!(!p.failed(0, &l));
        assert!(p.failed(0, &l), "the third failure rebuilds");
        let dest = p.paths[0].relays[1].clone();
        let (_, path) = p.for_destination(&l, &dest).unwrap();
        assert!(path.relays.iter().all(|r| r.ed25519 != dest.ed25519));
    }
}
