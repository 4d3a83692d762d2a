//! Private groups: what a rekey costs the admin (`GroupKeys::seal`), what
//! finding its key costs a member (`decode` and `open`: one signature
//! check, one X25519, then one AEAD per entry tried), for 100 and 1,000
//! members; and sealing and opening one group message.
//!
//! Run: `cargo bench -p allium-common --bench groups`. Key-message sizes
//! are printed once before the timings.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use allium_common::Identity;
use allium_common::content::Content;
use allium_common::group::GroupId;
use allium_common::group::keys::GroupKeys;
use allium_common::group::message;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

const MEMBER_COUNTS: [usize; 2] = [100, 1_000];
const KEY: [u8; 32] = [0x4b; 32];

fn group_key() -> Identity {
    Identity::from_ed25519_seed(&[0x91; 32])
}

/// `n` distinct members, each from a seed holding its index.
fn members(n: usize) -> Vec<Identity> {
    (0..n)
        .map(|i| {
            let mut seed = [0xa5; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Identity::from_ed25519_seed(&seed)
        })
        .collect()
}

fn key_messages(c: &mut Criterion) {
    let admin = group_key();
    let group = GroupId::from_ed25519(*admin.ed25519_pk());
    let mut g = c.benchmark_group("group_keys");
    // A 1,000-member seal is some 1,000 X25519 operations: ten samples
    // keep a run within minutes.
    g.sample_size(10);
    for n in MEMBER_COUNTS {
        let people = members(n);
        let public: Vec<[u8; 32]> = people.iter().map(|m| *m.x25519_pk()).collect();
        let bytes = GroupKeys::seal(&admin, 1, &KEY, &public, &[5; 32], &[6; 32]).unwrap();
        let keys = GroupKeys::decode(&bytes, &group).unwrap();
        println!(
            "key message for {n} members: {} bytes, {} entries",
            bytes.len(),
            keys.entries()
        );

        g.bench_with_input(BenchmarkId::new("seal", n), &public, |b, public| {
            b.iter(|| GroupKeys::seal(&admin, 1, &KEY, black_box(public), &[5; 32], &[6; 32]).unwrap())
        });
        // The last member named: where its entry sits among the sorted
        // entries is chance, so this is a typical member's cost.
        let last = people.last().unwrap();
        g.bench_with_input(BenchmarkId::new("decode_open_last_member", n), &bytes, |b, bytes| {
            b.iter(|| {
                let keys = GroupKeys::decode(black_box(bytes), &group).unwrap();
                keys.open(last.x25519_sk(), last.x25519_pk()).unwrap()
            })
        });
        // Someone without an entry tries them all: the upper bound.
        let outsider = Identity::from_ed25519_seed(&[0x77; 32]);
        g.bench_with_input(BenchmarkId::new("decode_open_non_member", n), &bytes, |b, bytes| {
            b.iter(|| {
                let keys = GroupKeys::decode(black_box(bytes), &group).unwrap();
                keys.open(outsider.x25519_sk(), outsider.x25519_pk()).unwrap_err()
            })
        });
    }
    g.finish();
}

fn group_messages(c: &mut Criterion) {
    let group = GroupId::from_ed25519(*group_key().ed25519_pk());
    let sender = Identity::from_ed25519_seed(&[0xa1; 32]);
    let content = Content::text("x".repeat(100), 1_700_000_000_000);
    let data = message::seal(&sender, &group, 1, &KEY, &content, &[7; 24]).unwrap();
    println!("group message of a 100-byte text: {} bytes", data.len());
    let key_for = |_| Some(zeroize::Zeroizing::new(KEY));
    c.bench_function("group_message/seal_100_byte_text", |b| {
        b.iter(|| message::seal(&sender, black_box(&group), 1, &KEY, &content, &[7; 24]).unwrap())
    });
    c.bench_function("group_message/open_100_byte_text", |b| {
        b.iter(|| message::open(&group, key_for, black_box(&data)).unwrap())
    });
}

criterion_group!(benches, key_messages, group_messages);
criterion_main!(benches);
