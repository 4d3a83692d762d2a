//! The consensus across real processes: three seeds that vote, nodes on
//! their own loopback addresses, and the `allium` CLI.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use allium_common::consensus::{Consensus, Schedule};
use allium_common::seeds::{self, Seed};
use allium_node::membership::fetch_node_list;
use allium_tests::fake::serve_fixed;
use allium_tests::hostile::now_ms;
use allium_tests::{TestNet, ok_lines as ok, stderr};
use serde_json::Value;

/// The devnet's period (`[seed_mode] period_ms`).
const PERIOD_MS: u64 = 1000;

async fn consensus_of(address: &str) -> Option<Consensus> {
    fetch_node_list(&allium_node::peer::Links::anonymous(), address).await
}

/// Waits until `check` holds for the consensus `address` serves.
async fn wait_for(address: &str, within: Duration, check: impl Fn(&Consensus) -> bool) -> Consensus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(c) = consensus_of(address).await
            && check(&c)
        {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "no such consensus at {address} in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn seed_keys(net: &TestNet) -> Vec<[u8; 32]> {
    net.net.seeds.iter().map(|s| s.ed25519).collect()
}

/// Seed `i`'s identity, read from its key file.
fn seed_identity(net: &TestNet, i: usize) -> allium_common::Identity {
    allium_node::keys::load_or_create(&net.net.seeds[i].dir).unwrap().0
}

/// A seed file with the network's seed keys, at other addresses.
fn seed_file_at(net: &TestNet, name: &str, addresses: &[String]) -> std::path::PathBuf {
    let entries: Vec<Seed> = net
        .net
        .seeds
        .iter()
        .zip(addresses)
        .map(|(s, address)| Seed {
            address: address.clone(),
            ed25519: s.ed25519,
        })
        .collect();
    let path = net.path(name);
    std::fs::write(&path, seeds::render(&entries)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_network_keeps_working_with_one_seed_killed() {
    let mut net = TestNet::start_with_seeds(3, 5, "").await.unwrap();
    let keys = seed_keys(&net);
    let node = net.net.nodes[0].address.clone();
    // Every seed signs the one consensus (a seed's copy gathers all the
    // signatures; a node may have fetched it when a majority had signed).
    let seed0 = net.net.seeds[0].address.clone();
    let all = wait_for(&seed0, Duration::from_secs(10), |c| c.valid_signers(&keys).len() == 3).await;
    assert_eq!(all.nodes.len(), 5);
    // A node answers a later period as a diff from one it still holds, and
    // the diff rebuilds exactly the document it follows.
    let held = consensus_of(&node).await.unwrap();
    wait_for(&node, Duration::from_secs(10), |c| c.period > held.period).await;
    let asked = serde_json::json!({"method": "node_list", "params": {"since_period": held.period}});
    let (status, answer) = allium_tests::hostile::rpc(&node, &asked).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["from_period"], held.period, "a diff: {answer}");
    let diff: allium_common::consensus::ConsensusDiff = serde_json::from_value(answer).unwrap();
    assert!(diff.upserted.is_empty() && diff.removed.is_empty(), "nothing changed");
    let rebuilt = diff
        .apply(&held)
        .unwrap()
        .verify_after(&keys, now_ms(), Some(&held))
        .unwrap();
    assert_eq!(rebuilt.period, diff.period);
    assert!(rebuilt.same_network(&all));

    net.net.kill_seed(2).await;
    // A node that joins now is listed by the two seeds left, and the
    // network follows consensuses they alone sign.
    let joined = net.net.add_node(Duration::from_secs(30)).await.unwrap();
    net.net.wait_until_formed(Duration::from_secs(60)).await.unwrap();
    let joined_key = net.net.nodes[joined].ed25519;
    let after = wait_for(&node, Duration::from_secs(10), |c| {
        c.period > all.period && c.valid_signers(&keys).len() == 2 && c.find(&joined_key).is_some()
    })
    .await;
    assert_eq!(after.nodes.len(), 6);

    // And people can still talk.
    let alice = net.client("alice");
    let bob = net.client("bob");
    alice.init();
    let (b_id, _) = bob.init();
    ok(&alice.run(&["send", &b_id, "two seeds are enough"]));
    let got = ok(&bob.run(&["--json", "inbox"]));
    assert_eq!(got[0]["body"], "two seeds are enough");
    let nodes = ok(&bob.run(&["--json", "nodes"]));
    assert_eq!(nodes[0]["signed_by"].as_array().unwrap().len(), 2, "{nodes:?}");
    assert_eq!(nodes[0]["guards_flagged"], serde_json::json!([true, true]), "{nodes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_with_a_wrong_clock_or_its_own_registry_moves_nobody() {
    let mut net = TestNet::start_with_seeds(3, 5, "").await.unwrap();
    let keys = seed_keys(&net);
    let node = net.net.nodes[0].address.clone();
    let seed0 = net.net.seeds[0].address.clone();
    let network = wait_for(&seed0, Duration::from_secs(10), |c| c.valid_signers(&keys).len() == 3).await;
    let schedule = Schedule::new(PERIOD_MS);

    // Seed 1's clock runs ten minutes fast: it votes alone for periods
    // nobody else is in, so it signs nothing the nodes can use, and the
    // nodes neither jump ahead with it nor stop following the others.
    net.net
        .restart_seed_with(1, "[seed_mode]\nclock_offset_ms = 600000\n", Duration::from_secs(30))
        .await
        .unwrap();
    let mut last = network.period;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(PERIOD_MS)).await;
        let c = consensus_of(&node).await.unwrap();
        let real = schedule.period_at(now_ms());
        assert!(c.period <= real + 1, "period {} while the real one is {real}", c.period);
        assert!(c.same_network(&network), "the network did not move");
        last = c.period;
    }
    assert!(
        last >= network.period + 3,
        "the nodes kept following: {} -> {last}",
        network.period
    );

    // Seed 1 back to the right time; seed 2 now refuses every node on a
    // private address, so its registry is empty: a minority view that
    // makes nobody flip.
    net.net.restart_seed_with(1, "", Duration::from_secs(30)).await.unwrap();
    // (Wait until it signs again: with one seed silent and another seeing
    // no node, no node would have a majority, by design.)
    let back = schedule.period_at(now_ms());
    wait_for(&net.net.seeds[1].address, Duration::from_secs(20), |c| {
        c.period > back && c.valid_signers(&keys).contains(&keys[1])
    })
    .await;
    net.net
        .restart_seed_with(
            2,
            "[seed_mode]\nallow_private_addresses = false\n",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(PERIOD_MS)).await;
        let c = consensus_of(&node).await.unwrap();
        let show = |c: &Consensus| -> Vec<(String, String, u64)> {
            c.nodes
                .iter()
                .map(|n| (hex::encode(&n.ed25519.0[..4]), n.address.clone(), n.swarm_id))
                .collect()
        };
        assert!(
            c.same_network(&network),
            "a flip at period {}: {:?} became {:?}",
            c.period,
            show(&network),
            show(&c)
        );
        assert!(c.valid_signers(&keys).len() >= 2);
    }
    let end = consensus_of(&node).await.unwrap();
    assert!(end.period > last, "the nodes kept following");
    // Seed 2 really did vote for no node.
    let asked = serde_json::to_vec(&serde_json::json!({"period": end.period})).unwrap();
    let (status, vote) =
        allium_tests::hostile::post_from("127.0.0.1", &net.net.seeds[2].address, "/seed/v1/vote", asked)
            .await
            .unwrap();
    assert_eq!(status, 200);
    let vote: Value = serde_json::from_slice(&vote).unwrap();
    assert_eq!(vote["nodes"].as_array().unwrap().len(), 0, "{vote}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consensus_signed_by_one_seed_of_three_is_refused_by_nodes_and_the_cli() {
    let mut net = TestNet::start_with_seeds(3, 5, "").await.unwrap();
    let keys = seed_keys(&net);
    let real = wait_for(&net.net.seeds[0].address, Duration::from_secs(10), |c| {
        c.valid_signers(&keys).len() == 3
    })
    .await;
    // Seed 0's key, stolen: a consensus far ahead that moves every node
    // into one swarm, signed by it alone.
    let mut moved = real.nodes.clone();
    for n in &mut moved {
        n.swarm_id = 7;
    }
    let forged_period = real.period + 100;
    let forged = Consensus::assemble(
        &Schedule::new(PERIOD_MS),
        forged_period,
        moved,
        &[&seed_identity(&net, 0)],
    )
    .unwrap();
    // It answers as seed 0 (TLS with the stolen key too).
    let fake = serve_fixed(&seed_identity(&net, 0), forged.encode()).await.unwrap();

    // A node that asks the fake seed (in seed 0's place) and the two real
    // ones follows the real network.
    let addresses = vec![
        fake.address.clone(),
        net.net.seeds[1].address.clone(),
        net.net.seeds[2].address.clone(),
    ];
    let file = seed_file_at(&net, "one-fake-seed.toml", &addresses);
    let i = net
        .net
        .add_node_with_seeds(allium_node::devnet::node_ip(40), &file, Duration::from_secs(30))
        .await
        .unwrap();
    net.net.wait_until_formed(Duration::from_secs(60)).await.unwrap();
    let followed = consensus_of(&net.net.nodes[i].address).await.unwrap();
    assert!(followed.period < forged_period);
    assert!(followed.valid_signers(&keys).len() >= 2);
    let log = std::fs::read_to_string(net.net.nodes[i].dir.join("node.log")).unwrap();
    assert!(
        log.contains("refused a consensus") && log.contains("1 valid signatures of trusted seeds, 2 of 3 are needed"),
        "the node says why:\n{log}"
    );

    // A client whose seeds all answer with the forged document has no
    // consensus to use, and says why.
    let only_fake = seed_file_at(
        &net,
        "all-fake.toml",
        &[fake.address.clone(), fake.address.clone(), fake.address.clone()],
    );
    let mut carol = net.client("carol");
    carol.seeds = only_fake;
    carol.init();
    let out = carol.run(&["--json", "nodes"]);
    assert_ne!(out.status.code(), Some(0), "the forged consensus was used");
    assert!(
        stderr(&out).contains("2 of 3 are needed"),
        "the CLI says why: {}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_node_waits_out_its_probation_and_is_no_ones_guard_until_it_earns_it() {
    let mut net = TestNet::start_with_seeds(3, 5, "[seed_mode]\nprobation_ms = 3000\nguard_after_ms = 12000\n")
        .await
        .unwrap();
    let seed0 = net.net.seeds[0].address.clone();
    wait_for(&seed0, Duration::from_secs(30), |c| c.nodes.iter().all(|n| n.guard)).await;

    let started = now_ms();
    let i = net.net.add_node(Duration::from_secs(30)).await.unwrap();
    let key = net.net.nodes[i].ed25519;
    let address = net.net.nodes[i].address.clone();
    // Not listed (so no swarm traffic, no relaying) before a majority of
    // the seeds has known it for the probation...
    let first = wait_for(&seed0, Duration::from_secs(30), |c| c.find(&key).is_some()).await;
    assert!(
        first.valid_after >= started + 3000,
        "listed at {} though started at {started}",
        first.valid_after
    );
    // ...and then not a guard: clients starting now never pick it.
    assert!(!first.find(&key).unwrap().guard);
    net.net.wait_until_formed(Duration::from_secs(30)).await.unwrap();
    for name in ["carol", "dave", "erin"] {
        let client = net.client(name);
        client.init();
        let nodes = ok(&client.run(&["--json", "nodes"]));
        let listed = nodes[0]["nodes"].as_u64().unwrap();
        let guards: Vec<&str> = nodes[0]["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[0].as_str().unwrap())
            .collect();
        if listed == 6 {
            assert!(
                !guards.contains(&address.as_str()),
                "{name} took the new node as a guard"
            );
        }
    }
    // Later it earns the flag.
    let earned = wait_for(&seed0, Duration::from_secs(30), |c| {
        c.find(&key).is_some_and(|n| n.guard)
    })
    .await;
    assert!(earned.valid_after >= started + 12_000);
}

/// Seeds whose identity keys stay offline (each signs with a node key its
/// identity certified): the network forms, every consensus signature
/// counts for an identity in the seed file, a client pins those identities
/// over TLS and talks; what the signing keys sign without their
/// certificates counts for nothing; and a seed whose certificate has
/// expired does not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeds_sign_with_certified_keys_while_their_identities_stay_offline() {
    let net = TestNet::start_with_offline_seed_keys(3, 5).await.unwrap();
    let file = seeds::parse(&std::fs::read_to_string(&net.net.seed_file).unwrap()).unwrap();
    let identities: Vec<[u8; 32]> = file.iter().map(|s| s.ed25519).collect();
    let signing = seed_keys(&net);
    assert!(
        identities.iter().all(|i| !signing.contains(i)),
        "the seed file names identities, not the running seeds' keys"
    );
    let doc = wait_for(&net.net.seeds[0].address, Duration::from_secs(10), |c| {
        c.valid_signers(&identities).len() == 3
    })
    .await;
    assert!(
        doc.signatures.iter().all(|s| s.cert.is_some()),
        "every signature carries its certificate"
    );
    assert!(
        doc.valid_signers(&signing).is_empty(),
        "signing keys are nobody's identity"
    );

    // A client that knows only the identities fetches (TLS to each seed's
    // signing key, certified in its TLS certificate) and sends.
    let (alice, bob) = (net.client("alice"), net.client("bob"));
    alice.init();
    let (bob_id, _) = bob.init();
    ok(&alice.run(&["send", &bob_id, "signed by keys that were never online"]));
    let got = ok(&bob.run(&["--json", "inbox"]));
    assert_eq!(got[0]["body"], "signed by keys that were never online");

    // The running seeds' keys alone, without certificates: refused.
    let stolen: Vec<allium_common::Identity> = (0..3).map(|i| seed_identity(&net, i)).collect();
    let forged = Consensus::assemble(
        &Schedule::new(PERIOD_MS),
        doc.period + 100,
        doc.nodes.clone(),
        &stolen.iter().collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(forged.valid_signers(&identities).is_empty());

    // An expired certificate stops the seed at start.
    let seed = &net.net.seeds[2];
    let offline = net.net.dir.join("offline").join(format!("{}.key", seed.name));
    let day = 86_400_000;
    let expired = allium_node::keys::certify(&offline, seed.ed25519, now_ms() - 40 * day, 30).unwrap();
    let data = net.path("expired-seed");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(seed.dir.join("node_key"), data.join("node_key")).unwrap();
    std::fs::write(
        data.join(allium_node::keys::SEED_CERT_FILE),
        serde_json::to_string(&expired).unwrap(),
    )
    .unwrap();
    let out = std::process::Command::new(allium_tests::bin_dir().unwrap().join("allium-node"))
        .args(["run", "--seed", "--listen", "127.1.0.9:0", "--data-dir"])
        .arg(&data)
        .arg("--seed-file")
        .arg(&net.net.seed_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the signing key has expired"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A swarm holds at most one node per /16: a new node from node-00's /16
/// cannot join the one swarm a small network has, so it is left out of the
/// consensus (it stores and relays nothing), while the others stay put.
/// (Before the rule it joined that swarm at once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_node_from_one_16_never_shares_a_swarm() {
    let mut net = TestNet::start_with_seeds(3, 5, "").await.unwrap();
    let seed0 = net.net.seeds[0].address.clone();
    let before = consensus_of(&seed0).await.unwrap();
    let neighbour_ip: std::net::IpAddr = "127.2.9.1".parse().unwrap();
    assert_eq!(
        allium_common::address::subnet(&format!("{neighbour_ip}:1")),
        allium_common::address::subnet(&net.net.nodes[0].address),
        "the newcomer shares node-00's /16"
    );
    let i = net
        .net
        .add_node_at(neighbour_ip, Duration::from_secs(30))
        .await
        .unwrap();
    let newcomer = net.net.nodes[i].ed25519;
    // The seeds know it (it announced and answers probes) ...
    let later = wait_for(&seed0, Duration::from_secs(20), |c| c.period >= before.period + 4).await;
    // The seeds run their commit-reveal: every vote's commit is recorded
    // and the shared value moves on.
    assert_eq!(later.commits.len(), 3);
    assert_ne!(later.srv, before.srv);
    // ... but no consensus lists it, and nobody else moved.
    assert!(
        later.find(&newcomer).is_none(),
        "a second node of 127.2/16 in the only swarm"
    );
    for n in &before.nodes {
        assert_eq!(later.find(&n.ed25519.0).map(|e| e.swarm_id), Some(n.swarm_id));
    }
    let mut subnets = std::collections::BTreeSet::new();
    for n in &later.nodes {
        assert!(
            subnets.insert((n.swarm_id, allium_common::address::subnet(&n.address))),
            "two nodes of one /16 in swarm {}",
            n.swarm_id
        );
    }
}

/// What a client's directory (the code `allium` runs) does with what
/// seeds serve, against a real three-seed network: a genuine but older
/// consensus, replayed by servers holding the seeds' keys, is refused once
/// the client holds a newer one (and taken by a client that holds
/// nothing, so it is the rollback that is refused); two documents for one
/// period, each signed by a majority (stolen keys), are both refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_older_consensus_and_two_for_one_period_are_refused_by_the_client() {
    use allium_client::directory::from_seeds;
    use allium_client::transport::Transport;
    let net = TestNet::start_with_seeds(3, 5, "").await.unwrap();
    let keys = seed_keys(&net);
    let seed0 = net.net.seeds[0].address.clone();
    let old = wait_for(&seed0, Duration::from_secs(10), |c| c.valid_signers(&keys).len() == 3).await;
    let new = wait_for(&seed0, Duration::from_secs(10), |c| {
        c.period >= old.period + 2 && c.valid_signers(&keys).len() == 3
    })
    .await;
    let stolen: Vec<allium_common::Identity> = (0..3).map(|i| seed_identity(&net, i)).collect();
    let transport = Transport::direct().unwrap();
    let file = seeds::parse(&std::fs::read_to_string(&net.net.seed_file).unwrap()).unwrap();

    // Every seed address answers with the old document (TLS as the seed).
    let mut replaying = Vec::new();
    for id in &stolen {
        replaying.push(serve_fixed(id, old.encode()).await.unwrap());
    }
    let at = |servers: &[allium_tests::fake::FixedServer]| -> Vec<Seed> {
        file.iter()
            .zip(servers)
            .map(|(s, f)| Seed {
                address: f.address.clone(),
                ed25519: s.ed25519,
            })
            .collect()
    };
    let took = from_seeds(&transport, &at(&replaying), None).await.unwrap();
    assert_eq!(
        took.list.period, old.period,
        "control: the replayed document is genuine"
    );
    let refused = from_seeds(&transport, &at(&replaying), Some(&new)).await.unwrap_err();
    assert!(refused.to_string().contains("a rollback"), "{refused}");

    // Seed 1's address serves a second document for the current period,
    // signed with all three stolen keys; seeds 0 and 2 the genuine one.
    let current = wait_for(&seed0, Duration::from_secs(10), |c| c.valid_signers(&keys).len() == 3).await;
    let mut moved = current.nodes.clone();
    for n in &mut moved {
        n.swarm_id = 7;
    }
    let forged = Consensus::assemble(
        &Schedule::new(PERIOD_MS),
        current.period,
        moved,
        &stolen.iter().collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(forged.valid_signers(&keys).len() == 3 && forged.digest() != current.digest());
    let split = vec![
        serve_fixed(&stolen[0], current.encode()).await.unwrap(),
        serve_fixed(&stolen[1], forged.encode()).await.unwrap(),
        serve_fixed(&stolen[2], current.encode()).await.unwrap(),
    ];
    let refused = from_seeds(&transport, &at(&split), None).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains(&format!("two different consensuses for period {}", current.period)),
        "{refused}"
    );
    // A client that holds the genuine one refuses the twin too.
    let twin_only = vec![
        serve_fixed(&stolen[0], forged.encode()).await.unwrap(),
        serve_fixed(&stolen[1], forged.encode()).await.unwrap(),
        serve_fixed(&stolen[2], forged.encode()).await.unwrap(),
    ];
    let refused = from_seeds(&transport, &at(&twin_only), Some(&current))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("seeds signed twice"), "{refused}");
}
