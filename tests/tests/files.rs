//! Files on a devnet, through the CLI (issue 14; `docs/files.md`): a file
//! sent and saved byte for byte, to a person and to a group; interrupted
//! transfers that resume; a chunk lost or damaged on one node fetched from
//! another; a hostile file name kept inside the directory; nothing of the
//! plaintext on any node; a full node's refusal reported; `unsend`
//! deleting the chunks.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use allium_client::home::Home;
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

/// A node that holds a chunk.
fn chunk_holder(net: &TestNet) -> usize {
    net.net
        .nodes
        .iter()
        .position(|node| {
            let db = rusqlite::Connection::open(node.dir.join("messages.db")).unwrap();
            db.query_row("SELECT count(*) FROM messages WHERE namespace = 16", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap()
                > 0
        })
        .unwrap()
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

    // What a node does learn: the upload key stored with one chunk names
    // every chunk of the file (so the file's size, to 64 KiB).
    let db = rusqlite::Connection::open(net.net.nodes[chunk_holder(&net)].dir.join("messages.db")).unwrap();
    let signer: Vec<u8> = db
        .query_row("SELECT owner_sig FROM messages WHERE namespace = 16 LIMIT 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let upload_pk: [u8; 32] = signer[..32].try_into().unwrap();
    let stored: std::collections::BTreeSet<Vec<u8>> = chunks.iter().map(|(k, _, _)| k.clone()).collect();
    let derived: std::collections::BTreeSet<Vec<u8>> = (0..4)
        .map(|i| allium_common::files::ChunkId::of(&upload_pk, i).bytes().to_vec())
        .collect();
    assert_eq!(stored, derived);

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
    // In a conversation that disappears an hour after sending, the chunks
    // live an hour, not 14 days.
    ok_lines(&alice.run(&["disappear", "bob", "after-send", "1h"]));
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
    for node in &net.net.nodes {
        let db = rusqlite::Connection::open(node.dir.join("messages.db")).unwrap();
        let longest: Option<i64> = db
            .query_row(
                "SELECT max(expiry_ms - timestamp_ms) FROM messages WHERE namespace = 16",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(longest.is_none_or(|ms| ms <= 3_600_000), "a chunk lives {longest:?} ms");
    }
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

/// Runs `allium ARGS` until a progress event says `chunks` chunks are
/// done, then kills it (as a user's Ctrl-C or a crash would stop it).
fn interrupt_after(client: &Client, args: &[&str], chunks: u64) {
    use std::io::BufRead as _;
    let mut child = client
        .command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    for line in std::io::BufReader::new(stdout).lines() {
        let line: Value = serde_json::from_str(&line.unwrap()).unwrap_or(Value::Null);
        if line["event"] == "progress" && line["chunks_done"].as_u64().unwrap_or(0) >= chunks {
            break;
        }
        assert!(
            line.get("saved").is_none() && line.get("status").is_none(),
            "finished before the cut: {line}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The first progress event of `lines`: where a run began.
fn first_progress(lines: &[Value]) -> u64 {
    lines
        .iter()
        .find(|l| l["event"] == "progress")
        .and_then(|l| l["chunks_done"].as_u64())
        .unwrap_or_else(|| panic!("no progress in {lines:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_megabytes_go_through_interrupted_both_ways() {
    let mb: usize = std::env::var("ALLIUM_FILE_TEST_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let net = TestNet::start(8).await.unwrap();
    let (alice, _, bob, _) = pair(&net);
    let source = net.path("big.bin");
    let data = random_file(&source, mb * 1_000_000);
    let chunks = (data.len() as u64).div_ceil(65_536);
    let file = source.to_str().unwrap();

    // Cut after a fifth, then the same command goes on from where the
    // home says it was.
    let started = std::time::Instant::now();
    interrupt_after(&alice, &["--json", "send", "--file", file, "bob", "big"], chunks / 5);
    let sent = ok_lines(&alice.run(&["--json", "send", "--file", file, "bob", "big"]));
    let resumed_at = first_progress(&sent);
    assert!(
        resumed_at >= 32 && resumed_at < chunks,
        "resumed at {resumed_at} of {chunks}"
    );
    let hash = sent.iter().find_map(|l| l["hash"].as_str()).unwrap().to_owned();
    eprintln!("{mb} MB sent in {:?}", started.elapsed());

    ok_lines(&bob.run(&["--json", "inbox"]));
    let dir = net.path("bob-big");
    std::fs::create_dir_all(&dir).unwrap();
    let started = std::time::Instant::now();
    interrupt_after(&bob, &["--json", "save", &hash, dir.to_str().unwrap()], chunks / 5);
    let saved = ok_lines(&bob.run(&["--json", "save", &hash, dir.to_str().unwrap()]));
    let resumed_at = first_progress(&saved);
    assert!(
        resumed_at >= 32 && resumed_at < chunks,
        "resumed at {resumed_at} of {chunks}"
    );
    eprintln!("{mb} MB saved in {:?}", started.elapsed());
    let path = saved.iter().find_map(|l| l["saved"].as_str()).unwrap();
    // Byte for byte the same (so the same SHA-256), and nothing left of
    // the part file.
    assert!(std::fs::read(path).unwrap() == data, "the saved file differs");
    let parts = std::fs::read_dir(bob.home.join("files")).unwrap().count();
    assert_eq!(parts, 0, "part files left");

    // The same file to a group, saved whole by the other member.
    ok_lines(&alice.run(&["--json", "group", "create", "big-group", "--member", "bob"]));
    ok_lines(&bob.run(&["--json", "inbox"]));
    let sent = ok_lines(&alice.run(&["--json", "send", "--file", file, "big-group"]));
    let hash = sent.iter().find_map(|l| l["hash"].as_str()).unwrap().to_owned();
    ok_lines(&bob.run(&["--json", "inbox"]));
    let saved = ok_lines(&bob.run(&["--json", "save", &hash, dir.to_str().unwrap()]));
    let path = saved.iter().find_map(|l| l["saved"].as_str()).unwrap();
    assert!(
        std::fs::read(path).unwrap() == data,
        "the file saved from the group differs"
    );
}

/// The chunk rows of every node: (node index, mailbox key, data).
fn chunk_rows(net: &TestNet) -> Vec<(usize, Vec<u8>, Vec<u8>)> {
    let mut rows = Vec::new();
    for (i, node) in net.net.nodes.iter().enumerate() {
        let db = rusqlite::Connection::open(node.dir.join("messages.db")).unwrap();
        let mut stmt = db
            .prepare("SELECT account, data FROM messages WHERE namespace = 16")
            .unwrap();
        let found: Vec<(Vec<u8>, Vec<u8>)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows.extend(found.into_iter().map(|(k, d)| (i, k, d)));
    }
    rows
}

/// Runs `sql` with the chunk's key on node `i`'s store, behind its back
/// (as a failing disk or a hostile operator would).
fn tamper(net: &TestNet, i: usize, sql: &str, key: &[u8]) {
    let db = rusqlite::Connection::open(net.net.nodes[i].dir.join("messages.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute(sql, [key]).unwrap();
}

/// Flips one byte of the chunk's copy on node `i` (its length stays).
fn damage(net: &TestNet, i: usize, key: &[u8]) {
    let db = rusqlite::Connection::open(net.net.nodes[i].dir.join("messages.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    let mut data: Vec<u8> = db
        .query_row(
            "SELECT data FROM messages WHERE namespace = 16 AND account = ?1",
            [key],
            |r| r.get(0),
        )
        .unwrap();
    data[100] ^= 0x01;
    db.execute(
        "UPDATE messages SET data = ?1 WHERE namespace = 16 AND account = ?2",
        rusqlite::params![data, key],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_and_damaged_chunks_are_fetched_from_another_member() {
    let net = TestNet::start(5).await.unwrap();
    let (alice, _, bob, _) = pair(&net);
    let source = net.path("photo.jpg");
    let data = random_file(&source, 20 * 65_536);
    let sent = ok_lines(&alice.run(&["--json", "send", "--file", source.to_str().unwrap(), "bob"]));
    let hash = sent.iter().find_map(|l| l["hash"].as_str()).unwrap().to_owned();
    ok_lines(&bob.run(&["--json", "inbox"]));

    // Every chunk stays whole on one member of its swarm only: on the
    // others it is lost (first chunk-holding node) or damaged (the rest).
    let mut by_chunk: std::collections::BTreeMap<Vec<u8>, Vec<usize>> = Default::default();
    for (node, key, _) in chunk_rows(&net) {
        by_chunk.entry(key).or_default().push(node);
    }
    assert_eq!(by_chunk.len(), 20);
    let mut damaged = 0;
    for (key, holders) in &by_chunk {
        assert!(holders.len() >= 2, "a chunk on one node only");
        for (n, &node) in holders.iter().skip(1).enumerate() {
            if n == 0 {
                tamper(
                    &net,
                    node,
                    "DELETE FROM messages WHERE namespace = 16 AND account = ?1",
                    key,
                );
            } else {
                damage(&net, node, key);
                damaged += 1;
            }
        }
    }
    assert!(damaged > 0, "swarms too small to damage a copy");
    let dir = net.path("bob-photos");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = ok_lines(&bob.run(&["--json", "save", &hash, dir.to_str().unwrap()]));
    let line = saved.iter().find(|l| l.get("saved").is_some()).unwrap();
    assert_eq!(std::fs::read(line["saved"].as_str().unwrap()).unwrap(), data);
    // With a damaged copy on most members, some were fetched, refused by
    // their authentication, and fetched again elsewhere.
    assert!(line["refetched"].as_u64().unwrap() > 0, "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_refuses_and_the_sender_is_told() {
    // Room for one chunk per node: a file of more chunks than there are
    // nodes cannot go, however the swarms fall.
    let net = TestNet::start_with(4, "[limits]\nmax_files_bytes = 65553\n")
        .await
        .unwrap();
    let (alice, _, _, _) = pair(&net);
    let source = net.path("too-much.bin");
    random_file(&source, 6 * 65_536);
    let out = alice.run(&["send", "--file", source.to_str().unwrap(), "bob"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(said.contains("files quota is full"), "{said}");
    assert!(said.contains("the same command goes on"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_goes_to_a_group() {
    let net = TestNet::start(5).await.unwrap();
    let (alice, _, bob, _) = pair(&net);
    ok_lines(&alice.run(&["--json", "group", "create", "team", "--member", "bob"]));
    ok_lines(&bob.run(&["--json", "inbox"]));
    let source = net.path("plan.pdf");
    let data = random_file(&source, 2 * 65_536 + 5);
    let sent = ok_lines(&alice.run(&["--json", "send", "--file", source.to_str().unwrap(), "team", "the plan"]));
    assert_eq!(sent.iter().find(|l| l["status"] == "stored").unwrap()["files"], 1);
    let lines = ok_lines(&bob.run(&["--json", "inbox"]));
    let (line, hash) = file_message(&lines);
    assert_eq!(line["group_name"], "team");
    assert_eq!(line["files"][0]["name"], "plan.pdf");
    assert_eq!(line["files"][0]["type"], "application/pdf");
    let dir = net.path("bob-team");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = ok_lines(&bob.run(&["--json", "save", &hash, dir.to_str().unwrap()]));
    let path = saved.iter().find_map(|l| l["saved"].as_str()).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), data);

    // Alice takes it back: gone from the group's swarm, chunks deleted.
    let unsent = ok_lines(&alice.run(&["--json", "unsend", &hash]));
    assert_eq!(unsent[0]["chunks_deleted"], 3, "{unsent:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let rows = node_rows(&net);
        let chunks = rows.iter().filter(|(_, ns, _)| *ns == 16).count();
        let messages = rows.iter().filter(|(_, ns, _)| *ns == 11).count();
        if chunks == 0 && messages == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{chunks} chunks and {messages} group messages left"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_files_from_contacts_arrive_on_their_own() {
    let net = TestNet::start(4).await.unwrap();
    let (alice, _, bob, _) = pair(&net);
    let carol = net.client("carol");
    carol.init();
    let bob_id = ok_lines(&bob.run(&["--json", "id"]))[0]["account_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Bob takes files up to 100 KB on their own.
    std::fs::write(bob.home.join("config.toml"), "auto_download_bytes = 100000\n").unwrap();

    let small = net.path("small.png");
    let small_data = random_file(&small, 50_000);
    let large = net.path("large.png");
    random_file(&large, 150_000);
    ok_lines(&alice.run(&[
        "send",
        "--file",
        small.to_str().unwrap(),
        "--file",
        large.to_str().unwrap(),
        "bob",
    ]));
    ok_lines(&carol.run(&["send", "--file", small.to_str().unwrap(), &bob_id, "from a stranger"]));

    let lines = ok_lines(&bob.run(&["--json", "inbox"]));
    let auto: Vec<&Value> = lines.iter().filter(|l| l.get("auto_saved").is_some()).collect();
    assert_eq!(auto.len(), 1, "only the contact's small file: {lines:?}");
    assert_eq!(auto[0]["name"], "small.png");
    let path = Path::new(auto[0]["auto_saved"].as_str().unwrap());
    assert_eq!(path, bob.home.join("downloads").join("small.png"));
    assert_eq!(std::fs::read(path).unwrap(), small_data);
    // The request lists its file, unfetched.
    let request = lines.iter().find(|l| l["request"] == true).unwrap();
    assert_eq!(request["files"][0]["name"], "small.png");
    // History says where the small one went.
    let history = ok_lines(&bob.run(&["--json", "history", "alice"]));
    let files = history
        .iter()
        .find_map(|l| l["files"].as_array().filter(|f| !f.is_empty()))
        .unwrap();
    assert_eq!(files.len(), 2);
    assert!(
        files[0]["saved"].as_str().is_some() && files[1].get("saved").is_none(),
        "{files:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avatar_reaches_contacts_and_is_stored_again_in_time() {
    let net = TestNet::start(4).await.unwrap();
    let (alice, alice_id, bob, _) = pair(&net);
    let image = net.path("me.png");
    let pixels = random_file(&image, 40_000);
    let set = ok_lines(&alice.run(&[
        "--json",
        "profile",
        "--name",
        "Alice",
        "--avatar",
        image.to_str().unwrap(),
    ]));
    assert_eq!(set[0]["avatar_bytes"], 40_000, "{set:?}");
    // Too large: refused before anything is stored.
    let huge = net.path("huge.png");
    random_file(&huge, 5_000_001);
    let out = alice.run(&["profile", "--avatar", huge.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("at most 5000000 bytes"), "{}", stderr(&out));

    // A message carries it; the contact fetches it.
    ok_lines(&alice.run(&["send", "bob", "see my new picture"]));
    ok_lines(&bob.run(&["--json", "inbox"]));
    let contacts = ok_lines(&bob.run(&["--json", "contacts", "list"]));
    let listed = contacts.iter().find(|c| c["account_id"] == alice_id.as_str()).unwrap();
    let path = listed["avatar"]
        .as_str()
        .unwrap_or_else(|| panic!("no avatar: {listed}"));
    assert_eq!(std::fs::read(path).unwrap(), pixels);

    // Twelve days on, the device that holds the image stores it again
    // (a node keeps it 14 days): the profile names a new copy.
    let avatar_of = |client: &Client| {
        let home = Home::open(&client.home).unwrap();
        let (state, _) = home.account_state(allium_client::sync::PROFILE).unwrap();
        state.get("profile/avatar").unwrap()["upload_pk"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let before = avatar_of(&alice);
    {
        let mut home = Home::open(&alice.home).unwrap();
        let now = allium_tests::hostile::now_ms();
        let old = now - 13 * 24 * 3600 * 1000;
        home.edit_account_state(allium_client::sync::PROFILE, now, |state, stamp| {
            state.set("profile/avatar_at", Value::from(old), stamp);
        })
        .unwrap();
    }
    let out = alice.run(&["--json", "inbox"]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", stderr(&out));
    assert_ne!(avatar_of(&alice), before, "the avatar was not stored again");

    // Removed: the profile says none.
    let cleared = ok_lines(&alice.run(&["--json", "profile", "--avatar", "none"]));
    assert!(cleared[0]["avatar_bytes"].is_null(), "{cleared:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_that_says_slow_down_slows_the_transfer_but_does_not_fail_it() {
    // Guards take 10 requests a second from a client's address: a file of
    // 64 chunks, eight in flight, runs into that at once.
    let limits = "[limits]\nrequests_per_second_per_ip = 10\nburst_per_ip = 10\n";
    let net = TestNet::start_with(4, limits).await.unwrap();
    let (alice, _, bob, _) = pair(&net);
    let source = net.path("paced.bin");
    let data = random_file(&source, 64 * 65_536);
    let sent = ok_lines(&alice.run(&["--json", "send", "--file", source.to_str().unwrap(), "bob"]));
    let hash = sent.iter().find_map(|l| l["hash"].as_str()).unwrap().to_owned();
    std::fs::write(bob.home.join("config.toml"), "auto_download_bytes = 0\n").ok();
    ok_lines(&bob.run(&["--json", "inbox"]));
    let dir = net.path("bob-paced");
    std::fs::create_dir_all(&dir).unwrap();
    let saved = ok_lines(&bob.run(&["--json", "save", &hash, dir.to_str().unwrap()]));
    let path = saved.iter().find_map(|l| l["saved"].as_str()).unwrap();
    assert!(std::fs::read(path).unwrap() == data);
}
