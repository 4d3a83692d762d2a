//! Attack loops for the hostile-load benchmark (`allium-bench hostile`):
//! each runs until its deadline at a bounded rate, from its own loopback
//! address, against the network the benchmark started, and counts what the
//! network answered. They are the attacks of the adversarial tests, played
//! continuously.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use allium_common::Identity;
use allium_common::consensus::Consensus;
use allium_node::peer::{LinkSettings, Links};
use tokio::io::AsyncWriteExt as _;

use crate::hostile::{connect_from, now_ms, onion, post_from, retrieve_request, send_post_headers, store_request};

/// What one attack got back: answers by status (0: no answer or a
/// connection the node closed; for the slowloris, 1: a connection held
/// open; for a push, 299: answered 200 with nothing taken).
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Requests made.
    pub sent: u64,
    /// Answers by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
}

/// Tallies of all attacks, by name.
#[derive(Debug, Default, Clone)]
pub struct Tallies(Arc<Mutex<BTreeMap<&'static str, Tally>>>);

impl Tallies {
    fn count(&self, attack: &'static str, status: u16) {
        let mut all = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let tally = all.entry(attack).or_default();
        tally.sent += 1;
        *tally.statuses.entry(status).or_default() += 1;
    }

    /// A copy of the tallies.
    pub fn snapshot(&self) -> BTreeMap<&'static str, Tally> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Runs `step` every `every` until `until`.
async fn every<F, Fut>(every: Duration, until: Instant, mut step: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < until {
        tick.tick().await;
        step().await;
    }
}

/// Slowloris: keeps up to `per_node` connections to every node open from
/// 127.0.0.5, each sending request headers and then a byte of body a
/// second, reconnecting those the node closes.
pub async fn slowloris(list: Consensus, per_node: usize, until: Instant, tallies: Tallies) {
    let mut held: Vec<(String, crate::hostile::Conn)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while Instant::now() < until {
        tick.tick().await;
        let mut alive = Vec::new();
        for (node, mut stream) in held.drain(..) {
            if stream.write_all(b" ").await.is_ok() {
                alive.push((node, stream));
            } else {
                tallies.count("slowloris", 0);
            }
        }
        held = alive;
        for node in &list.nodes {
            let open = held.iter().filter(|(n, _)| *n == node.address).count();
            for _ in open..per_node {
                let Ok(mut stream) = connect_from("127.0.0.5", &node.address).await else {
                    tallies.count("slowloris", 0);
                    continue;
                };
                if send_post_headers(&mut stream, &node.address, "/storage_rpc/v1", 100_000)
                    .await
                    .is_ok()
                {
                    tallies.count("slowloris", 1);
                    held.push((node.address.clone(), stream));
                }
            }
        }
    }
}

/// Relay loops: onions naming two nodes in turn 30 times, `per_second`
/// from 127.0.0.6.
pub async fn relay_loops(list: Consensus, per_second: u32, until: Instant, tallies: Tallies) {
    let info = serde_json::json!({"method": "info"});
    let mut i = 0usize;
    every(Duration::from_secs(1) / per_second.max(1), until, || {
        i += 1;
        let n = list.nodes.len();
        let (a, b) = (&list.nodes[i % n], &list.nodes[(i + 1) % n]);
        let mut path = Vec::new();
        for _ in 0..30 {
            path.extend([a, b]);
        }
        path.push(&list.nodes[(i + 2) % n]);
        let body = onion(&path, &info).body;
        let (target, tallies) = (a.address.clone(), tallies.clone());
        async move {
            let status = post_from("127.0.0.6", &target, "/onion_req/v2", body)
                .await
                .map_or(0, |(s, _)| s);
            tallies.count("relay_loop", status);
        }
    })
    .await;
}

/// Big pages: an attacker fills its own mailbox with 76 KB messages, then
/// asks for it in batches of 20 retrieves, `per_second`, from 127.0.0.7.
pub async fn big_pages(list: Consensus, per_second: u32, until: Instant, tallies: Tallies) {
    let me = Identity::from_ed25519_seed(&[0xa7; 32]);
    let Some(swarm) = list.swarm_ring().swarm_of(&me.account_id()) else {
        return;
    };
    let Some(node) = list.swarm_members(swarm).next().map(|n| n.address.clone()) else {
        return;
    };
    for i in 0..40u8 {
        let store = store_request(&me.account_id(), &vec![i; 76_000]);
        let status = post_from("127.0.0.7", &node, "/storage_rpc/v1", store.to_string().into_bytes())
            .await
            .map_or(0, |(s, _)| s);
        tallies.count("big_pages_fill", status);
    }
    every(Duration::from_secs(1) / per_second.max(1), until, || {
        let requests: Vec<serde_json::Value> = (0..20).map(|_| retrieve_request(&me)).collect();
        let batch = serde_json::json!({"method": "batch", "params": {"requests": requests}});
        let (node, tallies) = (node.clone(), tallies.clone());
        async move {
            let status = post_from("127.0.0.7", &node, "/storage_rpc/v1", batch.to_string().into_bytes())
                .await
                .map_or(0, |(s, _)| s);
            tallies.count("big_pages", status);
        }
    })
    .await;
}

/// Inbox flood: 76 KB messages into `victim`'s inbox, `per_second`, from
/// 127.0.0.8, on a random member of its swarm each time.
pub async fn inbox_flood(
    list: Consensus,
    victim: allium_common::AccountId,
    per_second: u32,
    until: Instant,
    tallies: Tallies,
) {
    let Some(swarm) = list.swarm_ring().swarm_of(&victim) else {
        return;
    };
    let members: Vec<String> = list.swarm_members(swarm).map(|n| n.address.clone()).collect();
    let mut i = 0u32;
    every(Duration::from_secs(1) / per_second.max(1), until, || {
        i += 1;
        let data: Vec<u8> = (0..76_000u32).map(|j| (j ^ i) as u8).collect();
        let store = store_request(&victim, &data);
        let node = members[i as usize % members.len()].clone();
        let tallies = tallies.clone();
        async move {
            let status = post_from("127.0.0.8", &node, "/storage_rpc/v1", store.to_string().into_bytes())
                .await
                .map_or(0, |(s, _)| s);
            tallies.count("inbox_flood", status);
        }
    })
    .await;
}

/// Junk announces to the seed: fresh keys, closed ports, `per_second`,
/// spread over 20 source addresses (127.99.N.1).
pub async fn junk_announces(seed: String, per_second: u32, until: Instant, tallies: Tallies) {
    let mut i = 0u32;
    every(Duration::from_secs(1) / per_second.max(1), until, || {
        i += 1;
        let junk = Identity::from_ed25519_seed(&allium_common::sodium::random_array());
        let record =
            allium_common::announce::Announce::sign(&junk, &format!("127.98.{}.1:9", i % 200), "0.1.0", now_ms());
        let from = format!("127.99.{}.1", i % 20);
        let (seed, tallies) = (seed.clone(), tallies.clone());
        async move {
            let body = serde_json::to_vec(&record).unwrap_or_default();
            let status = post_from(&from, &seed, "/seed/v1/announce", body)
                .await
                .map_or(0, |(s, _)| s);
            tallies.count("junk_announce", status);
        }
    })
    .await;
}

/// A taken-over node (its key, read from its data directory) replays one
/// signed sync to a swarm peer and pushes into mailboxes outside its swarm,
/// `per_second` each.
pub async fn rogue_node(list: Consensus, rogue: Identity, per_second: u32, until: Instant, tallies: Tallies) {
    let Some(me) = list.find(rogue.ed25519_pk()).cloned() else {
        return;
    };
    let peer = list
        .swarm_members(me.swarm_id)
        .find(|n| n.ed25519 != me.ed25519)
        .cloned();
    let outsider = list.nodes.iter().find(|n| n.swarm_id != me.swarm_id).cloned();
    let sign = |domain: &[u8], body: &[u8]| {
        (
            hex::encode(rogue.ed25519_pk()),
            allium_common::encoding::to_base64(&rogue.sign(&allium_common::peer::signed_bytes(domain, body))),
        )
    };
    let sync = peer.as_ref().map(|p| {
        let body = serde_json::json!({"to": hex::encode(p.ed25519.0), "sent": now_ms()}).to_string();
        let (node, signature) = sign(allium_common::peer::SYNC_DOMAIN, body.as_bytes());
        (p.address.clone(), p.ed25519.0, body, node, signature)
    });
    // The rogue calls as the member it is: over TLS with its own certificate.
    let Ok(cert) = allium_common::tls::LinkCert::new(&rogue) else {
        return;
    };
    let links = Arc::new(Links::tls(LinkSettings::default(), cert));
    every(Duration::from_secs(1) / per_second.max(1), until, || {
        let links = Arc::clone(&links);
        let sync = sync.clone();
        let push = outsider.as_ref().map(|o| {
            // A mailbox of the outsider's swarm, which the rogue does not hold.
            let victim = (0u16..)
                .map(|n| {
                    let mut key = [0u8; 32];
                    key[..2].copy_from_slice(&n.to_le_bytes());
                    allium_common::AccountId::from_x25519(key)
                })
                .find(|a| list.swarm_ring().swarm_of(a) == Some(o.swarm_id));
            let now = now_ms();
            let body = serde_json::json!({
                "to": hex::encode(o.ed25519.0), "sent": now,
                "messages": [{"pubkey": victim.map(|v| v.to_string()), "timestamp": now,
                              "expiry": now + 3_600_000, "data": "cGxhbnRlZA=="}],
            })
            .to_string();
            let (node, signature) = sign(allium_common::peer::PUSH_DOMAIN, body.as_bytes());
            (o.address.clone(), o.ed25519.0, body, node, signature)
        });
        let tallies = tallies.clone();
        async move {
            for (name, path, call) in [
                ("replayed_sync", "/swarm/v1/sync", sync),
                ("foreign_push", "/swarm/v1/push", push),
            ] {
                let Some((address, pin, body, node, signature)) = call else {
                    continue;
                };
                let Ok(request) = links.post(Some(&pin), &address, path) else {
                    continue;
                };
                let answer = request
                    .header("x-allium-node", node)
                    .header("x-allium-signature", signature)
                    .header("content-type", "application/json")
                    .body(body)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let status = match answer {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        // A push is answered 200 with what was taken:
                        // count a push nothing of which was taken apart.
                        let value: serde_json::Value = r.json().await.unwrap_or_default();
                        let taken = value["confirmations"].as_array().is_some_and(|c| !c.is_empty());
                        if path == "/swarm/v1/push" && status == 200 && !taken {
                            299
                        } else {
                            status
                        }
                    }
                    Err(_) => 0,
                };
                tallies.count(name, status);
            }
        }
    })
    .await;
}
