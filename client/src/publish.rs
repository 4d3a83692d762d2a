//! Publishing this account's keys for envelope v2 (`docs/envelope-v2.md`):
//! rotating them on schedule, storing the signed bundle in the public
//! namespace of the account's swarm, deleting what it supersedes, and
//! fetching another account's bundle.

use std::collections::HashSet;

use allium_common::encoding::from_base64;
use allium_common::keys::{AccountKeyPair, KeyBundle, UnverifiedKeyBundle};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, Namespace, RetrievePublicParams};
use allium_common::{AccountId, sodium};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::home::Home;
use crate::keyring::{self, ROTATE_EVERY_MS, ROTATE_JITTER_MS, WINDOW_MS};
use crate::messenger::{Messenger, REQUEST_TIMEOUT, swarm_refused};

/// The setting listing the keys this device made and has not yet shared
/// with every other device of the account (hex key ids).
const UNSHARED_META: &str = "keys_unshared";
/// The setting holding the published bundle's hash and when it was stored.
const PUBLISHED_META: &str = "key_bundle_published";
/// A bundle is stored again when the stored one is this old (it lives for
/// the node's longest TTL, 14 days).
const REPUBLISH_AFTER_MS: u64 = 7 * 24 * 3_600_000;

/// What publishing did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Published {
    /// The keys now published (signed again now if the stored bundle was
    /// kept: same keys).
    #[serde(skip)]
    pub bundle: KeyBundle,
    /// When the bundle in the swarm was stored (network time, Unix ms).
    pub published_ms: u64,
    /// Whether a new key was made.
    pub rotated: bool,
    /// Whether the bundle was stored now (else the stored one still held).
    pub stored: bool,
    /// Secrets deleted because their retention ended.
    pub deleted: usize,
    /// Key shares stored for the account's other devices.
    pub shared: usize,
}

/// The setting recording when an unlinked device last looked for the
/// account's other devices (network time, Unix ms).
const UNLINKED_CHECKED_META: &str = "devices_checked";
/// How often an unlinked device looks again.
const UNLINKED_CHECK_EVERY_MS: u64 = 24 * 3_600_000;

/// What [`Messenger::keep_keys`] did.
#[derive(Debug)]
pub enum KeptKeys {
    /// The keys were rotated and published as due.
    Published(Published),
    /// Nothing to do: forward secrecy is off, this device was removed
    /// from the account, or it is not linked and looked for the
    /// account's devices recently.
    Idle,
    /// This device is not linked and the account has devices that are:
    /// it must be linked to read what is sealed to their keys.
    MustLink,
}

impl Messenger {
    /// Whether this account publishes envelope v2 keys from this device
    /// (it holds some: it is linked, or made one).
    pub fn publishes_keys(&self) -> Result<bool> {
        Ok(!self.home.account_keys()?.is_empty())
    }

    /// What every `inbox` and `watch` round does for forward secrecy: a
    /// device that holds keys rotates and publishes them when due; one
    /// that holds none becomes the account's first device and publishes,
    /// unless the account has devices already (then it must be linked:
    /// looked for once a day). Nothing, with forward secrecy off.
    pub async fn keep_keys(&mut self) -> Result<KeptKeys> {
        if !self.forward_secrecy || self.was_removed()? {
            return Ok(KeptKeys::Idle);
        }
        if self.publishes_keys()? || self.is_linked()? {
            return Ok(KeptKeys::Published(self.publish_keys(false).await?));
        }
        let now = self.network_now();
        let checked: u64 = self
            .home
            .meta(UNLINKED_CHECKED_META)?
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if now.saturating_sub(checked) < UNLINKED_CHECK_EVERY_MS {
            return Ok(KeptKeys::Idle);
        }
        let report = self.sync_devices(true, None).await?;
        if self.is_linked()? {
            return Ok(KeptKeys::Published(self.publish_keys(false).await?));
        }
        if report.foreign > 0 {
            self.home.set_meta(UNLINKED_CHECKED_META, &now.to_string())?;
            return Ok(KeptKeys::MustLink);
        }
        Ok(KeptKeys::Published(self.publish_keys(false).await?))
    }

    /// Makes a new key if one is due (or `rotate_now`), shares it with
    /// the account's other devices, deletes the secrets whose retention
    /// ended, and stores the signed bundle of the current keys in the
    /// account's public namespace when it changed or the stored one is a
    /// week old (deleting the one it replaces).
    ///
    /// A device that is on no list of the account's devices becomes the
    /// first (refused when the account has devices already: it must be
    /// linked instead, `docs/devices.md`). A new key is shared before the
    /// bundle naming it is stored, so no sender uses a key another device
    /// lacks; a share that fails is tried again next time.
    pub async fn publish_keys(&mut self, rotate_now: bool) -> Result<Published> {
        self.become_first_device(false).await?;
        let now = self.network_now();
        let mut held = self.home.account_keys()?;
        let mut plan = keyring::plan(&held, now);
        let rotated = plan.rotate || rotate_now;
        if rotated {
            let pair = AccountKeyPair::generate();
            let jitter = u64::from(u32::from_le_bytes(sodium::random_array())) % (ROTATE_JITTER_MS + 1);
            self.home
                .add_account_key(&pair, now, now + WINDOW_MS, now + ROTATE_EVERY_MS + jitter)?;
            let mut unshared = self.unshared_keys()?;
            unshared.push(hex::encode(pair.key_id()));
            self.home
                .set_meta(UNSHARED_META, &serde_json::to_string(&unshared).unwrap_or_default())?;
            held = self.home.account_keys()?;
            plan = keyring::plan(&held, now);
        }
        let mut shared = 0;
        let unshared = self.unshared_keys()?;
        for id in &unshared {
            if let Ok(key_id) = <[u8; 8]>::try_from(hex::decode(id).unwrap_or_default().as_slice()) {
                shared += self.share_with_devices(&key_id).await?;
            }
        }
        if !unshared.is_empty() {
            self.home.set_meta(UNSHARED_META, "[]")?;
        }
        self.home.delete_account_keys(&plan.delete)?;
        let mut keys = Vec::new();
        for id in &plan.publish {
            let (Some(pair), Some(h)) = (self.home.account_key(id)?, held.iter().find(|k| k.key_id == *id)) else {
                continue;
            };
            keys.push(pair.publish(h.valid_from_ms, h.valid_until_ms));
        }
        let bundle = KeyBundle::sign(self.home.identity(), now, keys)
            .map_err(|e| Error::Usage(format!("cannot sign the key bundle: {e}")))?;
        let previous: Option<(String, u64, Vec<[u8; 8]>)> = self
            .home
            .meta(PUBLISHED_META)?
            .and_then(|text| serde_json::from_str(&text).ok());
        let same_keys = previous.as_ref().is_some_and(|(_, _, ids)| *ids == plan.publish);
        let fresh = previous
            .as_ref()
            .is_some_and(|(_, at, _)| now.saturating_sub(*at) < REPUBLISH_AFTER_MS);
        if same_keys
            && fresh
            && let Some((_, at, _)) = previous
        {
            return Ok(Published {
                bundle,
                published_ms: at,
                rotated,
                stored: false,
                deleted: plan.delete.len(),
                shared,
            });
        }
        let hash = self
            .store_owned(
                Namespace::PUBLIC_KEYS,
                bundle.encode(),
                rpc::MAX_TTL_MS,
                "the key bundle",
            )
            .await?;
        if let Some((old, _, _)) = previous.filter(|(old, _, _)| *old != hash)
            && let Err(e) = self.delete_own(&[old]).await
        {
            tracing::debug!(error = %e, "the older key bundle stays until it expires");
        }
        let text = serde_json::to_string(&(hash, now, &plan.publish)).unwrap_or_default();
        self.home.set_meta(PUBLISHED_META, &text)?;
        Ok(Published {
            bundle,
            published_ms: now,
            rotated,
            stored: true,
            deleted: plan.delete.len(),
            shared,
        })
    }

    /// The keys made here and not yet shared with every other device.
    fn unshared_keys(&self) -> Result<Vec<String>> {
        Ok(self
            .home
            .meta(UNSHARED_META)?
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default())
    }

    /// The newest bundle of `account` that verifies (against its Account
    /// ID and the network's time), read from its swarm through an onion
    /// path; `None` if it published none (or only bundles that do not
    /// verify, which are skipped: anyone can fail to forge one).
    pub async fn fetch_bundle(&mut self, account: &AccountId) -> Result<Option<KeyBundle>> {
        Ok(self
            .fetch_bundles(account)
            .await?
            .into_iter()
            .max_by_key(KeyBundle::created_ms))
    }

    /// How many of the bundles in this account's public namespace name a
    /// key this device does not hold: bundles no device of the account
    /// made (someone else with the phrase publishes keys of its own), or
    /// whose keys never reached this device. Checked after this device's
    /// shares were read (an account sync), so a rotation by a linked device
    /// is not counted.
    pub async fn foreign_bundles(&mut self) -> Result<usize> {
        let me = self.home.account_id();
        let mut foreign = 0;
        for bundle in self.fetch_bundles(&me).await? {
            let mut unknown = false;
            for key in bundle.keys() {
                unknown |= self.home.account_key_secret(&key.key_id())?.is_none();
            }
            foreign += usize::from(unknown);
        }
        Ok(foreign)
    }

    /// Every bundle of `account` that verifies, read from its swarm
    /// through an onion path.
    async fn fetch_bundles(&mut self, account: &AccountId) -> Result<Vec<KeyBundle>> {
        let to = *account;
        let make = move |_: &Home, _: &NodeEntry, _: u64| -> Result<Value> {
            Ok(Call::RetrievePublic(RetrievePublicParams {
                pubkey: to.into(),
                namespace: Namespace::PUBLIC_KEYS,
                last_hash: None,
                max_count: None,
                max_size: None,
            })
            .to_json())
        };
        let (status, body, _) = self.call(&to, &make, REQUEST_TIMEOUT, None, &HashSet::new()).await?;
        // A node of protocol 4 does not know the method: no bundle there.
        if status == 400 {
            return Ok(Vec::new());
        }
        if status != 200 {
            return Err(swarm_refused("to give the key bundle", status, &body));
        }
        let now = self.network_now();
        Ok(body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| from_base64(m["data"].as_str()?).ok())
            .filter_map(|bytes| UnverifiedKeyBundle::decode(&bytes).ok()?.verify(account, now).ok())
            .collect())
    }
}
