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
    assert_eq!(set["synced"][0]["stored"], true, "{set}");

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
        quiet["synced"].as_array().unwrap().iter().all(|s| s["stored"] == false),
        "{quiet}"
    );
}
