//! The store's rules for file chunks (namespace 16): one chunk per chunk
//! mailbox, the files quota, the per-file limit, and the index kept for
//! peers.

use allium_common::MailboxId;
use allium_common::files::{CHUNK_LEN, ChunkId, RECORD_LEN};
use allium_common::rpc::Namespace;
use tempfile::TempDir;

use super::*;

const NOW: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

fn chunk_of(upload: u8, index: u32, fill: u8) -> NewMessage {
    let mailbox: MailboxId = ChunkId::of(&[upload; 32], index).into();
    NewMessage::new(mailbox, Namespace::FILES, NOW, NOW + HOUR, vec![fill; CHUNK_LEN])
        .signed_by_owner(Some(OwnerSig {
            ed25519: [upload; 32],
            signature: [1; 64],
        }))
        .with_chunk(Some(index))
}

fn open_with(dir: &TempDir, limits: StorageLimits) -> Store {
    Store::open(dir.path().join("store.sqlite"), limits).unwrap()
}

#[test]
fn a_chunk_mailbox_holds_one_chunk_and_takes_it_again() {
    let dir = TempDir::new().unwrap();
    let mut store = open_with(&dir, StorageLimits::default());
    let first = chunk_of(1, 0, 7);
    assert_eq!(store.insert(&first, NOW).unwrap(), Inserted::New);
    // A resumed upload stores the same bytes again: a duplicate.
    assert_eq!(store.insert(&first, NOW).unwrap(), Inserted::Duplicate);
    // Other data at the same chunk ID is refused, not added.
    let other = chunk_of(1, 0, 8);
    assert!(matches!(
        store.insert(&other, NOW),
        Err(StorageError::MailboxFull { max_messages: 1, .. })
    ));
    assert_eq!(store.file_stats().unwrap().messages, 1);
}

#[test]
fn the_files_quota_refuses_chunks_but_not_messages() {
    let dir = TempDir::new().unwrap();
    let limits = StorageLimits {
        max_files_bytes: 2 * CHUNK_LEN as u64,
        ..StorageLimits::default()
    };
    let mut store = open_with(&dir, limits);
    for i in 0..2 {
        assert_eq!(store.insert(&chunk_of(1, i, 7), NOW).unwrap(), Inserted::New);
    }
    let refused = store.insert(&chunk_of(1, 2, 7), NOW).unwrap_err();
    assert!(matches!(refused, StorageError::FilesFull { .. }), "{refused}");
    assert!(refused.is_insufficient_storage());
    assert!(refused.to_string().contains("files quota"), "{refused}");
    // An account's message still fits: the quota is the files' own.
    let account: MailboxId = allium_common::AccountId::from_x25519([3; 32]).into();
    let message = NewMessage::new(account, Namespace(0), NOW, NOW + HOUR, vec![1; 1000]);
    assert_eq!(store.insert(&message, NOW).unwrap(), Inserted::New);
    // Once the chunks expire, the quota has room again.
    let later = NOW + HOUR;
    let mut fresh = chunk_of(1, 2, 7);
    fresh.expiry_ms = later + HOUR;
    assert_eq!(store.insert(&fresh, later).unwrap(), Inserted::New);
    assert_eq!(store.file_stats().unwrap().messages, 1);
}

#[test]
fn a_chunk_past_the_operators_largest_file_is_refused() {
    let dir = TempDir::new().unwrap();
    let limits = StorageLimits {
        max_file_bytes: 10 * RECORD_LEN as u64,
        ..StorageLimits::default()
    };
    let mut store = open_with(&dir, limits);
    assert_eq!(store.insert(&chunk_of(1, 9, 7), NOW).unwrap(), Inserted::New);
    let refused = store.insert(&chunk_of(1, 10, 7), NOW).unwrap_err();
    assert!(
        matches!(refused, StorageError::FileTooLarge { chunk: 10, .. }),
        "{refused}"
    );
    assert!(refused.is_too_large());
}

#[test]
fn a_chunk_keeps_its_index_for_the_peers() {
    let dir = TempDir::new().unwrap();
    let mut store = open_with(&dir, StorageLimits::default());
    let chunk = chunk_of(2, 41, 7);
    store.insert(&chunk, NOW).unwrap();
    let mut rows = Vec::new();
    store.for_each_live(NOW, 10, |_, _| true, |r| rows.push(r)).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].message, chunk);
    assert_eq!(rows[0].message.chunk, Some(41));
    assert!(matches!(rows[0].message.account, MailboxId::Chunk(_)));
    // Deleting the chunk frees its share of the quota.
    store.delete_all(&chunk.account, Namespace::FILES, NOW).unwrap();
    assert_eq!(store.file_stats().unwrap(), Stats::default());
}

#[test]
fn namespace_16_rows_of_a_version_5_store_are_dropped_on_upgrade() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..5] {
            conn.execute_batch(m).unwrap();
        }
        conn.execute_batch(&format!(
            "PRAGMA user_version = 5; PRAGMA application_id = {APPLICATION_ID};"
        ))
        .unwrap();
        for (ns, hash) in [(16, "a".repeat(43)), (1, "b".repeat(43))] {
            conn.execute(
                "INSERT INTO messages (hash, account, namespace, timestamp_ms, expiry_ms, data) \
                 VALUES (?1, ?2, ?3, ?4, ?5, x'00')",
                rusqlite::params![hash, [3u8; 32].as_slice(), ns, 1, i64::MAX],
            )
            .unwrap();
        }
    }
    let store = open_with(&dir, StorageLimits::default());
    assert_eq!(store.stats().unwrap().messages, 1);
    assert_eq!(store.file_stats().unwrap(), Stats::default());
}
