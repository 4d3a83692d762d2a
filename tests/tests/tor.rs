//! `allium --tor` and `--tor-all` against a private Tor network on loopback
//! (needs the `tor` program; run with `--features tor`, as `.ci/run` does).
//!
//! The Allium network's nodes listen on their own addresses (127.1.0.1,
//! 127.2.0.1, ...); the Tor relays on 127.0.0.1.
//! Direct connections of the two clients come from their own loopback
//! addresses (127.0.0.2 and 127.0.0.4), so a node's access log tells a
//! direct connection from one relayed by a Tor exit, and the socket table
//! tells which process holds the seed's peer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddrV4;
use std::process::Stdio;
use std::time::{Duration, Instant};

use allium_tests::TestNet;
use allium_tests::tor::{PrivateTor, access_log, socket_owner};
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_list_through_a_tor_exit_and_a_message_end_to_end() {
    let tor_dir = tempfile::tempdir().unwrap();
    let tor = PrivateTor::start(tor_dir.path()).unwrap();
    let net = TestNet::start_with(6, "access_log = true\n").await.unwrap();
    let seed: SocketAddrV4 = net.net.seed().address.parse().unwrap();
    let seed_log = net.net.seed().dir.join("node.log");

    // Bob: node list from the seed through Tor (--tor); his guards see him.
    let mut bob = net.client("bob");
    bob.local_address = Some("127.0.0.2".into());
    let (bob_id, _) = bob.init();
    std::fs::write(bob.home.join("config.toml"), tor.client_config("tor = true")).unwrap();
    // Alice: everything through Tor (--tor-all on the command line).
    let mut alice = net.client("alice");
    alice.local_address = Some("127.0.0.4".into());
    let (alice_id, _) = alice.init();
    std::fs::write(alice.home.join("config.toml"), tor.client_config("")).unwrap();

    // Bob watches; his process lives on, and so does the kept-alive
    // connection the exit holds to the seed for him.
    let watch = bob
        .command(&["--json", "watch", "--count", "1", "--timeout-secs", "120"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let through_exit = loop {
        let found = access_log(&seed_log)
            .into_iter()
            .filter(|a| a.path == "/storage_rpc/v1" && a.status == 200)
            .find_map(|a| {
                let peer: SocketAddrV4 = a.peer.parse().ok()?;
                socket_owner(peer, seed, &tor.exit_pids).map(|pid| (peer, pid))
            });
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no node-list request reached the seed from a Tor exit in 60 s; seed log: {}",
            std::fs::read_to_string(&seed_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (peer, exit_pid) = through_exit;
    assert!(tor.exit_pids.contains(&exit_pid));
    assert_ne!(exit_pid, watch.id(), "the seed's peer is an exit relay, not the client");

    // (a) Bob has the node list, and it came from the seed.
    let nodes = allium_tests_ok(&bob.run(&["--json", "nodes"]));
    assert_eq!(nodes[0]["nodes"], 6);
    assert_eq!(nodes[0]["source"], format!("seed {seed}"));
    assert_eq!(nodes[0]["tor"], "seeds");

    // (c) Alice, entirely through Tor, writes to Bob; his watch prints it.
    let sent = allium_tests_ok(&alice.run(&["--tor-all", "--json", "send", &bob_id, "hello through tor"]));
    assert_eq!(sent[0]["status"], "stored");
    let out = tokio::task::spawn_blocking(move || watch.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "watch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["body"], "hello through tor");
    assert_eq!(got["from"], alice_id.as_str());

    // (b) The seed never saw either client's own address, and no node saw
    // Alice's: only Tor exits (127.0.0.1) and nodes reached them.
    let seed_peers: Vec<String> = access_log(&seed_log).into_iter().map(|a| a.peer).collect();
    assert!(
        seed_peers
            .iter()
            .all(|p| !p.starts_with("127.0.0.2:") && !p.starts_with("127.0.0.4:")),
        "the seed saw a client directly: {seed_peers:?}"
    );
    for node in &net.net.nodes {
        let peers: Vec<String> = access_log(&node.dir.join("node.log"))
            .into_iter()
            .map(|a| a.peer)
            .collect();
        assert!(
            !peers.iter().any(|p| p.starts_with("127.0.0.4:")),
            "{} saw Alice's address although she used --tor-all",
            node.name
        );
    }
    eprintln!("node list reached the seed from {peer}, a socket of exit relay pid {exit_pid}");
}

/// JSON lines of a command that must succeed.
fn allium_tests_ok(out: &std::process::Output) -> Vec<Value> {
    assert_eq!(
        out.status.code(),
        Some(0),
        "allium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    allium_tests::Client::json_lines(out)
}
