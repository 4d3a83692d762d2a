//! The account's shared state across devices, through the CLI on a devnet
//! (issue 11; `docs/account-sync.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use allium_tests::{Client, TestNet, bodies, ok_lines as lines, stderr};

use serde_json::Value;

fn ok(out: &std::process::Output) -> Value {
    assert_eq!(out.status.code(), Some(0), "command failed: {}", stderr(out));
    Client::json_lines(out).remove(0)
}

/// A display name set on one device is there on a second device restored
/// from the phrase alone, and a rename on the second reaches the first:
/// the state lives, sealed, in the account's own swarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_follows_the_account_to_a_restored_device() {
    let net = TestNet::start(5).await.unwrap();
    let phone = net.client("phone");
    let (id, phrase) = phone.init();
    let set = ok(&phone.run(&["--json", "profile", "--name", "Ann"]));
    assert_eq!(set["name"], "Ann");
    assert_eq!(set["synced"][0]["stored"], 1, "one copy of the profile: {set}");

    let laptop = net.client("laptop");
    let restored = laptop.run_with_input(&["--json", "restore"], &phrase);
    assert_eq!(ok(&restored)["account_id"], id.as_str());
    let seen = ok(&laptop.run(&["--json", "profile"]));
    assert_eq!(seen["name"], "Ann", "the restored device has the name: {seen}");

    ok(&laptop.run(&["--json", "profile", "--name", "Ann B"]));
    let back = ok(&phone.run(&["--json", "profile"]));
    assert_eq!(back["name"], "Ann B", "the rename reached the first device: {back}");
    // A second sync with nothing new stores nothing.
    let quiet = ok(&phone.run(&["--json", "profile"]));
    assert!(
        quiet["synced"].as_array().unwrap().iter().all(|s| s["stored"] == 0),
        "{quiet}"
    );
}

/// The contacts as `allium contacts list --json` shows them: Account ID →
/// (name, blocked).
fn contacts(client: &Client) -> std::collections::BTreeMap<String, (Value, bool)> {
    Client::json_lines(&client.run(&["--json", "contacts", "list"]))
        .into_iter()
        .map(|c| {
            (
                c["account_id"].as_str().unwrap().to_owned(),
                (c["name"].clone(), c["blocked"] == true),
            )
        })
        .collect()
}

/// Device 1 sets a name, adds two contacts, blocks a third, sends and
/// receives; a fresh home restored from the phrase alone shows the name,
/// the contacts, the block and both directions of the conversation, and
/// says what it restored. The correspondent sees the display name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_brings_back_names_contacts_blocks_and_both_sides_of_a_conversation() {
    let net = TestNet::start(5).await.unwrap();
    let phone = net.client("phone");
    let (me, phrase) = phone.init();
    let (bob_id, carol_id, mallory_id) = (
        net.client("bob").init().0,
        net.client("carol").init().0,
        net.client("mallory").init().0,
    );
    let bob = net.client("bob");
    ok(&phone.run(&["--json", "profile", "--name", "Annabel Lee"]));
    lines(&phone.run(&["contacts", "add", "bob", &bob_id]));
    lines(&phone.run(&["contacts", "add", "carol", &carol_id]));
    lines(&phone.run(&["contacts", "block", &mallory_id]));
    lines(&phone.run(&["send", "bob", "hello bob"]));
    let got = lines(&bob.run(&["--json", "inbox"]));
    assert_eq!(bodies(&got), ["hello bob"]);
    assert_eq!(
        got[0]["display_name"], "Annabel Lee",
        "the name travels with the message: {got:?}"
    );
    lines(&bob.run(&["send", &me, "hi ann"]));
    let got = lines(&phone.run(&["--json", "inbox"]));
    assert_eq!(bodies(&got), ["hi ann"]);
    assert_eq!(got[0]["name"], "bob");

    let laptop = net.client("laptop");
    let restored = lines(&laptop.run_with_input(&["--json", "restore"], &phrase));
    let summary = restored.last().unwrap();
    assert_eq!(summary["restored_profile_name"], "Annabel Lee", "{restored:?}");
    assert_eq!(summary["restored_contacts"], 2, "{restored:?}");
    assert_eq!(summary["restored_blocked"], 1, "{restored:?}");
    assert_eq!(summary["restored_messages"], 2, "{restored:?}");
    let history = lines(&laptop.run(&["--json", "history", "bob"]));
    assert_eq!(bodies(&history), ["hello bob", "hi ann"], "both directions");
    assert_eq!(history[0]["direction"], "to");
    assert_eq!(history[1]["direction"], "from");
    let book = contacts(&laptop);
    assert_eq!(book[&bob_id], (Value::from("bob"), false));
    assert_eq!(book[&carol_id], (Value::from("carol"), false));
    assert_eq!(book[&mallory_id], (Value::Null, true));

    // What the swarm holds of the contacts: sealed pages. Carol never got a
    // message, so neither her Account ID (as text or key) nor the name
    // given to her may appear in any node's files.
    let carol_key = hex::decode(&carol_id[2..]).unwrap();
    for node in &net.net.nodes {
        let mut bytes = Vec::new();
        for file in ["messages.db", "messages.db-wal"] {
            bytes.extend(std::fs::read(node.dir.join(file)).unwrap_or_default());
        }
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(
            !contains(carol_id.as_bytes()),
            "{} holds a contact's Account ID",
            node.name
        );
        assert!(!contains(&carol_key), "{} holds a contact's key", node.name);
        assert!(!contains(b"\"carol\""), "{} holds a nickname", node.name);
        assert!(!contains(b"Annabel Lee"), "{} holds the display name", node.name);
    }
}

/// Two linked homes of one account used alternately converge: contacts added on
/// both, the same nickname given to two accounts, a rename made while one
/// device was offline; and a message sent from one is in the other's
/// history after one `inbox` round, not shown there as new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_on_one_phrase_converge() {
    let net = TestNet::start(5).await.unwrap();
    let phone = net.client("phone");
    let (_, phrase) = phone.init();
    let laptop = net.client("laptop");
    // Linked, so that what the phone seals to the account's keys (its
    // copies of sent messages, what others send) opens on the laptop too.
    laptop.restore_and_link(&phrase, &phone);
    let ids: Vec<String> = (0..4).map(|i| net.client(&format!("friend{i}")).init().0).collect();

    lines(&phone.run(&["contacts", "add", "dan", &ids[0]]));
    lines(&laptop.run(&["contacts", "add", "eve", &ids[1]]));
    // The laptop is offline while both edit.
    lines(&laptop.run(&["--offline", "contacts", "add", "sam", &ids[2]]));
    lines(&phone.run(&["contacts", "add", "sam", &ids[3]]));
    ok(&phone.run(&["--json", "profile", "--name", "Phone name"]));
    let offline = laptop.run(&["--offline", "--json", "profile", "--name", "Laptop name"]);
    assert_ne!(offline.status.code(), Some(0), "the profile command needs the network");
    // Back online: the laptop's later rename wins on both.
    ok(&laptop.run(&["--json", "profile", "--name", "Laptop name"]));
    assert_eq!(ok(&phone.run(&["--json", "profile"]))["name"], "Laptop name");

    let (on_phone, on_laptop) = (contacts(&phone), contacts(&laptop));
    assert_eq!(on_phone, on_laptop, "the same book on both");
    assert_eq!(on_phone[&ids[0]].0, "dan");
    assert_eq!(on_phone[&ids[1]].0, "eve");
    // The laptop's "sam" was written first.
    assert_eq!(on_phone[&ids[2]].0, "sam");
    assert_eq!(on_phone[&ids[3]].0, "sam (2)");

    lines(&phone.run(&["send", "dan", "from the phone"]));
    let round = laptop.run(&["--json", "inbox"]);
    assert_eq!(round.status.code(), Some(1), "nothing new to show: {}", stderr(&round));
    assert!(
        stderr(&round).contains("sent from another device"),
        "{}",
        stderr(&round)
    );
    let history = lines(&laptop.run(&["--json", "history", "dan"]));
    assert_eq!(bodies(&history), ["from the phone"]);
    assert_eq!(history[0]["direction"], "to");

    // A message the phone showed is marked read on the laptop; a
    // conversation muted on the laptop is quiet on the phone.
    let (me, dan, eve) = (
        lines(&phone.run(&["--json", "id"]))[0]["account_id"]
            .as_str()
            .unwrap()
            .to_owned(),
        net.client("friend0"),
        net.client("friend1"),
    );
    lines(&dan.run(&["send", &me, "hi from dan"]));
    assert_eq!(bodies(&lines(&phone.run(&["--json", "inbox"]))), ["hi from dan"]);
    let round = lines(&laptop.run(&["--json", "inbox"]));
    assert_eq!(bodies(&round), ["hi from dan"]);
    assert_eq!(
        round[0]["read_elsewhere"], true,
        "shown on the phone already: {round:?}"
    );
    assert_eq!(
        bodies(&lines(&laptop.run(&["--json", "history", "dan"]))),
        ["from the phone", "hi from dan"]
    );
    lines(&laptop.run(&["--json", "mute", "eve"]));
    lines(&eve.run(&["send", &me, "hi from eve"]));
    let round = phone.run(&["--json", "inbox"]);
    assert_eq!(round.status.code(), Some(1), "muted: {}", stderr(&round));
    assert!(stderr(&round).contains("muted"), "{}", stderr(&round));
    assert_eq!(
        bodies(&lines(&phone.run(&["--json", "history", "eve"]))),
        ["hi from eve"]
    );
}

/// A stranger's message waits in `requests`, not the inbox; accepting it
/// tells the stranger and moves the conversation to the inbox. A declined
/// and blocked sender's later message is never shown and is gone from the
/// swarm, on every device of the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_wait_until_accepted_and_blocked_senders_vanish() {
    use allium_tests::hostile::{identity_of, retrieve_direct};
    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let (alice_id, phrase) = alice.init();
    let stranger = net.client("stranger");
    let (stranger_id, _) = stranger.init();
    let pest = net.client("pest");
    let (pest_id, _) = pest.init();

    lines(&stranger.run(&["send", &alice_id, "hello, we have not met"]));
    let got = lines(&alice.run(&["--json", "inbox"]));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["request"], true, "{got:?}");
    assert!(
        Client::json_lines(&alice.run(&["--json", "history"])).is_empty(),
        "a request is not in the history"
    );
    let waiting = lines(&alice.run(&["--json", "requests"]));
    assert_eq!(bodies(&waiting), ["hello, we have not met"]);
    assert_eq!(waiting[0]["from"], stranger_id.as_str());

    let accepted = lines(&alice.run(&["--json", "requests", "accept", &stranger_id, "--name", "stan"]));
    assert_eq!(accepted[0]["told"], true, "{accepted:?}");
    let told = lines(&stranger.run(&["--json", "inbox"]));
    assert!(told.iter().any(|l| l["accepted_by"] == alice_id.as_str()), "{told:?}");
    lines(&stranger.run(&["send", &alice_id, "glad to meet you"]));
    let got = lines(&alice.run(&["--json", "inbox"]));
    assert_eq!(bodies(&got), ["glad to meet you"]);
    assert_eq!(got[0]["request"], Value::Null, "now a contact's message");
    assert_eq!(got[0]["name"], "stan");
    assert_eq!(
        alice.run(&["--json", "requests"]).status.code(),
        Some(1),
        "the request was answered"
    );

    // An acceptance nobody asked for changes nothing: it would only add
    // keys to Alice's synced state.
    lines(&pest.run(&["--json", "requests", "accept", &alice_id]));
    let round = alice.run(&["--json", "inbox"]);
    assert!(
        !Client::json_lines(&round)
            .iter()
            .any(|l| l["accepted_by"] == pest_id.as_str()),
        "{}",
        String::from_utf8_lossy(&round.stdout)
    );
    assert!(
        !contacts(&alice).contains_key(&pest_id),
        "nothing about the pest is kept"
    );

    lines(&pest.run(&["send", &alice_id, "buy now"]));
    lines(&alice.run(&["--json", "requests", "decline", &pest_id, "--block"]));
    assert_eq!(
        alice.run(&["--json", "requests"]).status.code(),
        Some(1),
        "no request left"
    );
    let later = Client::json_lines(&pest.run(&["--json", "send", &alice_id, "buy now!!"]));
    let hash = later[0]["hash"].as_str().unwrap().to_owned();
    let owner = identity_of(&phrase);
    let mut held = 0;
    for node in &net.net.nodes {
        held += usize::from(retrieve_direct(&owner, &node.address).await.contains(&hash));
    }
    assert!(held > 0, "the swarm holds the message before Alice reads");
    let round = alice.run(&["--json", "inbox"]);
    assert!(bodies(&Client::json_lines(&round)).is_empty(), "never shown");
    assert!(stderr(&round).contains("blocked"), "{}", stderr(&round));
    for node in &net.net.nodes {
        assert!(
            !retrieve_direct(&owner, &node.address).await.contains(&hash),
            "{} still holds the blocked sender's message",
            node.address
        );
    }
    // A second device of the account knows the block too.
    let laptop = net.client("laptop");
    lines(&laptop.run_with_input(&["--json", "restore"], &phrase));
    assert!(contacts(&laptop)[&pest_id].1, "the block reached the restored device");
}

/// Polls `check` every 500 ms until it holds or `within` passes; returns
/// whether it held.
async fn eventually<F, Fut>(within: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let until = std::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > until {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// Whether any node of `net` holds message `hash` of `owner`'s mailbox.
async fn swarm_holds(net: &TestNet, owner: &allium_common::Identity, hash: &str) -> bool {
    for node in &net.net.nodes {
        if allium_tests::hostile::retrieve_direct(owner, &node.address)
            .await
            .iter()
            .any(|h| h == hash)
        {
            return true;
        }
    }
    false
}

/// Two friends with each other as contacts: (net, alice, bob, alice's id,
/// bob's id, bob's phrase).
async fn friends() -> (TestNet, Client, Client, String, String, String) {
    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let bob = net.client("bob");
    let (alice_id, _) = alice.init();
    let (bob_id, bob_phrase) = bob.init();
    lines(&alice.run(&["contacts", "add", "bob", &bob_id]));
    lines(&bob.run(&["contacts", "add", "alice", &alice_id]));
    (net, alice, bob, alice_id, bob_id, bob_phrase)
}

/// A conversation set to disappear 10 s after sending, then 10 s after
/// reading: the setting reaches the other side, and each message leaves
/// both histories and the swarm when its time is up (an after-read
/// message is kept in the swarm at full length until the recipient reads
/// it, then shortened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disappearing_messages_leave_history_and_swarm_on_time() {
    use allium_tests::hostile::identity_of;
    let (net, alice, bob, _, _, bob_phrase) = friends().await;
    let bob_key = identity_of(&bob_phrase);
    let set = lines(&alice.run(&["--json", "disappear", "bob", "after-send", "10s"]));
    assert_eq!(set[0]["told"], true, "{set:?}");
    let got = lines(&bob.run(&["--json", "inbox"]));
    assert!(
        got.iter()
            .any(|l| l["disappearing"]["after"] == "send" && l["disappearing"]["ms"] == 10_000),
        "bob learns the setting: {got:?}"
    );
    let sent = lines(&alice.run(&["--json", "send", "bob", "this will vanish"]));
    let hash = sent[0]["hash"].as_str().unwrap().to_owned();
    let got = lines(&bob.run(&["--json", "inbox"]));
    assert_eq!(bodies(&got), ["this will vanish"]);
    assert!(got[0]["expires_ms"].as_u64().is_some(), "{got:?}");
    assert!(swarm_holds(&net, &bob_key, &hash).await);
    assert_eq!(
        bodies(&lines(&alice.run(&["--json", "history", "bob"]))),
        ["this will vanish"]
    );
    let gone = eventually(std::time::Duration::from_secs(30), || async {
        Client::json_lines(&bob.run(&["--json", "history", "alice"])).is_empty()
            && Client::json_lines(&alice.run(&["--json", "history", "bob"])).is_empty()
            && !swarm_holds(&net, &bob_key, &hash).await
    })
    .await;
    assert!(gone, "the after-send message is gone from both histories and the swarm");

    // Bob's setting (after read) reaches Alice; her next message waits in
    // the swarm until Bob reads it.
    lines(&bob.run(&["--json", "disappear", "alice", "after-read", "10s"]));
    lines(&alice.run(&["--json", "inbox"]));
    let sent = lines(&alice.run(&["--json", "send", "bob", "read me once"]));
    let hash = sent[0]["hash"].as_str().unwrap().to_owned();
    tokio::time::sleep(std::time::Duration::from_secs(12)).await;
    assert!(
        swarm_holds(&net, &bob_key, &hash).await,
        "unread, it outlives its 10 s in the swarm"
    );
    assert_eq!(bodies(&lines(&bob.run(&["--json", "inbox"]))), ["read me once"]);
    let gone = eventually(std::time::Duration::from_secs(30), || async {
        Client::json_lines(&bob.run(&["--json", "history", "alice"])).is_empty()
            && !swarm_holds(&net, &bob_key, &hash).await
    })
    .await;
    assert!(
        gone,
        "once read, it is gone from the history and the swarm within its time"
    );
}

/// A read receipt reaches the sender; unsend removes a message from both
/// of the recipient's devices and from its swarm; wipe empties the
/// account's swarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_unsend_and_wipe() {
    use allium_tests::hostile::identity_of;
    let (net, alice, bob, _, _, bob_phrase) = friends().await;
    let bob_key = identity_of(&bob_phrase);
    let receipts = ok(&bob.run(&["--json", "profile", "--read-receipts", "on"]));
    assert_eq!(receipts["read_receipts"], true);
    lines(&alice.run(&["send", "bob", "did you read this?"]));
    let sent = lines(&alice.run(&["--json", "history", "bob"]));
    assert_eq!(sent[0]["receipt"], "none");
    lines(&bob.run(&["--json", "inbox"]));
    alice.run(&["--json", "inbox"]);
    let sent = lines(&alice.run(&["--json", "history", "bob"]));
    assert_eq!(sent[0]["receipt"], "read", "{sent:?}");

    let bob2 = net.client("bob2");
    lines(&bob2.run_with_input(&["--json", "restore"], &bob_phrase));
    let oops = lines(&alice.run(&["--json", "send", "bob", "oops, wrong chat"]));
    let hash = oops[0]["hash"].as_str().unwrap().to_owned();
    assert_eq!(bodies(&lines(&bob2.run(&["--json", "inbox"]))), ["oops, wrong chat"]);
    let undone = lines(&alice.run(&["--json", "unsend", &hash]));
    assert_eq!(undone[0]["told"], true, "{undone:?}");
    assert!(
        !bodies(&lines(&alice.run(&["--json", "history", "bob"]))).contains(&"oops, wrong chat".to_owned()),
        "gone from the sender's history"
    );
    for device in [&bob, &bob2] {
        device.run(&["--json", "inbox"]);
        let history = bodies(&Client::json_lines(&device.run(&["--json", "history", "alice"])));
        assert!(!history.contains(&"oops, wrong chat".to_owned()), "{history:?}");
    }
    assert!(!swarm_holds(&net, &bob_key, &hash).await, "gone from the swarm");

    let wiped = lines(&bob.run(&["--json", "wipe", "--yes"]));
    assert_eq!(wiped[0]["wiped"], true);
    for node in &net.net.nodes {
        assert!(
            allium_tests::hostile::retrieve_direct(&bob_key, &node.address)
                .await
                .is_empty(),
            "{} still holds bob's mailbox",
            node.address
        );
    }
    let fresh = net.client("bob3");
    let restored = lines(&fresh.run_with_input(&["--json", "restore"], &bob_phrase));
    assert_eq!(restored.last().unwrap()["restored_contacts"], 0, "{restored:?}");
    let refused = bob.run(&["wipe"]);
    assert_eq!(refused.status.code(), Some(1), "without `yes` nothing happens");
}
