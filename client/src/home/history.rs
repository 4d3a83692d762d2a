//! Message history: messages delivered to or from this account.
//!
//! An entry is identified by its swarm message hash and its direction, so
//! retrieving the same message from several swarm members records it once,
//! while a note to self is recorded once sent and once received. Listings
//! are ordered by this client's own clock (`received_ts` for incoming,
//! `sent_ts` for outgoing), never by a timestamp the sender chose.

use allium_common::AccountId;
use allium_common::rpc::MAX_DATA_LEN;
use rusqlite::{OptionalExtension, Row, params};

use super::error::{HomeError, Result};
use super::{Home, check_hash, parse_account, to_i64};

/// Largest message body kept, in bytes (the largest data a node stores, so
/// a body that fits a message always fits here).
pub const MAX_BODY_LEN: usize = MAX_DATA_LEN;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received from `peer`.
    Incoming,
    /// Sent to `peer`.
    Outgoing,
}

impl Direction {
    const fn to_sql(self) -> i64 {
        match self {
            Self::Incoming => 0,
            Self::Outgoing => 1,
        }
    }
}

/// One message in the history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HistoryEntry {
    /// Which way it went.
    pub direction: Direction,
    /// The other account (sender of incoming, recipient of outgoing).
    pub peer: AccountId,
    /// The swarm message hash.
    pub hash: String,
    /// When it was sent, Unix ms (for incoming: as the sender claims).
    pub sent_ts: u64,
    /// When this client received it, Unix ms (incoming only).
    pub received_ts: Option<u64>,
    /// The text.
    pub body: String,
    /// When it disappears (network time, Unix ms), if it does.
    pub expires_ms: Option<u64>,
    /// For a sent message: what the recipient confirmed.
    pub receipt: ReceiptLevel,
    /// The envelope version it travelled in: 1 (no forward secrecy) or 2.
    pub envelope: u8,
}

/// What the recipient of a sent message confirmed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptLevel {
    /// Nothing (yet).
    #[default]
    None,
    /// A device of the recipient fetched it.
    Delivered,
    /// The recipient read it.
    Read,
}

impl ReceiptLevel {
    fn from_sql(v: i64) -> Self {
        match v {
            1 => Self::Delivered,
            2 => Self::Read,
            _ => Self::None,
        }
    }

    const fn to_sql(self) -> i64 {
        match self {
            Self::None => 0,
            Self::Delivered => 1,
            Self::Read => 2,
        }
    }
}

pub(crate) fn check_body(body: &str) -> Result<()> {
    if body.len() > MAX_BODY_LEN {
        return Err(HomeError::BodyTooLarge {
            len: body.len(),
            max: MAX_BODY_LEN,
        });
    }
    Ok(())
}

/// Inserts one history row unless `(hash, direction)` is there already.
/// Returns whether it was new. Runs on a connection or a transaction.
pub(crate) fn insert(
    conn: &rusqlite::Connection,
    direction: Direction,
    hash: &str,
    peer: &AccountId,
    sent_ms: i64,
    received_ms: Option<i64>,
    body: &str,
) -> rusqlite::Result<bool> {
    let local_ms = received_ms.unwrap_or(sent_ms);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO history (direction, hash, peer, sent_ms, received_ms, local_ms, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (hash, direction) DO NOTHING",
        )?
        .execute(params![
            direction.to_sql(),
            hash,
            peer.to_string(),
            sent_ms,
            received_ms,
            local_ms,
            body
        ])?;
    Ok(inserted > 0)
}

/// The columns [`RawEntry::from_row`] reads, in order.
const COLUMNS: &str = "direction, peer, hash, sent_ms, received_ms, body, expires_ms, receipt, envelope";

/// A raw history row, before its Account ID and numbers are checked.
struct RawEntry {
    direction: i64,
    peer: String,
    hash: String,
    sent_ms: i64,
    received_ms: Option<i64>,
    body: String,
    expires_ms: Option<i64>,
    receipt: i64,
    envelope: i64,
}

impl RawEntry {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            direction: r.get(0)?,
            peer: r.get(1)?,
            hash: r.get(2)?,
            sent_ms: r.get(3)?,
            received_ms: r.get(4)?,
            body: r.get(5)?,
            expires_ms: r.get(6)?,
            receipt: r.get(7)?,
            envelope: r.get(8)?,
        })
    }
}

impl Home {
    /// Records a message received from `from`. Returns `true` if it is new,
    /// `false` if this hash was received before (nothing changes).
    pub fn record_incoming(
        &mut self,
        hash: &str,
        from: AccountId,
        sent_ts: u64,
        received_ts: u64,
        body: &str,
    ) -> Result<bool> {
        check_hash(hash)?;
        check_body(body)?;
        let sent = to_i64("sent timestamp", sent_ts)?;
        let received = to_i64("received timestamp", received_ts)?;
        insert(&self.conn, Direction::Incoming, hash, &from, sent, Some(received), body)
            .map_err(self.db_err("recording a received message"))
    }

    /// Records a message sent to `to` that a swarm node has stored.
    /// Returns `true` if it is new. Messages that go through the outbox are
    /// recorded by [`Home::outbox_confirm`] instead.
    pub fn record_outgoing(&mut self, hash: &str, to: AccountId, sent_ts: u64, body: &str) -> Result<bool> {
        check_hash(hash)?;
        check_body(body)?;
        let sent = to_i64("sent timestamp", sent_ts)?;
        insert(&self.conn, Direction::Outgoing, hash, &to, sent, None, body)
            .map_err(self.db_err("recording a sent message"))
    }

    /// The last `limit` messages (with `with` only, if given), oldest first.
    pub fn history(&self, with: Option<&AccountId>, limit: usize) -> Result<Vec<HistoryEntry>> {
        self.history_where(with, limit, |_| true)
    }

    /// The last `limit` messages (with `with` only, if given) that `keep`
    /// keeps, oldest first.
    pub fn history_where(
        &self,
        with: Option<&AccountId>,
        limit: usize,
        keep: impl Fn(&HistoryEntry) -> bool,
    ) -> Result<Vec<HistoryEntry>> {
        const OP: &str = "reading the history";
        // Newest first until `limit` are kept, then reversed.
        let peer = with.map(ToString::to_string);
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM history WHERE ?1 IS NULL OR peer = ?1 ORDER BY local_ms DESC, id DESC"
            ))
            .map_err(self.db_err(OP))?;
        let rows = stmt.query_map([peer], RawEntry::from_row).map_err(self.db_err(OP))?;
        let mut out = Vec::new();
        for row in rows {
            if out.len() >= limit {
                break;
            }
            let entry = self.decode(row.map_err(self.db_err(OP))?)?;
            if keep(&entry) {
                out.push(entry);
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Every account this one received a message from.
    pub fn incoming_peers(&self) -> Result<Vec<AccountId>> {
        const OP: &str = "listing senders";
        let peers: Vec<String> = self
            .conn
            .prepare_cached("SELECT DISTINCT peer FROM history WHERE direction = 0 ORDER BY peer")
            .and_then(|mut stmt| stmt.query_map([], |r| r.get(0))?.collect())
            .map_err(self.db_err(OP))?;
        peers.iter().map(|p| parse_account(self, "history entry", p)).collect()
    }

    /// Deletes the messages received from `peer` that it sent (by its
    /// clock) at or before `up_to_ms`; returns their hashes.
    pub fn forget_incoming(&mut self, peer: &AccountId, up_to_ms: u64) -> Result<Vec<String>> {
        const OP: &str = "deleting received messages";
        let up_to = i64::try_from(up_to_ms).unwrap_or(i64::MAX);
        let tx = self.immediate_tx(OP)?;
        let hashes: Vec<String> = tx
            .prepare_cached("SELECT hash FROM history WHERE direction = 0 AND peer = ?1 AND sent_ms <= ?2")
            .and_then(|mut stmt| {
                stmt.query_map(params![peer.to_string(), up_to], |r| r.get(0))?
                    .collect()
            })
            .map_err(self.db_err(OP))?;
        tx.execute(
            "DELETE FROM history WHERE direction = 0 AND peer = ?1 AND sent_ms <= ?2",
            params![peer.to_string(), up_to],
        )
        .map_err(self.db_err(OP))?;
        tx.commit().map_err(self.db_err(OP))?;
        Ok(hashes)
    }

    /// Sets when the `direction` message `hash` disappears (network time);
    /// an earlier time already set stays.
    pub fn set_expiry(&mut self, direction: Direction, hash: &str, expires_ms: u64) -> Result<()> {
        let at = to_i64("expiry", expires_ms)?;
        self.conn
            .execute(
                "UPDATE history SET expires_ms = min(coalesce(expires_ms, ?3), ?3)
                 WHERE hash = ?1 AND direction = ?2",
                params![hash, direction.to_sql(), at],
            )
            .map_err(self.db_err("setting when a message disappears"))?;
        Ok(())
    }

    /// Records that the `direction` message `hash` travelled in envelope
    /// `version`.
    pub fn set_envelope(&mut self, direction: Direction, hash: &str, version: u8) -> Result<()> {
        self.conn
            .execute(
                "UPDATE history SET envelope = ?3 WHERE hash = ?1 AND direction = ?2",
                params![hash, direction.to_sql(), i64::from(version)],
            )
            .map_err(self.db_err("recording a message's envelope"))?;
        Ok(())
    }

    /// Deletes the messages whose time ran out at `now_ms` (network time);
    /// returns how many.
    pub fn purge_expired(&mut self, now_ms: u64) -> Result<usize> {
        let now = to_i64("time", now_ms)?;
        self.conn
            .execute("DELETE FROM history WHERE expires_ms <= ?1", [now])
            .map_err(self.db_err("deleting disappeared messages"))
    }

    /// Records that `peer` confirmed the sent messages `hashes` up to
    /// `level` (a lower level than known changes nothing). Returns how many
    /// entries changed.
    pub fn record_receipt(&mut self, peer: &AccountId, hashes: &[String], level: ReceiptLevel) -> Result<usize> {
        const OP: &str = "recording a receipt";
        let tx = self.immediate_tx(OP)?;
        let mut changed = 0;
        for hash in hashes {
            changed += tx
                .execute(
                    "UPDATE history SET receipt = ?3 WHERE direction = 1 AND hash = ?1 AND peer = ?2 AND receipt < ?3",
                    params![hash, peer.to_string(), level.to_sql()],
                )
                .map_err(self.db_err(OP))?;
        }
        tx.commit().map_err(self.db_err(OP))?;
        Ok(changed)
    }

    /// Sets the hash of the copy of sent message `hash` in this account's
    /// own swarm.
    pub fn set_copy_hash(&mut self, hash: &str, copy_hash: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE history SET copy_hash = ?2 WHERE direction = 1 AND hash = ?1",
                params![hash, copy_hash],
            )
            .map_err(self.db_err("recording a sent message's copy"))?;
        Ok(())
    }

    /// Deletes the `direction` message `hash` exchanged with `peer`.
    /// Returns whether there was one, and (for a sent message) the hash
    /// of its copy in this account's swarm.
    pub fn forget_message(
        &mut self,
        direction: Direction,
        hash: &str,
        peer: &AccountId,
    ) -> Result<(bool, Option<String>)> {
        const OP: &str = "deleting a message";
        let tx = self.immediate_tx(OP)?;
        let found: Option<Option<String>> = tx
            .query_row(
                "SELECT copy_hash FROM history WHERE direction = ?1 AND hash = ?2 AND peer = ?3",
                params![direction.to_sql(), hash, peer.to_string()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db_err(OP))?;
        tx.execute(
            "DELETE FROM history WHERE direction = ?1 AND hash = ?2 AND peer = ?3",
            params![direction.to_sql(), hash, peer.to_string()],
        )
        .map_err(self.db_err(OP))?;
        tx.commit().map_err(self.db_err(OP))?;
        Ok((found.is_some(), found.flatten()))
    }

    /// The recipient of sent message `hash`, if this account sent one.
    pub fn sent_to(&self, hash: &str) -> Result<Option<AccountId>> {
        let peer: Option<String> = self
            .conn
            .query_row(
                "SELECT peer FROM history WHERE direction = 1 AND hash = ?1",
                [hash],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db_err("looking up a sent message"))?;
        peer.map(|p| parse_account(self, "history entry", &p)).transpose()
    }

    fn decode(&self, r: RawEntry) -> Result<HistoryEntry> {
        let direction = match r.direction {
            0 => Direction::Incoming,
            1 => Direction::Outgoing,
            d => return Err(self.corrupt("history entry", format!("direction {d}"))),
        };
        let ts = |v: i64| u64::try_from(v).map_err(|_| self.corrupt("history entry", format!("timestamp {v}")));
        Ok(HistoryEntry {
            direction,
            peer: parse_account(self, "history entry", &r.peer)?,
            hash: r.hash,
            sent_ts: ts(r.sent_ms)?,
            received_ts: r.received_ms.map(ts).transpose()?,
            body: r.body,
            expires_ms: r.expires_ms.map(ts).transpose()?,
            receipt: ReceiptLevel::from_sql(r.receipt),
            envelope: u8::try_from(r.envelope).unwrap_or(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{account, temp_home};
    use super::*;

    #[test]
    fn incoming_is_deduplicated_by_hash() {
        let (_dir, mut home) = temp_home(1);
        assert!(home.record_incoming("h1", account(2), 100, 150, "hi").unwrap());
        assert!(!home.record_incoming("h1", account(2), 100, 999, "hi").unwrap());
        let all = home.history(None, 10).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0],
            HistoryEntry {
                direction: Direction::Incoming,
                peer: account(2),
                hash: "h1".into(),
                sent_ts: 100,
                received_ts: Some(150),
                body: "hi".into(),
                expires_ms: None,
                receipt: ReceiptLevel::None,
                envelope: 1,
            }
        );
        // A note to self: the same hash sent and received is two entries.
        assert!(home.record_outgoing("h1", account(2), 90, "hi").unwrap());
        assert!(!home.record_outgoing("h1", account(2), 90, "hi").unwrap());
        assert_eq!(home.history(None, 10).unwrap().len(), 2);
    }

    #[test]
    fn filtered_history_keeps_the_limit_and_forgetting_takes_only_older_incoming() {
        let (_dir, mut home) = temp_home(1);
        home.record_incoming("h1", account(2), 100, 100, "a").unwrap();
        home.record_incoming("h2", account(3), 110, 110, "b").unwrap();
        home.record_incoming("h3", account(2), 120, 120, "c").unwrap();
        home.record_outgoing("h4", account(2), 130, "d").unwrap();
        home.record_incoming("h5", account(3), 140, 140, "e").unwrap();
        let from_3 = home.history_where(None, 10, |e| e.peer == account(3)).unwrap();
        assert_eq!(from_3.iter().map(|e| e.hash.as_str()).collect::<Vec<_>>(), ["h2", "h5"]);
        let last = home.history_where(None, 1, |e| e.peer == account(3)).unwrap();
        assert_eq!(last[0].hash, "h5", "the limit counts kept entries");
        assert_eq!(home.incoming_peers().unwrap(), {
            let mut v = vec![account(2), account(3)];
            v.sort_by_key(ToString::to_string);
            v
        });
        assert_eq!(home.forget_incoming(&account(2), 110).unwrap(), ["h1"]);
        let left: Vec<String> = home.history(None, 10).unwrap().into_iter().map(|e| e.hash).collect();
        assert_eq!(left, ["h2", "h3", "h4", "h5"], "later and outgoing messages stay");
    }

    #[test]
    fn only_the_sender_of_a_message_can_take_it_back() {
        let (_dir, mut home) = temp_home(1);
        home.record_incoming("h1", account(2), 100, 100, "mine to take back")
            .unwrap();
        assert_eq!(
            home.forget_message(Direction::Incoming, "h1", &account(3)).unwrap(),
            (false, None),
            "another account names the hash"
        );
        assert_eq!(home.history(None, 10).unwrap().len(), 1, "the message stays");
        assert_eq!(
            home.forget_message(Direction::Incoming, "h1", &account(2)).unwrap(),
            (true, None)
        );
        assert!(home.history(None, 10).unwrap().is_empty());
        home.record_outgoing("h2", account(2), 100, "sent").unwrap();
        home.set_copy_hash("h2", "c2").unwrap();
        assert_eq!(home.sent_to("h2").unwrap(), Some(account(2)));
        assert_eq!(
            home.forget_message(Direction::Outgoing, "h2", &account(2)).unwrap(),
            (true, Some("c2".to_owned())),
            "a sent message goes with its copy's hash"
        );
    }

    #[test]
    fn history_is_oldest_first_within_the_last_limit() {
        let (_dir, mut home) = temp_home(1);
        // Local times 10, 20, 30, 40, 50; the sender of h4 claims a time far
        // in the future, which must not move it.
        home.record_outgoing("h1", account(2), 10, "one").unwrap();
        home.record_incoming("h2", account(3), 5, 20, "two").unwrap();
        home.record_incoming("h4", account(2), u64::MAX >> 2, 40, "four")
            .unwrap();
        home.record_outgoing("h3", account(2), 30, "three").unwrap();
        home.record_incoming("h5", account(3), 45, 50, "five").unwrap();
        let bodies = |v: Vec<HistoryEntry>| v.into_iter().map(|e| e.body).collect::<Vec<_>>();
        assert_eq!(
            bodies(home.history(None, 100).unwrap()),
            ["one", "two", "three", "four", "five"]
        );
        assert_eq!(bodies(home.history(None, 2).unwrap()), ["four", "five"]);
        assert_eq!(bodies(home.history(Some(&account(2)), 2).unwrap()), ["three", "four"]);
        assert_eq!(bodies(home.history(Some(&account(3)), 9).unwrap()), ["two", "five"]);
        assert!(home.history(Some(&account(4)), 9).unwrap().is_empty());
        assert!(home.history(None, 0).unwrap().is_empty());
        assert_eq!(home.history(None, usize::MAX).unwrap().len(), 5);
    }

    #[test]
    fn bounds_and_bad_input_are_refused() {
        let (_dir, mut home) = temp_home(1);
        let big = "x".repeat(MAX_BODY_LEN + 1);
        let err = home.record_incoming("h", account(2), 1, 2, &big).unwrap_err();
        assert!(matches!(err, HomeError::BodyTooLarge { .. }), "{err}");
        assert!(!err.to_string().contains("xxx"), "errors never carry bodies");
        assert!(home.record_outgoing("h", account(2), 1, &big).is_err());
        home.record_outgoing("h", account(2), 1, &big[1..]).unwrap();
        for hash in ["", "a b", &"a".repeat(129)] {
            assert!(matches!(
                home.record_incoming(hash, account(2), 1, 2, "x"),
                Err(HomeError::InvalidArgument { .. })
            ));
        }
        assert!(matches!(
            home.record_incoming("h9", account(2), u64::MAX, 2, "x"),
            Err(HomeError::OutOfRange { .. })
        ));
    }

    #[test]
    fn history_survives_reopening() {
        let (_dir, mut home) = temp_home(1);
        home.record_incoming("h1", account(2), 1, 2, "kept").unwrap();
        let path = home.dir().to_path_buf();
        drop(home);
        let mut home = Home::open(&path).unwrap();
        assert_eq!(home.history(None, 1).unwrap()[0].body, "kept");
        assert!(!home.record_incoming("h1", account(2), 1, 2, "kept").unwrap());
    }
}
