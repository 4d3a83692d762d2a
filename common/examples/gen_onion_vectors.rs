//! Prints the onion test vectors (`common/tests/vectors/onion.json`):
//!
//! ```text
//! cargo run -p allium-common --example gen_onion_vectors > common/tests/vectors/onion.json
//! ```
//!
//! Every input is fixed (node seeds, ephemeral secrets, nonces, request,
//! response), so the output only changes if the wire format does;
//! `common/tests/onion_vectors.rs` rebuilds it from the inputs.

use std::error::Error;

use allium_common::Identity;
use allium_common::encoding::{to_base64, to_hex};
use allium_common::onion::{self, Hop, LayerSecrets, Peeled, client_hop_key, encrypt_response};
use serde::Serialize;
use serde_json::{Value, json};

#[derive(Serialize)]
struct Vectors {
    description: &'static str,
    request: Value,
    hops: Vec<HopVector>,
    final_request: String,
    response: ResponseVector,
}

#[derive(Serialize)]
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

#[derive(Serialize)]
struct ResponseVector {
    key: String,
    status: u16,
    body: Value,
    nonce: String,
    base64: String,
}

fn main() -> Result<(), Box<dyn Error>> {
    // Keys of nested objects are in sorted order so that serde_json's map
    // order (sorted, or insertion with `preserve_order`) cannot change bytes.
    let request = json!({
        "method": "retrieve",
        "params": {
            "namespace": 0,
            "pubkey": format!("05{}", "ab".repeat(32)),
            "timestamp": 1_700_000_000_000_u64,
        }
    });
    let ids: Vec<Identity> = [0x11u8, 0x22, 0x33, 0x44]
        .iter()
        .map(|&b| Identity::from_ed25519_seed(&[b; 32]))
        .collect();
    let secrets: Vec<LayerSecrets> = (0..ids.len() as u8)
        .map(|i| LayerSecrets {
            ephemeral_sk: [0xa1 + i; 32],
            nonce: [0xb1 + i; 24],
        })
        .collect();
    let path: Vec<Hop> = ids
        .iter()
        .map(|id| Hop {
            ed25519: *id.ed25519_pk(),
            x25519: *id.x25519_pk(),
        })
        .collect();

    let built = onion::build_request(&path, &request, &secrets)?;
    let mut body = built.body;
    let mut hops = Vec::new();
    let mut final_request = None;
    for (id, secret) in ids.iter().zip(&secrets) {
        let (key, ephemeral_pk) = client_hop_key(&secret.ephemeral_sk, id.x25519_pk())?;
        hops.push(HopVector {
            ed25519_seed: to_hex(id.ed25519_seed()),
            ed25519: to_hex(id.ed25519_pk()),
            x25519: to_hex(id.x25519_pk()),
            ephemeral_sk: to_hex(&secret.ephemeral_sk),
            ephemeral_pk: to_hex(&ephemeral_pk),
            nonce: to_hex(&secret.nonce),
            hop_key: to_hex(key.as_bytes()),
            body: to_hex(&body),
        });
        match onion::peel(&body, id.x25519_sk(), id.x25519_pk())? {
            Peeled::Relay { body: next, .. } => body = next,
            Peeled::Final { request, .. } => {
                final_request = Some(String::from_utf8(request.to_vec())?);
            }
        }
    }
    let final_request = final_request.ok_or("the last hop did not peel to a request")?;

    let response_body = json!({
        "messages": [{
            "data": to_base64(b"hello"),
            "expiration": 1_700_086_400_000_u64,
            "hash": "q3F8nXh2kYwq0tQb2m8yWbFJvW9zq3F8nXh2kYwq0tQ",
            "timestamp": 1_700_000_000_000_u64,
        }],
        "more": false,
    });
    let response_nonce = [0xc1u8; 24];
    let response = ResponseVector {
        key: to_hex(built.response_key.as_bytes()),
        status: 200,
        base64: encrypt_response(&built.response_key, 200, &response_body, &response_nonce)?,
        body: response_body,
        nonce: to_hex(&response_nonce),
    };

    let vectors = Vectors {
        description: "Allium onion request through 4 hops (guard, middle, exit, destination). \
            Node keys come from Identity::from_ed25519_seed(ed25519_seed). For each hop: the \
            ephemeral secret and nonce of its layer, the derived hop key \
            BLAKE2b-256(X25519(ephemeral_sk, x25519) || ephemeral_pk || x25519), and the body \
            the node receives on /onion_req/v2 (hop 0: what the client POSTs; hop i+1: what \
            hop i forwards). final_request: the JSON-RPC bytes the destination gets, padded \
            so its box plaintext is 1024 bytes. response: the destination's answer under the \
            last hop key.",
        request,
        hops,
        final_request,
        response,
    };
    println!("{}", serde_json::to_string_pretty(&vectors)?);
    Ok(())
}
