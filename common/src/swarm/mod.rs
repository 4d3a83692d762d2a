//! Which swarm stores which account: the rule of Session's storage server.
//!
//! An account's position in swarm space is the XOR of the four big-endian
//! 64-bit words of its X25519 key. Its swarm is the swarm whose id is
//! nearest on the 2^64 ring; on a tie, the lower side wins (the left
//! neighbour, with wrap-around).

pub mod assign;

use crate::MailboxId;
use crate::group::GroupId;
use crate::identity::AccountId;

/// A swarm's identifier on the 2^64 ring.
pub type SwarmId = u64;

/// Reserved: never a real swarm (Session uses it for "no swarm yet").
pub const INVALID_SWARM_ID: SwarmId = u64::MAX;

/// What has a place in swarm space: an account, a group, a mailbox. The
/// place is computed from 32 key bytes: an account's X25519 key, a group's
/// Ed25519 key.
pub trait SwarmKey {
    /// The 32 bytes that place it.
    fn swarm_key(&self) -> &[u8; 32];
}

impl SwarmKey for AccountId {
    fn swarm_key(&self) -> &[u8; 32] {
        self.x25519()
    }
}

impl SwarmKey for GroupId {
    fn swarm_key(&self) -> &[u8; 32] {
        self.ed25519()
    }
}

impl SwarmKey for MailboxId {
    fn swarm_key(&self) -> &[u8; 32] {
        self.key()
    }
}

/// The account's (or group's) position in swarm space.
pub fn swarm_space_position(account: &impl SwarmKey) -> u64 {
    account
        .swarm_key()
        .chunks_exact(8)
        .map(|w| {
            let mut word = [0u8; 8];
            word.copy_from_slice(w);
            u64::from_be_bytes(word)
        })
        .fold(0, |acc, w| acc ^ w)
}

/// The set of swarm ids in a node list, kept sorted for lookups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SwarmRing(Vec<SwarmId>);

impl SwarmRing {
    /// Builds the ring from any ids; duplicates and [`INVALID_SWARM_ID`]
    /// are dropped.
    pub fn new(ids: impl IntoIterator<Item = SwarmId>) -> Self {
        let mut ids: Vec<SwarmId> = ids.into_iter().filter(|&id| id != INVALID_SWARM_ID).collect();
        ids.sort_unstable();
        ids.dedup();
        Self(ids)
    }

    /// The swarm ids, ascending.
    pub fn ids(&self) -> &[SwarmId] {
        &self.0
    }

    /// The swarm nearest to `position`, or `None` for an empty ring.
    pub fn nearest(&self, position: u64) -> Option<SwarmId> {
        let ids = &self.0;
        let first = *ids.first()?;
        // The right neighbour is the first id ≥ position, wrapping to the
        // smallest; the left neighbour is the one before it, wrapping to the
        // largest.
        let right_at = ids.partition_point(|&id| id < position);
        let right = ids.get(right_at).copied().unwrap_or(first);
        let left_at = if right_at == 0 || right_at == ids.len() {
            ids.len() - 1
        } else {
            right_at - 1
        };
        let left = ids[left_at];
        let to_right = right.wrapping_sub(position);
        let to_left = position.wrapping_sub(left);
        Some(if to_right < to_left { right } else { left })
    }

    /// The swarm that stores `account`.
    pub fn swarm_of(&self, account: &impl SwarmKey) -> Option<SwarmId> {
        self.nearest(swarm_space_position(account))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Nearest swarm by brute force over the ring, for comparison.
    fn brute_force(ids: &[u64], pos: u64) -> Option<u64> {
        ids.iter()
            .copied()
            .filter(|&id| id != INVALID_SWARM_ID)
            .min_by_key(|&id| {
                let d = pos.wrapping_sub(id).min(id.wrapping_sub(pos));
                // On a tie the left neighbour (id ≤ pos going round) wins.
                let is_left = pos.wrapping_sub(id) <= id.wrapping_sub(pos);
                (d, !is_left)
            })
    }

    #[test]
    fn position_is_xor_of_big_endian_words() {
        let mut key = [0u8; 32];
        key[7] = 1; // word 0 = 1
        key[15] = 2; // word 1 = 2
        key[24] = 0x80; // word 3 = 0x8000_0000_0000_0000
        assert_eq!(
            swarm_space_position(&AccountId::from_x25519(key)),
            0x8000_0000_0000_0003
        );
    }

    #[test]
    fn nearest_with_wrap_around_and_ties() {
        let ring = SwarmRing::new([100, 200, u64::MAX - 100, INVALID_SWARM_ID, 200]);
        assert_eq!(ring.ids(), &[100, 200, u64::MAX - 100]);
        assert_eq!(ring.nearest(149), Some(100));
        assert_eq!(ring.nearest(151), Some(200));
        assert_eq!(ring.nearest(150), Some(100), "a tie goes to the lower id");
        assert_eq!(ring.nearest(200), Some(200));
        assert_eq!(ring.nearest(0), Some(100));
        assert_eq!(ring.nearest(u64::MAX), Some(u64::MAX - 100));
        // Halfway between u64::MAX-100 and 100 (going round) is 0 - 0.5:
        // u64::MAX is 99 from the left and 101 from the right.
        assert_eq!(SwarmRing::new([]).nearest(5), None);
        assert_eq!(SwarmRing::new([7]).nearest(u64::MAX / 2), Some(7));
    }

    #[test]
    fn tie_across_the_wrap_goes_to_the_left_neighbour() {
        // 10 and u64::MAX - 9 are both 10 away from 0 going round.
        let ring = SwarmRing::new([10, u64::MAX - 9]);
        assert_eq!(ring.nearest(0), Some(u64::MAX - 9));
    }

    proptest! {
        #[test]
        fn nearest_matches_brute_force(ids in proptest::collection::vec(any::<u64>(), 1..40), pos in any::<u64>()) {
            let ring = SwarmRing::new(ids.clone());
            prop_assert_eq!(ring.nearest(pos), brute_force(&ids, pos));
        }

        #[test]
        fn nearest_matches_brute_force_near_ids(ids in proptest::collection::vec(any::<u64>(), 1..10), pick in any::<prop::sample::Index>(), delta in -3i64..3) {
            let ring = SwarmRing::new(ids.clone());
            let pos = ids[pick.index(ids.len())].wrapping_add_signed(delta);
            prop_assert_eq!(ring.nearest(pos), brute_force(&ids, pos));
        }
    }
}
