//! This device's copy of the account state (`docs/account-sync.md`): the
//! merged state per namespace, and the device's id that stamps its edits.

use allium_common::account::{AccountState, Stamp};
use allium_common::rpc::Namespace;
use allium_common::sodium;
use rusqlite::{OptionalExtension, params};

use super::Home;
use super::error::Result;

/// The setting that holds this device's id (16 random bytes, hex).
const DEVICE_ID_META: &str = "device_id";

impl Home {
    /// This device's id, made on first use. It only tells this device's
    /// edits from another's: it is not secret, and a restore makes a new one.
    pub fn device_id(&mut self) -> Result<[u8; 16]> {
        if let Some(id) = self.meta(DEVICE_ID_META)?
            && let Ok(bytes) = hex::decode(&id)
            && let Ok(id) = <[u8; 16]>::try_from(bytes)
        {
            return Ok(id);
        }
        let id: [u8; 16] = sodium::random_array();
        self.set_meta(DEVICE_ID_META, &hex::encode(id))?;
        Ok(id)
    }

    /// The stamp of an edit this device makes at `now_ms`.
    pub fn stamp(&mut self, now_ms: u64) -> Result<Stamp> {
        Ok(Stamp {
            at: now_ms,
            device: self.device_id()?,
        })
    }

    /// The state of `namespace` (empty if this device has none), and when
    /// a copy was last stored in the swarm.
    pub fn account_state(&self, namespace: Namespace) -> Result<(AccountState, Option<u64>)> {
        let row: Option<(Vec<u8>, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT state, stored_ms FROM account_state WHERE namespace = ?1",
                [i64::from(namespace.0)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.db_err("reading the account state"))?;
        match row {
            None => Ok((AccountState::default(), None)),
            Some((bytes, stored)) => {
                let state = AccountState::decode(&bytes).map_err(|e| self.corrupt("account state", e.to_string()))?;
                Ok((state, stored.and_then(|s| u64::try_from(s).ok())))
            }
        }
    }

    /// Edits the state of `namespace` with `edit`, given the stamp of an
    /// edit made now (`now_ms`, network time); saves it, as not yet stored
    /// in the swarm, if it changed. Returns what `edit` returned.
    pub fn edit_account_state<T>(
        &mut self,
        namespace: Namespace,
        now_ms: u64,
        edit: impl FnOnce(&mut AccountState, Stamp) -> T,
    ) -> Result<T> {
        let stamp = self.stamp(now_ms)?;
        let (mut state, _) = self.account_state(namespace)?;
        let before = state.clone();
        let out = edit(&mut state, stamp);
        if state != before {
            self.save_account_state(namespace, &state, None)?;
        }
        Ok(out)
    }

    /// Saves the state of `namespace`; `stored_ms` is when a copy of
    /// exactly this state was stored in the swarm (`None`: not yet).
    pub fn save_account_state(
        &mut self,
        namespace: Namespace,
        state: &AccountState,
        stored_ms: Option<u64>,
    ) -> Result<()> {
        let bytes = state
            .encode()
            .map_err(|e| self.corrupt("account state", e.to_string()))?;
        let stored = stored_ms.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
        self.conn
            .execute(
                "INSERT INTO account_state (namespace, state, stored_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (namespace) DO UPDATE SET state = excluded.state, stored_ms = excluded.stored_ms",
                params![i64::from(namespace.0), bytes, stored],
            )
            .map_err(self.db_err("saving the account state"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::tests::temp_home;
    use super::*;

    #[test]
    fn the_device_id_is_made_once_and_kept() {
        let (_dir, mut home) = temp_home(3);
        let id = home.device_id().unwrap();
        assert_eq!(home.device_id().unwrap(), id);
        assert_eq!(home.stamp(5).unwrap(), Stamp { at: 5, device: id });
        let (_other_dir, mut other) = temp_home(3);
        assert_ne!(other.device_id().unwrap(), id, "each home is a device of its own");
    }

    #[test]
    fn the_state_of_each_namespace_is_kept_apart_and_round_trips() {
        let (_dir, mut home) = temp_home(4);
        assert_eq!(
            home.account_state(Namespace(2)).unwrap(),
            (AccountState::default(), None)
        );
        let mut profile = AccountState::default();
        let stamp = home.stamp(10).unwrap();
        profile.set("profile/name", json!("Ann"), stamp);
        home.save_account_state(Namespace(2), &profile, None).unwrap();
        let mut contacts = AccountState::default();
        contacts.set("contact/x/nickname", json!("Bo"), stamp);
        home.save_account_state(Namespace(3), &contacts, Some(99)).unwrap();
        assert_eq!(home.account_state(Namespace(2)).unwrap(), (profile.clone(), None));
        assert_eq!(home.account_state(Namespace(3)).unwrap(), (contacts, Some(99)));
        profile.set("profile/name", json!("Ann B"), home.stamp(11).unwrap());
        home.save_account_state(Namespace(2), &profile, Some(12)).unwrap();
        assert_eq!(home.account_state(Namespace(2)).unwrap(), (profile, Some(12)));
    }
}
