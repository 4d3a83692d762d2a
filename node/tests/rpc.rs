//! Storage RPC conformance against a real local network (seed + 12 node
//! processes, two swarms): every method, every error code.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use allium_common::encoding::{Hex32, Sig64};
use allium_common::rpc::{self, Call, DeleteAllParams, DeleteParams, ExpireParams, MAX_DATA_LEN, Namespace};
use serde_json::json;
use support::*;

const DAY: u64 = 24 * 3600 * 1000;

/// Polls `check` until it holds or 10 s pass.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_rpc_conformance() {
    let net = Net::start_with(12, "[timing]\nexpiry_sweep_ms = 300\n").await;
    let bob = identity(0xb0);
    let members = net.swarm_of(&bob.account_id()).await;
    assert!(
        members.len() >= 5,
        "a swarm has at least 5 members, got {}",
        members.len()
    );
    let a = members[0].address.clone();

    // store: 200, the hash of the spec, confirmed by every swarm member.
    let (status, body) = net.rpc(&a, &store(&bob.account_id(), b"hello", DAY)).await;
    assert_eq!(status, 200, "{body}");
    let hash = body["hash"].as_str().unwrap().to_owned();
    assert_eq!(
        hash,
        rpc::message_hash(&bob.account_id().into(), Namespace::DEFAULT, b"hello")
    );
    let confirmed = body["swarm"].as_object().unwrap();
    assert_eq!(confirmed.len(), members.len(), "every member confirms: {body}");
    for m in &members {
        let c = &confirmed[&hex::encode(m.ed25519.0)];
        let sig: Sig64 = serde_json::from_value(c["signature"].clone()).unwrap();
        assert!(
            allium_common::identity::verify(&m.ed25519.0, hash.as_bytes(), &sig.0),
            "confirmation signature"
        );
    }

    // Duplicate store: same hash, stored once; every member has it.
    let (status, again) = net
        .rpc(&members[1].address, &store(&bob.account_id(), b"hello", DAY))
        .await;
    assert_eq!((status, again["hash"].as_str()), (200, Some(hash.as_str())), "{again}");
    for m in &members {
        let (status, got) = net.rpc(&m.address, &retrieve(&bob, None, None)).await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(
            hashes(&got),
            vec![hash.clone()],
            "member {} holds the message once",
            m.address
        );
        assert_eq!(got["messages"][0]["data"], "aGVsbG8=");
    }
    // last_hash: nothing after the only message.
    let (_, after) = net.rpc(&a, &retrieve(&bob, Some(&hash), None)).await;
    assert_eq!(hashes(&after), Vec::<String>::new());
    assert_eq!(after["more"], false);

    // 401: signature by someone else, and a key that is not the account's.
    let mallory = identity(0x66);
    let mut forged = retrieve(&mallory, None, None);
    forged["params"]["pubkey"] = json!(bob.account_id().to_string());
    let (status, e) = net.rpc(&a, &forged).await;
    let forged = forged.clone();
    assert_eq!((status, e["error"].as_str()), (401, Some("unauthorized")), "{e}");
    let mut bad_sig = retrieve(&bob, None, None);
    bad_sig["params"]["signature"] = json!(allium_common::encoding::to_base64(&[7u8; 64]));
    assert_eq!(net.rpc(&a, &bad_sig).await.0, 401);

    // 406: clock skew, saying by how much.
    let (status, e) = net.rpc(&a, &retrieve_at(&bob, None, None, now_ms() - 120_000)).await;
    assert_eq!(status, 406, "{e}");
    assert!(e["message"].as_str().unwrap().contains("behind"), "{e}");
    assert!(e["details"]["skew_ms"].as_i64().unwrap() <= -119_000);

    // 413: data over the limit; 400: TTL out of range, unknown method, junk.
    let (status, e) = net
        .rpc(&a, &store(&bob.account_id(), &vec![0; MAX_DATA_LEN + 1], DAY))
        .await;
    assert_eq!((status, e["error"].as_str()), (413, Some("too_large")), "{e}");
    assert_eq!(net.rpc(&a, &store(&bob.account_id(), b"x", 15 * DAY)).await.0, 400);
    assert_eq!(net.rpc(&a, &store(&bob.account_id(), b"x", 9_999)).await.0, 400);
    assert_eq!(net.rpc(&a, &json!({"method": "steal", "params": {}})).await.0, 400);
    let junk = net
        .http
        .post(format!("https://{a}/storage_rpc/v1"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status().as_u16(), 400);
    let huge = net
        .http
        .post(format!("https://{a}/storage_rpc/v1"))
        .body(vec![b' '; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(
        huge.status().as_u16(),
        413,
        "bodies over the limit are refused before parsing"
    );

    // 421: a node of the other swarm names the right one.
    let outsider = net.outside_swarm_of(&bob.account_id()).await.expect("two swarms");
    let (status, e) = net.rpc(&outsider.address, &store(&bob.account_id(), b"x", DAY)).await;
    assert_eq!((status, e["error"].as_str()), (421, Some("wrong_swarm")), "{e}");
    let named: Vec<&str> = e["details"]["snodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["address"].as_str().unwrap())
        .collect();
    assert!(named.contains(&a.as_str()), "421 names the right swarm: {e}");

    // get_swarm, info, node_list.
    let (status, swarm) = net
        .rpc(
            &outsider.address,
            &json!({"method": "get_swarm", "params": {"pubkey": bob.account_id().to_string()}}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(swarm["snodes"].as_array().unwrap().len(), members.len());
    let (status, info) = net.rpc(&a, &json!({"method": "info"})).await;
    assert_eq!(status, 200);
    assert_eq!(info["ed25519"], hex::encode(members[0].ed25519.0));
    let list = net.node_list().await;
    let seeds = allium_common::seeds::parse(&std::fs::read_to_string(&net.net.seed_file).unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    allium_common::consensus::UnverifiedConsensus::from(list.clone())
        .verify(&[seeds[0].ed25519], now)
        .unwrap();
    let (_, from_node) = net.rpc(&a, &json!({"method": "node_list"})).await;
    assert_eq!(
        from_node["nodes"],
        json!(list.nodes),
        "nodes serve the consensus they follow"
    );
    assert!(from_node["period"].as_u64().unwrap() >= list.period);

    // batch runs everything; sequence stops at the first failure.
    let batch = json!({"method": "batch", "params": {"requests": [{"method": "info"}, forged, {"method": "info"}]}});
    let (status, r) = net.rpc(&a, &batch).await;
    assert_eq!(status, 200);
    let codes: Vec<u64> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, vec![200, 401, 200]);
    let unparsable = json!({"method": "batch", "params": {"requests": [{"method": "info"}, {"method": "nope"}]}});
    assert_eq!(
        net.rpc(&a, &unparsable).await.0,
        400,
        "a batch that does not parse is refused whole"
    );
    let mut sequence = batch.clone();
    sequence["method"] = json!("sequence");
    let (_, r) = net.rpc(&a, &sequence).await;
    assert_eq!(r["results"].as_array().unwrap().len(), 2, "{r}");

    // delete: on every member, passed on by the node that took it.
    let (_, s2) = net.rpc(&a, &store(&bob.account_id(), b"second", DAY)).await;
    let h2 = s2["hash"].as_str().unwrap().to_owned();
    let ts = now_ms();
    let delete = Call::Delete(DeleteParams {
        pubkey: bob.account_id().into(),
        pubkey_ed25519: Hex32(*bob.ed25519_pk()),
        messages: vec![h2.clone()],
        timestamp: ts,
        signature: Sig64(bob.sign(&rpc::delete_signed_bytes(ts, std::slice::from_ref(&h2)))),
        credential: None,
    });
    let (status, d) = net.rpc(&a, &delete.to_json()).await;
    assert_eq!((status, d["deleted"].clone()), (200, json!([h2])), "{d}");
    for m in &members {
        let addr = m.address.clone();
        eventually("the delete reaches every member", || {
            let (net, bob, addr, h2) = (&net, &bob, addr.clone(), h2.clone());
            async move { !hashes(&net.rpc(&addr, &retrieve(bob, None, None)).await.1).contains(&h2) }
        })
        .await;
    }

    // expire: shorten to 1 s; the message stops being served and is swept.
    let ts = now_ms();
    let expiry = ts + 1000;
    let expire = Call::Expire(ExpireParams {
        pubkey: bob.account_id().into(),
        pubkey_ed25519: Hex32(*bob.ed25519_pk()),
        messages: vec![hash.clone()],
        expiry,
        timestamp: ts,
        signature: Sig64(bob.sign(&rpc::expire_signed_bytes(ts, expiry, std::slice::from_ref(&hash)))),
    });
    let (status, x) = net.rpc(&a, &expire.to_json()).await;
    assert_eq!((status, x["updated"].clone()), (200, json!([hash])), "{x}");
    eventually("the expired message is swept from the database", || async {
        hashes(&net.rpc(&a, &retrieve(&bob, None, None)).await.1).is_empty() && messages_gauge(&net, &a).await == 0
    })
    .await;

    // delete_all empties the namespace.
    net.rpc(&a, &store(&bob.account_id(), b"third", DAY)).await;
    let ts = now_ms();
    let delete_all = Call::DeleteAll(DeleteAllParams {
        chunk: None,
        pubkey: bob.account_id().into(),
        pubkey_ed25519: Hex32(*bob.ed25519_pk()),
        namespace: Namespace::DEFAULT,
        timestamp: ts,
        signature: Sig64(bob.sign(&rpc::delete_all_signed_bytes(Namespace::DEFAULT, ts))),
    });
    let (status, d) = net.rpc(&a, &delete_all.to_json()).await;
    assert_eq!(status, 200);
    assert_eq!(d["deleted"].as_array().unwrap().len(), 1, "{d}");
}

/// The node's `allium_messages` gauge (rows in its database).
async fn messages_gauge(net: &Net, address: &str) -> u64 {
    net.metric(address, "allium_messages").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_returns_when_a_message_arrives_on_any_member() {
    let net = Net::start(5).await;
    let carol = identity(0xc0);
    let members = net.swarm_of(&carol.account_id()).await;
    for (waiting_on, stored_on) in [(0, 0), (0, 1)] {
        let waiter = members[waiting_on].address.clone();
        let http = net.http.clone();
        let request = retrieve(&carol, Some(""), Some(20_000));
        let started = Instant::now();
        let poll = tokio::spawn(async move { (post_json(&http, &waiter, &request).await, started.elapsed()) });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let data = format!("wake {waiting_on} {stored_on}");
        let (status, stored) = net
            .rpc(
                &members[stored_on].address,
                &store(&carol.account_id(), data.as_bytes(), DAY),
            )
            .await;
        assert_eq!(status, 200, "{stored}");
        let ((status, got), elapsed) = poll.await.unwrap();
        assert_eq!(status, 200, "{got}");
        assert!(
            hashes(&got).contains(&stored["hash"].as_str().unwrap().to_owned()),
            "{got}"
        );
        // Woken by the store, not by the 20 s timeout.
        assert!(elapsed < Duration::from_secs(10), "long-poll took {elapsed:?}");
        // Clear the mailbox for the next round.
        let ts = now_ms();
        let clear = Call::DeleteAll(DeleteAllParams {
            chunk: None,
            pubkey: carol.account_id().into(),
            pubkey_ed25519: Hex32(*carol.ed25519_pk()),
            namespace: Namespace::DEFAULT,
            timestamp: ts,
            signature: Sig64(carol.sign(&rpc::delete_all_signed_bytes(Namespace::DEFAULT, ts))),
        });
        net.rpc(&members[0].address, &clear.to_json()).await;
        eventually("the mailbox is empty everywhere", || async {
            let mut empty = true;
            for m in &members {
                empty &= hashes(&net.rpc(&m.address, &retrieve(&carol, None, None)).await.1).is_empty();
            }
            empty
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_over_their_rate_get_429() {
    // One node, so its own polling stays within the seed's tiny budget.
    let net = Net::start_with(1, "[limits]\nrequests_per_second_per_ip = 5\nburst_per_ip = 5\n").await;
    // The seed counts requests per client IP; 127.0.0.1 is also the node's
    // IP here, and listed nodes are exempt, so ask the seed about an
    // address it cannot exempt: use the IPv4 loopback alias 127.0.0.2.
    let client = allium_node::peer::links::unpinned_client(
        allium_node::peer::LinkSettings {
            local_address: Some(std::net::IpAddr::from([127, 0, 0, 2])),
            ..Default::default()
        },
        None,
    );
    let mut refused = 0;
    for _ in 0..12 {
        let (status, body) = post_json(&client, &net.net.seed().address, &json!({"method": "info"})).await;
        if status == 429 {
            assert_eq!(body["error"], "rate_limited");
            refused += 1;
        }
    }
    assert!(refused >= 6, "a burst of 5, then refusals; got {refused} refusals");
}

/// The published-keys namespace (−21): anyone reads it with
/// `retrieve_public`, unsigned; only the owner's signed store writes it;
/// no other namespace is read that way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_public_keys_namespace_is_read_by_anyone_and_written_by_the_owner_only() {
    use allium_common::encoding::Base64Bytes;
    use allium_common::rpc::{RetrievePublicParams, StoreParams};
    let net = Net::start(5).await;
    let bob = identity(0xb0);
    let node = net.swarm_of(&bob.account_id()).await[0].address.clone();
    let ns = Namespace::PUBLIC_KEYS;
    let data = b"a key bundle".to_vec();
    let hash = rpc::message_hash(&bob.account_id().into(), ns, &data);
    let ts = now_ms();
    let mut params = StoreParams {
        chunk: None,
        pubkey: bob.account_id().into(),
        namespace: ns,
        timestamp: ts,
        ttl: DAY,
        data: Base64Bytes(data),
        pubkey_ed25519: None,
        signature: None,
        credential: None,
    };
    let (status, body) = net.rpc(&node, &Call::Store(params.clone()).to_json()).await;
    assert_eq!(status, 401, "nobody but the owner writes it: {body}");
    params.pubkey_ed25519 = Some(Hex32(*bob.ed25519_pk()));
    params.signature = Some(Sig64(bob.sign(&rpc::store_signed_bytes(ns, ts, &hash))));
    let (status, body) = net.rpc(&node, &Call::Store(params).to_json()).await;
    assert_eq!(status, 200, "{body}");

    let public = |namespace| {
        Call::RetrievePublic(RetrievePublicParams {
            pubkey: bob.account_id().into(),
            namespace,
            last_hash: None,
            max_count: None,
            max_size: None,
        })
        .to_json()
    };
    let (status, got) = net.rpc(&node, &public(ns)).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(hashes(&got), vec![hash], "read without a signature");
    for private in [Namespace::DEFAULT, Namespace(2), Namespace(3)] {
        let (status, body) = net.rpc(&node, &public(private)).await;
        assert_eq!(status, 400, "namespace {} stays private: {body}", private.0);
    }
}
