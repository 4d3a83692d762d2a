//! `allium group`: create private groups, change their members, list them
//! (`docs/groups.md`); and printing what the groups said, for `inbox`,
//! `watch` and `history`.

use clap::Subcommand;
use serde_json::json;

use super::{EXIT_NOTHING, EXIT_OK, emit, fmt_time, recipient};
use crate::book::Book;
use crate::display::escape;
use crate::error::{Error, Result};
use crate::files::FileNote;
use crate::groups::{Created, GroupPage};
use crate::home::{GroupEntry, GroupRecord};
use crate::messenger::Messenger;

/// `allium group ...`.
#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group with this account as its admin, inviting members.
    Create {
        /// The group's name (at most 64 characters).
        name: String,
        /// A member to invite: contact name or Account ID (repeatable).
        #[arg(long = "member")]
        members: Vec<String>,
    },
    /// Invite members (admins only): a new group key is made, so they read
    /// from their joining on, unless `--share-history`.
    Add {
        /// Group name or Group ID.
        group: String,
        /// Contact names or Account IDs.
        #[arg(required = true)]
        members: Vec<String>,
        /// Also give them the keys of earlier generations this device
        /// holds, so they read what the group's swarm still has from
        /// before (up to 14 days).
        #[arg(long)]
        share_history: bool,
    },
    /// Remove members (admins only): their credentials are revoked on the
    /// group's swarm and the group key is replaced.
    Remove {
        /// Group name or Group ID.
        group: String,
        /// Contact names or Account IDs.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Make members admins (admins only): they get the group key.
    Promote {
        /// Group name or Group ID.
        group: String,
        /// Contact names or Account IDs.
        #[arg(required = true)]
        members: Vec<String>,
    },
    /// Leave a group, on every device of this account.
    Leave {
        /// Group name or Group ID.
        group: String,
    },
    /// Show a group: its ID, name, members and admins.
    Info {
        /// Group name or Group ID.
        group: String,
    },
    /// List the groups this account is in, and invitations that wait.
    List,
}

/// `allium group ...`.
pub async fn group(m: &mut Messenger, action: GroupCommand, json: bool) -> Result<i32> {
    let book = m.book()?;
    let accounts = |names: &[String]| names.iter().map(|n| recipient(&book, n)).collect::<Result<Vec<_>>>();
    match action {
        GroupCommand::Create { name, members } => {
            if name.trim().is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
                return Err(Error::Usage(
                    "a group's name has 1 to 64 characters, none of them control characters".into(),
                ));
            }
            let members = accounts(&members)?;
            m.nodes().await?;
            let created = m.create_group(&name, &members).await?;
            print_change(json, "created", &created);
            super::flush_outbox(m, json).await;
        }
        GroupCommand::Add {
            group,
            members,
            share_history,
        } => {
            let g = m.find_group(&group)?;
            let members = accounts(&members)?;
            m.refresh_group(&g.id).await?;
            let done = m.add_to_group(&g.id, &members, share_history).await?;
            print_change(json, "added", &done);
            super::flush_outbox(m, json).await;
        }
        GroupCommand::Remove { group, members } => {
            let g = m.find_group(&group)?;
            let members = accounts(&members)?;
            m.refresh_group(&g.id).await?;
            let started = std::time::Instant::now();
            let done = m.remove_from_group(&g.id, &members).await?;
            let ms = started.elapsed().as_millis();
            if json {
                let mut v = serde_json::to_value(&done).unwrap_or_default();
                v["action"] = json!("removed");
                v["rekey_ms"] = json!(ms);
                emit(true, v, String::new);
            } else {
                print_change(false, "removed", &done);
            }
        }
        GroupCommand::Promote { group, members } => {
            let g = m.find_group(&group)?;
            let members = accounts(&members)?;
            m.refresh_group(&g.id).await?;
            let done = m.promote_in_group(&g.id, &members).await?;
            print_change(json, "promoted", &done);
            super::flush_outbox(m, json).await;
        }
        GroupCommand::Leave { group } => {
            let g = m.find_group(&group)?;
            m.leave_group(&g.id).await?;
            emit(json, json!({"left": g.id.to_string(), "name": g.name}), || {
                format!("left {}", escape(&g.name))
            });
        }
        GroupCommand::Info { group } => {
            m.follow_group_state()?;
            let g = m.find_group(&group)?;
            if g.joined {
                m.refresh_group(&g.id).await?;
            }
            let g = m.find_group(&group)?;
            let members = m.home.group_members(&g.id)?;
            let generation = m.home.group_current_key(&g.id)?.map(|(n, _)| n);
            let listed: Vec<serde_json::Value> = members
                .iter()
                .map(|x| json!({"account": x.account.to_string(), "name": book.shown_name(&x.account), "admin": x.admin}))
                .collect();
            emit(
                json,
                json!({"id": g.id.to_string(), "name": g.name, "description": g.description, "admin": g.seed.is_some(),
                       "joined": g.joined, "generation": generation, "members": listed}),
                || {
                    let mut text = format!(
                        "{}\n{}{}\nkey generation {}\n{} members:",
                        escape(&g.name),
                        g.id,
                        if g.seed.is_some() { " (you are an admin)" } else { "" },
                        generation.map_or("none yet".to_owned(), |n| n.to_string()),
                        members.len()
                    );
                    let me = m.home.account_id();
                    for x in &members {
                        let name = if x.account == me {
                            "you".to_owned()
                        } else {
                            super::fmt_from(&x.account, book.shown_name(&x.account), None)
                        };
                        text.push_str(&format!("\n  {name}{}", if x.admin { " (admin)" } else { "" }));
                    }
                    text
                },
            );
        }
        GroupCommand::List => {
            m.follow_group_state()?;
            let groups = m.home.groups()?;
            for g in &groups {
                print_group(json, g);
            }
            return Ok(if groups.is_empty() { EXIT_NOTHING } else { EXIT_OK });
        }
    }
    Ok(EXIT_OK)
}

fn print_group(json: bool, g: &GroupRecord) {
    emit(
        json,
        json!({"id": g.id.to_string(), "name": g.name, "admin": g.seed.is_some(), "joined": g.joined,
               "inviter": g.inviter.map(|a| a.to_string())}),
        || {
            let state = match (g.joined, g.seed.is_some()) {
                (false, _) => " (invitation waiting: accept its sender)",
                (true, true) => " (admin)",
                (true, false) => "",
            };
            format!("{} {}{state}", g.id, escape(&g.name))
        },
    );
}

fn print_change(json: bool, action: &str, c: &Created) {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    v["action"] = json!(action);
    emit(json, v, || {
        format!(
            "{action}: {} {} — {} members, key generation {}{}{}",
            c.id,
            escape(&c.name),
            c.members,
            c.generation,
            if c.invited > 0 {
                format!(", {} invited", c.invited)
            } else {
                String::new()
            },
            if c.key_message_bytes > 0 {
                format!(", key message {} bytes", c.key_message_bytes)
            } else {
                String::new()
            }
        )
    });
    for id in &c.not_invited {
        eprintln!("allium: the invitation to {id} could not be sent; `allium group add` tries again");
    }
}

/// What `watch`'s group session shares with the inbox loop.
pub struct Watching {
    /// Print JSON.
    pub json: bool,
    /// Stop then.
    pub deadline: Option<std::time::Instant>,
    /// Stop once this many messages were printed (inbox and groups).
    pub count: Option<usize>,
    /// Messages printed so far, by both loops.
    pub seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Told when `count` is reached here.
    pub done: std::sync::Arc<tokio::sync::Notify>,
}

/// How often the group session looks again when it cannot long-poll: no
/// group joined yet, or several groups (several swarms).
pub(crate) const GROUP_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// `watch`'s group session: reads the groups in a loop, long-polling the
/// group's swarm when there is one group, and prints what arrives.
pub async fn watch(mut m: Messenger, w: Watching) {
    use std::sync::atomic::Ordering;
    loop {
        let remaining = w
            .deadline
            .map(|d| d.saturating_duration_since(std::time::Instant::now()));
        if remaining.is_some_and(|r| r.is_zero()) {
            return;
        }
        let joined = m.joined_groups();
        if joined == 0 {
            tokio::time::sleep(GROUP_POLL).await;
            continue;
        }
        let wait = remaining.map_or(crate::messenger::WATCH_WAIT_MS, |r| {
            u64::try_from(r.as_millis())
                .unwrap_or(u64::MAX)
                .min(crate::messenger::WATCH_WAIT_MS)
        });
        match m.group_round(Some(wait.max(1))).await {
            Ok(page) => {
                if let Ok(book) = m.book() {
                    print_group_page(w.json, &book, &page);
                }
                super::files::auto_save(&mut m, &Default::default(), Some(&page), w.json).await;
                let now = w.seen.fetch_add(page.messages.len(), Ordering::SeqCst) + page.messages.len();
                if w.count.is_some_and(|c| now >= c) {
                    w.done.notify_one();
                    return;
                }
                if joined > 1 {
                    tokio::time::sleep(GROUP_POLL).await;
                }
            }
            Err(e) => {
                eprintln!("allium: {}; retrying", escape(&e.to_string()));
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// Prints what a round over the groups found.
pub fn print_group_page(json: bool, book: &Book, page: &GroupPage) {
    for r in &page.messages {
        print_entry(json, book, &r.entry, &r.group_name, r.sender_name.as_deref(), &r.files);
    }
    for name in &page.joined {
        emit(json, json!({"group_joined": name}), || {
            format!("joined the group {} (from another device)", escape(name))
        });
    }
    for name in &page.removed {
        emit(json, json!({"group_removed": name}), || {
            format!("removed from the group {}", escape(name))
        });
    }
    for (name, n) in &page.left {
        emit(json, json!({"group": name, "left_and_removed": n}), || {
            format!("{n} member(s) left {}: removed, new key made", escape(name))
        });
    }
}

/// Prints one group message.
pub fn print_entry(
    json: bool,
    book: &Book,
    e: &GroupEntry,
    group_name: &str,
    sender_name: Option<&str>,
    files: &[FileNote],
) {
    let name = book.shown_name(&e.sender).or(sender_name);
    emit(
        json,
        json!({"group": e.group.to_string(), "group_name": group_name, "from": e.sender.to_string(), "name": name,
               "timestamp": e.sent_ms, "kind": e.kind, "body": e.body, "hash": e.hash, "files": files}),
        || {
            let said = if e.kind == "leave" {
                "[left the group]".to_owned()
            } else {
                format!("{}{}", escape(&e.body), FileNote::describe(files))
            };
            format!(
                "[{}] {} / {}: {said}",
                fmt_time(e.sent_ms),
                escape(group_name),
                super::fmt_from(&e.sender, name, None)
            )
        },
    );
}
