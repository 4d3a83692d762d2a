//! Benchmarks of the hot paths in `allium-common`.
//!
//! Run: `cargo bench -p allium-common --bench crypto`. Results and the
//! machine they were measured on are in `docs/benchmarks.md`.
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use allium_common::content::Content;
use allium_common::keys::AccountKeyPair;
use allium_common::onion::{self, Hop, LayerSecrets};
use allium_common::{Identity, envelope, envelope_v2, mnemonic};
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
    // The same message as envelope v2, sealed to one of Bob's X-Wing keys.
    let bob_key = AccountKeyPair::from_seed(&[4; 32]);
    let published = bob_key.publish(0, 86_400_000);
    let data_v2 = envelope_v2::seal(&alice, &bob.account_id(), &published, &content, &[5; 64]).unwrap();
    c.bench_function("envelope_v2/seal_short_text", |b| {
        b.iter(|| envelope_v2::seal(&alice, black_box(&bob.account_id()), &published, &content, &[5; 64]).unwrap())
    });
    c.bench_function("envelope_v2/open_short_text", |b| {
        b.iter(|| envelope_v2::open(&bob, |_| Some(bob_key.secret_key().clone()), black_box(&data_v2)).unwrap())
    });
    c.bench_function("xwing/keypair", |b| b.iter(AccountKeyPair::generate));
}

fn onion_layers(c: &mut Criterion) {
    let nodes: Vec<Identity> = (1..=4).map(|i| Identity::from_ed25519_seed(&[i; 32])).collect();
    let path: Vec<Hop> = nodes
        .iter()
        .map(|n| Hop {
            ed25519: *n.ed25519_pk(),
            x25519: *n.x25519_pk(),
        })
        .collect();
    let secrets: Vec<LayerSecrets> = (0..4u8)
        .map(|i| LayerSecrets {
            ephemeral_sk: [0x50 + i; 32],
            nonce: [i; 24],
        })
        .collect();
    // A retrieve-sized request: the common case, padded to the 1 KiB bucket.
    let request = serde_json::json!({"method": "retrieve", "params": {"pubkey": "05".to_owned() + &"ab".repeat(32), "timestamp": 1_700_000_000_000u64}});
    c.bench_function("onion/build_4_hop_request", |b| {
        b.iter(|| onion::build_request(black_box(&path), &request, &secrets).unwrap())
    });
    let built = onion::build_request(&path, &request, &secrets).unwrap();
    let guard = &nodes[0];
    c.bench_function("onion/peel_one_layer", |b| {
        b.iter(|| onion::peel(black_box(&built.body), guard.x25519_sk(), guard.x25519_pk()).unwrap())
    });
}

criterion_group!(benches, identity, envelopes, onion_layers);
criterion_main!(benches);
