//! Benchmarks of the hot paths in `allium-common`.
//!
//! Run: `cargo bench -p allium-common --bench crypto`. Results and the
//! machine they were measured on are in `docs/benchmarks.md`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use allium_common::content::Content;
use allium_common::{Identity, envelope, mnemonic};
use criterion::{Criterion, criterion_group, criterion_main};

fn identity(c: &mut Criterion) {
    let phrase = mnemonic::new_phrase(&[7; 32]);
    c.bench_function("identity/from_phrase_24_words", |b| {
        b.iter(|| mnemonic::identity_from_phrase(black_box(&phrase), "").unwrap())
    });
    c.bench_function("identity/from_ed25519_seed", |b| {
        b.iter(|| Identity::from_ed25519_seed(black_box(&[7; 32])))
    });
}

fn envelopes(c: &mut Criterion) {
    let alice = Identity::from_ed25519_seed(&[1; 32]);
    let bob = Identity::from_ed25519_seed(&[2; 32]);
    let content = Content::text(
        "a short text message of about sixty bytes, typical for chat",
        1_700_000_000_000,
    );
    let data = envelope::seal(&alice, &bob.account_id(), &content, &[3; 32]).unwrap();
    c.bench_function("envelope/seal_short_text", |b| {
        b.iter(|| envelope::seal(&alice, black_box(&bob.account_id()), &content, &[3; 32]).unwrap())
    });
    c.bench_function("envelope/open_short_text", |b| {
        b.iter(|| envelope::open(&bob, black_box(&data)).unwrap())
    });
}

criterion_group!(benches, identity, envelopes);
criterion_main!(benches);
