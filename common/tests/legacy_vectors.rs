//! Legacy Session 13-word phrases against `vectors/legacy_mnemonic.json`.
//!
//! Each vector gives a 16-byte seed, its phrase, and the Account ID of the
//! seed followed by 16 zero bytes (how Session turns the phrase into an
//! Ed25519 seed). The first two are public vectors from libsession-util.
#![allow(clippy::unwrap_used)]

use allium_common::Identity;
use allium_common::mnemonic::{self, legacy};

/// One vector of the JSON file.
#[derive(Debug, serde::Deserialize)]
struct Vector {
    seed_hex: String,
    phrase: String,
    account_id: String,
}

fn vectors() -> Vec<Vector> {
    let vectors: Vec<Vector> = serde_json::from_str(include_str!("vectors/legacy_mnemonic.json")).unwrap();
    assert!(vectors.len() >= 4, "expected at least 4 vectors");
    vectors
}

fn seed_of(v: &Vector) -> [u8; 16] {
    hex::decode(&v.seed_hex).unwrap().try_into().unwrap()
}

#[test]
fn encode_matches() {
    for v in vectors() {
        assert_eq!(legacy::encode(&seed_of(&v)).join(" "), v.phrase, "{v:?}");
    }
}

#[test]
fn decode_matches() {
    for v in vectors() {
        let words: Vec<&str> = v.phrase.split(' ').collect();
        assert_eq!(*legacy::decode(&words).unwrap(), seed_of(&v), "{v:?}");
    }
}

#[test]
fn account_id_matches() {
    for v in vectors() {
        let from_phrase = mnemonic::identity_from_phrase(&v.phrase, "").unwrap();
        assert_eq!(from_phrase.account_id().to_string(), v.account_id, "{v:?}");

        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(&seed_of(&v));
        let from_seed = Identity::from_ed25519_seed(&seed);
        assert_eq!(from_seed.account_id().to_string(), v.account_id, "{v:?}");
    }
}

#[test]
fn typed_phrase_is_normalised() {
    for v in vectors() {
        let typed = format!("  {}\n", v.phrase.to_uppercase().replace(' ', " \t "));
        let identity = mnemonic::identity_from_phrase(&typed, "").unwrap();
        assert_eq!(identity.account_id().to_string(), v.account_id, "{v:?}");
    }
}
