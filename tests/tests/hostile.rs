//! The adversarial suite: one test per kind of attack a stranger, a client,
//! a relay or a swarm member can make, run against real node processes
//! (each on its own loopback address), each checking what the attacker got
//! and that honest users are still served. The attackers' connections come
//! from 127.0.0.5..9, which no node uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use allium_tests::TestNet;
use allium_tests::hostile::{closed_by_peer, connect_from, get_status, onion, post_from, send_post_headers};
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
        // A connection over the cap is closed before its TLS handshake.
        let Ok(mut stream) = connect_from("127.0.0.5", &node).await else {
            continue;
        };
        // One closed at once may fail this write too: ignore write errors.
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

/// The sum of a counter over every service node.
async fn total(net: &TestNet, metric: &str) -> u64 {
    let mut sum = 0;
    for node in &net.net.nodes {
        sum += net.metric(&node.address, metric).await.unwrap_or(0);
    }
    sum
}

/// One client request whose onion names two nodes in turn 60 times (a
/// relay loop) is relayed at most `MAX_RELAYS` times in all and then
/// refused; an onion that names a node as its own next hop is refused by
/// that node without forwarding. Before the hop count, the loop was
/// relayed 60 times and answered 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_loops_and_self_forwards_are_refused() {
    use allium_common::peer::MAX_RELAYS;
    let net = TestNet::start(4).await.unwrap();
    let list = allium_node::membership::fetch_node_list(net.net.links(), &net.net.seed().address)
        .await
        .unwrap();
    let (a, b, destination) = (&list.nodes[0], &list.nodes[1], &list.nodes[2]);
    let info = serde_json::json!({"method": "info"});

    let mut path = Vec::new();
    for _ in 0..30 {
        path.extend([a, b]);
    }
    path.push(destination);
    let looped = onion(&path, &info);
    let (status, body) = post_from("127.0.0.5", &a.address, "/onion_req/v2", looped.body)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("relays"), "{text}");
    let relayed = total(&net, "allium_onion_relayed_hops_total").await;
    assert!(
        relayed <= u64::from(MAX_RELAYS),
        "one request was relayed {relayed} times"
    );

    let c = &list.nodes[3];
    let to_itself = onion(&[c, c, destination], &info);
    let (status, body) = post_from("127.0.0.5", &c.address, "/onion_req/v2", to_itself.body)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("own next hop"), "{text}");
    assert_eq!(
        total(&net, "allium_onion_relayed_hops_total").await,
        relayed,
        "nothing was forwarded"
    );
    // An honest 3-relay path still works.
    let honest = onion(&[a, b, c, destination], &info);
    let (status, _) = post_from("127.0.0.5", &a.address, "/onion_req/v2", honest.body)
        .await
        .unwrap();
    assert_eq!(status, 200);
}

/// The node list, from the seed.
async fn node_list(net: &TestNet) -> allium_common::consensus::Consensus {
    allium_node::membership::fetch_node_list(net.net.links(), &net.net.seed().address)
        .await
        .unwrap()
}

/// The identity of service node `address` (the test reads its key file, as
/// an attacker who took over that node would).
fn key_of(net: &TestNet, address: &str) -> allium_common::Identity {
    let i = net.index_of(address).unwrap();
    allium_node::keys::load_or_create(&net.net.nodes[i].dir).unwrap().0
}

/// POSTs a body signed as `by` (node headers) to `to`'s `path`, over TLS
/// as `by`, the member it claims to be.
async fn post_signed(
    by: &allium_common::Identity,
    to: &str,
    path: &str,
    domain: &[u8],
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    allium_tests::hostile::post_signed_over(Some(by), by, to, path, domain, body).await
}

/// A listed node that is not a member of an account's swarm pushes a
/// message into that account's mailbox on a member: nothing is stored or
/// confirmed. A member's push of the same message is taken. Before the
/// role check, any listed node could push into any mailbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_from_a_node_outside_the_swarm_is_refused() {
    // While the network formed, every node was in one swarm for a moment;
    // a short hand-over grace lets that past expire.
    let net = TestNet::start_with(12, "[timing]\nhandover_grace_ms = 500\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let list = node_list(&net).await;
    assert!(list.swarm_ring().ids().len() >= 2, "two swarms at least");
    let victim = allium_common::Identity::from_ed25519_seed(&[0x51; 32]);
    let account = victim.account_id();
    let swarm = list.swarm_ring().swarm_of(&account).unwrap();
    let members: Vec<_> = list.swarm_members(swarm).collect();
    let outsider = list.nodes.iter().find(|n| n.swarm_id != swarm).unwrap();
    let target = members[0];
    let now = allium_tests::hostile::now_ms();
    let push = |to: &allium_common::node_list::NodeEntry| {
        serde_json::json!({
            "to": hex::encode(to.ed25519.0),
            "sent": now,
            "messages": [{
                "pubkey": account.to_string(),
                "timestamp": now,
                "expiry": now + 3_600_000,
                "data": allium_common::encoding::to_base64(b"planted by an outsider"),
            }],
        })
    };
    let (status, answer) = post_signed(
        &key_of(&net, &outsider.address),
        &target.address,
        "/swarm/v1/push",
        allium_common::peer::PUSH_DOMAIN,
        &push(target),
    )
    .await;
    let confirmed = answer["confirmations"].as_array().map_or(0, Vec::len);
    assert_eq!(confirmed, 0, "status {status}: {answer}");
    let stored = allium_tests::hostile::retrieve_direct(&victim, &target.address).await;
    assert!(stored.is_empty(), "the outsider's message was stored: {stored:?}");
    // A member may push it.
    let (status, answer) = post_signed(
        &key_of(&net, &members[1].address),
        &target.address,
        "/swarm/v1/push",
        allium_common::peer::PUSH_DOMAIN,
        &push(target),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["confirmations"].as_array().map_or(0, Vec::len), 1, "{answer}");
}

/// A swarm member's signed sync request, played again, and the same
/// request sent to another member than the one it names, are refused.
/// Before, a captured sync could be replayed for its 60 s window at any
/// member of the swarm, each time making it push the whole swarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_or_redirected_sync_is_refused() {
    let net = TestNet::start(5).await.unwrap();
    let list = node_list(&net).await;
    let (a, b, c) = (&list.nodes[0], &list.nodes[1], &list.nodes[2]);
    assert!(a.swarm_id == b.swarm_id && b.swarm_id == c.swarm_id, "one swarm of 5");
    let sync = serde_json::json!({"to": hex::encode(b.ed25519.0), "sent": allium_tests::hostile::now_ms()});
    let by = key_of(&net, &a.address);
    let domain = allium_common::peer::SYNC_DOMAIN;
    let (first, _) = post_signed(&by, &b.address, "/swarm/v1/sync", domain, &sync).await;
    assert_eq!(first, 200);
    let (again, answer) = post_signed(&by, &b.address, "/swarm/v1/sync", domain, &sync).await;
    assert_eq!(again, 400, "a replay was taken: {answer}");
    let (elsewhere, answer) = post_signed(&by, &c.address, "/swarm/v1/sync", domain, &sync).await;
    assert_eq!(elsewhere, 400, "a sync for b was taken by c: {answer}");
}

/// A stranger fills someone's inbox with 60 messages of 76 KB. A retrieve
/// answers at most 2 MiB of them (and says there is more); a batch of 20
/// retrieves together no more; the owner's `allium inbox` pages past them
/// (reporting that it skipped them) and reads the real message behind
/// them. Before, one retrieve answered all 4.6 MB, a batch of 20 answered
/// 91 MB, and the owner's inbox failed on every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_inbox_pages_in_bounded_answers_and_its_owner_reads_on() {
    use allium_common::rpc::MAX_RETRIEVE_SIZE;
    use allium_tests::hostile::{data_bytes, identity_of, retrieve_request, store_request};
    let net = TestNet::start(6).await.unwrap();
    let alice = net.client("alice");
    let bob = net.client("bob");
    alice.init();
    let (bob_id, bob_phrase) = bob.init();
    let bob_key = identity_of(&bob_phrase);
    let list = node_list(&net).await;
    let swarm = list.swarm_ring().swarm_of(&bob_key.account_id()).unwrap();
    let target = list.swarm_members(swarm).next().unwrap().address.clone();
    for i in 0..60u8 {
        let junk: Vec<u8> = (0..76_000u32).map(|j| (j as u8) ^ i).collect();
        let store = store_request(&bob_key.account_id(), &junk);
        let (status, body) = post_from("127.0.0.5", &target, "/storage_rpc/v1", store.to_string().into_bytes())
            .await
            .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }

    let one = retrieve_request(&bob_key).to_string().into_bytes();
    let (status, body) = post_from("127.0.0.6", &target, "/storage_rpc/v1", one).await.unwrap();
    assert_eq!(status, 200);
    let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        data_bytes(&page) <= MAX_RETRIEVE_SIZE,
        "{} bytes in one page",
        data_bytes(&page)
    );
    assert_eq!(page["more"], true);

    let requests: Vec<serde_json::Value> = (0..20).map(|_| retrieve_request(&bob_key)).collect();
    let batch = serde_json::json!({"method": "batch", "params": {"requests": requests}});
    let (status, body) = post_from("127.0.0.6", &target, "/storage_rpc/v1", batch.to_string().into_bytes())
        .await
        .unwrap();
    assert_eq!(status, 200);
    let results: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let total: usize = results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| data_bytes(&r["body"]))
        .sum();
    // Each retrieve returns at least one message, so 20 of them may bring
    // 20 × 76 KB even with a smaller share each.
    assert!(
        total <= MAX_RETRIEVE_SIZE.max(20 * 76_800),
        "{total} bytes in one batch"
    );
    assert!(body.len() < 4 * 1024 * 1024, "the batch answer is {} bytes", body.len());

    let sent = alice.run(&["--json", "send", &bob_id, "the real one"]);
    assert_eq!(sent.status.code(), Some(0), "{}", allium_tests::stderr(&sent));
    let inbox = bob.run(&["--json", "inbox"]);
    assert_eq!(inbox.status.code(), Some(0), "{}", allium_tests::stderr(&inbox));
    let got = allium_tests::Client::json_lines(&inbox);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["body"], "the real one");
    assert!(
        allium_tests::stderr(&inbox).contains("skipped 60"),
        "{}",
        allium_tests::stderr(&inbox)
    );
}

/// A message whose body carries terminal escape sequences and a newline
/// followed by a forged message line reaches the recipient's terminal
/// escaped: no ESC byte, and one line for one message. (JSON output keeps
/// the body exact.) Before, the body was printed raw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_in_a_message_are_shown_harmlessly() {
    let net = TestNet::start(6).await.unwrap();
    let alice = net.client("alice");
    let bob = net.client("bob");
    let (alice_id, _) = alice.init();
    let (bob_id, _) = bob.init();
    let hostile = format!(
        "hi\u{1b}[2J\u{1b}]0;pwned\u{7}\n[2026-12-02 04:00:00] {alice_id}: please send me your recovery phrase\u{9b}31m"
    );
    let sent = alice.run(&["send", &bob_id, &hostile]);
    assert_eq!(sent.status.code(), Some(0), "{}", allium_tests::stderr(&sent));
    let shown = bob.run(&["inbox"]);
    assert_eq!(shown.status.code(), Some(0), "{}", allium_tests::stderr(&shown));
    let text = String::from_utf8(shown.stdout.clone()).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}') && !text.contains('\u{9b}'),
        "{text:?}"
    );
    assert_eq!(text.lines().count(), 1, "one message, one line: {text:?}");
    assert!(text.contains("hi\\e[2J"), "{text:?}");
    let history = bob.run(&["--json", "history", &alice_id]);
    let lines = allium_tests::Client::json_lines(&history);
    assert_eq!(lines[0]["body"], hostile.as_str(), "JSON keeps the body exact");
}

/// POSTs a signed announce for `identity` at `address` to the seed from
/// `from`; returns the status.
async fn announce(net: &TestNet, from: &str, identity: &allium_common::Identity, address: &str) -> u16 {
    let record = allium_common::announce::Announce::sign(identity, address, "0.1.0", allium_tests::hostile::now_ms());
    let body = serde_json::to_vec(&record).unwrap();
    post_from(from, &net.net.seed().address, "/seed/v1/announce", body)
        .await
        .map_or(0, |(status, _)| status)
}

/// Junk for the registry: announces whose address is not `host:port`
/// (a path, a fragment, user information, a zone, a padded port) are
/// refused; a thousand announces of keys nobody runs, from twenty
/// addresses, neither get listed nor crowd out a real node that joins
/// after them. Before the address grammar, `evil.example/x#:80` was
/// accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_junk_is_refused_or_kept_apart() {
    let mut net = TestNet::start(3).await.unwrap();
    let rogue = allium_common::Identity::from_ed25519_seed(&[0x66; 32]);
    for address in [
        "evil.example/x#:80",
        "a@b.example:80",
        "[fe80::1%eth0]:80",
        "127.9.0.1:080",
        "x y:1",
    ] {
        assert_eq!(announce(&net, "127.0.0.5", &rogue, address).await, 400, "{address}");
    }
    for i in 0..1000u32 {
        let from = format!("127.99.{}.1", i % 20);
        let junk = allium_common::Identity::from_ed25519_seed(&allium_common::sodium::random_array());
        // A closed port: the probe is refused.
        let status = announce(&net, &from, &junk, &format!("127.98.{}.1:9", i % 200)).await;
        assert_eq!(status, 200, "announce {i}");
    }
    let seed = net.net.seed().address.clone();
    let pending = net.metric(&seed, "allium_seed_pending").await.unwrap();
    assert!(pending <= 1024, "{pending} announces pending");
    assert_eq!(node_list(&net).await.nodes.len(), 3, "no junk listed");
    // A real node joins after the flood.
    net.net.add_node(Duration::from_secs(30)).await.unwrap();
    net.net.wait_until_formed(Duration::from_secs(30)).await.unwrap();
    assert_eq!(node_list(&net).await.nodes.len(), 4);
    assert_eq!(
        net.metric(&seed, "allium_seed_known").await,
        Some(4),
        "junk never became known"
    );
}

/// At most two listed nodes per IP address: a third node on one address
/// answers its probes but is not listed. Before, every node on one address
/// was listed, so one server could pose as any number of nodes. (Swarms of
/// one here, so that the two it may list are not also kept apart by the
/// one-node-per-/16 rule of a swarm.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_two_nodes_per_address_are_listed() {
    let mut net = TestNet::start_with(
        3,
        "[seed_mode]\nmin_swarm_size = 1\ntarget_swarm_size = 1\nmax_swarm_size = 2\n",
    )
    .await
    .unwrap();
    let shared: std::net::IpAddr = "127.50.0.1".parse().unwrap();
    for _ in 0..3 {
        net.net.add_node_at(shared, Duration::from_secs(30)).await.unwrap();
    }
    // Wait for the three newcomers' probes, then count.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let known = net
            .metric(&net.net.seed().address, "allium_seed_known")
            .await
            .unwrap_or(0);
        if known == 6 || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let list = node_list(&net).await;
    let on_shared = list
        .nodes
        .iter()
        .filter(|n| n.address.starts_with("127.50.0.1:"))
        .count();
    assert_eq!(
        on_shared,
        2,
        "{:?}",
        list.nodes.iter().map(|n| &n.address).collect::<Vec<_>>()
    );
    assert_eq!(list.nodes.len(), 5);
}

/// A "node" whose probe answer starts and never ends cannot stall the
/// seed: a node that dies meanwhile is still dropped from the list. Before,
/// the probe round waited for that answer for ever, and the dead node
/// stayed listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_never_finishes_stalls_nothing() {
    use tokio::io::AsyncReadExt as _;
    let mut net = TestNet::start(4).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.60.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{")
                .await;
            held.push(stream);
        }
    });
    let slow = allium_common::Identity::from_ed25519_seed(&[0x77; 32]);
    assert_eq!(announce(&net, "127.0.0.5", &slow, &address).await, 200);
    // Let a probe round reach the slow node, then kill a real one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    net.net.kill(0).await;
    net.net
        .wait_until_formed(Duration::from_secs(30))
        .await
        .expect("the dead node is dropped although a probe hangs");
    assert_eq!(node_list(&net).await.nodes.len(), 3);
}

/// Owner requests cannot be played again by whoever saw them: a `delete`
/// signed without a time (protocol 1) is refused; a `delete` or `expire`
/// played two minutes after it was signed is refused; a `delete_all`
/// played again deletes nothing stored after it was signed; an `expire`
/// played after a later one changes nothing; an `expire` into the past is
/// refused. Before, a `delete` signature was valid for ever, and a
/// `delete_all` played within its minute deleted what came after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_requests_cannot_be_replayed() {
    use allium_tests::hostile::{
        delete_all_request, delete_request, expire_request, now_ms, retrieve_request, rpc, store_request,
    };
    let net = TestNet::start(5).await.unwrap();
    let owner = allium_common::Identity::from_ed25519_seed(&[0x71; 32]);
    let node = node_list(&net).await.nodes[0].address.clone();
    let stored = |data: &'static [u8]| {
        let node = node.clone();
        let request = store_request(&owner.account_id(), data);
        async move { rpc(&node, &request).await.1["hash"].as_str().unwrap().to_owned() }
    };
    let a = stored(b"first").await;

    // Protocol 1's delete: "delete" ‖ hashes, no time.
    let mut untimed = delete_request(&owner, std::slice::from_ref(&a), now_ms());
    untimed["params"]["signature"] = serde_json::json!(allium_common::encoding::to_base64(
        &owner.sign(format!("delete{a}").as_bytes())
    ));
    untimed["params"].as_object_mut().unwrap().remove("timestamp");
    let (status, body) = rpc(&node, &untimed).await;
    assert!(
        status == 400 || status == 401,
        "an untimed delete was taken: {status} {body}"
    );

    // Signed two minutes ago: refused, with the skew.
    let (status, body) = rpc(
        &node,
        &delete_request(&owner, std::slice::from_ref(&a), now_ms() - 120_000),
    )
    .await;
    assert_eq!(status, 406, "{body}");
    let (status, body) = rpc(
        &node,
        &expire_request(&owner, std::slice::from_ref(&a), now_ms() + 60_000, now_ms() - 120_000),
    )
    .await;
    assert_eq!(status, 406, "{body}");

    // delete_all, played again after a new message came: the new one stays.
    let signed_at = now_ms();
    let wipe = delete_all_request(&owner, signed_at);
    let (status, body) = rpc(&node, &wipe).await;
    assert_eq!(
        (status, body["deleted"].clone()),
        (200, serde_json::json!([a])),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    let b = stored(b"second").await;
    let (status, body) = rpc(&node, &wipe).await;
    assert_eq!(
        (status, body["deleted"].clone()),
        (200, serde_json::json!([])),
        "{body}"
    );
    let (_, page) = rpc(&node, &retrieve_request(&owner)).await;
    assert_eq!(page["messages"][0]["hash"], b.as_str());

    // Two expires; the older played again last changes nothing.
    let t1 = now_ms();
    let shorter = expire_request(&owner, std::slice::from_ref(&b), t1 + 600_000, t1);
    let longer = expire_request(&owner, std::slice::from_ref(&b), t1 + 1_200_000, t1 + 1);
    assert_eq!(rpc(&node, &shorter).await.1["updated"], serde_json::json!([b]));
    assert_eq!(rpc(&node, &longer).await.1["updated"], serde_json::json!([b]));
    let (status, body) = rpc(&node, &shorter).await;
    assert_eq!(
        (status, body["updated"].clone()),
        (200, serde_json::json!([])),
        "{body}"
    );
    let (_, page) = rpc(&node, &retrieve_request(&owner)).await;
    assert_eq!(page["messages"][0]["expiration"], t1 + 1_200_000);

    // Into the past: refused.
    let now = now_ms();
    let (status, body) = rpc(&node, &expire_request(&owner, std::slice::from_ref(&b), now - 1, now)).await;
    assert_eq!(status, 400, "{body}");
}

/// A swarm member that pushes a message into an owner-signed namespace
/// without the owner's signature of it gets nothing stored; with the
/// owner's signature (which covers the message itself) it is taken.
/// Before, any listed node could write into any namespace by pushing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_into_an_owner_namespace_needs_the_owners_signature() {
    use allium_common::rpc::{Namespace, message_hash, store_signed_bytes};
    let net = TestNet::start(5).await.unwrap();
    let list = node_list(&net).await;
    let (member, target) = (&list.nodes[0], &list.nodes[1]);
    let owner = allium_common::Identity::from_ed25519_seed(&[0x52; 32]);
    let now = allium_tests::hostile::now_ms();
    let data = b"owner's settings";
    let mut message = serde_json::json!({
        "pubkey": owner.account_id().to_string(),
        "namespace": 5,
        "timestamp": now,
        "expiry": now + 3_600_000,
        "data": allium_common::encoding::to_base64(data),
    });
    let push = |message: &serde_json::Value| serde_json::json!({"to": hex::encode(target.ed25519.0), "sent": allium_tests::hostile::now_ms(), "messages": [message]});
    let by = key_of(&net, &member.address);
    let domain = allium_common::peer::PUSH_DOMAIN;
    let (status, answer) = post_signed(&by, &target.address, "/swarm/v1/push", domain, &push(&message)).await;
    assert_eq!(
        answer["confirmations"].as_array().map_or(0, Vec::len),
        0,
        "{status} {answer}"
    );
    let hash = message_hash(&owner.account_id().into(), Namespace(5), data);
    message["pubkey_ed25519"] = serde_json::json!(hex::encode(owner.ed25519_pk()));
    message["signature"] = serde_json::json!(allium_common::encoding::to_base64(&owner.sign(&store_signed_bytes(
        Namespace(5),
        now,
        &hash
    ))));
    let (status, answer) = post_signed(&by, &target.address, "/swarm/v1/push", domain, &push(&message)).await;
    assert_eq!(
        answer["confirmations"].as_array().map_or(0, Vec::len),
        1,
        "{status} {answer}"
    );
}

/// An owner's `delete_all` that reaches one member while another is hung
/// is passed on until that member applies it, even when the retry comes
/// after the request's minute is over. Before, the late retry was refused
/// as clock skew, counted as delivered, and the member kept the message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_delete_is_retried_until_applied() {
    use allium_tests::hostile::{delete_all_request, now_ms, retrieve_direct, rpc, store_request};
    let net = TestNet::start_with(
        5,
        "[timing]\nhop_timeout_ms = 1000\n[seed_mode]\ndrop_after_failures = 1000\n",
    )
    .await
    .unwrap();
    let list = node_list(&net).await;
    let (a, hung) = (list.nodes[0].address.clone(), list.nodes[1].address.clone());
    let owner = allium_common::Identity::from_ed25519_seed(&[0x72; 32]);
    // Sent 58 s ago, deleted with a request signed 55 s ago: by the time
    // the hung member answers, the request is over a minute old.
    let mut store = store_request(&owner.account_id(), b"to be deleted");
    store["params"]["timestamp"] = serde_json::json!(now_ms() - 58_000);
    let (_, stored) = rpc(&a, &store).await;
    let hash = stored["hash"].as_str().unwrap().to_owned();
    eventually(|| async { retrieve_direct(&owner, &hung).await.contains(&hash) }).await;

    let pid = net.net.nodes[net.index_of(&hung).unwrap()].pid().unwrap().to_string();
    let signal = |sig: &str| std::process::Command::new("kill").args([sig, &pid]).status().unwrap();
    assert!(signal("-STOP").success());
    let (status, body) = rpc(&a, &delete_all_request(&owner, now_ms() - 55_000)).await;
    assert_eq!(
        (status, body["deleted"].clone()),
        (200, serde_json::json!([hash])),
        "{body}"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert!(signal("-CONT").success());
    eventually(|| async { !retrieve_direct(&owner, &hung).await.contains(&hash) }).await;
}

/// Waits up to 60 s for `check` to hold.
async fn eventually<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "did not happen within 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A node whose store fills up answers stores with 507 and says so (its
/// metrics, and the seed from its probe answers), keeps serving reads, and
/// takes stores again as soon as space comes back, without a restart. The
/// node runs with its log going to /dev/full, as a node whose disk is full
/// does. Before, the first warning it could not write panicked the store's
/// writer thread, and every store was answered 503 until a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_says_so_serves_reads_and_recovers_without_a_restart() {
    use allium_tests::hostile::{now_ms, retrieve_request, rpc, store_request};
    let mut net = TestNet::start_with(
        5,
        "[limits]\nmax_total_bytes = 400000\n[timing]\nexpiry_sweep_ms = 500\n",
    )
    .await
    .unwrap();
    // Node 0 again, its log on a full device.
    let node = net.net.nodes[0].address.clone();
    let data_dir = net.net.nodes[0].dir.clone();
    net.net.terminate(0).await.unwrap();
    let _full_log = tokio::process::Command::new(allium_tests::bin_dir().unwrap().join("allium-node"))
        .arg("run")
        .arg("--config")
        .arg(net.net.dir.join("local-node.toml"))
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--seed-file")
        .arg(&net.net.seed_file)
        .args(["--listen", &node])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let owner = allium_common::Identity::from_ed25519_seed(&[0x73; 32]);
    let store = |n: u32| {
        let mut request = store_request(&owner.account_id(), &vec![(n % 251) as u8; 76_000]);
        request["params"]["ttl"] = serde_json::json!(10_000);
        request["params"]["timestamp"] = serde_json::json!(now_ms());
        request
    };
    eventually(|| async { rpc(&node, &store(0)).await.0 == 200 }).await;
    let mut refused = None;
    for n in 1..20 {
        let (status, body) = rpc(&node, &store(n)).await;
        if status != 200 {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("the store never filled up");
    assert_eq!(status, 507, "{body}");
    assert!(body["message"].as_str().unwrap().contains("full"), "{body}");
    assert_eq!(
        rpc(&node, &retrieve_request(&owner)).await.0,
        200,
        "reads are still served"
    );
    assert_eq!(net.metric(&node, "allium_storage_full").await, Some(1));
    let seed = net.net.seed().address.clone();
    eventually(|| async { net.metric(&seed, "allium_seed_full_nodes").await.unwrap_or(0) >= 1 }).await;
    // The messages expire after 10 s and are swept: the node stores again.
    eventually(|| async { rpc(&node, &store(99)).await.0 == 200 }).await;
    assert_eq!(net.metric(&node, "allium_storage_full").await, Some(0));
}

/// A stranger who floods someone's inbox past its cap cannot lock its
/// owner out: the oldest messages make room, the owner's contact still
/// gets a message through, and the owner reads it. Before, a full inbox
/// refused every store (507) for as long as the flood's messages lived.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_inbox_still_takes_new_messages() {
    use allium_tests::hostile::{identity_of, rpc, store_request};
    let net = TestNet::start_with(5, "[limits]\nmax_mailbox_bytes = 400000\n")
        .await
        .unwrap();
    let alice = net.client("alice");
    let bob = net.client("bob");
    alice.init();
    let (bob_id, phrase) = bob.init();
    let bob_key = identity_of(&phrase);
    let node = node_list(&net).await.nodes[0].address.clone();
    for i in 0..20u8 {
        let (status, body) = rpc(&node, &store_request(&bob_key.account_id(), &vec![i; 76_000])).await;
        assert_eq!(status, 200, "flood message {i}: {body}");
    }
    let sent = alice.run(&["--json", "send", &bob_id, "after the flood"]);
    assert_eq!(sent.status.code(), Some(0), "{}", allium_tests::stderr(&sent));
    let inbox = bob.run(&["--json", "inbox"]);
    let got = allium_tests::Client::json_lines(&inbox);
    assert!(
        got.iter().any(|m| m["body"] == "after the flood"),
        "{got:?} {}",
        allium_tests::stderr(&inbox)
    );
    assert!(net.metric(&node, "allium_mailbox_evictions_total").await.unwrap_or(0) > 0);
}

/// A swarm that falls below its minimum size is dissolved: its accounts
/// move to another swarm, whose members did not hold their messages. Every
/// member of that swarm gets them (the nodes that held them hand them
/// over). Before, hand-over went only to nodes new in a swarm, so the
/// receiving swarm's own members never got the moved accounts' messages,
/// and a client asking one of them found nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dissolved_swarms_messages_reach_every_member_of_the_next() {
    use allium_tests::hostile::{retrieve_direct, rpc, store_request};
    let mut net = TestNet::start_with(
        6,
        "[seed_mode]\nmin_swarm_size = 3\ntarget_swarm_size = 3\nmax_swarm_size = 6\n",
    )
    .await
    .unwrap();
    let list = node_list(&net).await;
    let swarms = list.swarm_ring().ids().to_vec();
    assert_eq!(swarms.len(), 2, "two swarms of three");
    // An account in each swarm until one lands in the swarm to dissolve.
    let doomed = swarms[0];
    let owner = (0u8..=255)
        .map(|b| allium_common::Identity::from_ed25519_seed(&[b; 32]))
        .find(|id| list.swarm_ring().swarm_of(&id.account_id()) == Some(doomed))
        .unwrap();
    let members: Vec<String> = list.swarm_members(doomed).map(|n| n.address.clone()).collect();
    let (_, stored) = rpc(
        &members[0],
        &store_request(&owner.account_id(), b"survives the dissolution"),
    )
    .await;
    let hash = stored["hash"].as_str().unwrap().to_owned();
    for m in &members {
        eventually(|| async { retrieve_direct(&owner, m).await.contains(&hash) }).await;
    }
    // One member leaves: two are fewer than three, the swarm is dissolved.
    net.net.kill(net.index_of(&members[2]).unwrap()).await;
    net.net.wait_until_formed(Duration::from_secs(60)).await.unwrap();
    let after = node_list(&net).await;
    let now_in = after.swarm_ring().swarm_of(&owner.account_id()).unwrap();
    assert_ne!(now_in, doomed, "the swarm was dissolved");
    for member in after.swarm_members(now_in) {
        let address = member.address.clone();
        eventually(|| async { retrieve_direct(&owner, &address).await.contains(&hash) }).await;
    }
}

/// A member that missed an owner's delete (here: its copy and no tombstone
/// put back into its database, as a member that was down while the node
/// that took the delete died holding the forward is left) learns it from a
/// peer: anti-entropy makes it push its copy to a member that has the
/// tombstone, which answers with the owner's signed request, and the copy
/// goes. Before, tombstones were not exchanged: the stale copy lived on
/// (and was served) until it expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_converge_through_tombstones() {
    use allium_node::storage::{NewMessage, StorageLimits, Store};
    use allium_tests::hostile::{delete_request, now_ms, retrieve_direct, rpc};
    let net = TestNet::start_with(5, "[timing]\nanti_entropy_interval_ms = 1000\n")
        .await
        .unwrap();
    let list = node_list(&net).await;
    let (taker, stale) = (list.nodes[0].address.clone(), list.nodes[1].address.clone());
    let owner = allium_common::Identity::from_ed25519_seed(&[0x74; 32]);
    let now = now_ms();
    let message = NewMessage::new(
        owner.account_id().into(),
        allium_common::rpc::Namespace::DEFAULT,
        now,
        now + 3_600_000,
        b"deleted while one was away".to_vec(),
    );
    let mut store = allium_tests::hostile::store_request(&owner.account_id(), &message.data);
    store["params"]["timestamp"] = serde_json::json!(now);
    rpc(&taker, &store).await;
    let hash = message.hash.clone();
    let (status, body) = rpc(&taker, &delete_request(&owner, std::slice::from_ref(&hash), now_ms())).await;
    assert_eq!(status, 200, "{body}");
    for node in &list.nodes {
        let address = node.address.clone();
        eventually(|| async { !retrieve_direct(&owner, &address).await.contains(&hash) }).await;
    }
    // The stale member gets its copy back, and forgets the tombstone.
    let dir = net.net.nodes[net.index_of(&stale).unwrap()].dir.join("messages.db");
    rusqlite::Connection::open(&dir)
        .unwrap()
        .execute("DELETE FROM deleted WHERE hash = ?1", [&hash])
        .unwrap();
    let mut direct = Store::open(&dir, StorageLimits::default()).unwrap();
    direct.insert(&message, now_ms()).unwrap();
    drop(direct);
    assert!(
        retrieve_direct(&owner, &stale).await.contains(&hash),
        "the copy is back"
    );
    eventually(|| async { !retrieve_direct(&owner, &stale).await.contains(&hash) }).await;
    assert!(net.metric(&stale, "allium_deletions_learned_total").await.unwrap_or(0) >= 1);
}

/// What a swarm member actually holds of a conversation: the recipient's
/// Account ID and an envelope, never the text (searched for in every byte
/// of every node's database files) and never the sender's Account ID in
/// the recipient's mailbox. The sender's key is held only as the owner of
/// the sender's own mailbox, where the copy for its other devices went:
/// that says the sender sent something, not to whom.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swarm_member_holds_ciphertext_and_the_recipient_only() {
    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let bob = net.client("bob");
    let (alice_id, _) = alice.init();
    let (bob_id, _) = bob.init();
    let secret = "the treasure is under the old oak tree";
    let sent = alice.run(&["send", &bob_id, secret]);
    assert_eq!(sent.status.code(), Some(0), "{}", allium_tests::stderr(&sent));
    let bob_key = hex::decode(&bob_id[2..]).unwrap();
    let alice_key = hex::decode(&alice_id[2..]).unwrap();
    let mut holders = 0;
    for node in &net.net.nodes {
        let mut bytes = Vec::new();
        for file in ["messages.db", "messages.db-wal"] {
            bytes.extend(std::fs::read(node.dir.join(file)).unwrap_or_default());
        }
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(secret.as_bytes()), "{} holds the text", node.name);
        assert!(
            !contains(alice_id.as_bytes()),
            "{} holds the sender's Account ID",
            node.name
        );
        let db = rusqlite::Connection::open(node.dir.join("messages.db")).unwrap();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = db
            .prepare("SELECT account, data FROM messages")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (account, data) in &rows {
            assert!(
                *account == bob_key || *account == alice_key,
                "{} holds a mailbox of neither",
                node.name
            );
            assert!(
                !data.windows(32).any(|w| w == alice_key.as_slice()),
                "{} holds the sender's key inside a message",
                node.name
            );
        }
        if rows.iter().any(|(account, _)| *account == bob_key) {
            holders += 1;
        }
    }
    assert_eq!(holders, 5, "every member holds the recipient's mailbox");
}

/// A node that joins a swarm whose member holds 40,000 messages gets every
/// one of them by hand-over within two minutes, and the hand-over never
/// meets a 429. Before, the member sent 8-message pushes as fast as 16 in
/// flight allowed, overran the joiner's per-peer push budget (200/s), and
/// most pushes were refused, backed off and after 10 attempts given up:
/// two minutes after joining, the joiner held 24,000 to 39,000 of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_hand_over_loses_nothing() {
    use allium_node::storage::{NewMessage, StorageLimits, Store};
    const MESSAGES: u64 = 40_000;
    let mut net = TestNet::start_with(
        2,
        "[seed_mode]\nmin_swarm_size = 2\ntarget_swarm_size = 3\nmax_swarm_size = 3\n\
         [limits]\nmax_mailbox_messages = 100000\n",
    )
    .await
    .unwrap();
    let holder = &net.net.nodes[0];
    let now = allium_tests::hostile::now_ms();
    let limits = StorageLimits {
        max_mailbox_bytes: u64::MAX,
        max_mailbox_messages: u64::MAX,
        max_total_bytes: u64::MAX,
        ..StorageLimits::default()
    };
    let mut store = Store::open(holder.dir.join("messages.db"), limits).unwrap();
    let messages: Vec<NewMessage> = (0..MESSAGES)
        .map(|n| {
            let mut key = [0u8; 32];
            key[..2].copy_from_slice(&((n % 500) as u16).to_le_bytes());
            NewMessage::new(
                allium_common::AccountId::from_x25519(key).into(),
                allium_common::rpc::Namespace::DEFAULT,
                now,
                now + 3_600_000,
                n.to_le_bytes().to_vec(),
            )
        })
        .collect();
    for chunk in messages.chunks(1000) {
        store.insert_batch(chunk, now).unwrap();
    }
    drop(store);
    let joiner = net.net.add_node(Duration::from_secs(30)).await.unwrap();
    net.net.wait_until_formed(Duration::from_secs(60)).await.unwrap();
    let address = net.net.nodes[joiner].address.clone();
    let list = node_list(&net).await;
    assert_eq!(list.swarm_ring().ids().len(), 1, "the joiner is in the holder's swarm");
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let held = net.metric(&address, "allium_messages").await.unwrap_or(0);
        if held >= MESSAGES {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the joiner holds {held} of {MESSAGES}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(
        net.metric(&address, "allium_peer_budget_refused_total").await,
        Some(0),
        "the hand-over kept within the joiner's budget"
    );
}
