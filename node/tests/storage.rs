//! The async [`StorageHandle`]: group commit under concurrency, shutdown,
//! back-pressure and notifications.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use allium_common::AccountId;
use allium_common::rpc::Namespace;
use allium_node::storage::{
    HandleConfig, Inserted, Mailbox, NewMessage, StorageError, StorageHandle, StorageLimits, Store,
};
use tempfile::TempDir;

const NOW: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

fn acct(n: u8) -> AccountId {
    AccountId::from_x25519([n; 32])
}

fn msg(account: AccountId, tag: &str, i: usize) -> NewMessage {
    NewMessage::new(
        account.into(),
        Namespace(0),
        NOW,
        NOW + HOUR,
        format!("{tag} {i}").into_bytes(),
    )
}

fn open(dir: &TempDir, config: HandleConfig) -> StorageHandle {
    StorageHandle::open(dir.path().join("store.sqlite"), StorageLimits::default(), config).unwrap()
}

async fn all_hashes(handle: &StorageHandle, account: AccountId) -> Vec<String> {
    let mut last = None;
    let mut out = Vec::new();
    loop {
        let page = handle
            .retrieve(account.into(), Namespace(0), last.clone(), 100, usize::MAX, NOW)
            .await
            .unwrap();
        out.extend(page.messages.iter().map(|m| m.hash.clone()));
        last = page.messages.last().map(|m| m.hash.clone());
        if !page.more {
            return out;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_from_many_tasks_store_exactly_the_expected_rows() {
    let dir = TempDir::new().unwrap();
    let handle = open(&dir, HandleConfig::default());
    let tasks: Vec<_> = (0..20u8)
        .map(|t| {
            let handle = handle.clone();
            tokio::spawn(async move {
                for i in 0..100 {
                    // Tasks write to 5 shared mailboxes, and every tenth
                    // message repeats one another task also sends.
                    let m = if i % 10 == 0 {
                        msg(acct(t % 5), "shared", i)
                    } else {
                        msg(acct(t % 5), &format!("task {t}"), i)
                    };
                    handle.insert(m, NOW).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    // 20 tasks x 90 unique, plus 5 mailboxes x 10 shared messages.
    let expected = 20 * 90 + 5 * 10;
    assert_eq!(handle.stats().await.unwrap().messages, expected);
    let mut total = 0;
    for a in 0..5 {
        let hashes = all_hashes(&handle, acct(a)).await;
        let unique: HashSet<_> = hashes.iter().collect();
        assert_eq!(unique.len(), hashes.len());
        assert_eq!(hashes.len(), 4 * 90 + 10);
        total += hashes.len();
    }
    assert_eq!(total as u64, expected);
    handle.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_finishes_queued_writes() {
    let dir = TempDir::new().unwrap();
    let config = HandleConfig {
        queue_capacity: 4096,
        max_round: 64,
        ..HandleConfig::default()
    };
    let handle = open(&dir, config);
    let pending: Vec<_> = (0..2000)
        .map(|i| handle.enqueue_insert(msg(acct(1), "q", i), NOW).unwrap())
        .collect();
    handle.close().await.unwrap();
    for p in pending {
        assert_eq!(p.wait().await.unwrap(), Inserted::New);
    }
    // Closed: writes and reads are refused, closing again is harmless.
    assert!(matches!(
        handle.insert(msg(acct(1), "late", 0), NOW).await,
        Err(StorageError::Closed)
    ));
    assert!(matches!(handle.stats().await, Err(StorageError::Closed)));
    handle.close().await.unwrap();
    // The WAL was checkpointed into the database file.
    let wal = dir.path().join("store.sqlite-wal");
    assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0);
    let store = Store::open(dir.path().join("store.sqlite"), StorageLimits::default()).unwrap();
    assert_eq!(store.stats().unwrap().messages, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_last_handle_still_commits_queued_writes() {
    let dir = TempDir::new().unwrap();
    let handle = open(&dir, HandleConfig::default());
    let pending: Vec<_> = (0..500)
        .map(|i| handle.enqueue_insert(msg(acct(2), "d", i), NOW).unwrap())
        .collect();
    drop(handle);
    for p in pending {
        assert_eq!(p.wait().await.unwrap(), Inserted::New);
    }
    let store = Store::open(dir.path().join("store.sqlite"), StorageLimits::default()).unwrap();
    assert_eq!(store.stats().unwrap().messages, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_refused_at_once() {
    let dir = TempDir::new().unwrap();
    let config = HandleConfig {
        queue_capacity: 1,
        ..HandleConfig::default()
    };
    let handle = open(&dir, config);
    let mut pending = Vec::new();
    let mut full = 0;
    for i in 0..20_000 {
        match handle.enqueue_insert(msg(acct(3), "f", i), NOW) {
            Ok(p) => pending.push(p),
            Err(StorageError::QueueFull { capacity: 1, .. }) => full += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(full > 0, "a queue of one never filled in 20,000 tries");
    let stored = pending.len() as u64;
    for p in pending {
        p.wait().await.unwrap();
    }
    assert_eq!(handle.stats().await.unwrap().messages, stored);
    let err = StorageError::QueueFull {
        capacity: 1,
        max_bytes: 1,
    };
    assert!(err.is_unavailable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_is_also_bounded_in_bytes() {
    let dir = TempDir::new().unwrap();
    let config = HandleConfig {
        max_queued_bytes: 2000,
        ..HandleConfig::default()
    };
    let handle = open(&dir, config);
    let big = |i: usize| {
        NewMessage::new(
            acct(5).into(),
            Namespace(0),
            NOW,
            NOW + HOUR,
            format!("{i:01000}").into_bytes(),
        )
    };
    let mut pending = Vec::new();
    let mut full = 0;
    for i in 0..20_000 {
        match handle.enqueue_insert(big(i), NOW) {
            Ok(p) => pending.push(p),
            Err(StorageError::QueueFull { max_bytes: 2000, .. }) => full += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(full > 0, "a budget of two messages never ran out in 20,000 tries");
    let stored = pending.len() as u64;
    for p in pending {
        p.wait().await.unwrap();
    }
    assert_eq!(handle.stats().await.unwrap().messages, stored);
    // A job bigger than the whole budget still runs once the queue is empty.
    let batch: Vec<_> = (0..10).map(|i| big(100_000 + i)).collect();
    let results = handle.insert_batch(batch, NOW).await.unwrap();
    assert!(results.iter().all(|r| matches!(r, Ok(Inserted::New))));
    handle.close().await.unwrap();
}

#[tokio::test]
async fn handle_operations_match_the_store() {
    let dir = TempDir::new().unwrap();
    let limits = StorageLimits {
        max_mailbox_messages: 5,
        max_mailbox_bytes: 1 << 20,
        max_total_bytes: 1 << 30,
        ..StorageLimits::default()
    };
    let handle = StorageHandle::open(dir.path().join("s.sqlite"), limits, HandleConfig::default()).unwrap();
    let mine: Vec<_> = (0..5).map(|i| msg(acct(1), "m", i)).collect();
    let results = handle.insert_batch(mine.clone(), NOW).await.unwrap();
    assert!(results.iter().all(|r| matches!(r, Ok(Inserted::New))));
    assert_eq!(handle.insert(mine[0].clone(), NOW).await.unwrap(), Inserted::Duplicate);
    // A full inbox evicts its oldest message to take a new one.
    let other: Vec<_> = (0..6).map(|i| msg(acct(3), "o", i)).collect();
    for m in &other {
        assert_eq!(handle.insert(m.clone(), NOW).await.unwrap(), Inserted::New);
    }
    assert_eq!(
        handle
            .mailbox_stats(acct(3).into(), Namespace(0))
            .await
            .unwrap()
            .messages,
        5
    );
    assert_eq!(handle.insert(other[0].clone(), NOW).await.unwrap(), Inserted::Deleted);
    let theirs = msg(acct(2), "t", 0);
    handle.insert(theirs.clone(), NOW).await.unwrap();

    let page = handle
        .retrieve(acct(1).into(), Namespace(0), None, 2, usize::MAX, NOW)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2);
    assert!(page.more);

    let asked = vec![mine[0].hash.clone(), theirs.hash.clone()];
    assert_eq!(
        handle.delete(acct(1).into(), asked, None).await.unwrap(),
        [mine[0].hash.clone()]
    );
    let asked = vec![mine[1].hash.clone(), theirs.hash.clone()];
    assert_eq!(
        handle.expire(acct(1).into(), asked, NOW + 10, NOW, NOW).await.unwrap(),
        [mine[1].hash.clone()]
    );
    assert_eq!(handle.sweep_expired(NOW + 10, usize::MAX).await.unwrap(), 1);
    assert_eq!(
        handle
            .mailbox_stats(acct(1).into(), Namespace(0))
            .await
            .unwrap()
            .messages,
        3
    );
    let page = handle
        .live_page(0, NOW, 100, |a, _| *a == acct(2).into())
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].message, theirs);
    assert_eq!(page.next, None);
    assert_eq!(
        handle
            .delete_all(acct(1).into(), Namespace(0), u64::MAX, None)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(handle.stats().await.unwrap().messages, 6);

    let too_many = (0..2000).map(|i| msg(acct(4), "b", i)).collect();
    assert!(matches!(
        handle.insert_batch(too_many, NOW).await,
        Err(StorageError::BatchTooLarge { len: 2000, max: 1024 })
    ));
    handle.close().await.unwrap();
}

#[tokio::test]
async fn subscribers_hear_of_new_messages_after_commit() {
    let dir = TempDir::new().unwrap();
    let handle = open(&dir, HandleConfig::default());
    let mut rx = handle.subscribe();
    let m = msg(acct(7), "n", 0);
    handle.insert(m.clone(), NOW).await.unwrap();
    let got = rx.recv().await.unwrap();
    assert_eq!(
        got,
        Mailbox {
            account: acct(7).into(),
            namespace: Namespace(0)
        }
    );
    // The message is readable once the notice arrives.
    let page = handle
        .retrieve(acct(7).into(), Namespace(0), None, 10, usize::MAX, NOW)
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 1);
    // A duplicate or a refused message announces nothing.
    handle.insert(m, NOW).await.unwrap();
    let expired = NewMessage {
        expiry_ms: NOW,
        ..msg(acct(7), "n", 1)
    };
    assert!(handle.insert(expired, NOW).await.is_err());
    assert!(rx.try_recv().is_err());
    handle.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_run_alongside_writes() {
    let dir = TempDir::new().unwrap();
    let config = HandleConfig {
        readers: 2,
        ..HandleConfig::default()
    };
    let handle = open(&dir, config);
    let writer = {
        let handle = handle.clone();
        tokio::spawn(async move {
            for i in 0..300 {
                handle.insert(msg(acct(8), "r", i), NOW).await.unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..8)
        .map(|_| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut previous = 0;
                for _ in 0..30 {
                    let n = all_hashes(&handle, acct(8)).await.len();
                    assert!(n >= previous, "a reader saw messages disappear");
                    previous = n;
                }
            })
        })
        .collect();
    writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
    assert_eq!(all_hashes(&handle, acct(8)).await.len(), 300);
}
