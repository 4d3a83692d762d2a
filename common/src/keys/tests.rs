//! Bundles: round trip, key choice, and one refusal per check.

use super::*;
use crate::identity::Identity;
use crate::sodium::XWING_PUBLIC_KEY_LEN;

const T: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;

fn owner() -> Identity {
    Identity::from_ed25519_seed(&[0xb0; 32])
}

fn pair(seed: u8) -> AccountKeyPair {
    AccountKeyPair::from_seed(&[seed; 32])
}

/// Two keys: the previous one (from 12 h ago) and the current one.
fn two_keys() -> Vec<PublishedKey> {
    vec![
        pair(0xc1).publish(T - 12 * HOUR, T - 12 * HOUR + 14 * DAY),
        pair(0xc2).publish(T, T + 14 * DAY),
    ]
}

/// The bytes of a bundle signed by `signer` without any of
/// [`KeyBundle::sign`]'s checks, written from the layout in the docs (not
/// from the encoder), so that each verifier check can be shown refusing.
fn raw_bundle(signer: &Identity, created_ms: u64, keys: &[PublishedKey]) -> Vec<u8> {
    let mut body = vec![BUNDLE_FORMAT];
    body.extend_from_slice(signer.ed25519_pk());
    body.extend_from_slice(&created_ms.to_be_bytes());
    body.push(keys.len() as u8);
    for k in keys {
        body.extend_from_slice(&k.valid_from_ms.to_be_bytes());
        body.extend_from_slice(&k.valid_until_ms.to_be_bytes());
        body.extend_from_slice(&k.public_key);
    }
    let sig = signer.sign(&[b"allium-key-bundle-v1\0".as_slice(), &body].concat());
    body.extend_from_slice(&sig);
    body
}

fn verify(bytes: &[u8], now_ms: u64) -> Result<KeyBundle, KeyBundleError> {
    UnverifiedKeyBundle::decode(bytes)?.verify(&owner().account_id(), now_ms)
}

#[test]
fn signed_bundle_encodes_decodes_and_verifies() {
    let bundle = KeyBundle::sign(&owner(), T, two_keys()).unwrap();
    let bytes = bundle.encode();
    assert_eq!(bytes.len(), 2_570, "the size docs/envelope-v2.md gives for two keys");
    assert_eq!(bytes.len(), bundle_len(2));
    assert_eq!(
        bytes,
        raw_bundle(&owner(), T, &two_keys()),
        "encoder matches the layout"
    );
    let verified = verify(&bytes, T).unwrap();
    assert_eq!(verified, bundle);
    assert_eq!(verified.encode(), bytes);
    assert_eq!(verified.account_id(), owner().account_id());
    assert_eq!(verified.account_ed25519(), owner().ed25519_pk());
    assert_eq!(verified.created_ms(), T);
    assert_eq!(verified.keys(), &two_keys()[..]);
    assert_eq!(verified.key(&pair(0xc1).key_id()), Some(&two_keys()[0]));
    assert_eq!(verified.key(&pair(0xc3).key_id()), None);
}

#[test]
fn current_key_is_the_latest_started_whose_window_holds_now() {
    let bundle = KeyBundle::sign(&owner(), T, two_keys()).unwrap();
    let id = |now| bundle.current_key(now).map(PublishedKey::key_id);
    assert_eq!(id(T - 12 * HOUR - 1), None, "before any window");
    assert_eq!(id(T - 12 * HOUR), Some(pair(0xc1).key_id()));
    assert_eq!(id(T - 1), Some(pair(0xc1).key_id()));
    assert_eq!(id(T), Some(pair(0xc2).key_id()), "both hold T: the later start wins");
    assert_eq!(id(T + 14 * DAY - 1), Some(pair(0xc2).key_id()));
    assert_eq!(id(T + 14 * DAY), None, "valid_until is exclusive");
    // A newer key whose window has ended gives way to an older one.
    let keys = vec![
        pair(0xc1).publish(T, T + 10 * DAY),
        pair(0xc2).publish(T + HOUR, T + 2 * HOUR),
    ];
    let bundle = KeyBundle::sign(&owner(), T, keys).unwrap();
    assert_eq!(
        bundle.current_key(T + 3 * HOUR).map(PublishedKey::key_id),
        Some(pair(0xc1).key_id())
    );
}

#[test]
fn key_id_is_blake2b_64_of_the_public_key() {
    let kp = pair(0xc2);
    assert_eq!(kp.key_id(), crate::sodium::blake2b_64(kp.public_key()));
    assert_eq!(key_id(kp.public_key()), kp.key_id());
    assert_ne!(pair(0xc1).key_id(), kp.key_id());
    assert_eq!(kp.secret_key().as_slice(), &[0xc2; 32], "the X-Wing secret is its seed");
}

#[test]
fn generated_pairs_differ_and_debug_hides_the_secret() {
    let (a, b) = (AccountKeyPair::generate(), AccountKeyPair::generate());
    assert_ne!(a.public_key(), b.public_key());
    let shown = format!("{:?}", pair(0xc2));
    assert!(shown.contains(&hex::encode(pair(0xc2).key_id())));
    assert!(!shown.contains(&hex::encode([0xc2; 32])));
}

#[test]
fn another_accounts_bundle_is_refused() {
    let mallory = Identity::from_ed25519_seed(&[0x66; 32]);
    let bytes = KeyBundle::sign(&mallory, T, two_keys()).unwrap().encode();
    assert_eq!(verify(&bytes, T), Err(KeyBundleError::WrongAccount));
    let bundle = UnverifiedKeyBundle::decode(&bytes).unwrap();
    assert!(bundle.verify(&mallory.account_id(), T).is_ok());
}

#[test]
fn a_bad_signature_is_refused() {
    let mut bytes = KeyBundle::sign(&owner(), T, two_keys()).unwrap().encode();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    assert_eq!(verify(&bytes, T), Err(KeyBundleError::BadSignature));
    // A key swapped in after signing.
    let mut bytes = KeyBundle::sign(&owner(), T, two_keys()).unwrap().encode();
    let key_at = bundle_len(0) - 64 + PUBLISHED_KEY_LEN + 16;
    bytes[key_at..key_at + XWING_PUBLIC_KEY_LEN].copy_from_slice(pair(0x66).public_key());
    assert_eq!(verify(&bytes, T), Err(KeyBundleError::BadSignature));
    // Another created time.
    let mut bytes = KeyBundle::sign(&owner(), T, two_keys()).unwrap().encode();
    bytes[40] ^= 0x01;
    assert_eq!(verify(&bytes, T), Err(KeyBundleError::BadSignature));
}

#[test]
fn a_bundle_created_too_far_ahead_is_refused() {
    let bytes = KeyBundle::sign(&owner(), T + 60_000, two_keys()).unwrap().encode();
    assert!(verify(&bytes, T).is_ok(), "60 s of clock skew is allowed");
    let bytes = KeyBundle::sign(&owner(), T + 60_001, two_keys()).unwrap().encode();
    assert_eq!(
        verify(&bytes, T),
        Err(KeyBundleError::CreatedAhead {
            created_ms: T + 60_001,
            now_ms: T
        })
    );
    assert!(verify(&bytes, u64::MAX).is_ok(), "no overflow near the end of time");
}

#[test]
fn unordered_keys_are_refused() {
    let [a, b]: [PublishedKey; 2] = two_keys().try_into().unwrap();
    let swapped = [b.clone(), a.clone()];
    assert_eq!(
        verify(&raw_bundle(&owner(), T, &swapped), T),
        Err(KeyBundleError::Unordered { index: 1 })
    );
    let same_start = [
        a.clone(),
        PublishedKey {
            valid_from_ms: a.valid_from_ms,
            ..b
        },
    ];
    assert_eq!(
        verify(&raw_bundle(&owner(), T, &same_start), T),
        Err(KeyBundleError::Unordered { index: 1 })
    );
    assert_eq!(
        KeyBundle::sign(&owner(), T, swapped.to_vec()),
        Err(KeyBundleError::Unordered { index: 1 })
    );
}

#[test]
fn an_empty_window_is_refused() {
    let keys = [pair(0xc2).publish(T, T)];
    let err = Err(KeyBundleError::EmptyWindow {
        index: 0,
        valid_from_ms: T,
        valid_until_ms: T,
    });
    assert_eq!(verify(&raw_bundle(&owner(), T, &keys), T), err);
    assert_eq!(KeyBundle::sign(&owner(), T, keys.to_vec()), err);
}

#[test]
fn a_window_over_17_days_is_refused() {
    let ok = [pair(0xc2).publish(T, T + 17 * DAY)];
    assert!(
        verify(&raw_bundle(&owner(), T, &ok), T).is_ok(),
        "17 days exactly is allowed"
    );
    let long = [pair(0xc1).publish(T - HOUR, T), pair(0xc2).publish(T, T + 17 * DAY + 1)];
    let err = Err(KeyBundleError::WindowTooLong {
        index: 1,
        window_ms: 17 * DAY + 1,
    });
    assert_eq!(verify(&raw_bundle(&owner(), T, &long), T), err);
    assert_eq!(KeyBundle::sign(&owner(), T, long.to_vec()), err);
}

#[test]
fn duplicate_key_ids_are_refused() {
    let twice = [
        pair(0xc2).publish(T, T + DAY),
        pair(0xc1).publish(T + HOUR, T + DAY),
        pair(0xc2).publish(T + 2 * HOUR, T + DAY),
    ];
    let err = Err(KeyBundleError::DuplicateKeyId { first: 0, index: 2 });
    assert_eq!(verify(&raw_bundle(&owner(), T, &twice), T), err);
    assert_eq!(KeyBundle::sign(&owner(), T, twice.to_vec()), err);
}

#[test]
fn zero_or_more_than_four_keys_are_refused() {
    assert_eq!(
        UnverifiedKeyBundle::decode(&raw_bundle(&owner(), T, &[])),
        Err(KeyBundleError::KeyCount(0))
    );
    let five: Vec<PublishedKey> = (0..5u64)
        .map(|i| pair(0xd0 + i as u8).publish(T + i, T + DAY))
        .collect();
    assert_eq!(
        UnverifiedKeyBundle::decode(&raw_bundle(&owner(), T, &five)),
        Err(KeyBundleError::KeyCount(5))
    );
    assert!(
        verify(&raw_bundle(&owner(), T, &five[..4]), T).is_ok(),
        "four is allowed"
    );
    assert_eq!(
        KeyBundle::sign(&owner(), T, Vec::new()),
        Err(KeyBundleError::KeyCount(0))
    );
    assert_eq!(KeyBundle::sign(&owner(), T, five), Err(KeyBundleError::KeyCount(5)));
}

#[test]
fn truncated_bundles_are_refused() {
    let bytes = KeyBundle::sign(&owner(), T, two_keys()).unwrap().encode();
    for len in [0, 1, 41] {
        assert_eq!(
            UnverifiedKeyBundle::decode(&bytes[..len]),
            Err(KeyBundleError::Truncated { len, needed: 42 }),
            "{len} bytes"
        );
    }
    for len in [42, 1_000, bytes.len() - 1] {
        assert_eq!(
            UnverifiedKeyBundle::decode(&bytes[..len]),
            Err(KeyBundleError::Truncated { len, needed: 2_570 }),
            "{len} bytes"
        );
    }
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = KeyBundle::sign(&owner(), T, two_keys()).unwrap().encode();
    bytes.extend_from_slice(&[0, 0, 0]);
    assert_eq!(
        UnverifiedKeyBundle::decode(&bytes),
        Err(KeyBundleError::TrailingBytes(3))
    );
}

#[test]
fn another_format_byte_is_refused() {
    let mut bytes = KeyBundle::sign(&owner(), T, two_keys()).unwrap().encode();
    bytes[0] = 0x02;
    assert_eq!(UnverifiedKeyBundle::decode(&bytes), Err(KeyBundleError::Format(2)));
    assert_eq!(UnverifiedKeyBundle::decode(&[0x00]), Err(KeyBundleError::Format(0)));
}

#[test]
fn a_verified_bundle_can_be_checked_again() {
    let bundle = KeyBundle::sign(&owner(), T, two_keys()).unwrap();
    let again = UnverifiedKeyBundle::from(bundle.clone());
    assert_eq!(again.created_ms(), T);
    assert_eq!(again.clone().verify(&owner().account_id(), T), Ok(bundle));
    let other = Identity::from_ed25519_seed(&[0x66; 32]).account_id();
    assert_eq!(again.verify(&other, T), Err(KeyBundleError::WrongAccount));
}
