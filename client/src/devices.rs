//! The account's devices (`docs/devices.md`): this device's own keys, the
//! devices it trusts, link requests and approvals, and the key shares
//! that let every linked device open envelope v2 messages.
//!
//! Everything lives in namespace −22 of the account's own swarm, each
//! record signed by a device key and sealed with the account's state key.
//! Trust is this device's: the devices it approved, the device that
//! approved it, and the devices on lists those devices signed. A record
//! signed by any other device (a phrase thief's, say) is counted and
//! reported, never followed.

use std::collections::HashSet;

use allium_common::account;
use allium_common::devices::{
    DeviceKeys, DeviceRecord, DeviceSecret, KeyShare, MAX_DEVICES, ShareWindow, UnverifiedRecord, VerifiedRecord,
    device_id, link_code,
};
use allium_common::encoding::from_base64;
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Namespace};
use allium_common::sodium;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::home::{Home, TrustedDevice};
use crate::messenger::{Messenger, owner_retrieve, swarm_refused};

/// The namespace of device records: written and read by the owner only.
pub const DEVICES: Namespace = Namespace(-22);
/// How long a link request waits for approval (Session V2's 10 minutes).
pub const LINK_REQUEST_TTL_MS: u64 = 10 * 60_000;
/// A device's list is stored again when this old (it lives 14 days).
const RESTORE_LIST_AFTER_MS: u64 = 7 * 24 * 3_600_000;
/// Most pages of records read in one pass.
const MAX_PAGES: usize = 8;
/// The setting holding this device's stored list: its hash, when, and the
/// devices on it.
const LIST_META: &str = "device_list_stored";
/// The name of a device that was given none.
pub const DEFAULT_NAME: &str = "device";

/// A device asking to be linked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLink {
    /// Its keys and name.
    pub keys: DeviceKeys,
    /// The six digits both devices show.
    pub code: u32,
    /// When it asked (network time, Unix ms).
    pub asked_ms: u64,
    hash: String,
}

/// What a pass over the device records found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceReport {
    /// Records read.
    pub records: usize,
    /// Records that could not be opened or did not verify.
    pub unreadable: usize,
    /// Devices asking to be linked (not trusted yet).
    pub requests: Vec<PendingLink>,
    /// Account key secrets received from other devices.
    pub imported: usize,
    /// Devices newly trusted.
    pub newly_trusted: usize,
    /// Records signed by devices this one does not trust: lists, or shares
    /// for this device (someone else who holds the phrase, or a device
    /// that was linked by another one this device never heard of).
    pub foreign: usize,
    /// The device that linked this one, if this pass linked it.
    pub linked_by: Option<DeviceKeys>,
    /// Devices taken off the account by a trusted device in this pass.
    pub removed: usize,
    /// This device was taken off the account (its keys are deleted).
    pub removed_self: bool,
}

/// A record as read from the swarm.
struct Read {
    hash: String,
    timestamp: u64,
    record: VerifiedRecord,
}

/// The six digits of a link code, as shown: `123 456`.
pub fn fmt_code(code: u32) -> String {
    format!("{:03} {:03}", code / 1000, code % 1000)
}

impl Messenger {
    /// This device's keys, made (named `name`) if it has none yet.
    pub fn device(&mut self, name: Option<&str>) -> Result<DeviceSecret> {
        if let Some(device) = self.home.device_secret()? {
            return Ok(device);
        }
        let made = DeviceSecret::generate(name.unwrap_or(DEFAULT_NAME), self.network_now());
        Ok(self.home.keep_device_secret(&made)?)
    }

    /// Whether this device is on the account's list (the first device, or
    /// linked by another).
    pub fn is_linked(&self) -> Result<bool> {
        let Some(me) = self.home.device_secret()? else {
            return Ok(false);
        };
        Ok(self
            .home
            .trusted_devices()?
            .iter()
            .any(|d| d.keys.sign_pk == me.keys().sign_pk))
    }

    /// Whether another device took this one off the account.
    pub fn was_removed(&self) -> Result<bool> {
        match self.home.device_secret()? {
            Some(me) => Ok(self.home.is_removed(&me.keys().sign_pk)?),
            None => Ok(false),
        }
    }

    /// What the last account sync saw of the device records that the
    /// user should hear of: link requests waiting, or records signed by a
    /// device this one does not trust.
    pub fn take_device_notes(&mut self) -> Option<DeviceReport> {
        self.device_notes.take()
    }

    /// The devices this one trusts.
    pub fn devices(&self) -> Result<Vec<TrustedDevice>> {
        Ok(self.home.trusted_devices()?)
    }

    /// Reads every device record (`full`) or the new ones since the last
    /// pass on the answering member (`first` may hold that page, read in
    /// the account sync's batch), and acts on them: trusts what trusted
    /// devices vouch for, imports the key shares sealed to this device,
    /// lists link requests, and keeps this device's own list stored.
    pub async fn sync_devices(&mut self, full: bool, first: Option<(Value, NodeEntry)>) -> Result<DeviceReport> {
        let (reads, unreadable) = self.read_records(full, first).await?;
        let mut report = DeviceReport {
            records: reads.len() + unreadable,
            unreadable,
            ..DeviceReport::default()
        };
        let Some(me) = self.home.device_secret()? else {
            // No device keys: nothing can be for this device; only show
            // requests (an unlinked home can still see them).
            report.requests = self.pending(&reads, &HashSet::new());
            return Ok(report);
        };
        let my_pk = me.keys().sign_pk;
        let now = self.network_now();
        if self.home.is_removed(&my_pk)? {
            self.forget_keys()?;
            report.removed_self = true;
            return Ok(report);
        }
        let mut trusted: HashSet<[u8; 32]> = self.home.trusted_devices()?.iter().map(|d| d.keys.sign_pk).collect();
        if !trusted.contains(&my_pk)
            && let Some((signer, devices)) = reads.iter().find_map(|r| match &r.record.record {
                DeviceRecord::List { devices, .. } if devices.iter().any(|d| d == me.keys()) => {
                    Some((r.record.signer, devices.clone()))
                }
                _ => None,
            })
        {
            // Linked: the first list that names this device's exact keys.
            // Its signer is trusted from now on (docs/devices.md says why
            // first-come is acceptable and what it risks).
            report.newly_trusted += self.home.trust_devices(&devices, Some(signer), now)?;
            trusted = self.home.trusted_devices()?.iter().map(|d| d.keys.sign_pk).collect();
            report.linked_by = devices.iter().find(|d| d.sign_pk == signer).cloned();
        }
        // What trusted devices say, until nothing new is learnt: removals
        // first (a removed device is never trusted again), then lists.
        loop {
            let mut added = 0;
            for r in &reads {
                if let DeviceRecord::Removal { device, .. } = &r.record.record
                    && trusted.contains(&r.record.signer)
                    && self.home.remove_device(device, &r.record.signer, now)?
                {
                    trusted.remove(device);
                    report.removed += 1;
                }
            }
            if self.home.is_removed(&my_pk)? {
                self.forget_keys()?;
                report.removed_self = true;
                return Ok(report);
            }
            for r in &reads {
                if let DeviceRecord::List { devices, .. } = &r.record.record
                    && trusted.contains(&r.record.signer)
                {
                    let new: Vec<DeviceKeys> = devices
                        .iter()
                        .filter(|d| !trusted.contains(&d.sign_pk))
                        .cloned()
                        .collect();
                    added += self.home.trust_devices(&new, Some(r.record.signer), now)?;
                    trusted.extend(new.iter().map(|d| d.sign_pk));
                }
            }
            report.newly_trusted += added;
            if added == 0 {
                break;
            }
        }
        let mut done = Vec::new();
        for r in &reads {
            match &r.record.record {
                DeviceRecord::List { .. } if !trusted.contains(&r.record.signer) => report.foreign += 1,
                DeviceRecord::Share(share) if share.to == my_pk => {
                    if !trusted.contains(&r.record.signer) {
                        report.foreign += 1;
                        continue;
                    }
                    match self.import_share(share, &me)? {
                        Some(imported) => {
                            report.imported += usize::from(imported);
                            done.push(r.hash.clone());
                        }
                        None => report.unreadable += 1,
                    }
                }
                _ => {}
            }
        }
        report.requests = self.pending(&reads, &trusted);
        if !done.is_empty()
            && let Err(e) = self.delete_own(&done).await
        {
            tracing::debug!(error = %e, "imported key shares stay until they expire");
        }
        if trusted.contains(&my_pk) {
            self.keep_list_stored(&me, false).await?;
        }
        Ok(report)
    }

    /// Makes this device the account's first: it trusts itself and stores
    /// its list. Refused when the account already has devices (this one
    /// must be linked by one of them instead), unless `force`: when every
    /// device is lost, a restored home starts a new list.
    pub async fn become_first_device(&mut self, force: bool) -> Result<DeviceSecret> {
        let me = self.device(None)?;
        if self.is_linked()? {
            return Ok(me);
        }
        if self.was_removed()? {
            return Err(Error::Usage(
                "this device was removed from the account by another of its devices; a new home (restored from \
                 the phrase) can be linked again"
                    .to_owned(),
            ));
        }
        let report = self.sync_devices(true, None).await?;
        if self.is_linked()? {
            return Ok(me);
        }
        if report.foreign > 0 && !force {
            return Err(Error::Usage(
                "this account already has devices that use forward secrecy: link this one with \
                 `allium devices link` and approve it on one of them (or, if every one of them is lost, \
                 start again with `allium devices reset`)"
                    .to_owned(),
            ));
        }
        self.home
            .trust_devices(&[me.keys().clone()], None, self.network_now())?;
        self.keep_list_stored(&me, true).await?;
        Ok(me)
    }

    /// Asks to link this device (named `name`) to the account: stores a
    /// link request that expires after [`LINK_REQUEST_TTL_MS`]; returns
    /// the device's keys and the code both devices show.
    pub async fn request_link(&mut self, name: Option<&str>) -> Result<(DeviceKeys, u32)> {
        if self.is_linked()? {
            return Err(Error::Usage(
                "this device is linked already (`allium devices`)".to_owned(),
            ));
        }
        if self.was_removed()? {
            return Err(Error::Usage(
                "this device was removed from the account; link a new home (restored from the phrase) instead"
                    .to_owned(),
            ));
        }
        let me = self.device(name)?;
        let account = self.home.account_id();
        let record = DeviceRecord::LinkRequest(me.keys().clone());
        self.store_record(&me, &record, LINK_REQUEST_TTL_MS, "the link request")
            .await?;
        Ok((me.keys().clone(), link_code(&account, me.keys())))
    }

    /// Approves the pending link request of the device whose id starts
    /// with `id_prefix` (hex): trusts it, stores this device's list with
    /// it, and shares every account key this device holds with it.
    /// Returns the device and how many keys were shared.
    pub async fn approve_link(&mut self, id_prefix: &str) -> Result<(PendingLink, usize)> {
        let me = self.become_first_device(false).await?;
        let report = self.sync_devices(true, None).await?;
        let request = by_id_prefix(
            report.requests,
            id_prefix,
            |p| &p.keys,
            "pending link request from a device",
        )
        .map_err(|e| match e {
            Error::Usage(why) => Error::Usage(format!(
                "{why} (requests expire after 10 minutes: `allium devices` lists them)"
            )),
            other => other,
        })?;
        if self.home.is_removed(&request.keys.sign_pk)? {
            return Err(Error::Usage(format!(
                "device {} was removed from the account and is not linked again",
                fmt_device_id(&request.keys.sign_pk)
            )));
        }
        if self.home.trusted_devices()?.len() >= MAX_DEVICES {
            return Err(Error::Usage(format!("an account has at most {MAX_DEVICES} devices")));
        }
        self.home.trust_devices(
            std::slice::from_ref(&request.keys),
            Some(me.keys().sign_pk),
            self.network_now(),
        )?;
        self.keep_list_stored(&me, true).await?;
        let mut shared = 0;
        for held in self.home.account_keys()? {
            shared += self.share_key(&me, &request.keys, &held.key_id).await?;
        }
        if let Err(e) = self.delete_own(std::slice::from_ref(&request.hash)).await {
            tracing::debug!(error = %e, "the approved link request stays until it expires");
        }
        Ok((request, shared))
    }

    /// Takes the device whose id starts with `id_prefix` (hex) off the
    /// account: this device stops trusting it, stores the removal (so the
    /// account's other devices follow) and its list without it, and
    /// rotates at once, sharing the new key with the devices that stay.
    /// Returns the removed device and how many devices got the new key.
    pub async fn remove_device(&mut self, id_prefix: &str) -> Result<(TrustedDevice, usize)> {
        if !self.is_linked()? {
            return Err(Error::Usage(
                "this device is not linked: it cannot remove others".to_owned(),
            ));
        }
        let me = self.device(None)?;
        let device = by_id_prefix(
            self.home.trusted_devices()?,
            id_prefix,
            |d| &d.keys,
            "device of this account",
        )?;
        if device.keys.sign_pk == me.keys().sign_pk {
            return Err(Error::Usage(
                "this is this device: remove it from another one of the account's devices".to_owned(),
            ));
        }
        let now = self.network_now();
        self.home.remove_device(&device.keys.sign_pk, &me.keys().sign_pk, now)?;
        let record = DeviceRecord::Removal {
            device: device.keys.sign_pk,
            removed_ms: now,
        };
        self.store_record(&me, &record, rpc::MAX_TTL_MS, "the removal").await?;
        self.keep_list_stored(&me, true).await?;
        let published = self.publish_keys(true).await?;
        Ok((device, published.shared))
    }

    /// Shares the account key `key_id` with every trusted device but this
    /// one (after a rotation); returns how many shares were stored.
    pub(crate) async fn share_with_devices(&mut self, key_id: &allium_common::keys::KeyId) -> Result<usize> {
        let Some(me) = self.home.device_secret()? else {
            return Ok(0);
        };
        let mut shared = 0;
        for d in self.home.trusted_devices()? {
            if d.keys.sign_pk != me.keys().sign_pk {
                shared += self.share_key(&me, &d.keys, key_id).await?;
            }
        }
        Ok(shared)
    }

    /// Seals the held key `key_id` to `to` and stores the share.
    async fn share_key(
        &mut self,
        me: &DeviceSecret,
        to: &DeviceKeys,
        key_id: &allium_common::keys::KeyId,
    ) -> Result<usize> {
        let held = self.home.account_keys()?;
        let (Some(pair), Some(h)) = (
            self.home.account_key(key_id)?,
            held.iter().find(|k| k.key_id == *key_id),
        ) else {
            return Ok(0);
        };
        let window = ShareWindow {
            valid_from_ms: h.valid_from_ms,
            valid_until_ms: h.valid_until_ms,
            rotate_at_ms: h.rotate_at_ms,
        };
        let account = self.home.account_id();
        let share = KeyShare::seal(&account, to, &pair, window, &sodium::random_array())
            .map_err(|e| Error::Usage(format!("cannot share a key with device {}: {e}", hex::encode(to.id()))))?;
        self.store_record(me, &DeviceRecord::Share(share), rpc::MAX_TTL_MS, "a key share")
            .await?;
        Ok(1)
    }

    /// Deletes every account key this device holds: another device took
    /// it off the account.
    fn forget_keys(&mut self) -> Result<()> {
        let held: Vec<_> = self.home.account_keys()?.into_iter().map(|k| k.key_id).collect();
        Ok(self.home.delete_account_keys(&held)?)
    }

    /// Opens `share` and keeps its key; `Some(true)` if it was new,
    /// `Some(false)` if held already, `None` if it does not open.
    fn import_share(&mut self, share: &KeyShare, me: &DeviceSecret) -> Result<Option<bool>> {
        if self.home.account_key_secret(&share.key_id)?.is_some() {
            return Ok(Some(false));
        }
        let account = self.home.account_id();
        let Ok(pair) = share.open(&account, me) else {
            return Ok(None);
        };
        let w = share.window;
        // A trusted device set these; still, a window the bundle check
        // would refuse is not kept (it could only confuse the rotation).
        if w.valid_from_ms >= w.valid_until_ms
            || w.valid_until_ms - w.valid_from_ms > allium_common::keys::MAX_WINDOW_MS
            || w.rotate_at_ms < w.valid_from_ms
        {
            return Ok(None);
        }
        self.home
            .add_account_key(&pair, w.valid_from_ms, w.valid_until_ms, w.rotate_at_ms)?;
        Ok(Some(true))
    }

    /// The link requests among `reads` from devices not in `trusted`,
    /// younger than [`LINK_REQUEST_TTL_MS`] (a node may keep one longer).
    fn pending(&self, reads: &[Read], trusted: &HashSet<[u8; 32]>) -> Vec<PendingLink> {
        let now = self.network_now();
        let account = self.home.account_id();
        let mut out: Vec<PendingLink> = Vec::new();
        for r in reads {
            if let DeviceRecord::LinkRequest(keys) = &r.record.record
                && !trusted.contains(&keys.sign_pk)
                && now.saturating_sub(r.timestamp) < LINK_REQUEST_TTL_MS
                && !out.iter().any(|p| p.keys.sign_pk == keys.sign_pk)
            {
                out.push(PendingLink {
                    keys: keys.clone(),
                    code: link_code(&account, keys),
                    asked_ms: r.timestamp,
                    hash: r.hash.clone(),
                });
            }
        }
        out
    }

    /// Stores this device's list of the devices it trusts when it changed
    /// since the last store, when that store is a week old, or when
    /// `force`; deletes the list it replaces.
    async fn keep_list_stored(&mut self, me: &DeviceSecret, force: bool) -> Result<()> {
        let now = self.network_now();
        let devices: Vec<DeviceKeys> = self
            .home
            .trusted_devices()?
            .into_iter()
            .map(|d| d.keys)
            .take(MAX_DEVICES)
            .collect();
        let ids: Vec<String> = devices.iter().map(|d| hex::encode(d.id())).collect();
        let previous: Option<(String, u64, Vec<String>)> = self
            .home
            .meta(LIST_META)?
            .and_then(|text| serde_json::from_str(&text).ok());
        let current = previous
            .as_ref()
            .is_some_and(|(_, at, old)| *old == ids && now.saturating_sub(*at) < RESTORE_LIST_AFTER_MS);
        if current && !force {
            return Ok(());
        }
        let record = DeviceRecord::List {
            created_ms: now,
            devices,
        };
        let hash = self
            .store_record(me, &record, rpc::MAX_TTL_MS, "the device list")
            .await?;
        if let Some((old, _, _)) = previous.filter(|(old, _, _)| *old != hash)
            && let Err(e) = self.delete_own(&[old]).await
        {
            tracing::debug!(error = %e, "the older device list stays until it expires");
        }
        let text = serde_json::to_string(&(hash, now, ids)).unwrap_or_default();
        self.home.set_meta(LIST_META, &text)?;
        Ok(())
    }

    /// Signs `record` with this device's key, seals it with the account's
    /// key for [`DEVICES`] and stores it for `ttl_ms`; returns its hash.
    async fn store_record(
        &mut self,
        me: &DeviceSecret,
        record: &DeviceRecord,
        ttl_ms: u64,
        what: &str,
    ) -> Result<String> {
        let account = self.home.account_id();
        let signed = record
            .sign(me, &account)
            .map_err(|e| Error::Usage(format!("cannot sign {what}: {e}")))?;
        let sealed = account::seal(self.home.identity(), DEVICES, &signed)
            .map_err(|e| Error::Usage(format!("cannot seal {what}: {e}")))?;
        self.store_owned(DEVICES, sealed, ttl_ms, what).await
    }

    /// Reads the device records: all of them (`full`), or the page `first`
    /// and what follows the cursor. Returns the records that opened and
    /// verified, and how many did not.
    async fn read_records(&mut self, full: bool, first: Option<(Value, NodeEntry)>) -> Result<(Vec<Read>, usize)> {
        let me = self.home.account_id();
        let mut reads = Vec::new();
        let mut unreadable = 0;
        let mut last: Option<String> = None;
        let mut prefetched = if full { None } else { first };
        for _ in 0..MAX_PAGES {
            let (body, node) = match prefetched.take() {
                Some(page) => page,
                None => {
                    let from = last.clone();
                    let make = move |home: &Home, node: &NodeEntry, ts: u64| -> Result<Value> {
                        let cursor = match (&from, full) {
                            (Some(hash), _) => Some(hash.clone()),
                            (None, true) => None,
                            (None, false) => home.cursor(&cursor_key(node))?,
                        };
                        Ok(owner_retrieve(home, DEVICES, ts, cursor, None))
                    };
                    let prefer = self.last_node(LAST_NODE);
                    let (status, body, node) = self.call_swarm(&me, &make, prefer).await?;
                    if status != 200 {
                        return Err(swarm_refused("to list the account's devices", status, &body));
                    }
                    self.remember_node(LAST_NODE, &node)?;
                    (body, node)
                }
            };
            let messages = body["messages"].as_array().cloned().unwrap_or_default();
            for m in &messages {
                let record = m["data"]
                    .as_str()
                    .and_then(|d| from_base64(d).ok())
                    .and_then(|sealed| account::open(self.home.identity(), DEVICES, &sealed).ok())
                    .and_then(|bytes| UnverifiedRecord::decode(&bytes).ok())
                    .and_then(|r| r.verify(&me).ok());
                match (record, m["hash"].as_str()) {
                    (Some(record), Some(hash)) => reads.push(Read {
                        hash: hash.to_owned(),
                        timestamp: m["timestamp"].as_u64().unwrap_or(0),
                        record,
                    }),
                    _ => unreadable += 1,
                }
            }
            if let Some(hash) = messages.last().and_then(|m| m["hash"].as_str()) {
                self.home.set_cursor(&cursor_key(&node), hash)?;
                last = Some(hash.to_owned());
            }
            if body["more"] != Value::Bool(true) || messages.is_empty() {
                break;
            }
        }
        Ok((reads, unreadable))
    }
}

/// The one item of `items` whose device id starts with `id_prefix` (at
/// least 4 hex digits); `what` names the items in an error.
fn by_id_prefix<T>(items: Vec<T>, id_prefix: &str, keys: impl Fn(&T) -> &DeviceKeys, what: &str) -> Result<T> {
    let prefix = id_prefix.trim().to_ascii_lowercase();
    if prefix.len() < 4 {
        return Err(Error::Usage("give at least 4 hex digits of the device's id".to_owned()));
    }
    let mut matching: Vec<T> = items
        .into_iter()
        .filter(|item| hex::encode(keys(item).id()).starts_with(&prefix))
        .collect();
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(Error::Usage(format!("no {what} whose id starts with {prefix}"))),
        _ => Err(Error::Usage(format!("several match {prefix}: give more of the id"))),
    }
}

/// What [`Messenger::last_node`] calls the reads of device records (the
/// account state's member: the batch reads both).
const LAST_NODE: &str = "state";

/// The retrieve cursor of the device records on `node`.
pub(crate) fn cursor_key(node: &NodeEntry) -> String {
    format!("state{}:{}", DEVICES.0, hex::encode(node.ed25519.0))
}

/// A device's id as shown: 16 hex digits.
pub fn fmt_device_id(sign_pk: &[u8; 32]) -> String {
    hex::encode(device_id(sign_pk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_picked_by_a_unique_prefix_of_four_digits_or_more() {
        let devices: Vec<DeviceKeys> = (0u8..40)
            .map(|i| DeviceSecret::from_seeds(&[i; 32], &[i; 32], "d", 0).keys().clone())
            .collect();
        let target = &devices[7];
        let id = hex::encode(target.id());
        let picked = by_id_prefix(devices.clone(), &id[..8].to_ascii_uppercase(), |d| d, "device").unwrap();
        assert_eq!(&picked, target);
        assert!(
            by_id_prefix(devices.clone(), &id[..3], |d| d, "device").is_err(),
            "too short"
        );
        assert!(by_id_prefix(devices.clone(), "zzzz", |d| d, "device").is_err(), "none");
        let twins = vec![target.clone(), target.clone()];
        assert!(by_id_prefix(twins, &id, |d| d, "device").is_err(), "ambiguous");
    }

    #[test]
    fn codes_are_shown_as_two_groups_of_three_digits() {
        assert_eq!(fmt_code(42), "000 042");
        assert_eq!(fmt_code(999_999), "999 999");
        assert_eq!(fmt_code(123_456), "123 456");
    }
}
