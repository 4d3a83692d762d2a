//! The onion relay across real node processes: a 4-hop path carries a
//! request and its answer; a dead hop is an error, not a hang; a malformed
//! layer is refused and the node keeps serving.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use allium_common::node_list::NodeEntry;
use allium_common::onion::{self, Hop, LayerSecrets, OnionRequest};
use allium_common::sodium;
use serde_json::{Value, json};
use support::*;

fn hop(n: &NodeEntry) -> Hop {
    Hop {
        ed25519: n.ed25519.0,
        x25519: n.x25519.0,
    }
}

fn build(path: &[&NodeEntry], request: &Value) -> OnionRequest {
    let hops: Vec<Hop> = path.iter().map(|n| hop(n)).collect();
    let secrets: Vec<LayerSecrets> = path
        .iter()
        .map(|_| LayerSecrets {
            ephemeral_sk: sodium::random_array(),
            nonce: sodium::random_array(),
        })
        .collect();
    onion::build_request(&hops, request, &secrets).unwrap()
}

async fn send(http: &reqwest::Client, guard: &NodeEntry, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = http
        .post(format!("https://{}/onion_req/v2", guard.address))
        .body(body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_hop_paths_deliver_and_fail_cleanly() {
    let net = Net::start_with(12, "[timing]\nhop_timeout_ms = 5000\n").await;
    let dave = identity(0xd0);
    let list = net.node_list().await;
    let swarm = net.swarm_of(&dave.account_id()).await;
    let destination = &swarm[0];
    let relays: Vec<&NodeEntry> = list
        .nodes
        .iter()
        .filter(|n| n.ed25519 != destination.ed25519)
        .take(3)
        .collect();
    let path = [relays[0], relays[1], relays[2], destination];

    // Store through the onion; the answer comes back encrypted to us.
    let request = build(&path, &store(&dave.account_id(), b"through the onion", 3_600_000));
    let (status, body) = send(&net.http, path[0], request.body.clone()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (inner_status, inner) = onion::decrypt_response(&request.response_key, &body).unwrap();
    assert_eq!(inner_status, 200, "{inner}");
    let hash = inner["hash"].as_str().unwrap().to_owned();

    // A long-poll retrieve through the onion returns the message.
    let request = build(&path, &retrieve(&dave, None, Some(5_000)));
    let (status, body) = send(&net.http, path[0], request.body.clone()).await;
    assert_eq!(status, 200);
    let (_, inner) = onion::decrypt_response(&request.response_key, &body).unwrap();
    assert_eq!(hashes(&inner), vec![hash.clone()]);

    // A long-poll through the onion is held until a new message arrives.
    let request = build(&path, &retrieve(&dave, Some(&hash), Some(20_000)));
    let (http, guard, body) = (net.http.clone(), path[0].clone(), request.body.clone());
    let started = Instant::now();
    let poll = tokio::spawn(async move { send(&http, &guard, body).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, stored) = net
        .rpc(&swarm[1].address, &store(&dave.account_id(), b"wake up", 3_600_000))
        .await;
    assert_eq!(status, 200, "{stored}");
    let (status, body) = poll.await.unwrap();
    assert_eq!(status, 200);
    let (_, inner) = onion::decrypt_response(&request.response_key, &body).unwrap();
    assert_eq!(hashes(&inner), vec![stored["hash"].as_str().unwrap().to_owned()]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the store: {:?}",
        started.elapsed()
    );

    // Errors at the destination come back encrypted too (421 here).
    let outsider = list
        .nodes
        .iter()
        .find(|n| !swarm.iter().any(|m| m.ed25519 == n.ed25519))
        .unwrap();
    let wrong = [relays[0], relays[1], relays[2], outsider];
    let request = build(&wrong, &store(&dave.account_id(), b"x", 3_600_000));
    let (status, body) = send(&net.http, wrong[0], request.body.clone()).await;
    assert_eq!(status, 200);
    let (inner_status, inner) = onion::decrypt_response(&request.response_key, &body).unwrap();
    assert_eq!(inner_status, 421, "{inner}");

    // A malformed layer: 400 with a reason, and the node keeps serving.
    let garbage = net
        .http
        .post(format!("https://{}/onion_req/v2", path[0].address))
        .body(vec![0xff; 300])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 400);
    let text = garbage.text().await.unwrap();
    assert!(text.contains("onion layer rejected"), "{text}");
    let mut tampered = build(&path, &json!({"method": "info"})).body;
    let last = tampered.len() / 2;
    tampered[last] ^= 1;
    assert_eq!(send(&net.http, path[0], tampered).await.0, 400);
    assert_eq!(net.rpc(&path[0].address, &json!({"method": "info"})).await.0, 200);

    // A dead middle hop: the guard answers with a clear error, promptly.
    let middle = relays[1].ed25519.0;
    let index = net.net.nodes.iter().position(|p| p.ed25519 == middle).unwrap();
    let mut net = net;
    net.net.kill(index).await;
    let request = build(&path, &json!({"method": "info"}));
    let started = Instant::now();
    let (status, body) = send(&net.http, path[0], request.body).await;
    assert!(status == 502 || status == 504, "status {status}");
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        error["details"]["relay"],
        hex::encode(path[0].ed25519.0),
        "the guard names itself: {error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "no hang: {:?}",
        started.elapsed()
    );

    // A dead exit: the middle (alive) reports, the guard passes it back.
    let exit = relays[2].ed25519.0;
    let live_middle = list
        .nodes
        .iter()
        .find(|n| ![middle, exit, destination.ed25519.0, relays[0].ed25519.0].contains(&n.ed25519.0))
        .unwrap();
    let index = net.net.nodes.iter().position(|p| p.ed25519 == exit).unwrap();
    net.net.kill(index).await;
    let request = build(
        &[relays[0], live_middle, relays[2], destination],
        &json!({"method": "info"}),
    );
    let (status, body) = send(&net.http, relays[0], request.body).await;
    assert!(status == 502 || status == 504, "status {status}");
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error["details"]["relay"], hex::encode(live_middle.ed25519.0), "{error}");
}
