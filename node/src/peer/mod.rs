//! Everything between nodes: the calls this node makes ([`outbound`]: one
//! deadline per exchange, bounded answers), and who is calling on the way
//! in (relay MACs, signed bodies, replays) with a budget per peer.
//!
//! A request is from a peer only if it proves it: a relayed onion request
//! carries a MAC under the key the two nodes share ([`link_key`]), a push,
//! sync, digest or forwarded owner request carries the sender's Ed25519
//! signature over its body. An address proves nothing: a client that
//! shares an IP with a node is a client.

pub mod links;
pub mod outbound;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use allium_common::Identity;
use allium_common::encoding::{self, to_base64};
use allium_common::identity;
use allium_common::node_list::NodeEntry;
use allium_common::peer::{
    HOPS_HEADER, MAC_HEADER, MAX_RELAYS, NODE_HEADER, SENT_HEADER, SIGNATURE_HEADER, link_key, relay_mac,
};
use allium_common::rpc::{ErrorCode, MAX_CLOCK_SKEW_MS, check_clock};
use allium_common::sodium;
use axum::http::HeaderMap;

use crate::api_error::ApiError;
use crate::directory::Snapshot;
use crate::listener::LinkPeer;
use crate::ratelimit::RateLimiter;
pub use links::{LinkSettings, Links};
pub use outbound::{Answer, Call, CallError};

/// Most link keys kept (more than any node list holds).
const MAX_LINK_KEYS: usize = 2 * allium_common::node_list::MAX_NODES;
/// Most signatures remembered against replays.
const MAX_REMEMBERED: usize = 100_000;
/// How long a signature is remembered: past it, its `sent` time is outside
/// the clock window anyway.
const REMEMBER_FOR_MS: u64 = 2 * MAX_CLOCK_SKEW_MS + 1000;

/// Budgets per peer, in requests per second (bursts of twice that).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerBudgets {
    /// Onion requests a peer may relay to this node.
    pub relays_per_second: u32,
    /// Replication pushes a peer may send.
    pub pushes_per_second: u32,
    /// Sync, digest and forwarded owner requests a peer may send.
    pub control_per_second: u32,
}

/// What a request's peer headers prove.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relayed {
    /// The relay that sent it.
    pub from: [u8; 32],
    /// Relays it has passed, that one included.
    pub hops: u8,
}

/// The kind of request a peer budget is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// A relayed onion request.
    Relay,
    /// A replication push.
    Push,
    /// A sync, digest or forwarded owner request.
    Control,
}

/// The node's side of node-to-node traffic.
#[derive(Debug)]
pub struct Peers {
    links: Arc<Links>,
    link_keys: Mutex<HashMap<[u8; 32], [u8; 32]>>,
    relay_budget: RateLimiter<[u8; 32]>,
    push_budget: RateLimiter<[u8; 32]>,
    control_budget: RateLimiter<[u8; 32]>,
    seen: Mutex<HashMap<[u8; 64], u64>>,
    /// Requests refused because their peer's budget was spent.
    refused: AtomicU64,
}

impl Peers {
    /// Peers reached over `links`, within `budgets`.
    pub fn new(links: Links, budgets: PeerBudgets) -> Self {
        let limiter = |per_second: u32| {
            RateLimiter::new(
                f64::from(per_second),
                per_second.saturating_mul(2),
                allium_common::node_list::MAX_NODES,
            )
        };
        Self {
            links: Arc::new(links),
            link_keys: Mutex::new(HashMap::new()),
            relay_budget: limiter(budgets.relays_per_second),
            push_budget: limiter(budgets.pushes_per_second),
            control_budget: limiter(budgets.control_per_second),
            seen: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        }
    }

    /// Requests refused so far because their peer's budget was spent.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Makes a call (see [`outbound::call`]).
    pub async fn call(&self, call: Call) -> Result<Answer, CallError> {
        outbound::call(&self.links, call).await
    }

    /// The outbound links.
    pub fn links(&self) -> &Arc<Links> {
        &self.links
    }

    /// Takes one request of `kind` from `peer`'s budget; a 429 if it is
    /// spent.
    pub fn spend(&self, kind: Budget, peer: &[u8; 32]) -> Result<(), ApiError> {
        let limiter = match kind {
            Budget::Relay => &self.relay_budget,
            Budget::Push => &self.push_budget,
            Budget::Control => &self.control_budget,
        };
        if limiter.allow(peer, Instant::now()) {
            Ok(())
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Err(ApiError::new(
                ErrorCode::RateLimited,
                "this peer's budget for such requests is spent; slow down",
            ))
        }
    }

    /// The key this node shares with `peer` (cached).
    fn link(&self, me: &Identity, peer: &NodeEntry) -> Option<[u8; 32]> {
        let mut keys = self.link_keys.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(key) = keys.get(&peer.ed25519.0) {
            return Some(*key);
        }
        let key = link_key(me.x25519_sk(), me.ed25519_pk(), &peer.x25519.0, &peer.ed25519.0).ok()?;
        if keys.len() >= MAX_LINK_KEYS {
            keys.clear();
        }
        keys.insert(peer.ed25519.0, key);
        Some(key)
    }

    /// The headers that prove to `to` that this node relays `body` as its
    /// `hops`-th relay.
    pub fn relay_headers(
        &self,
        me: &Identity,
        to: &NodeEntry,
        hops: u8,
        body: &[u8],
        now_ms: u64,
    ) -> Option<Vec<(&'static str, String)>> {
        let key = self.link(me, to)?;
        let mac = relay_mac(&key, me.ed25519_pk(), &to.ed25519.0, now_ms, hops, body);
        Some(vec![
            (NODE_HEADER, hex::encode(me.ed25519_pk())),
            (HOPS_HEADER, hops.to_string()),
            (SENT_HEADER, now_ms.to_string()),
            (MAC_HEADER, to_base64(&mac)),
        ])
    }

    /// Who relayed an onion request to this node: `None` for a client
    /// (no peer headers), the relay and its hop count for a listed node
    /// whose MAC verifies; a 401 for anything else that claims to be a
    /// node.
    pub fn relayed_by(
        &self,
        me: &Identity,
        snap: Option<&Snapshot>,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: u64,
    ) -> Result<Option<Relayed>, ApiError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let Some(node) = header(NODE_HEADER) else {
            return Ok(None);
        };
        let from = encoding::hex_array::<32>(node).map_err(|_| unauthorized("malformed x-allium-node header"))?;
        let peer = snap
            .and_then(|s| s.list.find(&from))
            .ok_or_else(|| unauthorized("the relay is not in this node's node list"))?;
        let hops: u8 = header(HOPS_HEADER)
            .and_then(|h| h.parse().ok())
            .filter(|h| (1..=MAX_RELAYS).contains(h))
            .ok_or_else(|| unauthorized("missing or malformed x-allium-hops header"))?;
        let sent: u64 = header(SENT_HEADER)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| unauthorized("missing or malformed x-allium-sent header"))?;
        check_clock(sent, now_ms).map_err(ApiError::from)?;
        let mac: [u8; 32] = header(MAC_HEADER)
            .and_then(|m| encoding::from_base64(m).ok())
            .and_then(|m| m.try_into().ok())
            .ok_or_else(|| unauthorized("missing or malformed x-allium-mac header"))?;
        let key = self
            .link(me, peer)
            .ok_or_else(|| unauthorized("no link key with that node"))?;
        let expected = relay_mac(&key, &from, me.ed25519_pk(), sent, hops, body);
        if !sodium::equal_32(&mac, &expected) {
            return Err(unauthorized("the relay's MAC does not verify"));
        }
        Ok(Some(Relayed { from, hops }))
    }

    /// The peer whose Ed25519 signature (signature header) over `signed`
    /// verifies, named in the node header.
    pub fn signed_by(&self, headers: &HeaderMap, signed: &[u8]) -> Result<([u8; 32], [u8; 64]), ApiError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let sender = header(NODE_HEADER)
            .and_then(|h| encoding::hex_array::<32>(h).ok())
            .ok_or_else(|| unauthorized("missing or malformed x-allium-node header"))?;
        let signature: [u8; 64] = header(SIGNATURE_HEADER)
            .and_then(|s| encoding::from_base64(s).ok())
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| unauthorized("missing or malformed x-allium-signature header"))?;
        if identity::verify(&sender, signed, &signature) {
            Ok((sender, signature))
        } else {
            Err(unauthorized("the peer's signature does not verify"))
        }
    }

    /// Refuses a signed request seen before (its signature is remembered
    /// until its `sent` time has left the clock window), so a captured sync,
    /// digest or forwarded request cannot be played again.
    pub fn first_time(&self, signature: &[u8; 64], now_ms: u64) -> Result<(), ApiError> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, until| *until > now_ms);
            if seen.len() >= MAX_REMEMBERED {
                return Err(ApiError::new(
                    ErrorCode::RateLimited,
                    "too many peer requests to remember; try again later",
                ));
            }
        }
        match seen.get(signature) {
            Some(until) if *until > now_ms => Err(ApiError::new(ErrorCode::BadRequest, "replayed request refused")),
            _ => {
                seen.insert(*signature, now_ms.saturating_add(REMEMBER_FOR_MS));
                Ok(())
            }
        }
    }

    /// A JSON call to `peer` that `me` signs: the signature headers cover
    /// `signed(&body)` (the body behind its domain separator).
    pub fn signed_call(
        me: &Identity,
        peer: &NodeEntry,
        path: &'static str,
        signed: fn(&[u8]) -> Vec<u8>,
        body: Vec<u8>,
        deadline: Duration,
        max_answer: usize,
    ) -> Call {
        Call {
            address: peer.address.clone(),
            pin: Some(peer.ed25519.0),
            path,
            headers: Self::signed_headers(me, &signed(&body)),
            content_type: "application/json",
            body,
            deadline,
            max_answer,
        }
    }

    /// Headers that sign `body` as this node with `domain` prepended.
    pub fn signed_headers(me: &Identity, signed: &[u8]) -> Vec<(&'static str, String)> {
        vec![
            (NODE_HEADER, hex::encode(me.ed25519_pk())),
            (SIGNATURE_HEADER, to_base64(&me.sign(signed))),
        ]
    }
}

/// Checks what a connection's TLS handshake proved against a request:
/// the node a request names (`x-allium-node`, `claimed`) must be the key
/// of the caller's certificate, and on node-to-node endpoints
/// (`members_only`) that key must be in the consensus. A request that
/// names no node on an endpoint open to clients is a client's. Plain-HTTP
/// links (a debugging option) prove nothing and are let through to the
/// signature and MAC checks.
pub fn check_link(
    link: LinkPeer,
    claimed: Option<&[u8]>,
    snap: Option<&Snapshot>,
    members_only: bool,
) -> Result<(), ApiError> {
    let key = match link {
        LinkPeer::Plaintext => return Ok(()),
        LinkPeer::Anonymous if members_only || claimed.is_some() => {
            return Err(unauthorized(
                "node-to-node requests need the calling node's TLS certificate",
            ));
        }
        LinkPeer::Anonymous => return Ok(()),
        LinkPeer::Key(key) => key,
    };
    if members_only && snap.and_then(|s| s.list.find(&key)).is_none() {
        return Err(unauthorized("the caller's TLS key is not in the consensus"));
    }
    match claimed {
        Some(named) if encoding::hex_array::<32>(std::str::from_utf8(named).unwrap_or("")).ok() != Some(key) => Err(
            unauthorized("the node named in x-allium-node is not the one the TLS certificate proves"),
        ),
        _ => Ok(()),
    }
}

/// The deadline of a call that should answer at once.
pub const QUICK: Duration = Duration::from_secs(5);

fn unauthorized(why: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, why.to_owned())
}

#[cfg(test)]
mod tests {
    use allium_common::consensus::{Consensus, Schedule};
    use allium_common::encoding::Hex32;
    use axum::http::HeaderValue;

    use super::*;

    fn node(seed: u8) -> (Identity, NodeEntry) {
        let id = Identity::from_ed25519_seed(&[seed; 32]);
        let entry = NodeEntry {
            ed25519: Hex32(*id.ed25519_pk()),
            x25519: Hex32(*id.x25519_pk()),
            address: format!("127.{seed}.0.1:1"),
            swarm_id: 1,
            version: "0.1.0".into(),
            guard: false,
        };
        (id, entry)
    }

    fn peers() -> Peers {
        Peers::new(
            Links::anonymous(),
            PeerBudgets {
                relays_per_second: 1,
                pushes_per_second: 1,
                control_per_second: 1,
            },
        )
    }

    fn headers(pairs: Vec<(&'static str, String)>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(k, HeaderValue::from_str(&v).unwrap());
        }
        map
    }

    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn a_relay_mac_proves_the_sender_and_its_hop_count() {
        let ((a, a_entry), (b, b_entry), (c, c_entry)) = (node(1), node(2), node(3));
        let seed = Identity::from_ed25519_seed(&[9; 32]);
        let list = Consensus::assemble(
            &Schedule::new(60_000),
            1,
            vec![a_entry.clone(), b_entry.clone()],
            &[&seed],
        )
        .unwrap();
        let snap = Snapshot::new(list, b.ed25519_pk());
        let (at_a, at_b) = (peers(), peers());
        let body = b"onion";
        let sent = at_a.relay_headers(&a, &b_entry, 2, body, NOW).unwrap();
        let got = at_b
            .relayed_by(&b, Some(&snap), &headers(sent.clone()), body, NOW)
            .unwrap();
        assert_eq!(
            got,
            Some(Relayed {
                from: a_entry.ed25519.0,
                hops: 2
            })
        );
        // No headers: a client.
        assert_eq!(
            at_b.relayed_by(&b, Some(&snap), &HeaderMap::new(), body, NOW).unwrap(),
            None
        );
        // Another body, another hop count, too old, another receiver, an
        // unlisted sender: refused.
        assert!(
            at_b.relayed_by(&b, Some(&snap), &headers(sent.clone()), b"other", NOW)
                .is_err()
        );
        let mut more_hops = sent.clone();
        more_hops[1].1 = "1".into();
        assert!(
            at_b.relayed_by(&b, Some(&snap), &headers(more_hops), body, NOW)
                .is_err()
        );
        assert!(
            at_b.relayed_by(&b, Some(&snap), &headers(sent.clone()), body, NOW + 61_000)
                .is_err()
        );
        let c_snap = Snapshot::new(
            Consensus::assemble(
                &Schedule::new(60_000),
                1,
                vec![a_entry.clone(), c_entry.clone()],
                &[&seed],
            )
            .unwrap(),
            c.ed25519_pk(),
        );
        assert!(
            peers()
                .relayed_by(&c, Some(&c_snap), &headers(sent), body, NOW)
                .is_err()
        );
        let from_c = peers().relay_headers(&c, &b_entry, 1, body, NOW).unwrap();
        let e = at_b
            .relayed_by(&b, Some(&snap), &headers(from_c), body, NOW)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthorized);
        // Past the cap.
        let too_far = at_a.relay_headers(&a, &b_entry, MAX_RELAYS + 1, body, NOW).unwrap();
        assert!(at_b.relayed_by(&b, Some(&snap), &headers(too_far), body, NOW).is_err());
    }

    proptest::proptest! {
        /// Relay headers from anyone: any value in any of the four headers
        /// (printable, as HTTP allows) never panics, and only the exact
        /// headers the relay made are taken.
        #[test]
        fn relay_headers_are_taken_only_exactly_as_made(
            replace in proptest::collection::vec(proptest::option::of("[ -~]{0,80}"), 4)
        ) {
            let ((a, a_entry), (b, b_entry)) = (node(1), node(2));
            let seed = Identity::from_ed25519_seed(&[9; 32]);
            let snap = Snapshot::new(Consensus::assemble(&Schedule::new(60_000), 1, vec![a_entry, b_entry.clone()], &[&seed]).unwrap(), b.ed25519_pk());
            let body = b"onion";
            let made = peers().relay_headers(&a, &b_entry, 2, body, NOW).unwrap();
            let mut sent = made.clone();
            for (slot, value) in sent.iter_mut().zip(&replace) {
                if let Some(value) = value {
                    slot.1 = value.trim().to_owned();
                }
            }
            let got = peers().relayed_by(&b, Some(&snap), &headers(sent.clone()), body, NOW);
            // The same node and MAC, and the same numbers ("+2" is 2).
            let same = sent[0] == made[0]
                && sent[3] == made[3]
                && sent[1].1.parse::<u8>().ok() == Some(2)
                && sent[2].1.parse::<u64>().ok() == Some(NOW);
            if same {
                proptest::prop_assert!(matches!(got, Ok(Some(_))));
            } else {
                proptest::prop_assert!(got.is_err(), "{sent:?} was taken");
            }
        }
    }

    #[test]
    fn a_signed_request_is_taken_once() {
        let p = peers();
        let sig = [7u8; 64];
        assert!(p.first_time(&sig, NOW).is_ok());
        assert!(p.first_time(&sig, NOW + 1000).is_err(), "replay");
        assert!(p.first_time(&[8u8; 64], NOW).is_ok());
        assert!(
            p.first_time(&sig, NOW + REMEMBER_FOR_MS + 1).is_ok(),
            "forgotten once stale"
        );
    }

    #[test]
    fn budgets_are_per_peer_and_per_kind() {
        let p = peers();
        for _ in 0..2 {
            p.spend(Budget::Relay, &[1; 32]).unwrap();
        }
        assert!(p.spend(Budget::Relay, &[1; 32]).is_err());
        assert!(p.spend(Budget::Relay, &[2; 32]).is_ok());
        assert!(p.spend(Budget::Push, &[1; 32]).is_ok());
    }

    #[test]
    fn the_link_must_prove_a_member_and_the_node_a_request_names() {
        let ((a, a_entry), (b, b_entry), (stranger, _)) = (node(1), node(2), node(3));
        let seed = Identity::from_ed25519_seed(&[9; 32]);
        let list = Consensus::assemble(&Schedule::new(60_000), 1, vec![a_entry, b_entry], &[&seed]).unwrap();
        let snap = Snapshot::new(list, b.ed25519_pk());
        let check = |link, claimed: Option<&Identity>, members_only| {
            let named = claimed.map(|id| hex::encode(id.ed25519_pk()));
            check_link(link, named.as_deref().map(str::as_bytes), Some(&snap), members_only).is_ok()
        };
        let key = |id: &Identity| LinkPeer::Key(*id.ed25519_pk());
        // Node-to-node endpoints: a member, as itself.
        assert!(check(key(&a), Some(&a), true));
        assert!(!check(key(&a), Some(&b), true), "another member's request");
        assert!(!check(key(&stranger), Some(&stranger), true), "not in the consensus");
        assert!(!check(LinkPeer::Anonymous, Some(&a), true), "no certificate");
        assert!(!check(LinkPeer::Anonymous, None, true));
        // Onion requests: clients (no name) pass; a relay must be who it says.
        assert!(check(LinkPeer::Anonymous, None, false));
        assert!(check(key(&stranger), None, false));
        assert!(!check(LinkPeer::Anonymous, Some(&a), false));
        assert!(!check(key(&b), Some(&a), false));
        assert!(check(key(&a), Some(&a), false));
        // Plain HTTP proves nothing and is left to the signatures.
        assert!(check(LinkPeer::Plaintext, Some(&stranger), true));
    }
}
