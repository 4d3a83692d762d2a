//! Links: TLS 1.3 on every connection, pinned to the keys in the consensus
//! and the seed file, with the caller's certificate deciding who may use
//! the node-to-node endpoints; and what a packet capture of the loopback
//! interface shows of a conversation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use allium_common::Identity;
use allium_common::node_list::NodeEntry;
use allium_common::peer::SYNC_DOMAIN;
use allium_common::seeds::Seed;
use allium_node::membership::fetch_node_list;
use allium_node::peer::links::unpinned_client;
use allium_tests::hostile::post_signed_over;
use allium_tests::{Client, TestNet, stderr};
use serde_json::Value;

fn now_ms() -> u64 {
    allium_tests::hostile::now_ms()
}

/// A sync request to `to` signed by `signer`, over a TLS link as `link`
/// (`None`: no certificate, as a client connects).
async fn sync_over(link: Option<&Identity>, signer: &Identity, to: &NodeEntry) -> (u16, Value) {
    let body = serde_json::json!({"to": hex::encode(to.ed25519.0), "sent": now_ms()});
    post_signed_over(link, signer, &to.address, "/swarm/v1/sync", SYNC_DOMAIN, &body).await
}

/// The node key of the node with Ed25519 key `key`.
fn identity_of(net: &TestNet, key: &[u8; 32]) -> Identity {
    let node = net.net.nodes.iter().find(|n| &n.ed25519 == key).unwrap();
    allium_node::keys::load_or_create(&node.dir).unwrap().0
}

const NOT_MEMBER: &str = "the caller's TLS key is not in the consensus";
const NO_CERT: &str = "node-to-node requests need the calling node's TLS certificate";
const NOT_NAMED: &str = "the node named in x-allium-node is not the one the TLS certificate proves";

/// Node-to-node endpoints are reached only over a link whose certificate
/// is a consensus member's, and only as the node that certificate proves:
/// a stranger's certificate, no certificate, or a member's certificate
/// carrying another member's signed request are refused before the body is
/// looked at. (Before TLS there was no link identity at all: these requests
/// could not even be made, the nodes spoke plain HTTP.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_to_node_endpoints_take_only_consensus_members_as_their_certificate_proves() {
    let net = TestNet::start(3).await.unwrap();
    let list = fetch_node_list(net.net.links(), &net.net.seed().address).await.unwrap();
    let (target, b, c) = (&list.nodes[0], &list.nodes[1], &list.nodes[2]);
    let (member_b, member_c) = (identity_of(&net, &b.ed25519.0), identity_of(&net, &c.ed25519.0));
    let stranger = Identity::from_ed25519_seed(&allium_common::sodium::random_array());

    // Nodes that join a swarm ask its peers for a sync before every peer
    // has their consensus: those may be refused too, before this test's.
    let refused_before = net.metric(&target.address, "allium_link_refused_total").await.unwrap();
    let refused = |(status, body): (u16, Value), why: &str| {
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["message"], why, "{body}");
    };
    refused(sync_over(Some(&stranger), &stranger, target).await, NOT_MEMBER);
    refused(sync_over(Some(&stranger), &member_b, target).await, NOT_MEMBER);
    refused(sync_over(None, &member_b, target).await, NO_CERT);
    refused(sync_over(Some(&member_b), &member_c, target).await, NOT_NAMED);
    // The member itself, as itself, gets past the link check.
    let (status, body) = sync_over(Some(&member_b), &member_b, target).await;
    assert_eq!(status, 200, "{body}");

    // A relay's onion request over a link without a certificate.
    let onion = unpinned_client(Default::default(), None)
        .post(format!("https://{}/onion_req/v2", target.address))
        .header("x-allium-node", hex::encode(member_b.ed25519_pk()))
        .body(vec![0u8; 64])
        .send()
        .await
        .unwrap();
    assert_eq!(onion.status().as_u16(), 401);
    let body: Value = onion.json().await.unwrap();
    assert_eq!(body["message"], NO_CERT, "{body}");

    assert_eq!(
        net.metric(&target.address, "allium_link_refused_total").await.unwrap() - refused_before,
        5,
        "every refusal is counted"
    );

    // The client pins too: a seed answering with another key is refused.
    let transport = allium_client::transport::Transport::direct().unwrap();
    let seed = net.net.seed();
    let genuine = Seed {
        address: seed.address.clone(),
        ed25519: seed.ed25519,
    };
    allium_client::directory::fetch(&transport, &genuine).await.unwrap();
    let forged = Seed {
        ed25519: *stranger.ed25519_pk(),
        ..genuine
    };
    assert!(
        allium_client::directory::fetch(&transport, &forged).await.is_err(),
        "a seed with another key is not asked"
    );
}

/// tcpdump on `lo`, for the given ports, into a file.
struct Capture {
    child: Child,
    file: PathBuf,
}

impl Capture {
    fn start(dir: &Path, ports: &[u16]) -> Self {
        let file = dir.join("lo.pcap");
        let filter = ports
            .iter()
            .map(|p| format!("port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut child = Command::new("tcpdump")
            .args(["-i", "lo", "-U", "-n", "-s", "0", "-Z", "root", "-w"])
            .arg(&file)
            .arg(format!("tcp and ({filter})"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump must be installed (.ci/run installs it) and may capture (root or CAP_NET_RAW)");
        // It is capturing once it says it is listening.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20))
            .expect("tcpdump did not start listening");
        Self { child, file }
    }

    /// Stops the capture and returns the file's bytes.
    fn finish(mut self) -> Vec<u8> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let _ = self.child.wait();
        std::fs::read(&self.file).unwrap()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn port(address: &str) -> u16 {
    address.rsplit_once(':').unwrap().1.parse().unwrap()
}

/// What a capture of one conversation on a fresh network shows: whether
/// the recipient's Account ID (as text or as bytes) and the message's hash
/// appear in it.
struct Seen {
    account_id: bool,
    account_bytes: bool,
    hash: bool,
    packets_bytes: usize,
}

async fn capture_a_conversation(plaintext: bool) -> Seen {
    let extra = if plaintext { "plaintext_links = true\n" } else { "" };
    let net = TestNet::start_with(5, extra).await.unwrap();
    let ports: Vec<u16> = net
        .net
        .seeds
        .iter()
        .chain(&net.net.nodes)
        .map(|n| port(&n.address))
        .collect();
    let config = net.path("client.toml");
    std::fs::write(&config, format!("plaintext_links = {plaintext}\n")).unwrap();
    let config = config.to_string_lossy().into_owned();
    let (alice, bob): (Client, Client) = (net.client("alice"), net.client("bob"));
    alice.init();
    let (bob_id, _) = bob.init();
    let capture = Capture::start(&net.path(""), &ports);
    let out = alice.run(&["--config", &config, "--json", "send", &bob_id, "hello over the wire"]);
    assert_eq!(out.status.code(), Some(0), "send failed: {}", stderr(&out));
    let sent = Client::json_lines(&out);
    let hash = sent[0]["hash"].as_str().unwrap().to_owned();
    let out = bob.run(&["--config", &config, "--json", "inbox"]);
    assert_eq!(out.status.code(), Some(0), "inbox failed: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello over the wire"));
    // Replication to the swarm's other members (pushed at store time) and
    // an anti-entropy round or two.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pcap = capture.finish();
    let raw: allium_common::AccountId = bob_id.parse().unwrap();
    Seen {
        account_id: contains(&pcap, bob_id.as_bytes()) || contains(&pcap, bob_id.to_uppercase().as_bytes()),
        account_bytes: contains(&pcap, raw.x25519()),
        hash: contains(&pcap, hash.as_bytes()),
        packets_bytes: pcap.len(),
    }
}

/// With TLS on every link, a capture of the loopback interface during a
/// message's store, replication and retrieval holds no Account ID and no
/// message hash. The same conversation with the debugging option
/// `plaintext_links` shows the recipient's Account ID in the clear (the
/// replication pushes carry it): the capture does see what is not hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capture_of_the_links_shows_no_account_id_or_message_hash() {
    let plain = capture_a_conversation(true).await;
    assert!(
        plain.account_id,
        "control: the plaintext capture ({} bytes) should show the Account ID",
        plain.packets_bytes
    );
    let tls = capture_a_conversation(false).await;
    assert!(
        tls.packets_bytes > 10_000,
        "the capture saw the traffic: {} bytes",
        tls.packets_bytes
    );
    assert!(!tls.account_id, "an Account ID in clear on a TLS link");
    assert!(!tls.account_bytes, "an Account ID's bytes on a TLS link");
    assert!(!tls.hash, "a message hash in clear on a TLS link");
}
