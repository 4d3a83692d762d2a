//! The commands that read and edit what the account's devices share:
//! `profile`, `contacts`, `requests`, and the sync that runs before the
//! inbox is read.

use allium_common::AccountId;
use clap::Subcommand;
use serde_json::json;

use super::{EXIT_ERROR, EXIT_NOTHING, EXIT_OK, emit, fmt_time, recipient};
use crate::book::{self, Book};
use crate::display::escape;
use crate::error::{Error, Result};
use crate::messenger::{Delivery, Messenger};
use crate::publish::KeptKeys;
use crate::sync::{self, Synced};

/// `allium contacts ...`.
#[derive(Debug, Subcommand)]
pub enum ContactsCommand {
    /// Add a contact: its messages reach the inbox.
    Add {
        /// Name.
        name: String,
        /// Account ID.
        account_id: String,
    },
    /// List contacts (and blocked accounts).
    List,
    /// Remove a contact (its later messages are requests again).
    Remove {
        /// Name.
        name: String,
    },
    /// Block an account: its messages are dropped unseen and deleted.
    Block {
        /// Contact name or Account ID.
        who: String,
    },
    /// Unblock an account.
    Unblock {
        /// Contact name or Account ID.
        who: String,
    },
}

/// `allium requests ...`.
#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// Accept a request: the sender becomes a contact and is told so.
    Accept {
        /// The sender's Account ID.
        account_id: String,
        /// Save the sender under this name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Decline a request: its messages are deleted.
    Decline {
        /// The sender's Account ID.
        account_id: String,
        /// Also block the sender.
        #[arg(long)]
        block: bool,
    },
}

/// Brings this device's account state and the swarm's copy together; a
/// failure is reported and not fatal (the inbox can still be read).
pub async fn sync_quietly(m: &mut Messenger) -> Option<Vec<Synced>> {
    match m.sync_account().await {
        Ok(synced) => {
            if let Some(notes) = m.take_device_notes()
                && m.is_linked().unwrap_or(false)
            {
                super::devices::note_requests(&notes);
                super::devices::warn_foreign(&notes);
            }
            Some(synced)
        }
        Err(e) => {
            eprintln!(
                "allium: could not sync the account state with the swarm (kept here, tried again next time): {}",
                escape(&e.to_string())
            );
            None
        }
    }
}

/// What an inbox round leaves to do: store what this device edited since
/// its last store, and, once the account publishes envelope v2 keys,
/// rotate them and delete expired secrets when due (nothing leaves when
/// nothing is due). Failures are reported and not fatal.
pub async fn after_round(m: &mut Messenger) {
    // Nodes keep the avatar 14 days: store it again in time.
    if let Err(e) = m.refresh_avatar().await {
        tracing::debug!(error = %e, "the avatar was not stored again yet");
    }
    if let Err(e) = m.sync_edited().await {
        eprintln!(
            "allium: could not store the account state's changes yet (tried again next time): {}",
            escape(&e.to_string())
        );
    }
    match m.keep_keys().await {
        Ok(KeptKeys::Published(p)) if p.stored => match m.foreign_bundles().await {
            Ok(n) => super::devices::warn_foreign_bundles(n),
            Err(e) => tracing::debug!(error = %e, "the account's bundles were not checked"),
        },
        Ok(KeptKeys::MustLink) => eprintln!(
            "allium: this account's other devices use forward secrecy: what is sealed to their keys cannot be \
             read here until this device is linked. Run `allium devices link` here and approve it on one of them."
        ),
        Ok(_) => {}
        Err(e) => eprintln!(
            "allium: could not rotate or publish the envelope v2 keys yet (tried again next time): {}",
            escape(&e.to_string())
        ),
    }
}

/// What `allium profile` changes.
#[derive(Debug, Default)]
pub struct ProfileEdit {
    /// A new display name.
    pub name: Option<String>,
    /// Read receipts on or off.
    pub read_receipts: Option<bool>,
    /// A new avatar image (`none`: remove it).
    pub avatar: Option<std::path::PathBuf>,
}

/// `allium profile [--name NAME] [--read-receipts on|off] [--avatar PATH]`.
pub async fn profile(m: &mut Messenger, edit: ProfileEdit, json: bool) -> Result<i32> {
    if let Some(name) = &edit.name {
        crate::home::validate_name(name)?;
        let value = serde_json::Value::String(name.clone());
        m.edit_account_state(sync::PROFILE, |state, stamp| {
            state.set(sync::PROFILE_NAME, value, stamp);
        })?;
    }
    if let Some(on) = edit.read_receipts {
        m.edit_account_state(sync::PROFILE, |state, stamp| {
            state.set(sync::READ_RECEIPTS, serde_json::Value::Bool(on), stamp);
        })?;
    }
    if let Some(path) = &edit.avatar {
        let image = (path.as_os_str() != "none").then_some(path.as_path());
        m.set_avatar(image).await?;
    }
    let synced = m.sync_account().await?;
    let profile = m.account_state(sync::PROFILE)?;
    let shown = profile
        .get(sync::PROFILE_NAME)
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let receipts = m.read_receipts()?;
    let avatar = profile
        .get(crate::files::PROFILE_AVATAR)
        .and_then(|v| allium_common::files::Manifest::from_json(v).ok())
        .map(|a| a.size);
    emit(
        json,
        json!({"name": shown, "read_receipts": receipts, "avatar_bytes": avatar, "synced": synced}),
        || {
            let name = match &shown {
                Some(n) => format!("Name: {}", escape(n)),
                None => "No name set (allium profile --name NAME)".to_owned(),
            };
            let avatar = match avatar {
                Some(size) => format!("an image of {}", crate::files::human_size(size)),
                None => "none (allium profile --avatar PATH)".to_owned(),
            };
            format!(
                "{name}\nRead receipts: {}\nAvatar: {avatar}",
                if receipts { "on" } else { "off" }
            )
        },
    );
    Ok(EXIT_OK)
}

/// `allium contacts ...`: edits are kept here at once and synced to the
/// account's other devices now if the network can be reached, else at
/// the next command that syncs.
pub async fn contacts(m: &mut Messenger, sub: ContactsCommand, json: bool) -> Result<i32> {
    match sub {
        ContactsCommand::Add { name, account_id } => {
            let id = parse_id(&account_id)?;
            m.edit_account_state(book::CONTACTS, |state, stamp| book::add(state, &name, &id, stamp))??;
            emit(json, json!({"added": name, "account_id": id.to_string()}), || {
                format!("added {}", escape(&name))
            });
        }
        ContactsCommand::List => {
            let book = m.book()?;
            let mut listed = 0;
            for (id, c) in book.iter().filter(|(_, c)| c.is_listed()) {
                listed += 1;
                let avatar = Some(crate::files::avatar_path(m.home.dir(), id)).filter(|p| p.exists());
                emit(
                    json,
                    json!({"name": c.nickname, "display_name": c.display_name, "account_id": id.to_string(),
                           "approved": c.approved, "approved_me": c.approved_me, "blocked": c.blocked,
                           "avatar": avatar}),
                    || {
                        let mut line = format!("{}\t{id}", escape(c.shown_name().unwrap_or("-")));
                        if let (Some(_), Some(d)) = (&c.nickname, &c.display_name) {
                            line.push_str(&format!("\t(calls themselves {})", escape(d)));
                        }
                        if c.blocked {
                            line.push_str("\tblocked");
                        }
                        line
                    },
                );
            }
            return Ok(if listed == 0 { EXIT_NOTHING } else { EXIT_OK });
        }
        ContactsCommand::Remove { name } => {
            let removed = m.edit_account_state(book::CONTACTS, |state, stamp| book::remove(state, &name, stamp))?;
            let Some(id) = removed else {
                return Err(Error::Usage(format!("no contact named {:?}", escape(&name))));
            };
            emit(json, json!({"removed": name, "account_id": id.to_string()}), || {
                format!("removed {}", escape(&name))
            });
        }
        ContactsCommand::Block { who } => block(m, &who, true, json)?,
        ContactsCommand::Unblock { who } => block(m, &who, false, json)?,
    }
    sync_quietly(m).await;
    Ok(EXIT_OK)
}

fn block(m: &mut Messenger, who: &str, blocked: bool, json: bool) -> Result<()> {
    let id = recipient(&m.book()?, who)?;
    let changed = m.set_blocked(&id, blocked)?;
    let verb = if blocked { "blocked" } else { "unblocked" };
    emit(
        json,
        json!({"account_id": id.to_string(), "blocked": blocked, "changed": changed}),
        || match changed {
            true => format!("{verb} {id}"),
            false => format!("{id} was already {verb}"),
        },
    );
    Ok(())
}

/// `allium requests [accept|decline ...]`.
pub async fn requests(m: &mut Messenger, sub: Option<RequestsCommand>, json: bool) -> Result<i32> {
    match sub {
        None => {
            sync_quietly(m).await;
            if let Err(e) = m.inbox(None).await {
                eprintln!("allium: could not fetch new messages: {}", escape(&e.to_string()));
            }
            super::flush_outbox(m, json).await;
            let requests = m.requests(20)?;
            for r in &requests {
                for e in &r.messages {
                    emit(
                        json,
                        json!({"from": r.from.to_string(), "timestamp": e.sent_ts, "body": e.body, "hash": e.hash}),
                        || format!("[{}] request from {}: {}", fmt_time(e.sent_ts), r.from, escape(&e.body)),
                    );
                }
            }
            if !requests.is_empty() && !json {
                eprintln!(
                    "allium: `allium requests accept ID [--name NAME]` or `allium requests decline ID [--block]`"
                );
            }
            Ok(if requests.is_empty() { EXIT_NOTHING } else { EXIT_OK })
        }
        Some(RequestsCommand::Accept { account_id, name }) => {
            let id = parse_id(&account_id)?;
            let delivery = m.accept(id, name.as_deref()).await?;
            sync_quietly(m).await;
            let told = matches!(delivery, Delivery::Stored(_));
            emit(json, json!({"accepted": id.to_string(), "told": told}), || {
                if told {
                    format!("accepted {id}; they were told")
                } else {
                    format!("accepted {id}; telling them is still in the outbox")
                }
            });
            Ok(if matches!(delivery, Delivery::Failed(_)) {
                EXIT_ERROR
            } else {
                EXIT_OK
            })
        }
        Some(RequestsCommand::Decline { account_id, block }) => {
            let id = parse_id(&account_id)?;
            let deleted = m.decline(id, block).await?;
            sync_quietly(m).await;
            emit(
                json,
                json!({"declined": id.to_string(), "deleted": deleted, "blocked": block}),
                || {
                    format!(
                        "declined {id}: {deleted} message(s) deleted{}",
                        if block { "; blocked" } else { "" }
                    )
                },
            );
            Ok(EXIT_OK)
        }
    }
}

fn parse_id(text: &str) -> Result<AccountId> {
    text.parse::<AccountId>()
        .map_err(|e| Error::Usage(format!("{:?} is not a valid Account ID: {e}", escape(text))))
}

/// What a restore brought back, for `allium restore`.
pub fn restored_summary(book: &Book, profile_name: Option<&str>, history: usize, json: bool) {
    let contacts = book.iter().filter(|(_, c)| c.is_listed() && !c.blocked).count();
    let blocked = book.iter().filter(|(_, c)| c.blocked).count();
    emit(
        json,
        json!({"restored_profile_name": profile_name, "restored_contacts": contacts,
               "restored_blocked": blocked, "restored_messages": history}),
        || {
            format!(
                "Restored: name {}, {contacts} contact(s), {blocked} blocked, {history} message(s) in the history",
                profile_name.map_or_else(|| "(none)".to_owned(), |n| escape(n).into_owned())
            )
        },
    );
}
