//! The client against nodes that fail, lie or stall: the `allium` CLI run
//! against real node processes (each on its own loopback address), each
//! test checking that what the nodes did could not lock the client out,
//! make it believe a false answer, or steer its choice of guards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use allium_client::home::Home;
use allium_tests::{Client, TestNet, stderr};
use serde_json::Value;

/// The last JSON line of a command's output.
fn last_line(out: &std::process::Output) -> Value {
    Client::json_lines(out).pop().unwrap_or(Value::Null)
}

/// `allium --json nodes`: the relays of the client's paths, by address.
fn paths_of(client: &Client) -> Vec<Vec<String>> {
    let out = client.run(&["--json", "nodes"]);
    assert_eq!(out.status.code(), Some(0), "nodes failed: {}", stderr(&out));
    last_line(&out)["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p.as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

/// The guards of the client's paths, in path order.
fn guards_of(client: &Client) -> Vec<String> {
    paths_of(client).iter().map(|p| p[0].clone()).collect()
}

/// Sends `sig` (`-STOP`, `-CONT`) to the node at `address`.
fn signal(net: &TestNet, address: &str, sig: &str) {
    let i = net.index_of(address).unwrap();
    let pid = net.net.nodes[i].pid().unwrap().to_string();
    let status = std::process::Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(status.success(), "kill {sig} {pid}");
}

/// Runs `allium --json inbox`, which must not fail (0: messages, 1: none).
fn inbox(client: &Client) -> std::process::Output {
    let out = client.run(&["--json", "inbox"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "inbox failed: {}",
        stderr(&out)
    );
    out
}

/// Forced guard rotation. Middles and exits that die (so that every
/// request through them fails, and the relay before says so) do not make
/// the client pick a new guard: its paths are rebuilt around the same two
/// guards. A guard that
/// is killed is replaced, within the budget; once the budget of both paths
/// is spent and both guards are down, the client says so instead of
/// picking fresh guards. Before, a relay's report that the next hop was
/// down gave the path a random new guard, so a hostile middle or exit
/// could make the client show its address to node after node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_guard_rotation_is_refused() {
    let mut net = TestNet::start_with(
        12,
        "[timing]\nhop_timeout_ms = 4000\n[seed_mode]\ndrop_after_failures = 1000\n",
    )
    .await
    .unwrap();
    let alice = net.client("alice");
    alice.init();
    let paths = paths_of(&alice);
    let before = guards_of(&alice);
    assert_eq!(before.len(), 2);

    // Every middle and exit that is not also a guard dies.
    let mut dead: Vec<String> = paths
        .iter()
        .flat_map(|p| p[1..].iter().cloned())
        .filter(|a| !before.contains(a))
        .collect();
    dead.sort();
    dead.dedup();
    for node in &dead {
        net.net.kill(net.index_of(node).unwrap()).await;
    }
    // Each command goes through one of the two paths at random, meets a
    // dead relay, is told so by the relay before it, and tries again.
    for n in 0..8 {
        inbox(&alice);
        assert_eq!(
            guards_of(&alice),
            before,
            "after command {n}, dead middles and exits changed a guard"
        );
    }
    let nodes = last_line(&alice.run(&["--json", "nodes"]));
    assert_eq!(nodes["guard_replacements"], serde_json::json!([]), "{nodes}");

    // The middles and exits come back (same address and key), so the only
    // dead node is the next one killed: a replacement guard is never one
    // of them (which the client cannot know, and would replace again).
    for node in &dead {
        net.net
            .restart(net.index_of(node).unwrap(), Duration::from_secs(30))
            .await
            .unwrap();
    }
    // The guard of path 0 dies: it is replaced (the host refuses the
    // connection, so the network is up), and path 1 keeps its guard.
    let dead = before[0].clone();
    net.net.kill(net.index_of(&dead).unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while guards_of(&alice).contains(&dead) {
        assert!(Instant::now() < deadline, "the dead guard {dead} was never replaced");
        inbox(&alice);
    }
    let after = guards_of(&alice);
    assert_eq!(after.len(), 2);
    assert_eq!(after[1], before[1], "the other path keeps its guard");
    let nodes = last_line(&alice.run(&["--json", "nodes"]));
    let replaced = nodes["guard_replacements"].as_array().unwrap();
    assert_eq!(replaced.len(), 1, "{nodes}");
    assert_eq!(replaced[0]["path"], 0);

    // Both budgets spent (as if by two more replacements each in the last
    // hour), and both guards die: the client keeps them and says why,
    // instead of showing its address to fresh guards.
    {
        let mut home = Home::open(&alice.home).unwrap();
        let mut budget = allium_client::guards::GuardBudget::default();
        let now = allium_client::now_ms();
        for path in 0..2 {
            budget.record(path, now - 2);
            budget.record(path, now - 1);
        }
        home.set_meta(allium_client::guards::META_KEY, &budget.to_text())
            .unwrap();
    }
    for guard in &after {
        net.net.kill(net.index_of(guard).unwrap()).await;
    }
    let out = alice.run(&["inbox"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("neither of this client's guards"),
        "{}",
        stderr(&out)
    );
    assert_eq!(guards_of(&alice), after, "no fresh guard was picked");
}

/// A swarm member that confirms a store alone is not enough: with every
/// other member of the recipient's swarm hung, the member that takes the
/// message answers (after its replication deadline) with only its own
/// confirmation, and `send` reports the message not delivered and keeps it
/// in the outbox. Once the swarm is back, a later command delivers it with
/// two confirmations. Before, one node's answer was taken as delivery, so a
/// single member that dropped the message could lose it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_confirmation_is_not_enough() {
    let net = TestNet::start_with(
        12,
        "[timing]\nhop_timeout_ms = 4000\n[seed_mode]\ndrop_after_failures = 1000\n",
    )
    .await
    .unwrap();
    let alice = net.client("alice");
    alice.init();
    let list = allium_node::membership::fetch_node_list(net.net.links(), &net.net.seed().address)
        .await
        .unwrap();
    // A recipient in a swarm of at most six (the smaller swarm if they
    // differ), and Alice's paths through nodes outside it: the test is
    // about the swarm's answer, not about hung relays.
    let mut n = 0;
    let (bob, b_id, members) = loop {
        let bob = net.client(&format!("bob-{n}"));
        let (b_id, _) = bob.init();
        let account: allium_common::AccountId = b_id.parse().unwrap();
        let swarm = list.swarm_ring().swarm_of(&account).unwrap();
        let members: Vec<allium_common::node_list::NodeEntry> = list.swarm_members(swarm).cloned().collect();
        if members.len() <= 6 {
            break (bob, b_id, members);
        }
        n += 1;
        assert!(n < 30, "no recipient in a swarm of at most six");
    };
    let outside: Vec<String> = list
        .nodes
        .iter()
        .filter(|n| members.iter().all(|m| m.ed25519 != n.ed25519))
        .map(|n| hex::encode(n.ed25519.0))
        .collect();
    assert!(outside.len() >= 4, "{} nodes outside the swarm", outside.len());
    alice.run(&["nodes"]);
    {
        let paths = serde_json::json!([
            [&outside[0], &outside[2], &outside[3]],
            [&outside[1], &outside[2], &outside[3]]
        ]);
        let mut home = Home::open(&alice.home).unwrap();
        home.set_meta(allium_client::messenger::PATHS_META, &paths.to_string())
            .unwrap();
    }
    // Every member but one hangs.
    let stopped: Vec<String> = members[1..].iter().map(|m| m.address.clone()).collect();
    for m in &stopped {
        signal(&net, m, "-STOP");
    }
    let out = alice.run(&["--json", "send", &b_id, "confirmed by one"]);
    let line = last_line(&out);
    assert_eq!(out.status.code(), Some(1), "{line} {}", stderr(&out));
    assert_eq!(line["status"], "pending", "{line}");
    assert!(line["error"].as_str().unwrap().contains("confirmations"), "{line}");
    let pending = Home::open(&alice.home).unwrap().outbox_pending().unwrap();
    assert_eq!(pending.len(), 1, "the message stays in the outbox");

    for m in &stopped {
        signal(&net, m, "-CONT");
    }
    // A later command (once the retry is due) delivers it.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = inbox(&alice);
        let delivered = Client::json_lines(&out)
            .iter()
            .any(|l| l["status"] == "stored" && l["from_outbox"] == true);
        if delivered {
            break;
        }
        assert!(Instant::now() < deadline, "never delivered: {}", stderr(&out));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(Home::open(&alice.home).unwrap().outbox_pending().unwrap().is_empty());
    let got = bob.run(&["--json", "inbox"]);
    assert_eq!(got.status.code(), Some(0), "{}", stderr(&got));
    assert_eq!(Client::json_lines(&got)[0]["body"], "confirmed by one");
}

/// A client whose clock is five minutes off (fast for the sender, slow for
/// the recipient) is told so by the first node it signs a timestamp for,
/// corrects its clock by what the node said, and sends and reads as usual;
/// the correction is kept for later commands. Before, every store and
/// retrieve of such a client was refused (406), so it could neither send
/// nor read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_with_a_wrong_clock_corrects_it() {
    let net = TestNet::start(8).await.unwrap();
    let alice = net.client("alice");
    let bob = net.client("bob");
    alice.init();
    let (b_id, _) = bob.init();
    let skewed = |client: &Client, skew_ms: i64, args: &[&str]| {
        client
            .command(args)
            .env(allium_client::CLOCK_SKEW_ENV, skew_ms.to_string())
            .output()
            .unwrap()
    };
    const FIVE_MINUTES: i64 = 5 * 60 * 1000;
    for (n, text) in ["from a fast clock", "and again"].iter().enumerate() {
        let out = skewed(&alice, FIVE_MINUTES, &["--json", "send", &b_id, text]);
        assert_eq!(out.status.code(), Some(0), "send {n}: {}", stderr(&out));
        assert_eq!(last_line(&out)["status"], "stored");
    }
    let out = skewed(&bob, -FIVE_MINUTES, &["--json", "inbox"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut bodies: Vec<String> = Client::json_lines(&out)
        .iter()
        .filter_map(|l| l["body"].as_str().map(str::to_owned))
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["and again", "from a fast clock"]);
    // The offsets were kept, each within the nodes' window of the truth.
    for (client, skew) in [(&alice, FIVE_MINUTES), (&bob, -FIVE_MINUTES)] {
        let nodes = last_line(&skewed(client, skew, &["--json", "nodes"]));
        let offset = nodes["clock_offset_ms"].as_i64().unwrap();
        assert!((offset + skew).abs() <= 60_000, "offset {offset} for a skew of {skew}");
    }
}
