//! Keeping this device's account state and the copy in the account's own
//! swarm in step (`docs/account-sync.md`): fetch every stored copy of a
//! namespace, merge them into this device's state, and store the merged
//! state when the swarm lacks something of it or its copy is getting old.

use std::collections::HashSet;

use allium_common::account::{self, AccountState};
use allium_common::encoding::{Base64Bytes, Hex32, Sig64, from_base64};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, Namespace, StoreParams};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::home::Home;
use crate::messenger::{Messenger, REQUEST_TIMEOUT, owner_retrieve, swarm_refused};

/// The profile's namespace.
pub const PROFILE: Namespace = Namespace(2);
/// The key of the display name.
pub const PROFILE_NAME: &str = "profile/name";
/// The namespaces of the shared state: profile, contacts, conversations.
pub const STATE_NAMESPACES: [Namespace; 3] = [Namespace(2), Namespace(3), Namespace(4)];
/// How long a stored copy lives: the longest a node keeps anything.
pub const STATE_TTL_MS: u64 = rpc::MAX_TTL_MS;
/// A copy older than this is stored again, so the state outlives its TTL
/// while some device runs at least once per TTL.
pub const RESTORE_AFTER_MS: u64 = STATE_TTL_MS / 2;
/// Most pages of copies read per namespace.
const MAX_PAGES: usize = 8;

/// What one sync did to one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Synced {
    /// The namespace.
    pub namespace: i16,
    /// Copies read from the swarm.
    pub copies: usize,
    /// Copies that could not be opened (another account's, or damaged).
    pub unreadable: usize,
    /// Whether the merged state was stored.
    pub stored: bool,
}

impl Messenger {
    /// Syncs every namespace of the shared state.
    pub async fn sync_account(&mut self) -> Result<Vec<Synced>> {
        let mut out = Vec::new();
        for namespace in STATE_NAMESPACES {
            out.push(self.sync_namespace(namespace).await?);
        }
        Ok(out)
    }

    /// The state of `namespace` as this device holds it.
    pub fn account_state(&self, namespace: Namespace) -> Result<AccountState> {
        Ok(self.home.account_state(namespace)?.0)
    }

    /// Edits this device's state of `namespace` with `edit` (given the
    /// stamp to write with); the change reaches the swarm at the next sync.
    pub fn edit_account_state(
        &mut self,
        namespace: Namespace,
        edit: impl FnOnce(&mut AccountState, account::Stamp),
    ) -> Result<()> {
        let now = self.network_now();
        let stamp = self.home.stamp(now)?;
        let (mut state, _) = self.home.account_state(namespace)?;
        edit(&mut state, stamp);
        self.home.save_account_state(namespace, &state, None)?;
        Ok(())
    }

    async fn sync_namespace(&mut self, namespace: Namespace) -> Result<Synced> {
        let me = self.home.account_id();
        let mut report = Synced {
            namespace: namespace.0,
            ..Synced::default()
        };
        // Every copy the swarm holds, merged.
        let mut remote = AccountState::default();
        let mut newest_copy: u64 = 0;
        let mut last_hash: Option<String> = None;
        let mut on: Option<[u8; 32]> = None;
        for _ in 0..MAX_PAGES {
            let cursor = last_hash.clone();
            let make = move |home: &Home, _: &NodeEntry, ts: u64| -> Result<Value> {
                Ok(owner_retrieve(home, namespace, ts, cursor.clone(), None))
            };
            let (status, body, node) = self.call_swarm(&me, &make, on).await?;
            if status != 200 {
                return Err(swarm_refused("to list the account state", status, &body));
            }
            let messages = body["messages"].as_array().cloned().unwrap_or_default();
            for m in &messages {
                report.copies += 1;
                let opened = m["data"]
                    .as_str()
                    .and_then(|d| from_base64(d).ok())
                    .and_then(|sealed| account::open(self.home.identity(), namespace, &sealed).ok())
                    .and_then(|bytes| AccountState::decode(&bytes).ok());
                match opened {
                    Some(state) => {
                        remote.merge(&state);
                        newest_copy = newest_copy.max(m["timestamp"].as_u64().unwrap_or(0));
                    }
                    None => report.unreadable += 1,
                }
            }
            last_hash = messages.last().and_then(|m| m["hash"].as_str()).map(str::to_owned);
            if body["more"] != Value::Bool(true) || messages.is_empty() {
                break;
            }
            on = Some(node.ed25519.0);
        }
        let (local, _) = self.home.account_state(namespace)?;
        let mut merged = local;
        merged.merge(&remote);
        let now = self.network_now();
        let lacking = merged != remote;
        let aging = !merged.is_empty() && now.saturating_sub(newest_copy) > RESTORE_AFTER_MS;
        let mut stored_ms = None;
        if lacking || aging {
            self.store_state(namespace, &merged).await?;
            report.stored = true;
            stored_ms = Some(now);
        } else if newest_copy > 0 {
            stored_ms = Some(newest_copy);
        }
        self.home.save_account_state(namespace, &merged, stored_ms)?;
        Ok(report)
    }

    /// Stores `state`, sealed and signed by the owner, in the own swarm.
    async fn store_state(&mut self, namespace: Namespace, state: &AccountState) -> Result<()> {
        let me = self.home.account_id();
        let encoded = state.encode().map_err(|e| Error::Network(e.to_string()))?;
        let sealed =
            account::seal(self.home.identity(), namespace, &encoded).map_err(|e| Error::Network(e.to_string()))?;
        let hash = rpc::message_hash(&me, namespace, &sealed);
        let data = Base64Bytes(sealed);
        let make = move |home: &Home, _: &NodeEntry, ts: u64| -> Result<Value> {
            let identity = home.identity();
            Ok(Call::Store(StoreParams {
                pubkey: me,
                namespace,
                timestamp: ts,
                ttl: STATE_TTL_MS,
                data: data.clone(),
                pubkey_ed25519: Some(Hex32(*identity.ed25519_pk())),
                signature: Some(Sig64(identity.sign(&rpc::store_signed_bytes(namespace, ts, &hash)))),
            })
            .to_json())
        };
        let (status, body, _) = self.call_swarm(&me, &make, None).await?;
        if status != 200 {
            return Err(swarm_refused("the account state", status, &body));
        }
        Ok(())
    }

    async fn call_swarm(
        &mut self,
        account: &allium_common::AccountId,
        make: &(dyn Fn(&Home, &NodeEntry, u64) -> Result<Value> + Sync),
        prefer: Option<[u8; 32]>,
    ) -> Result<(u16, Value, NodeEntry)> {
        self.call(account, make, REQUEST_TIMEOUT, prefer, &HashSet::new()).await
    }
}
