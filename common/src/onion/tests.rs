//! Tests of whole onions: build → peel ×n → respond, every error of
//! `build_request` and `peel`, tampering, and properties over random paths.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::Identity;

/// `{"ephemeral_key":"<64>","enc_type":"xchacha20"}`.
const OUTER_TRAILER_LEN: usize = 107;
/// `{"destination":"<64>","ephemeral_key":"<64>","enc_type":"xchacha20"}`.
const RELAY_TRAILER_LEN: usize = 188;
/// What each relay layer adds: its frame prefix, box overhead and trailer.
const PER_RELAY: usize = 4 + BOX_OVERHEAD + RELAY_TRAILER_LEN;

/// The length of the body node `position` of `hops` receives when the
/// destination's plaintext is `bucket` bytes.
fn expected_body_len(bucket: usize, hops: usize, position: usize) -> usize {
    bucket + BOX_OVERHEAD + 4 + OUTER_TRAILER_LEN + (hops - 1 - position) * PER_RELAY
}

fn node(seed: u8) -> Identity {
    Identity::from_ed25519_seed(&[seed; 32])
}

fn hop(id: &Identity) -> Hop {
    Hop {
        ed25519: *id.ed25519_pk(),
        x25519: *id.x25519_pk(),
    }
}

fn secrets(n: usize) -> Vec<LayerSecrets> {
    (0..n)
        .map(|i| LayerSecrets {
            ephemeral_sk: [0x40 + i as u8; 32],
            nonce: [0x80 + i as u8; 24],
        })
        .collect()
}

/// Peels `body` through `nodes`, returning every body received (one per
/// node) and the final request and key.
fn peel_all(nodes: &[Identity], body: Vec<u8>) -> (Vec<Vec<u8>>, Vec<u8>, HopKey) {
    let mut bodies = vec![body];
    for (i, id) in nodes.iter().enumerate() {
        let current = bodies.last().unwrap();
        match peel(current, id.x25519_sk(), id.x25519_pk()).unwrap() {
            Peeled::Relay { next_ed25519, body } => {
                assert_eq!(&next_ed25519, nodes[i + 1].ed25519_pk());
                bodies.push(body);
            }
            Peeled::Final { request, key } => {
                assert_eq!(i, nodes.len() - 1, "final before the last hop");
                return (bodies, request.to_vec(), key);
            }
        }
    }
    panic!("no final hop");
}

/// Wraps `plaintext` in one layer for `id`, as a client would.
fn layer(id: &Identity, plaintext: &[u8], seed: u8) -> Vec<u8> {
    let (key, a) = client_hop_key(&[seed; 32], id.x25519_pk()).unwrap();
    let sealed = keys::seal(&key, &[seed; 24], plaintext);
    encode_frame(&sealed, outer_trailer(&a).as_bytes()).unwrap()
}

/// A frame with an arbitrary trailer (bypassing `encode_frame`'s checks).
fn raw_frame(payload: &[u8], trailer: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    out.extend_from_slice(trailer);
    out
}

fn without_pad(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.remove("pad");
    }
    v
}

#[test]
fn trailer_lengths_are_fixed() {
    assert_eq!(outer_trailer(&[0xff; 32]).len(), OUTER_TRAILER_LEN);
    assert_eq!(relay_trailer(&[0; 32], &[1; 32]).len(), RELAY_TRAILER_LEN);
}

#[test]
fn four_hops_round_trip() {
    let nodes: Vec<Identity> = (1..=4).map(node).collect();
    let path: Vec<Hop> = nodes.iter().map(hop).collect();
    let request = json!({"method": "retrieve", "params": {"pubkey": "05ab", "namespace": 0}});
    let onion = build_request(&path, &request, &secrets(4)).unwrap();
    let (bodies, final_request, key) = peel_all(&nodes, onion.body);
    assert_eq!(bodies.len(), 4);
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(b.len(), expected_body_len(1024, 4, i), "layer {i}");
    }
    let parsed: Value = serde_json::from_slice(&final_request).unwrap();
    assert!(parsed["pad"].as_str().unwrap().bytes().all(|b| b == b'0'));
    assert_eq!(without_pad(parsed), request);
    assert!(final_request.ends_with(b"0\"}"), "pad is the last member");
    assert_eq!(key.as_bytes(), onion.response_key.as_bytes());

    // The destination answers; the client reads it with its copy of the key.
    let answer = json!({"messages": [], "more": false});
    let response = encrypt_response(&key, 200, &answer, &[5u8; 24]).unwrap();
    assert_eq!(
        decrypt_response(&onion.response_key, response.as_bytes()),
        Ok((200, answer))
    );
}

#[test]
fn one_hop_is_final_directly() {
    let dest = node(9);
    let request = json!({"method": "info", "params": {}});
    let onion = build_request(&[hop(&dest)], &request, &secrets(1)).unwrap();
    assert_eq!(onion.body.len(), expected_body_len(1024, 1, 0));
    let (_, final_request, _) = peel_all(std::slice::from_ref(&dest), onion.body);
    let parsed: Value = serde_json::from_slice(&final_request).unwrap();
    assert_eq!(without_pad(parsed), request);
}

#[test]
fn existing_pad_is_replaced_and_empty_object_works() {
    let dest = node(9);
    let request = json!({"pad": "user supplied", "method": "info"});
    let onion = build_request(&[hop(&dest)], &request, &secrets(1)).unwrap();
    let (_, final_request, _) = peel_all(std::slice::from_ref(&dest), onion.body);
    let parsed: Value = serde_json::from_slice(&final_request).unwrap();
    assert!(parsed["pad"].as_str().unwrap().bytes().all(|b| b == b'0'));
    assert_eq!(parsed["method"], "info");

    let onion = build_request(&[hop(&dest)], &json!({}), &secrets(1)).unwrap();
    let (_, final_request, _) = peel_all(std::slice::from_ref(&dest), onion.body);
    assert!(final_request.starts_with(br#"{"pad":"000"#));
}

#[test]
fn buckets_are_hit_exactly_at_their_edges() {
    let dest = node(9);
    // Overhead around the data string: {"method":"x","params":{"data":""},"pad":""}
    // plus the frame prefix and {"headers":{}}.
    let fixed = br#"{"method":"x","params":{"data":""},"pad":""}"#.len() + 4 + 14;
    for (data_len, bucket) in [(1024 - fixed, 1024), (1024 - fixed + 1, 4096), (131072 - fixed, 131072)] {
        let request = json!({"method": "x", "params": {"data": "d".repeat(data_len)}});
        let onion = build_request(&[hop(&dest)], &request, &secrets(1)).unwrap();
        assert_eq!(onion.body.len(), expected_body_len(bucket, 1, 0));
    }
    let request = json!({"method": "x", "params": {"data": "d".repeat(131072 - fixed + 1)}});
    assert_eq!(
        build_request(&[hop(&dest)], &request, &secrets(1)).map(|o| o.body.len()),
        Err(OnionError::RequestTooLarge {
            len: 131073,
            max: 131072
        })
    );
}

#[test]
fn wrong_node_key_fails() {
    let nodes: Vec<Identity> = (1..=3).map(node).collect();
    let path: Vec<Hop> = nodes.iter().map(hop).collect();
    let onion = build_request(&path, &json!({"method": "info"}), &secrets(3)).unwrap();
    let other = node(7);
    assert!(matches!(
        peel(&onion.body, other.x25519_sk(), other.x25519_pk()),
        Err(OnionError::DecryptFailed)
    ));
    // The middle node cannot read the guard's layer either.
    assert!(matches!(
        peel(&onion.body, nodes[1].x25519_sk(), nodes[1].x25519_pk()),
        Err(OnionError::DecryptFailed)
    ));
    // The right secret key with a wrong claimed public key derives another key.
    assert!(matches!(
        peel(&onion.body, nodes[0].x25519_sk(), nodes[1].x25519_pk()),
        Err(OnionError::DecryptFailed)
    ));
}

#[test]
fn build_errors() {
    let nodes: Vec<Identity> = (1..=3).map(node).collect();
    let path: Vec<Hop> = nodes.iter().map(hop).collect();
    let req = json!({"method": "info"});
    let err = |r: Result<OnionRequest, OnionError>| r.map(|o| o.body).unwrap_err();

    assert_eq!(err(build_request(&[], &req, &[])), OnionError::EmptyPath);
    assert_eq!(
        err(build_request(&path, &req, &secrets(2))),
        OnionError::SecretsMismatch { hops: 3, secrets: 2 }
    );
    let mut reused = secrets(3);
    reused[2].ephemeral_sk = reused[0].ephemeral_sk;
    assert_eq!(
        err(build_request(&path, &req, &reused)),
        OnionError::ReusedEphemeralKey { first: 0, second: 2 }
    );
    for not_object in [json!([]), json!("info"), json!(null)] {
        assert_eq!(
            err(build_request(&path, &not_object, &secrets(3))),
            OnionError::RequestNotObject
        );
    }
    let mut weak = path.clone();
    weak[1].x25519 = [0u8; 32];
    assert_eq!(
        err(build_request(&weak, &req, &secrets(3))),
        OnionError::WeakNodeKey { node_x25519: [0u8; 32] }
    );
    // A path so long that the onion outgrows MAX_ONION_BODY.
    let hops = (MAX_ONION_BODY - 131072) / PER_RELAY + 2;
    let long_path = vec![path[0]; hops];
    let long_secrets: Vec<LayerSecrets> = (0..hops)
        .map(|i| LayerSecrets {
            ephemeral_sk: {
                let mut s = [0u8; 32];
                s[..8].copy_from_slice(&(i as u64).to_le_bytes());
                s
            },
            nonce: [0u8; 24],
        })
        .collect();
    let big = json!({"data": "d".repeat(131000)});
    assert!(matches!(
        err(build_request(&long_path, &big, &long_secrets)),
        OnionError::BodyTooLarge { .. }
    ));
}

#[test]
fn peel_outer_errors() {
    let id = node(1);
    let (sk, pk) = (id.x25519_sk(), id.x25519_pk());
    let good = layer(&id, &raw_frame(b"{}", FINAL_TRAILER), 3);
    assert!(matches!(peel(&good, sk, pk), Ok(Peeled::Final { .. })));
    let (sealed, trailer) = decode_frame(&good).unwrap();
    let trailer: Map<String, Value> = serde_json::from_slice(trailer).unwrap();
    let a = trailer["ephemeral_key"].as_str().unwrap().to_owned();
    let with = |t: Value| raw_frame(sealed, t.to_string().as_bytes());

    assert_eq!(
        peel(b"\x01\x00", sk, pk).map(|_| ()),
        Err(OnionError::FrameTooShort { len: 2 })
    );
    assert_eq!(
        peel(&[9, 0, 0, 0, 1], sk, pk).map(|_| ()),
        Err(OnionError::PayloadOutOfBounds {
            declared: 9,
            available: 1
        })
    );
    assert!(matches!(
        peel(&vec![0u8; MAX_ONION_BODY + 1], sk, pk),
        Err(OnionError::BodyTooLarge { .. })
    ));
    assert!(matches!(
        peel(&raw_frame(sealed, &[b' '; MAX_TRAILER_LEN + 1]), sk, pk),
        Err(OnionError::TrailerTooLarge { .. })
    ));
    assert!(matches!(
        peel(&raw_frame(sealed, b"{\"ephemeral_key\""), sk, pk),
        Err(OnionError::TrailerNotJson { .. })
    ));
    assert!(matches!(
        peel(&raw_frame(sealed, b"[]"), sk, pk),
        Err(OnionError::TrailerNotObject)
    ));
    let cases = [
        (
            json!({"ephemeral_key": a}),
            OnionError::MissingField { field: "enc_type" },
        ),
        (
            json!({"enc_type": "xchacha20"}),
            OnionError::MissingField { field: "ephemeral_key" },
        ),
        (
            json!({"ephemeral_key": a, "enc_type": 1}),
            OnionError::FieldType {
                field: "enc_type",
                expected: "a string",
            },
        ),
        (
            json!({"ephemeral_key": null, "enc_type": "xchacha20"}),
            OnionError::FieldType {
                field: "ephemeral_key",
                expected: "a string",
            },
        ),
        (
            json!({"ephemeral_key": a, "enc_type": "XChaCha20"}),
            OnionError::UnsupportedEncType {
                got: "XChaCha20".into(),
            },
        ),
        (
            json!({"ephemeral_key": a, "enc_type": "aes-gcm"}),
            OnionError::UnsupportedEncType { got: "aes-gcm".into() },
        ),
        (
            json!({"ephemeral_key": &a[2..], "enc_type": "xchacha20"}),
            OnionError::BadHex {
                field: "ephemeral_key",
                reason: DecodeError::HexLength { expected: 64, got: 62 },
            },
        ),
        (
            json!({"ephemeral_key": format!("zz{}", &a[2..]), "enc_type": "xchacha20"}),
            OnionError::BadHex {
                field: "ephemeral_key",
                reason: DecodeError::HexChar(0),
            },
        ),
        (
            json!({"ephemeral_key": a.to_uppercase(), "enc_type": "xchacha20"}),
            OnionError::UppercaseHex {
                field: "ephemeral_key",
                position: a.find(|c: char| c.is_ascii_alphabetic()).unwrap(),
            },
        ),
        (
            json!({"ephemeral_key": "00".repeat(32), "enc_type": "xchacha20"}),
            OnionError::WeakEphemeralKey,
        ),
        (
            json!({"ephemeral_key": encoding::to_hex(&[7u8; 32]), "enc_type": "xchacha20"}),
            OnionError::DecryptFailed,
        ),
    ];
    for (trailer, want) in cases {
        assert_eq!(peel(&with(trailer.clone()), sk, pk).map(|_| ()), Err(want), "{trailer}");
    }
    // Unknown members of the trailer are ignored (room for extensions).
    let extended = json!({"ephemeral_key": a, "enc_type": "xchacha20", "v": 2});
    assert!(peel(&with(extended), sk, pk).is_ok());
    let short = raw_frame(&sealed[..39], outer_trailer(&[7u8; 32]).as_bytes());
    assert_eq!(
        peel(&short, sk, pk).map(|_| ()),
        Err(OnionError::BoxTooShort { len: 39, min: 40 })
    );
}

#[test]
fn peel_inner_errors() {
    let id = node(1);
    let (sk, pk) = (id.x25519_sk(), id.x25519_pk());
    let next = encoding::to_hex(node(2).ed25519_pk());
    let a = encoding::to_hex(&[0x11u8; 32]);
    let next_box = [0u8; 60];
    let peel_inner = |plaintext: &[u8]| peel(&layer(&id, plaintext, 3), sk, pk).map(|_| ());
    let inner = |t: Value| raw_frame(&next_box, t.to_string().as_bytes());

    assert_eq!(peel_inner(b"\x00\x00"), Err(OnionError::FrameTooShort { len: 2 }));
    assert_eq!(peel_inner(&raw_frame(b"", b"7")), Err(OnionError::TrailerNotObject));
    let cases = [
        (
            json!({"destination": next, "headers": {}, "ephemeral_key": a, "enc_type": "xchacha20"}),
            OnionError::BothDestinationAndHeaders,
        ),
        (
            json!({"ephemeral_key": a, "enc_type": "xchacha20"}),
            OnionError::NeitherDestinationNorHeaders,
        ),
        (
            json!({"headers": []}),
            OnionError::FieldType {
                field: "headers",
                expected: "an object",
            },
        ),
        (
            json!({"destination": next, "ephemeral_key": a}),
            OnionError::MissingField { field: "enc_type" },
        ),
        (
            json!({"destination": next, "ephemeral_key": a, "enc_type": "xchacha"}),
            OnionError::UnsupportedEncType { got: "xchacha".into() },
        ),
        (
            json!({"destination": next, "enc_type": "xchacha20"}),
            OnionError::MissingField { field: "ephemeral_key" },
        ),
        (
            json!({"destination": 5, "ephemeral_key": a, "enc_type": "xchacha20"}),
            OnionError::FieldType {
                field: "destination",
                expected: "a string",
            },
        ),
        (
            json!({"destination": next.to_uppercase(), "ephemeral_key": a, "enc_type": "xchacha20"}),
            OnionError::UppercaseHex {
                field: "destination",
                position: next.find(|c: char| c.is_ascii_alphabetic()).unwrap(),
            },
        ),
        (
            json!({"destination": "", "ephemeral_key": a, "enc_type": "xchacha20"}),
            OnionError::BadHex {
                field: "destination",
                reason: DecodeError::HexLength { expected: 64, got: 0 },
            },
        ),
    ];
    for (trailer, want) in cases {
        assert_eq!(peel_inner(&inner(trailer.clone())), Err(want), "{trailer}");
    }
    let relay = json!({"destination": next, "ephemeral_key": a, "enc_type": "xchacha20"});
    assert_eq!(
        peel_inner(&raw_frame(&next_box[..39], relay.to_string().as_bytes())),
        Err(OnionError::BoxTooShort { len: 39, min: 40 })
    );
    // Extra members inside are not forwarded: the next hop gets the
    // canonical trailer only.
    let extra = json!({"destination": next, "ephemeral_key": a, "enc_type": "xchacha20", "x": 1});
    match peel(&layer(&id, &inner(extra), 3), sk, pk).unwrap() {
        Peeled::Relay { body, .. } => {
            let (b, t) = decode_frame(&body).unwrap();
            assert_eq!(b, &next_box[..]);
            assert_eq!(t, outer_trailer(&[0x11u8; 32]).as_bytes());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn debug_output_hides_secrets_and_payloads() {
    let dest = node(1);
    let request = json!({"method": "secret-method"});
    let onion = build_request(&[hop(&dest)], &request, &secrets(1)).unwrap();
    let printed = format!("{onion:?} {:?}", secrets(1));
    assert!(!printed.contains("secret-method"));
    assert!(printed.contains("<redacted>"));
    let peeled = peel(&onion.body, dest.x25519_sk(), dest.x25519_pk()).unwrap();
    let printed = format!("{peeled:?}");
    assert!(!printed.contains("secret-method"), "{printed}");
}

/// Every single-byte change of every layer's body is rejected by the node
/// that receives it. Box bytes are covered by the AEAD, so two masks suffice
/// there; the prefix and the JSON trailer get all 255.
#[test]
fn every_byte_flip_is_an_error() {
    let nodes: Vec<Identity> = (1..=4).map(node).collect();
    let path: Vec<Hop> = nodes.iter().map(hop).collect();
    let onion = build_request(&path, &json!({"method": "info"}), &secrets(4)).unwrap();
    let (bodies, _, _) = peel_all(&nodes, onion.body);
    for (layer, (body, id)) in bodies.iter().zip(&nodes).enumerate() {
        let trailer_start = body.len() - OUTER_TRAILER_LEN;
        for i in 0..body.len() {
            let masks: Vec<u8> = if i < 4 || i >= trailer_start {
                (1..=255).collect()
            } else {
                vec![0x01, 0x80]
            };
            for mask in masks {
                let mut bad = body.clone();
                bad[i] ^= mask;
                assert!(
                    peel(&bad, id.x25519_sk(), id.x25519_pk()).is_err(),
                    "layer {layer}, byte {i}, mask {mask:#04x}"
                );
            }
        }
    }
}

fn size_class() -> impl Strategy<Value = usize> {
    prop_oneof![
        0usize..900,
        900usize..4000,
        4000usize..16000,
        16000usize..65000,
        65000usize..130900
    ]
}

/// Raw randomness of a case (kept as plain bytes so that a failing case
/// prints in full): node seeds, and (ephemeral secret, nonce) per layer.
type Case = (Vec<[u8; 32]>, Vec<([u8; 32], [u8; 24])>);

/// A random path of 1..=5 hops with distinct ephemeral secrets.
fn path_case() -> impl Strategy<Value = Case> {
    proptest::collection::vec(any::<([u8; 32], [u8; 32], [u8; 24])>(), 1..=5)
        .prop_filter("distinct ephemeral secrets", |v| {
            v.iter().enumerate().all(|(i, a)| v[..i].iter().all(|b| b.1 != a.1))
        })
        .prop_map(|v| {
            let seeds = v.iter().map(|c| c.0).collect();
            let secrets = v.iter().map(|c| (c.1, c.2)).collect();
            (seeds, secrets)
        })
}

fn materialise((seeds, secrets): &Case) -> (Vec<Identity>, Vec<Hop>, Vec<LayerSecrets>) {
    let ids: Vec<Identity> = seeds.iter().map(Identity::from_ed25519_seed).collect();
    let path = ids.iter().map(hop).collect();
    let secrets = secrets
        .iter()
        .map(|&(ephemeral_sk, nonce)| LayerSecrets { ephemeral_sk, nonce })
        .collect();
    (ids, path, secrets)
}

/// A request of a random size class.
fn request_case() -> impl Strategy<Value = Value> {
    (size_class(), "\\PC{0,12}", "\\PC{0,40}", any::<Option<i64>>()).prop_map(|(size, method, text, n)| {
        json!({
            "method": method,
            "params": {"data": format!("{}{text}", "d".repeat(size)), "n": n},
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Round trip over random paths of 1..=5 hops; every layer has the size
    /// its position and the request's bucket determine.
    #[test]
    fn round_trip_and_fixed_sizes(case in path_case(), request in request_case()) {
        let (ids, path, secrets) = materialise(&case);
        let onion = build_request(&path, &request, &secrets).unwrap();
        let unpadded = serde_json::to_vec(&request).unwrap().len() + br#","pad":"""#.len();
        let bucket = padding::request_bucket(unpadded + 4 + FINAL_TRAILER.len());
        let (bodies, final_request, key) = peel_all(&ids, onion.body);
        prop_assert_eq!(bodies.len(), ids.len());
        let bucket = bucket.unwrap();
        for (i, b) in bodies.iter().enumerate() {
            prop_assert_eq!(b.len(), expected_body_len(bucket, ids.len(), i));
        }
        let parsed: Value = serde_json::from_slice(&final_request).unwrap();
        prop_assert_eq!(without_pad(parsed), request);
        prop_assert_eq!(key.as_bytes(), onion.response_key.as_bytes());
    }
}

proptest! {
    /// A random single-byte change in a random layer is always rejected.
    #[test]
    fn random_flip_is_an_error(
        case in path_case(),
        layer_pick in any::<prop::sample::Index>(),
        byte_pick in any::<prop::sample::Index>(),
        mask in 1u8..,
    ) {
        let (ids, path, secrets) = materialise(&case);
        let onion = build_request(&path, &json!({"method": "info"}), &secrets).unwrap();
        let (bodies, _, _) = peel_all(&ids, onion.body);
        let j = layer_pick.index(bodies.len());
        let mut bad = bodies[j].clone();
        let i = byte_pick.index(bad.len());
        bad[i] ^= mask;
        prop_assert!(peel(&bad, ids[j].x25519_sk(), ids[j].x25519_pk()).is_err());
    }

    #[test]
    fn peel_never_panics_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
        seed in any::<[u8; 32]>(),
    ) {
        let id = Identity::from_ed25519_seed(&seed);
        prop_assert!(peel(&bytes, id.x25519_sk(), id.x25519_pk()).is_err());
    }

    /// Well-framed layers with random keys, trailers and inner frames: any
    /// outcome but a panic. The inner plaintext is encrypted to the node so
    /// the inner parser is reached.
    #[test]
    fn peel_never_panics_on_plausible_layers(
        declared in prop_oneof![0u32..200, any::<u32>()],
        inner_payload in proptest::collection::vec(any::<u8>(), 0..120),
        inner_trailer in prop_oneof![
            Just(Value::Null),
            Just(json!({"headers": {}})),
            Just(json!({"headers": 1})),
            "[0-9a-fA-F]{0,66}".prop_map(|k| json!({
                "destination": k, "ephemeral_key": k, "enc_type": ENC_TYPE
            })),
            "\\PC{0,12}".prop_map(|s| json!({"destination": s, "headers": s})),
        ],
        seed in any::<[u8; 32]>(),
    ) {
        let id = Identity::from_ed25519_seed(&seed);
        let mut plaintext = declared.to_le_bytes().to_vec();
        plaintext.extend_from_slice(&inner_payload);
        plaintext.extend_from_slice(inner_trailer.to_string().as_bytes());
        let _ = peel(&layer(&id, &plaintext, 3), id.x25519_sk(), id.x25519_pk());
    }
}
