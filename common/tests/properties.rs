//! Property tests for every encoder/decoder pair of the crate (the onion
//! layer and legacy phrase properties live beside their modules).
#![allow(clippy::unwrap_used)]

use allium_common::content::Content;
use allium_common::devices::{
    self, DeviceKeys, DeviceRecord, DeviceRecordError, DeviceSecret, KeyShare, ShareWindow, UnverifiedRecord,
};
use allium_common::encoding::{Base64Bytes, Hex32, Sig64};
use allium_common::envelope::{self, EnvelopeError};
use allium_common::envelope_v2;
use allium_common::group::GroupId;
use allium_common::group::keys::{ENTRY_BLOCK, ENTRY_LEN, GroupKeys, GroupKeysError, MAX_KEYS_LEN};
use allium_common::group::message::{self as group_message, GroupMessageError};
use allium_common::keys::{self, AccountKeyPair, KeyBundle, PublishedKey, UnverifiedKeyBundle};
use allium_common::rpc::{self, Call, Namespace, Request};
use allium_common::seeds::{self, Seed};
use allium_common::{AccountId, Identity};
use proptest::prelude::*;
use zeroize::Zeroizing;

fn identity(seed: u8) -> Identity {
    Identity::from_ed25519_seed(&[seed; 32])
}

const DAY_MS: u64 = 86_400_000;

/// 1 to 16 devices: each a name of any characters (cut to 32 bytes), a
/// creation time, and seeds that differ from every other device's.
fn device_list() -> impl Strategy<Value = Vec<DeviceSecret>> {
    (
        any::<[u8; 32]>(),
        proptest::collection::vec((".{0,40}", any::<u64>()), 1..=devices::MAX_DEVICES),
    )
        .prop_map(|(base, devices)| {
            devices
                .iter()
                .zip(0u8..)
                .map(|((name, created_ms), i)| {
                    let (mut sign_seed, mut xwing_seed) = (base, base);
                    sign_seed[0] = i;
                    xwing_seed[0] = i ^ 0x80;
                    DeviceSecret::from_seeds(&sign_seed, &xwing_seed, name, *created_ms)
                })
                .collect()
        })
}

/// A link request of `device(0)`, a list of all three signed by the second,
/// and a share from the second to the first, for the account `b0…b0`.
fn valid_device_records() -> &'static [Vec<u8>; 3] {
    static RECORDS: std::sync::OnceLock<[Vec<u8>; 3]> = std::sync::OnceLock::new();
    RECORDS.get_or_init(|| {
        let account = identity(0xb0).account_id();
        let d: Vec<DeviceSecret> = (0..3u8)
            .map(|i| DeviceSecret::from_seeds(&[0xd1 + i; 32], &[0xe1 + i; 32], "device", 1_700_000_000_000))
            .collect();
        let window = ShareWindow {
            valid_from_ms: 0,
            valid_until_ms: DAY_MS,
            rotate_at_ms: DAY_MS / 2,
        };
        let share = KeyShare::seal(
            &account,
            d[0].keys(),
            &AccountKeyPair::from_seed(&[0xc2; 32]),
            window,
            &[0xe7; 64],
        )
        .unwrap();
        [
            DeviceRecord::LinkRequest(d[0].keys().clone())
                .sign(&d[0], &account)
                .unwrap(),
            DeviceRecord::List {
                created_ms: 1_700_000_000_000,
                devices: d.iter().map(|d| d.keys().clone()).collect(),
            }
            .sign(&d[1], &account)
            .unwrap(),
            DeviceRecord::Share(share).sign(&d[1], &account).unwrap(),
        ]
    })
}

/// The first device of [`valid_device_records`], which its share is for.
fn share_recipient() -> &'static DeviceSecret {
    static DEVICE: std::sync::OnceLock<DeviceSecret> = std::sync::OnceLock::new();
    DEVICE.get_or_init(|| DeviceSecret::from_seeds(&[0xd1; 32], &[0xe1; 32], "device", 1_700_000_000_000))
}

/// Decodes `data`; what decodes must encode back to `data`, and is then
/// verified for the account `b0…b0` and, if a share, opened by
/// [`share_recipient`]. Returns what verification said.
fn decode_all_the_way(data: &[u8]) -> Option<Result<(), DeviceRecordError>> {
    let unverified = UnverifiedRecord::decode(data).ok()?;
    assert_eq!(unverified.to_bytes(), data);
    if let DeviceRecord::Share(share) = unverified.record()
        && let Ok(pair) = share.open(&identity(0xb0).account_id(), share_recipient())
    {
        assert_eq!(pair.key_id(), share.key_id);
    }
    Some(unverified.verify(&identity(0xb0).account_id()).map(|_| ()))
}

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
            chunk: None,
            pubkey: identity(3).account_id().into(),
            namespace: Namespace(ns),
            timestamp: ts,
            ttl,
            data: Base64Bytes(data),
            pubkey_ed25519: (ns != 0).then_some(Hex32([4; 32])),
            signature: (ns != 0).then_some(Sig64([5; 64])),
            credential: None,
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
                pubkey: owner.account_id().into(),
                pubkey_ed25519: Hex32(*owner.ed25519_pk()),
                namespace: Namespace(i as i16),
                timestamp: ts,
                signature: Sig64([i as u8; 64]),
                last_hash: None,
                max_count: Some(i as u32),
                max_size: None,
                wait_ms: None,
                credential: None,
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
    #[test]
    fn device_records_round_trip(
        devices in device_list(),
        signer in any::<prop::sample::Index>(),
        account in 1u8..=255,
        created_ms in any::<u64>(),
        key_seed in any::<[u8; 32]>(),
        kem_seed in proptest::collection::vec(any::<u8>(), 64),
        times in any::<[u64; 3]>(),
    ) {
        let account = identity(account).account_id();
        for d in &devices {
            prop_assert!(d.keys().name().len() <= devices::MAX_NAME_LEN);
        }
        let signer = &devices[signer.index(devices.len())];
        let first = &devices[0];
        let pair = AccountKeyPair::from_seed(&key_seed);
        let window = ShareWindow { valid_from_ms: times[0], valid_until_ms: times[1], rotate_at_ms: times[2] };
        let share = KeyShare::seal(&account, first.keys(), &pair, window, &kem_seed.try_into().unwrap()).unwrap();
        let records = [
            (first, DeviceRecord::LinkRequest(first.keys().clone())),
            (signer, DeviceRecord::List { created_ms, devices: devices.iter().map(|d| d.keys().clone()).collect() }),
            (signer, DeviceRecord::Share(share)),
        ];
        for (by, record) in records {
            let bytes = record.sign(by, &account).unwrap();
            let unverified = UnverifiedRecord::decode(&bytes).unwrap();
            prop_assert_eq!(unverified.to_bytes(), bytes);
            prop_assert_eq!(unverified.record(), &record);
            let verified = unverified.verify(&account).unwrap();
            prop_assert_eq!(verified.signer, by.keys().sign_pk);
            if let DeviceRecord::Share(share) = &verified.record {
                let opened = share.open(&account, first).unwrap();
                prop_assert_eq!(opened.key_id(), pair.key_id());
                prop_assert_eq!(opened.public_key(), pair.public_key());
            }
            prop_assert_eq!(verified.record, record);
        }
    }

    #[test]
    fn device_names_are_cut_to_a_prefix_of_at_most_32_bytes(name in "\\PC{0,40}") {
        let keys = DeviceKeys::new([1; 32], [2; 1_216], &name, 0);
        prop_assert!(keys.name().len() <= devices::MAX_NAME_LEN);
        prop_assert!(name.starts_with(keys.name()));
        // Nothing was cut that would have fitted.
        let next = name[keys.name().len()..].chars().next();
        if let Some(c) = next {
            prop_assert!(keys.name().len() + c.len_utf8() > devices::MAX_NAME_LEN);
        }
    }

    #[test]
    fn device_record_decode_never_panics(
        shaped in any::<bool>(),
        kind in 0u8..5,
        n in 0u8..20,
        name_len in 0u8..40,
        data in proptest::collection::vec(any::<u8>(), 0..3_000),
    ) {
        let mut data = data;
        if shaped && data.len() > 1_290 {
            data[0] = devices::RECORD_FORMAT;
            data[1] = kind;
            // The list's device count, and the first keys' name length.
            data[10] = n;
            data[if kind == 2 { 11 + 1_256 } else { 2 + 1_256 }] = name_len;
        }
        let _ = decode_all_the_way(&data);
    }

    #[test]
    fn mutated_device_records_never_panic_and_never_verify(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        extra in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let original = &valid_device_records()[which];
        let mut data = original.clone();
        for (at, byte) in &edits {
            let i = at.index(data.len());
            data[i] = *byte;
        }
        if let Some(cut) = cut {
            data.truncate(cut.index(data.len()));
        }
        data.extend_from_slice(&extra);
        match decode_all_the_way(&data) {
            Some(verified) if data == *original => prop_assert_eq!(verified, Ok(())),
            Some(verified) => prop_assert_eq!(verified, Err(DeviceRecordError::BadSignature)),
            None => prop_assert!(data != *original, "the original decodes"),
        }
    }
}

/// The vector group (its key is the identity `91…91`).
fn vector_group() -> GroupId {
    GroupId::from_ed25519(*identity(0x91).ed25519_pk())
}

/// The members of [`valid_group_inputs`]' key message.
const GROUP_MEMBERS: [u8; 3] = [0xa1, 0xb1, 0xc1];

/// The vectors' key message of generation 7 (key `4b…4b`) to `a1…a1`,
/// `b1…b1` and `c1…c1`, and a group message from `a1…a1` under it.
fn valid_group_inputs() -> &'static [Vec<u8>; 2] {
    static INPUTS: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    INPUTS.get_or_init(|| {
        let members: Vec<[u8; 32]> = GROUP_MEMBERS.iter().map(|&b| *identity(b).x25519_pk()).collect();
        [
            GroupKeys::seal(&identity(0x91), 7, &[0x4b; 32], &members, &[5; 32], &[6; 32]).unwrap(),
            group_message::seal(
                &identity(0xa1),
                &vector_group(),
                7,
                &[0x4b; 32],
                &Content::text("Hello, group", 1_700_000_000_000),
                &[7; 24],
            )
            .unwrap(),
        ]
    })
}

/// The key of generations 0 to 3 and of 7 (the vectors'): `4b…4b`.
fn group_key_for(generation: u32) -> Option<Zeroizing<[u8; 32]>> {
    (generation <= 3 || generation == 7).then(|| Zeroizing::new([0x4b; 32]))
}

/// Bytes of a key message of `n` members: 72 of head, 48 for each of `n`
/// entries padded to a multiple of 75, 64 of signature.
fn key_message_len(n: usize) -> usize {
    72 + n.div_ceil(75) * 75 * 48 + 64
}

/// Replaces bytes of `data`, then maybe cuts it and appends to it.
fn mutate(data: &mut Vec<u8>, edits: &[(prop::sample::Index, u8)], cut: Option<prop::sample::Index>, extra: &[u8]) {
    for (at, byte) in edits {
        let i = at.index(data.len());
        data[i] = *byte;
    }
    if let Some(cut) = cut {
        data.truncate(cut.index(data.len()));
    }
    data.extend_from_slice(extra);
}

proptest! {
    // A key message of 200 members costs some 400 X25519 operations.
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn group_keys_round_trip(
        group_seed in any::<[u8; 32]>(),
        member_seeds in proptest::collection::vec(any::<[u8; 32]>(), 1..=200),
        generation in any::<u32>(),
        key in any::<[u8; 32]>(),
        eph_seed in any::<[u8; 32]>(),
        pad_seed in any::<[u8; 32]>(),
    ) {
        let group_key = Identity::from_ed25519_seed(&group_seed);
        let group = GroupId::from_ed25519(*group_key.ed25519_pk());
        let members: Vec<Identity> = member_seeds.iter().map(Identity::from_ed25519_seed).collect();
        let public: Vec<[u8; 32]> = members.iter().map(|m| *m.x25519_pk()).collect();
        let bytes = GroupKeys::seal(&group_key, generation, &key, &public, &eph_seed, &pad_seed).unwrap();
        prop_assert_eq!(bytes.len(), key_message_len(members.len()));
        prop_assert!(bytes.len() <= MAX_KEYS_LEN);
        let keys = GroupKeys::decode(&bytes, &group).unwrap();
        prop_assert_eq!(keys.generation, generation);
        prop_assert_eq!(keys.entries(), members.len().div_ceil(ENTRY_BLOCK) * ENTRY_BLOCK);
        prop_assert_eq!(keys.entries() * ENTRY_LEN, bytes.len() - 72 - 64);
        for m in &members {
            prop_assert_eq!(*keys.open(m.x25519_sk(), m.x25519_pk()).unwrap(), key);
        }
        let outsider = identity(0x77);
        prop_assert_eq!(keys.open(outsider.x25519_sk(), outsider.x25519_pk()), Err(GroupKeysError::NotAMember));
        prop_assert_eq!(GroupKeys::decode(&bytes, &vector_group()).err(), Some(GroupKeysError::BadSignature));
    }

    #[test]
    fn group_message_round_trip(
        body in ".{0,2000}",
        ts in any::<u64>(),
        sender in any::<[u8; 32]>(),
        group_seed in any::<[u8; 32]>(),
        generation in any::<u32>(),
        key in any::<[u8; 32]>(),
        nonce in any::<[u8; 24]>(),
    ) {
        let sender = Identity::from_ed25519_seed(&sender);
        let group = GroupId::from_ed25519(*Identity::from_ed25519_seed(&group_seed).ed25519_pk());
        let content = Content::text(body, ts);
        let data = group_message::seal(&sender, &group, generation, &key, &content, &nonce).unwrap();
        prop_assert_eq!(data.len(), group_message::MESSAGE_OVERHEAD + envelope::pad(&content.to_bytes()).len());
        prop_assert_eq!((data.len() - group_message::MESSAGE_OVERHEAD) % envelope::PAD_BLOCK, 0);
        prop_assert_eq!(group_message::generation_of(&data), Some(generation));
        let key_for = |g: u32| (g == generation).then(|| Zeroizing::new(key));
        let opened = group_message::open(&group, key_for, &data).unwrap();
        prop_assert_eq!(opened.sender, sender.account_id());
        prop_assert_eq!(opened.generation, generation);
        prop_assert_eq!(opened.content, content);
        prop_assert_eq!(
            group_message::open(&group, |_| None, &data),
            Err(GroupMessageError::UnknownGeneration(generation))
        );
        let other = GroupId::from_ed25519(*sender.ed25519_pk());
        prop_assert_eq!(group_message::open(&other, key_for, &data), Err(GroupMessageError::Decrypt));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn group_keys_decode_never_panics(
        shaped in any::<bool>(),
        blocks in 0u16..4,
        off_block in any::<bool>(),
        data in proptest::collection::vec(any::<u8>(), 0..12_000),
    ) {
        let mut data = data;
        // Of the shape a key message has, with a count that is, or is not,
        // a multiple of 75, and the length it calls for.
        if shaped && data.len() >= 72 {
            let n = blocks * 75 + u16::from(off_block);
            data[0] = 0x01;
            data[1..34].copy_from_slice(&vector_group().to_bytes());
            data[70..72].copy_from_slice(&n.to_be_bytes());
            data.resize(key_message_len(usize::from(n)), 0);
        }
        if let Ok(keys) = GroupKeys::decode(&data, &vector_group()) {
            prop_assert!(keys.entries() > 0 && keys.entries().is_multiple_of(ENTRY_BLOCK));
            let member = identity(0xa1);
            let _ = keys.open(member.x25519_sk(), member.x25519_pk());
        }
    }

    #[test]
    fn group_message_open_never_panics(
        shaped in any::<bool>(),
        generation in 0u32..10,
        data in proptest::collection::vec(any::<u8>(), 0..3_000),
    ) {
        let mut data = data;
        if shaped && data.len() >= 5 {
            data[0] = group_message::MESSAGE_FORMAT;
            data[1..5].copy_from_slice(&generation.to_be_bytes());
        }
        let read = group_message::generation_of(&data);
        let expected = match data.as_slice() {
            [0x01, g @ ..] if g.len() >= 4 => Some(u32::from_be_bytes([g[0], g[1], g[2], g[3]])),
            _ => None,
        };
        prop_assert_eq!(read, expected);
        let _ = group_message::open(&vector_group(), group_key_for, &data);
    }

    /// The signature covers every byte: a key message changed anywhere
    /// (replaced bytes, cut, lengthened) never decodes, and never panics.
    #[test]
    fn mutated_key_messages_never_panic_and_never_decode(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        extra in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let original = &valid_group_inputs()[0];
        let mut data = original.clone();
        mutate(&mut data, &edits, cut, &extra);
        match GroupKeys::decode(&data, &vector_group()) {
            Ok(keys) => {
                prop_assert!(data == *original, "a changed key message decoded");
                prop_assert_eq!((keys.generation, keys.entries()), (7, 75));
                for b in GROUP_MEMBERS {
                    let m = identity(b);
                    prop_assert_eq!(*keys.open(m.x25519_sk(), m.x25519_pk()).unwrap(), [0x4b; 32]);
                }
            }
            Err(e) => {
                prop_assert!(data != *original, "the original decodes");
                prop_assert!(matches!(e, GroupKeysError::Malformed | GroupKeysError::BadSignature), "{e:?}");
            }
        }
    }

    /// A group message changed anywhere never opens, and never panics.
    #[test]
    fn mutated_group_messages_never_panic_and_never_open(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
        extra in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let original = &valid_group_inputs()[1];
        let mut data = original.clone();
        mutate(&mut data, &edits, cut, &extra);
        prop_assert_eq!(
            group_message::generation_of(&data),
            (data.len() >= 5 && data[0] == 0x01).then(|| u32::from_be_bytes([data[1], data[2], data[3], data[4]]))
        );
        match group_message::open(&vector_group(), group_key_for, &data) {
            Ok(opened) => {
                prop_assert!(data == *original, "a changed group message opened");
                prop_assert_eq!(opened.sender, identity(0xa1).account_id());
                prop_assert_eq!(opened.content, Content::text("Hello, group", 1_700_000_000_000));
            }
            Err(e) => prop_assert!(data != *original, "the original opens: {e:?}"),
        }
    }
}

/// Credentials, revocations and member lists (`group::credential`,
/// `group::state`): what an admin writes reads back as written, for any
/// group, and a single changed byte or another group is refused.
mod group_credentials_and_lists {
    use std::collections::BTreeMap;

    use allium_common::group::credential::{
        CREDENTIAL_FORMAT, CREDENTIAL_LABEL, CREDENTIAL_LEN, Credential, CredentialError, REVOCATION_LEN, Revocation,
        Rights,
    };
    use allium_common::group::state::{self, DocumentError, Member};

    use super::*;

    /// A credential with any rights bits, signed by hand as
    /// `Credential::issue` would: `issue` takes a `Rights`, and only the
    /// named ones (1, 2, 4, 7) can be built outside the crate.
    fn hand_credential(group_key: &Identity, member_pk: &[u8; 32], rights: u8, issued_ms: u64) -> Vec<u8> {
        let group = GroupId::from_ed25519(*group_key.ed25519_pk());
        let mut out = vec![CREDENTIAL_FORMAT];
        out.extend_from_slice(&group.to_bytes());
        out.extend_from_slice(member_pk);
        out.push(rights);
        out.extend_from_slice(&issued_ms.to_be_bytes());
        let sig = group_key.sign(&[CREDENTIAL_LABEL, &out].concat());
        out.extend_from_slice(&sig);
        out
    }

    /// Any number of distinct accounts (up to 200) with admin flags, and
    /// the same members in any order with some of them named again.
    fn member_lists() -> impl Strategy<Value = (BTreeMap<[u8; 32], bool>, Vec<Member>)> {
        proptest::collection::btree_map(any::<[u8; 32]>(), any::<bool>(), 0..=200)
            .prop_flat_map(|accounts| {
                let members: Vec<Member> = accounts
                    .iter()
                    .map(|(pk, &admin)| Member {
                        account: AccountId::from_x25519(*pk),
                        admin,
                    })
                    .collect();
                (
                    Just(accounts),
                    Just(members).prop_shuffle(),
                    proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
                )
            })
            .prop_map(|(accounts, mut members, again)| {
                if !members.is_empty() {
                    for at in again {
                        members.push(members[at.index(members.len())]);
                    }
                }
                (accounts, members)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn credentials_round_trip_and_any_changed_byte_is_refused(
            group_seed in any::<[u8; 32]>(),
            member_pk in any::<[u8; 32]>(),
            rights in 0u8..=7,
            issued_ms in any::<u64>(),
            flip_at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let group_key = Identity::from_ed25519_seed(&group_seed);
            let group = GroupId::from_ed25519(*group_key.ed25519_pk());
            let bytes = hand_credential(&group_key, &member_pk, rights, issued_ms);
            prop_assert_eq!(bytes.len(), CREDENTIAL_LEN);
            let c = Credential::verify(&bytes, &group).unwrap();
            prop_assert_eq!((c.member_pk, c.rights.bits(), c.issued_ms), (member_pk, rights, issued_ms));
            // `issue` writes the same bytes for the rights `verify` read.
            prop_assert_eq!(&Credential::issue(&group_key, &member_pk, c.rights, issued_ms), &bytes);
            for named in [Rights::READ, Rights::WRITE, Rights::DELETE, Rights::MEMBER] {
                let issued = Credential::issue(&group_key, &member_pk, named, issued_ms);
                prop_assert_eq!(Credential::verify(&issued, &group).unwrap().rights, named);
            }

            let mut changed = bytes.clone();
            let i = flip_at.index(changed.len());
            changed[i] ^= flip;
            prop_assert!(Credential::verify(&changed, &group).is_err(), "byte {} changed", i);
            prop_assert!(Revocation::verify(&changed, &group).is_err());
            let other = GroupId::from_ed25519(*identity(0x92).ed25519_pk());
            prop_assert!(Credential::verify(&bytes, &other).is_err() || other == group);
        }

        #[test]
        fn credentials_with_unknown_rights_are_refused(
            group_seed in any::<[u8; 32]>(),
            rights in 8u8..=255,
        ) {
            let group_key = Identity::from_ed25519_seed(&group_seed);
            let group = GroupId::from_ed25519(*group_key.ed25519_pk());
            let bytes = hand_credential(&group_key, &[7; 32], rights, 1);
            prop_assert_eq!(Credential::verify(&bytes, &group), Err(CredentialError::Rights(rights)));
        }

        #[test]
        fn revocations_round_trip_and_any_changed_byte_is_refused(
            group_seed in any::<[u8; 32]>(),
            member_pk in any::<[u8; 32]>(),
            revoked_ms in any::<u64>(),
            flip_at in any::<prop::sample::Index>(),
            flip in 1u8..=255,
        ) {
            let group_key = Identity::from_ed25519_seed(&group_seed);
            let group = GroupId::from_ed25519(*group_key.ed25519_pk());
            let bytes = Revocation::issue(&group_key, &member_pk, revoked_ms);
            prop_assert_eq!(bytes.len(), REVOCATION_LEN);
            let r = Revocation::verify(&bytes, &group).unwrap();
            prop_assert_eq!((r.member_pk, r.revoked_ms), (member_pk, revoked_ms));
            prop_assert!(Credential::verify(&bytes, &group).is_err(), "a revocation is no credential");

            let mut changed = bytes.clone();
            let i = flip_at.index(changed.len());
            changed[i] ^= flip;
            prop_assert!(Revocation::verify(&changed, &group).is_err(), "byte {} changed", i);
            prop_assert!(Credential::verify(&changed, &group).is_err());
        }

        #[test]
        fn member_lists_open_sorted_deduplicated_and_only_for_their_group(
            (accounts, members) in member_lists(),
            group_seed in any::<[u8; 32]>(),
            generation in any::<u32>(),
            version in any::<u64>(),
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 24]>(),
        ) {
            let group_key = Identity::from_ed25519_seed(&group_seed);
            let group = GroupId::from_ed25519(*group_key.ed25519_pk());
            let key_for = |g: u32| (g == generation).then(|| Zeroizing::new(key));
            let bytes = state::seal_members(&members, &group_key, generation, &key, version, &nonce).unwrap();
            let opened = state::open_members(&bytes, &group, key_for).unwrap();
            let expected: Vec<Member> = accounts
                .iter()
                .map(|(pk, &admin)| Member { account: AccountId::from_x25519(*pk), admin })
                .collect();
            prop_assert_eq!(opened.body, expected);
            prop_assert_eq!((opened.generation, opened.version), (generation, version));

            let mut other_seed = group_seed;
            other_seed[0] ^= 1;
            let other = GroupId::from_ed25519(*Identity::from_ed25519_seed(&other_seed).ed25519_pk());
            prop_assert_eq!(state::open_members(&bytes, &other, key_for), Err(DocumentError::BadSignature));
            prop_assert_eq!(
                state::open_members(&bytes, &group, |_| None),
                Err(DocumentError::UnknownGeneration(generation))
            );
        }
    }
}
