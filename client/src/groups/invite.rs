//! Invitations: a direct message (end-to-end encrypted like any other) that
//! carries a member's sub-key seed, credential and the current group key,
//! and for a new admin the group seed. From a contact it is joined at once;
//! from anyone else it waits, as a message request does, until the sender
//! is accepted.

use allium_common::AccountId;
use allium_common::Identity;
use allium_common::content::{Content, GroupKeyShare, GroupRef, Kind};
use allium_common::encoding::{from_base64, to_base64};
use allium_common::group::GroupId;
use allium_common::group::credential::{Credential, Rights, member_seed};
use zeroize::Zeroizing;

use super::hex_seed;
use crate::error::Result;
use crate::home::GroupRecord;
use crate::messenger::Messenger;

/// Checks an invitation's secrets against its Group ID: the credential is
/// the group key's, names the sub-key of `member_seed` and allows a
/// member's rights; a `seed`, if given, is the group key's. `Some(())` if
/// they hold.
pub(super) fn check_secrets(
    group: &GroupId,
    member_seed: &[u8; 32],
    credential: &[u8],
    seed: Option<&[u8; 32]>,
) -> Option<()> {
    let verified = Credential::verify(credential, group).ok()?;
    let sub_key = Identity::from_ed25519_seed(member_seed);
    if verified.member_pk != *sub_key.ed25519_pk() || !verified.rights.contains(Rights::MEMBER) {
        return None;
    }
    if let Some(seed) = seed
        && Identity::from_ed25519_seed(seed).ed25519_pk() != group.ed25519()
    {
        return None;
    }
    Some(())
}

/// The member's secrets an admin makes for `member`: its sub-key seed and
/// a fresh credential.
pub(super) fn member_secrets(group_seed: &[u8; 32], member: &AccountId, now_ms: u64) -> (Zeroizing<[u8; 32]>, Vec<u8>) {
    let group_key = Identity::from_ed25519_seed(group_seed);
    let seed = member_seed(group_seed, member);
    let sub_key = Identity::from_ed25519_seed(&seed);
    let credential = Credential::issue(&group_key, sub_key.ed25519_pk(), Rights::MEMBER, now_ms);
    (seed, credential)
}

/// Most earlier generations' keys one invitation may share.
pub const MAX_SHARED_KEYS: usize = 1_000;

/// What an invitation says, checked.
pub(crate) struct Invitation {
    pub group: GroupRecord,
    pub generation: Option<(u32, Zeroizing<[u8; 32]>)>,
    /// Earlier generations' keys, when the admin shared the history.
    pub history: Vec<(u32, Zeroizing<[u8; 32]>)>,
}

/// Reads the invitation in `content` from `from`; `None` if it does not
/// hold up (forged or damaged secrets are ignored, never half-kept).
pub(crate) fn read(content: &Content, from: AccountId, now_ms: u64) -> Option<Invitation> {
    let r = content.group.as_ref()?;
    let id: GroupId = r.id.parse().ok()?;
    let member_seed = hex_seed(r.member_seed.as_deref()?)?;
    let credential = from_base64(r.credential.as_deref()?).ok()?;
    let seed = match r.seed.as_deref() {
        Some(s) => Some(hex_seed(s)?),
        None => None,
    };
    check_secrets(&id, &member_seed, &credential, seed.as_deref())?;
    let generation = match (r.generation, r.key.as_deref()) {
        (Some(g), Some(k)) => Some((g, hex_seed(k)?)),
        _ => None,
    };
    if r.history.len() > MAX_SHARED_KEYS {
        return None;
    }
    let history = r
        .history
        .iter()
        .map(|share| Some((share.generation, hex_seed(&share.key)?)))
        .collect::<Option<Vec<_>>>()?;
    let name = r
        .name
        .as_deref()
        .map(|n| n.chars().filter(|c| !c.is_control()).take(64).collect::<String>())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "group".to_owned());
    Some(Invitation {
        group: GroupRecord {
            seed,
            inviter: Some(from),
            joined: false,
            created_ms: now_ms,
            ..GroupRecord::joined_now(id, name, member_seed, credential)
        },
        generation,
        history,
    })
}

impl Messenger {
    /// Sends `member` its invitation to `g` (as an admin): its secrets and
    /// the current key, and the group seed if `admin`.
    pub(super) async fn invite(&mut self, g: &GroupRecord, member: AccountId, admin: bool) -> Result<()> {
        self.invite_with(g, member, admin, false).await
    }

    /// [`Messenger::invite`], also giving the keys of every earlier
    /// generation this device holds if `share_history`.
    pub(super) async fn invite_with(
        &mut self,
        g: &GroupRecord,
        member: AccountId,
        admin: bool,
        share_history: bool,
    ) -> Result<()> {
        let Some(seed) = g.seed.as_ref() else {
            return Err(crate::error::Error::Usage(format!(
                "only an admin of {} can invite",
                g.name
            )));
        };
        let (member_seed, credential) = member_secrets(seed, &member, self.network_now());
        let current = self.home.group_current_key(&g.id)?;
        let mut content = Content::control(Kind::GroupInvite, self.network_now());
        content.group = Some(GroupRef {
            id: g.id.to_string(),
            name: Some(g.name.clone()),
            member_seed: Some(hex::encode(*member_seed)),
            credential: Some(to_base64(&credential)),
            generation: current.as_ref().map(|(generation, _)| *generation),
            key: current.as_ref().map(|(_, k)| hex::encode(**k)),
            seed: admin.then(|| hex::encode(**seed)),
            history: Vec::new(),
        });
        if share_history && let Some(r) = content.group.as_mut() {
            let current = current.as_ref().map(|(generation, _)| *generation);
            r.history = self
                .home
                .group_keys(&g.id)?
                .into_iter()
                .filter(|(generation, _)| Some(*generation) != current)
                .rev()
                .take(MAX_SHARED_KEYS)
                .map(|(generation, key)| GroupKeyShare {
                    generation,
                    key: hex::encode(*key),
                })
                .collect();
        }
        content.profile = self.own_profile()?;
        match self.send_control(member, &content).await? {
            crate::messenger::Delivery::Failed(e) => Err(crate::error::Error::Network(format!(
                "the invitation to {member} could not be delivered: {e}"
            ))),
            // Stored, or kept in the outbox and retried.
            _ => Ok(()),
        }
    }

    /// Keeps an invitation that arrived: joined at once if `approved` (the
    /// sender is a contact), else waiting until the sender is accepted.
    /// Returns the group's name.
    pub(crate) fn keep_invitation(&mut self, mut inv: Invitation, approved: bool) -> Result<String> {
        inv.group.joined = approved;
        if let Some(held) = self.home.group(&inv.group.id)?
            && held.joined
        {
            inv.group.joined = true;
        }
        self.home.put_group(&inv.group)?;
        if let Some((generation, key)) = &inv.generation {
            self.home.put_group_key(&inv.group.id, *generation, key)?;
        }
        for (generation, key) in &inv.history {
            self.home.put_group_key(&inv.group.id, *generation, key)?;
        }
        if inv.group.joined
            && let Some(g) = self.home.group(&inv.group.id)?
        {
            self.remember_group(&g)?;
        }
        Ok(inv.group.name)
    }

    /// Joins the invitations `from` sent while it was not a contact (it
    /// was just accepted). Returns the names of the groups joined.
    pub(crate) fn join_invitations_from(&mut self, from: &AccountId) -> Result<Vec<String>> {
        let mut joined = Vec::new();
        for g in self.home.groups()? {
            if !g.joined && g.inviter.as_ref() == Some(from) && self.home.join_group(&g.id)? {
                self.remember_group(&g)?;
                joined.push(g.name);
            }
        }
        Ok(joined)
    }
}

#[cfg(test)]
mod tests {
    use allium_common::encoding::to_base64;

    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    fn seed() -> [u8; 32] {
        [0x47; 32]
    }

    fn group() -> GroupId {
        GroupId::from_ed25519(*Identity::from_ed25519_seed(&seed()).ed25519_pk())
    }

    fn member() -> AccountId {
        Identity::from_ed25519_seed(&[0x12; 32]).account_id()
    }

    /// An invitation as an admin makes it, with `edit` applied.
    fn invitation(edit: impl FnOnce(&mut GroupRef)) -> Content {
        let (member_seed, credential) = member_secrets(&seed(), &member(), NOW);
        let mut r = GroupRef {
            id: group().to_string(),
            name: Some("garden".into()),
            member_seed: Some(hex::encode(*member_seed)),
            credential: Some(to_base64(&credential)),
            generation: Some(3),
            key: Some(hex::encode([9u8; 32])),
            seed: None,
            history: Vec::new(),
        };
        edit(&mut r);
        let mut content = Content::control(Kind::GroupInvite, NOW);
        content.group = Some(r);
        content
    }

    #[test]
    fn an_admins_invitation_is_read_with_its_key() {
        let from = Identity::from_ed25519_seed(&[0x33; 32]).account_id();
        let inv = read(&invitation(|_| {}), from, NOW).unwrap();
        assert_eq!(inv.group.id, group());
        assert_eq!(inv.group.name, "garden");
        assert_eq!(inv.group.inviter, Some(from));
        assert!(!inv.group.joined && inv.group.seed.is_none());
        let (generation, key) = inv.generation.unwrap();
        assert_eq!((generation, *key), (3, [9; 32]));
        let admin = read(&invitation(|r| r.seed = Some(hex::encode(seed()))), from, NOW).unwrap();
        assert_eq!(admin.group.seed.as_deref(), Some(&seed()));
    }

    #[test]
    fn a_forged_or_mismatched_invitation_is_dropped_whole() {
        let from = member();
        // A credential for another member's sub-key.
        let other = Identity::from_ed25519_seed(&[0x13; 32]).account_id();
        let (_, foreign) = member_secrets(&seed(), &other, NOW);
        assert!(read(&invitation(|r| r.credential = Some(to_base64(&foreign))), from, NOW).is_none());
        // A credential signed by another key than the group's.
        let (_, forged) = member_secrets(&[0x48; 32], &member(), NOW);
        assert!(read(&invitation(|r| r.credential = Some(to_base64(&forged))), from, NOW).is_none());
        // A seed that is not the group key's.
        assert!(read(&invitation(|r| r.seed = Some(hex::encode([0x48; 32]))), from, NOW).is_none());
        // Another Group ID than the credential's.
        let elsewhere = GroupId::from_ed25519(*Identity::from_ed25519_seed(&[0x48; 32]).ed25519_pk());
        assert!(read(&invitation(|r| r.id = elsewhere.to_string()), from, NOW).is_none());
        // Damaged fields.
        assert!(read(&invitation(|r| r.member_seed = Some("zz".into())), from, NOW).is_none());
        assert!(read(&invitation(|r| r.key = Some("00".into())), from, NOW).is_none());
        assert!(read(&invitation(|r| r.credential = None), from, NOW).is_none());
    }

    #[test]
    fn an_invitations_name_is_kept_short_and_without_control_characters() {
        let inv = read(
            &invitation(|r| r.name = Some(format!("\u{1b}[2J{}", "x".repeat(100)))),
            member(),
            NOW,
        )
        .unwrap();
        assert!(!inv.group.name.contains('\u{1b}'));
        assert_eq!(inv.group.name.chars().count(), 64);
    }
}
