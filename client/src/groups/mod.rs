//! Private groups (`docs/groups.md`): creating them, inviting, removing and
//! promoting members (`admin`), reading and writing the group's swarm
//! (`round`, [`Messenger::send_to_group`]), invitations arriving as direct
//! messages (`invite`), and the groups kept in the synced account state so
//! that every device, and a restore, finds them.
//!
//! A member reads and writes the group's swarm with its sub-key and the
//! credential the group key signed for it; an admin holds the group seed
//! and writes the keys, info, member list and revocations as the group.

mod admin;
mod invite;
mod refresh;
mod round;

use allium_common::MailboxId;
use allium_common::account::AccountState;
use allium_common::content::Content;
use allium_common::encoding::{Base64Bytes, Hex32, Sig64, from_base64, to_base64};
use allium_common::group::GroupId;
use allium_common::group::message;
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, DeleteParams, Namespace, RetrieveParams, StoreParams};
use allium_common::{AccountId, Identity, sodium};
use serde_json::{Value, json};

use crate::convo::CONVERSATIONS;
use crate::error::{Error, Result};
use crate::home::{GroupEntry, GroupRecord, Home};
use crate::messenger::{Messenger, swarm_refused};

pub use admin::Created;
pub(crate) use invite::read as read_invitation;
pub use refresh::{REFRESH_AFTER_MS, must_refresh};
pub use round::{GroupPage, GroupReceived};

/// How long what is stored in a group's swarm lives: as long as a node
/// keeps anything.
pub const GROUP_TTL_MS: u64 = rpc::MAX_TTL_MS;

/// The key prefix of groups in the synced conversation state.
const STATE_PREFIX: &str = "group/";

/// The state key of a group.
fn state_key(id: &GroupId) -> String {
    format!("{STATE_PREFIX}{id}")
}

/// Who signs a request to a group's swarm.
enum Signer {
    /// The group key (an admin).
    Group(Identity),
    /// A member's sub-key, with its credential.
    Member(Identity, Vec<u8>),
}

impl Signer {
    fn member(g: &GroupRecord) -> Self {
        Self::Member(Identity::from_ed25519_seed(&g.member_seed), g.credential.clone())
    }

    fn admin(g: &GroupRecord) -> Result<Self> {
        g.seed
            .as_ref()
            .map(|seed| Self::Group(Identity::from_ed25519_seed(seed)))
            .ok_or_else(|| Error::Usage(format!("only an admin of {} can do that", g.name)))
    }

    fn identity(&self) -> &Identity {
        match self {
            Self::Group(i) | Self::Member(i, _) => i,
        }
    }

    fn credential(&self) -> Option<Base64Bytes> {
        match self {
            Self::Group(_) => None,
            Self::Member(_, c) => Some(Base64Bytes(c.clone())),
        }
    }

    fn store(&self, group: &GroupId, namespace: Namespace, ts: u64, data: &[u8]) -> Value {
        let mailbox = MailboxId::from(*group);
        let hash = rpc::message_hash(&mailbox, namespace, data);
        let id = self.identity();
        Call::Store(StoreParams {
            chunk: None,
            pubkey: mailbox,
            namespace,
            timestamp: ts,
            ttl: GROUP_TTL_MS,
            data: Base64Bytes(data.to_vec()),
            pubkey_ed25519: Some(Hex32(*id.ed25519_pk())),
            signature: Some(Sig64(id.sign(&rpc::store_signed_bytes(namespace, ts, &hash)))),
            credential: self.credential(),
        })
        .to_json()
    }

    fn delete(&self, group: &GroupId, ts: u64, messages: &[String]) -> Value {
        let id = self.identity();
        Call::Delete(DeleteParams {
            pubkey: (*group).into(),
            pubkey_ed25519: Hex32(*id.ed25519_pk()),
            signature: Sig64(id.sign(&rpc::delete_signed_bytes(ts, messages))),
            messages: messages.to_vec(),
            timestamp: ts,
            credential: self.credential(),
        })
        .to_json()
    }

    fn retrieve(
        &self,
        group: &GroupId,
        namespace: Namespace,
        ts: u64,
        last_hash: Option<String>,
        wait_ms: Option<u64>,
    ) -> Value {
        let id = self.identity();
        Call::Retrieve(RetrieveParams {
            pubkey: (*group).into(),
            pubkey_ed25519: Hex32(*id.ed25519_pk()),
            namespace,
            timestamp: ts,
            signature: Sig64(id.sign(&rpc::retrieve_signed_bytes(namespace, ts))),
            last_hash,
            max_count: None,
            max_size: None,
            wait_ms,
            credential: self.credential(),
        })
        .to_json()
    }
}

impl Messenger {
    /// How many groups this account is in (0 if the home cannot say).
    pub fn joined_groups(&self) -> usize {
        self.home
            .groups()
            .map(|g| g.iter().filter(|g| g.joined).count())
            .unwrap_or(0)
    }

    /// The group named by `name_or_id`: its Group ID, or the name of a
    /// group this account holds (which must be unique).
    pub fn find_group(&self, name_or_id: &str) -> Result<GroupRecord> {
        let groups = self.home.groups()?;
        find_group(&groups, name_or_id)
    }

    /// Sends `text` to a group; returns its hash. The message is sealed
    /// under the newest key this member holds, signed by this account
    /// inside the ciphertext, and stored with the member's credential.
    pub async fn send_to_group(&mut self, group: &GroupId, text: &str) -> Result<String> {
        self.send_to_group_with_files(group, text, &[]).await
    }

    /// [`Messenger::send_to_group`] with files this device stored
    /// ([`Messenger::upload_file`]).
    pub async fn send_to_group_with_files(
        &mut self,
        group: &GroupId,
        text: &str,
        files: &[crate::home::UploadRecord],
    ) -> Result<String> {
        let mut content = Content::text(text, self.network_now());
        content.attachments = files.iter().map(|f| f.manifest.to_json()).collect();
        content.profile = self.own_profile()?;
        let hash = self.post_to_group(group, &content, "text").await?;
        if !files.is_empty() {
            let kept: Vec<_> = files.iter().map(|f| (f.manifest.clone(), Some(f.id))).collect();
            self.home.put_files(&hash, &kept)?;
            for f in files {
                self.home.mark_upload_sent(f.id)?;
            }
        }
        Ok(hash)
    }

    /// Takes back group message `hash` this account sent: it is deleted
    /// from the group's swarm (a member's credential may delete in the
    /// messages namespace) and from this device, and the chunks of its
    /// files go from their swarms. Members that fetched it already keep
    /// their copy. Returns the group and how many chunks were deleted.
    pub async fn unsend_group_message(&mut self, hash: &str) -> Result<(GroupId, usize)> {
        let me = self.home.account_id();
        let group = match self.home.group_message(hash)? {
            Some((group, sender)) if sender == me => group,
            _ => {
                return Err(Error::Usage(format!(
                    "no message with hash {:?} that this account sent (see `allium history --json`)",
                    crate::display::escape(hash)
                )));
            }
        };
        let g = self.joined_group(&group)?;
        let signer = Signer::member(&g);
        let messages = vec![hash.to_owned()];
        let make = |_: &Home, _: &NodeEntry, ts: u64| -> Result<Value> { Ok(signer.delete(&group, ts, &messages)) };
        let (status, body, _) = self.call_swarm(&group, &make, None).await?;
        if status != 200 {
            return Err(crate::messenger::swarm_refused(
                "to take the message back",
                status,
                &body,
            ));
        }
        self.home.forget_group_message(hash)?;
        let mut chunks = 0;
        for upload in self.home.forget_files(hash)? {
            match self.delete_upload(&upload).await {
                Ok(n) => chunks += n,
                Err(e) => tracing::debug!(error = %e, "a file's chunks stay until they expire"),
            }
        }
        Ok((group, chunks))
    }

    /// Seals `content` into the group's messages namespace and records it
    /// in this device's group history as `kind`.
    async fn post_to_group(&mut self, group: &GroupId, content: &Content, kind: &str) -> Result<String> {
        let g = self.joined_group(group)?;
        let (generation, key) = self
            .home
            .group_current_key(group)?
            .ok_or_else(|| Error::Usage(format!("no key of {} yet: run `allium inbox` first", g.name)))?;
        let data = message::seal(
            self.home.identity(),
            group,
            generation,
            &key,
            content,
            &sodium::random_array(),
        )
        .map_err(|e| Error::Usage(format!("the message cannot be sent to the group: {e}")))?;
        let hash = self
            .store_in_group(
                group,
                &Signer::member(&g),
                Namespace::GROUP_MESSAGES,
                &data,
                "the message",
            )
            .await?;
        let me = self.home.account_id();
        self.home.record_group_message(
            &GroupEntry {
                group: *group,
                hash: hash.clone(),
                sender: me,
                sent_ms: content.ts,
                kind: kind.to_owned(),
                body: content.body.clone().unwrap_or_default(),
            },
            crate::now_ms(),
        )?;
        Ok(hash)
    }

    /// Stores `data` in `namespace` of the group's swarm, signed by
    /// `signer`; returns its hash.
    async fn store_in_group(
        &mut self,
        group: &GroupId,
        signer: &Signer,
        namespace: Namespace,
        data: &[u8],
        what: &str,
    ) -> Result<String> {
        let make = |_: &Home, _: &NodeEntry, ts: u64| -> Result<Value> { Ok(signer.store(group, namespace, ts, data)) };
        let (status, body, _) = self.call_swarm(group, &make, None).await?;
        if status != 200 {
            return Err(swarm_refused(&format!("to store {what} in the group"), status, &body));
        }
        body["hash"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| Error::Network("the group's swarm answered a store without a hash".into()))
    }

    /// A group this account has joined.
    fn joined_group(&self, group: &GroupId) -> Result<GroupRecord> {
        match self.home.group(group)? {
            Some(g) if g.joined => Ok(g),
            Some(g) => Err(Error::Usage(format!(
                "the invitation to {} waits: accept its sender first (`allium requests accept`)",
                g.name
            ))),
            None => Err(Error::Usage(format!("this account is not in the group {group}"))),
        }
    }

    /// Keeps `g` in the synced account state, so the account's other
    /// devices, and a restore from the phrase, find it.
    fn remember_group(&mut self, g: &GroupRecord) -> Result<()> {
        let value = json!({
            "name": g.name,
            "member_seed": hex::encode(*g.member_seed),
            "credential": to_base64(&g.credential),
            "seed": g.seed.as_ref().map(|s| hex::encode(**s)),
        });
        let key = state_key(&g.id);
        self.edit_account_state(CONVERSATIONS, |state, stamp| {
            state.set(&key, value, stamp);
        })
    }

    /// Drops `group` from the synced account state (left, or removed).
    fn forget_group_everywhere(&mut self, group: &GroupId) -> Result<()> {
        let key = state_key(group);
        self.edit_account_state(CONVERSATIONS, |state, stamp| {
            state.remove(&key, stamp);
        })?;
        Ok(self.home.forget_group(group)?)
    }

    /// Follows the synced state: joins the groups another device joined
    /// (or that a restore finds), forgets those another device left.
    /// Returns the names of the groups joined.
    pub fn follow_group_state(&mut self) -> Result<Vec<String>> {
        let state = self.account_state(CONVERSATIONS)?;
        let mut joined = Vec::new();
        for (key, value) in state.with_prefix(STATE_PREFIX) {
            let Some(g) = group_from_state(key, value) else {
                continue;
            };
            if self
                .home
                .group(&g.id)?
                .is_none_or(|held| !held.joined || (held.seed.is_none() && g.seed.is_some()))
            {
                joined.push(g.name.clone());
                self.home.put_group(&g)?;
            }
        }
        for held in self.home.groups()? {
            if held.joined && left_in(&state, &held.id) {
                self.home.forget_group(&held.id)?;
            }
        }
        Ok(joined)
    }
}

/// Whether the synced state says this account left `group` (a removal
/// tombstone).
fn left_in(state: &AccountState, group: &GroupId) -> bool {
    state.entry(&state_key(group)).is_some_and(|e| e.value.is_none())
}

/// Reads a group kept in the synced state; `None` if it does not hold up
/// (the sub-key must be the one the credential names).
fn group_from_state(key: &str, value: &Value) -> Option<GroupRecord> {
    let id: GroupId = key.strip_prefix(STATE_PREFIX)?.parse().ok()?;
    let member_seed = hex_seed(value["member_seed"].as_str()?)?;
    let credential = from_base64(value["credential"].as_str()?).ok()?;
    let seed = match value["seed"].as_str() {
        Some(s) => Some(hex_seed(s)?),
        None => None,
    };
    invite::check_secrets(&id, &member_seed, &credential, seed.as_deref())?;
    let name = value["name"].as_str().unwrap_or("group").chars().take(64).collect();
    Some(GroupRecord {
        seed,
        ..GroupRecord::joined_now(id, name, member_seed, credential)
    })
}

fn hex_seed(s: &str) -> Option<zeroize::Zeroizing<[u8; 32]>> {
    let bytes = zeroize::Zeroizing::new(hex::decode(s).ok()?);
    <[u8; 32]>::try_from(bytes.as_slice()).ok().map(zeroize::Zeroizing::new)
}

/// The group `name_or_id` among `groups`.
pub fn find_group(groups: &[GroupRecord], name_or_id: &str) -> Result<GroupRecord> {
    if let Ok(id) = name_or_id.parse::<GroupId>() {
        return groups
            .iter()
            .find(|g| g.id == id)
            .cloned()
            .ok_or_else(|| Error::Usage(format!("this account is not in the group {id}")));
    }
    let named: Vec<&GroupRecord> = groups.iter().filter(|g| g.name == name_or_id).collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Error::Usage(format!(
            "no group named {:?} (see `allium group list`)",
            crate::display::escape(name_or_id)
        ))),
        _ => Err(Error::Usage(format!(
            "{} groups are named {:?}: use the Group ID (see `allium group list`)",
            named.len(),
            crate::display::escape(name_or_id)
        ))),
    }
}

/// The accounts of a member list as X25519 keys (the key message's
/// recipients).
fn x25519_of(members: &[AccountId]) -> Vec<[u8; 32]> {
    members.iter().map(|a| *a.x25519()).collect()
}
