//! This device's account keys for envelope v2 (`docs/envelope-v2.md`):
//! when to make a new one, which to publish, which secrets to delete.
//! Pure: the held keys and the time in, a plan out.

use allium_common::keys::KeyId;

const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// A key is current for this long before the next one is made...
pub const ROTATE_EVERY_MS: u64 = 12 * HOUR_MS;
/// ...plus a random part up to this, drawn when the key is made, so a
/// rotation does not mark a device's schedule.
pub const ROTATE_JITTER_MS: u64 = HOUR_MS;
/// The window published for a key: senders may seal to it this long after
/// it starts (they take the newest key, so in practice only until the
/// next one is published and their cached bundle is refreshed).
pub const WINDOW_MS: u64 = 14 * DAY_MS;
/// A secret is deleted this long after the next key started: a sender's
/// bundle is at most 2 days old and a message lives at most 14 days in a
/// swarm, so nothing sealed to the key can arrive later.
pub const RETAIN_MS: u64 = 16 * DAY_MS;
/// How many keys a bundle publishes: the current one and the one before.
pub const PUBLISHED_KEYS: usize = 2;

/// A key this device holds (its secret is in the home).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldKey {
    /// Its id.
    pub key_id: KeyId,
    /// Its window's start, Unix ms (network time).
    pub valid_from_ms: u64,
    /// Its window's end.
    pub valid_until_ms: u64,
    /// When the next key is due.
    pub rotate_at_ms: u64,
}

/// What to do with the keys at a given time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Make a new key first (then plan again).
    pub rotate: bool,
    /// The keys to publish, oldest first.
    pub publish: Vec<KeyId>,
    /// The keys whose secrets must be deleted now.
    pub delete: Vec<KeyId>,
}

/// The plan for `held` at `now_ms`.
pub fn plan(held: &[HeldKey], now_ms: u64) -> Plan {
    let mut keys: Vec<&HeldKey> = held.iter().collect();
    keys.sort_by_key(|k| (k.valid_from_ms, k.key_id));
    let current = keys
        .iter()
        .rev()
        .find(|k| k.valid_from_ms <= now_ms && now_ms < k.valid_until_ms);
    let rotate = current.is_none_or(|k| now_ms >= k.rotate_at_ms);
    // A key is superseded when the next one starts.
    let delete = keys
        .windows(2)
        .filter(|pair| pair[1].valid_from_ms.saturating_add(RETAIN_MS) <= now_ms)
        .map(|pair| pair[0].key_id)
        .collect();
    let live: Vec<KeyId> = keys
        .iter()
        .filter(|k| k.valid_from_ms <= now_ms && now_ms < k.valid_until_ms)
        .map(|k| k.key_id)
        .collect();
    let publish = live[live.len().saturating_sub(PUBLISHED_KEYS)..].to_vec();
    Plan {
        rotate,
        publish,
        delete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8, from: u64) -> HeldKey {
        HeldKey {
            key_id: [n; 8],
            valid_from_ms: from,
            valid_until_ms: from + WINDOW_MS,
            rotate_at_ms: from + ROTATE_EVERY_MS + 30 * 60_000,
        }
    }

    #[test]
    fn a_device_without_keys_makes_one() {
        assert_eq!(
            plan(&[], 1_000),
            Plan {
                rotate: true,
                ..Plan::default()
            }
        );
    }

    #[test]
    fn keys_rotate_after_twelve_hours_and_the_jitter() {
        let t = 100 * DAY_MS;
        let held = [key(1, t)];
        assert!(!plan(&held, t + ROTATE_EVERY_MS).rotate, "the jitter is not over");
        assert!(plan(&held, t + ROTATE_EVERY_MS + 30 * 60_000).rotate);
        assert!(plan(&held, t + WINDOW_MS).rotate, "past its window");
    }

    #[test]
    fn the_current_and_the_previous_key_are_published_oldest_first() {
        let t = 100 * DAY_MS;
        let held = [key(3, t + DAY_MS), key(1, t), key(2, t + DAY_MS / 2)];
        let p = plan(&held, t + DAY_MS + 1);
        assert_eq!(p.publish, vec![[2; 8], [3; 8]]);
        assert!(!p.rotate);
    }

    #[test]
    fn a_secret_goes_sixteen_days_after_the_next_key_started_and_not_before() {
        let t = 100 * DAY_MS;
        let held = [key(1, t), key(2, t + DAY_MS / 2), key(3, t + DAY_MS)];
        assert!(plan(&held, t + DAY_MS / 2 + RETAIN_MS - 1).delete.is_empty());
        assert_eq!(plan(&held, t + DAY_MS / 2 + RETAIN_MS).delete, vec![[1; 8]]);
        assert_eq!(plan(&held, t + DAY_MS + RETAIN_MS).delete, vec![[1; 8], [2; 8]]);
        assert!(
            !plan(&held, t + 100 * DAY_MS).delete.contains(&[3; 8]),
            "the newest key is never deleted, however old"
        );
    }
}
