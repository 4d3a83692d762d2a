//! Reading the inbox: what each retrieved item is (a contact's message, a
//! request, a copy of a message this account sent from another device, a
//! receipt, a setting, a message taken back, something from a blocked
//! account, or garbage) and what is done about it, here and in the swarm.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use allium_common::account::Stamp;
use allium_common::content::{Content, Disappear, DisappearAfter, Kind, Receipt, SentCopy};
use allium_common::encoding::from_base64;
use allium_common::envelope_v2::{self, EnvelopeV2Error};
use allium_common::files::Manifest;
use allium_common::keys::KeyId;
use allium_common::node_list::NodeEntry;
use allium_common::rpc::Namespace;
use allium_common::{AccountId, envelope};
use serde_json::Value;

use crate::book::{self, Book};
use crate::convo::{self, Conversations};
use crate::error::Result;
use crate::home::{Direction, Home, ReceiptLevel, validate_name};
use crate::messenger::{Messenger, REQUEST_TIMEOUT, owner_retrieve, swarm_refused};
use crate::now_ms;
use crate::sync;

/// The retrieve cursor of one node: each node orders messages by its own
/// arrival order, so a hash is only a position on the node that returned it.
fn cursor_key(node: &NodeEntry) -> String {
    format!("inbox:{}", hex::encode(node.ed25519.0))
}

/// A message read from the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The sender.
    pub from: AccountId,
    /// The nickname this account gave the sender, if any.
    pub from_name: Option<String>,
    /// The display name the message carried, as the sender chose it.
    pub display_name: Option<String>,
    /// The sender's timestamp, Unix ms.
    pub timestamp: u64,
    /// The text.
    pub body: String,
    /// The message hash.
    pub hash: String,
    /// When it disappears (network time, Unix ms), if it does.
    pub expires_ms: Option<u64>,
    /// Another device of the account showed the conversation up to this
    /// message's time already (a mark by sender time: messages that
    /// arrive out of order may carry it wrongly, so it only marks them).
    pub read_elsewhere: bool,
    /// The files it carried (`allium save HASH` fetches them).
    pub files: Vec<crate::files::FileNote>,
}

/// What one pass over the inbox found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboxPage {
    /// New messages from contacts (and notes to self), oldest first.
    pub messages: Vec<Received>,
    /// New messages from accounts that are not contacts: message
    /// requests (`allium requests`), oldest first.
    pub requests: Vec<Received>,
    /// Accounts that accepted this account's message request.
    pub accepted: Vec<AccountId>,
    /// Copies of messages this account sent from another device, added to
    /// the history (not shown as new).
    pub synced: usize,
    /// Messages from blocked accounts: dropped unseen and deleted from the
    /// swarm.
    pub dropped: usize,
    /// Conversations whose disappearing setting the other side changed
    /// (`None`: turned off).
    pub disappearing: Vec<(AccountId, Option<Disappear>)>,
    /// Messages taken back by their senders (and by this account from
    /// another device), deleted here and from the swarm.
    pub unsent: usize,
    /// Sent messages whose receipt arrived.
    pub receipts: usize,
    /// Messages in muted conversations: added to the history, not shown.
    pub muted: usize,
    /// Of the unreadable items, those that look like envelope v2 sealed to
    /// a key this device does not hold: deleted when its retention ended,
    /// or made before this device was linked or restored (unreadable here
    /// by design), or junk that starts with the v2 version byte (a
    /// stranger's garbage cannot be told from them without the key).
    pub key_gone: usize,
    /// Items the swarm held that are not readable messages for this
    /// account (garbage, forgeries, messages sealed to someone else):
    /// skipped, and the cursor moved past them.
    pub unreadable: usize,
}

impl InboxPage {
    /// Whether it has nothing to show (what it did quietly aside).
    pub fn shows_nothing(&self) -> bool {
        self.messages.is_empty() && self.requests.is_empty() && self.accepted.is_empty() && self.disappearing.is_empty()
    }
}

/// What a retrieved item turned out to be.
enum Item {
    /// A new text message from a contact.
    New(Received),
    /// A new text message from someone else.
    Request(Received),
    /// The sender accepted this account's request.
    Accepted(AccountId),
    /// A copy of a message this account sent from another device,
    /// recorded (true) or known already (false).
    Synced(bool),
    /// From a blocked account: to delete (its hash).
    Dropped(String),
    /// A contact changed the conversation's disappearing setting.
    Disappearing(AccountId, Option<Disappear>),
    /// A message taken back; the hashes to delete from the swarm.
    Unsent(Vec<String>),
    /// Receipts for this many sent messages.
    Receipts(usize),
    /// A message in a muted conversation, recorded but not shown.
    Muted,
    /// Sealed with envelope v2 to a key this device does not hold.
    KeyGone,
    /// Already seen, or a kind this client does not show.
    Nothing,
    /// Not a message this account can read.
    Unreadable,
}

/// What to do in the swarm once a pass is over.
#[derive(Default)]
struct Chores {
    /// Hashes to delete.
    delete: Vec<String>,
    /// Expiry (network ms) → hashes to expire then.
    expire: BTreeMap<u64, Vec<String>>,
    /// Contacts → hashes of their messages to acknowledge.
    receipts: BTreeMap<AccountId, Vec<String>>,
    /// Contacts' avatars named by their messages.
    avatars: BTreeMap<AccountId, allium_common::files::Manifest>,
}

/// When a received message with `rule`, sent at `sent_ts` (the sender's
/// claim) and received at `now`, disappears: after send, `ms` from when
/// it was sent but never later than `ms` from now (a sender cannot
/// stretch it by dating it ahead); after read, `ms` from now (this client
/// shows a message when it fetches it, so that is when it is read).
pub fn expiry_of(rule: Disappear, sent_ts: u64, now: u64) -> u64 {
    match rule.after {
        DisappearAfter::Send => sent_ts.min(now).saturating_add(rule.ms),
        DisappearAfter::Read => now.saturating_add(rule.ms),
    }
}

impl Messenger {
    /// Fetches new messages once (or, with `wait_ms`, waits for one),
    /// page by page until the node has no more. The cursor is saved after
    /// every page, so a failure later loses no progress; items that are not
    /// readable messages are skipped and counted. Messages whose time ran
    /// out leave the history first; afterwards, what the pass asked for
    /// is done in the swarm (best effort: deletions, shortened expiries),
    /// and receipts to contacts are queued in the outbox for the next
    /// [`Messenger::flush_outbox`].
    pub async fn inbox(&mut self, wait_ms: Option<u64>) -> Result<InboxPage> {
        let me = self.home.account_id();
        let now = self.network_now();
        self.home.purge_expired(now)?;
        let mut found = InboxPage::default();
        let mut chores = Chores::default();
        // Page through what the node holds; the cursor is per node because
        // each node numbers its messages in its own order.
        let mut wait = wait_ms;
        let mut paging_on = self.last_node("inbox");
        loop {
            let timeout = REQUEST_TIMEOUT + Duration::from_millis(wait.unwrap_or(0));
            // The request names the cursor of whichever member it goes to.
            let make = |home: &Home, node: &NodeEntry, ts: u64| -> Result<Value> {
                Ok(owner_retrieve(
                    home,
                    Namespace::DEFAULT,
                    ts,
                    home.cursor(&cursor_key(node))?,
                    wait,
                ))
            };
            let (status, body, node) = self.call(&me, &make, timeout, paging_on, &HashSet::new()).await?;
            if status != 200 {
                return Err(swarm_refused("to list the inbox", status, &body));
            }
            self.remember_node("inbox", &node)?;
            let messages = body["messages"].as_array().cloned().unwrap_or_default();
            let mut book = self.book()?;
            let convos = Conversations::from_state(&self.home.account_state(convo::CONVERSATIONS)?.0);
            let shown_before = found.messages.len();
            for m in &messages {
                match self.open_message(m, &book, &convos, &mut chores)? {
                    Item::New(r) => found.messages.push(r),
                    Item::Request(r) => found.requests.push(r),
                    Item::Accepted(from) => {
                        found.accepted.push(from);
                        book = self.book()?;
                    }
                    Item::Disappearing(from, rule) => {
                        found.disappearing.push((from, rule));
                        book = self.book()?;
                    }
                    Item::Synced(new) => found.synced += usize::from(new),
                    Item::Dropped(hash) => {
                        found.dropped += 1;
                        chores.delete.push(hash);
                    }
                    Item::Unsent(hashes) => {
                        found.unsent += 1;
                        chores.delete.extend(hashes);
                    }
                    Item::Receipts(n) => found.receipts += n,
                    Item::Muted => found.muted += 1,
                    Item::KeyGone => {
                        found.unreadable += 1;
                        found.key_gone += 1;
                    }
                    Item::Nothing => {}
                    Item::Unreadable => found.unreadable += 1,
                }
            }
            self.mark_read(&found.messages[shown_before..])?;
            if let Some(last) = messages.last().and_then(|m| m["hash"].as_str()) {
                self.home.set_cursor(&cursor_key(&node), last)?;
            }
            // A page that moved the cursor nowhere ends the pass even if the
            // node says more: it cannot be read past.
            if body["more"] != Value::Bool(true) || messages.is_empty() {
                self.do_chores(chores).await;
                return Ok(found);
            }
            wait = None;
            paging_on = Some(node.ed25519.0);
        }
    }

    /// Does in the swarm what a pass asked for; failures are logged, not
    /// fatal (deletions and expiries are asked again when the items are
    /// read again; a receipt is only a courtesy).
    async fn do_chores(&mut self, chores: Chores) {
        if !chores.delete.is_empty()
            && let Err(e) = self.delete_own(&chores.delete).await
        {
            tracing::debug!(error = %e, "messages not deleted from the swarm yet");
        }
        for (expiry, hashes) in chores.expire {
            if let Err(e) = self.expire_own(&hashes, expiry).await {
                tracing::debug!(error = %e, "disappearing messages not shortened in the swarm yet");
            }
        }
        let level = if self.read_receipts().unwrap_or(false) {
            ReceiptLevel::Read
        } else {
            ReceiptLevel::Delivered
        };
        for (to, hashes) in chores.receipts {
            if let Err(e) = self.queue_receipt(to, &hashes, level).await {
                tracing::debug!(error = %e, "a receipt was not queued");
            }
        }
        for (from, manifest) in chores.avatars {
            if let Err(e) = self.fetch_avatar(&from, &manifest).await {
                tracing::debug!(error = %e, "a contact's avatar was not fetched");
            }
        }
    }

    /// Records in the shared conversation state that `shown` were seen, so
    /// the account's other devices can mark them read.
    fn mark_read(&mut self, shown: &[Received]) -> Result<()> {
        let me = self.home.account_id();
        // A sender's time is its claim: one dated ahead must not mark
        // later messages read.
        let now = self.network_now();
        let mut newest: BTreeMap<AccountId, u64> = BTreeMap::new();
        for r in shown.iter().filter(|r| r.from != me) {
            let ts = newest.entry(r.from).or_default();
            *ts = (*ts).max(r.timestamp.min(now));
        }
        if newest.is_empty() {
            return Ok(());
        }
        self.edit_account_state(convo::CONVERSATIONS, |state, stamp| {
            for (from, ts) in &newest {
                convo::mark_read(state, from, *ts, stamp);
            }
        })
    }

    /// Whether this account sends read receipts (a synced setting).
    pub fn read_receipts(&self) -> Result<bool> {
        let profile = self.home.account_state(sync::PROFILE)?.0;
        Ok(profile
            .get(sync::READ_RECEIPTS)
            .and_then(Value::as_bool)
            .unwrap_or(false))
    }

    /// Opens one retrieved item. A forged, garbled or foreign item is
    /// skipped, never fatal. `book` decides whether a sender is blocked, a
    /// contact or a stranger.
    fn open_message(&mut self, m: &Value, book: &Book, convos: &Conversations, chores: &mut Chores) -> Result<Item> {
        let (Some(hash), Some(data)) = (m["hash"].as_str(), m["data"].as_str()) else {
            return Ok(Item::Unreadable);
        };
        let Ok(bytes) = from_base64(data) else {
            return Ok(Item::Unreadable);
        };
        let version = bytes.first().copied().unwrap_or(0);
        let opened = if version == envelope_v2::ENVELOPE_V2 {
            let home = &self.home;
            let secret_for = |id: &KeyId| home.account_key_secret(id).ok().flatten();
            match envelope_v2::open(home.identity(), secret_for, &bytes) {
                Ok(o) => o,
                // Sealed to a key this device never had, or has deleted:
                // unreadable here by design, and said so.
                Err(EnvelopeV2Error::UnknownKey(_)) => return Ok(Item::KeyGone),
                Err(e) => {
                    tracing::debug!(%hash, error = %e, "skipped a v2 message that does not open");
                    return Ok(Item::Unreadable);
                }
            }
        } else {
            match envelope::open(self.home.identity(), &bytes) {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(%hash, error = %e, "skipped a message that does not open");
                    return Ok(Item::Unreadable);
                }
            }
        };
        let from = opened.sender;
        let me = self.home.account_id();
        if book.is_blocked(&from) && from != me {
            return Ok(Item::Dropped(hash.to_owned()));
        }
        let content = opened.content;
        if from == me
            && let Some(copy) = &content.sent
        {
            return self.apply_sent_copy(copy, hash, &content);
        }
        let approved = from == me || book.is_approved(&from);
        let display_name = content
            .profile
            .as_ref()
            .and_then(|p| p.name.clone())
            .filter(|n| validate_name(n).is_ok());
        if approved && from != me {
            self.learn_display_name(book, &from, display_name.as_deref())?;
            // A contact's avatar (never a stranger's: fetching costs).
            if let Some(Ok(avatar)) = content
                .profile
                .as_ref()
                .and_then(|p| p.avatar.as_ref())
                .map(Manifest::from_json)
            {
                chores.avatars.insert(from, avatar);
            }
        }
        match content.kind {
            Kind::Text => {}
            // Only from an account this one wrote to (which approved it): a
            // stranger's acceptance would only add keys to the synced state.
            Kind::Accept if approved && from != me => return self.apply_accept(book, from),
            Kind::Disappear if approved && from != me => return self.apply_disappear(book, from, &content),
            Kind::Receipt if approved => return self.apply_receipt(from, content.receipt.as_ref()),
            Kind::Unsend => return self.apply_unsend(from, content.unsend.as_deref()),
            Kind::GroupInvite if from != me => {
                return self.apply_group_invite(hash, from, approved, &content, display_name);
            }
            _ => return Ok(Item::Nothing),
        }
        let body = content.body.clone().unwrap_or_default();
        let now = self.network_now();
        if !self.home.record_incoming(hash, from, content.ts, now_ms(), &body)? {
            return Ok(Item::Nothing);
        }
        if version == envelope_v2::ENVELOPE_V2 {
            self.home.set_envelope(Direction::Incoming, hash, version)?;
        }
        let files = self.keep_files(hash, &content)?;
        if from != me {
            // A writer may be new and have published keys since this
            // device found none: ask again at the next message to it.
            self.home.forget_no_bundle(&from)?;
        }
        let rule = content.disappear.filter(|d| crate::disappear::in_bounds(d.ms));
        let expires_ms = rule.map(|rule| expiry_of(rule, content.ts, now));
        if let Some(at) = expires_ms {
            self.home.set_expiry(Direction::Incoming, hash, at)?;
            chores.expire.entry(at).or_default().push(hash.to_owned());
        }
        let read_elsewhere = from != me && convos.was_read(&from, content.ts);
        if approved && from != me {
            // The device that showed it first sent its receipt.
            if !read_elsewhere {
                chores.receipts.entry(from).or_default().push(hash.to_owned());
            }
            if convos.get(&from).muted {
                return Ok(Item::Muted);
            }
        }
        let received = Received {
            from,
            from_name: book.get(&from).and_then(|c| c.nickname.clone()),
            display_name,
            timestamp: content.ts,
            body,
            hash: hash.to_owned(),
            expires_ms,
            read_elsewhere,
            files,
        };
        Ok(if approved {
            Item::New(received)
        } else {
            Item::Request(received)
        })
    }

    /// Keeps an invitation into a group (joined at once from a contact,
    /// waiting as a request from anyone else) and records it in the
    /// history as a line saying so.
    fn apply_group_invite(
        &mut self,
        hash: &str,
        from: AccountId,
        approved: bool,
        content: &Content,
        display_name: Option<String>,
    ) -> Result<Item> {
        let Some(invitation) = crate::groups::read_invitation(content, from, now_ms()) else {
            return Ok(Item::Unreadable);
        };
        let admin = invitation.group.seed.is_some();
        let name = self.keep_invitation(invitation, approved)?;
        let body = if admin {
            format!("[makes you an admin of the group \"{name}\"]")
        } else {
            format!("[invites you to the group \"{name}\"]")
        };
        if !self.home.record_incoming(hash, from, content.ts, now_ms(), &body)? {
            return Ok(Item::Nothing);
        }
        let received = Received {
            from,
            from_name: self.book()?.get(&from).and_then(|c| c.nickname.clone()),
            display_name,
            timestamp: content.ts,
            body,
            hash: hash.to_owned(),
            expires_ms: None,
            read_elsewhere: false,
            files: Vec::new(),
        };
        Ok(if approved {
            Item::New(received)
        } else {
            Item::Request(received)
        })
    }

    /// Keeps the display name an approved contact's message carried, if
    /// it changed (synced to this account's other devices).
    fn learn_display_name(&mut self, book: &Book, from: &AccountId, name: Option<&str>) -> Result<()> {
        let Some(name) = name else {
            return Ok(());
        };
        if book.get(from).and_then(|c| c.display_name.as_deref()) == Some(name) {
            return Ok(());
        }
        self.edit_account_state(book::CONTACTS, |state, stamp| {
            book::write(state, from, book::field::NAME, Some(Value::from(name)), stamp);
        })
    }

    /// Keeps the files message `hash` carried (those whose manifests this
    /// version reads; the others are dropped with a note in the log).
    pub(crate) fn keep_files(&mut self, hash: &str, content: &Content) -> Result<Vec<crate::files::FileNote>> {
        let mut files = Vec::new();
        for manifest in content.manifests() {
            match manifest {
                Ok(m) => files.push((m, None)),
                Err(e) => tracing::info!(%hash, error = %e, "a file this version cannot read was left out"),
            }
        }
        if files.is_empty() {
            return Ok(Vec::new());
        }
        self.home.put_files(hash, &files)?;
        Ok(crate::files::FileNote::of(&self.home.files_of(hash)?))
    }

    /// Records a message this account sent from another device (its copy
    /// is `copy_hash` in this account's swarm).
    fn apply_sent_copy(&mut self, copy: &SentCopy, copy_hash: &str, content: &Content) -> Result<Item> {
        let (Ok(to), true) = (copy.to.parse::<AccountId>(), is_hash(&copy.hash)) else {
            return Ok(Item::Unreadable);
        };
        let body = content.body.as_deref().unwrap_or_default();
        let new = self.home.record_outgoing(&copy.hash, to, content.ts, body)?;
        if new {
            self.keep_files(&copy.hash, content)?;
            self.home.set_copy_hash(&copy.hash, copy_hash)?;
            if let Some(rule) = content.disappear.filter(|d| crate::disappear::in_bounds(d.ms)) {
                self.home
                    .set_expiry(Direction::Outgoing, &copy.hash, content.ts.saturating_add(rule.ms))?;
            }
        }
        Ok(Item::Synced(new))
    }

    fn apply_accept(&mut self, book: &Book, from: AccountId) -> Result<Item> {
        if book.get(&from).is_some_and(|c| c.approved_me) {
            return Ok(Item::Nothing);
        }
        self.edit_account_state(book::CONTACTS, |state, stamp| {
            book::write(state, &from, book::field::APPROVED_ME, Some(Value::Bool(true)), stamp);
        })?;
        Ok(Item::Accepted(from))
    }

    /// A contact's new disappearing setting becomes this account's for
    /// the conversation (on every device, through the synced state),
    /// stamped with the time the contact made it: a setting older than the
    /// one held (a message read again from another node, or one that
    /// arrives late) changes nothing.
    fn apply_disappear(&mut self, book: &Book, from: AccountId, content: &Content) -> Result<Item> {
        let rule = content.disappear.filter(|d| crate::disappear::in_bounds(d.ms));
        let key = book::key(&from, book::field::DISAPPEARING);
        let held = self.home.account_state(book::CONTACTS)?.0;
        if !is_newer(held.entry(&key).map(|e| e.stamp.at), content.ts) {
            return Ok(Item::Nothing);
        }
        let unchanged = book.get(&from).and_then(|c| c.disappearing) == rule;
        self.edit_account_state(book::CONTACTS, |state, stamp| {
            let value = rule.map(|r| serde_json::to_value(r).unwrap_or(Value::Null));
            let made = Stamp {
                at: content.ts,
                device: stamp.device,
            };
            book::write(state, &from, book::field::DISAPPEARING, value, made);
        })?;
        Ok(if unchanged {
            Item::Nothing
        } else {
            Item::Disappearing(from, rule)
        })
    }

    fn apply_receipt(&mut self, from: AccountId, receipt: Option<&Receipt>) -> Result<Item> {
        let Some(receipt) = receipt else {
            return Ok(Item::Unreadable);
        };
        let level = match receipt.status.as_str() {
            "read" => ReceiptLevel::Read,
            "delivered" => ReceiptLevel::Delivered,
            _ => return Ok(Item::Nothing),
        };
        let hashes: Vec<String> = receipt
            .hashes
            .iter()
            .filter(|h| is_hash(h))
            .take(crate::conversation::MAX_RECEIPT_HASHES)
            .cloned()
            .collect();
        Ok(Item::Receipts(self.home.record_receipt(&from, &hashes, level)?))
    }

    /// A message taken back: a contact's received message `hash`, or (from
    /// this account's other device) a sent one. Only the sender can take a
    /// message back: the history must show it came from `from`.
    fn apply_unsend(&mut self, from: AccountId, hash: Option<&str>) -> Result<Item> {
        let Some(hash) = hash.filter(|h| is_hash(h)) else {
            return Ok(Item::Unreadable);
        };
        if from == self.home.account_id() {
            let Some(to) = self.home.sent_to(hash)? else {
                return Ok(Item::Nothing);
            };
            let (_, copy) = self.home.forget_message(Direction::Outgoing, hash, &to)?;
            return Ok(Item::Unsent(copy.into_iter().collect()));
        }
        match self.home.forget_message(Direction::Incoming, hash, &from)? {
            (true, _) => {
                self.home.forget_files(hash)?;
                Ok(Item::Unsent(vec![hash.to_owned()]))
            }
            (false, _) => Ok(Item::Nothing),
        }
    }
}

/// Whether a setting made at `made_ms` is newer than the one held, last
/// written at `held_ms` (none held: it is).
fn is_newer(held_ms: Option<u64>, made_ms: u64) -> bool {
    held_ms.is_none_or(|held| made_ms > held)
}

/// Whether `s` has the shape of a message hash (43 unpadded base64
/// characters).
pub(crate) fn is_hash(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_newer_setting_replaces_the_held_one() {
        assert!(is_newer(None, 5));
        assert!(is_newer(Some(4), 5));
        assert!(!is_newer(Some(5), 5), "the same setting read again");
        assert!(!is_newer(Some(9), 5), "an older one arriving late");
    }

    #[test]
    fn a_sender_cannot_stretch_an_after_send_time_by_dating_ahead() {
        let rule = Disappear {
            after: DisappearAfter::Send,
            ms: 60_000,
        };
        assert_eq!(expiry_of(rule, 1_000, 5_000), 61_000);
        assert_eq!(expiry_of(rule, 1_000_000, 5_000), 65_000, "dated ahead: from now");
        let read = Disappear {
            after: DisappearAfter::Read,
            ms: 60_000,
        };
        assert_eq!(expiry_of(read, 1_000, 5_000), 65_000);
    }
}
