//! Unit tests of the synchronous [`Store`].

use allium_common::rpc::{MAX_DATA_LEN, MAX_RETRIEVE_COUNT, Namespace};
use allium_common::{AccountId, MailboxId};
use proptest::prelude::*;
use tempfile::TempDir;

use super::*;

const NOW: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

fn acct(n: u8) -> MailboxId {
    AccountId::from_x25519([n; 32]).into()
}

fn msg(account: MailboxId, ns: i16, i: usize, expiry_ms: u64) -> NewMessage {
    NewMessage::new(
        account,
        Namespace(ns),
        NOW,
        expiry_ms,
        format!("message {i}").into_bytes(),
    )
}

fn sized(account: MailboxId, i: usize, len: usize) -> NewMessage {
    let mut data = format!("{i}:").into_bytes();
    data.resize(len, b'x');
    NewMessage::new(account, Namespace(0), NOW, NOW + HOUR, data)
}

fn open(dir: &TempDir) -> Store {
    Store::open(dir.path().join("store.sqlite"), StorageLimits::default()).unwrap()
}

fn open_with(dir: &TempDir, limits: StorageLimits) -> Store {
    Store::open(dir.path().join("store.sqlite"), limits).unwrap()
}

fn hashes(r: &Retrieved) -> Vec<String> {
    r.messages.iter().map(|m| m.hash.clone()).collect()
}

fn retrieve_all(store: &Store, account: &MailboxId, ns: i16, now: u64) -> Retrieved {
    store
        .retrieve(account, Namespace(ns), None, MAX_RETRIEVE_COUNT, usize::MAX, now)
        .unwrap()
}

#[test]
fn opens_creating_directories_and_reports_wal() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("a/b/store.sqlite");
    let store = Store::open(&path, StorageLimits::default()).unwrap();
    assert!(path.exists());
    assert_eq!(store.stats().unwrap(), Stats::default());
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, i64::try_from(MIGRATIONS.len()).unwrap());
}

#[test]
fn duplicate_is_stored_once_and_only_extends_expiry() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let m = msg(acct(1), 0, 1, NOW + HOUR);
    assert_eq!(store.insert(&m, NOW).unwrap(), Inserted::New);
    assert_eq!(store.insert(&m, NOW).unwrap(), Inserted::Duplicate);
    let stats = store.stats().unwrap();
    assert_eq!(
        stats,
        Stats {
            messages: 1,
            bytes: m.data.len() as u64
        }
    );

    // A later expiry extends, an earlier one does not shorten.
    let later = NewMessage {
        expiry_ms: NOW + 2 * HOUR,
        ..m.clone()
    };
    assert_eq!(store.insert(&later, NOW).unwrap(), Inserted::Duplicate);
    let earlier = NewMessage {
        expiry_ms: NOW + HOUR / 2,
        ..m.clone()
    };
    assert_eq!(store.insert(&earlier, NOW).unwrap(), Inserted::Duplicate);
    let got = retrieve_all(&store, &acct(1), 0, NOW);
    assert_eq!(got.messages.len(), 1);
    assert_eq!(got.messages[0].expiration, NOW + 2 * HOUR);
    assert_eq!(got.messages[0].timestamp, NOW);
    assert_eq!(got.messages[0].data.0, m.data);
}

#[test]
fn duplicate_of_an_expired_unswept_copy_is_stored_again() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let first = msg(acct(1), 0, 1, NOW + 1000);
    let other = msg(acct(1), 0, 2, NOW + HOUR);
    store.insert(&first, NOW).unwrap();
    store.insert(&other, NOW).unwrap();
    let later = NOW + 2000;
    let again = NewMessage {
        expiry_ms: later + HOUR,
        ..first.clone()
    };
    assert_eq!(store.insert(&again, later).unwrap(), Inserted::New);
    // It comes after `other` now: it is a new delivery.
    assert_eq!(
        hashes(&retrieve_all(&store, &acct(1), 0, later)),
        [other.hash, first.hash]
    );
    assert_eq!(store.stats().unwrap().messages, 2);
}

#[test]
fn refuses_expired_oversized_malformed_and_out_of_range() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let expired = msg(acct(1), 0, 1, NOW);
    assert!(matches!(
        store.insert(&expired, NOW),
        Err(StorageError::Expired {
            expiry_ms: NOW,
            now_ms: NOW,
            ..
        })
    ));
    let big = NewMessage::new(acct(1), Namespace(0), NOW, NOW + HOUR, vec![0; MAX_DATA_LEN + 1]);
    assert!(matches!(
        store.insert(&big, NOW),
        Err(StorageError::DataTooLarge { .. })
    ));
    let max = NewMessage::new(acct(1), Namespace(0), NOW, NOW + HOUR, vec![0; MAX_DATA_LEN]);
    assert_eq!(store.insert(&max, NOW).unwrap(), Inserted::New);
    let bad_hash = NewMessage {
        hash: "x".repeat(500),
        ..msg(acct(1), 0, 2, NOW + HOUR)
    };
    match store.insert(&bad_hash, NOW) {
        Err(StorageError::InvalidHash { hash }) => assert_eq!(hash.len(), 64),
        other => panic!("expected InvalidHash, got {other:?}"),
    }
    let far = msg(acct(1), 0, 3, u64::MAX);
    assert!(matches!(
        store.insert(&far, NOW),
        Err(StorageError::OutOfRange { field: "expiry_ms", .. })
    ));
    let ts = NewMessage {
        timestamp_ms: u64::MAX,
        ..msg(acct(1), 0, 4, NOW + HOUR)
    };
    assert!(matches!(store.insert(&ts, NOW), Err(StorageError::OutOfRange { .. })));
    // Nothing but the valid message was stored.
    assert_eq!(store.stats().unwrap().messages, 1);
}

#[test]
fn a_hash_already_used_by_another_mailbox_is_refused() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let m = msg(acct(1), 0, 1, NOW + HOUR);
    store.insert(&m, NOW).unwrap();
    let forged = NewMessage {
        account: acct(2),
        ..m.clone()
    };
    assert!(matches!(
        store.insert(&forged, NOW),
        Err(StorageError::HashConflict { .. })
    ));
    let other_ns = NewMessage {
        namespace: Namespace(5),
        ..m
    };
    assert!(matches!(
        store.insert(&other_ns, NOW),
        Err(StorageError::HashConflict { .. })
    ));
}

#[test]
fn retrieve_pages_in_insertion_order() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let msgs: Vec<_> = (0..10).map(|i| msg(acct(1), 0, i, NOW + HOUR)).collect();
    for m in &msgs {
        store.insert(m, NOW).unwrap();
    }
    // Another mailbox interleaved must not show up.
    store.insert(&msg(acct(2), 0, 0, NOW + HOUR), NOW).unwrap();
    store.insert(&msg(acct(1), 3, 0, NOW + HOUR), NOW).unwrap();

    let mut last: Option<String> = None;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = store
            .retrieve(&acct(1), Namespace(0), last.as_deref(), 3, usize::MAX, NOW)
            .unwrap();
        pages += 1;
        seen.extend(hashes(&page));
        last = page.messages.last().map(|m| m.hash.clone());
        if !page.more {
            break;
        }
        assert_eq!(page.messages.len(), 3);
    }
    assert_eq!(pages, 4);
    let expected: Vec<_> = msgs.iter().map(|m| m.hash.clone()).collect();
    assert_eq!(seen, expected);
    // Nothing after the newest.
    let end = store
        .retrieve(&acct(1), Namespace(0), last.as_deref(), 3, usize::MAX, NOW)
        .unwrap();
    assert!(end.messages.is_empty());
    assert!(!end.more);
}

#[test]
fn max_count_is_clamped() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let msgs: Vec<_> = (0..MAX_RETRIEVE_COUNT + 5)
        .map(|i| msg(acct(1), 0, i, NOW + HOUR))
        .collect();
    assert!(
        store
            .insert_batch(&msgs, NOW)
            .unwrap()
            .iter()
            .all(|r| matches!(r, Ok(Inserted::New)))
    );
    let all = store
        .retrieve(&acct(1), Namespace(0), None, usize::MAX, usize::MAX, NOW)
        .unwrap();
    assert_eq!(all.messages.len(), MAX_RETRIEVE_COUNT);
    assert!(all.more);
    let zero = store
        .retrieve(&acct(1), Namespace(0), None, 0, usize::MAX, NOW)
        .unwrap();
    assert_eq!(zero.messages.len(), 1);
    assert!(zero.more);
}

#[test]
fn max_size_stops_before_exceeding_but_returns_at_least_one() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let msgs: Vec<_> = (0..5).map(|i| sized(acct(1), i, 100)).collect();
    for m in &msgs {
        store.insert(m, NOW).unwrap();
    }
    let r = store.retrieve(&acct(1), Namespace(0), None, 10, 250, NOW).unwrap();
    assert_eq!(r.messages.len(), 2);
    assert!(r.more);
    let r = store.retrieve(&acct(1), Namespace(0), None, 10, 300, NOW).unwrap();
    assert_eq!(r.messages.len(), 3);
    assert!(r.more);
    let r = store.retrieve(&acct(1), Namespace(0), None, 10, 10, NOW).unwrap();
    assert_eq!(r.messages.len(), 1);
    assert!(r.more);
    let r = store.retrieve(&acct(1), Namespace(0), None, 10, 500, NOW).unwrap();
    assert_eq!(r.messages.len(), 5);
    assert!(!r.more);
    // The last message alone is over the limit: still returned, nothing more.
    let r = store
        .retrieve(&acct(1), Namespace(0), Some(msgs[3].hash.as_str()), 10, 1, NOW)
        .unwrap();
    assert_eq!(hashes(&r), [msgs[4].hash.clone()]);
    assert!(!r.more);
}

#[test]
fn unknown_last_hash_starts_from_the_beginning() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let mine: Vec<_> = (0..3).map(|i| msg(acct(1), 0, i, NOW + HOUR)).collect();
    for m in &mine {
        store.insert(m, NOW).unwrap();
    }
    let theirs = msg(acct(2), 0, 9, NOW + HOUR);
    store.insert(&theirs, NOW).unwrap();
    let expected: Vec<_> = mine.iter().map(|m| m.hash.clone()).collect();
    for last in ["never-seen", "", theirs.hash.as_str()] {
        let r = store
            .retrieve(&acct(1), Namespace(0), Some(last), 10, usize::MAX, NOW)
            .unwrap();
        assert_eq!(hashes(&r), expected, "last_hash {last:?}");
    }
    // A last_hash that was deleted also starts over.
    store.delete(&acct(1), std::slice::from_ref(&mine[1].hash)).unwrap();
    let r = store
        .retrieve(&acct(1), Namespace(0), Some(mine[1].hash.as_str()), 10, usize::MAX, NOW)
        .unwrap();
    assert_eq!(hashes(&r), [mine[0].hash.clone(), mine[2].hash.clone()]);
}

#[test]
fn expired_messages_are_never_returned_and_sweep_deletes_them() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let short = msg(acct(1), 0, 1, NOW + 1000);
    let long = msg(acct(1), 0, 2, NOW + HOUR);
    store.insert(&short, NOW).unwrap();
    store.insert(&long, NOW).unwrap();
    assert_eq!(retrieve_all(&store, &acct(1), 0, NOW).messages.len(), 2);
    // At exactly the expiry the message is gone.
    let later = NOW + 1000;
    assert_eq!(
        hashes(&retrieve_all(&store, &acct(1), 0, later)),
        std::slice::from_ref(&long.hash)
    );
    // `more` does not count expired messages.
    let r = store
        .retrieve(&acct(1), Namespace(0), None, 1, usize::MAX, later)
        .unwrap();
    assert!(!r.more);
    // Still on disk until swept.
    assert_eq!(store.stats().unwrap().messages, 2);
    assert_eq!(store.sweep_expired(later, usize::MAX).unwrap(), 1);
    assert_eq!(
        store.stats().unwrap(),
        Stats {
            messages: 1,
            bytes: long.data.len() as u64
        }
    );
    assert_eq!(store.mailbox_stats(&acct(1), Namespace(0)).unwrap().messages, 1);
    let raw: i64 = rusqlite::Connection::open(store.path())
        .unwrap()
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(raw, 1);
    assert_eq!(store.sweep_expired(later, usize::MAX).unwrap(), 0);
}

#[test]
fn sweep_works_in_bounded_chunks_up_to_its_limit() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let n = SWEEP_CHUNK * 2 + 500;
    let msgs: Vec<_> = (0..n).map(|i| msg(acct((i % 7) as u8), 0, i, NOW + 10)).collect();
    store.insert_batch(&msgs, NOW).unwrap();
    store.insert(&msg(acct(1), 0, n, NOW + HOUR), NOW).unwrap();
    let later = NOW + 10;
    assert_eq!(store.sweep_expired(later, SWEEP_CHUNK + 1).unwrap(), SWEEP_CHUNK + 1);
    assert_eq!(store.sweep_expired(later, usize::MAX).unwrap(), n - SWEEP_CHUNK - 1);
    assert_eq!(store.stats().unwrap().messages, 1);
    assert_eq!(store.sweep_expired(later, 0).unwrap(), 0);
}

/// A message of `len` bytes in namespace `ns`.
fn sized_in(account: MailboxId, ns: i16, i: usize, len: usize) -> NewMessage {
    let mut data = vec![0u8; len];
    data[..8.min(len)].copy_from_slice(&(i as u64).to_le_bytes()[..8.min(len)]);
    NewMessage::new(account, Namespace(ns), NOW, NOW + HOUR, data)
}

/// An owner's signed namespace refuses its owner's store when full: its
/// data is never evicted.
#[test]
fn signed_mailbox_caps_refuse_by_count_and_by_bytes() {
    let dir = TempDir::new().unwrap();
    let limits = StorageLimits {
        max_mailbox_messages: 3,
        max_mailbox_bytes: 1000,
        max_total_bytes: 1 << 30,
        ..StorageLimits::default()
    };
    let mut store = open_with(&dir, limits);
    for i in 0..3 {
        store.insert(&sized_in(acct(1), 2, i, 10), NOW).unwrap();
    }
    match store.insert(&sized_in(acct(1), 2, 3, 10), NOW) {
        Err(StorageError::MailboxFull {
            account,
            namespace: 2,
            messages: 3,
            max_messages: 3,
            ..
        }) => {
            assert_eq!(account, acct(1));
        }
        other => panic!("expected MailboxFull, got {other:?}"),
    }
    // A duplicate is not a new message: no cap applies.
    assert_eq!(
        store.insert(&sized_in(acct(1), 2, 0, 10), NOW).unwrap(),
        Inserted::Duplicate
    );
    // Other mailboxes, including the same account's other namespaces, are separate.
    store.insert(&sized_in(acct(2), 2, 0, 10), NOW).unwrap();
    store.insert(&msg(acct(1), 5, 0, NOW + HOUR), NOW).unwrap();

    // Bytes: 990 fits in a fresh mailbox, 11 more does not.
    store.insert(&sized_in(acct(3), 2, 0, 990), NOW).unwrap();
    let err = store.insert(&sized_in(acct(3), 2, 1, 11), NOW).unwrap_err();
    assert!(matches!(
        err,
        StorageError::MailboxFull {
            bytes: 990,
            max_bytes: 1000,
            incoming: 11,
            ..
        }
    ));
    assert!(err.is_insufficient_storage());
    assert!(err.to_string().contains("990 bytes"), "{err}");
    store.insert(&sized_in(acct(3), 2, 2, 10), NOW).unwrap();
}

/// A full inbox (namespace 0) takes a new message by evicting its oldest:
/// a stranger cannot lock its owner out. The evicted messages leave
/// tombstones (a peer's copy does not come back), and the owner's signed
/// namespaces are untouched.
#[test]
fn a_full_inbox_evicts_its_oldest_messages() {
    let dir = TempDir::new().unwrap();
    let limits = StorageLimits {
        max_mailbox_messages: 3,
        max_mailbox_bytes: 1000,
        max_total_bytes: 1 << 30,
        ..StorageLimits::default()
    };
    let mut store = open_with(&dir, limits);
    let own = msg(acct(1), 4, 0, NOW + HOUR);
    store.insert(&own, NOW).unwrap();
    let flood: Vec<_> = (0..10).map(|i| sized(acct(1), i, 10)).collect();
    for m in &flood {
        assert_eq!(store.insert(m, NOW).unwrap(), Inserted::New);
    }
    assert_eq!(
        hashes(&retrieve_all(&store, &acct(1), 0, NOW)),
        flood[7..].iter().map(|m| m.hash.clone()).collect::<Vec<_>>(),
        "the newest three are kept"
    );
    assert_eq!(
        store.insert(&flood[0], NOW).unwrap(),
        Inserted::Deleted,
        "an evicted copy stays out"
    );
    // By bytes: a 900-byte message evicts what it must.
    let big = sized(acct(1), 20, 900);
    store.insert(&big, NOW).unwrap();
    let usage = store.mailbox_stats(&acct(1), Namespace(0)).unwrap();
    assert!(usage.bytes <= 1000 && usage.messages <= 3, "{usage:?}");
    assert_eq!(
        hashes(&retrieve_all(&store, &acct(1), 4, NOW)),
        std::slice::from_ref(&own.hash)
    );
    // A message larger than the whole mailbox is refused, evicting nothing.
    let before = store.mailbox_stats(&acct(1), Namespace(0)).unwrap();
    assert!(matches!(
        store.insert(&sized(acct(1), 21, 1001), NOW),
        Err(StorageError::MailboxFull { .. })
    ));
    assert_eq!(store.mailbox_stats(&acct(1), Namespace(0)).unwrap(), before);
}

#[test]
fn a_full_mailbox_reclaims_its_expired_messages() {
    let dir = TempDir::new().unwrap();
    let limits = StorageLimits {
        max_mailbox_messages: 2,
        max_mailbox_bytes: 1 << 20,
        max_total_bytes: 1 << 30,
        ..StorageLimits::default()
    };
    let mut store = open_with(&dir, limits);
    store.insert(&msg(acct(1), 3, 0, NOW + 10), NOW).unwrap();
    store.insert(&msg(acct(1), 3, 1, NOW + HOUR), NOW).unwrap();
    assert!(matches!(
        store.insert(&msg(acct(1), 3, 2, NOW + HOUR), NOW),
        Err(StorageError::MailboxFull { .. })
    ));
    assert_eq!(
        store.insert(&msg(acct(1), 3, 2, NOW + HOUR), NOW + 10).unwrap(),
        Inserted::New
    );
    assert_eq!(store.mailbox_stats(&acct(1), Namespace(3)).unwrap().messages, 2);
}

#[test]
fn total_cap_refuses_with_store_full_and_reclaims_expired() {
    let dir = TempDir::new().unwrap();
    let limits = StorageLimits {
        max_mailbox_messages: 100,
        max_mailbox_bytes: 1 << 20,
        max_total_bytes: 250,
        ..StorageLimits::default()
    };
    let mut store = open_with(&dir, limits);
    store.insert(&sized(acct(1), 0, 100), NOW).unwrap();
    let short = NewMessage {
        expiry_ms: NOW + 10,
        ..sized(acct(2), 1, 100)
    };
    store.insert(&short, NOW).unwrap();
    let err = store.insert(&sized(acct(3), 2, 100), NOW).unwrap_err();
    assert!(matches!(
        err,
        StorageError::StoreFull {
            bytes: 200,
            max_bytes: 250,
            incoming: 100
        }
    ));
    assert!(err.is_insufficient_storage());
    // Once the short one has expired, its room is reclaimed on the spot.
    assert_eq!(store.insert(&sized(acct(3), 2, 100), NOW + 10).unwrap(), Inserted::New);
    assert_eq!(
        store.stats().unwrap(),
        Stats {
            messages: 2,
            bytes: 200
        }
    );
}

#[test]
fn batch_results_are_per_message() {
    let dir = TempDir::new().unwrap();
    let limits = StorageLimits {
        max_mailbox_messages: 2,
        max_mailbox_bytes: 1 << 20,
        max_total_bytes: 1 << 30,
        ..StorageLimits::default()
    };
    let mut store = open_with(&dir, limits);
    let a = msg(acct(1), 6, 0, NOW + HOUR);
    let batch = vec![
        a.clone(),
        a.clone(),
        msg(acct(1), 6, 1, NOW),
        msg(acct(1), 6, 2, NOW + HOUR),
        msg(acct(1), 6, 3, NOW + HOUR),
        msg(acct(2), 6, 3, NOW + HOUR),
    ];
    let results = store.insert_batch(&batch, NOW).unwrap();
    assert!(matches!(results[0], Ok(Inserted::New)));
    assert!(matches!(results[1], Ok(Inserted::Duplicate)));
    assert!(matches!(results[2], Err(StorageError::Expired { .. })));
    assert!(matches!(results[3], Ok(Inserted::New)));
    assert!(matches!(results[4], Err(StorageError::MailboxFull { .. })));
    assert!(matches!(results[5], Ok(Inserted::New)));
    assert_eq!(store.stats().unwrap().messages, 3);
    assert!(store.insert_batch(&[], NOW).unwrap().is_empty());
}

#[test]
fn delete_delete_all_and_expire_only_touch_the_owner() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let mine: Vec<_> = (0..3).map(|i| msg(acct(1), 0, i, NOW + HOUR)).collect();
    let mine_ns: Vec<_> = (0..2).map(|i| msg(acct(1), 7, i, NOW + HOUR)).collect();
    let theirs: Vec<_> = (0..3).map(|i| msg(acct(2), 0, i, NOW + HOUR)).collect();
    for m in mine.iter().chain(&mine_ns).chain(&theirs) {
        store.insert(m, NOW).unwrap();
    }

    // delete: the owner's hashes in any namespace; others' untouched.
    let asked = vec![
        mine[0].hash.clone(),
        theirs[0].hash.clone(),
        mine_ns[0].hash.clone(),
        "nope".into(),
    ];
    assert_eq!(
        store.delete(&acct(1), &asked).unwrap(),
        [mine[0].hash.clone(), mine_ns[0].hash.clone()]
    );
    assert_eq!(retrieve_all(&store, &acct(2), 0, NOW).messages.len(), 3);

    // expire: only the owner's live messages.
    let new_expiry = NOW + 2 * HOUR;
    let asked = vec![mine[1].hash.clone(), theirs[1].hash.clone()];
    assert_eq!(
        store.expire(&acct(1), &asked, new_expiry, NOW, NOW).unwrap(),
        [mine[1].hash.clone()]
    );
    let got = retrieve_all(&store, &acct(1), 0, NOW);
    assert_eq!(got.messages[0].expiration, new_expiry);
    assert_eq!(got.messages[1].expiration, NOW + HOUR);
    assert!(
        retrieve_all(&store, &acct(2), 0, NOW)
            .messages
            .iter()
            .all(|m| m.expiration == NOW + HOUR)
    );
    // Shortening works and an expired message is not revived.
    assert_eq!(
        store
            .expire(&acct(1), &[mine[2].hash.clone()], NOW + 5, NOW + 1, NOW)
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .expire(&acct(1), &[mine[2].hash.clone()], NOW + HOUR, NOW + 5, NOW + 5)
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.expire(&acct(1), &[mine[1].hash.clone()], u64::MAX, NOW + 2, NOW),
        Err(StorageError::OutOfRange { .. })
    ));

    // delete_all: one mailbox only.
    let mut gone = store.delete_all(&acct(1), Namespace(0), NOW + 10).unwrap();
    gone.sort();
    let mut expected = vec![mine[1].hash.clone(), mine[2].hash.clone()];
    expected.sort();
    assert_eq!(gone, expected);
    assert_eq!(
        hashes(&retrieve_all(&store, &acct(1), 7, NOW)),
        [mine_ns[1].hash.clone()]
    );
    assert_eq!(retrieve_all(&store, &acct(2), 0, NOW).messages.len(), 3);
    assert!(store.delete_all(&acct(9), Namespace(0), NOW + 10).unwrap().is_empty());
    assert_eq!(store.mailbox_stats(&acct(1), Namespace(0)).unwrap(), Stats::default());
    assert_eq!(store.stats().unwrap().messages, 4);
}

/// Owner requests that arrive late or twice change nothing they should not:
/// an `expire` signed before the one that set a message's expiry is
/// ignored, a copy pushed again cannot extend what the owner shortened,
/// and a `delete_all` touches only messages up to its signing time.
#[test]
fn late_and_repeated_owner_requests_converge() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let m = msg(acct(1), 0, 1, NOW + HOUR);
    store.insert(&m, NOW).unwrap();
    let one = std::slice::from_ref(&m.hash);
    // Shortened at T+20, then an extension signed at T+10 arrives late.
    assert_eq!(store.expire(&acct(1), one, NOW + 600, NOW + 20, NOW).unwrap().len(), 1);
    assert!(
        store
            .expire(&acct(1), one, NOW + HOUR, NOW + 10, NOW)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .expire(&acct(1), one, NOW + HOUR, NOW + 20, NOW)
            .unwrap()
            .is_empty(),
        "the same request again"
    );
    // A peer pushes the original copy again.
    assert_eq!(store.insert(&m, NOW).unwrap(), Inserted::Duplicate);
    assert_eq!(retrieve_all(&store, &acct(1), 0, NOW).messages[0].expiration, NOW + 600);
    // A later expire still applies.
    assert_eq!(store.expire(&acct(1), one, NOW + 900, NOW + 30, NOW).unwrap().len(), 1);

    // delete_all signed at NOW + 5 leaves a message timestamped after it.
    let later = NewMessage {
        timestamp_ms: NOW + 6,
        ..msg(acct(1), 0, 2, NOW + HOUR)
    };
    store.insert(&later, NOW).unwrap();
    assert_eq!(
        store.delete_all(&acct(1), Namespace(0), NOW + 5).unwrap(),
        std::slice::from_ref(&m.hash)
    );
    assert_eq!(
        hashes(&retrieve_all(&store, &acct(1), 0, NOW)),
        std::slice::from_ref(&later.hash)
    );
}

#[test]
fn an_owner_signature_is_kept_with_its_message() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let sig = crate::storage::OwnerSig {
        ed25519: [7; 32],
        signature: [9; 64],
    };
    let signed = msg(acct(1), 3, 1, NOW + HOUR).signed_by_owner(Some(sig));
    let open_ns = msg(acct(1), 0, 2, NOW + HOUR);
    store.insert(&signed, NOW).unwrap();
    store.insert(&open_ns, NOW).unwrap();
    let mut rows = Vec::new();
    store.for_each_live(NOW, 10, |_, _| true, |r| rows.push(r)).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].message.owner_sig, Some(sig));
    assert_eq!(rows[1].message.owner_sig, None);
}

#[test]
fn messages_persist_across_reopen() {
    let dir = TempDir::new().unwrap();
    let msgs: Vec<_> = (0..50).map(|i| msg(acct(1), 0, i, NOW + HOUR)).collect();
    {
        let mut store = open(&dir);
        store.insert_batch(&msgs, NOW).unwrap();
        store.close().unwrap();
    }
    {
        let mut store = open(&dir);
        assert_eq!(store.stats().unwrap().messages, 50);
        let got = retrieve_all(&store, &acct(1), 0, NOW);
        assert_eq!(hashes(&got), msgs.iter().map(|m| m.hash.clone()).collect::<Vec<_>>());
        // Dropped without close: still durable.
        store.insert(&msg(acct(1), 0, 50, NOW + HOUR), NOW).unwrap();
    }
    assert_eq!(open(&dir).stats().unwrap().messages, 51);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.sqlite");
    drop(Store::open(&path, StorageLimits::default()).unwrap());
    let future = i64::try_from(MIGRATIONS.len()).unwrap() + 1;
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", future)
        .unwrap();
    match Store::open(&path, StorageLimits::default()) {
        Err(e @ StorageError::SchemaTooNew { found, known, .. }) => {
            assert_eq!(found, future);
            assert_eq!(known, future - 1);
            assert!(e.to_string().contains("newer"), "{e}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn a_foreign_database_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("other.sqlite");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    assert!(matches!(
        Store::open(&path, StorageLimits::default()),
        Err(StorageError::NotAStore { .. })
    ));
    let path2 = dir.path().join("other2.sqlite");
    rusqlite::Connection::open(&path2)
        .unwrap()
        .pragma_update(None, "user_version", 1)
        .unwrap();
    assert!(matches!(
        Store::open(&path2, StorageLimits::default()),
        Err(StorageError::NotAStore { .. })
    ));
}

#[test]
fn a_directory_in_the_way_is_an_error_not_a_panic() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(
        Store::open(file.join("store.sqlite"), StorageLimits::default()),
        Err(StorageError::CreateDir { .. })
    ));
    assert!(matches!(
        Store::open(dir.path(), StorageLimits::default()),
        Err(StorageError::Open { .. })
    ));
}

#[test]
fn for_each_live_gives_every_live_message_of_matching_accounts() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let mut expected = Vec::new();
    for i in 0..100 {
        let account = acct((i % 4) as u8);
        let expiry = if i % 5 == 0 { NOW + 10 } else { NOW + HOUR };
        let m = msg(account, (i % 3) as i16, i, expiry);
        store.insert(&m, NOW).unwrap();
        if i % 4 < 2 && i % 5 != 0 {
            expected.push(m);
        }
    }
    let later = NOW + 10;
    let mut got = Vec::new();
    let wanted = |a: &MailboxId, _: &str| a.key()[0] < 2;
    let n = store.for_each_live(later, 7, wanted, |row| got.push(row)).unwrap();
    assert_eq!(n, expected.len());
    let seqs: Vec<_> = got.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let got: Vec<_> = got.into_iter().map(|r| r.message).collect();
    assert_eq!(got, expected);

    // Paging by hand: a page bounds rows scanned, not rows returned.
    let page = store.live_page(0, later, 3, |_, _| false).unwrap();
    assert!(page.rows.is_empty());
    assert!(page.next.is_some());
    let page = store.live_page(u64::MAX, later, 3, |_, _| true).unwrap();
    assert_eq!(page, LivePage::default());
    // The filter also sees the hash.
    let first = expected[0].hash.clone();
    let mut only = Vec::new();
    store
        .for_each_live(later, 7, move |_, h| h == first, |row| only.push(row.message))
        .unwrap();
    assert_eq!(only, vec![expected[0].clone()]);

    // Hashes alone, paged: every live message once, no data read.
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = store::live_hashes(store.connection(), after, later, 7).unwrap();
        all.extend(page.rows);
        match page.next {
            Some(n) => after = n,
            None => break,
        }
    }
    assert_eq!(all.len(), 80, "100 stored, 20 expired");
    assert!(
        all.iter()
            .any(|(a, h)| *a == expected[0].account && *h == expected[0].hash)
    );
}

#[test]
fn a_digest_bucket_is_read_through_the_hash_index_and_holds_exactly_its_live_messages() {
    use allium_common::peer::SwarmDigest;
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let live: Vec<NewMessage> = (0..20_000)
        .map(|i| msg(acct((i % 7) as u8), 0, i, NOW + HOUR))
        .collect();
    let expired: Vec<NewMessage> = (20_000..30_000).map(|i| msg(acct(1), 0, i, NOW + 1)).collect();
    let all: Vec<NewMessage> = live.iter().chain(&expired).cloned().collect();
    for chunk in all.chunks(1000) {
        store.insert_batch(chunk, NOW).unwrap();
    }
    let later = NOW + 2;
    // A bucket that also holds an expired message.
    let bucket = SwarmDigest::bucket_of(&expired[0].hash).unwrap();
    let prefix = SwarmDigest::bucket_prefix(bucket).unwrap();
    let mut want: Vec<&NewMessage> = live
        .iter()
        .filter(|m| SwarmDigest::bucket_of(&m.hash) == Some(bucket))
        .collect();
    want.sort_by(|a, b| a.hash.cmp(&b.hash));
    let mut hashes = store::hashes_with_prefix(store.connection(), &prefix, later, 1000).unwrap();
    hashes.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        hashes,
        want.iter().map(|m| (m.account, m.hash.clone())).collect::<Vec<_>>(),
        "the live messages of the bucket"
    );
    // By hash: data and all; unknown and expired hashes are left out.
    let mut asked: Vec<String> = want.iter().map(|m| m.hash.clone()).collect();
    asked.push(expired[0].hash.clone());
    assert!(want.len() >= 2, "a bucket of 20,000 holds about 5");
    asked.push("not a hash".into());
    let got = store::messages_with_hashes(store.connection(), &asked, later).unwrap();
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
    assert_eq!(
        store::hashes_with_prefix(store.connection(), &prefix, later, 1)
            .unwrap()
            .len(),
        1,
        "limited"
    );
    // Through the index, not a scan of the table.
    let plan: String = store
        .connection()
        .query_row(
            "EXPLAIN QUERY PLAN SELECT account, hash FROM messages WHERE hash >= ?1 AND hash < ?2 AND expiry_ms > ?3 LIMIT ?4",
            rusqlite::params![prefix, format!("{prefix}~"), 0, 10],
            |r| r.get(3),
        )
        .unwrap();
    assert!(plan.contains("USING INDEX"), "{plan}");
}

/// Caps the database at its current size plus `extra_pages`, so SQLite
/// answers SQLITE_FULL as on a full disk.
pub(super) fn limit_file_size(store: &Store, extra_pages: i64) {
    let conn = store.connection();
    let pages: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0)).unwrap();
    conn.pragma_update(None, "max_page_count", pages + extra_pages).unwrap();
}

#[test]
fn a_full_disk_is_its_own_error_and_loses_nothing_committed() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let kept = msg(acct(1), 0, 0, NOW + HOUR);
    store.insert(&kept, NOW).unwrap();
    limit_file_size(&store, 8);
    let mut err = None;
    for i in 1..100 {
        let big = NewMessage::new(acct(1), Namespace(0), NOW, NOW + HOUR, vec![i as u8; MAX_DATA_LEN]);
        if let Err(e) = store.insert(&big, NOW) {
            err = Some(e);
            break;
        }
    }
    let err = err.expect("the file limit was never reached");
    assert!(matches!(err, StorageError::DiskFull { .. }), "{err:?}");
    assert!(err.is_insufficient_storage());
    // A batch that hits the limit stores nothing of itself.
    let batch: Vec<_> = (0..3)
        .map(|i| NewMessage::new(acct(2), Namespace(0), NOW, NOW + HOUR, vec![i; MAX_DATA_LEN]))
        .collect();
    assert!(matches!(
        store.insert_batch(&batch, NOW),
        Err(StorageError::DiskFull { .. })
    ));
    assert_eq!(store.mailbox_stats(&acct(2), Namespace(0)).unwrap(), Stats::default());
    // What was committed is intact and readable; the counters agree.
    let got = retrieve_all(&store, &acct(1), 0, NOW);
    assert_eq!(got.messages[0].hash, kept.hash);
    assert_eq!(store.stats().unwrap().messages, got.messages.len() as u64);
    // Space comes back (the disk grows): the same connection stores again.
    limit_file_size(&store, 10_000);
    assert_eq!(store.insert_batch(&batch, NOW).unwrap().len(), 3);
    assert_eq!(store.mailbox_stats(&acct(2), Namespace(0)).unwrap().messages, 3);
}

#[test]
fn debug_output_never_shows_message_data() {
    let m = NewMessage::new(acct(1), Namespace(0), NOW, NOW + HOUR, b"top secret words".to_vec());
    let s = format!("{m:?}");
    assert!(!s.contains("top secret"), "{s}");
    assert!(s.contains("data_len: 16"), "{s}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, .. ProptestConfig::default() })]

    /// Paging through any mailbox with any `max_count` and `max_size`
    /// returns every live message exactly once, in insertion order.
    #[test]
    fn paging_returns_every_message_once_in_order(
        // At least 3 bytes, so `sized` keeps its "{i}:" prefix whole and no
        // two messages are equal (equal ones are one message, stored once).
        sizes in proptest::collection::vec(3usize..400, 0..60),
        expired in proptest::collection::vec(any::<bool>(), 60),
        max_count in 0usize..12,
        max_size in 1usize..1200,
    ) {
        let dir = TempDir::new().unwrap();
        let mut store = open(&dir);
        let mut expected = Vec::new();
        let batch: Vec<_> = sizes.iter().enumerate().map(|(i, &len)| {
            let mut m = sized(acct(1), i, len);
            if expired[i] {
                m.expiry_ms = NOW + 5;
            } else {
                expected.push(m.hash.clone());
            }
            m
        }).collect();
        // Noise in other mailboxes.
        let noise: Vec<_> = (0..10).map(|i| sized(acct(2), i, 50)).collect();
        store.insert_batch(&noise, NOW).unwrap();
        store.insert_batch(&batch, NOW).unwrap();
        let now = NOW + 5;
        let mut last: Option<String> = None;
        let mut seen = Vec::new();
        for _ in 0..=sizes.len() + 1 {
            let page = store.retrieve(&acct(1), Namespace(0), last.as_deref(), max_count, max_size, now).unwrap();
            let total: usize = page.messages.iter().map(|m| m.data.0.len()).sum();
            prop_assert!(page.messages.len() <= max_count.max(1));
            prop_assert!(page.messages.len() <= 1 || total <= max_size);
            seen.extend(hashes(&page));
            if let Some(m) = page.messages.last() {
                last = Some(m.hash.clone());
            }
            if !page.more {
                break;
            }
            prop_assert!(!page.messages.is_empty());
        }
        prop_assert_eq!(seen, expected);
    }
}

#[test]
fn a_deleted_message_is_not_stored_again_until_it_would_have_expired() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let m = msg(acct(1), 0, 1, NOW + HOUR);
    let other = msg(acct(1), 0, 2, NOW + HOUR);
    store.insert(&m, NOW).unwrap();
    store.insert(&other, NOW).unwrap();
    assert_eq!(
        store.delete(&acct(1), std::slice::from_ref(&m.hash)).unwrap(),
        vec![m.hash.clone()]
    );
    // A peer that missed the delete pushes it again: refused, still gone.
    assert_eq!(store.insert(&m, NOW + 1).unwrap(), Inserted::Deleted);
    assert_eq!(
        hashes(&retrieve_all(&store, &acct(1), 0, NOW + 1)),
        vec![other.hash.clone()]
    );
    // Deleting what is not there writes no tombstone.
    let never = msg(acct(1), 0, 3, NOW + HOUR);
    assert!(
        store
            .delete(&acct(1), std::slice::from_ref(&never.hash))
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.insert(&never, NOW + 1).unwrap(), Inserted::New);
    // Once the message would have expired its tombstone is swept.
    store.sweep_expired(NOW + HOUR, 1000).unwrap();
    let tombstones: i64 = store
        .connection()
        .query_row("SELECT count(*) FROM deleted", [], |r| r.get(0))
        .unwrap();
    assert_eq!(tombstones, 0);
}

#[test]
fn deleting_a_mailbox_leaves_tombstones_for_all_of_it() {
    let dir = TempDir::new().unwrap();
    let mut store = open(&dir);
    let ms: Vec<NewMessage> = (0..3).map(|i| msg(acct(2), 5, i, NOW + HOUR)).collect();
    for m in &ms {
        store.insert(m, NOW).unwrap();
    }
    assert_eq!(store.delete_all(&acct(2), Namespace(5), u64::MAX).unwrap().len(), 3);
    for m in &ms {
        assert_eq!(store.insert(m, NOW + 1).unwrap(), Inserted::Deleted);
    }
    assert_eq!(store.stats().unwrap().messages, 0);
}

#[test]
fn a_version_1_store_is_migrated_with_its_messages() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("store.sqlite");
    let m = msg(acct(3), 0, 1, NOW + HOUR);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA user_version = 1; PRAGMA application_id = {APPLICATION_ID};"
        ))
        .unwrap();
        conn.execute(
            "INSERT INTO messages (hash, account, namespace, timestamp_ms, expiry_ms, data) VALUES (?1, ?2, 0, ?3, ?4, ?5)",
            rusqlite::params![
                m.hash,
                acct(3).key().as_slice(),
                i64::try_from(NOW).unwrap(),
                i64::try_from(NOW + HOUR).unwrap(),
                m.data
            ],
        )
        .unwrap();
    }
    let mut store = open(&dir);
    assert_eq!(hashes(&retrieve_all(&store, &acct(3), 0, NOW)), vec![m.hash.clone()]);
    // Version 3's columns: an old message has no owner signature and no
    // expire yet, so an expire applies.
    let mut rows = Vec::new();
    store.for_each_live(NOW, 10, |_, _| true, |r| rows.push(r)).unwrap();
    assert_eq!(rows[0].message.owner_sig, None);
    assert_eq!(
        store
            .expire(&acct(3), std::slice::from_ref(&m.hash), NOW + 60_000, NOW, NOW)
            .unwrap(),
        std::slice::from_ref(&m.hash)
    );
    store.delete(&acct(3), std::slice::from_ref(&m.hash)).unwrap();
    assert_eq!(store.insert(&m, NOW).unwrap(), Inserted::Deleted);
    drop(store);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, 6);
}
