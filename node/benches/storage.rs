//! Message store benchmarks.
//!
//! `cargo bench -p allium-node --bench storage`
//!
//! - `store_throughput/*`: stores through [`StorageHandle`] from concurrent
//!   tasks (each task awaits its own inserts, the writer group-commits
//!   whatever is queued), 1 KiB and 320-byte messages, reported as
//!   messages/s; each variant starts from an empty store.
//! - `retrieve_1m/*`: one `retrieve` of 100 messages from a mailbox of a
//!   database holding 1,000,000 messages (fixture built once per run).
//! - `digest_1m`: a swarm digest (anti-entropy) over the same fixture.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::OnceCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use allium_common::AccountId;
use allium_common::rpc::Namespace;
use allium_node::storage::{HandleConfig, NewMessage, StorageHandle, StorageLimits, Store};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tempfile::TempDir;

const NOW: u64 = 1_700_000_000_000;
const DAY: u64 = 24 * 3_600_000;
/// Messages stored per measured iteration of the throughput benchmarks.
const PER_ITER: usize = 10_000;
const DATA_LEN: usize = 1024;
const SHORT_DATA_LEN: usize = 320;
const FIXTURE_MESSAGES: usize = 1_000_000;
const FIXTURE_DATA_LEN: usize = 200;

fn account(i: u64) -> AccountId {
    let mut pk = [0x5a; 32];
    pk[..8].copy_from_slice(&i.to_be_bytes());
    AccountId::from_x25519(pk)
}

fn message(account: AccountId, serial: u64, len: usize) -> NewMessage {
    let mut data = serial.to_be_bytes().to_vec();
    data.resize(len, 0xa5);
    NewMessage::new(account.into(), Namespace(0), NOW, NOW + DAY, data)
}

fn limits() -> StorageLimits {
    StorageLimits {
        max_mailbox_bytes: u64::MAX,
        max_mailbox_messages: u64::MAX,
        max_total_bytes: u64::MAX,
        max_files_bytes: u64::MAX,
        max_file_bytes: u64::MAX,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

static SERIAL: AtomicU64 = AtomicU64::new(0);

/// `PER_ITER` fresh messages of `len` bytes spread over 1,000 mailboxes,
/// split among `tasks` lists.
fn fresh(tasks: usize, len: usize) -> Vec<Vec<NewMessage>> {
    let mut lists = vec![Vec::with_capacity(PER_ITER / tasks + 1); tasks];
    for i in 0..PER_ITER {
        let serial = SERIAL.fetch_add(1, Ordering::Relaxed);
        lists[i % tasks].push(message(account(serial % 1000), serial, len));
    }
    lists
}

/// Stores `lists` through `handle`, one task per list, each task awaiting
/// its own inserts one by one.
async fn insert_concurrently(handle: &StorageHandle, lists: Vec<Vec<NewMessage>>) -> Duration {
    let start = Instant::now();
    let joins: Vec<_> = lists
        .into_iter()
        .map(|list| {
            let handle = handle.clone();
            tokio::spawn(async move {
                for m in list {
                    handle.insert(m, NOW).await.unwrap();
                }
            })
        })
        .collect();
    for j in joins {
        j.await.unwrap();
    }
    start.elapsed()
}

/// Stores `lists` through `handle`, one task per list, each sending
/// batches of 100 (the replication path).
async fn insert_batches_concurrently(handle: &StorageHandle, lists: Vec<Vec<NewMessage>>) -> Duration {
    let start = Instant::now();
    let joins: Vec<_> = lists
        .into_iter()
        .map(|list| {
            let handle = handle.clone();
            tokio::spawn(async move {
                let mut list = list.into_iter().peekable();
                while list.peek().is_some() {
                    let batch: Vec<_> = list.by_ref().take(100).collect();
                    for r in handle.insert_batch(batch, NOW).await.unwrap() {
                        r.unwrap();
                    }
                }
            })
        })
        .collect();
    for j in joins {
        j.await.unwrap();
    }
    start.elapsed()
}

/// Each variant starts from an empty store, which grows by `PER_ITER`
/// messages per iteration (a few hundred thousand by the end).
fn store_throughput(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("store_throughput");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(PER_ITER as u64));

    // (name, tasks, batches of 100?, data bytes). 320 bytes is a short text
    // message in envelope v1 (one 160-byte padding block, key, signature
    // and sealed-box overhead); 1 KiB a longer one.
    let variants: [(&str, usize, bool, usize); 5] = [
        ("insert_64_tasks_1KiB", 64, false, DATA_LEN),
        ("insert_256_tasks_1KiB", 256, false, DATA_LEN),
        ("insert_batch_100_8_tasks_1KiB", 8, true, DATA_LEN),
        ("insert_256_tasks_320B", 256, false, SHORT_DATA_LEN),
        ("insert_batch_100_8_tasks_320B", 8, true, SHORT_DATA_LEN),
    ];
    for (name, tasks, batched, len) in variants {
        let dir = TempDir::new().unwrap();
        let handle = StorageHandle::open(dir.path().join("bench.sqlite"), limits(), HandleConfig::default()).unwrap();
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let lists = fresh(tasks, len);
                    total += rt.block_on(async {
                        if batched {
                            insert_batches_concurrently(&handle, lists).await
                        } else {
                            insert_concurrently(&handle, lists).await
                        }
                    });
                }
                total
            });
        });
        if let Ok(stats) = rt.block_on(handle.stats()) {
            eprintln!(
                "store_throughput/{name}: the store ended with {} messages",
                stats.messages
            );
        }
        rt.block_on(handle.close()).unwrap();
    }
    group.finish();
}

/// A store of `FIXTURE_MESSAGES` messages over ~10,000 mailboxes, with
/// every 1,000th message going to `target` (1,000 messages, scattered
/// through the table like a real mailbox's).
fn build_fixture(dir: &TempDir, target: AccountId) -> (Vec<String>, Duration) {
    let start = Instant::now();
    let mut store = Store::open(dir.path().join("fixture.sqlite"), limits()).unwrap();
    let mut target_hashes = Vec::new();
    let mut batch = Vec::with_capacity(20_000);
    for i in 0..FIXTURE_MESSAGES as u64 {
        let acct = if i % 1000 == 0 {
            target
        } else {
            account(1_000_000 + i % 9973)
        };
        let m = message(acct, i, FIXTURE_DATA_LEN);
        if acct == target {
            target_hashes.push(m.hash.clone());
        }
        batch.push(m);
        if batch.len() == 20_000 {
            store.insert_batch(&batch, NOW).unwrap();
            batch.clear();
        }
    }
    store.insert_batch(&batch, NOW).unwrap();
    assert_eq!(store.stats().unwrap().messages, FIXTURE_MESSAGES as u64);
    store.close().unwrap();
    (target_hashes, start.elapsed())
}

struct Fixture {
    _dir: TempDir,
    path: std::path::PathBuf,
    target: AccountId,
    last: Option<String>,
}

/// Built on first use, so `cargo bench ... -- store_throughput` skips it.
fn fixture(cell: &OnceCell<Fixture>) -> &Fixture {
    cell.get_or_init(|| {
        let dir = TempDir::new().unwrap();
        let target = account(42);
        let (hashes, took) = build_fixture(&dir, target);
        let path = dir.path().join("fixture.sqlite");
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        eprintln!(
            "retrieve_1m: fixture of {FIXTURE_MESSAGES} messages built in {:.1} s \
             ({:.0} inserts/s, {} MiB)",
            took.as_secs_f64(),
            FIXTURE_MESSAGES as f64 / took.as_secs_f64(),
            size / (1024 * 1024)
        );
        Fixture {
            _dir: dir,
            path,
            target,
            last: Some(hashes[499].clone()),
        }
    })
}

fn retrieve_1m(c: &mut Criterion) {
    let cell = OnceCell::new();
    let mut group = c.benchmark_group("retrieve_1m");
    group.sample_size(50).measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(100));

    group.bench_function("store_100_after_last_hash", |b| {
        let f = fixture(&cell);
        let store = Store::open(&f.path, limits()).unwrap();
        b.iter(|| {
            let r = store
                .retrieve(&f.target.into(), Namespace(0), f.last.as_deref(), 100, usize::MAX, NOW)
                .unwrap();
            assert_eq!(r.messages.len(), 100);
            black_box(r)
        });
    });

    let rt = runtime();
    let handle: OnceCell<StorageHandle> = OnceCell::new();
    let open_handle = |f: &Fixture| {
        handle
            .get_or_init(|| StorageHandle::open(&f.path, limits(), HandleConfig::default()).unwrap())
            .clone()
    };
    group.bench_function("handle_100_after_last_hash", |b| {
        let f = fixture(&cell);
        let handle = open_handle(f);
        b.iter(|| {
            let r = rt
                .block_on(handle.retrieve(f.target.into(), Namespace(0), f.last.clone(), 100, usize::MAX, NOW))
                .unwrap();
            assert_eq!(r.messages.len(), 100);
            black_box(r)
        });
    });
    group.bench_function("handle_100_from_start", |b| {
        let f = fixture(&cell);
        let handle = open_handle(f);
        b.iter(|| {
            let r = rt
                .block_on(handle.retrieve(f.target.into(), Namespace(0), None, 100, usize::MAX, NOW))
                .unwrap();
            assert_eq!(r.messages.len(), 100);
            black_box(r)
        });
    });
    group.finish();
    if let Some(handle) = handle.get() {
        rt.block_on(handle.close()).unwrap();
    }
}

/// A swarm digest over the 1 M-message fixture: every live hash read (no
/// data) and added to a `SwarmDigest`, as anti-entropy does per round.
fn digest_1m(c: &mut Criterion) {
    let cell = OnceCell::new();
    let mut group = c.benchmark_group("digest_1m");
    group.sample_size(10).measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(FIXTURE_MESSAGES as u64));
    let rt = runtime();
    group.bench_function("handle_live_hashes_into_digest", |b| {
        let f = fixture(&cell);
        let handle = StorageHandle::open(&f.path, limits(), HandleConfig::default()).unwrap();
        b.iter(|| {
            let mut digest = allium_common::peer::SwarmDigest::default();
            let mut after = 0;
            let mut seen = 0;
            loop {
                let page = rt.block_on(handle.live_hashes(after, NOW, 1024)).unwrap();
                seen += page.rows.len();
                page.rows.iter().for_each(|(_, h)| digest.add(h));
                match page.next {
                    Some(n) => after = n,
                    None => break,
                }
            }
            assert_eq!(seen, FIXTURE_MESSAGES);
            black_box(digest)
        });
        rt.block_on(handle.close()).unwrap();
    });
    group.finish();
}

criterion_group!(benches, store_throughput, retrieve_1m, digest_1m);
criterion_main!(benches);
