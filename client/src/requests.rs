//! Message requests and blocking (`docs/account-sync.md`): a message from
//! an account that is not a contact waits in `allium requests` instead of
//! the inbox; accepting makes the sender a contact and tells it so;
//! declining deletes what it sent; a blocked account's messages are
//! dropped unseen and deleted from the swarm. All of it is kept in the
//! contacts' namespace of the account state, so every device of the
//! account applies it.

use allium_common::AccountId;
use allium_common::content::{Content, Kind};
use serde_json::Value;

use crate::book::{self, field};
use crate::error::Result;
use crate::home::HistoryEntry;
use crate::messenger::{Delivery, MESSAGE_TTL_MS, Messenger};
use crate::now_ms;

/// The waiting messages of one account that is not a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who wrote.
    pub from: AccountId,
    /// What it wrote, oldest first.
    pub messages: Vec<HistoryEntry>,
}

/// The message requests in `home`: accounts neither approved nor blocked
/// whose messages sent after any earlier decline are in the history (at
/// most `per_sender` of each, the newest).
pub fn requests_in(home: &crate::home::Home, per_sender: usize) -> Result<Vec<Request>> {
    let book = crate::book::Book::of(home)?;
    let me = home.account_id();
    let mut out = Vec::new();
    for from in home.incoming_peers()? {
        let contact = book.get(&from).cloned().unwrap_or_default();
        if from == me || contact.approved || contact.blocked {
            continue;
        }
        let after = contact.declined_ms.unwrap_or(0);
        let messages = home.history_where(Some(&from), per_sender, |e| e.sent_ts > after)?;
        if !messages.is_empty() {
            out.push(Request { from, messages });
        }
    }
    Ok(out)
}

impl Messenger {
    /// The message requests ([`requests_in`] this session's home).
    pub fn requests(&self, per_sender: usize) -> Result<Vec<Request>> {
        requests_in(&self.home, per_sender)
    }

    /// Accepts `from`'s request: it becomes a contact (named `name`, if
    /// given) and is told so with this account's display name.
    pub async fn accept(&mut self, from: AccountId, name: Option<&str>) -> Result<Delivery> {
        match name {
            Some(name) => {
                self.edit_account_state(book::CONTACTS, |state, stamp| book::add(state, name, &from, stamp))??
            }
            None => self.approve(&from)?,
        }
        // Invitations it sent while a stranger are joined now.
        self.join_invitations_from(&from)?;
        let mut content = Content::text("", self.network_now());
        content.kind = Kind::Accept;
        content.body = None;
        content.profile = self.own_profile()?;
        self.send_control(from, &content).await
    }

    /// Declines `from`'s request: what it sent so far is deleted here and
    /// from the swarm, and on every device of the account; a later
    /// message is a new request, unless `block`. Returns how many
    /// messages were deleted here.
    pub async fn decline(&mut self, from: AccountId, block: bool) -> Result<usize> {
        let now = self.network_now();
        self.edit_account_state(book::CONTACTS, |state, stamp| {
            book::write(state, &from, field::DECLINED, Some(Value::from(now)), stamp);
            if block {
                book::write(state, &from, field::BLOCKED, Some(Value::Bool(true)), stamp);
            }
        })?;
        let hashes = self.home.forget_incoming(&from, now)?;
        if !hashes.is_empty()
            && let Err(e) = self.delete_own(&hashes).await
        {
            tracing::debug!(error = %e, "declined messages not deleted from the swarm yet");
        }
        Ok(hashes.len())
    }

    /// Blocks or unblocks `account`. Returns whether that changed anything.
    pub fn set_blocked(&mut self, account: &AccountId, blocked: bool) -> Result<bool> {
        if self.book()?.is_blocked(account) == blocked {
            return Ok(false);
        }
        let value = blocked.then_some(Value::Bool(true));
        self.edit_account_state(book::CONTACTS, |state, stamp| {
            book::write(state, account, field::BLOCKED, value, stamp);
        })?;
        Ok(true)
    }

    /// Seals `content` to `to` and delivers it as a control message (no
    /// history entry, no copy for other devices).
    pub async fn send_control(&mut self, to: AccountId, content: &Content) -> Result<Delivery> {
        let id = self.queue_control(to, content, true).await?;
        self.deliver_queued(id).await
    }

    /// Seals `content` to `to` ([`Messenger::seal_for`]; fetching a key
    /// bundle only if `fetch`) and queues it in the outbox as a control
    /// message, for the next [`Messenger::flush_outbox`]; returns its id.
    pub async fn queue_control(&mut self, to: AccountId, content: &Content, fetch: bool) -> Result<i64> {
        let (data, version) = self.seal_for(&to, content, fetch).await?;
        let id = self.home.outbox_add_control(to, data, MESSAGE_TTL_MS, now_ms())?;
        self.home.outbox_set_envelope(id, version)?;
        Ok(id)
    }
}
