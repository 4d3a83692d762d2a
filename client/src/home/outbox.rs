//! The outbox: messages waiting for the swarm to confirm the store.
//!
//! A message enters the outbox, already sealed, before the first attempt to
//! send it, so a crash or a network failure never loses it. Each failed
//! attempt is recorded ([`Home::outbox_mark_attempt`]) with the time of the
//! next one: [`retry_delay`] backs off from [`FIRST_RETRY_MS`], doubling to
//! [`MAX_RETRY_MS`], so a message the network keeps refusing does not cost
//! every command a round of requests; [`Home::outbox_due`] lists what is
//! due. A confirmed store moves it into the history in one transaction
//! ([`Home::outbox_confirm`]). It leaves the outbox without being delivered
//! in two ways only, and both hand it back so the caller reports it as
//! failed: its TTL passed ([`Home::outbox_expired`]), or the swarm refused
//! it in a way no retry can mend ([`Home::outbox_fail`]).

use allium_common::AccountId;
use allium_common::rpc::{MAX_DATA_LEN, MAX_TTL_MS, MIN_TTL_MS};
use rusqlite::{OptionalExtension, Row, params};

use super::error::{HomeError, Result};
use super::history::{self, Direction, HistoryEntry, check_body};
use super::{Home, check_hash, parse_account, to_i64};

/// Most messages the outbox holds.
pub const MAX_OUTBOX: usize = 10_000;
/// Longest `last_error` kept, in bytes (longer ones are cut).
pub const MAX_LAST_ERROR_LEN: usize = 1_000;
/// Wait after the first failed attempt, ms.
pub const FIRST_RETRY_MS: u64 = 10_000;
/// Longest wait between attempts, ms (the doubling stops here).
pub const MAX_RETRY_MS: u64 = 60 * 60 * 1000;

/// How long to wait after failed attempt number `attempts` (1 for the
/// first): [`FIRST_RETRY_MS`] doubling each time, at most [`MAX_RETRY_MS`].
pub fn retry_delay(attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_RETRY_MS.saturating_mul(1 << doublings).min(MAX_RETRY_MS)
}

/// A message waiting in the outbox.
#[derive(Clone, PartialEq, Eq)]
pub struct OutboxItem {
    /// Local id (never reused).
    pub id: i64,
    /// The recipient.
    pub to: AccountId,
    /// The sealed envelope to store in the recipient's swarm.
    pub data: Vec<u8>,
    /// The text, for the history and for reporting a failure.
    pub body: String,
    /// The TTL to store it with, ms.
    pub ttl_ms: u64,
    /// When it was queued, Unix ms (also the message's sent timestamp).
    pub created_ms: u64,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due, Unix ms (0: at once).
    pub next_attempt_ms: u64,
    /// A message that is not a text in a conversation (a copy of a sent
    /// message for this account's other devices, an acceptance, a
    /// receipt): confirming it records no history, and its `body` is empty.
    pub control: bool,
    /// For a disappearing message: how long after `created_ms` it
    /// disappears.
    pub disappear_ms: Option<u64>,
}

impl OutboxItem {
    /// When it can no longer be delivered, Unix ms.
    pub fn expires_ms(&self) -> u64 {
        self.created_ms.saturating_add(self.ttl_ms)
    }
}

impl std::fmt::Debug for OutboxItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body and data stay out of logs.
        f.debug_struct("OutboxItem")
            .field("id", &self.id)
            .field("to", &self.to)
            .field("data_len", &self.data.len())
            .field("body_len", &self.body.len())
            .field("ttl_ms", &self.ttl_ms)
            .field("created_ms", &self.created_ms)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .field("next_attempt_ms", &self.next_attempt_ms)
            .field("control", &self.control)
            .field("disappear_ms", &self.disappear_ms)
            .finish()
    }
}

const SELECT: &str = "SELECT id, recipient, data, body, ttl_ms, created_ms, attempts, last_error, next_attempt_ms, control, disappear_ms FROM outbox";

struct RawItem {
    id: i64,
    to: String,
    data: Vec<u8>,
    body: String,
    ttl_ms: i64,
    created_ms: i64,
    attempts: i64,
    last_error: Option<String>,
    next_attempt_ms: i64,
    control: bool,
    disappear_ms: Option<i64>,
}

impl RawItem {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: r.get(0)?,
            to: r.get(1)?,
            data: r.get(2)?,
            body: r.get(3)?,
            ttl_ms: r.get(4)?,
            created_ms: r.get(5)?,
            attempts: r.get(6)?,
            last_error: r.get(7)?,
            next_attempt_ms: r.get(8)?,
            control: r.get(9)?,
            disappear_ms: r.get(10)?,
        })
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    &s[..cut]
}

impl Home {
    /// Queues a sealed message for `to`. Returns its outbox id.
    ///
    /// Refuses data larger than a node stores, a body larger than
    /// [`super::MAX_BODY_LEN`], a TTL nodes refuse, and a full outbox.
    pub fn outbox_add(
        &mut self,
        to: AccountId,
        envelope_data: Vec<u8>,
        body: &str,
        ttl_ms: u64,
        created_ms: u64,
    ) -> Result<i64> {
        self.outbox_insert(to, envelope_data, body, ttl_ms, created_ms, false, None)
    }

    /// Queues a disappearing message: like [`Home::outbox_add`], and its
    /// history entry disappears `disappear_ms` after `created_ms`.
    pub fn outbox_add_disappearing(
        &mut self,
        to: AccountId,
        envelope_data: Vec<u8>,
        body: &str,
        ttl_ms: u64,
        created_ms: u64,
        disappear_ms: u64,
    ) -> Result<i64> {
        self.outbox_insert(to, envelope_data, body, ttl_ms, created_ms, false, Some(disappear_ms))
    }

    /// Queues a control message for `to` (see [`OutboxItem::control`]).
    /// Refused like [`Home::outbox_add`].
    pub fn outbox_add_control(
        &mut self,
        to: AccountId,
        envelope_data: Vec<u8>,
        ttl_ms: u64,
        created_ms: u64,
    ) -> Result<i64> {
        self.outbox_insert(to, envelope_data, "", ttl_ms, created_ms, true, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn outbox_insert(
        &mut self,
        to: AccountId,
        envelope_data: Vec<u8>,
        body: &str,
        ttl_ms: u64,
        created_ms: u64,
        control: bool,
        disappear_ms: Option<u64>,
    ) -> Result<i64> {
        if envelope_data.len() > MAX_DATA_LEN {
            return Err(HomeError::DataTooLarge {
                len: envelope_data.len(),
                max: MAX_DATA_LEN,
            });
        }
        check_body(body)?;
        if !(MIN_TTL_MS..=MAX_TTL_MS).contains(&ttl_ms) {
            return Err(HomeError::InvalidTtl {
                ttl_ms,
                min: MIN_TTL_MS,
                max: MAX_TTL_MS,
            });
        }
        let created = to_i64("created timestamp", created_ms)?;
        let ttl = to_i64("TTL", ttl_ms)?;
        let expires = created.saturating_add(ttl);
        const OP: &str = "queueing a message";
        let tx = self.immediate_tx(OP)?;
        let count: i64 = tx
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
            .map_err(self.db_err(OP))?;
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_OUTBOX {
            return Err(HomeError::OutboxFull { limit: MAX_OUTBOX });
        }
        tx.execute(
            "INSERT INTO outbox (recipient, data, body, ttl_ms, created_ms, expires_ms, control, disappear_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                to.to_string(),
                envelope_data,
                body,
                ttl,
                created,
                expires,
                control,
                disappear_ms.map(|d| to_i64("disappearing time", d)).transpose()?
            ],
        )
        .map_err(self.db_err(OP))?;
        let id = tx.last_insert_rowid();
        tx.commit().map_err(self.db_err(OP))?;
        Ok(id)
    }

    /// Every queued message, oldest first (including expired ones not yet
    /// collected by [`Home::outbox_expired`]; call that first).
    pub fn outbox_pending(&self) -> Result<Vec<OutboxItem>> {
        let raw: rusqlite::Result<Vec<RawItem>> = self
            .conn
            .prepare_cached(&format!("{SELECT} ORDER BY id"))
            .and_then(|mut stmt| stmt.query_map([], RawItem::from_row)?.collect());
        raw.map_err(self.db_err("reading the outbox"))?
            .into_iter()
            .map(|r| self.decode_item(r))
            .collect()
    }

    /// The queued messages whose next attempt is due at `now_ms`, oldest
    /// first (call [`Home::outbox_expired`] first).
    pub fn outbox_due(&self, now_ms: u64) -> Result<Vec<OutboxItem>> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let raw: rusqlite::Result<Vec<RawItem>> = self
            .conn
            .prepare_cached(&format!("{SELECT} WHERE next_attempt_ms <= ?1 ORDER BY id"))
            .and_then(|mut stmt| stmt.query_map([now], RawItem::from_row)?.collect());
        raw.map_err(self.db_err("reading the outbox"))?
            .into_iter()
            .map(|r| self.decode_item(r))
            .collect()
    }

    /// Records that item `id` is sealed in envelope `version`.
    pub fn outbox_set_envelope(&mut self, id: i64, version: u8) -> Result<()> {
        self.conn
            .execute(
                "UPDATE outbox SET envelope = ?2 WHERE id = ?1",
                params![id, i64::from(version)],
            )
            .map_err(self.db_err("recording a queued message's envelope"))?;
        Ok(())
    }

    /// Records a failed attempt at `now_ms` to send item `id` and why (cut
    /// to [`MAX_LAST_ERROR_LEN`] bytes; it must not contain secrets); the
    /// next attempt is due [`retry_delay`] later. Returns whether the item
    /// exists.
    pub fn outbox_mark_attempt(&mut self, id: i64, error: &str, now_ms: u64) -> Result<bool> {
        const OP: &str = "recording a send attempt";
        let tx = self.immediate_tx(OP)?;
        let attempts: Option<i64> = tx
            .query_row("SELECT attempts FROM outbox WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(self.db_err(OP))?;
        let Some(attempts) = attempts else {
            return Ok(false);
        };
        let attempts = u32::try_from(attempts.saturating_add(1)).unwrap_or(u32::MAX);
        let next = to_i64("retry time", now_ms.saturating_add(retry_delay(attempts)))?;
        tx.execute(
            "UPDATE outbox SET attempts = ?2, last_error = ?3, next_attempt_ms = ?4 WHERE id = ?1",
            params![id, attempts, truncate(error, MAX_LAST_ERROR_LEN), next],
        )
        .map_err(self.db_err(OP))?;
        tx.commit().map_err(self.db_err(OP))?;
        Ok(true)
    }

    /// Removes item `id` for good: the swarm refused it in a way no retry
    /// can mend. Returns it (with `error` as its last error) so the caller
    /// reports it as failed, or `None` if there is no such item.
    pub fn outbox_fail(&mut self, id: i64, error: &str) -> Result<Option<OutboxItem>> {
        const OP: &str = "removing a refused message";
        let tx = self.immediate_tx(OP)?;
        let Some(mut item) = self.item_in(&tx, id, OP)? else {
            return Ok(None);
        };
        tx.execute("DELETE FROM outbox WHERE id = ?1", [id])
            .map_err(self.db_err(OP))?;
        tx.commit().map_err(self.db_err(OP))?;
        item.last_error = Some(truncate(error, MAX_LAST_ERROR_LEN).to_owned());
        Ok(Some(item))
    }

    /// A swarm node confirmed storing item `id` under `hash`: moves it into
    /// the history as outgoing (sent at its `created_ms`), in one
    /// transaction (a control message just leaves the outbox). Returns the
    /// history entry, or `None` if there is no such item (confirmed
    /// already, say) or it was a control message.
    pub fn outbox_confirm(&mut self, id: i64, hash: &str) -> Result<Option<HistoryEntry>> {
        check_hash(hash)?;
        const OP: &str = "confirming a sent message";
        let tx = self.immediate_tx(OP)?;
        let Some(item) = self.item_in(&tx, id, OP)? else {
            return Ok(None);
        };
        if item.control {
            tx.execute("DELETE FROM outbox WHERE id = ?1", [id])
                .map_err(self.db_err(OP))?;
            tx.commit().map_err(self.db_err(OP))?;
            return Ok(None);
        }
        let created = to_i64("created timestamp", item.created_ms)?;
        history::insert(&tx, Direction::Outgoing, hash, &item.to, created, None, &item.body)
            .map_err(self.db_err(OP))?;
        let envelope_version: u8 = tx
            .query_row("SELECT envelope FROM outbox WHERE id = ?1", [id], |r| r.get(0))
            .map_err(self.db_err(OP))?;
        tx.execute(
            "UPDATE history SET envelope = ?3 WHERE hash = ?1 AND direction = ?2",
            params![hash, 1, i64::from(envelope_version)],
        )
        .map_err(self.db_err(OP))?;
        let expires_ms = item
            .disappear_ms
            .map(|d| created.saturating_add(i64::try_from(d).unwrap_or(i64::MAX)));
        if let Some(at) = expires_ms {
            tx.execute(
                "UPDATE history SET expires_ms = ?3 WHERE hash = ?1 AND direction = ?2",
                params![hash, 1, at],
            )
            .map_err(self.db_err(OP))?;
        }
        tx.execute("DELETE FROM outbox WHERE id = ?1", [id])
            .map_err(self.db_err(OP))?;
        tx.commit().map_err(self.db_err(OP))?;
        Ok(Some(HistoryEntry {
            direction: Direction::Outgoing,
            peer: item.to,
            hash: hash.to_owned(),
            sent_ts: item.created_ms,
            received_ts: None,
            body: item.body,
            expires_ms: expires_ms.and_then(|e| u64::try_from(e).ok()),
            receipt: history::ReceiptLevel::None,
            envelope: envelope_version,
        }))
    }

    /// Removes and returns every queued message whose TTL has passed at
    /// `now_ms` (it can no longer be delivered). The caller must report
    /// them as failed.
    pub fn outbox_expired(&mut self, now_ms: u64) -> Result<Vec<OutboxItem>> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        const OP: &str = "collecting expired messages";
        let tx = self.immediate_tx(OP)?;
        let raw: Vec<RawItem> = tx
            .prepare_cached(&format!("{SELECT} WHERE expires_ms <= ?1 ORDER BY id"))
            .and_then(|mut stmt| stmt.query_map([now], RawItem::from_row)?.collect())
            .map_err(self.db_err(OP))?;
        let items = raw
            .into_iter()
            .map(|r| self.decode_item(r))
            .collect::<Result<Vec<_>>>()?;
        tx.execute("DELETE FROM outbox WHERE expires_ms <= ?1", [now])
            .map_err(self.db_err(OP))?;
        tx.commit().map_err(self.db_err(OP))?;
        Ok(items)
    }

    /// Item `id`, read inside `tx`, if there is one.
    fn item_in(&self, tx: &rusqlite::Transaction<'_>, id: i64, op: &'static str) -> Result<Option<OutboxItem>> {
        tx.query_row(&format!("{SELECT} WHERE id = ?1"), [id], RawItem::from_row)
            .optional()
            .map_err(self.db_err(op))?
            .map(|raw| self.decode_item(raw))
            .transpose()
    }

    fn decode_item(&self, r: RawItem) -> Result<OutboxItem> {
        let num = |what: &'static str, v: i64| {
            u64::try_from(v).map_err(|_| self.corrupt("outbox item", format!("{what} {v}")))
        };
        Ok(OutboxItem {
            id: r.id,
            to: parse_account(self, "outbox item", &r.to)?,
            data: r.data,
            body: r.body,
            ttl_ms: num("ttl_ms", r.ttl_ms)?,
            created_ms: num("created_ms", r.created_ms)?,
            attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            last_error: r.last_error,
            next_attempt_ms: num("next_attempt_ms", r.next_attempt_ms)?,
            control: r.control,
            disappear_ms: r.disappear_ms.map(|d| num("disappear_ms", d)).transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{account, temp_home};
    use super::*;

    const TTL: u64 = 60_000;

    #[test]
    fn a_confirmed_control_message_leaves_the_outbox_without_a_history_entry() {
        let (_dir, mut home) = temp_home(1);
        let id = home.outbox_add_control(account(2), vec![1, 2], TTL, 1_000).unwrap();
        let item = home.outbox_pending().unwrap().pop().unwrap();
        assert!(item.control);
        assert_eq!(item.to, account(2));
        let hash = "A".repeat(43);
        assert_eq!(home.outbox_confirm(id, &hash).unwrap(), None);
        assert!(home.outbox_pending().unwrap().is_empty());
        assert!(home.history(None, 10).unwrap().is_empty());
    }

    #[test]
    fn add_attempt_confirm_moves_into_history() {
        let (_dir, mut home) = temp_home(1);
        let id = home.outbox_add(account(2), vec![1, 2, 3], "hello", TTL, 1_000).unwrap();
        let other = home.outbox_add(account(3), vec![4], "other", TTL, 1_001).unwrap();
        assert!(other > id);
        assert!(
            home.outbox_mark_attempt(id, "guard 1.2.3.4 unreachable", 1_500)
                .unwrap()
        );
        assert!(
            home.outbox_mark_attempt(id, &"é".repeat(MAX_LAST_ERROR_LEN), 1_600)
                .unwrap()
        );
        assert!(!home.outbox_mark_attempt(999, "x", 1_600).unwrap());
        let pending = home.outbox_pending().unwrap();
        assert_eq!(pending.len(), 2);
        let first = &pending[0];
        assert_eq!(
            (first.id, first.to, first.data.as_slice()),
            (id, account(2), &[1u8, 2, 3][..])
        );
        assert_eq!(
            (first.body.as_str(), first.ttl_ms, first.created_ms),
            ("hello", TTL, 1_000)
        );
        assert_eq!(first.attempts, 2);
        assert!(first.last_error.as_ref().unwrap().len() <= MAX_LAST_ERROR_LEN);
        assert_eq!(first.expires_ms(), 61_000);
        assert!(!format!("{first:?}").contains("hello"), "Debug hides the body");

        let entry = home.outbox_confirm(id, "hash1").unwrap().unwrap();
        assert_eq!(
            (entry.direction, entry.peer, entry.sent_ts),
            (Direction::Outgoing, account(2), 1_000)
        );
        assert_eq!(home.outbox_confirm(id, "hash1").unwrap(), None, "confirmed once");
        assert_eq!(home.outbox_pending().unwrap().len(), 1);
        let history = home.history(None, 10).unwrap();
        assert_eq!(history, vec![entry]);
        assert_eq!(history[0].body, "hello");
        // Ids are never reused.
        let next = home.outbox_add(account(2), vec![5], "again", TTL, 2_000).unwrap();
        assert!(next > other);
    }

    #[test]
    fn retries_back_off_from_ten_seconds_to_an_hour() {
        assert_eq!(retry_delay(0), FIRST_RETRY_MS);
        assert_eq!(retry_delay(1), 10_000);
        assert_eq!(retry_delay(2), 20_000);
        assert_eq!(retry_delay(3), 40_000);
        assert_eq!(retry_delay(9), 2_560_000);
        assert_eq!(retry_delay(10), MAX_RETRY_MS);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_MS);
    }

    #[test]
    fn only_due_items_are_retried() {
        let (_dir, mut home) = temp_home(1);
        let a = home.outbox_add(account(2), vec![1], "a", TTL, 1_000).unwrap();
        let b = home.outbox_add(account(2), vec![2], "b", TTL, 1_000).unwrap();
        let ids = |items: Vec<OutboxItem>| items.iter().map(|i| i.id).collect::<Vec<_>>();
        assert_eq!(
            ids(home.outbox_due(1_000).unwrap()),
            [a, b],
            "new items are due at once"
        );
        // A fails at 2 000: due again 10 s later, then 20 s after the next.
        home.outbox_mark_attempt(a, "no swarm node answered", 2_000).unwrap();
        assert_eq!(ids(home.outbox_due(2_000).unwrap()), [b]);
        assert_eq!(ids(home.outbox_due(11_999).unwrap()), [b]);
        assert_eq!(ids(home.outbox_due(12_000).unwrap()), [a, b]);
        home.outbox_mark_attempt(a, "still nothing", 12_000).unwrap();
        assert_eq!(ids(home.outbox_due(31_999).unwrap()), [b]);
        let due = home.outbox_due(32_000).unwrap();
        assert_eq!(ids(due.clone()), [a, b]);
        assert_eq!((due[0].attempts, due[0].next_attempt_ms), (2, 32_000));
        assert_eq!(due[0].last_error.as_deref(), Some("still nothing"));
        // Everything is still pending, due or not.
        assert_eq!(ids(home.outbox_pending().unwrap()), [a, b]);
    }

    #[test]
    fn a_permanent_refusal_removes_the_item_and_hands_it_back() {
        let (_dir, mut home) = temp_home(1);
        let a = home.outbox_add(account(2), vec![1], "refused", TTL, 1_000).unwrap();
        let b = home.outbox_add(account(2), vec![2], "kept", TTL, 1_000).unwrap();
        let failed = home.outbox_fail(a, "refused with 413: too large").unwrap().unwrap();
        assert_eq!((failed.id, failed.body.as_str()), (a, "refused"));
        assert_eq!(failed.last_error.as_deref(), Some("refused with 413: too large"));
        assert_eq!(home.outbox_fail(a, "again").unwrap(), None, "reported once");
        assert_eq!(
            home.outbox_pending().unwrap().iter().map(|i| i.id).collect::<Vec<_>>(),
            [b]
        );
        assert!(
            home.history(None, 10).unwrap().is_empty(),
            "a refused message was not sent"
        );
    }

    #[test]
    fn expired_items_are_reported_and_removed() {
        let (_dir, mut home) = temp_home(1);
        let a = home.outbox_add(account(2), vec![1], "short", 10_000, 1_000).unwrap();
        let b = home.outbox_add(account(2), vec![2], "long", 20_000, 1_000).unwrap();
        assert!(home.outbox_expired(10_999).unwrap().is_empty());
        let expired = home.outbox_expired(11_000).unwrap();
        assert_eq!(
            expired.iter().map(|i| (i.id, i.body.as_str())).collect::<Vec<_>>(),
            [(a, "short")]
        );
        assert_eq!(
            home.outbox_pending().unwrap().iter().map(|i| i.id).collect::<Vec<_>>(),
            [b]
        );
        assert!(home.outbox_expired(11_000).unwrap().is_empty(), "reported once");
        assert_eq!(home.outbox_expired(u64::MAX).unwrap().len(), 1);
        assert!(home.outbox_pending().unwrap().is_empty());
        assert!(home.history(None, 10).unwrap().is_empty(), "expired is not sent");
    }

    #[test]
    fn outbox_survives_reopening() {
        let (_dir, mut home) = temp_home(1);
        let id = home.outbox_add(account(2), vec![9; 100], "kept", TTL, 5).unwrap();
        let path = home.dir().to_path_buf();
        drop(home);
        let home = Home::open(&path).unwrap();
        let pending = home.outbox_pending().unwrap();
        assert_eq!((pending[0].id, pending[0].data.len()), (id, 100));
    }

    #[test]
    fn bad_input_is_refused() {
        let (_dir, mut home) = temp_home(1);
        let err = home
            .outbox_add(account(2), vec![0; MAX_DATA_LEN + 1], "x", TTL, 1)
            .unwrap_err();
        assert!(matches!(err, HomeError::DataTooLarge { .. }), "{err}");
        let big = "x".repeat(super::super::MAX_BODY_LEN + 1);
        assert!(matches!(
            home.outbox_add(account(2), vec![0], &big, TTL, 1),
            Err(HomeError::BodyTooLarge { .. })
        ));
        for ttl in [0, MIN_TTL_MS - 1, MAX_TTL_MS + 1, u64::MAX] {
            assert!(matches!(
                home.outbox_add(account(2), vec![0], "x", ttl, 1),
                Err(HomeError::InvalidTtl { .. })
            ));
        }
        assert!(matches!(
            home.outbox_add(account(2), vec![0], "x", TTL, u64::MAX),
            Err(HomeError::OutOfRange { .. })
        ));
        let id = home.outbox_add(account(2), vec![0], "x", TTL, 1).unwrap();
        assert!(home.outbox_confirm(id, "").is_err());
        assert_eq!(home.outbox_pending().unwrap().len(), 1);
    }

    #[test]
    fn outbox_is_bounded() {
        let (_dir, mut home) = temp_home(1);
        let tx = home.conn.transaction().unwrap();
        for _ in 0..MAX_OUTBOX {
            tx.execute(
                "INSERT INTO outbox (recipient, data, body, ttl_ms, created_ms, expires_ms)
                 VALUES (?1, x'00', '', 60000, 0, 60000)",
                [account(2).to_string()],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let err = home.outbox_add(account(2), vec![0], "x", TTL, 1).unwrap_err();
        assert!(matches!(err, HomeError::OutboxFull { limit: MAX_OUTBOX }), "{err}");
        assert_eq!(home.outbox_expired(60_000).unwrap().len(), MAX_OUTBOX);
        home.outbox_add(account(2), vec![0], "x", TTL, 1).unwrap();
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("héllo", 2), "h");
        assert_eq!(truncate("héllo", 3), "hé");
        assert_eq!(truncate("abc", 10), "abc");
    }
}
