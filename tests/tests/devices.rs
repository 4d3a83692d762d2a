//! Devices of one account on a devnet (issue 12; `docs/devices.md`): a
//! restored home is linked by an approving device after both show one
//! code, and from then on both read what is sealed to the account's
//! rotating keys, whichever device made them. A home that was not
//! approved gets no key, and what it writes is not trusted.
#![allow(clippy::unwrap_used)]

use allium_tests::{Client, TestNet, bodies, ok_lines, stderr};
use serde_json::Value;

/// `allium --json devices` on `client`.
fn devices(client: &Client) -> Value {
    ok_lines(&client.run(&["--json", "devices"])).remove(0)
}

/// A restored home asks to be linked; returns its device id and code.
fn request_link(client: &Client, name: &str) -> (String, String) {
    let out = ok_lines(&client.run(&["--json", "devices", "link", "--name", name, "--wait", "0"]));
    (
        out[0]["device"].as_str().unwrap().to_owned(),
        out[0]["code"].as_str().unwrap().to_owned(),
    )
}

/// Alice's phone publishes keys; her laptop, restored from the phrase,
/// asks to be linked and shows a code; the phone lists the request with
/// the same code and approves it, sharing its key. Both read Bob's v2
/// message. The laptop then rotates: its new key reaches the phone, and a
/// new sender's message, sealed to the new key, is read on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_linked_devices_both_read_v2_whichever_made_the_key() {
    let net = TestNet::start(5).await.unwrap();
    let phone = net.client("alice-phone");
    let (alice_id, phrase) = phone.init();
    let bob = net.client("bob");
    bob.init();
    let first = ok_lines(&phone.run(&["--json", "id", "--keys"]));
    let first_key = first[0]["keys"][0]["key_id"].as_str().unwrap().to_owned();
    assert_eq!(devices(&phone)["linked"], true, "the first device lists itself");

    let laptop = net.client("alice-laptop");
    laptop.run_with_input(&["--json", "restore"], &phrase);
    assert_eq!(devices(&laptop)["linked"], false);
    let (laptop_device, code) = request_link(&laptop, "laptop");

    let seen = devices(&phone);
    let requests = seen["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{seen}");
    assert_eq!(requests[0]["device"], laptop_device.as_str());
    assert_eq!(requests[0]["code"], code.as_str(), "both devices show one code");
    assert_eq!(requests[0]["name"], "laptop");
    let approved = ok_lines(&phone.run(&["--json", "devices", "approve", &laptop_device[..8]]));
    assert_eq!(approved[0]["keys_shared"], 1, "{approved:?}");

    let linked = devices(&laptop);
    assert_eq!(linked["linked"], true, "{linked}");
    assert_eq!(linked["keys_received"], 1, "{linked}");
    assert_eq!(linked["devices"].as_array().unwrap().len(), 2, "{linked}");
    assert_eq!(
        devices(&phone)["requests"].as_array().unwrap().len(),
        0,
        "the request is gone"
    );

    ok_lines(&bob.run(&["send", &alice_id, "to both of alice's devices"]));
    assert_eq!(ok_lines(&bob.run(&["--json", "history", &alice_id]))[0]["envelope"], 2);
    for device in [&phone, &laptop] {
        assert_eq!(
            bodies(&ok_lines(&device.run(&["--json", "inbox"]))),
            ["to both of alice's devices"],
            "{}",
            device.home.display()
        );
    }

    // The laptop rotates: the new key is shared with the phone before the
    // bundle naming it is stored.
    let rotated = ok_lines(&laptop.run(&["--json", "id", "--keys", "--rotate"]));
    assert_eq!(rotated[0]["rotated"], true, "{rotated:?}");
    assert_eq!(rotated[0]["shared"], 1, "{rotated:?}");
    let keys = rotated[0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "the previous key and the new one: {rotated:?}");
    assert_eq!(keys[0]["key_id"], first_key.as_str());
    let new_key = keys[1]["key_id"].as_str().unwrap().to_owned();

    // Bob's cached bundle still names the first key: a message sealed to
    // it after the rotation is read on both (the key is kept for 16 days).
    ok_lines(&bob.run(&["send", &alice_id, "to the key before the rotation"]));
    for device in [&phone, &laptop] {
        assert_eq!(
            bodies(&ok_lines(&device.run(&["--json", "inbox"]))),
            ["to the key before the rotation"],
            "{}",
            device.home.display()
        );
    }

    // Carol has no cached bundle: she seals to the newest key.
    let carol = net.client("carol");
    carol.init();
    ok_lines(&carol.run(&["send", &alice_id, "sealed to the laptop's new key"]));
    for device in [&phone, &laptop] {
        let out = device.run(&["--json", "inbox"]);
        assert_eq!(
            bodies(&ok_lines(&out)),
            ["sealed to the laptop's new key"],
            "{}: {}",
            device.home.display(),
            stderr(&out)
        );
    }
    let phone_keys = ok_lines(&phone.run(&["--json", "id", "--keys"]));
    let ids: Vec<&str> = phone_keys[0]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [first_key.as_str(), new_key.as_str()],
        "the phone holds the laptop's key"
    );
    assert_eq!(phone_keys[0]["rotated"], false, "and does not rotate again");
    assert_eq!(
        devices(&phone)["foreign_bundles"],
        0,
        "the laptop's bundle is not foreign to the phone"
    );
}

/// Mallory holds Alice's phrase. Her link request is listed with its own
/// code, and without an approval she gets no key: she cannot read Alice's
/// v2 messages, cannot start publishing keys for the account while it has
/// devices, and the list she signs herself (`devices reset`) is reported
/// by Alice's device and not followed, as is the bundle she publishes:
/// Alice's next key is not shared with her.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_nobody_approved_gets_no_key_and_is_not_trusted() {
    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let (alice_id, phrase) = alice.init();
    ok_lines(&alice.run(&["--json", "id", "--keys"]));
    let mallory = net.client("mallory");
    mallory.run_with_input(&["--json", "restore"], &phrase);
    let (mallory_device, code) = request_link(&mallory, "phone");
    let seen = devices(&alice);
    assert_eq!(seen["requests"][0]["device"], mallory_device.as_str());
    assert_eq!(seen["requests"][0]["code"], code.as_str());

    let refused = mallory.run(&["--json", "id", "--keys"]);
    assert!(!refused.status.success(), "a second first device is refused");
    assert!(stderr(&refused).contains("allium devices link"), "{}", stderr(&refused));

    let bob = net.client("bob");
    bob.init();
    ok_lines(&bob.run(&["send", &alice_id, "not for mallory"]));
    let out = mallory.run(&["--json", "inbox"]);
    assert!(bodies(&Client::json_lines(&out)).is_empty(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot be read here"), "{}", stderr(&out));
    assert_eq!(devices(&mallory)["keys_received"], 0);

    // Mallory's own list: reported, not trusted, not shared with.
    ok_lines(&mallory.run(&["--json", "devices", "reset"]));
    let out = alice.run(&["--json", "devices"]);
    let seen = ok_lines(&out).remove(0);
    assert_eq!(seen["devices"].as_array().unwrap().len(), 1, "{seen}");
    assert!(seen["foreign_records"].as_u64().unwrap() >= 1, "{seen}");
    assert!(
        stderr(&out).contains("signed by devices this one does not trust"),
        "{}",
        stderr(&out)
    );
    assert_eq!(seen["foreign_bundles"], 1, "mallory's own bundle is noticed: {seen}");
    assert!(
        stderr(&out).contains("key bundle(s) published for this account"),
        "{}",
        stderr(&out)
    );
    let rotated = ok_lines(&alice.run(&["--json", "id", "--keys", "--rotate"]));
    assert_eq!(rotated[0]["shared"], 0, "no device to share with: {rotated:?}");
    assert_eq!(devices(&mallory)["keys_received"], 0);
}

/// Forward secrecy is the default: a new account publishes keys at its
/// first inbox round, and seals the copies of what it sends to its own
/// current key, so its linked laptop reads them and a home restored from
/// the phrase alone does not (and is told to link). A home configured
/// with `forward_secrecy = false` publishes nothing, and what is sent to
/// it is v1; a message from an old-style client (v1 to everyone) is read
/// by an account with keys and marked as without forward secrecy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_secrecy_by_default_with_own_copies_sealed_to_the_account_key() {
    use allium_common::encoding::from_base64;
    use allium_common::envelope_v2;
    use allium_tests::hostile::{identity_of, retrieve_request, rpc};

    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let (alice_id, phrase) = alice.init();
    let bob = net.client("bob");
    let (bob_id, _) = bob.init();
    let v1_only = net.client("dave");
    let (dave_id, _) = v1_only.init();
    std::fs::write(v1_only.home.join("config.toml"), "forward_secrecy = false\n").unwrap();
    for c in [&alice, &bob, &v1_only] {
        c.run(&["--json", "inbox"]);
    }
    let laptop = net.client("alice-laptop");
    laptop.restore_and_link(&phrase, &alice);

    ok_lines(&alice.run(&["send", &bob_id, "sealed to bob's key, copy to mine"]));
    ok_lines(&alice.run(&["send", &dave_id, "dave has no keys"]));
    assert_eq!(
        ok_lines(&alice.run(&["--json", "history", &bob_id]))[0]["envelope"],
        2,
        "bob published keys at his first round"
    );
    assert_eq!(ok_lines(&alice.run(&["--json", "history", &dave_id]))[0]["envelope"], 1);
    assert_eq!(
        bodies(&ok_lines(&v1_only.run(&["--json", "inbox"]))),
        ["dave has no keys"]
    );

    // Alice's mailbox holds the two copies, both v2.
    let owner = identity_of(&phrase);
    let (status, body) = rpc(&net.net.nodes[0].address, &retrieve_request(&owner)).await;
    assert_eq!(status, 200, "{body}");
    let versions: Vec<u8> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| from_base64(m["data"].as_str().unwrap()).unwrap()[0])
        .collect();
    assert_eq!(
        versions,
        [envelope_v2::ENVELOPE_V2; 2],
        "copies sealed to the account's key"
    );

    laptop.run(&["--json", "inbox"]);
    let sent = ok_lines(&laptop.run(&["--json", "history", &bob_id]));
    assert_eq!(
        bodies(&sent),
        ["sealed to bob's key, copy to mine"],
        "the linked laptop reads the copy"
    );
    assert_eq!(sent[0]["direction"], "to");

    // An old-style client seals v1 to everyone: Alice, who has keys, reads
    // it and marks it.
    let old_client = allium_common::Identity::from_ed25519_seed(&[0x0d; 32]);
    let account: allium_common::AccountId = alice_id.parse().unwrap();
    let content = allium_common::content::Content::text("from an old client", allium_tests::hostile::now_ms());
    let v1 = allium_common::envelope::seal(&old_client, &account, &content, &[9; 32]).unwrap();
    let stored = rpc(
        &net.net.nodes[0].address,
        &allium_tests::hostile::store_request(&account, &v1),
    )
    .await;
    let stored = if stored.0 == 421 {
        // Not a member of Alice's swarm: the CLI's own path finds one.
        let mut ok = 0;
        for node in &net.net.nodes {
            ok = rpc(&node.address, &allium_tests::hostile::store_request(&account, &v1))
                .await
                .0;
            if ok == 200 {
                break;
            }
        }
        ok
    } else {
        stored.0
    };
    assert_eq!(stored, 200);
    let got = ok_lines(&alice.run(&["--json", "inbox"]));
    assert_eq!(bodies(&got), ["from an old client"]);
    let text = String::from_utf8(alice.run(&["history", &old_client.account_id().to_string()]).stdout).unwrap();
    assert!(
        text.contains("from an old client") && text.contains("[no forward secrecy]"),
        "{text}"
    );

    let restored = net.client("alice-restored");
    let out = restored.run_with_input(&["--json", "restore"], &phrase);
    assert!(stderr(&out).contains("cannot be read here"), "{}", stderr(&out));
    let round = restored.run(&["--json", "inbox"]);
    assert!(
        stderr(&round).contains("allium devices link"),
        "told to link: {}",
        stderr(&round)
    );
    let history = restored.run(&["--json", "history", &bob_id]);
    assert!(
        bodies(&Client::json_lines(&history)).is_empty(),
        "the phrase alone reads no copy"
    );
}

/// A lost laptop is removed from the phone: the phone makes a new key at
/// once and shares it only with the devices that stay, so what a new
/// sender seals to it is read on the phone and not on the laptop; the
/// laptop, back online, learns it was removed, deletes its keys, and is
/// not linked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_device_gets_no_new_key_and_drops_its_own() {
    let net = TestNet::start(5).await.unwrap();
    let phone = net.client("alice-phone");
    let (alice_id, phrase) = phone.init();
    ok_lines(&phone.run(&["--json", "id", "--keys"]));
    let laptop = net.client("alice-laptop");
    let linked = laptop.restore_and_link(&phrase, &phone);
    assert_eq!(linked["keys_received"], 1);
    let laptop_id = linked["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["this_device"] == true)
        .unwrap()["device"]
        .as_str()
        .unwrap()
        .to_owned();

    let removed = ok_lines(&phone.run(&["--json", "devices", "remove", &laptop_id[..6]]));
    assert_eq!(removed[0]["removed"]["device"], laptop_id.as_str(), "{removed:?}");
    assert_eq!(
        removed[0]["shared"], 0,
        "the new key goes to no removed device: {removed:?}"
    );
    let seen = devices(&phone);
    assert_eq!(seen["devices"].as_array().unwrap().len(), 1, "{seen}");
    let keys = ok_lines(&phone.run(&["--json", "id", "--keys"]));
    assert_eq!(
        keys[0]["keys"].as_array().unwrap().len(),
        2,
        "rotated at once: {keys:?}"
    );

    let carol = net.client("carol");
    carol.init();
    ok_lines(&carol.run(&["send", &alice_id, "after the laptop was removed"]));
    assert_eq!(
        bodies(&ok_lines(&phone.run(&["--json", "inbox"]))),
        ["after the laptop was removed"]
    );
    let out = laptop.run(&["--json", "inbox"]);
    assert!(bodies(&Client::json_lines(&out)).is_empty(), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot be read here"), "{}", stderr(&out));
    let after = devices(&laptop);
    assert_eq!(after["linked"], false, "{after}");
    let home = allium_client::home::Home::open(&laptop.home).unwrap();
    assert!(
        home.account_keys().unwrap().is_empty(),
        "the removed laptop deleted its keys"
    );
    let again = laptop.run(&["--json", "devices", "link", "--wait", "0"]);
    assert!(!again.status.success(), "a removed device is not linked again");
}
