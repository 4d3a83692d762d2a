//! The node's view of the network: the newest verified node list, which
//! swarm this node is in, and who its swarm peers are.
//!
//! A consensus is installed only if more than half of the trusted seeds
//! signed it and its period is newer than the one held, so a replayed old
//! consensus is ignored; a second, different consensus for the period held
//! is refused and reported (only seeds that sign twice can make one).

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use allium_common::consensus::{Consensus, ConsensusDiff, ConsensusError, UnverifiedConsensus};
use allium_common::encoding::Hex32;
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{GetSwarmResult, SwarmNode};
use allium_common::swarm::{SwarmId, SwarmKey, SwarmRing};

use crate::state::now_ms;

/// One verified node list with the lookups derived from it.
#[derive(Debug)]
pub struct Snapshot {
    /// The consensus as the seeds signed it.
    pub list: Consensus,
    /// Its swarm ids.
    pub ring: SwarmRing,
    /// This node's swarm, if it is listed.
    pub my_swarm: Option<SwarmId>,
    /// The IP addresses of listed nodes (requests from them are relays and
    /// peers, not clients, and are exempt from per-IP rate limits).
    pub node_ips: HashSet<IpAddr>,
}

impl Snapshot {
    /// The snapshot of `list` as seen by node `me`.
    pub(crate) fn new(list: Consensus, me: &[u8; 32]) -> Self {
        let ring = list.swarm_ring();
        let my_swarm = list.find(me).map(|n| n.swarm_id);
        let node_ips = list
            .nodes
            .iter()
            .filter_map(|n| n.address.parse::<SocketAddr>().ok())
            .map(|a| a.ip())
            .collect();
        Self {
            list,
            ring,
            my_swarm,
            node_ips,
        }
    }

    /// The swarm that holds `account`'s mailbox.
    pub fn swarm_of(&self, account: &impl SwarmKey) -> Option<SwarmId> {
        self.ring.swarm_of(account)
    }

    /// Whether this node's swarm holds `account`'s mailbox.
    pub fn is_mine(&self, account: &impl SwarmKey) -> bool {
        self.my_swarm.is_some() && self.swarm_of(account) == self.my_swarm
    }

    /// Members of a swarm.
    pub fn members(&self, swarm: SwarmId) -> Vec<&NodeEntry> {
        self.list.swarm_members(swarm).collect()
    }

    /// Whether `node` is a member of the swarm that holds `account`.
    pub fn holds(&self, node: &[u8; 32], account: &impl SwarmKey) -> bool {
        self.swarm_of(account)
            .is_some_and(|swarm| self.list.find(node).is_some_and(|n| n.swarm_id == swarm))
    }

    /// The `get_swarm` answer for an account (also the body of a 421).
    pub fn swarm_result(&self, account: &impl SwarmKey) -> Option<GetSwarmResult> {
        let swarm = self.swarm_of(account)?;
        let snodes = self
            .list
            .swarm_members(swarm)
            .map(|n| SwarmNode {
                ed25519: n.ed25519,
                x25519: n.x25519,
                address: n.address.clone(),
            })
            .collect();
        Some(GetSwarmResult {
            swarm: format!("{swarm:016x}"),
            snodes,
        })
    }
}

/// What changed when a snapshot was installed.
#[derive(Debug, Clone)]
pub struct Change {
    /// The snapshot replaced (None on the first one).
    pub old: Option<Arc<Snapshot>>,
    /// The snapshot installed.
    pub new: Arc<Snapshot>,
    /// Period before (None on the first snapshot).
    pub old_period: Option<u64>,
    /// Period now.
    pub new_period: u64,
    /// This node's swarm before and after.
    pub old_swarm: Option<SwarmId>,
    /// This node's swarm now.
    pub new_swarm: Option<SwarmId>,
    /// Nodes (Ed25519) whose swarm membership is new: they joined the
    /// network or moved to another swarm. Messages must be handed to them.
    pub newcomers: BTreeSet<Hex32>,
    /// Whether any node or swarm differs from the consensus replaced (a
    /// new period with the same network changes nothing to hand over).
    pub network_changed: bool,
}

/// Why a snapshot was not installed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// Malformed, not signed by a majority of the trusted seeds, or out
    /// of its time.
    #[error(transparent)]
    Invalid(#[from] ConsensusError),
    /// Not newer than the consensus held.
    #[error("period {got} is not newer than {held}")]
    Stale {
        /// The offered period.
        got: u64,
        /// The period held.
        held: u64,
    },
    /// A different consensus for the period held: seeds signed two.
    #[error("a second, different consensus for period {period} (digest {digest}); keeping the first")]
    Conflict {
        /// The period.
        period: u64,
        /// The digest of the refused one, hex.
        digest: String,
    },
}

/// Most replaced snapshots kept.
const MAX_PREVIOUS: usize = 8;
/// Most recent documents kept to answer diffs from (one per period).
const MAX_RECENT_DOCUMENTS: usize = 4;

/// The shared, swappable current snapshot, and the ones it replaced
/// recently (a node that held an account's messages under an earlier list
/// may still hand them over).
#[derive(Debug)]
pub struct Directory {
    me: [u8; 32],
    trusted_seeds: Vec<[u8; 32]>,
    current: RwLock<Option<Arc<Snapshot>>>,
    /// Replaced snapshots, newest first, with when they were replaced
    /// (monotonic, and Unix ms).
    previous: Mutex<VecDeque<(Arc<Snapshot>, Instant, u64)>>,
    /// How long a replaced snapshot still counts for who held what.
    previous_for: Duration,
    /// The documents installed last, newest first (diffs are made from
    /// them to the current one).
    recent: Mutex<VecDeque<Arc<Snapshot>>>,
}

impl Directory {
    /// A directory for the node `me` that trusts `trusted_seeds` and
    /// remembers replaced snapshots for `previous_for` (long enough for a
    /// hand-over of a large store to finish).
    pub fn new(me: [u8; 32], trusted_seeds: Vec<[u8; 32]>, previous_for: Duration) -> Self {
        Self {
            me,
            trusted_seeds,
            current: RwLock::new(None),
            previous: Mutex::new(VecDeque::new()),
            previous_for,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// The current snapshot (until `u64::MAX`) and those replaced within
    /// `previous_for` (until when they were replaced, Unix ms).
    fn recent(&self) -> Vec<(Arc<Snapshot>, u64)> {
        let mut all: Vec<(Arc<Snapshot>, u64)> = self.current().into_iter().map(|s| (s, u64::MAX)).collect();
        let mut previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner);
        previous.retain(|(_, replaced, _)| replaced.elapsed() < self.previous_for);
        all.extend(previous.iter().map(|(s, _, until)| (Arc::clone(s), *until)));
        all
    }

    /// Whether `node` is listed now or was in a recently replaced list.
    pub fn recently_listed(&self, node: &[u8; 32]) -> bool {
        self.recent().iter().any(|(s, _)| s.list.find(node).is_some())
    }

    /// Until when (Unix ms) `node` held `account`'s messages by right:
    /// `u64::MAX` if it is a member of the account's swarm now, the time it
    /// stopped being one under a recently replaced list (it may still hand
    /// over what it held then), `None` if neither.
    pub fn held_until(&self, node: &[u8; 32], account: &impl SwarmKey) -> Option<u64> {
        self.recent()
            .into_iter()
            .filter(|(s, _)| s.holds(node, account))
            .map(|(_, until)| until)
            .max()
    }

    /// Whether `node` holds `account`'s messages by right: it is a member
    /// of the account's swarm now, or was under a recently replaced list
    /// (and so may hand them over).
    pub fn holds_by_right(&self, node: &[u8; 32], account: &impl SwarmKey) -> bool {
        self.held_until(node, account).is_some()
    }

    /// The difference from the document of `period` (if still held) to
    /// the current one.
    pub fn diff_since(&self, period: u64) -> Option<ConsensusDiff> {
        let current = self.current()?;
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let base = recent.iter().find(|s| s.list.period == period)?;
        Some(current.list.diff_from(&base.list))
    }

    /// The snapshot in force, if any.
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Verifies (at `now`, Unix ms) and installs a consensus if it is
    /// newer than the one held.
    pub fn install(&self, offered: UnverifiedConsensus, now: u64) -> Result<Change, InstallError> {
        if let Some(held) = self.current() {
            let held = &held.list;
            if offered.period() == held.period && offered.digest() != held.digest() {
                // Check the signatures before crying wolf: anyone can send junk.
                let list = offered.verify(&self.trusted_seeds, now)?;
                return Err(InstallError::Conflict {
                    period: list.period,
                    digest: hex::encode(list.digest()),
                });
            }
            if offered.period() <= held.period {
                return Err(InstallError::Stale {
                    got: offered.period(),
                    held: held.period,
                });
            }
        }
        let held = self.current();
        let list = offered.verify_after(&self.trusted_seeds, now, held.as_ref().map(|h| &h.list))?;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = current.as_ref()
            && list.period <= held.list.period
        {
            return Err(InstallError::Stale {
                got: list.period,
                held: held.list.period,
            });
        }
        let network_changed = current.as_ref().is_none_or(|held| !held.list.same_network(&list));
        let next = Arc::new(Snapshot::new(list, &self.me));
        let change = Change {
            old: current.clone(),
            new: Arc::clone(&next),
            old_period: current.as_ref().map(|s| s.list.period),
            new_period: next.list.period,
            old_swarm: current.as_ref().and_then(|s| s.my_swarm),
            new_swarm: next.my_swarm,
            newcomers: newcomers(current.as_deref(), &next),
            network_changed,
        };
        {
            let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
            recent.push_front(Arc::clone(&next));
            recent.truncate(MAX_RECENT_DOCUMENTS);
        }
        // A new period of the same network replaces the old one outright:
        // what counts as "recently replaced" is a change of membership,
        // however many periods ago it was.
        if let Some(replaced) = current.replace(next)
            && network_changed
        {
            let mut previous = self.previous.lock().unwrap_or_else(PoisonError::into_inner);
            previous.push_front((replaced, Instant::now(), now_ms()));
            previous.truncate(MAX_PREVIOUS);
        }
        Ok(change)
    }
}

/// Nodes whose (node, swarm) pair is not in the previous snapshot.
fn newcomers(old: Option<&Snapshot>, new: &Snapshot) -> BTreeSet<Hex32> {
    new.list
        .nodes
        .iter()
        .filter(|n| {
            old.and_then(|o| o.list.find(&n.ed25519.0))
                .is_none_or(|prev| prev.swarm_id != n.swarm_id)
        })
        .map(|n| n.ed25519)
        .collect()
}

#[cfg(test)]
mod tests {
    use allium_common::{AccountId, Identity};

    use allium_common::consensus::Schedule;

    use super::*;

    fn entry(seed: u8, swarm_id: u64) -> NodeEntry {
        let id = Identity::from_ed25519_seed(&[seed; 32]);
        NodeEntry {
            ed25519: Hex32(*id.ed25519_pk()),
            x25519: Hex32(*id.x25519_pk()),
            address: format!("127.0.0.1:{}", 30000 + u16::from(seed)),
            swarm_id,
            version: "0.1.0".into(),
            guard: false,
        }
    }

    fn seed() -> Identity {
        Identity::from_ed25519_seed(&[0xee; 32])
    }

    const PERIOD_MS: u64 = 60_000;

    /// A consensus for `period` signed by `by`, off the wire.
    fn signed(period: u64, nodes: Vec<NodeEntry>, by: &Identity) -> UnverifiedConsensus {
        let c = Consensus::assemble(&Schedule::new(PERIOD_MS), period, nodes, &[by]).unwrap();
        Consensus::decode(&c.encode()).unwrap()
    }

    fn list(period: u64, nodes: Vec<NodeEntry>) -> UnverifiedConsensus {
        signed(period, nodes, &seed())
    }

    /// A period in 2023, and a time within the next one.
    const P: u64 = 28_333_333;
    const NOW: u64 = (P + 2) * PERIOD_MS;

    #[test]
    fn installs_newer_trusted_lists_only() {
        let me = entry(1, 100).ed25519.0;
        let dir = Directory::new(me, vec![*seed().ed25519_pk()], Duration::from_secs(60));
        let first = list(P + 1, vec![entry(1, 100), entry(2, 100)]);
        let change = dir.install(first.clone(), NOW).unwrap();
        assert_eq!(change.new_swarm, Some(100));
        assert_eq!(change.newcomers.len(), 2);
        assert!(matches!(
            dir.install(first, NOW),
            Err(InstallError::Stale { got, held }) if got == P + 1 && held == P + 1
        ));
        let rogue = Identity::from_ed25519_seed(&[0xdd; 32]);
        let forged = signed(P + 9, vec![entry(1, 5)], &rogue);
        assert!(matches!(dir.install(forged, NOW), Err(InstallError::Invalid(_))));
        // A second consensus for the period held, signed by the trusted
        // seed: refused and reported, the first is kept.
        let second = list(P + 1, vec![entry(1, 100)]);
        assert!(matches!(dir.install(second, NOW), Err(InstallError::Conflict { period, .. }) if period == P + 1));
        assert_eq!(dir.current().unwrap().list.period, P + 1);
        assert_eq!(dir.current().unwrap().list.nodes.len(), 2);
    }

    #[test]
    fn members_of_an_accounts_swarm_now_or_just_before_hold_it_by_right() {
        let me = entry(1, 100).ed25519.0;
        let dir = Directory::new(me, vec![*seed().ed25519_pk()], Duration::from_secs(60));
        let account = AccountId::from_x25519([0; 32]);
        // One swarm: everyone holds every account.
        dir.install(list(P + 1, vec![entry(1, 100), entry(2, 100)]), NOW)
            .unwrap();
        assert!(dir.holds_by_right(&entry(2, 0).ed25519.0, &account));
        assert!(!dir.holds_by_right(&entry(3, 0).ed25519.0, &account), "not listed");
        // Node 2 moves to another swarm that does not hold the account
        // (position 0 is nearer to swarm 100): it still may hand over.
        dir.install(
            list(
                P + 2,
                vec![entry(1, 100), entry(2, u64::MAX / 2), entry(3, u64::MAX / 2)],
            ),
            NOW,
        )
        .unwrap();
        // Many periods of the same network later, node 2 still may hand
        // over: only a change of membership counts as a replacement.
        for p in 3..(3 + 2 * MAX_PREVIOUS as u64) {
            let change = dir
                .install(
                    list(
                        P + p,
                        vec![entry(1, 100), entry(2, u64::MAX / 2), entry(3, u64::MAX / 2)],
                    ),
                    NOW + p * PERIOD_MS,
                )
                .unwrap();
            assert!(!change.network_changed);
        }
        assert!(dir.holds_by_right(&entry(2, 0).ed25519.0, &account), "previous member");
        let until = dir.held_until(&entry(2, 0).ed25519.0, &account).unwrap();
        assert!(
            until < u64::MAX && until > 1_700_000_000_000,
            "until the list changed: {until}"
        );
        assert_eq!(
            dir.held_until(&entry(1, 0).ed25519.0, &account),
            Some(u64::MAX),
            "a member now"
        );
        assert!(!dir.holds_by_right(&entry(3, 0).ed25519.0, &account), "never a member");
        assert!(dir.recently_listed(&entry(2, 0).ed25519.0));
    }

    #[test]
    fn newcomers_are_joiners_and_movers() {
        let me = entry(1, 100).ed25519.0;
        let dir = Directory::new(me, vec![*seed().ed25519_pk()], Duration::from_secs(60));
        dir.install(list(P + 1, vec![entry(1, 100), entry(2, 100), entry(3, 200)]), NOW)
            .unwrap();
        let change = dir
            .install(
                list(P + 2, vec![entry(1, 100), entry(2, 200), entry(3, 200), entry(4, 100)]),
                NOW,
            )
            .unwrap();
        let expected: BTreeSet<Hex32> = [entry(2, 0).ed25519, entry(4, 0).ed25519].into();
        assert_eq!(change.newcomers, expected);
        assert_eq!((change.old_swarm, change.new_swarm), (Some(100), Some(100)));
    }
}
