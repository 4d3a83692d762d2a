//! Reading the groups: one `batch` per group to a member of its swarm,
//! retrieving what is new in its keys, info, member list and messages, with
//! a cursor per namespace and node. Fetching costs the same whatever the
//! member count, except the key messages (one entry per member).

use allium_common::AccountId;
use allium_common::content::Kind;
use allium_common::encoding::from_base64;
use allium_common::group::GroupId;
use allium_common::group::keys::GroupKeys;
use allium_common::group::message;
use allium_common::group::state::{Info, open_members};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::Namespace;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::Signer;
use crate::error::Result;
use crate::home::{GroupEntry, GroupRecord, Home};
use crate::messenger::Messenger;

/// The namespaces read, in the order they are applied: keys first, so the
/// documents and messages sealed under a new generation open.
const READ_ORDER: [Namespace; 4] = [
    Namespace::GROUP_KEYS,
    Namespace::GROUP_INFO,
    Namespace::GROUP_MEMBERS,
    Namespace::GROUP_MESSAGES,
];
/// Most batches (pages) read from one group in one round.
const MAX_PAGES: usize = 8;

/// A new message in a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupReceived {
    /// The message, as recorded.
    pub entry: GroupEntry,
    /// The group's name.
    pub group_name: String,
    /// The sender's name: a contact's nickname, or the display name its
    /// message carried.
    pub sender_name: Option<String>,
    /// The files it carried.
    pub files: Vec<crate::files::FileNote>,
}

impl GroupPage {
    /// Whether it has nothing to show.
    pub fn shows_nothing(&self) -> bool {
        self.messages.is_empty() && self.removed.is_empty() && self.joined.is_empty() && self.left.is_empty()
    }
}

/// What one round over the groups found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPage {
    /// New messages, oldest first per group.
    pub messages: Vec<GroupReceived>,
    /// Groups this account was found removed from (by name).
    pub removed: Vec<String>,
    /// Groups joined through another device or a restore (by name).
    pub joined: Vec<String>,
    /// Members this admin removed because they left (group name, count).
    pub left: Vec<(String, usize)>,
    /// Items that did not open (no key for their generation, forged,
    /// damaged): skipped.
    pub unreadable: usize,
}

impl Messenger {
    /// Reads every joined group once. With `wait_ms`, and exactly one
    /// group, its messages retrieve is held open that long for something
    /// new (several groups live on several swarms: none is waited on).
    pub async fn group_round(&mut self, wait_ms: Option<u64>) -> Result<GroupPage> {
        let mut page = GroupPage {
            joined: self.follow_group_state()?,
            ..GroupPage::default()
        };
        let groups: Vec<GroupRecord> = self.home.groups()?.into_iter().filter(|g| g.joined).collect();
        let wait = if groups.len() == 1 { wait_ms } else { None };
        for g in groups {
            if let Err(e) = self.read_group(&g, &READ_ORDER, wait, &mut page).await {
                tracing::debug!(group = %g.id, error = %e, "a group could not be read this round");
            }
        }
        Ok(page)
    }

    /// Reads the keys, info and member list of `group` (not its messages,
    /// which stay new for the next `inbox`): before sending, so that a
    /// rekey since the last round is followed.
    pub async fn refresh_group(&mut self, group: &GroupId) -> Result<GroupPage> {
        let mut page = GroupPage::default();
        let g = self.joined_group(group)?;
        self.read_group(&g, &READ_ORDER[..3], None, &mut page).await?;
        Ok(page)
    }

    async fn read_group(
        &mut self,
        g: &GroupRecord,
        namespaces: &[Namespace],
        wait_ms: Option<u64>,
        page: &mut GroupPage,
    ) -> Result<()> {
        let signer = Signer::member(g);
        let mut wait = wait_ms;
        // Back to the node read last: its cursors are current, so a
        // long-poll there waits for what is new instead of answering at
        // once with what another node's stale cursor has not passed.
        let last = format!("group:{}", &g.id.to_string()[..34]);
        let mut prefer = self.last_node(&last);
        let mut leavers: Vec<AccountId> = Vec::new();
        for _ in 0..MAX_PAGES {
            let make = |home: &Home, node: &NodeEntry, ts: u64| -> Result<Value> {
                let mut requests = Vec::with_capacity(namespaces.len());
                for &ns in namespaces {
                    let cursor = home.cursor(&cursor_key(&g.id, ns, node))?;
                    let held = if ns == Namespace::GROUP_MESSAGES { wait } else { None };
                    requests.push(signer.retrieve(&g.id, ns, ts, cursor, held));
                }
                Ok(json!({"method": "batch", "params": {"requests": requests}}))
            };
            let timeout = crate::messenger::REQUEST_TIMEOUT + std::time::Duration::from_millis(wait.unwrap_or(0));
            let (status, body, node) = self
                .call(&g.id, &make, timeout, prefer, &std::collections::HashSet::new())
                .await?;
            if status != 200 {
                return Err(crate::messenger::swarm_refused("to read the group", status, &body));
            }
            self.remember_node(&last, &node)?;
            let results = body["results"].as_array().cloned().unwrap_or_default();
            if results.iter().any(|r| r["code"] == 403) {
                // The group revoked this member: it was removed.
                self.forget_group_everywhere(&g.id)?;
                page.removed.push(g.name.clone());
                return Ok(());
            }
            let mut more = false;
            for (ns, result) in namespaces.iter().zip(&results) {
                if result["code"] != 200 {
                    continue;
                }
                let items = result["body"]["messages"].as_array().cloned().unwrap_or_default();
                // Messages are read after the list (READ_ORDER), so this is
                // the newest list the page brought; the book is read once
                // for all of them.
                let senders = if *ns == Namespace::GROUP_MESSAGES && !items.is_empty() {
                    Some(Senders {
                        listed: self.home.group_members(&g.id)?.into_iter().map(|m| m.account).collect(),
                        book: self.book()?,
                    })
                } else {
                    None
                };
                for item in &items {
                    self.apply_item(g, *ns, senders.as_ref(), item, page, &mut leavers)?;
                }
                if let Some(last) = items.last().and_then(|m| m["hash"].as_str()) {
                    self.home.set_cursor(&cursor_key(&g.id, *ns, &node), last)?;
                }
                more |= result["body"]["more"] == Value::Bool(true) && !items.is_empty();
            }
            let me = self.home.account_id();
            let listed = self.home.group_members(&g.id)?;
            if !listed.is_empty() && !listed.iter().any(|m| m.account == me) {
                // The newest member list no longer names this account.
                self.forget_group_everywhere(&g.id)?;
                page.removed.push(g.name.clone());
                return Ok(());
            }
            if !more {
                break;
            }
            wait = None;
            prefer = Some(node.ed25519.0);
        }
        if let Err(e) = self.refresh_if_due(g).await {
            tracing::debug!(group = %g.id, error = %e, "the group's state was not stored again yet");
        }
        let me = self.home.account_id();
        leavers.retain(|a| *a != me);
        leavers.sort();
        leavers.dedup();
        if !leavers.is_empty() && g.seed.is_some() {
            let members = self.home.group_members(&g.id)?;
            leavers.retain(|a| members.iter().any(|m| m.account == *a));
            if !leavers.is_empty() {
                self.remove_from_group(&g.id, &leavers).await?;
                page.left.push((g.name.clone(), leavers.len()));
            }
        }
        Ok(())
    }

    /// Applies one item of namespace `ns`. A message is taken only from an
    /// account on the newest member list (when one was read): a removed
    /// member still holds old keys, and a node of its own could serve what
    /// it sealed under them.
    fn apply_item(
        &mut self,
        g: &GroupRecord,
        ns: Namespace,
        senders: Option<&Senders>,
        item: &Value,
        page: &mut GroupPage,
        leavers: &mut Vec<AccountId>,
    ) -> Result<()> {
        let (Some(hash), Some(data)) = (item["hash"].as_str(), item["data"].as_str()) else {
            page.unreadable += 1;
            return Ok(());
        };
        let Ok(bytes) = from_base64(data) else {
            page.unreadable += 1;
            return Ok(());
        };
        let id = g.id;
        let home = &self.home;
        let key_for =
            |generation: u32| -> Option<Zeroizing<[u8; 32]>> { home.group_key(&id, generation).ok().flatten() };
        match ns {
            Namespace::GROUP_KEYS => {
                let identity = self.home.identity();
                // A key message without an entry for this member (a
                // generation after its removal, or before its joining), or
                // a forged one, gives nothing.
                if let Ok((generation, key)) = GroupKeys::decode(&bytes, &id)
                    .and_then(|k| Ok((k.generation, k.open(identity.x25519_sk(), identity.x25519_pk())?)))
                {
                    self.home.put_group_key(&id, generation, &key)?;
                }
            }
            Namespace::GROUP_INFO => match Info::open(&bytes, &id, key_for) {
                Ok(doc) => {
                    let renamed = doc.body.name != g.name;
                    // The synced state keeps the name too: written only
                    // when it changed, so reading does not make a store.
                    if self
                        .home
                        .set_group_info(&id, doc.version, &doc.body.name, doc.body.description.as_deref())?
                        && renamed
                        && let Some(held) = self.home.group(&id)?
                    {
                        self.remember_group(&held)?;
                    }
                }
                Err(_) => page.unreadable += 1,
            },
            Namespace::GROUP_MEMBERS => match open_members(&bytes, &id, key_for) {
                // Whether the newest list still names this account is
                // decided once the page is read: older lists come first.
                Ok(doc) => {
                    self.home.set_group_members(&id, doc.version, &doc.body)?;
                }
                Err(_) => page.unreadable += 1,
            },
            _ => match (message::open(&id, key_for, &bytes), senders) {
                (_, None) => {}
                (Ok(opened), Some(Senders { listed, .. }))
                    if !listed.is_empty() && !listed.contains(&opened.sender) =>
                {
                    page.unreadable += 1;
                    tracing::debug!(%hash, "a group message from an account not on the member list was skipped");
                }
                (Ok(opened), Some(Senders { book, .. })) => {
                    let kind = match opened.content.kind {
                        Kind::Text => "text",
                        Kind::GroupLeave => {
                            leavers.push(opened.sender);
                            "leave"
                        }
                        _ => return Ok(()),
                    };
                    let entry = GroupEntry {
                        group: id,
                        hash: hash.to_owned(),
                        sender: opened.sender,
                        sent_ms: opened.content.ts,
                        kind: kind.to_owned(),
                        body: opened.content.body.clone().unwrap_or_default(),
                    };
                    // A blocked account's group messages are kept in the
                    // history (the group holds them anyway) but not shown.
                    let new = self.home.record_group_message(&entry, crate::now_ms())?;
                    let files = if new {
                        self.keep_files(hash, &opened.content)?
                    } else {
                        Vec::new()
                    };
                    if new && opened.sender != self.home.account_id() && !book.is_blocked(&opened.sender) {
                        let sender_name = book.shown_name(&opened.sender).map(str::to_owned).or_else(|| {
                            opened
                                .content
                                .profile
                                .as_ref()
                                .and_then(|p| p.name.clone())
                                .filter(|n| crate::home::validate_name(n).is_ok())
                        });
                        page.messages.push(GroupReceived {
                            entry,
                            group_name: g.name.clone(),
                            sender_name,
                            files,
                        });
                    }
                }
                (Err(_), Some(_)) => page.unreadable += 1,
            },
        }
        Ok(())
    }
}

/// Who may have sent a page's group messages, and how to name them.
struct Senders {
    /// The newest member list (empty if none was read yet).
    listed: std::collections::HashSet<AccountId>,
    /// The contacts, for names and blocks.
    book: crate::book::Book,
}

/// The retrieve cursor of a group's namespace on a node.
fn cursor_key(group: &GroupId, ns: Namespace, node: &NodeEntry) -> String {
    format!(
        "group{}:{}:{}",
        ns.0,
        &group.to_string()[..18],
        hex::encode(&node.ed25519.0[..8])
    )
}
