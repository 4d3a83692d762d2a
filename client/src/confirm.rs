//! When a store counts as done: signed confirmations from the swarm.
//!
//! A node's `store` answer carries `swarm: {<node Ed25519 hex>: {hash,
//! signature}}`: the node that took the message and the members it
//! replicated to in time, each signing the message hash
//! (docs/protocol.md §5.5). One node's word is not enough: a hostile or
//! broken node can answer 200 and keep nothing, or list confirmations it
//! made up. So the client counts a confirmation only if its key is a member
//! of the recipient's swarm in the client's own signed node list, its hash
//! is the hash the client computes itself, and its signature verifies; and
//! a message leaves the outbox only with [`REQUIRED`] such confirmations
//! from distinct members (every member of a smaller swarm).

use std::collections::BTreeSet;

use allium_common::encoding::{from_base64, hex_array};
use allium_common::identity::verify;
use allium_common::node_list::NodeEntry;
use serde_json::Value;

/// Distinct swarm members that must confirm a store.
pub const REQUIRED: usize = 2;
/// Statuses with which a node refuses a store for good: the request itself
/// is wrong (400), unauthorised (401) or too large (413), and sending it
/// again cannot change that.
pub const PERMANENT: [u16; 3] = [400, 401, 413];

/// Confirmations needed from a swarm of `members` nodes.
pub fn required(members: usize) -> usize {
    REQUIRED.min(members).max(1)
}

/// The members (Ed25519 keys) whose confirmation in `answer` (a `store`
/// result) is valid: listed among `members`, over `expected_hash`, and
/// signed by that member. Entries that fail any check are ignored; only
/// members' signatures are checked, so a long list of strangers costs
/// nothing.
pub fn confirmed_by(answer: &Value, members: &[NodeEntry], expected_hash: &str) -> BTreeSet<[u8; 32]> {
    let Some(swarm) = answer["swarm"].as_object() else {
        return BTreeSet::new();
    };
    swarm
        .iter()
        .filter_map(|(key, confirmation)| {
            let key = hex_array::<32>(key).ok()?;
            members.iter().find(|m| m.ed25519.0 == key)?;
            if confirmation["hash"].as_str()? != expected_hash {
                return None;
            }
            let signature: [u8; 64] = from_base64(confirmation["signature"].as_str()?).ok()?.try_into().ok()?;
            verify(&key, expected_hash.as_bytes(), &signature).then_some(key)
        })
        .collect()
}

/// What the answers to one delivery add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Enough members confirmed.
    Stored,
    /// Enough members refused for good (why).
    Refused(String),
    /// Not decided: why not yet.
    Open(String),
}

/// The answers to one delivery, member by member: confirmations add up
/// across members, and so do permanent refusals. A refusal is final only
/// when as many distinct members said so as would have had to confirm, so
/// one hostile member can no more make the client drop a message than
/// make it believe one delivered.
#[derive(Debug, Clone)]
pub struct Tally {
    hash: String,
    confirmed: BTreeSet<[u8; 32]>,
    refused: BTreeSet<[u8; 32]>,
}

impl Tally {
    /// A tally for the message whose hash (computed by the client) is
    /// `hash`.
    pub fn new(hash: &str) -> Self {
        Self {
            hash: hash.to_owned(),
            confirmed: BTreeSet::new(),
            refused: BTreeSet::new(),
        }
    }

    /// Adds member `node`'s answer (`status`, `body`), judged against the
    /// recipient's swarm `members` in the client's node list.
    pub fn add(&mut self, node: &[u8; 32], status: u16, body: &Value, members: &[NodeEntry]) -> Verdict {
        let needed = required(members.len());
        let message: String = body["message"].as_str().unwrap_or("").chars().take(200).collect();
        if status == 200 {
            self.confirmed.extend(confirmed_by(body, members, &self.hash));
            if self.confirmed.len() >= needed {
                return Verdict::Stored;
            }
            return Verdict::Open(format!(
                "only {} of the {needed} swarm confirmations needed",
                self.confirmed.len()
            ));
        }
        let why = format!("refused with {status}: {message}");
        if PERMANENT.contains(&status) && members.iter().any(|m| &m.ed25519.0 == node) {
            self.refused.insert(*node);
            if self.refused.len() >= needed {
                return Verdict::Refused(why);
            }
        }
        Verdict::Open(why)
    }
}

#[cfg(test)]
mod tests {
    use allium_common::Identity;
    use allium_common::encoding::{Hex32, to_base64};
    use serde_json::json;

    use super::*;

    fn node(n: u8) -> (Identity, NodeEntry) {
        let id = Identity::from_ed25519_seed(&[n; 32]);
        let entry = NodeEntry {
            ed25519: Hex32(*id.ed25519_pk()),
            x25519: Hex32(*id.x25519_pk()),
            address: format!("10.{n}.0.1:1"),
            swarm_id: 7,
            version: "0.1.0".into(),
            guard: true,
        };
        (id, entry)
    }

    fn confirmation(by: &Identity, hash: &str) -> Value {
        json!({"hash": hash, "signature": to_base64(&by.sign(hash.as_bytes()))})
    }

    const HASH: &str = "mrat65oqfhCGFAJqSVtzRYevJ/I+G1CZOa2TnX5CC+Y";

    #[test]
    fn members_signing_the_right_hash_count_once_each() {
        let (a, a_entry) = node(1);
        let (b, b_entry) = node(2);
        let members = vec![a_entry.clone(), b_entry.clone()];
        let answer = json!({"hash": HASH, "swarm": {
            hex::encode(a.ed25519_pk()): confirmation(&a, HASH),
            hex::encode(b.ed25519_pk()): confirmation(&b, HASH),
        }});
        let got = confirmed_by(&answer, &members, HASH);
        assert_eq!(got, [a_entry.ed25519.0, b_entry.ed25519.0].into());
        assert!(got.len() >= required(members.len()));
    }

    #[test]
    fn forged_foreign_and_mismatched_confirmations_are_ignored() {
        let (a, a_entry) = node(1);
        let (b, b_entry) = node(2);
        let (stranger, _) = node(3);
        let members = vec![a_entry.clone(), b_entry];
        let other_hash = "XVNUpBFM0gOlFNgZtSP39mVbWASVbebdX3EzIjSaM7k";
        let cases = [
            // A's own confirmation plus B's, signed by A (a forgery).
            (hex::encode(b.ed25519_pk()), confirmation(&a, HASH)),
            // A node outside the swarm, validly signed.
            (hex::encode(stranger.ed25519_pk()), confirmation(&stranger, HASH)),
            // B confirming another message.
            (hex::encode(b.ed25519_pk()), confirmation(&b, other_hash)),
            // B's signature of another hash, claimed for ours.
            (
                hex::encode(b.ed25519_pk()),
                json!({"hash": HASH, "signature": confirmation(&b, other_hash)["signature"]}),
            ),
            // Garbage.
            (hex::encode(b.ed25519_pk()), json!({"hash": HASH, "signature": "AAAA"})),
            (hex::encode(b.ed25519_pk()), json!({"hash": HASH})),
            (hex::encode(b.ed25519_pk()), json!("yes")),
            ("not hex".to_owned(), confirmation(&b, HASH)),
        ];
        for (key, forged) in cases {
            let answer = json!({"hash": HASH, "swarm": {
                hex::encode(a.ed25519_pk()): confirmation(&a, HASH),
                key.clone(): forged.clone(),
            }});
            let got = confirmed_by(&answer, &members, HASH);
            assert_eq!(got, [a_entry.ed25519.0].into(), "{key} {forged}");
            assert!(got.len() < required(members.len()), "one confirmation is not enough");
        }
        // A's confirmation of a hash we did not compute does not count.
        let answer = json!({"hash": other_hash, "swarm": {hex::encode(a.ed25519_pk()): confirmation(&a, other_hash)}});
        assert!(confirmed_by(&answer, &members, HASH).is_empty());
        for junk in [json!({}), json!({"swarm": []}), json!(null), json!({"swarm": {"x": 1}})] {
            assert!(confirmed_by(&junk, &members, HASH).is_empty(), "{junk}");
        }
    }

    #[test]
    fn a_tally_needs_two_members_either_way() {
        let (a, a_entry) = node(1);
        let (b, b_entry) = node(2);
        let (_, c_entry) = node(3);
        let members = vec![a_entry.clone(), b_entry.clone(), c_entry.clone()];
        let own =
            |id: &Identity| json!({"hash": HASH, "swarm": {hex::encode(id.ed25519_pk()): confirmation(id, HASH)}});
        let (ka, kb, kc) = (a_entry.ed25519.0, b_entry.ed25519.0, c_entry.ed25519.0);
        // One confirmation, then another member's: stored.
        let mut t = Tally::new(HASH);
        assert!(matches!(t.add(&ka, 200, &own(&a), &members), Verdict::Open(w) if w.contains("only 1 of the 2")));
        assert!(
            matches!(t.add(&ka, 200, &own(&a), &members), Verdict::Open(_)),
            "the same member twice"
        );
        assert_eq!(t.add(&kb, 200, &own(&b), &members), Verdict::Stored);
        // One member refuses for good: not final; the same one again: not
        // final; a second member: final.
        let refusal = json!({"error": "too_large", "message": "data over 76800 bytes"});
        let mut t = Tally::new(HASH);
        assert!(matches!(t.add(&ka, 413, &refusal, &members), Verdict::Open(w) if w.contains("413")));
        assert!(matches!(t.add(&ka, 413, &refusal, &members), Verdict::Open(_)));
        assert!(
            matches!(t.add(&kb, 429, &json!({}), &members), Verdict::Open(_)),
            "429 is temporary"
        );
        let (_, stranger) = node(9);
        assert!(
            matches!(t.add(&stranger.ed25519.0, 400, &refusal, &members), Verdict::Open(_)),
            "a node outside the swarm does not count"
        );
        assert!(matches!(t.add(&kc, 400, &refusal, &members), Verdict::Refused(w) if w.contains("400")));
        // A swarm of one: its member decides alone.
        let alone = vec![a_entry.clone()];
        assert_eq!(Tally::new(HASH).add(&ka, 200, &own(&a), &alone), Verdict::Stored);
        assert!(matches!(
            Tally::new(HASH).add(&ka, 401, &refusal, &alone),
            Verdict::Refused(_)
        ));
        // A 200 with forged confirmations is not a store.
        let mut t = Tally::new(HASH);
        let forged = json!({"hash": HASH, "swarm": {
            hex::encode(a.ed25519_pk()): confirmation(&a, HASH),
            hex::encode(b.ed25519_pk()): confirmation(&a, HASH),
        }});
        assert!(matches!(t.add(&ka, 200, &forged, &members), Verdict::Open(_)));
    }

    #[test]
    fn small_swarms_need_every_member() {
        assert_eq!(required(0), 1);
        assert_eq!(required(1), 1);
        assert_eq!(required(2), 2);
        assert_eq!(required(10), 2);
    }
}
