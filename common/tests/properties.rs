//! Property tests for every encoder/decoder pair of the crate (the onion
//! layer and legacy phrase properties live beside their modules).
#![allow(clippy::unwrap_used)]

use allium_common::content::Content;
use allium_common::encoding::{Base64Bytes, Hex32, Sig64};
use allium_common::envelope::{self, EnvelopeError};
use allium_common::rpc::{self, Call, Namespace, Request};
use allium_common::seeds::{self, Seed};
use allium_common::{AccountId, Identity};
use proptest::prelude::*;

fn identity(seed: u8) -> Identity {
    Identity::from_ed25519_seed(&[seed; 32])
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
}
