//! Test vectors: published ones (BIP39, libsession-util) and Allium's own,
//! which `docs/protocol.md` quotes.
//!
//! Allium's own vectors are computed from fixed inputs and compared with
//! the files in `tests/vectors/`. To regenerate them after a deliberate
//! format change, run `ALLIUM_WRITE_VECTORS=1 cargo test -p allium-common
//! --test vectors` and review the diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use allium_common::consensus::{
    Consensus, ConsensusParams, Schedule, SeedKey, SigningKeyCert, Vote, VoteEntry, compute, random,
};
use allium_common::content::Content;
use allium_common::devices::{
    DeviceRecord, DeviceSecret, KeyShare, RECORD_LABEL, SHARE_LABEL, ShareWindow, UnverifiedRecord, link_code,
};
use allium_common::encoding::{Base64Bytes, Hex32, Sig64, to_hex};
use allium_common::envelope;
use allium_common::envelope_v2;
use allium_common::files::{self, CHUNK_LEN, Decryptor, Encryptor, Manifest, RECORD_LEN};
use allium_common::group::GroupId;
use allium_common::group::keys::{GroupKeys, GroupKeysError, KEYS_LABEL};
use allium_common::group::message::{self, GroupMessageError};
use allium_common::keys::{AccountKeyPair, KeyBundle, UnverifiedKeyBundle};
use allium_common::mnemonic;
use allium_common::rpc::{self, Namespace};
use allium_common::sodium;
use allium_common::swarm::{SwarmRing, swarm_space_position};
use allium_common::{AccountId, Identity};
use serde_json::{Value, json};
use zeroize::Zeroizing;

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

/// Compares `computed` with the stored file, or writes it when asked to.
fn check_or_write(name: &str, computed: &Value) {
    let path = vector_path(name);
    let text = serde_json::to_string_pretty(computed).unwrap() + "\n";
    if std::env::var_os("ALLIUM_WRITE_VECTORS").is_some() {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(&stored, computed, "{name} differs from what the code computes");
}

fn seed32(byte: u8) -> [u8; 32] {
    [byte; 32]
}

#[test]
fn bip39_reference_vectors_with_passphrase_trezor() {
    let file: Value = serde_json::from_str(include_str!("vectors/bip39_english.json")).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), 24);
    for v in vectors {
        let (entropy, phrase, seed) = (v[0].as_str().unwrap(), v[1].as_str().unwrap(), v[2].as_str().unwrap());
        let m = bip39::Mnemonic::from_entropy(&hex::decode(entropy).unwrap()).unwrap();
        assert_eq!(m.to_string(), phrase);
        assert_eq!(hex::encode(m.to_seed("TREZOR")), seed);
        // Allium's Ed25519 seed is the first 32 bytes of the BIP39 seed.
        let ours = mnemonic::seed_from_phrase(phrase, "TREZOR").unwrap();
        assert_eq!(hex::encode(*ours), seed[..64]);
    }
}

/// Identity derivation: phrase → Ed25519 seed → keys → Account ID.
fn identity_vectors() -> Value {
    let phrases = [
        mnemonic::new_phrase(&[0u8; 32]).to_string(),
        mnemonic::new_phrase(&seed32(0x7f)).to_string(),
        "amaze buffet cake entrance symptoms tiger lamb maze nestle python dusted faxed faxed".to_string(),
    ];
    let entries: Vec<Value> = phrases
        .iter()
        .flat_map(|p| {
            let passphrases: &[&str] = if p.split(' ').count() == 13 {
                &[""]
            } else {
                &["", "TREZOR"]
            };
            passphrases.iter().map(move |pass| {
                let seed = mnemonic::seed_from_phrase(p, pass).unwrap();
                let id = Identity::from_ed25519_seed(&seed);
                json!({
                    "phrase": p,
                    "passphrase": pass,
                    "ed25519_seed": to_hex(&*seed),
                    "ed25519_pk": to_hex(id.ed25519_pk()),
                    "x25519_pk": to_hex(id.x25519_pk()),
                    "account_id": id.account_id().to_string(),
                })
            })
        })
        .collect();
    json!({ "identities": entries })
}

#[test]
fn identity_vectors_match() {
    check_or_write("identity.json", &identity_vectors());
}

/// Envelope v1 with a fixed ephemeral seed.
fn envelope_vectors() -> Value {
    let sender = Identity::from_ed25519_seed(&seed32(0xa1));
    let recipient = Identity::from_ed25519_seed(&seed32(0xb0));
    let content = Content::text("Hello from Allium", 1_700_000_000_000);
    let content_bytes = content.to_bytes();
    let padded = envelope::pad(&content_bytes);
    let data = envelope::seal(&sender, &recipient.account_id(), &content, &seed32(0xe5)).unwrap();
    let opened = envelope::open(&recipient, &data).unwrap();
    assert_eq!(opened.content, content);
    json!({
        "sender_ed25519_seed": to_hex(&seed32(0xa1)),
        "sender_account_id": sender.account_id().to_string(),
        "recipient_ed25519_seed": to_hex(&seed32(0xb0)),
        "recipient_account_id": recipient.account_id().to_string(),
        "ephemeral_seed": to_hex(&seed32(0xe5)),
        "content_json": String::from_utf8(content_bytes).unwrap(),
        "padded_hex": to_hex(&padded),
        "signature_hex": to_hex(&sender.sign(&[&padded[..], sender.ed25519_pk(), recipient.x25519_pk()].concat())),
        "envelope_hex": to_hex(&data),
    })
}

#[test]
fn envelope_vectors_match() {
    check_or_write("envelope.json", &envelope_vectors());
}

/// Creation time of the vector bundle, and when the vector envelope is sealed.
const BUNDLE_CREATED_MS: u64 = 1_700_000_000_000;
const SEALED_AT_MS: u64 = BUNDLE_CREATED_MS + 3_600_000;

/// The vector bundle's keys: (X-Wing seed, valid_from_ms, valid_until_ms).
/// The previous key (`c1…c1`, from 12 h before) and the current one
/// (`c2…c2`), each valid for 14 days.
const BUNDLE_KEYS: [(u8, u64, u64); 2] = [
    (
        0xc1,
        BUNDLE_CREATED_MS - 43_200_000,
        BUNDLE_CREATED_MS - 43_200_000 + 1_209_600_000,
    ),
    (0xc2, BUNDLE_CREATED_MS, BUNDLE_CREATED_MS + 1_209_600_000),
];

fn vector_bundle() -> KeyBundle {
    let owner = Identity::from_ed25519_seed(&seed32(0xb0));
    let keys = BUNDLE_KEYS
        .iter()
        .map(|&(seed, from, until)| AccountKeyPair::from_seed(&seed32(seed)).publish(from, until))
        .collect();
    KeyBundle::sign(&owner, BUNDLE_CREATED_MS, keys).unwrap()
}

/// The key bundle of the identity `b0…b0` (the v1 vector's recipient).
fn key_bundle_vectors() -> Value {
    let owner = Identity::from_ed25519_seed(&seed32(0xb0));
    let bundle = vector_bundle();
    let bytes = bundle.encode();
    assert_eq!(bytes.len(), 2_570);
    let verified = UnverifiedKeyBundle::decode(&bytes)
        .unwrap()
        .verify(&owner.account_id(), BUNDLE_CREATED_MS)
        .unwrap();
    assert_eq!(verified, bundle);
    let keys: Vec<Value> = BUNDLE_KEYS
        .iter()
        .map(|&(seed, from, until)| {
            let pair = AccountKeyPair::from_seed(&seed32(seed));
            json!({
                "xwing_seed": to_hex(&seed32(seed)),
                "valid_from_ms": from,
                "valid_until_ms": until,
                "xwing_pk_hex": to_hex(pair.public_key()),
                "key_id_hex": to_hex(&pair.key_id()),
            })
        })
        .collect();
    json!({
        "identity_ed25519_seed": to_hex(&seed32(0xb0)),
        "identity_ed25519_pk": to_hex(owner.ed25519_pk()),
        "account_id": owner.account_id().to_string(),
        "created_ms": BUNDLE_CREATED_MS,
        "keys": keys,
        "current_key_id_at": {
            "now_ms": SEALED_AT_MS,
            "key_id_hex": to_hex(&bundle.current_key(SEALED_AT_MS).unwrap().key_id()),
        },
        "signature_hex": to_hex(&bytes[bytes.len() - 64..]),
        "bundle_hex": to_hex(&bytes),
    })
}

#[test]
fn key_bundle_vectors_match() {
    check_or_write("key_bundle.json", &key_bundle_vectors());
}

#[test]
fn the_stored_bundle_verifies_and_encodes_back() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(vector_path("key_bundle.json")).unwrap()).unwrap();
    let bytes = hex::decode(file["bundle_hex"].as_str().unwrap()).unwrap();
    let account: AccountId = file["account_id"].as_str().unwrap().parse().unwrap();
    let bundle = UnverifiedKeyBundle::decode(&bytes)
        .unwrap()
        .verify(&account, file["created_ms"].as_u64().unwrap())
        .unwrap();
    assert_eq!(bundle.encode(), bytes);
    let current = bundle
        .current_key(file["current_key_id_at"]["now_ms"].as_u64().unwrap())
        .unwrap();
    assert_eq!(
        to_hex(&current.key_id()),
        file["current_key_id_at"]["key_id_hex"].as_str().unwrap()
    );
}

/// Envelope v2 from `a1…a1` to `b0…b0`, sealed to the bundle's current key
/// (`c2…c2`) with the encapsulation seed `e5…e5` (64 bytes), and its
/// intermediate values.
fn envelope_v2_vectors() -> Value {
    let sender = Identity::from_ed25519_seed(&seed32(0xa1));
    let recipient = Identity::from_ed25519_seed(&seed32(0xb0));
    let key = vector_bundle().current_key(SEALED_AT_MS).unwrap().clone();
    let kem_seed = [0xe5; 64];
    let content = Content::text("Hello from Allium", 1_700_000_000_000);
    let content_bytes = content.to_bytes();
    let padded = envelope::pad(&content_bytes);
    let data = envelope_v2::seal(&sender, &recipient.account_id(), &key, &content, &kem_seed).unwrap();
    // The intermediate values, computed from the primitives.
    let (ciphertext, shared) = sodium::xwing_enc_deterministic(&key.public_key, &kem_seed).unwrap();
    let header = [&[envelope_v2::ENVELOPE_V2][..], &key.key_id(), &ciphertext].concat();
    assert_eq!(&data[..envelope_v2::HEADER_LEN], &header[..]);
    let k: [u8; 32] = sodium::blake2b_keyed(&shared, &[envelope_v2::LABEL, &header]);
    let recipient_id = [&[0x05][..], recipient.x25519_pk()].concat();
    let signature = sender.sign(&[envelope_v2::LABEL, &recipient_id, &header, &padded].concat());
    let inner = [&sender.ed25519_pk()[..], &signature, &padded].concat();
    assert_eq!(
        &data[envelope_v2::HEADER_LEN..],
        &sodium::xchacha_encrypt(&k, &[0; 24], &inner, &header)[..]
    );
    let pair = AccountKeyPair::from_seed(&seed32(0xc2));
    let opened = envelope_v2::open(&recipient, |_| Some(pair.secret_key().clone()), &data).unwrap();
    assert_eq!(opened.content, content);
    assert_eq!(data.len(), 1_401);
    json!({
        "sender_ed25519_seed": to_hex(&seed32(0xa1)),
        "sender_account_id": sender.account_id().to_string(),
        "recipient_ed25519_seed": to_hex(&seed32(0xb0)),
        "recipient_account_id": recipient.account_id().to_string(),
        "recipient_xwing_seed": to_hex(&seed32(0xc2)),
        "key_id_hex": to_hex(&key.key_id()),
        "kem_seed_hex": to_hex(&kem_seed),
        "content_json": String::from_utf8(content_bytes).unwrap(),
        "padded_hex": to_hex(&padded),
        "shared_secret_hex": to_hex(&*shared),
        "message_key_hex": to_hex(&k),
        "signature_hex": to_hex(&signature),
        "envelope_hex": to_hex(&data),
    })
}

#[test]
fn envelope_v2_vectors_match() {
    check_or_write("envelope_v2.json", &envelope_v2_vectors());
}

#[test]
fn the_stored_envelope_v2_opens_with_the_stored_key_seed() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(vector_path("envelope_v2.json")).unwrap()).unwrap();
    let seed = |field: &str| -> [u8; 32] { hex::decode(file[field].as_str().unwrap()).unwrap().try_into().unwrap() };
    let recipient = Identity::from_ed25519_seed(&seed("recipient_ed25519_seed"));
    let pair = AccountKeyPair::from_seed(&seed("recipient_xwing_seed"));
    let data = hex::decode(file["envelope_hex"].as_str().unwrap()).unwrap();
    assert_eq!(
        to_hex(&envelope_v2::key_id_of(&data).unwrap()),
        file["key_id_hex"].as_str().unwrap()
    );
    let secret_for = |id: &[u8; 8]| (*id == pair.key_id()).then(|| pair.secret_key().clone());
    let opened = envelope_v2::open(&recipient, secret_for, &data).unwrap();
    assert_eq!(opened.sender.to_string(), file["sender_account_id"].as_str().unwrap());
    assert_eq!(
        String::from_utf8(opened.content.to_bytes()).unwrap(),
        file["content_json"].as_str().unwrap()
    );
}

/// When the vector laptop made its keys; the list and the share's window
/// follow it.
const DEVICE_CREATED_MS: u64 = 1_700_000_000_000;
const LIST_CREATED_MS: u64 = DEVICE_CREATED_MS + 60_000;
const SHARE_WINDOW: ShareWindow = ShareWindow {
    valid_from_ms: DEVICE_CREATED_MS,
    valid_until_ms: DEVICE_CREATED_MS + 1_209_600_000,
    rotate_at_ms: DEVICE_CREATED_MS + 43_200_000,
};

/// The two devices of the account `b0…b0`: the laptop (device key
/// `d1…d1`, X-Wing key `d2…d2`), new, and the phone (`d3…d3`, `d4…d4`),
/// linked 30 days before.
fn vector_devices() -> [DeviceSecret; 2] {
    [
        DeviceSecret::from_seeds(&seed32(0xd1), &seed32(0xd2), "laptop", DEVICE_CREATED_MS),
        DeviceSecret::from_seeds(
            &seed32(0xd3),
            &seed32(0xd4),
            "phone",
            DEVICE_CREATED_MS - 30 * 86_400_000,
        ),
    ]
}

/// Linking a device: the laptop's link request and its link code; the
/// phone's list of both; the phone's share of the account key `c2…c2`
/// (the key bundle vector's current key) to the laptop, with the
/// encapsulation seed `e7…e7` (64 bytes), and its intermediate values.
fn device_vectors() -> Value {
    let owner = Identity::from_ed25519_seed(&seed32(0xb0));
    let account = owner.account_id();
    let [laptop, phone] = vector_devices();
    let request = DeviceRecord::LinkRequest(laptop.keys().clone())
        .sign(&laptop, &account)
        .unwrap();
    let list = DeviceRecord::List {
        created_ms: LIST_CREATED_MS,
        devices: vec![phone.keys().clone(), laptop.keys().clone()],
    }
    .sign(&phone, &account)
    .unwrap();
    let pair = AccountKeyPair::from_seed(&seed32(0xc2));
    let kem_seed = [0xe7; 64];
    let share = KeyShare::seal(&account, laptop.keys(), &pair, SHARE_WINDOW, &kem_seed).unwrap();
    let share_record = DeviceRecord::Share(share.clone()).sign(&phone, &account).unwrap();
    // The share's intermediate values, computed from the primitives.
    let (ciphertext, shared) = sodium::xwing_enc_deterministic(&laptop.keys().xwing_pk, &kem_seed).unwrap();
    let head = [
        &laptop.keys().sign_pk[..],
        &pair.key_id(),
        &SHARE_WINDOW.valid_from_ms.to_be_bytes(),
        &SHARE_WINDOW.valid_until_ms.to_be_bytes(),
        &SHARE_WINDOW.rotate_at_ms.to_be_bytes(),
        &ciphertext,
    ]
    .concat();
    let account_bytes = [&[0x05][..], account.x25519()].concat();
    let info = [SHARE_LABEL, &account_bytes, &head].concat();
    let k: [u8; 32] = sodium::blake2b_keyed(&shared, &[&info]);
    let sealed = sodium::xchacha_encrypt(&k, &[0; 24], pair.secret_key().as_slice(), &info);
    assert_eq!(&share_record[2..2 + 1_232], &[&head[..], &sealed].concat()[..]);
    // Each record's signature, from the primitives; each verifies.
    for (bytes, signer) in [(&request, &laptop), (&list, &phone), (&share_record, &phone)] {
        let (unsigned, signature) = bytes.split_at(bytes.len() - 64);
        let signed = [RECORD_LABEL, &account_bytes, unsigned].concat();
        let signature: [u8; 64] = signature.try_into().unwrap();
        assert!(sodium::sign_verify_detached(
            &signature,
            &signed,
            &signer.keys().sign_pk
        ));
        let verified = UnverifiedRecord::decode(bytes).unwrap().verify(&account).unwrap();
        assert_eq!(verified.signer, signer.keys().sign_pk);
    }
    assert_eq!(share.open(&account, &laptop).unwrap().key_id(), pair.key_id());
    let device = |d: &DeviceSecret| {
        json!({
            "name": d.keys().name(),
            "created_ms": d.keys().created_ms,
            "sign_seed": to_hex(d.sign_seed()),
            "xwing_seed": to_hex(d.xwing_secret().as_slice()),
            "sign_pk_hex": to_hex(&d.keys().sign_pk),
            "xwing_pk_hex": to_hex(&d.keys().xwing_pk),
            "device_id_hex": to_hex(&d.keys().id()),
        })
    };
    json!({
        "account_ed25519_seed": to_hex(&seed32(0xb0)),
        "account_id": account.to_string(),
        "laptop": device(&laptop),
        "phone": device(&phone),
        "link_request": {
            "signer": "laptop",
            "record_hex": to_hex(&request),
        },
        "link_code": link_code(&account, laptop.keys()),
        "list": {
            "signer": "phone",
            "created_ms": LIST_CREATED_MS,
            "devices": ["phone", "laptop"],
            "record_hex": to_hex(&list),
        },
        "share": {
            "signer": "phone",
            "to": "laptop",
            "account_key_xwing_seed": to_hex(&seed32(0xc2)),
            "key_id_hex": to_hex(&pair.key_id()),
            "valid_from_ms": SHARE_WINDOW.valid_from_ms,
            "valid_until_ms": SHARE_WINDOW.valid_until_ms,
            "rotate_at_ms": SHARE_WINDOW.rotate_at_ms,
            "kem_seed_hex": to_hex(&kem_seed),
            "shared_secret_hex": to_hex(&*shared),
            "share_key_hex": to_hex(&k),
            "record_hex": to_hex(&share_record),
        },
    })
}

#[test]
fn device_vectors_match() {
    check_or_write("devices.json", &device_vectors());
}

#[test]
fn the_stored_device_records_verify_and_the_share_opens() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(vector_path("devices.json")).unwrap()).unwrap();
    let seed = |v: &Value| -> [u8; 32] { hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap() };
    let device = |v: &Value| {
        DeviceSecret::from_seeds(
            &seed(&v["sign_seed"]),
            &seed(&v["xwing_seed"]),
            v["name"].as_str().unwrap(),
            v["created_ms"].as_u64().unwrap(),
        )
    };
    let (laptop, phone) = (device(&file["laptop"]), device(&file["phone"]));
    for (d, v) in [(&laptop, &file["laptop"]), (&phone, &file["phone"])] {
        assert_eq!(to_hex(&d.keys().sign_pk), v["sign_pk_hex"].as_str().unwrap());
        assert_eq!(to_hex(&d.keys().xwing_pk), v["xwing_pk_hex"].as_str().unwrap());
        assert_eq!(to_hex(&d.keys().id()), v["device_id_hex"].as_str().unwrap());
    }
    let account: AccountId = file["account_id"].as_str().unwrap().parse().unwrap();
    let read = |field: &str| {
        let bytes = hex::decode(file[field]["record_hex"].as_str().unwrap()).unwrap();
        let unverified = UnverifiedRecord::decode(&bytes).unwrap();
        assert_eq!(unverified.to_bytes(), bytes, "{field}");
        unverified.verify(&account).unwrap()
    };

    let request = read("link_request");
    assert_eq!(request.signer, laptop.keys().sign_pk);
    assert_eq!(request.record, DeviceRecord::LinkRequest(laptop.keys().clone()));
    assert_eq!(
        u64::from(link_code(&account, laptop.keys())),
        file["link_code"].as_u64().unwrap()
    );

    let list = read("list");
    assert_eq!(list.signer, phone.keys().sign_pk);
    assert_eq!(
        list.record,
        DeviceRecord::List {
            created_ms: file["list"]["created_ms"].as_u64().unwrap(),
            devices: vec![phone.keys().clone(), laptop.keys().clone()],
        }
    );

    let shared = read("share");
    assert_eq!(shared.signer, phone.keys().sign_pk);
    let DeviceRecord::Share(share) = shared.record else {
        panic!("the share vector is not a share")
    };
    let v = &file["share"];
    assert_eq!(share.to, laptop.keys().sign_pk);
    assert_eq!(to_hex(&share.key_id), v["key_id_hex"].as_str().unwrap());
    assert_eq!(
        share.window,
        ShareWindow {
            valid_from_ms: v["valid_from_ms"].as_u64().unwrap(),
            valid_until_ms: v["valid_until_ms"].as_u64().unwrap(),
            rotate_at_ms: v["rotate_at_ms"].as_u64().unwrap(),
        }
    );
    let pair = share.open(&account, &laptop).unwrap();
    let expected = AccountKeyPair::from_seed(&seed(&v["account_key_xwing_seed"]));
    assert_eq!(pair.key_id(), expected.key_id());
    assert_eq!(pair.public_key(), expected.public_key());
    assert_eq!(pair.secret_key().as_slice(), expected.secret_key().as_slice());
    assert!(share.open(&account, &phone).is_err(), "the share is the laptop's");
}

/// The vector group: its key is the identity `91…91`; its members are the
/// accounts `a1…a1`, `b1…b1` and `c1…c1`; generation 7 has the key
/// `4b…4b`.
const GROUP_GENERATION: u32 = 7;
const GROUP_MEMBER_SEEDS: [u8; 3] = [0xa1, 0xb1, 0xc1];

/// The key message of generation 7 to the three members (ephemeral seed
/// `05…05`, padding seed `06…06`) and a group message from `a1…a1` under
/// that generation's key (nonce `07…07`, 24 bytes), each with its
/// intermediate values, both recomputed from the primitives.
fn group_vectors() -> Value {
    let group_key = Identity::from_ed25519_seed(&seed32(0x91));
    let group = GroupId::from_ed25519(*group_key.ed25519_pk());
    let members: Vec<Identity> = GROUP_MEMBER_SEEDS
        .iter()
        .map(|&b| Identity::from_ed25519_seed(&seed32(b)))
        .collect();
    let public: Vec<[u8; 32]> = members.iter().map(|m| *m.x25519_pk()).collect();
    let key = seed32(0x4b);
    let generation = GROUP_GENERATION.to_be_bytes();
    let bytes = GroupKeys::seal(
        &group_key,
        GROUP_GENERATION,
        &key,
        &public,
        &seed32(0x05),
        &seed32(0x06),
    )
    .unwrap();
    assert_eq!(bytes.len(), 1 + 33 + 4 + 32 + 2 + 75 * 48 + 64);
    // The key message again, from the primitives: each member's entry,
    // 72 padding entries, all in increasing order, then the signature.
    let label: &[u8] = b"allium-group-keys-v1\0";
    assert_eq!(label, KEYS_LABEL);
    let (eph_pk, eph_sk) = sodium::box_seed_keypair(&seed32(0x05));
    let ad = [&group.to_bytes()[..], &generation].concat();
    let entry_keys: Vec<[u8; 32]> = public
        .iter()
        .map(|pk| {
            let shared = sodium::x25519(&eph_sk, pk).unwrap();
            sodium::blake2b_keyed(&shared, &[label, &group.to_bytes(), &generation, &eph_pk, pk])
        })
        .collect();
    let member_entries: Vec<Vec<u8>> = entry_keys
        .iter()
        .map(|k| sodium::xchacha_encrypt(k, &[0; 24], &key, &ad))
        .collect();
    let mut entries = member_entries.clone();
    entries.extend((0u32..72).map(|i| sodium::blake2b_keyed::<48>(&seed32(0x06), &[&i.to_be_bytes()]).to_vec()));
    entries.sort();
    let head = [
        &[0x01][..],
        &group.to_bytes(),
        &generation,
        &eph_pk,
        &75u16.to_be_bytes(),
    ]
    .concat();
    let unsigned = [head, entries.concat()].concat();
    let keys_signature = group_key.sign(&[label, &unsigned].concat());
    assert_eq!(bytes, [&unsigned[..], &keys_signature].concat());
    let decoded = GroupKeys::decode(&bytes, &group).unwrap();
    for m in &members {
        assert_eq!(*decoded.open(m.x25519_sk(), m.x25519_pk()).unwrap(), key);
    }

    let sender = &members[0];
    let content = Content::text("Hello, group", 1_700_000_000_000);
    let content_bytes = content.to_bytes();
    let padded = envelope::pad(&content_bytes);
    let nonce = [0x07; 24];
    let data = message::seal(sender, &group, GROUP_GENERATION, &key, &content, &nonce).unwrap();
    // The group message again, from the primitives.
    let message_label: &[u8] = b"allium-group-message-v1\0";
    assert_eq!(message_label, message::MESSAGE_LABEL);
    let message_signature = sender.sign(&[message_label, &group.to_bytes(), &generation, &padded].concat());
    let inner = [&sender.ed25519_pk()[..], &message_signature, &padded].concat();
    let sealed = sodium::xchacha_encrypt(&key, &nonce, &inner, &ad);
    assert_eq!(data, [&[0x01][..], &generation, &nonce, &sealed].concat());
    let key_for = |g: u32| (g == GROUP_GENERATION).then(|| Zeroizing::new(key));
    let opened = message::open(&group, key_for, &data).unwrap();
    assert_eq!(opened.sender, sender.account_id());
    assert_eq!(opened.content, content);

    let member_rows: Vec<Value> = members
        .iter()
        .zip(&GROUP_MEMBER_SEEDS)
        .zip(entry_keys.iter().zip(&member_entries))
        .map(|((m, &b), (k, entry))| {
            json!({
                "ed25519_seed": to_hex(&seed32(b)),
                "account_id": m.account_id().to_string(),
                "x25519_pk_hex": to_hex(m.x25519_pk()),
                "entry_key_hex": to_hex(k),
                "entry_hex": to_hex(entry),
            })
        })
        .collect();
    json!({
        "group_ed25519_seed": to_hex(&seed32(0x91)),
        "group_ed25519_pk": to_hex(group_key.ed25519_pk()),
        "group_id": group.to_string(),
        "generation": GROUP_GENERATION,
        "generation_key_hex": to_hex(&key),
        "members": member_rows,
        "key_message": {
            "eph_seed": to_hex(&seed32(0x05)),
            "eph_x25519_pk_hex": to_hex(&eph_pk),
            "pad_seed": to_hex(&seed32(0x06)),
            "entries": entries.len(),
            "len": bytes.len(),
            "signature_hex": to_hex(&keys_signature),
            "hex": to_hex(&bytes),
        },
        "message": {
            "sender": "a1".repeat(32),
            "sender_account_id": sender.account_id().to_string(),
            "content_json": String::from_utf8(content_bytes).unwrap(),
            "nonce_hex": to_hex(&nonce),
            "padded_hex": to_hex(&padded),
            "signature_hex": to_hex(&message_signature),
            "len": data.len(),
            "hex": to_hex(&data),
        },
    })
}

#[test]
fn group_vectors_match() {
    check_or_write("group.json", &group_vectors());
}

#[test]
fn the_stored_key_message_opens_for_each_member_and_the_group_message_to_its_sender() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(vector_path("group.json")).unwrap()).unwrap();
    let seed = |v: &Value| -> [u8; 32] { hex::decode(v.as_str().unwrap()).unwrap().try_into().unwrap() };
    let group: GroupId = file["group_id"].as_str().unwrap().parse().unwrap();
    let group_key = Identity::from_ed25519_seed(&seed(&file["group_ed25519_seed"]));
    assert_eq!(group, GroupId::from_ed25519(*group_key.ed25519_pk()));
    let generation = u32::try_from(file["generation"].as_u64().unwrap()).unwrap();
    let key = seed(&file["generation_key_hex"]);

    // The numbers, computed independently: three members take one block
    // of 75 entries of 48 bytes.
    let v = &file["key_message"];
    let bytes = hex::decode(v["hex"].as_str().unwrap()).unwrap();
    assert_eq!(v["entries"].as_u64().unwrap(), 75);
    assert_eq!(bytes.len(), 1 + 33 + 4 + 32 + 2 + 75 * 48 + 64);
    assert_eq!(v["len"].as_u64().unwrap(), 3_736);
    assert_eq!(bytes[0], 0x01);
    assert_eq!(&bytes[1..34], &group.to_bytes());
    assert_eq!(bytes[34..38], generation.to_be_bytes());
    assert_eq!(to_hex(&bytes[38..70]), v["eph_x25519_pk_hex"].as_str().unwrap());
    assert_eq!(bytes[70..72], 75u16.to_be_bytes());
    assert_eq!(to_hex(&bytes[bytes.len() - 64..]), v["signature_hex"].as_str().unwrap());

    let keys = GroupKeys::decode(&bytes, &group).unwrap();
    assert_eq!((keys.generation, keys.entries()), (generation, 75));
    let members = file["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    let entries: Vec<String> = bytes[72..72 + 75 * 48].chunks(48).map(to_hex).collect();
    let mut sorted = entries.clone();
    sorted.sort();
    assert_eq!(entries, sorted, "entries in increasing order");
    for m in members {
        let member = Identity::from_ed25519_seed(&seed(&m["ed25519_seed"]));
        assert_eq!(member.account_id().to_string(), m["account_id"].as_str().unwrap());
        assert_eq!(to_hex(member.x25519_pk()), m["x25519_pk_hex"].as_str().unwrap());
        assert!(entries.iter().any(|e| e == m["entry_hex"].as_str().unwrap()));
        assert_eq!(*keys.open(member.x25519_sk(), member.x25519_pk()).unwrap(), key);
    }
    let outsider = Identity::from_ed25519_seed(&seed32(0xd1));
    assert_eq!(
        keys.open(outsider.x25519_sk(), outsider.x25519_pk()),
        Err(GroupKeysError::NotAMember)
    );

    let v = &file["message"];
    let data = hex::decode(v["hex"].as_str().unwrap()).unwrap();
    let content_json = v["content_json"].as_str().unwrap();
    // 1 + 4 + 24 + 16 (tag) + 32 + 64, then the content padded to 160s.
    assert_eq!(data.len(), 141 + (content_json.len() / 160 + 1) * 160);
    assert_eq!(v["len"].as_u64().unwrap(), 301);
    assert_eq!(message::generation_of(&data), Some(generation));
    assert_eq!(to_hex(&data[5..29]), v["nonce_hex"].as_str().unwrap());
    let key_for = |g: u32| (g == generation).then(|| Zeroizing::new(key));
    let opened = message::open(&group, key_for, &data).unwrap();
    assert_eq!(opened.sender.to_string(), v["sender_account_id"].as_str().unwrap());
    assert_eq!(
        opened.sender,
        Identity::from_ed25519_seed(&seed(&v["sender"])).account_id()
    );
    assert_eq!(opened.generation, generation);
    assert_eq!(String::from_utf8(opened.content.to_bytes()).unwrap(), content_json);
    assert_eq!(
        message::open(&group, |_| None, &data),
        Err(GroupMessageError::UnknownGeneration(generation))
    );
}

/// Signed strings, signatures and message hashes of the storage RPC.
fn rpc_vectors() -> Value {
    let owner = Identity::from_ed25519_seed(&seed32(0x11));
    let account = owner.account_id();
    let ts = 1_700_000_000_000u64;
    let data = b"example envelope bytes";
    let h0 = rpc::message_hash(&account.into(), Namespace(0), data);
    let h5 = rpc::message_hash(&account.into(), Namespace(-5), data);
    let hashes = vec![h0.clone(), h5.clone()];
    let signed = [
        ("retrieve", rpc::retrieve_signed_bytes(Namespace(0), ts)),
        ("retrieve_ns_-5", rpc::retrieve_signed_bytes(Namespace(-5), ts)),
        (
            "store_ns_3",
            rpc::store_signed_bytes(
                Namespace(3),
                ts,
                &rpc::message_hash(&account.into(), Namespace(3), data),
            ),
        ),
        ("delete", rpc::delete_signed_bytes(ts, &hashes)),
        ("delete_all", rpc::delete_all_signed_bytes(Namespace(0), ts)),
        ("expire", rpc::expire_signed_bytes(ts, ts + 3_600_000, &hashes)),
    ];
    let sigs: Vec<Value> = signed
        .iter()
        .map(|(name, bytes)| {
            json!({
                "name": name,
                "string": String::from_utf8(bytes.clone()).unwrap(),
                "signature_base64": allium_common::encoding::to_base64(&owner.sign(bytes)),
            })
        })
        .collect();
    let retrieve = rpc::Call::Retrieve(rpc::RetrieveParams {
        pubkey: account.into(),
        pubkey_ed25519: Hex32(*owner.ed25519_pk()),
        namespace: Namespace(0),
        timestamp: ts,
        signature: Sig64(owner.sign(&rpc::retrieve_signed_bytes(Namespace(0), ts))),
        last_hash: Some(h0.clone()),
        max_count: Some(100),
        max_size: None,
        wait_ms: Some(20_000),
        credential: None,
    });
    assert_eq!(retrieve.validate(ts), Ok(()));
    let store = rpc::Call::Store(rpc::StoreParams {
        chunk: None,
        pubkey: account.into(),
        namespace: Namespace(0),
        timestamp: ts,
        ttl: 14 * 24 * 3_600_000,
        data: Base64Bytes(data.to_vec()),
        pubkey_ed25519: None,
        signature: None,
        credential: None,
    });
    json!({
        "owner_ed25519_seed": to_hex(&seed32(0x11)),
        "owner_ed25519_pk": to_hex(owner.ed25519_pk()),
        "account_id": account.to_string(),
        "timestamp_ms": ts,
        "data_utf8": String::from_utf8(data.to_vec()).unwrap(),
        "message_hash_ns_0": h0,
        "message_hash_ns_-5": h5,
        "signatures": sigs,
        "retrieve_request": retrieve.to_json(),
        "store_request": store.to_json(),
    })
}

#[test]
fn rpc_vectors_match() {
    check_or_write("rpc.json", &rpc_vectors());
}

/// Three seeds vote on four nodes for one period; the consensus lists the
/// three that a majority saw, and two seeds sign it.
fn consensus_vectors() -> Value {
    let seeds: Vec<Identity> = [0xe1u8, 0xe2, 0xe3]
        .iter()
        .map(|&b| Identity::from_ed25519_seed(&seed32(b)))
        .collect();
    let keys: Vec<[u8; 32]> = seeds.iter().map(|s| *s.ed25519_pk()).collect();
    let entry = |s: u8, swarm_id: Option<u64>| {
        let id = Identity::from_ed25519_seed(&seed32(s));
        VoteEntry {
            ed25519: Hex32(*id.ed25519_pk()),
            x25519: Hex32(*id.x25519_pk()),
            // Each in a /16 of its own, as a swarm needs.
            address: format!("198.{}.0.1:{}", 50 + u16::from(s), 22_000 + u16::from(s)),
            version: "0.1.0".into(),
            swarm_id,
            // Node 1 has been known for about eleven days (a guard), the
            // others for about eight hours.
            first_seen: if s == 1 {
                1_699_000_000_000
            } else {
                1_700_000_000_000 + u64::from(s)
            },
        }
    };
    let schedule = Schedule::new(300_000);
    let period = 5_666_767;
    let views: [&[(u8, Option<u64>)]; 3] = [
        &[(1, Some(1 << 62)), (2, Some(1 << 62)), (3, None), (4, None)],
        &[(1, Some(1 << 62)), (2, Some(1 << 62)), (3, None)],
        &[(1, Some(1 << 62)), (2, None)],
    ];
    let votes: Vec<Vote> = views
        .iter()
        .zip(&seeds)
        .zip(0u8..)
        .map(|((view, seed), i)| {
            let nodes = view.iter().map(|&(s, swarm)| entry(s, swarm)).collect();
            let published = schedule.vote_at(period);
            Vote::sign(
                period,
                300_000,
                published,
                vec![1],
                ConsensusParams::default(),
                nodes,
                seed,
            )
            .unwrap()
            // Commit a0…, a1…, a2… and reveal b0…, b1…, b2… (no earlier
            // consensus recorded a commit to them: they do not count).
            .with_shared_random(random::commit_of(&seed32(0xa0 + i)), Some(seed32(0xb0 + i)), seed)
        })
        .collect();
    let mut consensus = compute(&votes, &keys, &schedule, period).unwrap();
    let digest = consensus.digest();
    for seed in [&seeds[0], &seeds[2]] {
        consensus.add_signature(Consensus::signature_by(seed, &digest));
    }
    // Seed e2 keeps its identity offline: signing key e4…e4, certified for
    // 90 days from a day before the period.
    let signing = Identity::from_ed25519_seed(&seed32(0xe4));
    let valid_after = period * 300_000;
    let cert = SigningKeyCert::issue(
        &seeds[1],
        *signing.ed25519_pk(),
        valid_after - 86_400_000,
        valid_after + 89 * 86_400_000,
    );
    consensus.add_signature(Consensus::signature_by(
        SeedKey {
            key: &signing,
            cert: Some(&cert),
        },
        &digest,
    ));
    json!({
        "seed_key_cert": {
            "signing_ed25519_seed": "e4".repeat(32),
            "cert": serde_json::to_value(&cert).unwrap(),
            "signed_bytes_hex": to_hex(&cert.signed_bytes()),
            "binary_hex": to_hex(&cert.to_binary()),
        },
        "seed_ed25519_seeds": (["e1", "e2", "e3"].map(|b| b.repeat(32))),
        "votes": votes.iter().map(|v| json!({
            "signed_bytes_hex": to_hex(&v.signed_bytes()),
            "vote": serde_json::to_value(v).unwrap(),
        })).collect::<Vec<_>>(),
        "consensus_signed_bytes_hex": to_hex(&consensus.signed_bytes()),
        "consensus_digest_hex": to_hex(&digest),
        "consensus": serde_json::to_value(&consensus).unwrap(),
    })
}

#[test]
fn consensus_vectors_match() {
    check_or_write("consensus.json", &consensus_vectors());
}

#[test]
fn stored_consensus_verifies_and_a_flipped_bit_does_not() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(vector_path("consensus.json")).unwrap()).unwrap();
    let keys: Vec<[u8; 32]> = [0xe1u8, 0xe2, 0xe3]
        .iter()
        .map(|&b| *Identity::from_ed25519_seed(&seed32(b)).ed25519_pk())
        .collect();
    let consensus = Consensus::from_value(file["consensus"].clone()).unwrap();
    let now = 5_666_767 * 300_000;
    assert_eq!(
        consensus.clone().into_unchecked().valid_signers(&keys).len(),
        3,
        "two identities and one certified key"
    );
    assert!(consensus.clone().verify(&keys, now).is_ok());
    let mut tampered = file["consensus"].clone();
    tampered["nodes"][0]["swarm_id"] = json!(1);
    let tampered = Consensus::from_value(tampered).unwrap();
    assert!(tampered.verify(&keys, now).is_err());
}

/// Swarm mapping for a few accounts on a fixed ring.
fn swarm_vectors() -> Value {
    let ring_ids = [0x1000_0000_0000_0000u64, 0x8000_0000_0000_0000, 0xf000_0000_0000_0000];
    let ring = SwarmRing::new(ring_ids);
    let accounts: Vec<AccountId> = [
        "05d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72"
            .parse::<AccountId>()
            .unwrap(),
        Identity::from_ed25519_seed(&seed32(0x01)).account_id(),
        Identity::from_ed25519_seed(&seed32(0x02)).account_id(),
        Identity::from_ed25519_seed(&seed32(0x03)).account_id(),
    ]
    .into();
    let rows: Vec<Value> = accounts
        .iter()
        .map(|a| {
            json!({
                "account_id": a.to_string(),
                "position_hex": format!("{:016x}", swarm_space_position(a)),
                "swarm_id_hex": format!("{:016x}", ring.swarm_of(a).unwrap()),
            })
        })
        .collect();
    json!({
        "ring_hex": ring_ids.iter().map(|i| format!("{i:016x}")).collect::<Vec<_>>(),
        "accounts": rows,
    })
}

#[test]
fn swarm_vectors_match() {
    check_or_write("swarm.json", &swarm_vectors());
}

/// An account state of two entries, sealed for namespace 3 (contacts) of
/// the identity with seed `07…07`, with the nonce `24…24`.
fn account_state_vectors() -> Value {
    use allium_common::account::{AccountState, Stamp, sealed};
    let identity = Identity::from_ed25519_seed(&seed32(0x07));
    let mut state = AccountState::default();
    let phone = Stamp {
        at: 1_700_000_000_000,
        device: [0x11; 16],
    };
    state.set("profile/name", json!("Ann"), phone);
    state.set(
        &format!(
            "contact/{}/nickname",
            Identity::from_ed25519_seed(&seed32(0x08)).account_id()
        ),
        json!("Bo"),
        Stamp {
            at: 1_700_000_000_500,
            device: [0x22; 16],
        },
    );
    let encoded = state.encode().unwrap();
    let namespace = Namespace(3);
    let sealed = sealed::seal_with_nonce(&identity, namespace, &encoded, &[0x24; 24]).unwrap();
    json!({
        "identity_ed25519_seed": "07".repeat(32),
        "namespace": 3,
        "state_key_hex": to_hex(&*sealed::state_key(&identity, namespace)),
        "state": serde_json::to_value(&state).unwrap(),
        "encoded_utf8": String::from_utf8(encoded).unwrap(),
        "nonce_hex": "24".repeat(24),
        "sealed_hex": to_hex(&sealed),
    })
}

#[test]
fn account_state_vectors_match() {
    check_or_write("account_state.json", &account_state_vectors());
}

#[test]
fn the_stored_sealed_state_opens_to_the_stored_encoding() {
    use allium_common::account::{AccountState, sealed};
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(vector_path("account_state.json")).unwrap()).unwrap();
    let identity = Identity::from_ed25519_seed(&seed32(0x07));
    let bytes = hex::decode(file["sealed_hex"].as_str().unwrap()).unwrap();
    let opened = sealed::open(&identity, Namespace(3), &bytes).unwrap();
    assert_eq!(&opened[..], file["encoded_utf8"].as_str().unwrap().as_bytes());
    let state = AccountState::decode(&opened).unwrap();
    assert_eq!(state.get("profile/name"), Some(&json!("Ann")));
}

/// One content of each kind as the client writes it (text with a profile
/// and a disappearing rule, the four control kinds, a copy of a sent
/// message), and that copy sealed by the identity with seed `07…07` to
/// itself with the ephemeral seed `e7…e7`.
fn content_vectors() -> Value {
    use allium_common::content::{Content, Disappear, DisappearAfter, Kind, Profile, Receipt, SentCopy};
    use allium_common::envelope;
    let ts = 1_700_000_000_000;
    let hash = "XVNUpBFM0gOlFNgZtSP39mVbWASVbebdX3EzIjSaM7k".to_owned();
    let me = Identity::from_ed25519_seed(&seed32(0x07));
    let bob = Identity::from_ed25519_seed(&seed32(0x08)).account_id();
    let mut text = Content::text("hi", ts);
    text.profile = Some(Profile {
        name: Some("Ann".into()),
        avatar: None,
    });
    text.disappear = Some(Disappear {
        after: DisappearAfter::Read,
        ms: 86_400_000,
    });
    let accept = Content {
        profile: text.profile.clone(),
        ..Content::control(Kind::Accept, ts)
    };
    let disappear = Content {
        disappear: Some(Disappear {
            after: DisappearAfter::Send,
            ms: 3_600_000,
        }),
        ..Content::control(Kind::Disappear, ts)
    };
    let receipt = Content {
        receipt: Some(Receipt {
            status: "read".into(),
            timestamps: Vec::new(),
            hashes: vec![hash.clone()],
        }),
        ..Content::control(Kind::Receipt, ts)
    };
    let unsend = Content {
        unsend: Some(hash.clone()),
        ..Content::control(Kind::Unsend, ts)
    };
    let mut copy = Content::text("hello bob", ts);
    copy.sent = Some(SentCopy {
        to: bob.to_string(),
        hash,
    });
    let sealed = envelope::seal(&me, &me.account_id(), &copy, &seed32(0xe7)).unwrap();
    let text_of = |c: &Content| String::from_utf8(c.to_bytes()).unwrap();
    json!({
        "text": text_of(&text),
        "accept": text_of(&accept),
        "disappear": text_of(&disappear),
        "receipt": text_of(&receipt),
        "unsend": text_of(&unsend),
        "sent_copy": text_of(&copy),
        "sent_copy_sender_ed25519_seed": "07".repeat(32),
        "sent_copy_ephemeral_seed": "e7".repeat(32),
        "sent_copy_envelope_hex": to_hex(&sealed),
    })
}

#[test]
fn content_vectors_match() {
    check_or_write("content.json", &content_vectors());
}

#[test]
fn stored_contents_read_back_byte_for_byte() {
    use allium_common::content::Content;
    let file: Value = serde_json::from_str(&std::fs::read_to_string(vector_path("content.json")).unwrap()).unwrap();
    for kind in ["text", "accept", "disappear", "receipt", "unsend", "sent_copy"] {
        let text = file[kind].as_str().unwrap();
        let content = Content::from_bytes(text.as_bytes()).unwrap();
        assert_eq!(String::from_utf8(content.to_bytes()).unwrap(), text, "{kind}");
    }
    let me = Identity::from_ed25519_seed(&seed32(0x07));
    let sealed = hex::decode(file["sent_copy_envelope_hex"].as_str().unwrap()).unwrap();
    let opened = allium_common::envelope::open(&me, &sealed).unwrap();
    assert_eq!(opened.sender, me.account_id(), "a copy is from the account itself");
    assert_eq!(
        String::from_utf8(opened.content.to_bytes()).unwrap(),
        file["sent_copy"].as_str().unwrap()
    );
}

/// A 70,000-byte file (byte `i` is `7i + i / 251` mod 256) under key `5f…5f`
/// and header `3c…3c`: two chunks of 65,553 bytes, given by their BLAKE2b-256
/// and first 48 bytes; chunk IDs of upload key `21…21`; the manifest.
fn files_vectors() -> Value {
    let size = 70_000usize;
    let plaintext: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
    let key = seed32(0x5f);
    let header = [0x3c; 24];
    let mut enc = Encryptor::new(&key, &header, size as u64).unwrap();
    let chunks: Vec<Vec<u8>> = plaintext.chunks(RECORD_LEN).map(|p| enc.push(p).unwrap()).collect();
    assert_eq!(chunks.len(), 2);
    assert!(chunks.iter().all(|c| c.len() == CHUNK_LEN));
    let upload_pk = seed32(0x21);
    let manifest = Manifest {
        key: Zeroizing::new(key),
        header,
        upload_pk,
        size: size as u64,
        digest: files::digest(&plaintext),
        name: "vector.bin".into(),
        content_type: "application/octet-stream".into(),
    };
    json!({
        "key_hex": hex::encode(key),
        "header_hex": hex::encode(header),
        "size": size,
        "plaintext_blake2b256": hex::encode(files::digest(&plaintext)),
        "chunks": chunks.iter().map(|c| json!({
            "len": c.len(),
            "blake2b256": hex::encode(sodium::blake2b::<32>(&[c])),
            "head_hex": hex::encode(&c[..48]),
        })).collect::<Vec<_>>(),
        "upload_pk_hex": hex::encode(upload_pk),
        "chunk_ids": (0..3u32).map(|i| hex::encode(files::chunk_id(&upload_pk, i))).collect::<Vec<_>>(),
        "manifest": manifest.to_json(),
    })
}

#[test]
fn files_vectors_match() {
    check_or_write("files.json", &files_vectors());
}

#[test]
fn the_stored_file_vector_decrypts_to_its_digest() {
    let file: Value = serde_json::from_str(&std::fs::read_to_string(vector_path("files.json")).unwrap()).unwrap();
    let manifest = Manifest::from_json(&file["manifest"]).unwrap();
    assert_eq!(manifest.chunks(), 2);
    // The chunk IDs, from the primitive.
    let label: &[u8] = b"allium-file-chunk-v1\0";
    for (i, id) in file["chunk_ids"].as_array().unwrap().iter().enumerate() {
        let expected: [u8; 32] = sodium::blake2b(&[label, &manifest.upload_pk, &(i as u32).to_be_bytes()]);
        assert_eq!(id.as_str().unwrap(), hex::encode(expected));
    }
    // Re-encrypting with the manifest's key and header gives the stored
    // chunks, and they decrypt to the stored digest.
    let size = usize::try_from(manifest.size).unwrap();
    let plaintext: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
    let mut enc = Encryptor::new(&manifest.key, &manifest.header, manifest.size).unwrap();
    let mut dec = Decryptor::new(&manifest.key, &manifest.header, manifest.size).unwrap();
    let mut out = Vec::new();
    for (piece, v) in plaintext.chunks(RECORD_LEN).zip(file["chunks"].as_array().unwrap()) {
        let chunk = enc.push(piece).unwrap();
        assert_eq!(
            v["blake2b256"].as_str().unwrap(),
            hex::encode(sodium::blake2b::<32>(&[&chunk]))
        );
        out.extend_from_slice(&dec.pull(&chunk).unwrap());
    }
    assert!(dec.is_done());
    assert_eq!(files::digest(&out), manifest.digest);
}
