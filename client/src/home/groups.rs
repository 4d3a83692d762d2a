//! The groups this account is in, their keys, member lists and messages
//! (`docs/groups.md`, `crate::groups`).

use allium_common::AccountId;
use allium_common::group::GroupId;
use allium_common::group::state::Member;
use rusqlite::{OptionalExtension, params};
use zeroize::Zeroizing;

use super::error::Result;
use super::{Home, to_i64};

/// Most groups one account keeps (joined and invited).
pub const MAX_GROUPS: usize = 500;

/// A group as this device holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// The group.
    pub id: GroupId,
    /// Its name (from the newest info, or the invitation).
    pub name: String,
    /// Its description, if the info has one.
    pub description: Option<String>,
    /// The group seed, if this account is an admin.
    pub seed: Option<Zeroizing<[u8; 32]>>,
    /// This member's sub-key seed.
    pub member_seed: Zeroizing<[u8; 32]>,
    /// This member's credential, signed by the group key.
    pub credential: Vec<u8>,
    /// Who invited this account.
    pub inviter: Option<AccountId>,
    /// Joined (true), or an invitation from a stranger that waits.
    pub joined: bool,
    /// When this device learnt of it (local clock, Unix ms).
    pub created_ms: u64,
    /// The newest info version seen.
    pub info_version: u64,
    /// The newest member list version seen.
    pub members_version: u64,
}

impl GroupRecord {
    /// A group joined now, as a plain member with these secrets (set
    /// `seed`, `inviter` or `joined` after, as the case may be).
    pub fn joined_now(id: GroupId, name: String, member_seed: Zeroizing<[u8; 32]>, credential: Vec<u8>) -> Self {
        Self {
            id,
            name,
            description: None,
            seed: None,
            member_seed,
            credential,
            inviter: None,
            joined: true,
            created_ms: crate::now_ms(),
            info_version: 0,
            members_version: 0,
        }
    }
}

impl std::fmt::Debug for GroupRecord {
    // Never print the seeds.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("admin", &self.seed.is_some())
            .field("joined", &self.joined)
            .finish_non_exhaustive()
    }
}

/// One message of a group's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// The group.
    pub group: GroupId,
    /// Its hash in the group's swarm.
    pub hash: String,
    /// Who sent it (verified: the signature inside the ciphertext).
    pub sender: AccountId,
    /// The sender's timestamp, Unix ms.
    pub sent_ms: u64,
    /// `text`, or `leave`.
    pub kind: String,
    /// The text.
    pub body: String,
}

type GroupRow = (
    String,
    String,
    Option<String>,
    Option<Zeroizing<Vec<u8>>>,
    Zeroizing<Vec<u8>>,
    Vec<u8>,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
);

const GROUP_COLUMNS: &str = "id, name, description, seed, member_seed, credential, inviter, joined, created_ms, \
                             info_version, members_version";

impl Home {
    /// Adds a group, or replaces what this device held of it (a newer
    /// invitation, a promotion, a restore). An admin's seed is never
    /// dropped by a later invitation without one.
    pub fn put_group(&mut self, g: &GroupRecord) -> Result<()> {
        let held = self.groups()?;
        if held.len() >= MAX_GROUPS && !held.iter().any(|h| h.id == g.id) {
            return Err(super::HomeError::InvalidArgument {
                what: "group",
                value: g.id.to_string(),
                reason: "this account is in as many groups as it may keep (500)",
            });
        }
        self.conn
            .execute(
                "INSERT INTO groups (id, name, description, seed, member_seed, credential, inviter, joined, created_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
                 ON CONFLICT (id) DO UPDATE SET seed = coalesce(excluded.seed, seed), \
                 member_seed = excluded.member_seed, credential = excluded.credential, \
                 joined = max(joined, excluded.joined)",
                params![
                    g.id.to_string(),
                    g.name,
                    g.description,
                    g.seed.as_ref().map(|s| s.to_vec()),
                    g.member_seed.to_vec(),
                    g.credential,
                    g.inviter.map(|a| a.to_string()),
                    g.joined,
                    to_i64("group creation time", g.created_ms)?,
                ],
            )
            .map_err(self.db_err("saving a group"))?;
        Ok(())
    }

    /// The groups this device holds, joined or invited, by name.
    pub fn groups(&self) -> Result<Vec<GroupRecord>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {GROUP_COLUMNS} FROM groups ORDER BY name, id"))
            .map_err(self.db_err("listing groups"))?;
        let rows = stmt
            .query_map([], group_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<GroupRow>>>())
            .map_err(self.db_err("listing groups"))?;
        rows.into_iter().map(|r| self.group_from_row(r)).collect()
    }

    /// One group.
    pub fn group(&self, id: &GroupId) -> Result<Option<GroupRecord>> {
        let row = self
            .conn
            .query_row(
                &format!("SELECT {GROUP_COLUMNS} FROM groups WHERE id = ?1"),
                [id.to_string()],
                group_row,
            )
            .optional()
            .map_err(self.db_err("reading a group"))?;
        row.map(|r| self.group_from_row(r)).transpose()
    }

    /// Forgets a group and everything held of it (leaving, or removed).
    pub fn forget_group(&mut self, id: &GroupId) -> Result<()> {
        let tx = self.immediate_tx("forgetting a group")?;
        for table in [
            "groups WHERE id",
            "group_keys WHERE group_id",
            "group_members WHERE group_id",
        ] {
            tx.execute(&format!("DELETE FROM {table} = ?1"), [id.to_string()])
                .map_err(self.db_err("forgetting a group"))?;
        }
        tx.commit().map_err(self.db_err("forgetting a group"))
    }

    /// Marks an invitation accepted.
    pub fn join_group(&mut self, id: &GroupId) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE groups SET joined = 1 WHERE id = ?1 AND joined = 0",
                [id.to_string()],
            )
            .map_err(self.db_err("joining a group"))?;
        Ok(n > 0)
    }

    /// Keeps info `version` if it is newer than the one held; says whether
    /// it was.
    pub fn set_group_info(
        &mut self,
        id: &GroupId,
        version: u64,
        name: &str,
        description: Option<&str>,
    ) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE groups SET info_version = ?2, name = ?3, description = ?4 WHERE id = ?1 AND info_version < ?2",
                params![id.to_string(), to_i64("info version", version)?, name, description],
            )
            .map_err(self.db_err("saving a group's info"))?;
        Ok(n > 0)
    }

    /// Keeps member list `version` if it is newer than the one held; says
    /// whether it was.
    pub fn set_group_members(&mut self, id: &GroupId, version: u64, members: &[Member]) -> Result<bool> {
        let tx = self.immediate_tx("saving a group's members")?;
        let n = tx
            .execute(
                "UPDATE groups SET members_version = ?2 WHERE id = ?1 AND members_version < ?2",
                params![id.to_string(), to_i64("member list version", version)?],
            )
            .map_err(self.db_err("saving a group's members"))?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute("DELETE FROM group_members WHERE group_id = ?1", [id.to_string()])
            .map_err(self.db_err("saving a group's members"))?;
        {
            let mut stmt = tx
                .prepare("INSERT OR REPLACE INTO group_members (group_id, account, admin) VALUES (?1, ?2, ?3)")
                .map_err(self.db_err("saving a group's members"))?;
            for m in members {
                stmt.execute(params![id.to_string(), m.account.to_string(), m.admin])
                    .map_err(self.db_err("saving a group's members"))?;
            }
        }
        tx.commit().map_err(self.db_err("saving a group's members"))?;
        Ok(true)
    }

    /// The newest member list held.
    pub fn group_members(&self, id: &GroupId) -> Result<Vec<Member>> {
        let mut stmt = self
            .conn
            .prepare("SELECT account, admin FROM group_members WHERE group_id = ?1 ORDER BY account")
            .map_err(self.db_err("reading a group's members"))?;
        let rows = stmt
            .query_map([id.to_string()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.db_err("reading a group's members"))?;
        rows.into_iter()
            .map(|(account, admin)| {
                Ok(Member {
                    account: super::parse_account(self, "group member", &account)?,
                    admin,
                })
            })
            .collect()
    }

    /// Keeps the key of `generation` (the first one seen wins).
    pub fn put_group_key(&mut self, id: &GroupId, generation: u32, key: &[u8; 32]) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO group_keys (group_id, generation, key) VALUES (?1, ?2, ?3)",
                params![id.to_string(), generation, key.as_slice()],
            )
            .map_err(self.db_err("saving a group key"))?;
        Ok(())
    }

    /// The key of `generation`, if held.
    pub fn group_key(&self, id: &GroupId, generation: u32) -> Result<Option<Zeroizing<[u8; 32]>>> {
        let key: Option<Zeroizing<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT key FROM group_keys WHERE group_id = ?1 AND generation = ?2",
                params![id.to_string(), generation],
                |r| r.get(0).map(Zeroizing::new),
            )
            .optional()
            .map_err(self.db_err("reading a group key"))?;
        key.map(|k| {
            <[u8; 32]>::try_from(k.as_slice())
                .map(Zeroizing::new)
                .map_err(|_| self.corrupt("group keys", "a key is not 32 bytes"))
        })
        .transpose()
    }

    /// The newest generation held and its key.
    pub fn group_current_key(&self, id: &GroupId) -> Result<Option<(u32, Zeroizing<[u8; 32]>)>> {
        let generation: Option<u32> = self
            .conn
            .query_row(
                "SELECT max(generation) FROM group_keys WHERE group_id = ?1",
                [id.to_string()],
                |r| r.get(0),
            )
            .map_err(self.db_err("reading a group key"))?;
        let Some(generation) = generation else {
            return Ok(None);
        };
        Ok(self.group_key(id, generation)?.map(|k| (generation, k)))
    }

    /// Every generation's key held (an admin may share them).
    pub fn group_keys(&self, id: &GroupId) -> Result<Vec<(u32, Zeroizing<[u8; 32]>)>> {
        let mut stmt = self
            .conn
            .prepare("SELECT generation FROM group_keys WHERE group_id = ?1 ORDER BY generation")
            .map_err(self.db_err("reading group keys"))?;
        let generations = stmt
            .query_map([id.to_string()], |r| r.get::<_, u32>(0))
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(self.db_err("reading group keys"))?;
        let mut out = Vec::with_capacity(generations.len());
        for g in generations {
            if let Some(k) = self.group_key(id, g)? {
                out.push((g, k));
            }
        }
        Ok(out)
    }

    /// Records a group message; false if it was known.
    pub fn record_group_message(&mut self, e: &GroupEntry, local_ms: u64) -> Result<bool> {
        super::check_hash(&e.hash)?;
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO group_history (group_id, hash, sender, sent_ms, local_ms, kind, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    e.group.to_string(),
                    e.hash,
                    e.sender.to_string(),
                    to_i64("sent time", e.sent_ms)?,
                    to_i64("local time", local_ms)?,
                    e.kind,
                    e.body
                ],
            )
            .map_err(self.db_err("recording a group message"))?;
        Ok(n > 0)
    }

    /// The group and sender of group message `hash`, if this device
    /// recorded it.
    pub fn group_message(&self, hash: &str) -> Result<Option<(GroupId, AccountId)>> {
        let row: Option<(String, String)> = self
            .conn
            .query_row(
                "SELECT group_id, sender FROM group_history WHERE hash = ?1",
                [hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.db_err("reading a group message"))?;
        row.map(|(group, sender)| {
            Ok((
                group
                    .parse()
                    .map_err(|_| self.corrupt("group history", "a Group ID does not parse"))?,
                super::parse_account(self, "group message sender", &sender)?,
            ))
        })
        .transpose()
    }

    /// Forgets group message `hash` (taken back).
    pub fn forget_group_message(&mut self, hash: &str) -> Result<bool> {
        let n = self
            .conn
            .execute("DELETE FROM group_history WHERE hash = ?1", [hash])
            .map_err(self.db_err("forgetting a group message"))?;
        Ok(n > 0)
    }

    /// The last `limit` messages of a group (all groups: `None`), oldest
    /// first.
    pub fn group_history(&self, group: Option<&GroupId>, limit: usize) -> Result<Vec<GroupEntry>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT group_id, hash, sender, sent_ms, kind, body FROM (\
                 SELECT * FROM group_history WHERE ?1 IS NULL OR group_id = ?1 ORDER BY local_ms DESC, id DESC LIMIT ?2\
                 ) ORDER BY local_ms, id",
            )
            .map_err(self.db_err("reading group history"))?;
        type Row = (String, String, String, i64, String, String);
        let rows = stmt
            .query_map(params![group.map(ToString::to_string), limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<Row>>>())
            .map_err(self.db_err("reading group history"))?;
        rows.into_iter()
            .map(|(group, hash, sender, sent, kind, body)| {
                Ok(GroupEntry {
                    group: group
                        .parse()
                        .map_err(|_| self.corrupt("group history", "a Group ID does not parse"))?,
                    hash,
                    sender: super::parse_account(self, "group message sender", &sender)?,
                    sent_ms: u64::try_from(sent).unwrap_or(0),
                    kind,
                    body,
                })
            })
            .collect()
    }

    fn group_from_row(&self, r: GroupRow) -> Result<GroupRecord> {
        let (id, name, description, seed, member_seed, credential, inviter, joined, created, info, members) = r;
        let secret = |bytes: &[u8]| {
            <[u8; 32]>::try_from(bytes)
                .map(Zeroizing::new)
                .map_err(|_| self.corrupt("groups", "a seed is not 32 bytes"))
        };
        Ok(GroupRecord {
            id: id
                .parse()
                .map_err(|_| self.corrupt("groups", "a Group ID does not parse"))?,
            name,
            description,
            seed: seed.as_deref().map(|s| secret(s)).transpose()?,
            member_seed: secret(&member_seed)?,
            credential,
            inviter: inviter
                .as_deref()
                .map(|a| super::parse_account(self, "group inviter", a))
                .transpose()?,
            joined: joined == 1,
            created_ms: u64::try_from(created).unwrap_or(0),
            info_version: u64::try_from(info).unwrap_or(0),
            members_version: u64::try_from(members).unwrap_or(0),
        })
    }
}

fn group_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get::<_, Option<Vec<u8>>>(3)?.map(Zeroizing::new),
        Zeroizing::new(r.get(4)?),
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
    ))
}
