//! Property tests for every encoder/decoder pair of the crate (the onion
//! layer and legacy phrase properties live beside their modules).
#![allow(clippy::unwrap_used)]

use allium_common::content::Content;
use allium_common::encoding::{Base64Bytes, Hex32, Sig64};
use allium_common::envelope::{self, EnvelopeError};
use allium_common::envelope_v2;
use allium_common::keys::{self, AccountKeyPair, KeyBundle, PublishedKey, UnverifiedKeyBundle};
use allium_common::rpc::{self, Call, Namespace, Request};
use allium_common::seeds::{self, Seed};
use allium_common::{AccountId, Identity};
use proptest::prelude::*;

fn identity(seed: u8) -> Identity {
    Identity::from_ed25519_seed(&[seed; 32])
}

const DAY_MS: u64 = 86_400_000;

/// 1 to 4 key windows in increasing start order, each 1 ms to 17 days long.
fn key_windows() -> impl Strategy<Value = Vec<(u64, u64)>> {
    (
        0u64..1 << 60,
        proptest::collection::vec((1u64..=30 * DAY_MS, 1u64..=17 * DAY_MS), 1..=4),
    )
        .prop_map(|(mut start, steps)| {
            steps
                .into_iter()
                .map(|(gap, window)| {
                    start += gap;
                    (start, start + window)
                })
                .collect()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn pad_unpad_round_trip(data in proptest::collection::vec(any::<u8>(), 0..1000)) {
        let padded = envelope::pad(&data);
        prop_assert_eq!(padded.len() % envelope::PAD_BLOCK, 0);
        prop_assert!(padded.len() > data.len());
        prop_assert_eq!(envelope::unpad(&padded).unwrap(), &data[..]);
    }

    #[test]
    fn seal_open_round_trip(body in ".{0,600}", ts in any::<u64>(), eph in any::<[u8; 32]>(), a in 1u8..=255, b in 1u8..=255) {
        let (sender, recipient) = (identity(a), identity(b.wrapping_add(a)));
        let content = Content::text(body, ts);
        let data = envelope::seal(&sender, &recipient.account_id(), &content, &eph).unwrap();
        let opened = envelope::open(&recipient, &data).unwrap();
        prop_assert_eq!(opened.sender, sender.account_id());
        prop_assert_eq!(opened.content, content);
    }

    #[test]
    fn any_flipped_bit_is_an_error(index in any::<prop::sample::Index>(), bit in 0u8..8) {
        let data = envelope::seal(&identity(1), &identity(2).account_id(), &Content::text("x", 5), &[9; 32]).unwrap();
        let mut tampered = data.clone();
        let i = index.index(tampered.len());
        tampered[i] ^= 1 << bit;
        let result = envelope::open(&identity(2), &tampered);
        if i == 0 {
            prop_assert!(matches!(result, Err(EnvelopeError::Version(_))));
        } else {
            prop_assert_eq!(result, Err(EnvelopeError::Decrypt));
        }
    }

    #[test]
    fn open_never_panics_on_arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = envelope::open(&identity(2), &data);
    }

    #[test]
    fn content_round_trip(body in proptest::option::of(".{0,200}"), ts in any::<u64>(), exp in proptest::option::of(any::<u64>())) {
        let mut c = Content::text("", ts);
        c.body = body;
        c.disappear = exp.map(|ms| allium_common::content::Disappear { after: allium_common::content::DisappearAfter::Read, ms });
        prop_assert_eq!(Content::from_bytes(&c.to_bytes()).unwrap(), c);
    }

    #[test]
    fn account_id_round_trip(key in any::<[u8; 32]>()) {
        let a = AccountId::from_x25519(key);
        prop_assert_eq!(a.to_string().parse::<AccountId>().unwrap(), a);
    }

    #[test]
    fn account_id_parser_never_panics(s in "\\PC{0,80}") {
        let _ = s.parse::<AccountId>();
    }

    #[test]
    fn store_request_round_trip(data in proptest::collection::vec(any::<u8>(), 0..300), ts in any::<u64>(), ttl in any::<u64>(), ns in any::<i16>()) {
        let call = Call::Store(rpc::StoreParams {
            pubkey: identity(3).account_id(),
            namespace: Namespace(ns),
            timestamp: ts,
            ttl,
            data: Base64Bytes(data),
            pubkey_ed25519: (ns != 0).then_some(Hex32([4; 32])),
            signature: (ns != 0).then_some(Sig64([5; 64])),
        });
        let req = Request::Single(call);
        let bytes = serde_json::to_vec(&req.to_json()).unwrap();
        prop_assert_eq!(Request::from_json(&bytes).unwrap(), req);
    }

    #[test]
    fn batch_round_trip(n in 1usize..=20, ts in any::<u64>()) {
        let owner = identity(7);
        let calls: Vec<Call> = (0..n)
            .map(|i| Call::Retrieve(rpc::RetrieveParams {
                pubkey: owner.account_id(),
                pubkey_ed25519: Hex32(*owner.ed25519_pk()),
                namespace: Namespace(i as i16),
                timestamp: ts,
                signature: Sig64([i as u8; 64]),
                last_hash: None,
                max_count: Some(i as u32),
                max_size: None,
                wait_ms: None,
            }))
            .collect();
        let req = Request::Sequence(calls);
        let bytes = serde_json::to_vec(&req.to_json()).unwrap();
        prop_assert_eq!(Request::from_json(&bytes).unwrap(), req);
    }

    #[test]
    fn request_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = Request::from_json(&bytes);
    }

    #[test]
    fn request_parser_never_panics_on_near_valid_json(method in "[a-z_]{0,12}", params in "\\PC{0,60}") {
        let body = format!(r#"{{"method":"{method}","params":{params}}}"#);
        if let Ok(req) = Request::from_json(body.as_bytes()) {
            let _ = match req {
                Request::Single(c) => c.validate(0),
                Request::Batch(cs) | Request::Sequence(cs) => cs.iter().try_for_each(|c| c.validate(0)),
            };
        }
    }

    #[test]
    fn seed_file_round_trip(keys in proptest::collection::vec(any::<[u8; 32]>(), 1..5), port in 1u16..) {
        let list: Vec<Seed> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| Seed { address: format!("seed{i}.example:{port}"), ed25519: *k })
            .collect();
        prop_assert_eq!(seeds::parse(&seeds::render(&list)).unwrap(), list);
    }

    #[test]
    fn key_bundle_round_trip(
        windows in key_windows(),
        base in any::<u8>(),
        created in 0u64..1 << 62,
        skew in 0u64..=60_000,
    ) {
        let owner = identity(base.wrapping_add(1));
        let keys: Vec<PublishedKey> = windows
            .iter()
            .zip(0u8..)
            .map(|(&(from, until), i)| {
                AccountKeyPair::from_seed(&[base.wrapping_add(i); 32]).publish(from, until)
            })
            .collect();
        let bundle = KeyBundle::sign(&owner, created, keys.clone()).unwrap();
        let bytes = bundle.encode();
        prop_assert_eq!(bytes.len(), keys::bundle_len(keys.len()));
        // Verified on a clock up to 60 s behind the creator's.
        let now = created - skew.min(created);
        let verified = UnverifiedKeyBundle::decode(&bytes).unwrap().verify(&owner.account_id(), now).unwrap();
        prop_assert_eq!(verified.encode(), bytes);
        prop_assert_eq!(verified.keys(), &keys[..]);
        for &(from, until) in &windows {
            for now in [from, until - 1, until] {
                let current = verified.current_key(now);
                let expected = keys.iter().rev().find(|k| k.valid_from_ms <= now && now < k.valid_until_ms);
                prop_assert_eq!(current, expected);
            }
        }
    }

    #[test]
    fn envelope_v2_round_trip(
        body in ".{0,600}",
        ts in any::<u64>(),
        kem_seed in proptest::collection::vec(any::<u8>(), 64),
        key_seed in any::<[u8; 32]>(),
        a in 1u8..=255,
        b in 1u8..=255,
    ) {
        let (sender, recipient) = (identity(a), identity(b.wrapping_add(a)));
        let pair = AccountKeyPair::from_seed(&key_seed);
        let kem_seed: [u8; 64] = kem_seed.try_into().unwrap();
        let content = Content::text(body, ts);
        let key = pair.publish(0, 1);
        let data = envelope_v2::seal(&sender, &recipient.account_id(), &key, &content, &kem_seed).unwrap();
        prop_assert_eq!(data.len() % envelope::PAD_BLOCK, envelope_v2::ENVELOPE_OVERHEAD % envelope::PAD_BLOCK);
        let secret_for = |id: &keys::KeyId| (*id == pair.key_id()).then(|| pair.secret_key().clone());
        let opened = envelope_v2::open(&recipient, secret_for, &data).unwrap();
        prop_assert_eq!(opened.sender, sender.account_id());
        prop_assert_eq!(opened.content, content);
    }

    #[test]
    fn envelope_v2_open_never_panics(v2 in any::<bool>(), data in proptest::collection::vec(any::<u8>(), 0..3_000)) {
        let pair = AccountKeyPair::from_seed(&[0xc2; 32]);
        let mut data = data;
        if v2 && !data.is_empty() {
            data[0] = envelope_v2::ENVELOPE_V2;
        }
        let _ = envelope_v2::open(&identity(2), |_| Some(pair.secret_key().clone()), &data);
    }

    #[test]
    fn key_bundle_decode_never_panics(
        shaped in any::<bool>(),
        n in 0u8..6,
        data in proptest::collection::vec(any::<u8>(), 0..6_000),
    ) {
        let mut data = data;
        if shaped && data.len() > 41 {
            data[0] = keys::BUNDLE_FORMAT;
            data[41] = n;
        }
        if let Ok(bundle) = UnverifiedKeyBundle::decode(&data) {
            let _ = bundle.verify(&identity(2).account_id(), 0);
        }
    }
}
