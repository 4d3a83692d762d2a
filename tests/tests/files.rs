//! Files on a devnet, through the CLI (issue 14; `docs/files.md`): a file
//! sent and saved byte for byte, to a person and to a group; interrupted
//! transfers that resume; a chunk lost or damaged on one node fetched from
//! another; a hostile file name kept inside the directory; nothing of the
//! plaintext on any node; a full node's refusal reported; `unsend`
//! deleting the chunks.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use allium_tests::{Client, TestNet, ok_lines, stderr};
use serde_json::Value;

/// `len` bytes no compressor or guess reproduces.
fn random_file(path: &Path, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    allium_common::sodium::random_bytes(&mut data);
    std::fs::write(path, &data).unwrap();
    data
}

/// Two accounts that hold each other as contacts.
fn pair(net: &TestNet) -> (Client, String, Client, String) {
    let (alice, bob) = (net.client("alice"), net.client("bob"));
    let (alice_id, _) = alice.init();
    let (bob_id, _) = bob.init();
    ok_lines(&alice.run(&["contacts", "add", "bob", &bob_id]));
    ok_lines(&bob.run(&["contacts", "add", "alice", &alice_id]));
    (alice, alice_id, bob, bob_id)
}

/// The line of `lines` that has files, and its hash.
fn file_message(lines: &[Value]) -> (Value, String) {
    let line = lines
        .iter()
        .find(|l| l["files"].as_array().is_some_and(|f| !f.is_empty()))
        .unwrap_or_else(|| panic!("no message with files in {lines:?}"))
        .clone();
    let hash = line["hash"].as_str().unwrap().to_owned();
    (line, hash)
}

/// Every node's store: (mailbox key, namespace, data) of each row.
fn node_rows(net: &TestNet) -> Vec<(Vec<u8>, i64, Vec<u8>)> {
    let mut rows = Vec::new();
    for node in &net.net.nodes {
        let db = rusqlite::Connection::open(node.dir.join("messages.db")).unwrap();
        let mut stmt = db.prepare("SELECT account, namespace, data FROM messages").unwrap();
        let found: Vec<(Vec<u8>, i64, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.extend(found);
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_sent_saved_whole_and_seen_by_no_node() {
    let net = TestNet::start(5).await.unwrap();
    let (alice, _, bob, _) = pair(&net);
    // Three chunks and a bit.
    let source = net.path("report.bin");
    let data = random_file(&source, 3 * 65_536 + 1_000);

    let sent = ok_lines(&alice.run(&[
        "--json",
        "send",
        "--file",
        source.to_str().unwrap(),
        "bob",
        "the report",
    ]));
    let done = sent
        .iter()
        .find(|l| l["status"] == "stored")
        .unwrap_or_else(|| panic!("{sent:?}"));
    let hash = done["hash"].as_str().unwrap().to_owned();
    // Progress events came before, the last one whole.
    let events: Vec<&Value> = sent.iter().filter(|l| l["event"] == "progress").collect();
    assert!(!events.is_empty(), "{sent:?}");
    assert_eq!(events.last().unwrap()["chunks_done"], 4);
    assert_eq!(events.last().unwrap()["bytes"], data.len() as u64);

    // Bob sees the file, with name and size, and saves it whole.
    let lines = ok_lines(&bob.run(&["--json", "inbox"]));
    let (line, received) = file_message(&lines);
    assert_eq!(received, hash);
    assert_eq!(line["body"], "the report");
    assert_eq!(line["files"][0]["name"], "report.bin");
    assert_eq!(line["files"][0]["size"], data.len() as u64);
    let dir = net.path("bob-files");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = ok_lines(&bob.run(&["--json", "save", &hash, dir.to_str().unwrap()]));
    let path = saved
        .iter()
        .find_map(|l| l["saved"].as_str())
        .unwrap_or_else(|| panic!("{saved:?}"));
    assert_eq!(std::fs::read(path).unwrap(), data);
    // Saved again: a second copy beside it, never over it.
    let again = ok_lines(&bob.run(&["--json", "save", &hash, dir.to_str().unwrap()]));
    let second = again.iter().find_map(|l| l["saved"].as_str()).unwrap();
    assert_ne!(second, path);
    assert_eq!(std::fs::read(second).unwrap(), data);

    // No node holds 32 bytes of the plaintext anywhere in its store; the
    // chunks are there, each exactly one record long.
    let rows = node_rows(&net);
    let chunks: Vec<_> = rows.iter().filter(|(_, ns, _)| *ns == 16).collect();
    assert!(
        chunks.len() >= 4 * 2,
        "each chunk on its swarm's members: {}",
        chunks.len()
    );
    assert!(chunks.iter().all(|(_, _, d)| d.len() == 65_553));
    for piece in data.chunks(32).step_by(97) {
        assert!(
            !rows.iter().any(|(_, _, d)| d.windows(piece.len()).any(|w| w == piece)),
            "a node holds plaintext"
        );
    }

    // Alice takes it back: the chunks go from the swarms.
    let unsent = ok_lines(&alice.run(&["--json", "unsend", &hash]));
    assert!(unsent[0]["chunks_deleted"].as_u64().unwrap() >= 4, "{unsent:?}");
    // The other members of each swarm hear of it from the one asked.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let left = node_rows(&net).into_iter().filter(|(_, ns, _)| *ns == 16).count();
        if left == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{left} chunks left after unsend");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_name_is_saved_inside_the_directory() {
    let net = TestNet::start(4).await.unwrap();
    let (alice, _, bob, _) = pair(&net);
    let source = net.path("innocent.txt");
    let data = random_file(&source, 1_000);
    let sent = ok_lines(&alice.run(&[
        "--json",
        "send",
        "--file",
        source.to_str().unwrap(),
        "--name",
        "../../x",
        "bob",
    ]));
    let hash = sent.iter().find_map(|l| l["hash"].as_str()).unwrap().to_owned();
    let lines = ok_lines(&bob.run(&["--json", "inbox"]));
    let (line, _) = file_message(&lines);
    assert_eq!(line["files"][0]["name"], "../../x", "the name is shown as sent: {line}");
    let dir = net.path("deep/down/here");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = ok_lines(&bob.run(&["--json", "save", &hash, dir.to_str().unwrap()]));
    let path = saved.iter().find_map(|l| l["saved"].as_str()).unwrap();
    assert_eq!(Path::new(path), dir.join("x"));
    assert_eq!(std::fs::read(path).unwrap(), data);
    assert!(!net.path("deep/x").exists() && !net.path("x").exists());
    // Text output names the file safely too.
    let out = bob.run(&["history", "alice"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("[file 0: ../../x, 1.0 KB"),
        "{}",
        stderr(&out)
    );
}
