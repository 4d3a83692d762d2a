//! Keeping this device's account state and the copy in the account's own
//! swarm in step (`docs/account-sync.md`): fetch every stored copy of a
//! namespace, merge them into this device's state, and store the merged
//! state when the swarm lacks something of it or its copy is getting old.

use std::collections::HashSet;

use allium_common::account::{self, AccountState};
use allium_common::encoding::{Base64Bytes, Hex32, Sig64, from_base64};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, DeleteParams, Namespace, StoreParams};
use serde_json::Value;

use crate::devices::DEVICES;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::messenger::{Messenger, REQUEST_TIMEOUT, owner_retrieve, swarm_refused};

/// The profile's namespace.
pub const PROFILE: Namespace = Namespace(2);
/// The key of the display name.
pub const PROFILE_NAME: &str = "profile/name";
/// The setting that turns read receipts on (bool; off if absent).
pub const READ_RECEIPTS: &str = "settings/read_receipts";
/// The namespaces of the shared state: profile, contacts, conversations.
pub const STATE_NAMESPACES: [Namespace; 3] = [Namespace(2), Namespace(3), Namespace(4)];
/// How long a stored copy lives: the longest a node keeps anything.
pub const STATE_TTL_MS: u64 = rpc::MAX_TTL_MS;
/// A copy older than this is stored again, so the state outlives its TTL
/// while some device runs at least once per TTL.
pub const RESTORE_AFTER_MS: u64 = STATE_TTL_MS / 2;
/// Most pages of copies read per namespace in one sync.
const MAX_PAGES: usize = 8;
/// Most copy hashes remembered per namespace for deleting once superseded
/// (copies beyond it are left to expire).
const MAX_SEEN_COPIES: usize = 256;

/// What one sync did to one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Synced {
    /// The namespace.
    pub namespace: i16,
    /// New copies read from the swarm.
    pub copies: usize,
    /// Copies that could not be opened (another account's, or damaged).
    pub unreadable: usize,
    /// Copies (pages) of the merged state stored.
    pub stored: usize,
    /// Older copies deleted because the stored ones hold all they held.
    pub deleted: usize,
}

/// What [`Messenger::last_node`] calls the reads of the shared state.
const LAST_NODE: &str = "state";

/// The retrieve cursor of `namespace` on `node`.
fn cursor_key(namespace: Namespace, node: &NodeEntry) -> String {
    format!("state{}:{}", namespace.0, hex::encode(node.ed25519.0))
}

/// The setting listing the copies of `namespace` this device read or
/// stored and has not yet deleted.
fn seen_key(namespace: Namespace) -> String {
    format!("state_copies:{}", namespace.0)
}

/// Whether a sync stores the merged state: when this device edited it
/// since its last store, or when the newest copy stored (by any device, at
/// `last_copy_ms`) is older than [`RESTORE_AFTER_MS`], so that the state
/// outlives its TTL while some device syncs at least once per TTL. An
/// empty state is never stored.
pub fn must_store(edited: bool, empty: bool, last_copy_ms: u64, now_ms: u64) -> bool {
    !empty && (edited || now_ms.saturating_sub(last_copy_ms) > RESTORE_AFTER_MS)
}

impl Messenger {
    /// Syncs every namespace of the shared state.
    ///
    /// The first page of every namespace comes in one `batch` request, so
    /// a sync that finds nothing new costs one request.
    pub async fn sync_account(&mut self) -> Result<Vec<Synced>> {
        let mut firsts = self.first_pages().await?;
        let devices_first = firsts.pop();
        let mut out = Vec::new();
        for (namespace, first) in STATE_NAMESPACES.into_iter().zip(firsts) {
            out.push(self.sync_namespace(namespace, Some(first)).await?);
        }
        let report = self.sync_devices(false, devices_first).await?;
        if !report.requests.is_empty() || report.foreign > 0 {
            self.device_notes = Some(report);
        }
        Ok(out)
    }

    /// The first page of copies of every namespace of the shared state,
    /// then of the device records (from this device's cursors), read in
    /// one `batch` from one member; each with the member that answered.
    async fn first_pages(&mut self) -> Result<Vec<(Value, NodeEntry)>> {
        let me = self.home.account_id();
        let make = |home: &Home, node: &NodeEntry, ts: u64| -> Result<Value> {
            let mut calls = STATE_NAMESPACES
                .iter()
                .map(|&ns| Ok(owner_retrieve(home, ns, ts, home.cursor(&cursor_key(ns, node))?, None)))
                .collect::<Result<Vec<Value>>>()?;
            let devices_cursor = home.cursor(&crate::devices::cursor_key(node))?;
            calls.push(owner_retrieve(home, DEVICES, ts, devices_cursor, None));
            Ok(serde_json::json!({"method": "batch", "params": {"requests": calls}}))
        };
        let prefer = self.last_node(LAST_NODE);
        let (status, body, node) = self.call_swarm(&me, &make, prefer).await?;
        if status != 200 {
            return Err(swarm_refused("to list the account state", status, &body));
        }
        self.remember_node(LAST_NODE, &node)?;
        let results = body["results"].as_array().cloned().unwrap_or_default();
        if results.len() != STATE_NAMESPACES.len() + 1 {
            return Err(Error::Network(format!(
                "a swarm member answered {} results to a batch of {}",
                results.len(),
                STATE_NAMESPACES.len() + 1
            )));
        }
        results
            .into_iter()
            .map(|r| match r["code"].as_u64() {
                Some(200) => Ok((r["body"].clone(), node.clone())),
                code => Err(swarm_refused(
                    "to list the account state",
                    code.and_then(|c| u16::try_from(c).ok()).unwrap_or(0),
                    &r["body"],
                )),
            })
            .collect()
    }

    /// Syncs the namespaces this device edited since it last stored them
    /// (what an inbox round learnt: display names, read marks, settings),
    /// so the account's other devices see it at their next round.
    pub async fn sync_edited(&mut self) -> Result<Vec<Synced>> {
        let mut out = Vec::new();
        for namespace in STATE_NAMESPACES {
            let (state, stored_ms) = self.home.account_state(namespace)?;
            if stored_ms.is_none() && !state.is_empty() {
                out.push(self.sync_namespace(namespace, None).await?);
            }
        }
        Ok(out)
    }

    /// The state of `namespace` as this device holds it.
    pub fn account_state(&self, namespace: Namespace) -> Result<AccountState> {
        Ok(self.home.account_state(namespace)?.0)
    }

    /// Edits this device's state of `namespace` with `edit` (given the
    /// stamp to write with); the change reaches the swarm at the next sync.
    pub fn edit_account_state<T>(
        &mut self,
        namespace: Namespace,
        edit: impl FnOnce(&mut AccountState, account::Stamp) -> T,
    ) -> Result<T> {
        let now = self.network_now();
        Ok(self.home.edit_account_state(namespace, now, edit)?)
    }

    /// Reads the copies of `namespace` stored since this device last
    /// looked (a cursor per node; all of them on a node it has not read
    /// from), merges them into this device's state, and stores the merged
    /// state if this device edited it since it last stored it, or if the
    /// newest copy is over [`RESTORE_AFTER_MS`] old. After a store, the
    /// copies it supersedes (those read or stored before: the merged state
    /// holds all they held) are deleted.
    ///
    /// `first` is the first page if it was read already (with the member
    /// that answered it).
    async fn sync_namespace(&mut self, namespace: Namespace, first: Option<(Value, NodeEntry)>) -> Result<Synced> {
        let me = self.home.account_id();
        let mut report = Synced {
            namespace: namespace.0,
            ..Synced::default()
        };
        let mut seen: Vec<String> = self
            .home
            .meta(&seen_key(namespace))?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let mut remote = AccountState::default();
        let mut newest_copy: u64 = 0;
        let mut on = self.last_node(LAST_NODE);
        let mut prefetched = first;
        for _ in 0..MAX_PAGES {
            let (body, node) = match prefetched.take() {
                Some(page) => page,
                None => {
                    let make = move |home: &Home, node: &NodeEntry, ts: u64| -> Result<Value> {
                        Ok(owner_retrieve(
                            home,
                            namespace,
                            ts,
                            home.cursor(&cursor_key(namespace, node))?,
                            None,
                        ))
                    };
                    let (status, body, node) = self.call_swarm(&me, &make, on).await?;
                    if status != 200 {
                        return Err(swarm_refused("to list the account state", status, &body));
                    }
                    self.remember_node(LAST_NODE, &node)?;
                    (body, node)
                }
            };
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
                        if let Some(hash) = m["hash"].as_str().filter(|h| !seen.iter().any(|s| s == h)) {
                            seen.push(hash.to_owned());
                        }
                    }
                    None => report.unreadable += 1,
                }
            }
            if let Some(last) = messages.last().and_then(|m| m["hash"].as_str()) {
                self.home.set_cursor(&cursor_key(namespace, &node), last)?;
            }
            if body["more"] != Value::Bool(true) || messages.is_empty() {
                break;
            }
            on = Some(node.ed25519.0);
        }
        let (local, stored_ms) = self.home.account_state(namespace)?;
        let edited = stored_ms.is_none() && !local.is_empty();
        let mut merged = local;
        merged.merge(&remote);
        let now = self.network_now();
        let last_copy = stored_ms.unwrap_or(0).max(newest_copy);
        if must_store(edited, merged.is_empty(), last_copy, now) {
            let stored = self.store_state(namespace, &merged).await?;
            report.stored = stored.len();
            let superseded: Vec<String> = seen.iter().filter(|h| !stored.contains(h)).cloned().collect();
            if !superseded.is_empty() {
                // Best effort: a copy left behind only costs a later read.
                match self.delete_own(&superseded).await {
                    Ok(deleted) => report.deleted = deleted,
                    Err(e) => tracing::debug!(error = %e, "older account-state copies not deleted"),
                }
            }
            seen = stored;
            self.home.save_account_state(namespace, &merged, Some(now))?;
        } else {
            let known = (last_copy > 0).then_some(last_copy);
            self.home.save_account_state(namespace, &merged, known.or(stored_ms))?;
        }
        // Written only when it changed: most syncs find nothing new.
        if report.copies > 0 || report.stored > 0 {
            let keep = seen.len().saturating_sub(MAX_SEEN_COPIES);
            let text = serde_json::to_string(&seen[keep..]).unwrap_or_default();
            self.home.set_meta(&seen_key(namespace), &text)?;
        }
        Ok(report)
    }

    /// Deletes this account's messages `hashes` from its swarm; returns
    /// how many the node deleted.
    pub(crate) async fn delete_own(&mut self, hashes: &[String]) -> Result<usize> {
        let me = self.home.account_id();
        let mut deleted = 0;
        for chunk in hashes.chunks(rpc::MAX_HASHES) {
            let messages = chunk.to_vec();
            let make = move |home: &Home, _: &NodeEntry, ts: u64| -> Result<Value> {
                let identity = home.identity();
                Ok(Call::Delete(DeleteParams {
                    pubkey: me.into(),
                    pubkey_ed25519: Hex32(*identity.ed25519_pk()),
                    signature: Sig64(identity.sign(&rpc::delete_signed_bytes(ts, &messages))),
                    messages: messages.clone(),
                    timestamp: ts,
                    credential: None,
                })
                .to_json())
            };
            let (status, body, _) = self.call_swarm(&me, &make, None).await?;
            if status != 200 {
                return Err(swarm_refused("to delete messages", status, &body));
            }
            deleted += body["deleted"].as_array().map_or(0, Vec::len);
        }
        Ok(deleted)
    }

    /// Stores `state`, split in pages that each fit a message, sealed and
    /// signed by the owner, in the own swarm; returns the pages' hashes.
    async fn store_state(&mut self, namespace: Namespace, state: &AccountState) -> Result<Vec<String>> {
        let pages = state
            .split(account::sealed::MAX_STATE)
            .map_err(|e| Error::Usage(format!("the account state cannot be stored: {e}")))?;
        let mut hashes = Vec::new();
        for page in pages {
            let encoded = page.encode().map_err(|e| Error::Usage(e.to_string()))?;
            let sealed = account::seal(self.home.identity(), namespace, &encoded)
                .map_err(|e| Error::Usage(format!("the account state cannot be sealed: {e}")))?;
            let hash = self
                .store_owned(namespace, sealed, STATE_TTL_MS, "the account state")
                .await?;
            hashes.push(hash);
        }
        Ok(hashes)
    }

    /// Stores `data` in `namespace` of this account's own swarm, signed by
    /// the owner, for `ttl_ms`; returns its hash. `what` names it in an
    /// error.
    pub(crate) async fn store_owned(
        &mut self,
        namespace: Namespace,
        data: Vec<u8>,
        ttl_ms: u64,
        what: &str,
    ) -> Result<String> {
        let me = self.home.account_id();
        let hash = rpc::message_hash(&me.into(), namespace, &data);
        let data = Base64Bytes(data);
        let signed = hash.clone();
        let make = move |home: &Home, _: &NodeEntry, ts: u64| -> Result<Value> {
            let identity = home.identity();
            Ok(Call::Store(StoreParams {
                chunk: None,
                pubkey: me.into(),
                namespace,
                timestamp: ts,
                ttl: ttl_ms,
                data: data.clone(),
                pubkey_ed25519: Some(Hex32(*identity.ed25519_pk())),
                signature: Some(Sig64(identity.sign(&rpc::store_signed_bytes(namespace, ts, &signed)))),
                credential: None,
            })
            .to_json())
        };
        let (status, body, _) = self.call_swarm(&me, &make, None).await?;
        if status != 200 {
            return Err(swarm_refused(what, status, &body));
        }
        Ok(hash)
    }

    pub(crate) async fn call_swarm(
        &mut self,
        account: &(impl allium_common::swarm::SwarmKey + Sync),
        make: &(dyn Fn(&Home, &NodeEntry, u64) -> Result<Value> + Sync),
        prefer: Option<[u8; 32]>,
    ) -> Result<(u16, Value, NodeEntry)> {
        self.call(account, make, REQUEST_TIMEOUT, prefer, &HashSet::new()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_is_stored_when_edited_or_before_its_copy_expires() {
        let day = 86_400_000;
        let now = 100 * day;
        assert!(must_store(true, false, now, now), "edited");
        assert!(!must_store(false, false, now - day, now), "a fresh copy holds it");
        assert!(!must_store(false, false, now - 7 * day, now), "seven days: not yet");
        assert!(
            must_store(false, false, now - 7 * day - 1, now),
            "older than seven days"
        );
        assert!(must_store(false, false, 0, now), "never stored");
        assert!(
            now - 7 * day - 1 + STATE_TTL_MS > now,
            "stored again while the copy still lives"
        );
        assert!(!must_store(true, true, 0, now), "nothing to store");
    }
}
