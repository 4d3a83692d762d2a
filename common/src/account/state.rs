//! The account state devices share: a map from keys to values where each
//! key is a last-writer-wins register, stamped with the writer's clock and
//! device. Merging two states takes, key by key, the entry with the larger
//! stamp, so merging is commutative, associative and idempotent (property
//! tests below): devices that exchange their states in any order, any
//! number of times, end with the same state, and an edit to one key is
//! never lost because another device edited another key at the same time.
//! Two edits of one key keep the later (ties: the larger device id, then
//! the larger value), the same on every device. A removal is an entry
//! without a value (a tombstone), so it wins over older edits too. Keys
//! this version does not know are kept and passed on.
//!
//! Keys are paths: `profile/name`, `contact/<account id>/nickname`,
//! `contact/<account id>/blocked`, `convo/<account id>/last_read`, ... (see
//! `docs/account-sync.md`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 200;
/// Most entries one state holds (tombstones included).
pub const MAX_ENTRIES: usize = 20_000;
/// Largest encoded state, in bytes (before padding and encryption).
pub const MAX_ENCODED_LEN: usize = 4 * 1024 * 1024;

/// When and where an entry was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    /// The writer's clock, Unix ms.
    pub at: u64,
    /// The writing device's random id.
    #[serde(with = "hex16")]
    pub device: [u8; 16],
}

/// One key's register.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// When it was written.
    pub stamp: Stamp,
    /// The value; `None` marks a removal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

impl Entry {
    /// The order merging keeps the larger of: stamp, then the value's
    /// canonical text (so even two writes with one stamp merge the same
    /// way everywhere).
    fn rank(&self) -> (Stamp, String) {
        (
            self.stamp,
            self.value.as_ref().map(Value::to_string).unwrap_or_default(),
        )
    }
}

/// Why a state was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Not JSON of the expected shape.
    #[error("malformed account state: {0}")]
    Malformed(String),
    /// A key or the whole state is over its limit.
    #[error("account state over its limits: {0}")]
    TooLarge(String),
}

/// The state: key → register.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AccountState {
    entries: BTreeMap<String, Entry>,
}

impl AccountState {
    /// The value of `key`, if set and not removed.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.get(key).and_then(|e| e.value.as_ref())
    }

    /// The entry of `key`, tombstones included.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries.get(key)
    }

    /// Sets `key` to `value` as written at `stamp`; says whether it took
    /// (a later write of the key wins over this one).
    pub fn set(&mut self, key: &str, value: Value, stamp: Stamp) -> bool {
        self.write(
            key,
            Entry {
                stamp,
                value: Some(value),
            },
        )
    }

    /// Removes `key` as of `stamp` (a tombstone).
    pub fn remove(&mut self, key: &str, stamp: Stamp) -> bool {
        self.write(key, Entry { stamp, value: None })
    }

    fn write(&mut self, key: &str, entry: Entry) -> bool {
        match self.entries.get(key) {
            Some(held) if held.rank() >= entry.rank() => false,
            _ => {
                self.entries.insert(key.to_owned(), entry);
                true
            }
        }
    }

    /// Takes from `other` every entry newer than this state's.
    pub fn merge(&mut self, other: &Self) {
        for (key, entry) in &other.entries {
            self.write(key, entry.clone());
        }
    }

    /// The live keys under `prefix` with their values.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        self.entries
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter_map(|(k, e)| Some((k.as_str(), e.value.as_ref()?)))
    }

    /// Entries, tombstones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has no entry at all.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Splits the state, in key order, into parts whose encodings are at
    /// most `max_len` bytes each; merging the parts gives the state back.
    /// A state that fits is one part (an empty state is none). Fails if a
    /// single entry does not fit.
    pub fn split(&self, max_len: usize) -> Result<Vec<Self>, StateError> {
        self.check()?;
        let mut parts = Vec::new();
        let mut part = Self::default();
        // `{}`, then `"key":entry` with a comma between entries.
        let mut len = 2;
        for (key, entry) in &self.entries {
            let one = serde_json::to_string(key)
                .map_err(|e| StateError::Malformed(e.to_string()))?
                .len()
                + 1
                + serde_json::to_string(entry)
                    .map_err(|e| StateError::Malformed(e.to_string()))?
                    .len();
            if 2 + one > max_len {
                return Err(StateError::TooLarge(format!("the entry {key:?} alone is {one} bytes")));
            }
            let added = one + usize::from(!part.is_empty());
            if len + added > max_len {
                parts.push(std::mem::take(&mut part));
                len = 2;
            }
            len += one + usize::from(!part.is_empty());
            part.entries.insert(key.clone(), entry.clone());
        }
        if !part.is_empty() {
            parts.push(part);
        }
        Ok(parts)
    }

    /// Canonical JSON (keys sorted).
    pub fn encode(&self) -> Result<Vec<u8>, StateError> {
        self.check()?;
        let bytes = serde_json::to_vec(self).map_err(|e| StateError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(StateError::TooLarge(format!("{} bytes", bytes.len())));
        }
        Ok(bytes)
    }

    /// Reads what [`AccountState::encode`] wrote, checking the limits.
    pub fn decode(bytes: &[u8]) -> Result<Self, StateError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(StateError::TooLarge(format!("{} bytes", bytes.len())));
        }
        let state: Self = serde_json::from_slice(bytes).map_err(|e| StateError::Malformed(e.to_string()))?;
        state.check()?;
        Ok(state)
    }

    fn check(&self) -> Result<(), StateError> {
        if self.entries.len() > MAX_ENTRIES {
            return Err(StateError::TooLarge(format!("{} entries", self.entries.len())));
        }
        match self.entries.keys().find(|k| k.is_empty() || k.len() > MAX_KEY_LEN) {
            Some(k) => Err(StateError::TooLarge(format!("a key of {} bytes", k.len()))),
            None => Ok(()),
        }
    }
}

mod hex16 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 16], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 16], D::Error> {
        let text = String::deserialize(d)?;
        let bytes = hex::decode(&text).map_err(serde::de::Error::custom)?;
        bytes
            .try_into()
            .map_err(|_| serde::de::Error::custom("a device id is 16 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn stamp(at: u64, device: u8) -> Stamp {
        Stamp {
            at,
            device: [device; 16],
        }
    }

    #[test]
    fn concurrent_edits_of_different_keys_both_survive() {
        let mut phone = AccountState::default();
        let mut laptop = AccountState::default();
        phone.set("contact/05aa/nickname", json!("Ann"), stamp(10, 1));
        laptop.set("profile/name", json!("Bo"), stamp(10, 2));
        let (mut a, mut b) = (phone.clone(), laptop.clone());
        a.merge(&laptop);
        b.merge(&phone);
        assert_eq!(a, b);
        assert_eq!(a.get("contact/05aa/nickname"), Some(&json!("Ann")));
        assert_eq!(a.get("profile/name"), Some(&json!("Bo")));
    }

    #[test]
    fn the_later_write_and_a_later_removal_win() {
        let mut s = AccountState::default();
        assert!(s.set("profile/name", json!("old"), stamp(10, 1)));
        assert!(
            !s.set("profile/name", json!("older"), stamp(9, 9)),
            "an older write is ignored"
        );
        assert!(s.remove("profile/name", stamp(11, 1)));
        assert_eq!(s.get("profile/name"), None);
        assert!(
            !s.set("profile/name", json!("stale"), stamp(10, 2)),
            "the removal is newer"
        );
        assert!(s.set("profile/name", json!("new"), stamp(12, 2)));
        assert_eq!(s.get("profile/name"), Some(&json!("new")));
    }

    #[test]
    fn unknown_keys_travel_and_limits_hold() {
        let mut s = AccountState::default();
        s.set("future/thing", json!({"x": 1}), stamp(1, 1));
        let back = AccountState::decode(&s.encode().unwrap()).unwrap();
        assert_eq!(back, s);
        s.set(&"k".repeat(MAX_KEY_LEN + 1), json!(1), stamp(1, 1));
        assert!(s.encode().is_err());
        assert!(AccountState::decode(b"{\"a\": {\"stamp\": 1}}").is_err());
    }

    fn arb_state() -> impl Strategy<Value = AccountState> {
        proptest::collection::vec((0u8..6, 0u64..5, 0u8..3, proptest::option::of(0u8..3)), 0..12).prop_map(|ops| {
            let mut s = AccountState::default();
            for (key, at, device, value) in ops {
                let key = format!("k{key}");
                match value {
                    Some(v) => s.set(&key, json!(v), stamp(at, device)),
                    None => s.remove(&key, stamp(at, device)),
                };
            }
            s
        })
    }

    fn merged(a: &AccountState, b: &AccountState) -> AccountState {
        let mut out = a.clone();
        out.merge(b);
        out
    }

    proptest! {
        #[test]
        fn merging_is_commutative_associative_and_idempotent(a in arb_state(), b in arb_state(), c in arb_state()) {
            prop_assert_eq!(merged(&a, &b), merged(&b, &a));
            prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
            prop_assert_eq!(merged(&a, &a), a.clone());
            let ab = merged(&a, &b);
            prop_assert_eq!(merged(&ab, &b), ab.clone());
        }

        #[test]
        fn split_parts_fit_and_merge_back(a in arb_state(), max in 60usize..400) {
            match a.split(max) {
                Ok(parts) => {
                    let mut back = AccountState::default();
                    for p in &parts {
                        prop_assert!(!p.is_empty());
                        let len = p.encode().unwrap().len();
                        prop_assert!(len <= max, "a part of {} bytes", len);
                        back.merge(p);
                    }
                    prop_assert_eq!(back, a);
                }
                Err(_) => {
                    let too_big = a.entries.iter().any(|(k, e)| {
                        serde_json::to_string(k).unwrap().len() + 3 + serde_json::to_string(e).unwrap().len() > max
                    });
                    prop_assert!(too_big);
                }
            }
        }

        #[test]
        fn encoding_round_trips(a in arb_state()) {
            prop_assert_eq!(AccountState::decode(&a.encode().unwrap()).unwrap(), a);
        }
    }
}
