//! Envelope v2 on a devnet (issue 12; `docs/envelope-v2.md`): an account
//! publishes its key bundle, and anyone can read and verify it.
#![allow(clippy::unwrap_used)]

use allium_common::AccountId;
use allium_common::encoding::from_base64;
use allium_common::keys::UnverifiedKeyBundle;
use allium_common::rpc::{Call, Namespace, RetrievePublicParams};
use allium_tests::hostile::{now_ms, rpc};
use allium_tests::{TestNet, ok_lines};

/// The bundles a swarm member holds for `account`, read without a
/// signature as any sender would.
async fn bundles_at(node: &str, account: &AccountId) -> Vec<Vec<u8>> {
    let request = Call::RetrievePublic(RetrievePublicParams {
        pubkey: (*account).into(),
        namespace: Namespace::PUBLIC_KEYS,
        last_hash: None,
        max_count: None,
        max_size: None,
    })
    .to_json();
    let (status, body) = rpc(node, &request).await;
    assert!(status == 200 || status == 421, "{status}: {body}");
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| from_base64(m["data"].as_str().unwrap()).unwrap())
        .collect()
}

/// `allium id --keys` makes a key and publishes a signed bundle that any
/// swarm member gives out unsigned and that verifies against the Account
/// ID (and not against another); a second run keeps the same key and
/// stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_publishes_a_bundle_anyone_can_read_and_verify() {
    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let (alice_id, _) = alice.init();
    let (bob_id, _) = net.client("bob").init();
    let first = ok_lines(&alice.run(&["--json", "id", "--keys"]));
    assert_eq!(first[0]["rotated"], true, "{first:?}");
    assert_eq!(first[0]["stored"], true);
    let keys = first[0]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key_id = keys[0]["key_id"].as_str().unwrap().to_owned();

    let account: AccountId = alice_id.parse().unwrap();
    let mut seen = 0;
    for node in &net.net.nodes {
        for bytes in bundles_at(&node.address, &account).await {
            seen += 1;
            let bundle = UnverifiedKeyBundle::decode(&bytes)
                .unwrap()
                .verify(&account, now_ms())
                .unwrap();
            assert_eq!(hex::encode(bundle.keys()[0].key_id()), key_id);
            let other: AccountId = bob_id.parse().unwrap();
            assert!(
                UnverifiedKeyBundle::decode(&bytes)
                    .unwrap()
                    .verify(&other, now_ms())
                    .is_err(),
                "it does not pass for another account"
            );
        }
    }
    assert!(seen > 0, "the swarm gives the bundle out");

    let again = ok_lines(&alice.run(&["--json", "id", "--keys"]));
    assert_eq!(again[0]["rotated"], false, "{again:?}");
    assert_eq!(again[0]["stored"], false);
    assert_eq!(again[0]["keys"][0]["key_id"], key_id.as_str());
}

/// A v2 message sealed to the key Alice published opens in her inbox
/// (with its sender verified); one sealed to a key she never held is
/// counted and explained, not shown and not fatal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_message_opens_and_one_to_a_key_never_held_is_explained() {
    use allium_common::content::Content;
    use allium_common::keys::AccountKeyPair;
    use allium_common::{envelope_v2, sodium};
    use allium_tests::hostile::{identity_of, store_request};
    use allium_tests::{bodies, stderr};

    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let (alice_id, _) = alice.init();
    let (bob_id, bob_phrase) = net.client("bob").init();
    let bob = identity_of(&bob_phrase);
    ok_lines(&alice.run(&["--json", "id", "--keys"]));
    let account: AccountId = alice_id.parse().unwrap();
    let node = net.net.nodes[0].address.clone();
    let bundle = bundles_at(&node, &account).await.pop().expect("a bundle");
    let bundle = UnverifiedKeyBundle::decode(&bundle)
        .unwrap()
        .verify(&account, now_ms())
        .unwrap();
    let key = bundle.current_key(now_ms()).unwrap().clone();

    let hello = Content::text("hello with forward secrecy", now_ms());
    let sealed = envelope_v2::seal(&bob, &account, &key, &hello, &sodium::random_array()).unwrap();
    assert_eq!(rpc(&node, &store_request(&account, &sealed)).await.0, 200);
    let stranger_key = AccountKeyPair::generate().publish(now_ms(), now_ms() + 86_400_000);
    let lost = envelope_v2::seal(&bob, &account, &stranger_key, &hello, &sodium::random_array()).unwrap();
    assert_eq!(rpc(&node, &store_request(&account, &lost)).await.0, 200);
    // Junk that happens to start with the v2 version byte cannot be told
    // from such a message without the key: it is counted with them.
    let mut junk: [u8; 1500] = sodium::random_array();
    junk[0] = envelope_v2::ENVELOPE_V2;
    assert_eq!(rpc(&node, &store_request(&account, &junk)).await.0, 200);

    let out = alice.run(&["--json", "inbox"]);
    let lines = ok_lines(&out);
    assert_eq!(
        bodies(&lines),
        ["hello with forward secrecy"],
        "only the readable one is shown"
    );
    assert_eq!(lines[0]["from"], bob_id.as_str(), "the sender is verified");
    assert!(
        stderr(&out).contains("skipped 2 item(s)"),
        "both are unreadable: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("2 of them look like messages sealed with forward secrecy"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("cannot be read here"), "{}", stderr(&out));
}

/// v1 and v2 side by side: a client writing to an account that published
/// keys seals v2, one writing to an account that did not (a v1-only peer)
/// falls back to v1, both are read, and the history says which, marking
/// the message without forward secrecy for the account that has keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_to_an_account_with_keys_and_v1_to_one_without() {
    use allium_tests::bodies;
    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let bob = net.client("bob");
    let (alice_id, _) = alice.init();
    let (bob_id, _) = bob.init();
    ok_lines(&alice.run(&["--json", "id", "--keys"]));
    ok_lines(&alice.run(&["contacts", "add", "bob", &bob_id]));
    ok_lines(&bob.run(&["contacts", "add", "alice", &alice_id]));

    ok_lines(&bob.run(&["send", "alice", "sealed to alice's published key"]));
    assert_eq!(
        bodies(&ok_lines(&alice.run(&["--json", "inbox"]))),
        ["sealed to alice's published key"]
    );
    let got = ok_lines(&alice.run(&["--json", "history", "bob"]));
    assert_eq!(got[0]["envelope"], 2, "{got:?}");
    let sent = ok_lines(&bob.run(&["--json", "history", "alice"]));
    assert_eq!(sent[0]["envelope"], 2, "{sent:?}");

    ok_lines(&alice.run(&["send", "bob", "bob has no keys"]));
    assert_eq!(bodies(&ok_lines(&bob.run(&["--json", "inbox"]))), ["bob has no keys"]);
    let got = ok_lines(&bob.run(&["--json", "history", "alice"]));
    assert_eq!(got[1]["envelope"], 1, "{got:?}");
    let text = String::from_utf8(alice.run(&["history", "bob"]).stdout).unwrap();
    let marked: Vec<&str> = text.lines().filter(|l| l.contains("[no forward secrecy]")).collect();
    assert_eq!(marked.len(), 1, "only the v1 message is marked: {text}");
    assert!(marked[0].contains("bob has no keys"), "{text}");
}

/// Forward secrecy, end to end. Bob writes to Alice in v2 and the envelope
/// is captured from the swarm. A home restored from Alice's phrase alone
/// cannot read it, and says so; Alice's device reads it while it holds
/// the key; once that key is deleted (its retention over: when, is
/// `keyring`'s unit tests), nobody opens the captured envelope, the
/// phrase notwithstanding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captured_v2_message_dies_with_its_key_and_the_phrase_does_not_open_it() {
    use allium_client::home::Home;
    use allium_common::{envelope, envelope_v2};
    use allium_tests::hostile::{identity_of, retrieve_request};
    use allium_tests::{bodies, stderr};

    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let (alice_id, phrase) = alice.init();
    let bob = net.client("bob");
    bob.init();
    ok_lines(&alice.run(&["--json", "id", "--keys"]));
    ok_lines(&bob.run(&["send", &alice_id, "for alice's current key only"]));

    // What a recorder of the swarm keeps: every envelope of Alice's mailbox.
    let owner = identity_of(&phrase);
    let (status, body) = rpc(&net.net.nodes[0].address, &retrieve_request(&owner)).await;
    assert_eq!(status, 200, "{body}");
    let captured: Vec<Vec<u8>> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| from_base64(m["data"].as_str().unwrap()).unwrap())
        .filter(|d| d.first() == Some(&envelope_v2::ENVELOPE_V2))
        .collect();
    assert_eq!(captured.len(), 1, "one v2 envelope");
    let captured = &captured[0];

    let restored = net.client("alice-restored");
    let out = restored.run_with_input(&["--json", "restore"], &phrase);
    assert!(
        bodies(&ok_lines(&out)).is_empty(),
        "the phrase alone reads nothing of it"
    );
    assert!(
        stderr(&out).contains("cannot be read here"),
        "and says so: {}",
        stderr(&out)
    );

    assert_eq!(
        bodies(&ok_lines(&alice.run(&["--json", "inbox"]))),
        ["for alice's current key only"],
        "the device that holds the key reads it"
    );
    assert!(matches!(
        envelope_v2::open(&owner, |_| None, captured),
        Err(envelope_v2::EnvelopeV2Error::UnknownKey(_))
    ));
    assert!(envelope::open(&owner, captured).is_err(), "nor as v1");

    let mut home = Home::open(&alice.home).unwrap();
    let held: Vec<_> = home.account_keys().unwrap().into_iter().map(|k| k.key_id).collect();
    let opens = |home: &Home| {
        envelope_v2::open(
            home.identity(),
            |id| home.account_key_secret(id).ok().flatten(),
            captured,
        )
    };
    assert!(opens(&home).is_ok(), "while the key is held");
    home.delete_account_keys(&held).unwrap();
    assert!(
        matches!(opens(&home), Err(envelope_v2::EnvelopeV2Error::UnknownKey(_))),
        "once it is deleted, not even Alice's own home opens it"
    );
}
