//! Which node serves in which swarm: the seed's deterministic assignment.
//!
//! The seed calls [`assign`] every time its set of live, verified nodes
//! changes, and publishes the result as the `swarm_id` of every entry of the
//! signed node list. The function is pure (no clock, no randomness, no I/O),
//! so any seed or client that knows the previous snapshot and the live set
//! can recompute and check it.
//!
//! It follows the spirit of Oxen's service-node swarm logic: new nodes fill
//! the smallest swarms, spare nodes form a new swarm placed in the middle of
//! the largest gap of the ring, a swarm that falls below the minimum is
//! topped up from the richest swarms ("Robin Hood") and otherwise dissolved
//! into the smallest ones. Oxen draws its choices from a block-hash-seeded
//! RNG and bounds sizes only from below; here every choice is a fixed order
//! and sizes are bounded on both sides.
//!
//! # Algorithm
//!
//! Bounds `min ≤ target ≤ max` come from [`AssignParams::normalized`].
//! *Smallest swarm* means fewest members, ties to the lowest swarm id;
//! *largest swarm* means most members, ties to the lowest swarm id. When a
//! node is taken out of a swarm it is the member with the lowest Ed25519
//! key (keys compare as big-endian byte strings). Nodes are always
//! processed in ascending key order.
//!
//! 1. **Carry over.** Every live node keeps its previous swarm id, unless it
//!    has none or had [`INVALID_SWARM_ID`]: those nodes form the *pool*.
//!    Nodes that are not live are dropped, and so is a swarm with no live
//!    member.
//! 2. **Tiny network.** No live node: the result is empty. Fewer than `min`
//!    live nodes: all of them form one swarm, the carried-over swarm with the
//!    most live members, or [`FIRST_SWARM_ID`] (0) if there is none. Stop.
//! 3. **Fill.** Each pool node joins the smallest swarm if that swarm has
//!    fewer than `target` members, and otherwise stays in the pool. Starving
//!    swarms (fewer than `min`) are the smallest, so they are fed first.
//! 4. **Repair**, in rounds while a starving swarm exists:
//!    1. *Top up* each starving swarm, the largest first (ties: lowest id):
//!       with `deficit = min − size`, if the members above `target`, summed
//!       over all swarms, are at least `deficit`, move `deficit` nodes in,
//!       one at a time from the largest swarm with more than `target`.
//!    2. Take the smallest starving swarm that remains. If the other swarms
//!       can *absorb* its survivors, i.e. `Σ max(0, target − size)` over
//!       them is at least its size, or if the members above `min` summed
//!       over all swarms are fewer than its deficit, *dissolve* it: its
//!       members each join the smallest swarm with fewer than `max` (the
//!       pool if none has room). Otherwise top it up as in 4.1 but from
//!       swarms with more than `min`. Start the next round.
//! 5. **Grow.** Let the *excess* be the pool size plus `Σ max(0, size −
//!    target)` over all swarms. While the excess is at least `target`, or
//!    the pool has at least `min` nodes, or a swarm has more than `max`
//!    members, or the pool does not fit in the free places
//!    `Σ max(0, max − size)`: create a swarm of
//!    `s = clamp(pool size, min, target)` nodes, taken from the pool first,
//!    then one at a time from the largest swarm with more than `target`,
//!    then (only when the bounds force it) from the largest with more than
//!    `min`. Its id is [`new_swarm_id`] of the ring at that moment.
//! 6. **Place.** Each remaining pool node joins the smallest swarm with
//!    fewer than `max` members.
//!
//! # Properties (tested below)
//!
//! - Every live node gets exactly one swarm, no other node appears, and no
//!   node gets [`INVALID_SWARM_ID`].
//! - With `n ≥ min` live nodes every swarm has `min..=max` members, whatever
//!   the previous snapshot was; with `0 < n < min` there is one swarm.
//! - The output is a fixed point: fed back with the same live set it comes
//!   back unchanged, so recomputing never churns.
//! - From a fixed point, removing a node whose swarm keeps `min` members
//!   changes nothing else. If its swarm starves, one node moves in (top-up)
//!   or its `min − 1` survivors move out (dissolution).
//! - From a fixed point, adding a node moves nobody, unless the excess
//!   reaches `target` (or the network is one full swarm): then one swarm of
//!   `min` is born, the new node plus `min − 1` nodes taken from swarms above
//!   `target` (or from the full one). With joins one at a time this is
//!   unavoidable: a new swarm of `min` can only be made of existing nodes.
//! - So one join or leave never moves more than `min − 1` nodes.
//! - Ids created from an empty ring are `0`, `2⁶³`, `2⁶²`, `3·2⁶²`, …, so
//!   the largest gap is never more than twice the smallest; in any ring a
//!   new id is at least half the largest gap (less one) from its neighbours.
//!
//! # Why these choices
//!
//! - **`target = 7`** (Oxen's ideal size): two losses of margin above
//!   `min = 5`, while each `store` is copied to only about 7 nodes.
//! - **Top up before dissolving**: a top-up moves `deficit` nodes and leaves
//!   the ring alone, so no account changes swarm. Dissolving moves every
//!   survivor *and* hands the swarm's accounts to its ring neighbours.
//!   Donors come from above `target` so they stay comfortable. A swarm is
//!   dissolved once the others can absorb it below target (the network has
//!   more swarms than it needs, as when it shrinks); borrowing from swarms
//!   at `min + 1..=target` is kept for small networks, where dissolving
//!   would fill the rest so far that the next join splits again.
//! - **New swarm when the excess reaches `target`, of size `min`**: the
//!   `target − min` spare nodes left behind can rescue the young swarm, and
//!   only `min − 1` nodes move per split. A batch of `min` or more new nodes
//!   forms swarms on its own (up to `target` each) and moves nobody.
//! - **Key order** for every "which node" choice: simple to reimplement and
//!   no weaker than a hash of the key, since an operator who grinds keys can
//!   grind a hash as easily. Where a node lands is not a defence against an
//!   operator choosing its swarm; the seed's admission is.
//!
//! Cost: `O(n log n)` to carry `n` live nodes over, plus `O(k)` for every
//! node placed or moved and `O(k log k)` for every swarm created, with `k`
//! swarms. In a release build one join to a 10 000-node
//! network takes about 3 ms, and assigning 10 000 nodes from scratch 18 ms.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use super::{INVALID_SWARM_ID, SwarmId, SwarmRing};

/// A service node's Ed25519 public key: the identity assignment is keyed by.
pub type NodeKey = [u8; 32];

/// The id given to the first swarm of an empty ring.
pub const FIRST_SWARM_ID: SwarmId = 0;

/// Swarm size bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AssignParams {
    /// Fewest members a swarm may keep once the network has at least this
    /// many live nodes; below it a swarm is topped up or dissolved.
    pub min_size: usize,
    /// The size new nodes fill swarms up to; nodes beyond it count as spare
    /// towards a new swarm.
    pub target_size: usize,
    /// Most members a swarm may have.
    pub max_size: usize,
}

impl AssignParams {
    /// Allium's bounds: 5 / 7 / 10 (the design's "5–10", Oxen's ideal 7).
    pub const DEFAULT: Self = Self {
        min_size: 5,
        target_size: 7,
        max_size: 10,
    };

    /// The bounds [`assign`] really uses: `min ≥ 1`,
    /// `max ≥ 2·min − 1` (so a full swarm plus one node can split into two
    /// swarms of at least `min`), and `min ≤ target ≤ max`.
    pub fn normalized(&self) -> Self {
        let min_size = self.min_size.max(1);
        let max_size = self
            .max_size
            .max(min_size.saturating_mul(2).saturating_sub(1))
            .max(min_size);
        let target_size = self.target_size.max(min_size).min(max_size);
        Self {
            min_size,
            target_size,
            max_size,
        }
    }
}

impl Default for AssignParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Computes the swarm of every live node (see the module docs for the
/// exact algorithm).
///
/// `previous` maps node keys to their swarm in the last snapshot (it may be
/// empty, hold dead nodes or [`INVALID_SWARM_ID`]); `live` is the set of
/// nodes to list now. The result has exactly the keys of `live`.
pub fn assign(
    previous: &BTreeMap<NodeKey, SwarmId>,
    live: &BTreeSet<NodeKey>,
    params: &AssignParams,
) -> BTreeMap<NodeKey, SwarmId> {
    assign_grouped(previous, live, &BTreeMap::new(), params)
}

/// [`assign`] where no swarm may hold two nodes of one group (`groups`:
/// a node's subnet; a node without a group is in a group of its own). A
/// carried-over node whose swarm already holds its group (the lower key
/// stays) joins the pool; every placement and every move picks, among the
/// candidates the algorithm would pick from, the first that fits; a new
/// swarm is made only if enough nodes of distinct groups can form it. A
/// node that no swarm can take is left out of the result.
pub fn assign_grouped(
    previous: &BTreeMap<NodeKey, SwarmId>,
    live: &BTreeSet<NodeKey>,
    groups: &BTreeMap<NodeKey, String>,
    params: &AssignParams,
) -> BTreeMap<NodeKey, SwarmId> {
    let p = params.normalized();
    let mut layout = Layout {
        swarms: BTreeMap::new(),
        pool: BTreeSet::new(),
        p,
        groups,
    };
    for key in live {
        match previous.get(key) {
            Some(&id) if id != INVALID_SWARM_ID && layout.fits(id, key) => layout.put(id, *key),
            _ => {
                layout.pool.insert(*key);
            }
        }
    }
    if live.len() < p.min_size {
        // Too few for a healthy swarm anywhere: keep them together where
        // most of them already are, so the fewest nodes move (one per group).
        let id = layout.largest(|_| true).unwrap_or(FIRST_SWARM_ID);
        let mut together = Layout {
            swarms: BTreeMap::new(),
            pool: BTreeSet::new(),
            p,
            groups,
        };
        for key in live {
            if together.fits(id, key) {
                together.put(id, *key);
            }
        }
        return together.into_assignment();
    }
    layout.fill_below_target();
    layout.repair_starving();
    // Every round of growth creates a swarm of at least one node, so
    // `live.len() + 1` rounds are more than enough; the bound only makes
    // termination obvious.
    layout.grow(live.len().saturating_add(1));
    layout.place_pool();
    layout.into_assignment()
}

/// The id for a new swarm: the midpoint of the largest gap between
/// consecutive ids of `ring` (with wrap-around, on the 2⁶⁴ ring).
///
/// Ties go to the gap with the lowest left end. An empty ring gets
/// [`FIRST_SWARM_ID`]. If the midpoint is [`INVALID_SWARM_ID`] the id just
/// below it is used. Returns `None` only when no gap has room (a ring with
/// more than 2⁶³ ids), never a duplicate.
pub fn new_swarm_id(ring: &SwarmRing) -> Option<SwarmId> {
    const RING_SIZE: u128 = 1 << 64;
    let ids = ring.ids();
    let (Some(&first), Some(&last)) = (ids.first(), ids.last()) else {
        return Some(FIRST_SWARM_ID);
    };
    // Gaps are scanned by ascending left end and the wrap-around gap (whose
    // left end is the largest id) comes last, so a strict `>` keeps the
    // lowest left end on ties.
    let mut best_left = first;
    let mut best_gap = 0u128;
    for pair in ids.windows(2) {
        if let &[left, right] = pair {
            let gap = u128::from(right.wrapping_sub(left));
            if gap > best_gap {
                best_left = left;
                best_gap = gap;
            }
        }
    }
    let wrap = RING_SIZE - u128::from(last) + u128::from(first);
    if wrap > best_gap {
        best_left = last;
        best_gap = wrap;
    }
    let half = u64::try_from(best_gap / 2).ok()?;
    let mut id = best_left.wrapping_add(half);
    if id == INVALID_SWARM_ID {
        id = id.wrapping_sub(1);
    }
    // Strictly inside the gap, hence neither existing id nor a duplicate.
    let offset = u128::from(id.wrapping_sub(best_left));
    (offset > 0 && offset < best_gap).then_some(id)
}

/// The assignment under construction.
#[derive(Debug)]
struct Layout<'g> {
    swarms: BTreeMap<SwarmId, BTreeSet<NodeKey>>,
    /// Live nodes that have no swarm yet.
    pool: BTreeSet<NodeKey>,
    p: AssignParams,
    groups: &'g BTreeMap<NodeKey, String>,
}

impl Layout<'_> {
    /// Whether `key` may join swarm `id`: no member there shares its group.
    fn fits(&self, id: SwarmId, key: &NodeKey) -> bool {
        let Some(group) = self.groups.get(key) else {
            return true;
        };
        self.swarms
            .get(&id)
            .is_none_or(|members| members.iter().all(|m| self.groups.get(m) != Some(group)))
    }

    /// The smallest swarm `key` fits in whose size satisfies `ok` (ties:
    /// lowest id).
    fn smallest_for(&self, key: &NodeKey, ok: impl Fn(usize) -> bool) -> Option<SwarmId> {
        self.swarms
            .iter()
            .filter(|(id, members)| ok(members.len()) && self.fits(**id, key))
            .min_by_key(|(id, members)| (members.len(), **id))
            .map(|(id, _)| *id)
    }

    /// Takes a node for swarm `to` (or, with `None`, for a new swarm
    /// holding the groups `taken`) out of the largest swarm above `floor`
    /// that has one that fits (its lowest-keyed such member); says which
    /// swarm gave it.
    fn take_for(&mut self, to: Option<SwarmId>, floor: usize, taken: &BTreeSet<String>) -> Option<(SwarmId, NodeKey)> {
        let mut donors: Vec<(usize, SwarmId)> = self
            .swarms
            .iter()
            .filter(|(id, members)| members.len() > floor && Some(**id) != to)
            .map(|(id, members)| (members.len(), *id))
            .collect();
        donors.sort_by_key(|&(len, id)| (Reverse(len), id));
        for (_, donor) in donors {
            let found = self.swarms.get(&donor)?.iter().copied().find(|key| {
                to.is_none_or(|to| self.fits(to, key)) && self.groups.get(key).is_none_or(|g| !taken.contains(g))
            });
            if let Some(key) = found {
                self.swarms.get_mut(&donor)?.remove(&key);
                return Some((donor, key));
            }
        }
        None
    }

    fn put(&mut self, id: SwarmId, key: NodeKey) {
        self.swarms.entry(id).or_default().insert(key);
    }

    fn size(&self, id: SwarmId) -> usize {
        self.swarms.get(&id).map_or(0, BTreeSet::len)
    }

    /// The smallest swarm whose size satisfies `ok` (ties: lowest id).
    fn smallest(&self, ok: impl Fn(usize) -> bool) -> Option<SwarmId> {
        self.swarms
            .iter()
            .filter(|(_, members)| ok(members.len()))
            .min_by_key(|(id, members)| (members.len(), **id))
            .map(|(id, _)| *id)
    }

    /// The largest swarm whose size satisfies `ok` (ties: lowest id).
    fn largest(&self, ok: impl Fn(usize) -> bool) -> Option<SwarmId> {
        self.swarms
            .iter()
            .filter(|(_, members)| ok(members.len()))
            .max_by_key(|(id, members)| (members.len(), Reverse(**id)))
            .map(|(id, _)| *id)
    }

    /// Members above `floor`, summed over all swarms.
    fn spare_above(&self, floor: usize) -> usize {
        self.swarms
            .values()
            .map(|members| members.len().saturating_sub(floor))
            .sum()
    }

    /// Pool nodes plus members above target: the nodes a new swarm can be
    /// made of without taking any swarm below target.
    fn excess(&self) -> usize {
        self.pool.len() + self.spare_above(self.p.target_size)
    }

    /// Free places before every swarm is full.
    fn room(&self) -> usize {
        self.swarms
            .values()
            .map(|members| self.p.max_size.saturating_sub(members.len()))
            .sum()
    }

    /// Step 3: pool nodes fill the smallest swarms up to target.
    fn fill_below_target(&mut self) {
        let target = self.p.target_size;
        for key in std::mem::take(&mut self.pool) {
            match self.smallest_for(&key, |len| len < target) {
                Some(id) => self.put(id, key),
                None => {
                    self.pool.insert(key);
                }
            }
        }
    }

    /// Step 4: tops up or dissolves starving swarms.
    fn repair_starving(&mut self) {
        let (min, target, max) = (self.p.min_size, self.p.target_size, self.p.max_size);
        // Every round makes a starving swarm healthy or removes one, so
        // `2 × swarms + 1` rounds are enough; the bound makes that obvious.
        let rounds = self.swarms.len().saturating_mul(2).saturating_add(1);
        for _ in 0..rounds {
            let mut starving: Vec<(usize, SwarmId)> = self
                .swarms
                .iter()
                .filter(|(_, members)| members.len() < min)
                .map(|(id, members)| (members.len(), *id))
                .collect();
            // Smallest deficit first: the cheapest rescues, and as many of
            // them as the spare nodes allow.
            starving.sort_by_key(|&(len, id)| (Reverse(len), id));
            for (_, id) in starving {
                self.top_up(id, target);
            }
            let Some(victim) = self.smallest(|len| len < min) else {
                return;
            };
            if self.swarms.len() < 2 {
                // Cannot happen with at least `min` live nodes (they would
                // all be in this swarm or the pool would be empty); keep the
                // nodes rather than lose them.
                return;
            }
            let survivors = self.size(victim);
            let absorbable: usize = self
                .swarms
                .iter()
                .filter(|(id, _)| **id != victim)
                .map(|(_, members)| target.saturating_sub(members.len()))
                .sum();
            // The network no longer needs this swarm when the others can
            // take its survivors without going above target. If they
            // cannot, dissolving would only bring the next split closer, so
            // borrowing from any swarm above `min` is cheaper.
            if absorbable < survivors && self.top_up(victim, min) {
                continue;
            }
            let members = self.swarms.remove(&victim).unwrap_or_default();
            for key in members {
                match self.smallest_for(&key, |len| len < max) {
                    Some(id) => self.put(id, key),
                    None => {
                        self.pool.insert(key);
                    }
                }
            }
        }
    }

    /// Brings swarm `id` up to `min` with nodes from the largest swarms
    /// above `floor`, if they can spare enough; says whether it did.
    fn top_up(&mut self, id: SwarmId, floor: usize) -> bool {
        let deficit = self.p.min_size.saturating_sub(self.size(id));
        // A partial top-up would move nodes into a swarm that is then
        // dissolved anyway.
        if deficit == 0 || self.spare_above(floor) < deficit {
            return false;
        }
        for _ in 0..deficit {
            let Some((_, key)) = self.take_for(Some(id), floor, &BTreeSet::new()) else {
                return false;
            };
            self.put(id, key);
        }
        true
    }

    /// Step 5: creates swarms while there are enough spare nodes, or while
    /// the bounds cannot otherwise hold.
    fn grow(&mut self, max_rounds: usize) {
        let p = self.p;
        for _ in 0..max_rounds {
            let overflow = self.swarms.values().any(|m| m.len() > p.max_size);
            let cramped = self.room() < self.pool.len();
            // A batch of at least `min` new nodes forms a swarm of its own
            // (nobody moves); otherwise wait until the spare nodes would fill
            // a swarm to target, so that after a new swarm of `min` is made
            // `target − min` spare nodes are left to rescue it.
            let enough = self.excess() >= p.target_size || self.pool.len() >= p.min_size;
            if !enough && !overflow && !cramped {
                return;
            }
            let size = self.pool.len().max(p.min_size).min(p.target_size);
            if self.pool.len() + self.spare_above(p.min_size) < size {
                // Impossible with normalised bounds: if `enough`, the excess
                // covers `size`; an overflowing swarm alone has
                // `max + 1 − min ≥ min` members above `min`; if cramped,
                // `n > k·max`, so `pool + Σ (size − min) > k·(max − min) ≥ min − 1`.
                // Stop rather than take a donor below min.
                return;
            }
            let Some(id) = new_swarm_id(&SwarmRing::new(self.swarms.keys().copied())) else {
                return;
            };
            // Pool nodes of distinct groups first.
            let mut members = BTreeSet::new();
            let mut taken: BTreeSet<String> = BTreeSet::new();
            for key in self.pool.iter() {
                if members.len() >= size {
                    break;
                }
                if self.groups.get(key).is_none_or(|g| taken.insert(g.clone())) {
                    members.insert(*key);
                }
            }
            // Then above-target members: in the unforced case they suffice
            // and every donor keeps `target`.
            let mut moved: Vec<(SwarmId, NodeKey)> = Vec::new();
            for floor in [p.target_size, p.min_size] {
                while members.len() + moved.len() < size {
                    let Some((donor, key)) = self.take_for(None, floor, &taken) else {
                        break;
                    };
                    if let Some(g) = self.groups.get(&key) {
                        taken.insert(g.clone());
                    }
                    moved.push((donor, key));
                }
            }
            if members.len() + moved.len() < size {
                // Nodes of distinct groups cannot make up a swarm: undo the
                // moves and stop growing.
                for (donor, key) in moved {
                    self.put(donor, key);
                }
                return;
            }
            for key in &members {
                self.pool.remove(key);
            }
            members.extend(moved.into_iter().map(|(_, key)| key));
            self.swarms.insert(id, members);
        }
    }

    /// Step 6: the remaining pool nodes join the smallest swarms with room.
    fn place_pool(&mut self) {
        let max = self.p.max_size;
        for key in std::mem::take(&mut self.pool) {
            // After `grow` there is always room; the fallbacks only keep
            // every live node assigned if that ever failed.
            // A node of a group every swarm already holds is left out.
            if let Some(id) = self
                .smallest_for(&key, |len| len < max)
                .or_else(|| self.smallest_for(&key, |_| true))
            {
                self.put(id, key);
            }
        }
    }

    fn into_assignment(self) -> BTreeMap<NodeKey, SwarmId> {
        self.swarms
            .into_iter()
            .flat_map(|(id, members)| members.into_iter().map(move |key| (key, id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use proptest::prelude::*;

    use super::*;

    const P: AssignParams = AssignParams::DEFAULT;

    /// A well-spread, reproducible key for node number `n` (splitmix64).
    fn key(n: u64) -> NodeKey {
        let mut state = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA11_1C0D;
        let mut out = [0u8; 32];
        for chunk in out.chunks_exact_mut(8) {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
        }
        out
    }

    fn keys(range: std::ops::Range<u64>) -> BTreeSet<NodeKey> {
        range.map(key).collect()
    }

    /// Members per swarm.
    fn swarms(out: &BTreeMap<NodeKey, SwarmId>) -> BTreeMap<SwarmId, usize> {
        let mut sizes = BTreeMap::new();
        for id in out.values() {
            *sizes.entry(*id).or_insert(0) += 1;
        }
        sizes
    }

    /// Nodes live before and after whose swarm changed.
    fn moved(before: &BTreeMap<NodeKey, SwarmId>, after: &BTreeMap<NodeKey, SwarmId>) -> usize {
        after
            .iter()
            .filter(|(k, id)| before.get(*k).is_some_and(|old| old != *id))
            .count()
    }

    /// Largest and smallest gap between consecutive ids, with wrap-around.
    fn gaps(ids: &[SwarmId]) -> (u128, u128) {
        let mut gaps: Vec<u128> = ids.windows(2).map(|w| u128::from(w[1] - w[0])).collect();
        gaps.push((1u128 << 64) - u128::from(ids[ids.len() - 1]) + u128::from(ids[0]));
        (*gaps.iter().max().unwrap(), *gaps.iter().min().unwrap())
    }

    /// Everything an output must satisfy, whatever the input.
    fn invariants(
        out: &BTreeMap<NodeKey, SwarmId>,
        live: &BTreeSet<NodeKey>,
        params: &AssignParams,
    ) -> Result<(), String> {
        let p = params.normalized();
        if !out.keys().eq(live.iter()) {
            return Err("assigned nodes differ from the live set".into());
        }
        if out.values().any(|&id| id == INVALID_SWARM_ID) {
            return Err("a node got the invalid swarm id".into());
        }
        let sizes = swarms(out);
        if live.is_empty() {
            return Ok(());
        }
        if live.len() < p.min_size {
            if sizes.len() != 1 {
                return Err(format!("{} nodes in {} swarms", live.len(), sizes.len()));
            }
        } else if let Some((id, n)) = sizes.iter().find(|(_, n)| **n < p.min_size || **n > p.max_size) {
            return Err(format!("swarm {id:#x} has {n} members: {sizes:?}"));
        }
        let again = assign(out, live, params);
        if &again != out {
            return Err("the output is not a fixed point".into());
        }
        Ok(())
    }

    /// A network built by `n` single joins from empty.
    fn grown(n: u64) -> (BTreeMap<NodeKey, SwarmId>, BTreeSet<NodeKey>) {
        let mut out = BTreeMap::new();
        let mut live = BTreeSet::new();
        for i in 0..n {
            live.insert(key(i));
            out = assign(&out, &live, &P);
        }
        (out, live)
    }

    #[test]
    fn new_ids_split_the_largest_gap() {
        let id = |ids: &[u64]| new_swarm_id(&SwarmRing::new(ids.iter().copied()));
        assert_eq!(id(&[]), Some(0));
        assert_eq!(id(&[0]), Some(1 << 63));
        assert_eq!(id(&[0, 1 << 63]), Some(1 << 62), "a tie goes to the lowest left end");
        assert_eq!(id(&[0, 1 << 62, 1 << 63]), Some(3 << 62));
        // The wrap-around gap (2⁶⁴ − 100 wide) is the largest.
        assert_eq!(id(&[100, 200]), Some((1 << 63) + 150));
        assert_eq!(id(&[5]), Some(5 + (1 << 63)));
        // Gaps 1000, 2⁶⁴ − 1021 and 21 (wrap-around): the middle one wins.
        assert_eq!(id(&[10, 1010, u64::MAX - 10]), Some((1u64 << 63) + 499));
        // The midpoint would be the reserved id: take the one below it.
        assert_eq!(id(&[(1 << 63) - 1]), Some(u64::MAX - 1));
        // Adjacent ids: the wrap-around gap from 3 is split.
        assert_eq!(id(&[1, 2, 3]), Some(3 + ((1u64 << 63) - 1)));
    }

    #[test]
    fn ids_from_an_empty_ring_stay_evenly_spread() {
        let mut ring = Vec::new();
        for k in 0..600 {
            let id = new_swarm_id(&SwarmRing::new(ring.iter().copied())).unwrap();
            assert!(!ring.contains(&id) && id != INVALID_SWARM_ID);
            ring.push(id);
            ring.sort_unstable();
            if k >= 1 {
                let (largest, smallest) = gaps(&ring);
                assert!(largest <= 2 * smallest, "after {} ids: {largest} > 2×{smallest}", k + 1);
            }
        }
    }

    #[test]
    fn empty_and_tiny_networks() {
        let none = BTreeMap::new();
        assert!(assign(&none, &BTreeSet::new(), &P).is_empty());
        for n in 1..5 {
            let live = keys(0..n);
            let out = assign(&none, &live, &P);
            assert!(out.values().all(|&id| id == FIRST_SWARM_ID));
            assert_eq!(invariants(&out, &live, &P), Ok(()));
        }
        // Shrinking below min: everyone joins the swarm holding most of them.
        let (out, _) = grown(30);
        let sizes = swarms(&out);
        let (&big, _) = sizes.iter().max_by_key(|(id, n)| (**n, Reverse(**id))).unwrap();
        let mut live: BTreeSet<NodeKey> = out
            .iter()
            .filter(|(_, id)| **id == big)
            .map(|(k, _)| *k)
            .take(3)
            .collect();
        live.insert(*out.iter().find(|(_, id)| **id != big).unwrap().0);
        let small = assign(&out, &live, &P);
        assert!(small.values().all(|&id| id == big));
    }

    #[test]
    fn twenty_nodes_from_empty() {
        let live = keys(0..20);
        let out = assign(&BTreeMap::new(), &live, &P);
        assert_eq!(invariants(&out, &live, &P), Ok(()));
        let sizes = swarms(&out);
        assert!((2..=4).contains(&sizes.len()), "{sizes:?}");
        // The batch forms target-sized swarms of its own at 0, 2⁶³, 2⁶².
        assert_eq!(sizes, BTreeMap::from([(0, 7), (1 << 62, 6), (1 << 63, 7)]));
        // Joining one at a time ends in the same bounds.
        let (one_by_one, live) = grown(20);
        assert_eq!(invariants(&one_by_one, &live, &P), Ok(()));
        assert!((2..=4).contains(&swarms(&one_by_one).len()));
    }

    #[test]
    fn growth_by_single_joins_keeps_bounds_and_spread() {
        let mut out = BTreeMap::new();
        let mut live = BTreeSet::new();
        for i in 0..300 {
            live.insert(key(i));
            let next = assign(&out, &live, &P);
            assert_eq!(invariants(&next, &live, &P), Ok(()), "after {} joins", i + 1);
            let old_ids: BTreeSet<SwarmId> = out.values().copied().collect();
            let created = swarms(&next).keys().filter(|id| !old_ids.contains(id)).count();
            let m = moved(&out, &next);
            assert!(m == 0 || (created == 1 && m == P.min_size - 1), "join {i}: {m} moved");
            let ids: Vec<SwarmId> = swarms(&next).keys().copied().collect();
            if ids.len() > 1 {
                let (largest, smallest) = gaps(&ids);
                assert!(largest <= 2 * smallest);
            }
            out = next;
        }
    }

    #[test]
    fn lone_full_swarm_splits_in_two() {
        let (out, mut live) = grown(10);
        assert_eq!(swarms(&out).len(), 1);
        live.insert(key(10));
        let next = assign(&out, &live, &P);
        let mut sizes: Vec<usize> = swarms(&next).values().copied().collect();
        sizes.sort_unstable();
        assert_eq!(sizes, [5, 6]);
        assert_eq!(moved(&out, &next), 4);
    }

    /// A snapshot with the given swarm sizes (ids 100, 200, …), the nodes
    /// in key order, and the live set after the lowest-keyed member of
    /// swarm 100 has left.
    fn after_loss_from_first(sizes: &[usize]) -> (BTreeMap<NodeKey, SwarmId>, BTreeSet<NodeKey>) {
        let live = keys(0..sizes.iter().sum::<usize>() as u64);
        let mut prev = BTreeMap::new();
        let mut nodes = live.iter();
        for (i, &n) in sizes.iter().enumerate() {
            for k in nodes.by_ref().take(n) {
                prev.insert(*k, 100 * (i as u64 + 1));
            }
        }
        let lost = *prev.iter().find(|(_, id)| **id == 100).unwrap().0;
        let fewer = live.iter().copied().filter(|k| *k != lost).collect();
        (prev, fewer)
    }

    #[test]
    fn starving_swarm_is_topped_up_or_dissolved() {
        // 5 + 8: the 8 (above target) lends its lowest key; ring unchanged.
        let (prev, live) = after_loss_from_first(&[5, 8]);
        let out = assign(&prev, &live, &P);
        assert_eq!(swarms(&out), BTreeMap::from([(100, 5), (200, 7)]));
        assert_eq!(moved(&prev, &out), 1);
        let donor_lowest = *prev.iter().find(|(_, id)| **id == 200).unwrap().0;
        assert_eq!(out[&donor_lowest], 100);

        // 5 + 5 + 5: the others absorb the four survivors below target.
        let (prev, live) = after_loss_from_first(&[5, 5, 5]);
        let out = assign(&prev, &live, &P);
        assert_eq!(swarms(&out), BTreeMap::from([(200, 7), (300, 7)]));
        assert_eq!(moved(&prev, &out), 4);

        // 5 + 6: absorbing would make 10, one join from a split, so the 6
        // lends a node instead.
        let (prev, live) = after_loss_from_first(&[5, 6]);
        let out = assign(&prev, &live, &P);
        assert_eq!(swarms(&out), BTreeMap::from([(100, 5), (200, 5)]));
        assert_eq!(moved(&prev, &out), 1);

        // 5 + 5: nobody can lend, so the survivors move.
        let (prev, live) = after_loss_from_first(&[5, 5]);
        let out = assign(&prev, &live, &P);
        assert_eq!(swarms(&out), BTreeMap::from([(200, 9)]));
        assert_eq!(moved(&prev, &out), 4);
        for (prev, live) in [after_loss_from_first(&[5, 5, 5]), after_loss_from_first(&[5, 5])] {
            assert_eq!(invariants(&assign(&prev, &live, &P), &live, &P), Ok(()));
        }
    }

    #[test]
    fn a_batch_of_new_nodes_forms_its_own_swarm() {
        let live = keys(0..27);
        let mut nodes = live.iter();
        let mut prev = BTreeMap::new();
        for id in [100, 200, 300] {
            for k in nodes.by_ref().take(7) {
                prev.insert(*k, id);
            }
        }
        let newcomers: BTreeSet<NodeKey> = nodes.copied().collect();
        let out = assign(&prev, &live, &P);
        assert_eq!(moved(&prev, &out), 0);
        let born: BTreeSet<SwarmId> = newcomers.iter().map(|k| out[k]).collect();
        assert_eq!(born.len(), 1);
        assert!(!prev.values().any(|id| born.contains(id)));
    }

    #[test]
    fn hostile_previous_snapshots_are_repaired() {
        let live = keys(0..40);
        // Everyone in one oversized swarm, a dead node and an invalid id.
        let mut prev: BTreeMap<NodeKey, SwarmId> = live.iter().map(|k| (*k, 42)).collect();
        prev.insert(key(1000), 7);
        prev.insert(key(3), INVALID_SWARM_ID);
        let out = assign(&prev, &live, &P);
        assert_eq!(invariants(&out, &live, &P), Ok(()));
        assert!(!out.contains_key(&key(1000)));
        // Forty swarms of one.
        let prev: BTreeMap<NodeKey, SwarmId> = live.iter().zip(0u64..).map(|(k, i)| (*k, i * 1000)).collect();
        let out = assign(&prev, &live, &P);
        assert_eq!(invariants(&out, &live, &P), Ok(()));
    }

    #[test]
    fn odd_parameters_never_panic() {
        for params in [
            AssignParams {
                min_size: 0,
                target_size: 0,
                max_size: 0,
            },
            AssignParams {
                min_size: 5,
                target_size: 100,
                max_size: 3,
            },
            AssignParams {
                min_size: 1,
                target_size: 1,
                max_size: 1,
            },
            AssignParams {
                min_size: 3,
                target_size: 2,
                max_size: 4,
            },
            AssignParams {
                min_size: usize::MAX,
                target_size: 0,
                max_size: 0,
            },
        ] {
            let n = params.normalized();
            assert!(n.min_size >= 1 && n.min_size <= n.target_size && n.target_size <= n.max_size);
            assert!(n.max_size >= 2 * n.min_size.min(usize::MAX / 4) - 1);
            let (mut out, mut live) = (BTreeMap::new(), BTreeSet::new());
            for i in 0..40 {
                live.insert(key(i));
                out = assign(&out, &live, &params);
                assert_eq!(invariants(&out, &live, &params), Ok(()), "{params:?}");
            }
        }
    }

    #[test]
    fn determinism_ignores_insertion_order() {
        let (out, live) = grown(57);
        let mut changed = live.clone();
        for i in [3u64, 9, 20, 21, 40] {
            changed.remove(&key(i));
        }
        changed.extend(keys(100..112));
        let reversed_prev: BTreeMap<NodeKey, SwarmId> = out.iter().rev().map(|(k, v)| (*k, *v)).collect();
        let reversed_live: BTreeSet<NodeKey> = changed.iter().rev().copied().collect();
        let a = assign(&out, &changed, &P);
        let b = assign(&reversed_prev, &reversed_live, &P);
        assert_eq!(a, b);
        assert_eq!(a, assign(&out, &changed, &P));
    }

    /// One step of a random history: `count` joins or leaves.
    #[derive(Debug, Clone)]
    struct Step {
        join: bool,
        count: usize,
        salt: u64,
    }

    /// A step that joins with probability `join_chance`.
    fn step(join_chance: f64) -> impl Strategy<Value = Step> {
        (
            prop::bool::weighted(join_chance),
            prop_oneof![4 => Just(1usize), 2 => 1usize..4, 1 => 1usize..25],
            any::<u64>(),
        )
            .prop_map(|(join, count, salt)| Step { join, count, salt })
    }

    /// Applies a step to `live`, naming new nodes from `next_key`.
    fn apply(live: &mut BTreeSet<NodeKey>, s: &Step, next_key: &mut u64) {
        for j in 0..s.count {
            if s.join {
                live.insert(key(*next_key));
                *next_key += 1;
            } else if !live.is_empty() {
                let at = (s.salt.wrapping_add(j as u64 * 7919) % live.len() as u64) as usize;
                if let Some(k) = live.iter().nth(at).copied() {
                    live.remove(&k);
                }
            }
        }
    }

    fn settled(steps: &[Step]) -> (BTreeMap<NodeKey, SwarmId>, BTreeSet<NodeKey>, u64) {
        let (mut out, mut live, mut next) = (BTreeMap::new(), BTreeSet::new(), 0);
        for s in steps {
            apply(&mut live, s, &mut next);
            out = assign(&out, &live, &P);
        }
        (out, live, next)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn invariants_hold_after_every_step(steps in proptest::collection::vec(step(0.5), 1..80)) {
            let (mut out, mut live, mut next) = (BTreeMap::new(), BTreeSet::new(), 0);
            for s in &steps {
                apply(&mut live, s, &mut next);
                let ring_before = SwarmRing::new(out.values().copied());
                let new_out = assign(&out, &live, &P);
                let check = invariants(&new_out, &live, &P);
                prop_assert!(check.is_ok(), "{:?}", check);
                // Determinism.
                prop_assert_eq!(&new_out, &assign(&out, &live, &P));
                // A single join or leave moves at most min − 1 nodes.
                if s.count == 1 && live.len() > P.min_size {
                    prop_assert!(moved(&out, &new_out) < P.min_size);
                }
                // A lone new id sits at least half the largest old gap
                // (less one, for the reserved id) from both neighbours.
                let ids = SwarmRing::new(new_out.values().copied());
                let born: Vec<SwarmId> = ids.ids().iter().copied().filter(|id| !ring_before.ids().contains(id)).collect();
                let died = ring_before.ids().iter().filter(|id| !ids.ids().contains(id)).count();
                if let ([id], 0, false) = (&born[..], died, ring_before.ids().is_empty()) {
                    let (largest, _) = gaps(ring_before.ids());
                    let at = ids.ids().iter().position(|x| x == id).unwrap();
                    let n = ids.ids().len();
                    let left = ids.ids()[(at + n - 1) % n];
                    let right = ids.ids()[(at + 1) % n];
                    prop_assert!(u128::from(id.wrapping_sub(left)) >= largest / 2 - 1);
                    prop_assert!(u128::from(right.wrapping_sub(*id)) >= largest / 2 - 1);
                }
                out = new_out;
            }
        }

        #[test]
        fn any_previous_snapshot_gives_valid_output(
            prev in proptest::collection::btree_map(0u64..200, prop_oneof![any::<u64>(), 0u64..6, Just(INVALID_SWARM_ID)], 0..120),
            live_ids in proptest::collection::btree_set(0u64..200, 0..120),
        ) {
            let prev: BTreeMap<NodeKey, SwarmId> = prev.into_iter().map(|(k, v)| (key(k), v)).collect();
            let live: BTreeSet<NodeKey> = live_ids.into_iter().map(key).collect();
            let out = assign(&prev, &live, &P);
            let check = invariants(&out, &live, &P);
            prop_assert!(check.is_ok(), "{:?}", check);
        }

        #[test]
        fn no_swarm_holds_two_nodes_of_one_group(
            steps in proptest::collection::vec(step(0.6), 1..60),
            group_count in 1u64..40,
        ) {
            let (mut out, mut live, mut next) = (BTreeMap::new(), BTreeSet::new(), 0);
            for s in &steps {
                apply(&mut live, s, &mut next);
                // Few groups: many nodes share one, as nodes of one /16 do.
                let groups: BTreeMap<NodeKey, String> = live
                    .iter()
                    .map(|k| (*k, format!("g{}", u64::from_be_bytes(k[..8].try_into().unwrap()) % group_count)))
                    .collect();
                let new_out = assign_grouped(&out, &live, &groups, &P);
                prop_assert!(new_out.keys().all(|k| live.contains(k)), "only live nodes");
                prop_assert!(new_out.values().all(|id| *id != INVALID_SWARM_ID));
                let mut seen: BTreeSet<(SwarmId, &String)> = BTreeSet::new();
                for (k, id) in &new_out {
                    prop_assert!(seen.insert((*id, &groups[k])), "two nodes of {} in swarm {id}", groups[k]);
                }
                // Whoever is left out could not join any swarm: every swarm
                // holds its group, or is full.
                let sizes = swarms(&new_out);
                for k in live.iter().filter(|k| !new_out.contains_key(*k)) {
                    prop_assert!(sizes.keys().all(|id| seen.contains(&(*id, &groups[k])) || sizes[id] >= P.max_size),
                        "{} was left out though a swarm could take it", groups[k]);
                }
                // Distinct groups: exactly the plain assignment.
                let own: BTreeMap<NodeKey, String> = live.iter().map(|k| (*k, hex::encode(k))).collect();
                prop_assert_eq!(assign_grouped(&out, &live, &own, &P), assign(&out, &live, &P));
                out = new_out;
            }
        }

        #[test]
        fn removing_a_node_from_a_healthy_swarm_changes_only_it(
            steps in proptest::collection::vec(step(0.7), 1..40),
            pick in any::<prop::sample::Index>(),
        ) {
            let (out, live, _) = settled(&steps);
            let sizes = swarms(&out);
            let candidates: Vec<NodeKey> = out
                .iter()
                .filter(|(_, id)| sizes[*id] > P.min_size)
                .map(|(k, _)| *k)
                .collect();
            prop_assume!(live.len() > P.min_size && !candidates.is_empty());
            let gone = candidates[pick.index(candidates.len())];
            let mut fewer = live.clone();
            fewer.remove(&gone);
            let next = assign(&out, &fewer, &P);
            let mut expected = out.clone();
            expected.remove(&gone);
            prop_assert_eq!(next, expected);
        }

        #[test]
        fn adding_a_node_moves_nobody_unless_a_swarm_is_born(
            steps in proptest::collection::vec(step(0.7), 1..40),
            newcomer in any::<[u8; 32]>(),
        ) {
            let (out, mut live, _) = settled(&steps);
            prop_assume!(live.len() >= P.min_size && !live.contains(&newcomer));
            live.insert(newcomer);
            let next = assign(&out, &live, &P);
            let m = moved(&out, &next);
            if m > 0 {
                // One new swarm: the newcomer and min − 1 moved nodes.
                let old_ids: BTreeSet<SwarmId> = out.values().copied().collect();
                let born: Vec<SwarmId> = swarms(&next).keys().copied().filter(|id| !old_ids.contains(id)).collect();
                prop_assert_eq!(born.len(), 1);
                prop_assert_eq!(m, P.min_size - 1);
                prop_assert_eq!(next[&newcomer], born[0]);
                prop_assert_eq!(swarms(&next)[&born[0]], P.min_size);
                for (k, id) in &next {
                    if out.get(k).is_some_and(|old| old != id) {
                        prop_assert_eq!(*id, born[0]);
                    }
                }
            }
        }
    }

    /// A long random history of joins and leaves: counts how many nodes
    /// move, and why. Run with `--nocapture` to see the numbers.
    #[test]
    fn movement_statistics() {
        let mut rng = 0x5EED_u64;
        let mut next_rand = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let (mut out, mut live, mut next_key) = (BTreeMap::new(), BTreeSet::new(), 0u64);
        // (phase, events, per-mille chance of a join, fewest and most nodes)
        let phases: [(&str, u32, u64, usize, usize); 4] = [
            ("grow", 1500, 700, 0, usize::MAX),
            ("churn", 2000, 500, 0, usize::MAX),
            ("shrink", 1500, 300, 60, usize::MAX),
            ("small", 3000, 500, 0, 30),
        ];
        let (mut total, mut events_done) = (0, 0u32);
        for (name, events, join_chance, floor, ceiling) in phases {
            let (mut joins, mut leaves) = (0, 0);
            let (mut split_moves, mut splits) = (0, 0);
            let (mut rescue_moves, mut rescues) = (0, 0);
            let (mut dissolve_moves, mut dissolutions) = (0, 0);
            for _ in 0..events {
                let r = next_rand() % 1000;
                let join = live.len() <= floor || (live.len() < ceiling && r < join_chance);
                if join {
                    live.insert(key(next_key));
                    next_key += 1;
                    joins += 1;
                } else {
                    let at = (next_rand() % live.len() as u64) as usize;
                    let k = *live.iter().nth(at).unwrap();
                    live.remove(&k);
                    leaves += 1;
                }
                let next = assign(&out, &live, &P);
                // The full check recomputes; every 8th event is plenty here.
                if events_done % 8 == 0 {
                    assert_eq!(invariants(&next, &live, &P), Ok(()));
                }
                events_done += 1;
                let m = moved(&out, &next);
                if live.len() >= P.min_size {
                    assert!(m < P.min_size, "one event moved {m} nodes");
                }
                total += m;
                let before: BTreeSet<SwarmId> = out.values().copied().collect();
                let after: BTreeSet<SwarmId> = next.values().copied().collect();
                let born = after.difference(&before).count();
                let gone = before.difference(&after).count();
                if m > 0 {
                    if born > 0 {
                        (split_moves, splits) = (split_moves + m, splits + born);
                    } else if gone > 0 {
                        (dissolve_moves, dissolutions) = (dissolve_moves + m, dissolutions + gone);
                    } else {
                        (rescue_moves, rescues) = (rescue_moves + m, rescues + 1);
                    }
                }
                out = next;
            }
            eprintln!(
                "{name:>6}: {joins} joins, {leaves} leaves -> {} nodes in {} swarms; moves: \
                 {split_moves} in {splits} splits, {rescue_moves} in {rescues} rescues, \
                 {dissolve_moves} in {dissolutions} dissolutions ({:.3} per event)",
                live.len(),
                swarms(&out).len(),
                (split_moves + rescue_moves + dissolve_moves) as f64 / f64::from(events),
            );
        }
        eprintln!("total: {total} moves in {events_done} events");
    }
}
