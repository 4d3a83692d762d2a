#![allow(clippy::unwrap_used)]
//! Rebuilds `vectors/onion.json` from its inputs and checks every byte:
//! node keys, hop keys, each layer's body, the final request and the
//! response. Regenerate with `cargo run -p allium-common --example
//! gen_onion_vectors` only when the wire format changes on purpose.

use allium_common::Identity;
use allium_common::encoding::hex_array;
use allium_common::onion::{
    Hop, LayerSecrets, Peeled, build_request, client_hop_key, decrypt_response, encrypt_response, node_hop_key, peel,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct Vectors {
    request: Value,
    hops: Vec<HopVector>,
    final_request: String,
    response: ResponseVector,
}

#[derive(Deserialize)]
struct HopVector {
    ed25519_seed: String,
    ed25519: String,
    x25519: String,
    ephemeral_sk: String,
    ephemeral_pk: String,
    nonce: String,
    hop_key: String,
    body: String,
}

#[derive(Deserialize)]
struct ResponseVector {
    key: String,
    status: u16,
    body: Value,
    nonce: String,
    base64: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("vectors/onion.json")).unwrap()
}

fn h32(s: &str) -> [u8; 32] {
    hex_array(s).unwrap()
}

#[test]
fn keys_match() {
    for (i, hop) in vectors().hops.iter().enumerate() {
        let id = Identity::from_ed25519_seed(&h32(&hop.ed25519_seed));
        assert_eq!(id.ed25519_pk(), &h32(&hop.ed25519), "hop {i}");
        assert_eq!(id.x25519_pk(), &h32(&hop.x25519), "hop {i}");
        let (key, ephemeral_pk) = client_hop_key(&h32(&hop.ephemeral_sk), id.x25519_pk()).unwrap();
        assert_eq!(ephemeral_pk, h32(&hop.ephemeral_pk), "hop {i}");
        assert_eq!(key.as_bytes(), &h32(&hop.hop_key), "hop {i}");
        let node_key = node_hop_key(id.x25519_sk(), id.x25519_pk(), &ephemeral_pk).unwrap();
        assert_eq!(node_key.as_bytes(), &h32(&hop.hop_key), "hop {i}");
    }
}

#[test]
fn build_gives_the_first_body() {
    let v = vectors();
    let path: Vec<Hop> = v
        .hops
        .iter()
        .map(|h| Hop {
            ed25519: h32(&h.ed25519),
            x25519: h32(&h.x25519),
        })
        .collect();
    let secrets: Vec<LayerSecrets> = v
        .hops
        .iter()
        .map(|h| LayerSecrets {
            ephemeral_sk: h32(&h.ephemeral_sk),
            nonce: hex_array(&h.nonce).unwrap(),
        })
        .collect();
    let onion = build_request(&path, &v.request, &secrets).unwrap();
    assert_eq!(hex::encode(&onion.body), v.hops[0].body);
    let last = v.hops.last().unwrap();
    assert_eq!(onion.response_key.as_bytes(), &h32(&last.hop_key));
}

#[test]
fn each_body_peels_to_the_next() {
    let v = vectors();
    for (i, hop) in v.hops.iter().enumerate() {
        let id = Identity::from_ed25519_seed(&h32(&hop.ed25519_seed));
        let body = hex::decode(&hop.body).unwrap();
        match peel(&body, id.x25519_sk(), id.x25519_pk()).unwrap() {
            Peeled::Relay { next_ed25519, body } => {
                let next = &v.hops[i + 1];
                assert_eq!(next_ed25519, h32(&next.ed25519), "hop {i}");
                assert_eq!(hex::encode(body), next.body, "hop {i}");
            }
            Peeled::Final { request, key } => {
                assert_eq!(i, v.hops.len() - 1);
                assert_eq!(&request[..], v.final_request.as_bytes());
                assert_eq!(key.as_bytes(), &h32(&hop.hop_key));
                let parsed: Value = serde_json::from_slice(&request).unwrap();
                let mut unpadded = parsed.as_object().unwrap().clone();
                unpadded.remove("pad");
                assert_eq!(Value::Object(unpadded), v.request);
            }
        }
    }
}

#[test]
fn response() {
    let r = vectors().response;
    let key = allium_common::onion::HopKey::from_bytes(h32(&r.key));
    let nonce: [u8; 24] = hex_array(&r.nonce).unwrap();
    assert_eq!(encrypt_response(&key, r.status, &r.body, &nonce).unwrap(), r.base64);
    assert_eq!(decrypt_response(&key, r.base64.as_bytes()).unwrap(), (r.status, r.body));
}
