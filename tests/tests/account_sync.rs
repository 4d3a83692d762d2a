//! The account's shared state across devices, through the CLI on a devnet
//! (issue 11; `docs/account-sync.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use allium_tests::{Client, TestNet, stderr};

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

fn lines(out: &std::process::Output) -> Vec<Value> {
    assert_eq!(out.status.code(), Some(0), "command failed: {}", stderr(out));
    Client::json_lines(out)
}

fn bodies(lines: &[Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|l| l["body"].as_str().map(str::to_owned))
        .collect()
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
    ok(&phone.run(&["--json", "profile", "--name", "Ann"]));
    lines(&phone.run(&["contacts", "add", "bob", &bob_id]));
    lines(&phone.run(&["contacts", "add", "carol", &carol_id]));
    lines(&phone.run(&["contacts", "block", &mallory_id]));
    lines(&phone.run(&["send", "bob", "hello bob"]));
    let got = lines(&bob.run(&["--json", "inbox"]));
    assert_eq!(bodies(&got), ["hello bob"]);
    assert_eq!(
        got[0]["display_name"], "Ann",
        "the name travels with the message: {got:?}"
    );
    lines(&bob.run(&["send", &me, "hi ann"]));
    let got = lines(&phone.run(&["--json", "inbox"]));
    assert_eq!(bodies(&got), ["hi ann"]);
    assert_eq!(got[0]["name"], "bob");

    let laptop = net.client("laptop");
    let restored = lines(&laptop.run_with_input(&["--json", "restore"], &phrase));
    let summary = restored.last().unwrap();
    assert_eq!(summary["restored_profile_name"], "Ann", "{restored:?}");
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
}

/// Two homes on one phrase used alternately converge: contacts added on
/// both, the same nickname given to two accounts, a rename made while one
/// device was offline; and a message sent from one is in the other's
/// history after one `inbox` round, not shown there as new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_on_one_phrase_converge() {
    let net = TestNet::start(5).await.unwrap();
    let phone = net.client("phone");
    let (_, phrase) = phone.init();
    let laptop = net.client("laptop");
    lines(&laptop.run_with_input(&["--json", "restore"], &phrase));
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
