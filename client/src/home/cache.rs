//! Retrieve cursors and the cached node list: state that saves work but
//! can always be rebuilt from the network.
//!
//! A cursor is the last message hash retrieved from one swarm node (or one
//! swarm), passed as `last_hash` next time. Losing one only means
//! retrieving again, and the history deduplicates by hash, so the table is
//! bounded by evicting the least recently set cursor.
//!
//! The node list is kept as the JSON text the seed served; loading it
//! checks only that it parses. The caller verifies the signature against
//! its trusted seeds, as it does for a freshly fetched list.

use allium_common::consensus::{Consensus, UnverifiedConsensus};
use allium_common::node_list::MAX_ENCODED_LEN;
use rusqlite::{OptionalExtension, params};

/// Meta key: the digest of the consensus saved last (hex).
const CHECKED_DIGEST_META: &str = "node_list_checked_digest";

use super::error::{HomeError, Result, echo};
use super::{Home, check_hash, to_i64};

/// Most cursors kept; setting one more evicts the least recently set.
pub const MAX_CURSORS: usize = 10_000;
/// Longest cursor key, in bytes.
pub const MAX_CURSOR_KEY_LEN: usize = 128;
/// Longest node-list source description, in bytes.
pub const MAX_SOURCE_LEN: usize = 256;

fn check_cursor_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_CURSOR_KEY_LEN {
        return Err(HomeError::InvalidArgument {
            what: "cursor key",
            value: echo(key),
            reason: "must be 1 to 128 bytes",
        });
    }
    Ok(())
}

impl Home {
    /// The last hash retrieved under `key` (a swarm node's Ed25519 hex, or a
    /// swarm id).
    pub fn cursor(&self, key: &str) -> Result<Option<String>> {
        check_cursor_key(key)?;
        self.conn
            .query_row("SELECT hash FROM cursors WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.db_err("reading a cursor"))
    }

    /// Sets the last hash retrieved under `key`.
    pub fn set_cursor(&mut self, key: &str, hash: &str) -> Result<()> {
        check_cursor_key(key)?;
        check_hash(hash)?;
        const OP: &str = "setting a cursor";
        let tx = self.immediate_tx(OP)?;
        // REPLACE deletes and reinserts, giving the row a new, highest
        // rowid: rowid order is recency.
        tx.execute(
            "INSERT OR REPLACE INTO cursors (key, hash) VALUES (?1, ?2)",
            params![key, hash],
        )
        .map_err(self.db_err(OP))?;
        let max = i64::try_from(MAX_CURSORS).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM cursors WHERE rowid IN (
                 SELECT rowid FROM cursors ORDER BY rowid DESC LIMIT -1 OFFSET ?1)",
            [max],
        )
        .map_err(self.db_err(OP))?;
        tx.commit().map_err(self.db_err(OP))
    }

    /// Replaces the cached node list. `source` says where it came from
    /// (a seed's address, say; at most [`MAX_SOURCE_LEN`] bytes). Only a
    /// verified consensus can be saved, and its digest is remembered as
    /// checked (see [`Home::checked_digest`]).
    pub fn save_node_list(&mut self, list: &Consensus, fetched_ms: u64, source: &str) -> Result<()> {
        if source.len() > MAX_SOURCE_LEN {
            return Err(HomeError::InvalidArgument {
                what: "node list source",
                value: echo(source),
                reason: "longer than 256 bytes",
            });
        }
        let fetched = to_i64("fetch timestamp", fetched_ms)?;
        let json = serde_json::to_string(list).map_err(|e| self.corrupt("node list", e.to_string()))?;
        if json.len() > MAX_ENCODED_LEN {
            return Err(HomeError::NodeListTooLarge {
                len: json.len(),
                max: MAX_ENCODED_LEN,
            });
        }
        self.conn
            .execute(
                "INSERT OR REPLACE INTO node_list (id, json, fetched_ms, source) VALUES (0, ?1, ?2, ?3)",
                params![json, fetched, source],
            )
            .map_err(self.db_err("saving the node list"))?;
        self.set_meta(CHECKED_DIGEST_META, &hex::encode(list.digest()))
    }

    /// The digest of the last consensus saved, whose keys this client
    /// checked when it verified it: loading that document again needs its
    /// signatures checked, not every node's keys.
    pub fn checked_digest(&self) -> Result<Option<String>> {
        self.meta(CHECKED_DIGEST_META)
    }

    /// The cached consensus with when (Unix ms) and where it was fetched,
    /// if any. Not verified: the caller checks the signatures. A cached list
    /// that no longer parses (written by another version, or edited) is
    /// treated as absent, with a warning, so the client fetches a new one.
    pub fn load_node_list(&self) -> Result<Option<(UnverifiedConsensus, u64, String)>> {
        let row: Option<(String, i64, String)> = self
            .conn
            .query_row("SELECT json, fetched_ms, source FROM node_list WHERE id = 0", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()
            .map_err(self.db_err("loading the node list"))?;
        let Some((json, fetched, source)) = row else {
            return Ok(None);
        };
        if json.len() > MAX_ENCODED_LEN {
            tracing::warn!(path = %self.db_path.display(), len = json.len(), "cached node list too large; ignoring it");
            return Ok(None);
        }
        match Consensus::decode(json.as_bytes()) {
            Ok(list) => Ok(Some((list, u64::try_from(fetched).unwrap_or(0), source))),
            Err(e) => {
                let path = self.db_path.display();
                tracing::warn!(%path, error = %e, "cached node list does not parse; ignoring it");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use allium_common::Identity;
    use allium_common::consensus::Schedule;
    use allium_common::encoding::Hex32;
    use allium_common::node_list::NodeEntry;

    use super::super::tests::temp_home;
    use super::*;

    #[test]
    fn cursors_are_set_replaced_and_kept() {
        let (_dir, mut home) = temp_home(1);
        let node = "ab".repeat(32);
        assert_eq!(home.cursor(&node).unwrap(), None);
        home.set_cursor(&node, "hash1").unwrap();
        home.set_cursor("swarm:42", "hashA").unwrap();
        home.set_cursor(&node, "hash2").unwrap();
        assert_eq!(home.cursor(&node).unwrap().as_deref(), Some("hash2"));
        assert_eq!(home.cursor("swarm:42").unwrap().as_deref(), Some("hashA"));
        assert!(home.cursor("").is_err());
        assert!(home.set_cursor(&"k".repeat(MAX_CURSOR_KEY_LEN + 1), "h").is_err());
        assert!(home.set_cursor("k", "").is_err());
        let path = home.dir().to_path_buf();
        drop(home);
        let home = Home::open(&path).unwrap();
        assert_eq!(home.cursor(&node).unwrap().as_deref(), Some("hash2"));
    }

    #[test]
    fn cursors_evict_the_least_recently_set() {
        let (_dir, mut home) = temp_home(1);
        let tx = home.conn.transaction().unwrap();
        for i in 0..MAX_CURSORS {
            tx.execute("INSERT INTO cursors (key, hash) VALUES (?1, 'h')", [format!("k{i}")])
                .unwrap();
        }
        tx.commit().unwrap();
        home.set_cursor("k0", "h2").unwrap(); // refreshed: now the newest
        home.set_cursor("new", "h").unwrap(); // evicts k1, the stalest
        assert_eq!(home.cursor("k0").unwrap().as_deref(), Some("h2"));
        assert_eq!(home.cursor("k1").unwrap(), None);
        assert_eq!(home.cursor("k2").unwrap().as_deref(), Some("h"));
        assert_eq!(home.cursor("new").unwrap().as_deref(), Some("h"));
        let count: i64 = home
            .conn
            .query_row("SELECT count(*) FROM cursors", [], |r| r.get(0))
            .unwrap();
        assert_eq!(usize::try_from(count).unwrap(), MAX_CURSORS);
    }

    fn sample_list() -> Consensus {
        let seed = Identity::from_ed25519_seed(&[0x51; 32]);
        let nodes = (1u8..=3)
            .map(|i| {
                let id = Identity::from_ed25519_seed(&[i; 32]);
                NodeEntry {
                    ed25519: Hex32(*id.ed25519_pk()),
                    x25519: Hex32(*id.x25519_pk()),
                    address: format!("127.0.0.1:{}", 22000 + u16::from(i)),
                    swarm_id: u64::from(i) << 60,
                    version: "0.1.0".into(),
                    guard: true,
                }
            })
            .collect();
        Consensus::assemble(&Schedule::new(60_000), 7, nodes, &[&seed]).unwrap()
    }

    #[test]
    fn node_list_round_trips() {
        let (_dir, mut home) = temp_home(1);
        assert!(home.load_node_list().unwrap().is_none());
        let list = sample_list();
        home.save_node_list(&list, 1_700_000_000_000, "127.0.0.1:22000")
            .unwrap();
        let path = home.dir().to_path_buf();
        drop(home);
        let mut home = Home::open(&path).unwrap();
        let (loaded, fetched, source) = home.load_node_list().unwrap().unwrap();
        assert_eq!(loaded.into_unchecked(), list);
        assert_eq!((fetched, source.as_str()), (1_700_000_000_000, "127.0.0.1:22000"));
        // A newer list replaces it.
        let mut newer = list.clone();
        newer.period = 8;
        home.save_node_list(&newer, 1_700_000_001_000, "node").unwrap();
        assert_eq!(home.load_node_list().unwrap().unwrap().0.period(), 8);
        assert!(home.save_node_list(&newer, 1, &"s".repeat(MAX_SOURCE_LEN + 1)).is_err());
    }

    #[test]
    fn unparsable_cached_list_is_treated_as_absent() {
        let (_dir, mut home) = temp_home(1);
        home.save_node_list(&sample_list(), 1, "seed").unwrap();
        home.conn
            .execute("UPDATE node_list SET json = '{\"period\": \"x\"}'", [])
            .unwrap();
        assert!(home.load_node_list().unwrap().is_none());
    }
}
