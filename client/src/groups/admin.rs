//! What an admin does: create a group, add, remove and promote members,
//! and publish the keys, info, member list and revocations as the group.
//! A member may only leave.

use allium_common::content::{Content, Kind};
use allium_common::group::GroupId;
use allium_common::group::credential::Revocation;
use allium_common::group::keys::{GroupKeys, MAX_MEMBERS};
use allium_common::group::state::{Info, Member, seal_members};
use allium_common::rpc::Namespace;
use allium_common::{AccountId, Identity, sodium};
use zeroize::Zeroizing;

use super::invite::member_secrets;
use super::{Signer, x25519_of};
use crate::error::{Error, Result};
use crate::home::GroupRecord;
use crate::messenger::Messenger;

/// What creating a group or changing its members did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Created {
    /// The Group ID.
    pub id: String,
    /// The group's name.
    pub name: String,
    /// The key generation now current.
    pub generation: u32,
    /// Members on the list now.
    pub members: usize,
    /// Bytes of the key message stored (0 if none was).
    pub key_message_bytes: usize,
    /// Invitations sent (or queued in the outbox).
    pub invited: usize,
    /// Members whose invitation could not be made or sent (Account IDs):
    /// `group add` invites them again.
    pub not_invited: Vec<String>,
    /// Members whose credential was revoked.
    pub revoked: usize,
}

impl Messenger {
    /// Creates a group named `name` with this account as its admin and
    /// `members` invited.
    pub async fn create_group(&mut self, name: &str, members: &[AccountId]) -> Result<Created> {
        let me = self.home.account_id();
        let info = Info {
            name: name.to_owned(),
            description: None,
            disappear: None,
        };
        let mut list: Vec<Member> = vec![Member {
            account: me,
            admin: true,
        }];
        list.extend(
            members
                .iter()
                .filter(|a| **a != me)
                .map(|&account| Member { account, admin: false }),
        );
        list.sort();
        list.dedup_by_key(|m| m.account);
        check_size(list.len())?;
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(sodium::random_array());
        let group_key = Identity::from_ed25519_seed(&seed);
        let id = GroupId::from_ed25519(*group_key.ed25519_pk());
        let (member_seed, credential) = member_secrets(&seed, &me, self.network_now());
        let g = GroupRecord {
            seed: Some(seed),
            ..GroupRecord::joined_now(id, name.to_owned(), member_seed, credential)
        };
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(sodium::random_array());
        // The row first: publishing records the list and info in it.
        self.home.put_group(&g)?;
        self.home.put_group_key(&id, 1, &key)?;
        let key_bytes = self.publish(&g, 1, &key, &list, Some(&info)).await?;
        self.remember_group(&g)?;
        self.mark_refreshed(&g)?;
        let others: Vec<AccountId> = list.iter().filter(|m| m.account != me).map(|m| m.account).collect();
        let (invited, not_invited) = self.invite_all(&g, &others, false).await;
        Ok(Created {
            id: id.to_string(),
            name: name.to_owned(),
            generation: 1,
            members: list.len(),
            key_message_bytes: key_bytes,
            invited,
            not_invited,
            revoked: 0,
        })
    }

    /// Invites each of `members`; an invitation that fails is reported,
    /// not fatal (the group exists already; `group add` invites again).
    async fn invite_all(
        &mut self,
        g: &GroupRecord,
        members: &[AccountId],
        share_history: bool,
    ) -> (usize, Vec<String>) {
        let mut failed = Vec::new();
        for m in members {
            if let Err(e) = self.invite_with(g, *m, false, share_history).await {
                tracing::debug!(member = %m, error = %e, "an invitation was not sent");
                failed.push(m.to_string());
            }
        }
        (members.len() - failed.len(), failed)
    }

    /// Adds `members` (as an admin): a new key generation sealed to every
    /// member, them included (so they read from their joining on, and a
    /// restore of theirs finds the key), the new list and info, and their
    /// invitations (sent again to any already listed). With
    /// `share_history`, the invitations also carry the keys of every
    /// earlier generation this device holds.
    pub async fn add_to_group(
        &mut self,
        group: &GroupId,
        members: &[AccountId],
        share_history: bool,
    ) -> Result<Created> {
        let g = self.joined_group(group)?;
        let mut list = self.known_members(&g)?;
        let new: Vec<AccountId> = members
            .iter()
            .filter(|a| !list.iter().any(|m| m.account == **a))
            .copied()
            .collect();
        list.extend(new.iter().map(|&account| Member { account, admin: false }));
        list.sort();
        check_size(list.len())?;
        let (generation, bytes) = self.rekey(&g, &list).await?;
        // Those already listed are invited again too: their first
        // invitation may have failed.
        let (invited, not_invited) = self.invite_all(&g, members, share_history).await;
        Ok(Created {
            not_invited,
            ..self.summary(&g, generation, list.len(), bytes, invited, 0)
        })
    }

    /// Removes `members` (as an admin): their credentials revoked on the
    /// group's swarm, and a new key generation sealed to the others only,
    /// with the list and info sealed under it.
    pub async fn remove_from_group(&mut self, group: &GroupId, members: &[AccountId]) -> Result<Created> {
        let g = self.joined_group(group)?;
        let seed = g
            .seed
            .clone()
            .ok_or_else(|| Error::Usage(format!("only an admin of {} can remove", g.name)))?;
        let me = self.home.account_id();
        if members.contains(&me) {
            return Err(Error::Usage("to leave a group, use `allium group leave`".into()));
        }
        let mut list = self.known_members(&g)?;
        list.retain(|m| !members.contains(&m.account));
        let signer = Signer::admin(&g)?;
        let group_key = Identity::from_ed25519_seed(&seed);
        for member in members {
            let (member_seed, _) = member_secrets(&seed, member, 0);
            let sub_key = Identity::from_ed25519_seed(&member_seed);
            let revocation = Revocation::issue(&group_key, sub_key.ed25519_pk(), self.network_now());
            self.store_in_group(group, &signer, Namespace::GROUP_REVOKED, &revocation, "a revocation")
                .await?;
        }
        let (generation, bytes) = self.rekey(&g, &list).await?;
        Ok(self.summary(&g, generation, list.len(), bytes, 0, members.len()))
    }

    /// Makes `members` admins: they get the group seed (in a direct
    /// message) and the list marks them.
    pub async fn promote_in_group(&mut self, group: &GroupId, members: &[AccountId]) -> Result<Created> {
        let g = self.joined_group(group)?;
        let mut list = self.known_members(&g)?;
        for account in members {
            match list.iter_mut().find(|m| m.account == *account) {
                Some(m) => m.admin = true,
                None => return Err(Error::Usage(format!("{account} is not a member of {}", g.name))),
            }
        }
        let (generation, key) = self.current_key(&g)?;
        self.publish_list(&g, generation, &key, &list).await?;
        for account in members {
            self.invite(&g, *account, true).await?;
        }
        Ok(self.summary(&g, generation, list.len(), 0, members.len(), 0))
    }

    /// Leaves a group: says so in the group (an admin's client then
    /// removes this account and rotates the key) and forgets it on every
    /// device of the account.
    pub async fn leave_group(&mut self, group: &GroupId) -> Result<()> {
        let content = Content::control(Kind::GroupLeave, self.network_now());
        if let Err(e) = self.post_to_group(group, &content, "leave").await {
            // Leaving works without the network; the admins learn it when
            // the swarm refuses the credential they revoke, or never.
            tracing::debug!(error = %e, "the group was not told of the leave");
        }
        self.forget_group_everywhere(group)
    }

    /// Makes the next key generation, sealed to every member of `list`, and
    /// stores it with the list and info; returns the generation and the key
    /// message's size.
    async fn rekey(&mut self, g: &GroupRecord, list: &[Member]) -> Result<(u32, usize)> {
        let (generation, _) = self.current_key(g)?;
        let generation = generation + 1;
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(sodium::random_array());
        let info = self.current_info(g);
        let bytes = self.publish(g, generation, &key, list, Some(&info)).await?;
        self.home.put_group_key(&g.id, generation, &key)?;
        self.mark_refreshed(g)?;
        Ok((generation, bytes))
    }

    /// Stores, as the group: a key message of `generation` to every member
    /// of `list`, the list, and `info` if given. Returns the key message's
    /// size.
    pub(super) async fn publish(
        &mut self,
        g: &GroupRecord,
        generation: u32,
        key: &[u8; 32],
        list: &[Member],
        info: Option<&Info>,
    ) -> Result<usize> {
        let signer = Signer::admin(g)?;
        let accounts: Vec<AccountId> = list.iter().map(|m| m.account).collect();
        let keys = GroupKeys::seal(
            signer.identity(),
            generation,
            key,
            &x25519_of(&accounts),
            &sodium::random_array(),
            &sodium::random_array(),
        )
        .map_err(|e| Error::Usage(format!("the group's keys cannot be sealed: {e}")))?;
        self.store_in_group(&g.id, &signer, Namespace::GROUP_KEYS, &keys, "the key message")
            .await?;
        self.publish_list(g, generation, key, list).await?;
        if let Some(info) = info {
            let version = self.network_now();
            let sealed = info
                .seal(signer.identity(), generation, key, version, &sodium::random_array())
                .map_err(|e| Error::Usage(format!("the group's info cannot be sealed: {e}")))?;
            self.store_in_group(&g.id, &signer, Namespace::GROUP_INFO, &sealed, "the group's info")
                .await?;
            self.home
                .set_group_info(&g.id, version, &info.name, info.description.as_deref())?;
        }
        Ok(keys.len())
    }

    async fn publish_list(&mut self, g: &GroupRecord, generation: u32, key: &[u8; 32], list: &[Member]) -> Result<()> {
        let signer = Signer::admin(g)?;
        let version = self.network_now();
        let sealed = seal_members(
            list,
            signer.identity(),
            generation,
            key,
            version,
            &sodium::random_array(),
        )
        .map_err(|e| Error::Usage(format!("the member list cannot be sealed: {e}")))?;
        self.store_in_group(&g.id, &signer, Namespace::GROUP_MEMBERS, &sealed, "the member list")
            .await?;
        self.home.set_group_members(&g.id, version, list)?;
        Ok(())
    }

    /// The newest member list this device read: a change made from an
    /// empty one would drop everyone, so none is made without it.
    fn known_members(&self, g: &GroupRecord) -> Result<Vec<Member>> {
        let list = self.home.group_members(&g.id)?;
        if list.is_empty() {
            return Err(Error::Usage(format!(
                "the member list of {} has not been read yet: run `allium inbox` first",
                g.name
            )));
        }
        Ok(list)
    }

    pub(super) fn current_key(&self, g: &GroupRecord) -> Result<(u32, Zeroizing<[u8; 32]>)> {
        self.home
            .group_current_key(&g.id)?
            .ok_or_else(|| Error::Usage(format!("no key of {} yet: run `allium inbox` first", g.name)))
    }

    fn current_info(&self, g: &GroupRecord) -> Info {
        Info {
            name: g.name.clone(),
            description: g.description.clone(),
            disappear: None,
        }
    }

    fn summary(
        &self,
        g: &GroupRecord,
        generation: u32,
        members: usize,
        bytes: usize,
        invited: usize,
        revoked: usize,
    ) -> Created {
        Created {
            id: g.id.to_string(),
            name: g.name.clone(),
            generation,
            members,
            key_message_bytes: bytes,
            invited,
            not_invited: Vec::new(),
            revoked,
        }
    }
}

fn check_size(members: usize) -> Result<()> {
    if members > MAX_MEMBERS {
        return Err(Error::Usage(format!(
            "a group has at most {MAX_MEMBERS} members (one key message must hold them all); this would have {members}"
        )));
    }
    Ok(())
}
