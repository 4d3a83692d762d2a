//! Per-conversation state every device of the account shares (namespace
//! 4, `docs/account-sync.md`): how far the account has read each
//! conversation, and whether it is muted. Pure: read from an
//! [`AccountState`], written as keys of it.

use std::collections::BTreeMap;

use allium_common::AccountId;
use allium_common::account::{AccountState, Stamp};
use allium_common::rpc::Namespace;
use serde_json::Value;

/// The conversations' namespace.
pub const CONVERSATIONS: Namespace = Namespace(4);
/// The newest sender time (Unix ms) of a message the account has seen in
/// the conversation.
pub const LAST_READ: &str = "last_read";
/// The conversation's messages are kept but not shown by `inbox`/`watch`.
pub const MUTED: &str = "muted";

/// The state key of `field` of the conversation with `with`.
pub fn key(with: &AccountId, field: &str) -> String {
    format!("convo/{with}/{field}")
}

/// One conversation's shared state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Messages sent at or before this were seen on some device.
    pub last_read_ms: Option<u64>,
    /// Not shown by `inbox`/`watch`.
    pub muted: bool,
}

/// Every conversation with shared state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversations(BTreeMap<AccountId, Conversation>);

impl Conversations {
    /// The conversations the state describes (values of the wrong type are
    /// ignored).
    pub fn from_state(state: &AccountState) -> Self {
        let mut out: BTreeMap<AccountId, Conversation> = BTreeMap::new();
        for (key, value) in state.with_prefix("convo/") {
            let Some((with, field)) = key
                .strip_prefix("convo/")
                .and_then(|rest| rest.split_once('/'))
                .and_then(|(id, field)| Some((id.parse::<AccountId>().ok()?, field)))
            else {
                continue;
            };
            let c = out.entry(with).or_default();
            match field {
                LAST_READ => c.last_read_ms = value.as_u64(),
                MUTED => c.muted = value.as_bool().unwrap_or(false),
                _ => {}
            }
        }
        Self(out)
    }

    /// The state of the conversation with `with`.
    pub fn get(&self, with: &AccountId) -> Conversation {
        self.0.get(with).copied().unwrap_or_default()
    }

    /// Whether a message sent at `sent_ms` by `from` was seen on some
    /// device already.
    pub fn was_read(&self, from: &AccountId, sent_ms: u64) -> bool {
        self.get(from).last_read_ms.is_some_and(|read| sent_ms <= read)
    }
}

/// Moves the conversation with `with` read up to `sent_ms`, if that is
/// further than the state says; returns whether it changed.
pub fn mark_read(state: &mut AccountState, with: &AccountId, sent_ms: u64, stamp: Stamp) -> bool {
    let key = key(with, LAST_READ);
    if state
        .get(&key)
        .and_then(Value::as_u64)
        .is_some_and(|held| held >= sent_ms)
    {
        return false;
    }
    state.set(&key, Value::from(sent_ms), stamp)
}

/// Mutes or unmutes the conversation with `with`.
pub fn set_muted(state: &mut AccountState, with: &AccountId, muted: bool, stamp: Stamp) {
    let key = key(with, MUTED);
    if muted {
        state.set(&key, Value::Bool(true), stamp);
    } else {
        state.remove(&key, stamp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(n: u8) -> AccountId {
        AccountId::from_x25519([n; 32])
    }

    fn stamp(at: u64) -> Stamp {
        Stamp { at, device: [1; 16] }
    }

    #[test]
    fn read_marks_only_move_forward_and_mutes_toggle() {
        let mut s = AccountState::default();
        assert!(mark_read(&mut s, &account(1), 100, stamp(1)));
        assert!(!mark_read(&mut s, &account(1), 90, stamp(2)), "never backwards");
        assert!(mark_read(&mut s, &account(1), 120, stamp(3)));
        set_muted(&mut s, &account(2), true, stamp(4));
        let c = Conversations::from_state(&s);
        assert!(c.was_read(&account(1), 120) && !c.was_read(&account(1), 121));
        assert!(!c.was_read(&account(2), 1));
        assert!(c.get(&account(2)).muted && !c.get(&account(1)).muted);
        set_muted(&mut s, &account(2), false, stamp(5));
        assert!(!Conversations::from_state(&s).get(&account(2)).muted);
    }
}
