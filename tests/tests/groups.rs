//! Private groups on a devnet, through the CLI (issue 13; `docs/groups.md`):
//! three accounts create a group and talk; a removed member is refused by
//! the group's swarm and cannot open what is sent after the rekey; a
//! non-member is refused; an admin promotes, a member leaves, and a group
//! comes back on a home restored from the phrase.
#![allow(clippy::unwrap_used)]

use allium_client::home::Home;
use allium_common::encoding::{Base64Bytes, Hex32, Sig64, from_base64};
use allium_common::group::credential::{Credential, Rights};
use allium_common::group::{GroupId, message};
use allium_common::rpc::{self, Call, Namespace, RetrieveParams};
use allium_common::{Identity, MailboxId};
use allium_tests::{Client, TestNet, hostile, ok_lines, stderr};
use serde_json::Value;

/// Three accounts that hold each other as contacts (so invitations are
/// joined at once); returns them with their Account IDs and phrases.
fn three(net: &TestNet) -> [(Client, String, String); 3] {
    let people = ["alice", "bob", "carol"].map(|name| {
        let c = net.client(name);
        let (id, phrase) = c.init();
        (c, id, phrase)
    });
    for (c, me, _) in &people {
        for (name, (_, id, _)) in ["alice", "bob", "carol"].iter().zip(&people) {
            if id != me {
                ok_lines(&c.run(&["contacts", "add", name, id]));
            }
        }
    }
    people
}

/// The group lines of `allium --json inbox` (or any command's output).
fn group_lines(lines: &[Value]) -> Vec<Value> {
    lines
        .iter()
        .filter(|l| l.get("group_name").is_some())
        .cloned()
        .collect()
}

fn said(lines: &[Value]) -> Vec<String> {
    group_lines(lines)
        .iter()
        .map(|l| l["body"].as_str().unwrap().to_owned())
        .collect()
}

/// A member's signed retrieve of the group's messages namespace.
fn member_retrieve(group: &GroupId, sub_key: &Identity, credential: Option<Vec<u8>>) -> Value {
    let ts = hostile::now_ms();
    Call::Retrieve(RetrieveParams {
        pubkey: (*group).into(),
        pubkey_ed25519: Hex32(*sub_key.ed25519_pk()),
        namespace: Namespace::GROUP_MESSAGES,
        timestamp: ts,
        signature: Sig64(sub_key.sign(&rpc::retrieve_signed_bytes(Namespace::GROUP_MESSAGES, ts))),
        last_hash: None,
        max_count: None,
        max_size: None,
        wait_ms: None,
        credential: credential.map(Base64Bytes),
    })
    .to_json()
}

/// `request` at the first node that holds the group (the others answer
/// 421).
async fn at_group_swarm(net: &TestNet, request: &Value) -> (u16, Value) {
    for node in &net.net.nodes {
        let (status, body) = hostile::rpc(&node.address, request).await;
        if status != 421 {
            return (status, body);
        }
    }
    panic!("no node holds the group");
}

/// A group row of a node's store: key, data, signer and signature,
/// credential.
type GroupRow = (Vec<u8>, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

/// A member's sub-key and credential, read from its home.
fn secrets_of(client: &Client, group: &GroupId) -> (Identity, Vec<u8>) {
    let home = Home::open(&client.home).unwrap();
    let g = home.group(group).unwrap().unwrap();
    (Identity::from_ed25519_seed(&g.member_seed), g.credential)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_talk_and_a_removed_one_reads_nothing_new() {
    let net = TestNet::start(5).await.unwrap();
    let [(alice, alice_id, _), (bob, _, _), (carol, _, _)] = three(&net);

    let created = ok_lines(&alice.run(&[
        "--json", "group", "create", "friends", "--member", "bob", "--member", "carol",
    ]));
    assert_eq!(created[0]["members"], 3, "{created:?}");
    assert_eq!(created[0]["generation"], 1);
    assert_eq!(created[0]["invited"], 2);
    let group: GroupId = created[0]["id"].as_str().unwrap().parse().unwrap();
    {
        // The admin's device holds the list and info it just published.
        let home = Home::open(&alice.home).unwrap();
        assert_eq!(home.group_members(&group).unwrap().len(), 3);
        assert!(home.group(&group).unwrap().unwrap().info_version > 0);
    }

    // The invitation arrives as a message from a contact, and is joined.
    for member in [&bob, &carol] {
        let lines = ok_lines(&member.run(&["--json", "inbox"]));
        assert!(
            lines
                .iter()
                .any(|l| l["body"] == "[invites you to the group \"friends\"]"),
            "{lines:?}"
        );
        let listed = ok_lines(&member.run(&["--json", "group", "list"]));
        assert_eq!(listed[0]["joined"], true, "{listed:?}");
    }

    // All three talk; names come from the contacts (and profiles).
    ok_lines(&alice.run(&["send", "friends", "hello all"]));
    ok_lines(&bob.run(&["send", &group.to_string(), "hi from bob"]));
    let at_carol = ok_lines(&carol.run(&["--json", "inbox"]));
    assert_eq!(said(&at_carol), ["hello all", "hi from bob"], "{at_carol:?}");
    let lines = group_lines(&at_carol);
    assert_eq!(lines[0]["from"], alice_id.as_str());
    assert_eq!(lines[0]["name"], "alice");
    assert_eq!(lines[1]["name"], "bob");
    ok_lines(&carol.run(&["send", "friends", "carol here"]));
    assert_eq!(
        said(&ok_lines(&alice.run(&["--json", "inbox"]))),
        ["hi from bob", "carol here"]
    );
    assert_eq!(
        said(&ok_lines(&bob.run(&["--json", "inbox"]))),
        ["hello all", "carol here"]
    );

    // What carol holds before her removal: her credential and the key of
    // generation 1.
    let (carol_sub_key, carol_credential) = secrets_of(&carol, &group);
    let carol_key = Home::open(&carol.home).unwrap().group_key(&group, 1).unwrap().unwrap();
    let (status, _) = at_group_swarm(
        &net,
        &member_retrieve(&group, &carol_sub_key, Some(carol_credential.clone())),
    )
    .await;
    assert_eq!(status, 200, "a member reads the group's swarm");

    let removed = ok_lines(&alice.run(&["--json", "group", "remove", "friends", "carol"]));
    assert_eq!(removed[0]["generation"], 2, "{removed:?}");
    assert_eq!(removed[0]["revoked"], 1);
    assert_eq!(removed[0]["members"], 2);
    ok_lines(&alice.run(&["send", "friends", "after carol left"]));
    assert_eq!(said(&ok_lines(&bob.run(&["--json", "inbox"]))), ["after carol left"]);

    // 1. The swarm refuses her credential.
    let (status, body) = at_group_swarm(&net, &member_retrieve(&group, &carol_sub_key, Some(carol_credential))).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("revoked"), "{body}");
    // 2. Her old key does not open what was sent after the rekey (read
    // here with bob's credential, as a member reads it).
    let (bob_sub_key, bob_credential) = secrets_of(&bob, &group);
    let (status, body) = at_group_swarm(&net, &member_retrieve(&group, &bob_sub_key, Some(bob_credential))).await;
    assert_eq!(status, 200, "{body}");
    let stored: Vec<Vec<u8>> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| from_base64(m["data"].as_str().unwrap()).unwrap())
        .collect();
    let after: Vec<&Vec<u8>> = stored.iter().filter(|d| message::generation_of(d) == Some(2)).collect();
    assert_eq!(after.len(), 1, "one message under generation 2");
    assert!(matches!(
        message::open(&group, |g| (g == 1).then(|| carol_key.clone()), after[0]),
        Err(message::GroupMessageError::UnknownGeneration(2))
    ));
    assert!(
        matches!(
            message::open(&group, |_| Some(carol_key.clone()), after[0]),
            Err(message::GroupMessageError::Decrypt)
        ),
        "the old key does not open the new generation"
    );
    assert!(
        stored
            .iter()
            .filter(|d| message::generation_of(d) == Some(1))
            .all(|d| message::open(&group, |_| Some(carol_key.clone()), d).is_ok()),
        "what she could read before stays readable to her"
    );
    // A node of her own could still store and serve what she seals under
    // the key she kept (played here by writing it into every node's
    // store): a member takes a group message only from an account on the
    // newest member list.
    let forged = {
        let home = Home::open(&carol.home).unwrap();
        let content = allium_common::content::Content::text("still here", hostile::now_ms());
        message::seal(home.identity(), &group, 1, &carol_key, &content, &[7; 24]).unwrap()
    };
    let forged_hash = rpc::message_hash(&MailboxId::from(group), Namespace::GROUP_MESSAGES, &forged);
    for node in &net.net.nodes {
        let db = rusqlite::Connection::open(node.dir.join("messages.db")).unwrap();
        db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
        let now = i64::try_from(hostile::now_ms()).unwrap();
        db.execute(
            "INSERT INTO messages (hash, account, namespace, timestamp_ms, expiry_ms, data) VALUES (?1, ?2, 11, ?3, ?4, ?5)",
            rusqlite::params![forged_hash, group.ed25519().as_slice(), now, now + 3_600_000, forged],
        )
        .unwrap();
    }
    let at_bob = Client::json_lines(&bob.run(&["--json", "inbox"]));
    assert!(!said(&at_bob).contains(&"still here".to_owned()), "{at_bob:?}");
    let history = Client::json_lines(&bob.run(&["--json", "history", "friends"]));
    assert!(!said(&history).contains(&"still here".to_owned()), "{history:?}");

    // Her client learns it was removed and shows nothing new.
    let at_carol = ok_lines(&carol.run(&["--json", "inbox"]));
    assert!(said(&at_carol).is_empty(), "{at_carol:?}");
    assert!(at_carol.iter().any(|l| l["group_removed"] == "friends"), "{at_carol:?}");

    // The group's swarm holds its rows under the Group ID; nothing in
    // them (data, signer keys, credentials) is a member's Account ID, as
    // bytes or as hex: the nodes never see who the members are.
    let member_keys: Vec<[u8; 32]> = [&alice, &bob, &carol]
        .iter()
        .map(|c| *Home::open(&c.home).unwrap().account_id().x25519())
        .collect();
    let mut group_rows = 0;
    for node in &net.net.nodes {
        let db = rusqlite::Connection::open(node.dir.join("messages.db")).unwrap();
        let rows: Vec<GroupRow> = db
            .prepare("SELECT account, data, owner_sig, credential FROM messages WHERE namespace BETWEEN 11 AND 15")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        for (account, data, owner_sig, credential) in &rows {
            group_rows += 1;
            assert_eq!(account.as_slice(), group.ed25519(), "a group row is keyed by the group");
            for blob in [Some(data), owner_sig.as_ref(), credential.as_ref()]
                .into_iter()
                .flatten()
            {
                for key in &member_keys {
                    assert!(
                        !blob.windows(32).any(|w| w == key.as_slice()),
                        "{}: a member's key",
                        node.name
                    );
                    let hex = hex::encode(key);
                    assert!(
                        !blob.windows(64).any(|w| w == hex.as_bytes()),
                        "{}: a member's ID",
                        node.name
                    );
                }
            }
        }
    }
    assert!(group_rows > 10, "the swarm holds the group's rows ({group_rows})");

    // A week on, the admin's next round stores the group's state again
    // and extends the revocation, so neither lapses with the nodes' 14
    // days. (The admin's last refresh is set back 8 days here.)
    let group_key = {
        let home = Home::open(&alice.home).unwrap();
        Identity::from_ed25519_seed(&home.group(&group).unwrap().unwrap().seed.unwrap())
    };
    let owner_read = |ns: Namespace| {
        let ts = hostile::now_ms();
        Call::Retrieve(RetrieveParams {
            pubkey: group.into(),
            pubkey_ed25519: Hex32(*group_key.ed25519_pk()),
            namespace: ns,
            timestamp: ts,
            signature: Sig64(group_key.sign(&rpc::retrieve_signed_bytes(ns, ts))),
            last_hash: None,
            max_count: None,
            max_size: None,
            wait_ms: None,
            credential: None,
        })
        .to_json()
    };
    let (_, revoked) = at_group_swarm(&net, &owner_read(Namespace::GROUP_REVOKED)).await;
    let (_, keys) = at_group_swarm(&net, &owner_read(Namespace::GROUP_KEYS)).await;
    let expiry = revoked["messages"][0]["expiration"].as_u64().unwrap();
    assert_eq!(alice.run(&["inbox"]).status.code(), Some(1), "nothing new");
    let (_, again) = at_group_swarm(&net, &owner_read(Namespace::GROUP_REVOKED)).await;
    assert_eq!(
        again["messages"][0]["expiration"].as_u64().unwrap(),
        expiry,
        "not due yet"
    );
    {
        let mut home = Home::open(&alice.home).unwrap();
        let eight_days_ago = hostile::now_ms() - 8 * 86_400_000;
        let key = format!("group_refreshed:{}", &group.to_string()[..34]);
        home.set_meta(&key, &eight_days_ago.to_string()).unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(alice.run(&["inbox"]).status.code(), Some(1), "nothing new");
    let (_, again) = at_group_swarm(&net, &owner_read(Namespace::GROUP_REVOKED)).await;
    assert!(
        again["messages"][0]["expiration"].as_u64().unwrap() > expiry,
        "the revocation was extended: {again}"
    );
    let (_, keys_again) = at_group_swarm(&net, &owner_read(Namespace::GROUP_KEYS)).await;
    assert_eq!(
        keys_again["messages"].as_array().unwrap().len(),
        keys["messages"].as_array().unwrap().len() + 1,
        "the key message was stored again"
    );

    // A non-member reads and writes nothing: without a credential, or
    // with one it signed itself.
    let stranger = Identity::from_ed25519_seed(&[0x5a; 32]);
    let forged = Credential::issue(&stranger, stranger.ed25519_pk(), Rights::MEMBER, hostile::now_ms());
    for credential in [None, Some(forged)] {
        let (status, _) = at_group_swarm(&net, &member_retrieve(&group, &stranger, credential.clone())).await;
        assert_eq!(status, 401, "read");
        let ts = hostile::now_ms();
        let data = b"spam".to_vec();
        let hash = rpc::message_hash(&MailboxId::from(group), Namespace::GROUP_MESSAGES, &data);
        let store = Call::Store(rpc::StoreParams {
            chunk: None,
            pubkey: group.into(),
            namespace: Namespace::GROUP_MESSAGES,
            timestamp: ts,
            ttl: 60_000,
            data: Base64Bytes(data),
            pubkey_ed25519: Some(Hex32(*stranger.ed25519_pk())),
            signature: Some(Sig64(stranger.sign(&rpc::store_signed_bytes(
                Namespace::GROUP_MESSAGES,
                ts,
                &hash,
            )))),
            credential: credential.map(Base64Bytes),
        })
        .to_json();
        let (status, _) = at_group_swarm(&net, &store).await;
        assert_eq!(status, 401, "write");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_promotes_a_member_leaves_and_a_restore_finds_the_group() {
    let net = TestNet::start(5).await.unwrap();
    let [(alice, _, _), (bob, bob_id, bob_phrase), (carol, carol_id, _)] = three(&net);
    let created = ok_lines(&alice.run(&["--json", "group", "create", "crew", "--member", "bob"]));
    let group: GroupId = created[0]["id"].as_str().unwrap().parse().unwrap();
    ok_lines(&bob.run(&["inbox"]));

    // Bob is promoted, and as an admin adds carol.
    let promoted = ok_lines(&alice.run(&["--json", "group", "promote", "crew", "bob"]));
    assert_eq!(promoted[0]["action"], "promoted", "{promoted:?}");
    let at_bob = ok_lines(&bob.run(&["--json", "inbox"]));
    assert!(
        at_bob
            .iter()
            .any(|l| l["body"] == "[makes you an admin of the group \"crew\"]"),
        "{at_bob:?}"
    );
    let info = ok_lines(&bob.run(&["--json", "group", "info", "crew"]));
    assert_eq!(info[0]["admin"], true, "{info:?}");
    // An addition makes a new key: carol reads from her joining on, not
    // what was said before it.
    ok_lines(&alice.run(&["send", "crew", "before carol"]));
    let added = ok_lines(&bob.run(&["--json", "group", "add", "crew", "carol"]));
    assert_eq!(added[0]["members"], 3, "{added:?}");
    assert_eq!(added[0]["generation"], 2, "{added:?}");
    ok_lines(&carol.run(&["inbox"]));
    let history = carol.run(&["--json", "history", "crew"]);
    assert!(said(&Client::json_lines(&history)).is_empty(), "{history:?}");
    ok_lines(&carol.run(&["send", "crew", "carol joined"]));
    assert_eq!(said(&ok_lines(&alice.run(&["--json", "inbox"]))), ["carol joined"]);
    assert_eq!(
        said(&ok_lines(&bob.run(&["--json", "inbox"]))),
        ["before carol", "carol joined"]
    );
    let info = ok_lines(&alice.run(&["--json", "group", "info", "crew"]));
    let admins: Vec<&str> = info[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["admin"] == true)
        .map(|m| m["account"].as_str().unwrap())
        .collect();
    assert!(admins.contains(&bob_id.as_str()), "{info:?}");

    // Carol leaves: her devices forget the group; an admin's next round
    // removes her and makes a new key.
    ok_lines(&carol.run(&["group", "leave", "crew"]));
    let listed = carol.run(&["--json", "group", "list"]);
    assert_eq!(listed.status.code(), Some(1), "nothing listed once she left");
    let at_alice = ok_lines(&alice.run(&["--json", "inbox"]));
    assert!(at_alice.iter().any(|l| l["left_and_removed"] == 1), "{at_alice:?}");
    let info = ok_lines(&alice.run(&["--json", "group", "info", "crew"]));
    assert_eq!(info[0]["generation"], 3, "{info:?}");
    assert!(
        !info[0]["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["account"] == carol_id.as_str()),
        "{info:?}"
    );

    // A fresh home restored from bob's phrase finds the group (kept in
    // the synced account state) and its key (in the key messages sealed
    // to his account), and reads what the group says.
    ok_lines(&alice.run(&["send", "crew", "for every device of bob"]));
    let restored = net.client("bob-restored");
    ok_lines(&restored.run_with_input(&["--json", "restore"], &bob_phrase));
    let listed = ok_lines(&restored.run(&["--json", "group", "list"]));
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], group.to_string().as_str());
    assert_eq!(listed[0]["admin"], true, "the seed came back too");
    let history = ok_lines(&restored.run(&["--json", "history", "crew"]));
    assert!(
        said(&history).contains(&"for every device of bob".to_owned()),
        "{history:?}"
    );
    ok_lines(&restored.run(&["send", "crew", "bob again"]));
    assert_eq!(said(&ok_lines(&alice.run(&["--json", "inbox"]))), ["bob again"]);

    // `watch` prints a group message as it arrives.
    let mut watcher = alice.command(&["--json", "watch", "--count", "1", "--timeout-secs", "60"]);
    let watch = tokio::task::spawn_blocking(move || watcher.output());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    ok_lines(&bob.run(&["send", "crew", "live in the group"]));
    let out = watch.await.unwrap().unwrap();
    assert_eq!(said(&ok_lines(&out)), ["live in the group"]);
}

/// An invitation from an account that is not a contact is a message
/// request: the group waits (nothing is sent or read in it) until the
/// inviter is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_invitation_waits_until_the_inviter_is_accepted() {
    let net = TestNet::start(5).await.unwrap();
    let alice = net.client("alice");
    let (alice_id, _) = alice.init();
    let dave = net.client("dave");
    let (dave_id, _) = dave.init();
    ok_lines(&alice.run(&["contacts", "add", "dave", &dave_id]));
    ok_lines(&alice.run(&["group", "create", "open door", "--member", "dave"]));

    let at_dave = ok_lines(&dave.run(&["--json", "inbox"]));
    assert!(
        at_dave
            .iter()
            .any(|l| l["request"] == true && l["body"] == "[invites you to the group \"open door\"]"),
        "{at_dave:?}"
    );
    let listed = ok_lines(&dave.run(&["--json", "group", "list"]));
    assert_eq!(listed[0]["joined"], false, "{listed:?}");
    let refused = dave.run(&["send", "open door", "too early"]);
    assert_ne!(refused.status.code(), Some(0));
    assert!(stderr(&refused).contains("accept its sender"), "{}", stderr(&refused));

    ok_lines(&dave.run(&["requests", "accept", &alice_id, "--name", "alice"]));
    let listed = ok_lines(&dave.run(&["--json", "group", "list"]));
    assert_eq!(listed[0]["joined"], true, "{listed:?}");
    ok_lines(&dave.run(&["send", "open door", "thanks"]));
    assert_eq!(said(&ok_lines(&alice.run(&["--json", "inbox"]))), ["thanks"]);

    // With --share-history, a new member gets the earlier keys too and
    // reads what the group's swarm still holds from before.
    let erin = net.client("erin");
    let (erin_id, _) = erin.init();
    ok_lines(&erin.run(&["contacts", "add", "alice", &alice_id]));
    ok_lines(&alice.run(&["contacts", "add", "erin", &erin_id]));
    ok_lines(&alice.run(&["group", "add", "open door", "erin", "--share-history"]));
    let at_erin = ok_lines(&erin.run(&["--json", "inbox"]));
    assert_eq!(said(&at_erin), ["thanks"], "{at_erin:?}");
}
