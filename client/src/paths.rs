//! Onion paths and requests through them.
//!
//! The client keeps two paths of three relays (guard, middle, exit) with
//! different guards; a request picks one and appends its destination. No
//! path holds two nodes of one /16 (IPv4) or /32 (IPv6), so one operator's
//! network cannot see both ends.
//!
//! **Guards stay.** The guard is the only node that sees the client's
//! address, so a new guard is one more node that learns it, and a client
//! that picks new guards whenever something fails can be steered onto a
//! guard an attacker runs. So failures of the later hops (a relay's error,
//! a timeout of the whole path, an answer that does not decrypt) rebuild
//! the path's middle and exit around the same guard: at once when a relay
//! names a hop of the path it could not reach, else after
//! [`MAX_FAILURES`] in a row. A path gets a new guard only when the guard
//! itself fails: the client cannot connect to it (and the network is
//! evidently up: the guard's host refused the connection, or the other
//! guard answered in this session), or it left the node list; and then
//! only as far as the [`GuardBudget`] allows. With the budget spent,
//! requests use the other path's guard; with no usable guard at all they
//! fail with [`Error::GuardsDown`] rather than pick a fresh one.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use allium_common::consensus::Consensus;
use allium_common::node_list::NodeEntry;
use allium_common::onion::{self, Hop, LayerSecrets};
use allium_common::sodium::{self, random_index};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::guards::GuardBudget;
use crate::transport::{Peer, Post, SendError, Transport};

/// Relays per path (guard, middle, exit); the destination is a fourth hop.
pub const RELAYS: usize = 3;
/// Paths kept at once.
pub const PATHS: usize = 2;
/// Failures in a row (not blamed on a named hop) after which a path's
/// middle and exit are replaced.
pub const MAX_FAILURES: u32 = 3;

/// One path of relays.
#[derive(Debug, Clone)]
pub struct Path {
    /// Guard, middle, exit.
    pub relays: Vec<NodeEntry>,
    failures: u32,
}

impl Path {
    fn new(relays: Vec<NodeEntry>) -> Self {
        Self { relays, failures: 0 }
    }

    fn guard(&self) -> Option<&NodeEntry> {
        self.relays.first()
    }

    fn guard_key(&self) -> Option<[u8; 32]> {
        self.guard().map(|g| g.ed25519.0)
    }
}

/// One of the [`PATHS`] places for a path.
#[derive(Debug, Clone)]
enum Slot {
    /// A path in use.
    Ready(Path),
    /// The path's guard left the node list and no new guard was allowed
    /// (the budget is spent, or no node fits): the saved keys are kept, so
    /// the guard is used again if it comes back, and a new one is chosen
    /// once the budget allows.
    Waiting(Vec<String>),
}

impl Slot {
    fn ready(&self) -> Option<&Path> {
        match self {
            Self::Ready(p) => Some(p),
            Self::Waiting(_) => None,
        }
    }

    /// The guard's key, whether the slot is ready or waiting for it.
    fn guard_key(&self) -> Option<[u8; 32]> {
        match self {
            Self::Ready(p) => p.guard_key(),
            Self::Waiting(keys) => keys
                .first()
                .and_then(|k| allium_common::encoding::hex_array::<32>(k).ok()),
        }
    }
}

/// The client's paths, and what this session learnt about their guards.
#[derive(Debug, Default)]
pub struct Paths {
    slots: Vec<Slot>,
    /// Guards the client could not connect to in this session: not used
    /// again until the next run.
    down: HashSet<[u8; 32]>,
    /// Guards that answered in this session (so the network is up).
    answered: HashSet<[u8; 32]>,
}

/// Who a failed request points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blame {
    /// The client could not connect to the guard. `certain` when the
    /// guard's host refused the connection: it answered, so the network
    /// is up and nothing listens there.
    Guard {
        /// The host refused (not a timeout or a missing route).
        certain: bool,
    },
    /// A relay answered that it could not reach the next hop (502), or
    /// the exit that the destination did not answer in time (504): that
    /// hop (a middle, the exit, or the destination).
    Hop([u8; 32]),
    /// A relay before the exit answered that the next hop did not answer
    /// in time (504): that hop or one after it hangs. Every relay waits as
    /// long for the next, so the first to give up is the earliest (in
    /// practice the guard), not the one next to the hung node: the hops
    /// from the named one to the destination, none of them for sure.
    Beyond(Vec<[u8; 32]>),
    /// The path as a whole: it timed out, the answer broke off or did not
    /// decrypt, or a relay's error named no hop of the path. `answered`
    /// when the guard did answer.
    Path {
        /// The guard answered (the failure is further on).
        answered: bool,
    },
    /// Tor is not usable: no other path can help.
    Tor,
    /// The guard refused the request for this client's rate (429): the
    /// path is fine; the client should wait before the next request.
    SlowDown,
}

/// Why a request did not get an answer from its destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathFailure {
    /// What happened, for people.
    pub reason: String,
    /// Who it points at.
    pub blame: Blame,
}

impl PathFailure {
    fn new(reason: impl Into<String>, blame: Blame) -> Self {
        Self {
            reason: reason.into(),
            blame,
        }
    }

    /// No other path can help (Tor is not usable).
    pub fn fatal(&self) -> bool {
        self.blame == Blame::Tor
    }
}

/// `nodes` in random order.
fn shuffled<'a>(nodes: impl Iterator<Item = &'a NodeEntry>) -> Vec<&'a NodeEntry> {
    let mut nodes: Vec<&NodeEntry> = nodes.collect();
    allium_common::sodium::shuffle(&mut nodes);
    nodes
}

/// Picks `RELAYS` relays at random, none in `excluded` (keys) and no two
/// sharing a subnet key, with a guard not in `guards_in_use`; nodes in
/// `disfavoured` only where nothing else fits.
fn build_path(
    list: &Consensus,
    excluded: &HashSet<[u8; 32]>,
    guards_in_use: &HashSet<[u8; 32]>,
    disfavoured: &HashSet<[u8; 32]>,
) -> Option<Path> {
    // Only nodes the consensus flags as guards: known long enough to a
    // majority of the seeds, so a fresh Sybil cannot become anyone's guard.
    let mut guards = shuffled(
        list.nodes
            .iter()
            .filter(|n| n.guard && !excluded.contains(&n.ed25519.0) && !guards_in_use.contains(&n.ed25519.0)),
    );
    guards.sort_by_key(|n| disfavoured.contains(&n.ed25519.0));
    // Try every eligible guard: one in a crowded subnet may not complete.
    guards
        .into_iter()
        .find_map(|guard| path_from_guard(list, guard, excluded, disfavoured))
}

/// A path that starts at `guard`, completed with random relays in other
/// subnets, none in `excluded`, nodes in `disfavoured` only where nothing
/// else fits.
fn path_from_guard(
    list: &Consensus,
    guard: &NodeEntry,
    excluded: &HashSet<[u8; 32]>,
    disfavoured: &HashSet<[u8; 32]>,
) -> Option<Path> {
    let mut candidates = shuffled(
        list.nodes
            .iter()
            .filter(|n| n.ed25519 != guard.ed25519 && !excluded.contains(&n.ed25519.0)),
    );
    // A stable sort: still random within each group.
    candidates.sort_by_key(|n| disfavoured.contains(&n.ed25519.0));
    let mut relays = vec![guard.clone()];
    let mut subnets: HashSet<String> = [allium_common::address::subnet(&guard.address)].into();
    for node in candidates {
        if relays.len() == RELAYS {
            break;
        }
        if subnets.insert(allium_common::address::subnet(&node.address)) {
            relays.push(node.clone());
        }
    }
    (relays.len() == RELAYS).then(|| Path::new(relays))
}

/// Whether `relays` still make a valid path: the right length, no node
/// twice, no two in one subnet.
fn well_formed(relays: &[NodeEntry]) -> bool {
    let keys: HashSet<[u8; 32]> = relays.iter().map(|r| r.ed25519.0).collect();
    let subnets: HashSet<String> = relays
        .iter()
        .map(|r| allium_common::address::subnet(&r.address))
        .collect();
    relays.len() == RELAYS && keys.len() == RELAYS && subnets.len() == RELAYS
}

fn too_few(list: &Consensus) -> Error {
    Error::NoPath(format!(
        "{} nodes are listed; {PATHS} paths of {RELAYS} relays in distinct subnets with distinct guards need more",
        list.nodes.len()
    ))
}

impl Paths {
    /// New paths over a node list (a client's first: no guard is being
    /// replaced, so the budget is not involved).
    pub fn build(list: &Consensus) -> Result<Self> {
        Self::follow(list, &[], None)
    }

    /// The guards of every slot, ready or waiting, except slot `except`.
    fn guards_in_use(&self, except: Option<usize>) -> HashSet<[u8; 32]> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(j, _)| Some(*j) != except)
            .filter_map(|(_, s)| s.guard_key())
            .collect()
    }

    /// The paths named by `keys` (saved, or in use) over a newer `list`,
    /// changing as little as possible: a path whose relays are all still
    /// listed stays as it is; one that lost a middle or exit is rebuilt
    /// around its guard; one whose guard left the list gets a new guard if
    /// `budget` (with the local time) allows it, and waits otherwise (and
    /// always without a budget). A slot with no saved path at all (a
    /// client's first run) gets a new one. So a node-list refresh never
    /// shows this client's address to a new node while its guards are
    /// listed.
    pub fn follow(list: &Consensus, keys: &[Vec<String>], mut budget: Option<(&mut GuardBudget, u64)>) -> Result<Self> {
        let find = |k: &String| {
            allium_common::encoding::hex_array::<32>(k)
                .ok()
                .and_then(|k| list.find(&k).cloned())
        };
        let mut paths = Self::default();
        for i in 0..PATHS {
            let in_use = paths.guards_in_use(None);
            let saved = keys.get(i).filter(|k| !k.is_empty());
            let slot = match saved {
                // Nothing saved: a first path, not a replacement.
                None => Slot::Ready(
                    build_path(list, &HashSet::new(), &in_use, &HashSet::new()).ok_or_else(|| too_few(list))?,
                ),
                Some(saved) => {
                    let guard = saved.first().and_then(find).filter(|g| !in_use.contains(&g.ed25519.0));
                    match guard {
                        Some(guard) => {
                            let relays: Option<Vec<NodeEntry>> = saved.iter().map(find).collect();
                            match relays.filter(|r| well_formed(r)) {
                                Some(relays) => Slot::Ready(Path::new(relays)),
                                None => path_from_guard(list, &guard, &HashSet::new(), &HashSet::new())
                                    .map_or_else(|| Slot::Waiting(saved.clone()), Slot::Ready),
                            }
                        }
                        None => {
                            let mut slot = Slot::Waiting(saved.clone());
                            if let Some((b, now)) = budget.as_mut()
                                && b.allows(i, *now)
                                && let Some(p) = build_path(list, &HashSet::new(), &in_use, &HashSet::new())
                            {
                                b.record(i, *now);
                                tracing::info!(path = i, "a guard left the node list; the path got a new guard");
                                slot = Slot::Ready(p);
                            }
                            slot
                        }
                    }
                }
            };
            paths.slots.push(slot);
        }
        Ok(paths)
    }

    /// [`Paths::follow`] of these paths over a newer `list`, keeping what
    /// this session learnt about the guards.
    pub fn refollow(&mut self, list: &Consensus, budget: &mut GuardBudget, now_ms: u64) -> Result<()> {
        let followed = Self::follow(list, &self.to_keys(), Some((budget, now_ms)))?;
        self.slots = followed.slots;
        Ok(())
    }

    /// The slots whose path is ready and whose guard is not known to be
    /// down.
    fn live(&self) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| {
                self.slots[i]
                    .ready()
                    .and_then(Path::guard_key)
                    .is_some_and(|g| !self.down.contains(&g))
            })
            .collect()
    }

    /// Whether some path has a guard that is not known to be down.
    pub fn has_live_guard(&self) -> bool {
        !self.live().is_empty()
    }

    /// A path for a request to `destination`: a random one of the live
    /// kept paths that does not contain it (other than `avoid_slot`, the
    /// path that just failed, if there is another), or else a one-off path
    /// that avoids it and starts at one of the live kept guards, with
    /// middle and exit outside `avoid` where the network allows: a one-off
    /// path never shows the client's address to a new node.
    pub fn for_destination(
        &self,
        list: &Consensus,
        destination: &NodeEntry,
        avoid_slot: Option<usize>,
        avoid: &HashSet<[u8; 32]>,
    ) -> Result<(Option<usize>, Path)> {
        let live = self.live();
        if live.is_empty() {
            return Err(Error::GuardsDown("no guard of this client is usable".into()));
        }
        let usable: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&i| {
                self.slots[i]
                    .ready()
                    .is_some_and(|p| p.relays.iter().all(|r| r.ed25519 != destination.ed25519))
            })
            .collect();
        let preferred: Vec<usize> = usable.iter().copied().filter(|&i| Some(i) != avoid_slot).collect();
        let pool = if preferred.is_empty() { &usable } else { &preferred };
        if let Some(&i) = pool.get(random_index(pool.len()))
            && let Some(path) = self.slots[i].ready()
        {
            return Ok((Some(i), path.clone()));
        }
        let guards: Vec<&NodeEntry> = live
            .iter()
            .filter_map(|&i| self.slots[i].ready().and_then(Path::guard))
            .filter(|g| g.ed25519 != destination.ed25519)
            .collect();
        let excluded: HashSet<[u8; 32]> = [destination.ed25519.0].into();
        guards
            .get(random_index(guards.len()))
            .and_then(|guard| path_from_guard(list, guard, &excluded, avoid))
            .map(|p| (None, p))
            .ok_or_else(|| Error::NoPath("too few nodes to route around the destination".into()))
    }

    /// The guard `guard` could not be connected to. It is not used again
    /// in this session; its path gets a new guard if the network is
    /// evidently up (`certain`: the guard's host refused; or another guard
    /// answered in this session) and `budget` allows one at `now_ms` (the
    /// replacement is recorded in it). The new path avoids the nodes in
    /// `avoid` where the network allows. Returns whether a guard was
    /// replaced.
    pub fn guard_failed(
        &mut self,
        guard: &[u8; 32],
        certain: bool,
        list: &Consensus,
        budget: &mut GuardBudget,
        now_ms: u64,
        avoid: &HashSet<[u8; 32]>,
    ) -> bool {
        self.down.insert(*guard);
        let Some(i) = self
            .slots
            .iter()
            .position(|s| s.ready().and_then(Path::guard_key).as_ref() == Some(guard))
        else {
            return false;
        };
        let online = certain || self.answered.iter().any(|g| g != guard);
        if !online {
            tracing::debug!(
                path = i,
                "guard unreachable and no other answered; keeping it (the network may be down)"
            );
            return false;
        }
        if !budget.allows(i, now_ms) {
            tracing::info!(
                path = i,
                "guard unreachable; the guard-replacement budget is spent, so it is kept"
            );
            return false;
        }
        match build_path(list, &self.down, &self.guards_in_use(Some(i)), avoid) {
            Some(path) => {
                budget.record(i, now_ms);
                tracing::info!(path = i, "guard unreachable; the path got a new guard");
                self.slots[i] = Slot::Ready(path);
                true
            }
            None => false,
        }
    }

    /// A request through kept path `i` failed further on than its guard;
    /// `named` are hops known to be down (a relay could not reach them),
    /// if any. The guard stays: a path with a named middle or exit gets a
    /// new middle and exit at once, avoiding the named nodes; any other
    /// after [`MAX_FAILURES`] failures in a row. The new relays are chosen
    /// outside `avoid` and the old ones where the network allows. Returns
    /// whether the path changed.
    pub fn hop_failed(&mut self, i: usize, named: &[[u8; 32]], list: &Consensus, avoid: &HashSet<[u8; 32]>) -> bool {
        let Some(Slot::Ready(path)) = self.slots.get_mut(i) else {
            return false;
        };
        path.failures += 1;
        let named: Vec<[u8; 32]> = named
            .iter()
            .filter(|h| path.relays.iter().skip(1).any(|r| &r.ed25519.0 == *h))
            .copied()
            .collect();
        if named.is_empty() && path.failures < MAX_FAILURES {
            return false;
        }
        let Some(guard) = path.guard().cloned() else {
            return false;
        };
        let mut disfavoured = avoid.clone();
        disfavoured.extend(path.relays.iter().skip(1).map(|r| r.ed25519.0));
        let excluded: HashSet<[u8; 32]> = named.into_iter().collect();
        match path_from_guard(list, &guard, &excluded, &disfavoured) {
            Some(rebuilt) => {
                *path = rebuilt;
                true
            }
            None => {
                path.failures = 0;
                false
            }
        }
    }

    /// Records that guard `guard` answered (the network is up).
    pub fn answered(&mut self, guard: &[u8; 32]) {
        self.answered.insert(*guard);
    }

    /// Records a success of kept path `i`.
    pub fn succeeded(&mut self, i: usize) {
        if let Some(Slot::Ready(p)) = self.slots.get_mut(i) {
            p.failures = 0;
        }
    }

    /// The relays' Ed25519 keys, hex, path by path (what is saved so a
    /// client keeps its guards across runs instead of exposing new ones
    /// every time); a waiting path keeps the keys it had.
    pub fn to_keys(&self) -> Vec<Vec<String>> {
        self.slots
            .iter()
            .map(|s| match s {
                Slot::Ready(p) => p.relays.iter().map(|r| hex::encode(r.ed25519.0)).collect(),
                Slot::Waiting(keys) => keys.clone(),
            })
            .collect()
    }

    /// The paths in use, in slot order (for `allium nodes`).
    pub fn paths(&self) -> Vec<&Path> {
        self.slots.iter().filter_map(Slot::ready).collect()
    }

    /// How many paths wait for a guard (theirs left the node list and the
    /// budget allowed no new one).
    pub fn waiting(&self) -> usize {
        self.slots.iter().filter(|s| s.ready().is_none()).count()
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
    let built = onion::build_request(&hops, request, &secrets)
        .map_err(|e| PathFailure::new(format!("cannot build: {e}"), Blame::Path { answered: false }))?;
    let guard = path
        .relays
        .first()
        .ok_or_else(|| PathFailure::new("empty path", Blame::Path { answered: false }))?;
    let post = Post {
        address: &guard.address,
        pin: guard.ed25519.0,
        path: "/onion_req/v2",
        content_type: "application/octet-stream",
        body: built.body,
        timeout,
        max_reply: onion::MAX_ENCODED_RESPONSE,
    };
    let reply = transport.post(Peer::Guard, post).await.map_err(|e| match e {
        SendError::Timeout => PathFailure::new("the path timed out", Blame::Path { answered: false }),
        SendError::Refused => PathFailure::new("the guard refused the connection", Blame::Guard { certain: true }),
        SendError::Unreachable(_) => PathFailure::new("guard unreachable", Blame::Guard { certain: false }),
        SendError::Tor(reason) => PathFailure::new(reason, Blame::Tor),
        SendError::TooLarge(_) | SendError::Broken(_) | SendError::Invalid(_) => {
            PathFailure::new("the answer broke off", Blame::Path { answered: false })
        }
    })?;
    let (status, bytes) = (reply.status, reply.body);
    if status != 200 {
        // A relay's plain error names the relay that could not go on; the
        // hop after it is the one that is down. The first relay named can
        // be the guard, never the hop named: no relay can blame the guard.
        let error: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let reason = error["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), str::to_owned);
        let next = error["details"]["relay"]
            .as_str()
            .and_then(|r| allium_common::encoding::hex_array::<32>(r).ok())
            .and_then(|relay| hops.iter().position(|h| h.ed25519 == relay))
            .map(|i| i + 1)
            .filter(|&i| i < hops.len());
        let blame = match (status, next) {
            // Only the guard answers this client in plain HTTP with 429.
            (429, _) => Blame::SlowDown,
            (502, Some(i)) => hops
                .get(i)
                .map_or(Blame::Path { answered: true }, |h| Blame::Hop(h.ed25519)),
            // The exit's wait for the destination: only it can hang.
            (504, Some(i)) if i + 1 == hops.len() => hops
                .get(i)
                .map_or(Blame::Path { answered: true }, |h| Blame::Hop(h.ed25519)),
            (504, Some(i)) => Blame::Beyond(hops.iter().skip(i).map(|h| h.ed25519).collect()),
            _ => Blame::Path { answered: true },
        };
        return Err(PathFailure::new(reason, blame));
    }
    onion::decrypt_response(&built.response_key, &bytes)
        .map_err(|e| PathFailure::new(format!("bad answer: {e}"), Blame::Path { answered: true }))
}

/// Whether `ip` belongs to a listed node (used in tests and diagnostics).
pub fn is_node_ip(list: &Consensus, ip: IpAddr) -> bool {
    list.nodes
        .iter()
        .any(|n| n.address.parse::<SocketAddr>().is_ok_and(|a| a.ip() == ip))
}

#[cfg(test)]
mod tests {
    use allium_common::Identity;
    use allium_common::consensus::Schedule;
    use allium_common::encoding::Hex32;

    use super::*;
    use crate::guards::MAX_REPLACEMENTS;

    const NOW: u64 = 1_700_000_000_000;

    fn list(addresses: &[&str]) -> Consensus {
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
                    guard: true,
                }
            })
            .collect();
        Consensus::assemble(&Schedule::new(60_000), 1, nodes, &[&seed]).unwrap()
    }

    /// `n` nodes, each in its own /16.
    fn network(n: usize) -> (Vec<String>, Consensus) {
        let addrs: Vec<String> = (1..=n).map(|i| format!("10.{i}.0.1:1")).collect();
        let refs: Vec<&str> = addrs.iter().map(String::as_str).collect();
        let l = list(&refs);
        (addrs, l)
    }

    fn guards(p: &Paths) -> Vec<[u8; 32]> {
        p.paths().iter().map(|path| path.relays[0].ed25519.0).collect()
    }

    fn keys_of(path: &Path) -> Vec<[u8; 32]> {
        path.relays.iter().map(|r| r.ed25519.0).collect()
    }

    #[test]
    fn paths_have_distinct_guards_and_subnets() {
        let (_, l) = network(6);
        for _ in 0..50 {
            let p = Paths::build(&l).unwrap();
            assert_eq!(p.paths().len(), PATHS);
            let g = guards(&p);
            assert_ne!(g[0], g[1]);
            for path in p.paths() {
                assert!(well_formed(&path.relays));
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
    fn list_without(addresses: &[String], gone: &[usize]) -> Consensus {
        let refs: Vec<&str> = addresses.iter().map(String::as_str).collect();
        let full = list(&refs);
        let nodes = full
            .nodes
            .into_iter()
            .enumerate()
            .filter(|(i, _)| !gone.contains(i))
            .map(|(_, n)| n)
            .collect();
        Consensus::assemble(
            &Schedule::new(60_000),
            2,
            nodes,
            &[&Identity::from_ed25519_seed(&[0xee; 32])],
        )
        .unwrap()
    }

    fn index(l: &Consensus, k: &[u8; 32]) -> usize {
        l.nodes.iter().position(|n| &n.ed25519.0 == k).unwrap()
    }

    #[test]
    fn following_a_new_list_keeps_guards_that_are_still_listed() {
        let (addrs, full) = network(10);
        for _ in 0..20 {
            let p = Paths::build(&full).unwrap();
            // Same list (e.g. a 421 refresh that changed nothing): identical.
            let same = Paths::follow(&full, &p.to_keys(), None).unwrap();
            assert_eq!(same.to_keys(), p.to_keys());
            // A non-guard relay of path 0 left (one that is not path 1's
            // guard either): both paths keep their guards.
            let Some(gone) = p.paths()[0].relays[1..].iter().find(|r| r.ed25519.0 != guards(&p)[1]) else {
                continue;
            };
            let smaller = list_without(&addrs, &[index(&full, &gone.ed25519.0)]);
            let mut budget = GuardBudget::default();
            let followed = Paths::follow(&smaller, &p.to_keys(), Some((&mut budget, NOW))).unwrap();
            assert_eq!(guards(&followed), guards(&p));
            assert!(budget.replacements().is_empty(), "no guard was replaced");
            let path0 = followed.paths()[0];
            assert!(path0.relays.iter().all(|r| smaller.find(&r.ed25519.0).is_some()));
            assert!(well_formed(&path0.relays));
            // Path 1's guard left: only it changes guard, and it is counted.
            let without_guard = list_without(&addrs, &[index(&full, &guards(&p)[1])]);
            let followed = Paths::follow(&without_guard, &p.to_keys(), Some((&mut budget, NOW))).unwrap();
            let g = guards(&followed);
            assert_eq!(g[0], guards(&p)[0]);
            assert_ne!(g[1], guards(&p)[1]);
            assert_ne!(g[0], g[1]);
            assert_eq!(budget.replacements(), vec![(1, NOW)]);
        }
        // Nothing saved: fresh paths, not counted as replacements.
        let mut budget = GuardBudget::default();
        let fresh = Paths::follow(&full, &[vec![], vec![]], Some((&mut budget, NOW))).unwrap();
        assert_eq!(fresh.paths().len(), PATHS);
        assert!(budget.replacements().is_empty());
    }

    #[test]
    fn a_guard_that_left_the_list_waits_when_the_budget_is_spent_and_comes_back() {
        let (addrs, full) = network(10);
        let p = Paths::build(&full).unwrap();
        let (g0, g1) = (guards(&p)[0], guards(&p)[1]);
        let without = list_without(&addrs, &[index(&full, &g0)]);
        let mut spent = GuardBudget::default();
        spent.record(0, NOW - 2);
        spent.record(0, NOW - 1);
        let followed = Paths::follow(&without, &p.to_keys(), Some((&mut spent, NOW))).unwrap();
        assert_eq!(guards(&followed), vec![g1], "no new guard for path 0");
        assert_eq!(followed.waiting(), 1);
        assert_eq!(followed.to_keys()[0], p.to_keys()[0], "its keys are kept");
        // Without a budget at all (a read-only follow), the same.
        let read_only = Paths::follow(&without, &p.to_keys(), None).unwrap();
        assert_eq!(read_only.waiting(), 1);
        // Requests go through the remaining guard.
        let dest = without.nodes.iter().find(|n| n.ed25519.0 != g1).unwrap();
        let (_, path) = followed.for_destination(&without, dest, None, &HashSet::new()).unwrap();
        assert_eq!(path.relays[0].ed25519.0, g1);
        // The guard comes back: the waiting path uses it again.
        let back = Paths::follow(&full, &followed.to_keys(), Some((&mut spent, NOW))).unwrap();
        assert_eq!(guards(&back), vec![g0, g1]);
        // A day later the budget allows a new guard.
        let later = NOW + crate::guards::WINDOW_MS;
        let replaced = Paths::follow(&without, &followed.to_keys(), Some((&mut spent, later))).unwrap();
        assert_eq!(replaced.waiting(), 0);
        assert!(!guards(&replaced).contains(&g0) && guards(&replaced).contains(&g1));
    }

    #[test]
    fn a_one_off_path_starts_at_a_kept_guard() {
        let (_, l) = network(8);
        for _ in 0..50 {
            let p = Paths::build(&l).unwrap();
            let kept = guards(&p);
            // A destination on both kept paths forces a one-off path.
            let shared = p.paths()[0]
                .relays
                .iter()
                .find(|r| p.paths()[1].relays.iter().any(|s| s.ed25519 == r.ed25519))
                .cloned();
            let destination = shared.unwrap_or_else(|| p.paths()[0].relays[0].clone());
            let (index, path) = p.for_destination(&l, &destination, None, &HashSet::new()).unwrap();
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
    fn failures_after_the_guard_rebuild_the_path_around_it() {
        let (_, l) = network(10);
        for _ in 0..20 {
            let mut p = Paths::build(&l).unwrap();
            let before = guards(&p);
            let old = keys_of(p.paths()[0]);
            let none = HashSet::new();
            // Unexplained failures: the third rebuilds middle and exit.
            assert!(!p.hop_failed(0, &[], &l, &none));
            assert!(!p.hop_failed(0, &[], &l, &none));
            assert!(p.hop_failed(0, &[], &l, &none), "the third failure rebuilds");
            assert_eq!(guards(&p), before, "the guards stay");
            let new = keys_of(p.paths()[0]);
            assert!(new[1..].iter().all(|k| !old[1..].contains(k)), "new middle and exit");
            // A relay named the exit: rebuilt at once, around the guard,
            // without the exit.
            let exit = p.paths()[0].relays[2].ed25519.0;
            assert!(p.hop_failed(0, &[exit], &l, &[exit].into()));
            assert_eq!(guards(&p), before);
            assert!(!keys_of(p.paths()[0]).contains(&exit));
            assert!(well_formed(&p.paths()[0].relays));
            // A named destination (not on the path) is only counted.
            let outside = l
                .nodes
                .iter()
                .find(|n| !keys_of(p.paths()[0]).contains(&n.ed25519.0))
                .unwrap();
            assert!(!p.hop_failed(0, &[outside.ed25519.0], &l, &none));
            // A success resets the count.
            p.succeeded(0);
            assert!(!p.hop_failed(0, &[], &l, &none));
            assert!(!p.hop_failed(0, &[], &l, &none));
            assert_eq!(guards(&p), before);
        }
    }

    /// Whatever a middle, exit or destination reports, and however often
    /// the path fails after its guard, no guard changes: a hostile hop
    /// cannot make the client show its address to a new node. (Before,
    /// three failures or one relay report gave the path a random new
    /// guard, and a report naming a node rebuilt every path through it,
    /// including one it was the guard of.)
    #[test]
    fn no_report_from_a_later_hop_changes_a_guard() {
        let (_, l) = network(12);
        for round in 0..20 {
            let mut p = Paths::build(&l).unwrap();
            let before = guards(&p);
            let mut suspects = HashSet::new();
            for step in 0..60 {
                let slot = (round + step) % PATHS;
                // Name every kind of node in turn: the other path's guard,
                // this path's guard, its middle and exit, and strangers.
                let named = match step % 5 {
                    0 => Some(before[(slot + 1) % PATHS]),
                    1 => Some(before[slot]),
                    2 => p.paths()[slot].relays.get(1).map(|r| r.ed25519.0),
                    3 => Some(l.nodes[step % l.nodes.len()].ed25519.0),
                    _ => None,
                };
                suspects.extend(named);
                let named: Vec<[u8; 32]> = match step % 7 {
                    // A timeout report names a run of hops.
                    6 => p.paths()[slot]
                        .relays
                        .iter()
                        .map(|r| r.ed25519.0)
                        .chain(named)
                        .collect(),
                    _ => named.into_iter().collect(),
                };
                p.hop_failed(slot, &named, &l, &suspects);
                assert_eq!(guards(&p), before, "round {round} step {step}");
            }
        }
    }

    #[test]
    fn a_guard_that_refuses_is_replaced_at_most_twice_a_day_per_path() {
        let (_, l) = network(12);
        let mut p = Paths::build(&l).unwrap();
        let mut budget = GuardBudget::default();
        let none = HashSet::new();
        let g1 = guards(&p)[1];
        let mut seen = vec![guards(&p)[0]];
        for n in 0..MAX_REPLACEMENTS {
            let g0 = guards(&p)[0];
            assert!(p.guard_failed(&g0, true, &l, &mut budget, NOW + n as u64, &none));
            let new = guards(&p)[0];
            assert!(!seen.contains(&new), "a node that failed is not chosen again");
            assert_eq!(guards(&p)[1], g1, "the other path keeps its guard");
            seen.push(new);
        }
        // The budget is spent: the guard stays (down for this session) and
        // requests go through the other guard.
        let g0 = guards(&p)[0];
        assert!(!p.guard_failed(&g0, true, &l, &mut budget, NOW + 10, &none));
        assert_eq!(guards(&p), vec![g0, g1]);
        assert!(p.has_live_guard());
        for dest in &l.nodes {
            if dest.ed25519.0 == g1 {
                continue;
            }
            let (_, path) = p.for_destination(&l, dest, None, &none).unwrap();
            assert_eq!(path.relays[0].ed25519.0, g1, "only the live guard is used");
        }
        // Path 1's guard goes down too, with its budget spent: no new guard,
        // and a clear error instead of a fresh one.
        budget.record(1, NOW);
        budget.record(1, NOW + 1);
        assert!(!p.guard_failed(&g1, true, &l, &mut budget, NOW + 11, &none));
        assert_eq!(guards(&p), vec![g0, g1]);
        assert!(!p.has_live_guard());
        let e = p.for_destination(&l, &l.nodes[0], None, &none).unwrap_err();
        assert!(matches!(e, Error::GuardsDown(_)), "{e}");
        // A day later path 0 may get a new guard again.
        let later = NOW + crate::guards::WINDOW_MS + 1;
        assert!(p.guard_failed(&g0, true, &l, &mut budget, later, &none));
        assert!(p.has_live_guard());
    }

    #[test]
    fn an_unreachable_guard_is_replaced_only_when_the_network_is_up() {
        let (_, l) = network(10);
        let mut p = Paths::build(&l).unwrap();
        let (g0, g1) = (guards(&p)[0], guards(&p)[1]);
        let mut budget = GuardBudget::default();
        let none = HashSet::new();
        // A timeout or no route, and nothing answered: maybe we are
        // offline. The guard is not used again in this run, but kept.
        assert!(!p.guard_failed(&g0, false, &l, &mut budget, NOW, &none));
        assert_eq!(guards(&p), vec![g0, g1]);
        assert!(budget.replacements().is_empty());
        // The guard answering itself is no evidence about it.
        p.answered(&g0);
        assert!(!p.guard_failed(&g0, false, &l, &mut budget, NOW, &none));
        // The other guard answered: the network is up, so g0 is at fault.
        p.answered(&g1);
        assert!(p.guard_failed(&g0, false, &l, &mut budget, NOW, &none));
        assert_ne!(guards(&p)[0], g0);
        assert_eq!(budget.replacements(), vec![(0, NOW)]);
    }

    /// A fake guard that answers every request with `status` and `body`.
    async fn fake_guard(status: u16, body: String) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            while let Ok((mut stream, _)) = listener.accept().await {
                let mut buf = vec![0u8; 65536];
                let _ = stream.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
            }
        });
        address
    }

    fn path_at(l: &Consensus, guard_address: &str) -> (Path, NodeEntry) {
        let mut relays: Vec<NodeEntry> = l.nodes[..RELAYS].to_vec();
        relays[0].address = guard_address.to_owned();
        (Path::new(relays), l.nodes[RELAYS].clone())
    }

    async fn blame_of(transport: &Transport, path: &Path, destination: &NodeEntry) -> Blame {
        let body = serde_json::json!({"method": "info"});
        request(transport, path, destination, &body, Duration::from_secs(30))
            .await
            .unwrap_err()
            .blame
    }

    #[tokio::test]
    async fn failures_are_blamed_on_the_right_hop() {
        let (_, l) = network(5);
        // The fake guards speak plain HTTP: blame, not TLS, is tested here.
        let transport = Transport::direct_with(true).unwrap();
        let key = |i: usize| hex::encode(l.nodes[i].ed25519.0);
        // Nothing listens: the guard itself failed, for certain.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        let (path, dest) = path_at(&l, &closed);
        assert_eq!(blame_of(&transport, &path, &dest).await, Blame::Guard { certain: true });
        let k = |i: usize| l.nodes[i].ed25519.0;
        // A relay reports that it could not reach the next hop (502): that
        // hop; that the next hop did not answer in time (504): that hop or
        // any after it.
        let cases = [
            (502, key(0), Blame::Hop(k(1))),
            (502, key(1), Blame::Hop(k(2))),
            (502, key(2), Blame::Hop(dest.ed25519.0)),
            (504, key(0), Blame::Beyond(vec![k(1), k(2), k(3)])),
            (504, key(1), Blame::Beyond(vec![k(2), k(3)])),
            (504, key(2), Blame::Hop(k(3))),
            // The destination names itself (nobody after it), a stranger
            // is named, or another status: the path as a whole. Never the
            // guard.
            (502, key(3), Blame::Path { answered: true }),
            (504, key(4), Blame::Path { answered: true }),
            (502, "zz".to_owned(), Blame::Path { answered: true }),
            (400, key(0), Blame::Path { answered: true }),
        ];
        for (status, relay, blame) in cases {
            let body = serde_json::json!({"error": "bad_gateway", "message": "m", "details": {"relay": relay}});
            let guard = fake_guard(status, body.to_string()).await;
            let (path, dest) = path_at(&l, &guard);
            assert_eq!(blame_of(&transport, &path, &dest).await, blame, "{status} {relay}");
        }
        // An answer that does not decrypt: the path, past the guard.
        let guard = fake_guard(200, "bm90IGEgYm94".to_owned()).await;
        let (path, dest) = path_at(&l, &guard);
        assert_eq!(blame_of(&transport, &path, &dest).await, Blame::Path { answered: true });
    }

    #[test]
    fn guards_are_only_nodes_the_consensus_flags() {
        let (_, full) = network(12);
        let mut l = full.clone();
        // Only four nodes are guards; the rest are new.
        for (i, n) in l.nodes.iter_mut().enumerate() {
            n.guard = i % 3 == 0;
        }
        for _ in 0..50 {
            let paths = Paths::build(&l).unwrap();
            for p in paths.paths() {
                assert!(p.relays[0].guard, "an unflagged guard: {}", p.relays[0].address);
            }
        }
        // No flagged node at all: no path, and the error says so.
        l.nodes.iter_mut().for_each(|n| n.guard = false);
        assert!(Paths::build(&l).is_err());
    }
}
