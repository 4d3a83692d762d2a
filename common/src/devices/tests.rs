//! Device records: round trips, the layout in the docs, link codes, key
//! shares, and one refusal per check.

use super::*;
use crate::identity::{AccountId, Identity};
use crate::keys::{AccountKeyPair, KeyId};
use crate::sodium::{self, XWING_CIPHERTEXT_LEN, XWING_ENC_SEED_LEN, XWING_PUBLIC_KEY_LEN, XwingPublicKey};

const T: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;
const KEM_SEED: [u8; XWING_ENC_SEED_LEN] = [0xe7; XWING_ENC_SEED_LEN];

/// Where the fields of a share start inside a record of kind 3 (after the
/// format and kind bytes), from the layout in `share.rs`.
const TO_AT: usize = 2;
const KEY_ID_AT: usize = TO_AT + 32;
const FROM_AT: usize = KEY_ID_AT + 8;
const CIPHERTEXT_AT: usize = FROM_AT + 3 * 8;
const SEALED_AT: usize = CIPHERTEXT_AT + XWING_CIPHERTEXT_LEN;
const SHARE_END: usize = SEALED_AT + 32 + 16;

fn owner() -> Identity {
    Identity::from_ed25519_seed(&[0xb0; 32])
}

fn account() -> AccountId {
    owner().account_id()
}

fn other_account() -> AccountId {
    Identity::from_ed25519_seed(&[0x66; 32]).account_id()
}

/// The device whose device key has the seed `seed…seed` and whose X-Wing
/// key has the seed `!seed…!seed`.
fn device(seed: u8) -> DeviceSecret {
    DeviceSecret::from_seeds(
        &[seed; 32],
        &[!seed; 32],
        &format!("device {seed:02x}"),
        T + u64::from(seed),
    )
}

/// The device key of [`device`]`(seed)`, to sign raw bytes with.
fn device_key(seed: u8) -> Identity {
    Identity::from_ed25519_seed(&[seed; 32])
}

fn pair(seed: u8) -> AccountKeyPair {
    AccountKeyPair::from_seed(&[seed; 32])
}

fn window() -> ShareWindow {
    ShareWindow {
        valid_from_ms: T,
        valid_until_ms: T + 14 * DAY,
        rotate_at_ms: T + 12 * HOUR,
    }
}

/// `keys` as the layout in `record.rs` writes them, with any name bytes.
fn raw_keys(sign_pk: &[u8; 32], xwing_pk: &[u8], created_ms: u64, name: &[u8]) -> Vec<u8> {
    let mut out = sign_pk.to_vec();
    out.extend_from_slice(xwing_pk);
    out.extend_from_slice(&created_ms.to_be_bytes());
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out
}

fn raw_device(d: &DeviceSecret) -> Vec<u8> {
    let k = d.keys();
    raw_keys(&k.sign_pk, &k.xwing_pk, k.created_ms, k.name().as_bytes())
}

/// The body of a list: `created_ms ‖ n ‖ n × keys`, `n` as given.
fn raw_list(created_ms: u64, n: u8, devices: &[Vec<u8>]) -> Vec<u8> {
    let mut out = created_ms.to_be_bytes().to_vec();
    out.push(n);
    out.extend(devices.concat());
    out
}

/// A record of `kind` and `body` signed by `signer` for `account`,
/// written from the layout in `record.rs` (not from the encoder) and
/// without any of [`DeviceRecord::sign`]'s checks, so that each check of
/// the decoder and the verifier can be shown refusing.
fn raw_record(account: &AccountId, signer: &Identity, kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0x01, kind];
    out.extend_from_slice(body);
    out.extend_from_slice(signer.ed25519_pk());
    let account_id = [&[0x05][..], account.x25519()].concat();
    let sig = signer.sign(&[b"allium-device-record-v1\0".as_slice(), &account_id, &out].concat());
    out.extend_from_slice(&sig);
    out
}

/// A share from the layout in `share.rs` and the primitives: `secret`
/// sealed to `xwing_pk` for the device `to`, naming `key_id` (which need
/// not be the secret's).
fn raw_share(
    account: &AccountId,
    to: &[u8; 32],
    xwing_pk: &XwingPublicKey,
    key_id: &KeyId,
    secret: &[u8; 32],
    window: ShareWindow,
) -> Vec<u8> {
    let (ciphertext, shared) = sodium::xwing_enc_deterministic(xwing_pk, &KEM_SEED).unwrap();
    let mut head = to.to_vec();
    head.extend_from_slice(key_id);
    head.extend_from_slice(&window.valid_from_ms.to_be_bytes());
    head.extend_from_slice(&window.valid_until_ms.to_be_bytes());
    head.extend_from_slice(&window.rotate_at_ms.to_be_bytes());
    head.extend_from_slice(&ciphertext);
    let info = [b"allium-key-share-v1\0".as_slice(), &[0x05], account.x25519(), &head].concat();
    let k: [u8; 32] = sodium::blake2b_keyed(&shared, &[&info]);
    let sealed = sodium::xchacha_encrypt(&k, &[0; 24], secret, &info);
    assert_eq!(sealed.len(), 48);
    [head, sealed].concat()
}

fn decode_verify(bytes: &[u8], account: &AccountId) -> Result<VerifiedRecord, DeviceRecordError> {
    UnverifiedRecord::decode(bytes)?.verify(account)
}

/// The share of `pair(0xc2)` that `device(0xd1)` writes for
/// `device(0xd3)`: the share, and the signed record.
fn share_record() -> (KeyShare, Vec<u8>) {
    let share = KeyShare::seal(&account(), device(0xd3).keys(), &pair(0xc2), window(), &KEM_SEED).unwrap();
    let bytes = DeviceRecord::Share(share.clone())
        .sign(&device(0xd1), &account())
        .unwrap();
    (share, bytes)
}

/// The share record's share, changed by `change` and signed again by its
/// writer: the signature holds, so only the share's own checks can refuse.
fn resigned_share(change: impl FnOnce(&mut [u8])) -> KeyShare {
    let (_, bytes) = share_record();
    let mut body = bytes[TO_AT..SHARE_END].to_vec();
    change(&mut body);
    let bytes = raw_record(&account(), &device_key(0xd1), 3, &body);
    match decode_verify(&bytes, &account()).unwrap().record {
        DeviceRecord::Share(share) => share,
        other => panic!("not a share: {other:?}"),
    }
}

fn open_key_id(share: &KeyShare, me: &DeviceSecret) -> Result<KeyId, DeviceRecordError> {
    share.open(&account(), me).map(|p| p.key_id())
}

/// Three well-formed records: a link request, a list, a share.
fn three_records() -> [Vec<u8>; 3] {
    let d = device(0xd1);
    [
        DeviceRecord::LinkRequest(d.keys().clone())
            .sign(&d, &account())
            .unwrap(),
        DeviceRecord::List {
            created_ms: T,
            devices: vec![device(0xd2).keys().clone(), d.keys().clone()],
        }
        .sign(&d, &account())
        .unwrap(),
        share_record().1,
    ]
}

#[test]
fn a_removal_signs_decodes_verifies_and_matches_the_layout() {
    let remover = device(0xd1);
    let removed = device(0xd3).keys().sign_pk;
    let record = DeviceRecord::Removal {
        device: removed,
        removed_ms: T,
    };
    let bytes = record.sign(&remover, &account()).unwrap();
    let body = [removed.as_slice(), &T.to_be_bytes()].concat();
    assert_eq!(bytes, raw_record(&account(), &device_key(0xd1), 4, &body));
    assert_eq!(bytes.len(), 2 + 32 + 8 + 32 + 64);
    assert_eq!(
        decode_verify(&bytes, &account()),
        Ok(VerifiedRecord {
            signer: remover.keys().sign_pk,
            record,
        })
    );
    assert_eq!(
        decode_verify(&bytes, &other_account()),
        Err(DeviceRecordError::BadSignature)
    );
    for len in 0..bytes.len() {
        assert!(UnverifiedRecord::decode(&bytes[..len]).is_err(), "cut at {len}");
    }
}

#[test]
fn a_link_request_signs_decodes_verifies_and_matches_the_layout() {
    let d = device(0xd1);
    let record = DeviceRecord::LinkRequest(d.keys().clone());
    let bytes = record.sign(&d, &account()).unwrap();
    assert_eq!(
        bytes,
        raw_record(&account(), &device_key(0xd1), 1, &raw_device(&d)),
        "encoder matches the layout"
    );
    assert_eq!(
        bytes.len(),
        2 + 32 + XWING_PUBLIC_KEY_LEN + 8 + 1 + "device d1".len() + 32 + 64
    );
    let unverified = UnverifiedRecord::decode(&bytes).unwrap();
    assert_eq!(unverified.record(), &record);
    assert_eq!(unverified.signer(), &d.keys().sign_pk);
    assert_eq!(unverified.to_bytes(), bytes);
    assert_eq!(
        unverified.verify(&account()),
        Ok(VerifiedRecord {
            signer: d.keys().sign_pk,
            record,
        })
    );
}

#[test]
fn a_list_signs_decodes_verifies_and_matches_the_layout() {
    let (a, b) = (device(0xd1), device(0xd2));
    // Signed by the second device on it: the signer need not come first.
    let record = DeviceRecord::List {
        created_ms: T + 5,
        devices: vec![a.keys().clone(), b.keys().clone()],
    };
    let bytes = record.sign(&b, &account()).unwrap();
    let body = raw_list(T + 5, 2, &[raw_device(&a), raw_device(&b)]);
    assert_eq!(
        bytes,
        raw_record(&account(), &device_key(0xd2), 2, &body),
        "encoder matches the layout"
    );
    let unverified = UnverifiedRecord::decode(&bytes).unwrap();
    assert_eq!(unverified.to_bytes(), bytes);
    let verified = unverified.verify(&account()).unwrap();
    assert_eq!(verified.signer, b.keys().sign_pk);
    assert_eq!(verified.record, record);
    // Sixteen devices is allowed.
    let sixteen: Vec<DeviceSecret> = (0..16).map(|i| device(0x10 + i)).collect();
    let record = DeviceRecord::List {
        created_ms: T,
        devices: sixteen.iter().map(|d| d.keys().clone()).collect(),
    };
    let bytes = record.sign(&sixteen[15], &account()).unwrap();
    assert_eq!(decode_verify(&bytes, &account()).map(|v| v.record), Ok(record));
}

#[test]
fn a_share_signs_decodes_verifies_and_matches_the_layout() {
    let (share, bytes) = share_record();
    let to = device(0xd3);
    let body = raw_share(
        &account(),
        &to.keys().sign_pk,
        &to.keys().xwing_pk,
        &pair(0xc2).key_id(),
        &[0xc2; 32],
        window(),
    );
    assert_eq!(body.len(), 1_232, "the share size share.rs gives");
    assert_eq!(
        bytes,
        raw_record(&account(), &device_key(0xd1), 3, &body),
        "encoder matches the layout"
    );
    assert_eq!(bytes.len(), SHARE_END + 32 + 64);
    let unverified = UnverifiedRecord::decode(&bytes).unwrap();
    assert_eq!(unverified.to_bytes(), bytes);
    let verified = unverified.verify(&account()).unwrap();
    assert_eq!(verified.signer, device(0xd1).keys().sign_pk, "the sharing device");
    assert_eq!(verified.record, DeviceRecord::Share(share.clone()));
    let DeviceRecord::Share(read) = verified.record else {
        unreachable!()
    };
    assert_eq!(read.to, to.keys().sign_pk);
    assert_eq!(read.key_id, pair(0xc2).key_id());
    assert_eq!(read.window, window());
    assert_eq!(open_key_id(&read, &to), Ok(pair(0xc2).key_id()));
}

#[test]
fn a_share_seals_and_opens_to_the_key_pair_it_carries() {
    let to = device(0xd3);
    for seed in [0x00, 0xc2, 0xff] {
        let share = KeyShare::seal(&account(), to.keys(), &pair(seed), window(), &KEM_SEED).unwrap();
        assert_eq!(share.to, to.keys().sign_pk);
        assert_eq!(share.key_id, pair(seed).key_id());
        assert_eq!(share.window, window());
        let opened = share.open(&account(), &to).unwrap();
        assert_eq!(opened.key_id(), pair(seed).key_id());
        assert_eq!(opened.public_key(), pair(seed).public_key());
        assert_eq!(opened.secret_key().as_slice(), &[seed; 32]);
    }
    // Another encapsulation seed seals the same key differently.
    let one = KeyShare::seal(&account(), to.keys(), &pair(0xc2), window(), &KEM_SEED).unwrap();
    let two = KeyShare::seal(&account(), to.keys(), &pair(0xc2), window(), &[0xe8; 64]).unwrap();
    assert_ne!(one, two);
    assert_eq!(open_key_id(&two, &to), Ok(pair(0xc2).key_id()));
}

#[test]
fn another_format_byte_is_refused() {
    for mut bytes in three_records() {
        bytes[0] = 0x02;
        assert_eq!(UnverifiedRecord::decode(&bytes), Err(DeviceRecordError::Format(2)));
        bytes[0] = 0x00;
        assert_eq!(UnverifiedRecord::decode(&bytes), Err(DeviceRecordError::Format(0)));
    }
    assert_eq!(
        UnverifiedRecord::decode(&[0xff, 1]),
        Err(DeviceRecordError::Format(0xff))
    );
}

#[test]
fn an_unknown_kind_is_refused() {
    for mut bytes in three_records() {
        for kind in [0, 5, 0xff] {
            bytes[1] = kind;
            assert_eq!(UnverifiedRecord::decode(&bytes), Err(DeviceRecordError::Kind(kind)));
        }
    }
    assert_eq!(UnverifiedRecord::decode(&[0x01, 5]), Err(DeviceRecordError::Kind(5)));
}

#[test]
fn every_truncation_is_refused() {
    for bytes in three_records() {
        for len in 0..bytes.len() {
            assert_eq!(
                UnverifiedRecord::decode(&bytes[..len]),
                Err(DeviceRecordError::Truncated),
                "kind {}, {len} of {} bytes",
                bytes[1],
                bytes.len()
            );
        }
        assert!(UnverifiedRecord::decode(&bytes).is_ok());
    }
    // A list that says it has two devices and holds one.
    let d = device(0xd1);
    let body = raw_list(T, 2, &[raw_device(&d)]);
    assert_eq!(
        UnverifiedRecord::decode(&raw_record(&account(), &device_key(0xd1), 2, &body)),
        Err(DeviceRecordError::Truncated)
    );
}

#[test]
fn trailing_bytes_are_refused() {
    for bytes in three_records() {
        for extra in [&[0][..], &[0, 0, 0]] {
            let long = [&bytes[..], extra].concat();
            assert_eq!(
                UnverifiedRecord::decode(&long),
                Err(DeviceRecordError::TrailingBytes(extra.len()))
            );
        }
    }
}

#[test]
fn a_name_too_long_or_not_utf8_is_refused() {
    let d = device(0xd1);
    let k = d.keys();
    let request = |name: &[u8]| {
        let body = raw_keys(&k.sign_pk, &k.xwing_pk, T, name);
        UnverifiedRecord::decode(&raw_record(&account(), &device_key(0xd1), 1, &body))
    };
    let longest = "a".repeat(32);
    let read = request(longest.as_bytes()).unwrap();
    match read.verify(&account()).unwrap().record {
        DeviceRecord::LinkRequest(keys) => assert_eq!(keys.name(), longest),
        other => panic!("not a link request: {other:?}"),
    }
    assert_eq!(request(&[b'a'; 33]).map(|_| ()), Err(DeviceRecordError::Name));
    // A length byte over 32 is refused before the bytes it names are read.
    let mut body = raw_keys(&k.sign_pk, &k.xwing_pk, T, &[]);
    *body.last_mut().unwrap() = 0xff;
    assert_eq!(
        UnverifiedRecord::decode(&raw_record(&account(), &device_key(0xd1), 1, &body)),
        Err(DeviceRecordError::Name)
    );
    for bad in [&[0xff][..], &[0xc3], &[b'a', 0xe2, 0x82], &[0xed, 0xa0, 0x80]] {
        assert_eq!(request(bad).map(|_| ()), Err(DeviceRecordError::Name), "{bad:02x?}");
    }
    // In a list too, at any place.
    let bad = raw_keys(&[7; 32], &k.xwing_pk, T, &[0xff]);
    let body = raw_list(T, 2, &[raw_device(&d), bad]);
    assert_eq!(
        UnverifiedRecord::decode(&raw_record(&account(), &device_key(0xd1), 2, &body)),
        Err(DeviceRecordError::Name)
    );
}

#[test]
fn a_list_of_no_devices_or_more_than_sixteen_is_refused() {
    let signer = device_key(0xd1);
    let list = |n: u8, devices: &[Vec<u8>]| {
        UnverifiedRecord::decode(&raw_record(&account(), &signer, 2, &raw_list(T, n, devices)))
    };
    assert_eq!(list(0, &[]), Err(DeviceRecordError::DeviceCount(0)));
    let seventeen: Vec<DeviceSecret> = (0..17).map(|i| device(0xc0 + i)).collect();
    let raw: Vec<Vec<u8>> = seventeen.iter().map(raw_device).collect();
    assert_eq!(list(17, &raw), Err(DeviceRecordError::DeviceCount(17)));
    // The count is checked before any device is read.
    assert_eq!(list(17, &[]), Err(DeviceRecordError::DeviceCount(17)));
    assert_eq!(list(0xff, &[]), Err(DeviceRecordError::DeviceCount(0xff)));
    let signer = &seventeen[0];
    let sign = |devices: &[DeviceSecret]| {
        DeviceRecord::List {
            created_ms: T,
            devices: devices.iter().map(|d| d.keys().clone()).collect(),
        }
        .sign(signer, &account())
    };
    assert_eq!(sign(&[]), Err(DeviceRecordError::DeviceCount(0)));
    assert_eq!(sign(&seventeen), Err(DeviceRecordError::DeviceCount(17)));
    assert!(sign(&seventeen[..16]).is_ok(), "sixteen is allowed");
}

#[test]
fn a_device_twice_on_a_list_is_refused() {
    let (a, b) = (device(0xd1), device(0xd2));
    let body = raw_list(T, 3, &[raw_device(&a), raw_device(&b), raw_device(&a)]);
    assert_eq!(
        UnverifiedRecord::decode(&raw_record(&account(), &device_key(0xd1), 2, &body)),
        Err(DeviceRecordError::Duplicate)
    );
    // The same device key under another name and X-Wing key is the same
    // device.
    let again = DeviceKeys::new(a.keys().sign_pk, b.keys().xwing_pk, "another name", T + 9);
    let body = raw_list(
        T,
        2,
        &[
            raw_device(&a),
            raw_keys(
                &again.sign_pk,
                &again.xwing_pk,
                again.created_ms,
                again.name().as_bytes(),
            ),
        ],
    );
    assert_eq!(
        UnverifiedRecord::decode(&raw_record(&account(), &device_key(0xd1), 2, &body)),
        Err(DeviceRecordError::Duplicate)
    );
    for devices in [
        vec![a.keys().clone(), b.keys().clone(), a.keys().clone()],
        vec![a.keys().clone(), again],
    ] {
        assert_eq!(
            DeviceRecord::List { created_ms: T, devices }.sign(&a, &account()),
            Err(DeviceRecordError::Duplicate)
        );
    }
}

#[test]
fn a_list_signed_by_a_device_not_on_it_is_refused() {
    let (a, b, c) = (device(0xd1), device(0xd2), device(0xd3));
    let body = raw_list(T, 2, &[raw_device(&a), raw_device(&b)]);
    assert_eq!(
        UnverifiedRecord::decode(&raw_record(&account(), &device_key(0xd3), 2, &body)),
        Err(DeviceRecordError::Signer)
    );
    let record = DeviceRecord::List {
        created_ms: T,
        devices: vec![a.keys().clone(), b.keys().clone()],
    };
    assert_eq!(record.sign(&c, &account()), Err(DeviceRecordError::Signer));
    assert!(record.sign(&a, &account()).is_ok());
}

#[test]
fn a_link_request_signed_by_another_device_is_refused() {
    let (a, b) = (device(0xd1), device(0xd2));
    assert_eq!(
        UnverifiedRecord::decode(&raw_record(&account(), &device_key(0xd2), 1, &raw_device(&a))),
        Err(DeviceRecordError::Signer)
    );
    assert_eq!(
        DeviceRecord::LinkRequest(a.keys().clone()).sign(&b, &account()),
        Err(DeviceRecordError::Signer)
    );
    // The signer field swapped for another key in a signed request.
    let mut bytes = DeviceRecord::LinkRequest(a.keys().clone())
        .sign(&a, &account())
        .unwrap();
    let signer_at = bytes.len() - 64 - 32;
    bytes[signer_at..signer_at + 32].copy_from_slice(&b.keys().sign_pk);
    assert_eq!(UnverifiedRecord::decode(&bytes), Err(DeviceRecordError::Signer));
}

#[test]
fn a_flipped_bit_breaks_the_signature() {
    for bytes in three_records() {
        let signer_at = bytes.len() - 64 - 32;
        // The last and the first signature byte, a byte of an X-Wing key
        // (link request, list) or of the ciphertext (share), the last byte
        // of the body.
        for (at, bit) in [
            (bytes.len() - 1, 0x01),
            (bytes.len() - 64, 0x80),
            (100, 0x04),
            (signer_at - 1, 0x01),
        ] {
            let mut tampered = bytes.clone();
            tampered[at] ^= bit;
            assert_eq!(
                decode_verify(&tampered, &account()),
                Err(DeviceRecordError::BadSignature),
                "kind {}, byte {at}",
                bytes[1]
            );
        }
        assert!(decode_verify(&bytes, &account()).is_ok());
    }
    // The time a list was written.
    let [_, mut list, _] = three_records();
    list[9] ^= 0x01;
    assert_eq!(decode_verify(&list, &account()), Err(DeviceRecordError::BadSignature));
    // A share claimed by another device key than the one that signed it.
    let (_, mut bytes) = share_record();
    let signer_at = bytes.len() - 64 - 32;
    bytes[signer_at..signer_at + 32].copy_from_slice(&device(0xd3).keys().sign_pk);
    assert_eq!(decode_verify(&bytes, &account()), Err(DeviceRecordError::BadSignature));
}

#[test]
fn a_record_for_another_account_is_refused() {
    for bytes in three_records() {
        assert_eq!(
            decode_verify(&bytes, &other_account()),
            Err(DeviceRecordError::BadSignature),
            "kind {}",
            bytes[1]
        );
    }
    // And one signed for the other account is refused for this one.
    let d = device(0xd1);
    let bytes = DeviceRecord::LinkRequest(d.keys().clone())
        .sign(&d, &other_account())
        .unwrap();
    assert!(decode_verify(&bytes, &other_account()).is_ok());
    assert_eq!(decode_verify(&bytes, &account()), Err(DeviceRecordError::BadSignature));
}

#[test]
fn a_share_for_another_device_is_refused() {
    let (share, _) = share_record();
    for seed in [0xd1, 0xd2] {
        assert_eq!(
            open_key_id(&share, &device(seed)),
            Err(DeviceRecordError::NotForThisDevice)
        );
    }
    // The recipient's device key with another X-Wing key: the share names
    // it, but was not sealed to it.
    let impostor = DeviceSecret::from_seeds(&[0xd3; 32], &[0x00; 32], "device d3", T);
    assert_eq!(impostor.keys().sign_pk, device(0xd3).keys().sign_pk);
    assert_eq!(open_key_id(&share, &impostor), Err(DeviceRecordError::ShareDecrypt));
    // Opened under another account, the share's info differs.
    assert_eq!(
        share.open(&other_account(), &device(0xd3)).map(|p| p.key_id()),
        Err(DeviceRecordError::ShareDecrypt)
    );
}

#[test]
fn a_share_with_a_changed_byte_does_not_open() {
    let to = device(0xd3);
    assert_eq!(open_key_id(&resigned_share(|_| ()), &to), Ok(pair(0xc2).key_id()));
    let at = |field: usize| field - TO_AT;
    for (name, index) in [
        ("ciphertext, first byte", at(CIPHERTEXT_AT)),
        ("ciphertext, its X25519 part", at(SEALED_AT) - 1),
        ("sealed, first byte", at(SEALED_AT)),
        ("sealed, the tag", at(SHARE_END) - 1),
        ("valid_from_ms", at(FROM_AT) + 7),
        ("rotate_at_ms", at(CIPHERTEXT_AT) - 1),
    ] {
        let share = resigned_share(|b| b[index] ^= 0x01);
        assert_eq!(open_key_id(&share, &to), Err(DeviceRecordError::ShareDecrypt), "{name}");
    }
    // A ciphertext whose X25519 part has small order does not decapsulate.
    let share = resigned_share(|b| b[at(SEALED_AT) - 32..at(SEALED_AT)].fill(0));
    assert_eq!(open_key_id(&share, &to), Err(DeviceRecordError::ShareDecrypt));
}

#[test]
fn a_share_whose_key_id_was_changed_is_refused() {
    let to = device(0xd3);
    // Changed after signing: the signature breaks.
    let (_, mut bytes) = share_record();
    bytes[KEY_ID_AT] ^= 0x01;
    assert_eq!(decode_verify(&bytes, &account()), Err(DeviceRecordError::BadSignature));
    // Changed and signed again: the share's key is bound to its key id.
    let share = resigned_share(|b| b[KEY_ID_AT - TO_AT..FROM_AT - TO_AT].copy_from_slice(&pair(0xc1).key_id()));
    assert_eq!(share.key_id, pair(0xc1).key_id());
    assert_eq!(open_key_id(&share, &to), Err(DeviceRecordError::ShareDecrypt));
    // Sealed whole with another key's id: it decrypts, but the secret is
    // not the key it names.
    let body = raw_share(
        &account(),
        &to.keys().sign_pk,
        &to.keys().xwing_pk,
        &pair(0xc1).key_id(),
        &[0xc2; 32],
        window(),
    );
    let bytes = raw_record(&account(), &device_key(0xd1), 3, &body);
    let DeviceRecord::Share(share) = decode_verify(&bytes, &account()).unwrap().record else {
        panic!("not a share")
    };
    assert_eq!(open_key_id(&share, &to), Err(DeviceRecordError::ShareDecrypt));
    // The same, naming the right id, opens: the refusal above is the id's.
    let body = raw_share(
        &account(),
        &to.keys().sign_pk,
        &to.keys().xwing_pk,
        &pair(0xc2).key_id(),
        &[0xc2; 32],
        window(),
    );
    let bytes = raw_record(&account(), &device_key(0xd1), 3, &body);
    let DeviceRecord::Share(share) = decode_verify(&bytes, &account()).unwrap().record else {
        panic!("not a share")
    };
    assert_eq!(open_key_id(&share, &to), Ok(pair(0xc2).key_id()));
}

#[test]
fn a_share_to_an_unusable_xwing_key_is_refused() {
    // ML-KEM coefficients of 0xfff are not below q = 3,329.
    let not_canonical = DeviceKeys::new([7; 32], [0xff; XWING_PUBLIC_KEY_LEN], "bad", T);
    assert_eq!(
        KeyShare::seal(&account(), &not_canonical, &pair(0xc2), window(), &KEM_SEED),
        Err(DeviceRecordError::RecipientKey)
    );
    // A usable ML-KEM part with an X25519 part of small order (zero).
    let mut xwing_pk = *pair(0xc1).public_key();
    xwing_pk[XWING_PUBLIC_KEY_LEN - 32..].fill(0);
    let small_order = DeviceKeys::new([7; 32], xwing_pk, "bad", T);
    assert_eq!(
        KeyShare::seal(&account(), &small_order, &pair(0xc2), window(), &KEM_SEED),
        Err(DeviceRecordError::RecipientKey)
    );
    let usable = DeviceKeys::new([7; 32], *pair(0xc1).public_key(), "good", T);
    assert!(KeyShare::seal(&account(), &usable, &pair(0xc2), window(), &KEM_SEED).is_ok());
}

#[test]
fn the_link_code_is_six_digits_of_the_account_and_the_device_keys() {
    let d = device(0xd1);
    let code = link_code(&account(), d.keys());
    assert!(code < 1_000_000);
    // From the formula in the doc comment, not from the function.
    let digest = sodium::blake2b_64(
        &[
            b"allium-link-code-v1\0".as_slice(),
            &[0x05],
            account().x25519(),
            &d.keys().sign_pk,
            &d.keys().xwing_pk,
        ]
        .concat(),
    );
    assert_eq!(u64::from(code), u64::from_be_bytes(digest) % 1_000_000);
    assert_eq!(link_code(&account(), device(0xd1).keys()), code, "stable");
    assert_ne!(link_code(&account(), device(0xd2).keys()), code, "another device");
    assert_ne!(link_code(&other_account(), d.keys()), code, "another account");
    // The keys count, the name and time do not.
    let renamed = DeviceKeys::new(d.keys().sign_pk, d.keys().xwing_pk, "renamed", 5);
    assert_eq!(link_code(&account(), &renamed), code);
    let other_xwing = DeviceKeys::new(d.keys().sign_pk, device(0xd2).keys().xwing_pk, "device d1", T);
    assert_ne!(link_code(&account(), &other_xwing), code, "another X-Wing key");
    let codes: std::collections::BTreeSet<u32> = (0..=255u8)
        .map(|i| link_code(&account(), &DeviceKeys::new([i; 32], d.keys().xwing_pk, "", T)))
        .collect();
    assert!(codes.iter().all(|&c| c < 1_000_000));
    assert!(codes.len() > 250, "codes spread: {} distinct of 256", codes.len());
    assert!(codes.iter().any(|&c| c >= 500_000), "not only the low half");
}

#[test]
fn a_long_name_is_cut_on_a_character_boundary() {
    let d = device(0xd1);
    let keys = |name: &str| DeviceKeys::new(d.keys().sign_pk, d.keys().xwing_pk, name, T);
    let cases = [
        ("laptop".to_owned(), "laptop".to_owned()),
        (String::new(), String::new()),
        ("a".repeat(32), "a".repeat(32)),
        ("a".repeat(33), "a".repeat(32)),
        ("é".repeat(20), "é".repeat(16)),
        (format!("a{}", "é".repeat(16)), format!("a{}", "é".repeat(15))),
        ("€".repeat(11), "€".repeat(10)),
        ("😀".repeat(9), "😀".repeat(8)),
        (format!("ab{}", "😀".repeat(8)), format!("ab{}", "😀".repeat(7))),
        (format!("{}€", "a".repeat(30)), "a".repeat(30)),
    ];
    for (name, kept) in cases {
        let k = keys(&name);
        assert_eq!(k.name(), kept, "{name}");
        assert!(k.name().len() <= MAX_NAME_LEN);
        assert!(name.starts_with(k.name()));
        // What is cut is written and read back as it is.
        let signer = DeviceSecret::from_seeds(&[0xd1; 32], &[!0xd1; 32], &name, T);
        assert_eq!(signer.keys(), &k);
        let bytes = DeviceRecord::LinkRequest(k.clone()).sign(&signer, &account()).unwrap();
        assert_eq!(
            decode_verify(&bytes, &account()).map(|v| v.record),
            Ok(DeviceRecord::LinkRequest(k))
        );
    }
}

#[test]
fn device_keys_come_from_their_seeds() {
    let d = device(0xd1);
    assert_eq!(d.sign_seed(), &[0xd1; 32]);
    assert_eq!(d.xwing_secret().as_slice(), &[!0xd1; 32]);
    assert_eq!(d.keys().sign_pk, *device_key(0xd1).ed25519_pk());
    assert_eq!(d.keys().xwing_pk, sodium::xwing_seed_keypair(&[!0xd1; 32]).0);
    assert_eq!(d.keys().created_ms, T + 0xd1);
    assert_eq!(d.keys().name(), "device d1");
    assert_eq!(d.keys().id(), sodium::blake2b_64(&d.keys().sign_pk));
    assert_eq!(device_id(&d.keys().sign_pk), d.keys().id());
    assert_ne!(device(0xd2).keys().id(), d.keys().id());
    let (x, y) = (DeviceSecret::generate("x", T), DeviceSecret::generate("x", T));
    assert_ne!(x.keys().sign_pk, y.keys().sign_pk);
    assert_ne!(x.keys().xwing_pk, y.keys().xwing_pk);
    let again = DeviceSecret::from_seeds(x.sign_seed(), x.xwing_secret(), "x", T);
    assert_eq!(again.keys(), x.keys(), "the stored seeds give the same keys");
    assert_eq!(DeviceSecret::generate(&"z".repeat(40), T).keys().name(), "z".repeat(32));
}

#[test]
fn debug_shows_ids_not_secrets() {
    let d = device(0xd1);
    let shown = format!("{d:?}");
    assert!(shown.contains(&hex::encode(d.keys().id())), "{shown}");
    assert!(!shown.contains(&hex::encode([0xd1; 32])), "{shown}");
    assert!(!shown.contains(&hex::encode([!0xd1; 32])), "{shown}");
    let shown = format!("{:?}", d.keys());
    assert!(
        shown.contains(&hex::encode(d.keys().id())) && shown.contains("device d1"),
        "{shown}"
    );
    let (share, _) = share_record();
    let shown = format!("{share:?}");
    assert!(shown.contains(&hex::encode(pair(0xc2).key_id())), "{shown}");
    assert!(
        !shown.contains(&hex::encode(&share_record().1[SEALED_AT..SHARE_END])),
        "{shown}"
    );
}
