//! The adversarial suite: one test per kind of attack a stranger, a client,
//! a relay or a swarm member can make, run against real node processes
//! (each on its own loopback address), each checking what the attacker got
//! and that honest users are still served. The attackers' connections come
//! from 127.0.0.5..9, which no node uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use allium_tests::TestNet;
use allium_tests::hostile::{closed_by_peer, connect_from, get_status, send_post_headers};
use tokio::io::AsyncWriteExt as _;

/// A stranger opens many connections from one address, sends request
/// headers and then trickles the body a byte at a time (slowloris). The node
/// keeps at most its per-address share of them, cuts every one off at the
/// body deadline, and answers a client elsewhere all along. Before the
/// listener had caps and deadlines, all 40 connections stayed open for as
/// long as the trickle went on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_connections_are_capped_per_address_and_cut_off() {
    let net = TestNet::start_with(
        1,
        "[limits]\nheader_timeout_ms = 1000\nbody_timeout_ms = 1000\nmax_connections_per_ip = 8\n",
    )
    .await
    .unwrap();
    let node = net.net.nodes[0].address.clone();
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = connect_from("127.0.0.5", &node).await.unwrap();
        // A refused connection may already be closed: ignore write errors.
        let _ = send_post_headers(&mut stream, &node, "/storage_rpc/v1", 10_000).await;
        slow.push(stream);
    }
    let trickle = tokio::spawn(async move {
        // One byte per 100 ms on every connection, for 20 s at most.
        for _ in 0..200 {
            for stream in &mut slow {
                let _ = stream.write_all(b" ").await;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slow
    });
    // Meanwhile another client is answered.
    assert_eq!(
        get_status("127.0.0.6", &node, "/health", Duration::from_secs(5)).await,
        Some(200),
        "a client on another address must be served during the attack"
    );
    let mut slow = trickle.await.unwrap();
    let mut cut_off = 0;
    for stream in &mut slow {
        if closed_by_peer(stream, Duration::from_millis(100)).await {
            cut_off += 1;
        }
    }
    assert_eq!(cut_off, slow.len(), "every trickling connection was closed by the node");
    let refused = net.metric(&node, "allium_connections_refused_total").await.unwrap();
    assert!(
        refused >= 32,
        "connections over the per-address cap of 8 are refused: {refused}"
    );
}

/// A connection that sends nothing, and a keep-alive connection left idle
/// after an answer, are closed at the header deadline. Before, both stayed
/// open indefinitely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_idle_connections_are_closed() {
    let net = TestNet::start_with(1, "[limits]\nheader_timeout_ms = 1000\n")
        .await
        .unwrap();
    let node = net.net.nodes[0].address.clone();
    let mut silent = connect_from("127.0.0.5", &node).await.unwrap();
    let mut idle = connect_from("127.0.0.5", &node).await.unwrap();
    idle.write_all(format!("GET /health HTTP/1.1\r\nhost: {node}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // The answer is read (and skipped) by closed_by_peer; then the
    // connection idles until the node closes it.
    assert!(
        closed_by_peer(&mut silent, Duration::from_secs(10)).await,
        "silent connection kept open"
    );
    assert!(
        closed_by_peer(&mut idle, Duration::from_secs(10)).await,
        "idle keep-alive kept open"
    );
}
