//! Swarms across real processes: replication survives SIGKILL of a
//! minority, data survives a restart, and nodes refuse a node list that no
//! trusted seed signed.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use support::*;

const HOUR: u64 = 3_600_000;

/// Every hash in `owner`'s mailbox on `address`, paging with `last_hash`.
async fn all_hashes(net: &Net, address: &str, owner: &allium_common::Identity) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut last: Option<String> = None;
    loop {
        let (status, body) = net.rpc(address, &retrieve(owner, last.as_deref(), None)).await;
        assert_eq!(status, 200, "{body}");
        let page = hashes(&body);
        last = page.last().cloned().or(last);
        seen.extend(page);
        if body["more"] != json!(true) {
            return seen;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_messages_survive_killing_two_of_five() {
    let mut net = Net::start(5).await;
    let erin = identity(0xe1);
    let members = net.swarm_of(&erin.account_id()).await;
    assert_eq!(members.len(), 5);
    let mut acknowledged = BTreeSet::new();
    // Which messages each node confirmed, for the restart check.
    let mut confirmed_by: Vec<BTreeSet<String>> = vec![BTreeSet::new(); 5];
    let killed = [1usize, 3];
    for i in 0..120usize {
        if i == 40 || i == 80 {
            let victim = killed[i / 40 - 1];
            let index = net
                .net
                .nodes
                .iter()
                .position(|p| p.ed25519 == members[victim].ed25519.0)
                .unwrap();
            net.net.kill(index).await;
        }
        let target = &members[i % 5];
        let data = format!("message {i}");
        let response = net
            .http
            .post(format!("https://{}/storage_rpc/v1", target.address))
            .json(&store(&erin.account_id(), data.as_bytes(), HOUR))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let Ok(response) = response else { continue };
        if response.status() != 200 {
            continue;
        }
        let body: Value = response.json().await.unwrap();
        let hash = body["hash"].as_str().unwrap().to_owned();
        for (k, m) in members.iter().enumerate() {
            if body["swarm"].get(hex::encode(m.ed25519.0)).is_some() {
                confirmed_by[k].insert(hash.clone());
            }
        }
        acknowledged.insert(hash);
    }
    assert!(
        acknowledged.len() >= 70,
        "most stores are acknowledged, got {}",
        acknowledged.len()
    );
    for (k, m) in members.iter().enumerate() {
        if killed.contains(&k) {
            continue;
        }
        let held = all_hashes(&net, &m.address, &erin).await;
        let missing: Vec<_> = acknowledged.difference(&held).collect();
        assert!(
            missing.is_empty(),
            "member {k} lacks {} acknowledged messages",
            missing.len()
        );
    }

    // A killed node restarts with its database intact.
    let index = net
        .net
        .nodes
        .iter()
        .position(|p| p.ed25519 == members[1].ed25519.0)
        .unwrap();
    net.net.restart(index, FORM_TIMEOUT).await.unwrap();
    let mut held = BTreeSet::new();
    for _ in 0..100 {
        let (status, body) = net.rpc(&members[1].address, &retrieve(&erin, None, None)).await;
        if status == 200 {
            held = all_hashes(&net, &members[1].address, &erin).await;
            if confirmed_by[1].is_subset(&held) {
                break;
            }
        } else {
            assert!(status == 503 || status == 421, "{status} {body}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(!confirmed_by[1].is_empty());
    assert!(
        confirmed_by[1].is_subset(&held),
        "the restarted node kept what it had confirmed"
    );

    // What it missed while down reaches it (retries, or hand-over if the
    // seed dropped and re-listed it).
    let address = net.net.nodes[index].address.clone();
    let mut caught_up = false;
    for _ in 0..150 {
        if net.rpc(&address, &retrieve(&erin, None, None)).await.0 == 200
            && acknowledged.is_subset(&all_hashes(&net, &address, &erin).await)
        {
            caught_up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(caught_up, "the restarted node receives the messages it missed");
}

/// A node whose seed file has the seed's address but another key will not
/// talk to whatever answers there: the TLS pin fails, so it neither
/// announces (the seed never lists it) nor takes a consensus. (Before
/// TLS, it announced and only refused the seed's signature.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_seed_whose_key_is_not_the_pinned_one() {
    let net = Net::start(5).await;
    let dir = tempfile::tempdir().unwrap();
    let forged_seeds = dir.path().join("seeds.toml");
    let wrong = allium_common::seeds::Seed {
        address: net.net.seed().address.clone(),
        ed25519: [0x42; 32],
    };
    std::fs::write(&forged_seeds, allium_common::seeds::render(&[wrong])).unwrap();
    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_allium-node"))
        .args(["run", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--seed-file")
        .arg(&forged_seeds)
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Several announce and refresh rounds (the devnet's are 0.5 s).
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(net.node_list().await.nodes.len(), 5, "the seed never lists it");
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("data/node.json")).unwrap()).unwrap();
    let address = info["address"].as_str().unwrap();
    let health: Value = net
        .http
        .get(format!("https://{address}/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["period"], Value::Null, "{health}");
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    assert!(
        log.contains("the peer's TLS key is not the one it must have"),
        "the refusal is logged: {log}"
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joining_a_swarm_receives_its_messages() {
    let mut net = Net::start(5).await;
    let fay = identity(0xfa);
    let members = net.swarm_of(&fay.account_id()).await;
    let mut stored = BTreeSet::new();
    for i in 0..30 {
        let (status, body) = net
            .rpc(
                &members[i % 5].address,
                &store(&fay.account_id(), format!("m{i}").as_bytes(), HOUR),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        stored.insert(body["hash"].as_str().unwrap().to_owned());
    }
    let index = net.net.add_node(FORM_TIMEOUT).await.unwrap();
    net.net.wait_until_formed(FORM_TIMEOUT).await.unwrap();
    let newcomer = net.net.nodes[index].address.clone();
    let joined = net.swarm_of(&fay.account_id()).await;
    assert!(
        joined.iter().any(|m| m.address == newcomer),
        "the new node joins the swarm below target size"
    );
    let mut held = BTreeSet::new();
    for _ in 0..100 {
        held = all_hashes(&net, &newcomer, &fay).await;
        if held == stored {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        held, stored,
        "hand-over gives the newcomer every live message of its swarm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_node_cleanly_and_its_data_stays() {
    let mut net = Net::start(5).await;
    let gus = identity(0x90);
    let members = net.swarm_of(&gus.account_id()).await;
    let (status, body) = net
        .rpc(&members[0].address, &store(&gus.account_id(), b"kept", HOUR))
        .await;
    assert_eq!(status, 200, "{body}");
    let hash = body["hash"].as_str().unwrap().to_owned();
    let index = net
        .net
        .nodes
        .iter()
        .position(|p| p.ed25519 == members[0].ed25519.0)
        .unwrap();
    // A long-poll in flight is answered, not cut, by the shutdown.
    let http = net.http.clone();
    let address = members[0].address.clone();
    let request = retrieve(&gus, Some(&hash), Some(20_000));
    let poll = tokio::spawn(async move { post_json(&http, &address, &request).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = net.net.terminate(index).await.unwrap();
    assert!(status.success(), "clean exit, got {status}");
    let (poll_status, _) = poll.await.unwrap();
    assert_eq!(poll_status, 200, "the held long-poll got an answer");
    let log = std::fs::read_to_string(net.net.nodes[index].dir.join("node.log")).unwrap();
    assert!(log.contains("stopped"), "shutdown completed: {log}");
    net.net.restart(index, FORM_TIMEOUT).await.unwrap();
    let mut found = false;
    for _ in 0..100 {
        let (status, got) = net.rpc(&members[0].address, &retrieve(&gus, None, None)).await;
        if status == 200 && hashes(&got) == vec![hash.clone()] {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "the message is still there after a clean restart");
}

/// A hung swarm peer (SIGSTOP: its socket accepts, nothing answers) makes
/// one store wait the full 2 s; the stores after it queue its copy without
/// waiting, and it receives every message once it runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_peer_delays_one_store_not_every_one() {
    // The seed keeps the hung node listed, as it would until its probes fail.
    let net = Net::start_with(3, "[seed_mode]\ndrop_after_failures = 100000\n").await;
    let owner = identity(0xa7);
    let members = net.swarm_of(&owner.account_id()).await;
    assert_eq!(members.len(), 3);
    let (hung, target) = (&members[0], &members[1]);
    net.signal(&hung.address, "-STOP");
    let mut stored = BTreeSet::new();
    for i in 0..5u8 {
        let (status, body) = net
            .rpc(&target.address, &store(&owner.account_id(), &[i; 40], HOUR))
            .await;
        assert_eq!(status, 200, "{body}");
        stored.insert(body["hash"].as_str().unwrap().to_owned());
    }
    let timeouts = net
        .metric(&target.address, "allium_replication_sync_timeouts_total")
        .await;
    let not_waited = net.metric(&target.address, "allium_replication_not_waited_total").await;
    net.signal(&hung.address, "-CONT");
    // Without the stall mark every one of the 5 stores would time out.
    assert!((1..5).contains(&timeouts), "{timeouts} stores waited the full timeout");
    assert!(not_waited >= 4, "only {not_waited} copies were queued without waiting");

    // The queued copies reach the peer once it runs again.
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let held = all_hashes(&net, &hung.address, &owner).await;
        if stored.is_subset(&held) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the resumed peer holds {} of {} messages after 90 s",
            held.intersection(&stored).count(),
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A message only one member holds, however it came to be (here: written
/// into its database beside the running node, as a lost replication leaves
/// it), reaches the rest of the swarm through the periodic digest
/// exchange: no store, push, hand-over or sync ever carries it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anti_entropy_repairs_what_only_one_member_holds() {
    use allium_node::storage::{NewMessage, StorageLimits, Store};
    let net = Net::start_with(3, "[timing]\nanti_entropy_interval_ms = 1000\n").await;
    let owner = identity(0xae);
    let members = net.swarm_of(&owner.account_id()).await;
    assert_eq!(members.len(), 3);
    let holder = net.net.nodes.iter().find(|n| n.address == members[0].address).unwrap();
    let now = now_ms();
    let message = NewMessage::new(
        owner.account_id().into(),
        allium_common::rpc::Namespace::DEFAULT,
        now,
        now + HOUR,
        b"only here".to_vec(),
    );
    let mut store = Store::open(holder.dir.join("messages.db"), StorageLimits::default()).unwrap();
    store.insert(&message, now).unwrap();
    drop(store);

    for other in &members[1..] {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !all_hashes(&net, &other.address, &owner).await.contains(&message.hash) {
            assert!(
                std::time::Instant::now() < deadline,
                "{} never got the message",
                other.address
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    // It came from the holder answering a reconcile: the one message, not
    // its bucket (counted before the push is queued, so already visible).
    let pushed = net
        .metric(&members[0].address, "allium_anti_entropy_messages_pushed_total")
        .await;
    assert!((1..=2).contains(&pushed), "the holder pushed {pushed} messages");
}
