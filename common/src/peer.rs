//! Node-to-node messages: swarm replication (`POST /swarm/v1/push`), the
//! sync a restarted node asks for (`POST /swarm/v1/sync`) and the periodic
//! digest comparison that repairs what both missed
//! (`POST /swarm/v1/digest`, [`SwarmDigest`]).
//!
//! A push carries messages a node holds to another node that should hold
//! them too: a swarm peer right after a store, or a node that just joined
//! the swarm (hand-over). It bypasses the clients' ±60 s store window (a
//! hand-over moves old messages), so it is authenticated instead: the body
//! is signed by the sending node, whose key the receiver looks up in its
//! node list, and carries the send time so a captured push cannot be
//! replayed later to bring back deleted messages.
//!
//! ```text
//! headers: X-Allium-Node: <sender ed25519 hex>
//!          X-Allium-Signature: base64(Ed25519(sender, "allium-push-v1" 0x00 ‖ BLAKE2b-256(body)))
//! body:    {"to": <receiver ed25519 hex>, "sent": ms,
//!           "messages": [{"pubkey", "namespace"?, "timestamp", "expiry", "data",
//!                         "pubkey_ed25519"?, "signature"?}]}
//! answer:  {"confirmations": [{"hash", "signature"}],   one per message now held
//!           "deleted"?: [{"hash", "request"}]}         the owner's deletions the sender missed
//! ```

use serde::{Deserialize, Serialize};

use crate::MailboxId;
use crate::encoding::{Base64Bytes, Hex32};
use crate::rpc::{Namespace, SwarmConfirmation};
use crate::sodium::{self, SodiumError};

/// Header naming the sending node.
pub const NODE_HEADER: &str = "x-allium-node";
/// Header of a relayed onion request: how many relays it has passed,
/// counting the one sending it (decimal).
pub const HOPS_HEADER: &str = "x-allium-hops";
/// Header of a relayed onion request: when the relay sent it, Unix ms.
pub const SENT_HEADER: &str = "x-allium-sent";
/// Header of a relayed onion request: base64 of its [`relay_mac`].
pub const MAC_HEADER: &str = "x-allium-mac";
/// Most relays one onion request may pass before its destination (a
/// client's path has 3). A relay that would be one more refuses to forward.
pub const MAX_RELAYS: u8 = 4;
/// Domain separator of the key two nodes share ([`link_key`]).
pub const LINK_DOMAIN: &[u8] = b"allium-link-v1\0";
/// Domain separator of [`relay_mac`].
pub const RELAY_DOMAIN: &[u8] = b"allium-relay-v1\0";
/// Header carrying the sender's signature of the body.
pub const SIGNATURE_HEADER: &str = "x-allium-signature";
/// Domain separator of forwarded owner requests.
pub const FORWARD_DOMAIN: &[u8] = b"allium-forward-v1\0";
/// Domain separator of push signatures.
pub const PUSH_DOMAIN: &[u8] = b"allium-push-v1\0";
/// Most messages in one push.
pub const MAX_PUSH_MESSAGES: usize = 64;
/// Largest push body a node reads.
pub const MAX_PUSH_BODY: usize = 1024 * 1024;

/// One replicated message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedMessage {
    /// The mailbox.
    pub pubkey: MailboxId,
    /// Its namespace.
    #[serde(default)]
    pub namespace: Namespace,
    /// The sender's timestamp.
    pub timestamp: u64,
    /// When it expires.
    pub expiry: u64,
    /// The stored bytes.
    pub data: Base64Bytes,
    /// Outside namespace 0: the owner's Ed25519 key...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubkey_ed25519: Option<Hex32>,
    /// ...and signature of `"store" ‖ namespace ‖ timestamp ‖ hash`, without
    /// which a peer refuses the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<crate::encoding::Sig64>,
    /// For a group member's store: the credential the group key signed for
    /// the key that signed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Base64Bytes>,
    /// For a chunk: its index in its upload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
}

impl PushedMessage {
    /// Whether the signature (required outside namespace 0) is there and
    /// proves that the owner, or a group member allowed to write, stored
    /// exactly this message, in a namespace its mailbox may use.
    pub fn owner_signed(&self) -> bool {
        let proof = crate::rpc::StoreProof {
            ed25519: self.pubkey_ed25519.as_ref().map(|k| &k.0),
            signature: self.signature.as_ref().map(|s| &s.0),
            credential: self.credential.as_ref().map(|c| c.0.as_slice()),
            chunk: self.chunk,
        };
        crate::rpc::verify_store(&self.pubkey, self.namespace, self.timestamp, &self.data.0, proof).is_ok()
    }
}

/// The body of a push.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    /// The receiving node's Ed25519 key (a push is for one node only).
    pub to: Hex32,
    /// When the sender signed it, Unix ms.
    pub sent: u64,
    /// The messages.
    pub messages: Vec<PushedMessage>,
}

/// The answer to a push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    /// One per message the receiver now holds (or knows its owner deleted).
    pub confirmations: Vec<SwarmConfirmation>,
    /// For pushed messages the receiver knows were deleted by their owner:
    /// the owner's signed request that deleted each, so the pusher, which
    /// missed it, deletes its copy too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deleted: Vec<DeletionProof>,
}

/// The owner's proof that a message was deleted: the signed `delete` or
/// `delete_all` request (`{"method", "params"}`) that deleted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeletionProof {
    /// The deleted message.
    pub hash: String,
    /// The owner's request.
    pub request: serde_json::Value,
}

/// Domain separator of sync-request signatures.
pub const SYNC_DOMAIN: &[u8] = b"allium-sync-v1\0";

/// The body of `POST /swarm/v1/sync`: a (re)started node asks a swarm peer
/// to push it the swarm's messages. Signed like a push, with
/// [`SYNC_DOMAIN`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// The receiving node's Ed25519 key.
    pub to: Hex32,
    /// When the sender signed it, Unix ms.
    pub sent: u64,
}

/// The key nodes `a` and `b` share: `BLAKE2b-256(LINK_DOMAIN ‖ X25519(a, B)
/// ‖ lower Ed25519 key ‖ higher Ed25519 key)`, the same from either end.
/// It authenticates relayed onion requests ([`relay_mac`]) without a
/// signature per hop.
pub fn link_key(
    my_x25519_sk: &[u8; 32],
    my_ed25519: &[u8; 32],
    peer_x25519: &[u8; 32],
    peer_ed25519: &[u8; 32],
) -> Result<[u8; 32], SodiumError> {
    let shared = sodium::x25519(my_x25519_sk, peer_x25519)?;
    let (low, high) = if my_ed25519 <= peer_ed25519 {
        (my_ed25519, peer_ed25519)
    } else {
        (peer_ed25519, my_ed25519)
    };
    Ok(sodium::blake2b(&[LINK_DOMAIN, shared.as_slice(), low, high]))
}

/// The MAC a relay sends with an onion request it forwards:
/// `BLAKE2b-256` keyed with the [`link_key`] of `from` and `to`, over
/// `RELAY_DOMAIN ‖ from ‖ to ‖ u64be(sent_ms) ‖ u8(hops) ‖ body`.
pub fn relay_mac(key: &[u8; 32], from: &[u8; 32], to: &[u8; 32], sent_ms: u64, hops: u8, body: &[u8]) -> [u8; 32] {
    sodium::blake2b_keyed(key, &[RELAY_DOMAIN, from, to, &sent_ms.to_be_bytes(), &[hops], body])
}

/// The body of `POST /swarm/v1/forward`: an owner-signed `delete`,
/// `delete_all` or `expire` that a swarm member executed and passes on to
/// the others, signed like a push with [`FORWARD_DOMAIN`]. The receiver
/// checks the owner's signature itself, allowing a signing time older than
/// the clock window (a delayed retry), and does not pass it on again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardRequest {
    /// The receiving node's Ed25519 key.
    pub to: Hex32,
    /// When the sender signed it, Unix ms.
    pub sent: u64,
    /// The owner's request, `{"method", "params"}`, as the client sent it.
    pub request: serde_json::Value,
}

/// The bytes a node signs for a request to a peer: the request's domain
/// separator and the BLAKE2b-256 digest of its exact body. The digest, not
/// the body: Ed25519 hashes what it signs twice (and the receiver once
/// more) with SHA-512, and a push of chunks is about 90 KB per peer per
/// chunk, so signing the body was a fifth of a node's CPU while it stored
/// a file (`docs/benchmarks.md`, "Files").
pub fn signed_bytes(domain: &[u8], body: &[u8]) -> Vec<u8> {
    let digest: [u8; 32] = sodium::blake2b(&[body]);
    [domain, &digest].concat()
}

/// The bytes a node signs to pass on an owner's request.
pub fn forward_signed_bytes(body: &[u8]) -> Vec<u8> {
    signed_bytes(FORWARD_DOMAIN, body)
}

/// The bytes a node signs to ask for a sync.
pub fn sync_signed_bytes(body: &[u8]) -> Vec<u8> {
    signed_bytes(SYNC_DOMAIN, body)
}

/// The bytes a sender of a push signs ([`signed_bytes`]).
pub fn push_signed_bytes(body: &[u8]) -> Vec<u8> {
    signed_bytes(PUSH_DOMAIN, body)
}

/// Domain separator of digest-request signatures.
pub const DIGEST_DOMAIN: &[u8] = b"allium-digest-v1\0";
/// Buckets of a [`SwarmDigest`]: a message falls in the bucket of the top
/// 12 bits of its 32-byte hash. 4,096 buckets keep a repair small in a
/// large store (a million messages: about 244 per bucket) while a digest
/// stays 144 KiB.
pub const DIGEST_BUCKETS: usize = 4096;
/// Bytes of one bucket in the encoded digest: `u32be count ‖ xor (32)`.
const BUCKET_LEN: usize = 36;

/// A summary of the live messages a node holds for its swarm: per bucket,
/// how many and the XOR of their 32-byte hashes. Two nodes that hold the
/// same messages have equal digests; a bucket that differs names the
/// messages to exchange (1/4096 of the swarm's, in expectation).
///
/// JSON: `{"buckets": base64(DIGEST_BUCKETS × (u32be count ‖ xor))}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmDigest {
    /// Exactly [`DIGEST_BUCKETS`] entries.
    pub buckets: Vec<DigestBucket>,
}

/// One bucket of a [`SwarmDigest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestBucket {
    /// Messages in the bucket.
    pub count: u32,
    /// XOR of their hashes.
    pub xor: [u8; 32],
}

impl Default for SwarmDigest {
    fn default() -> Self {
        Self {
            buckets: vec![DigestBucket { count: 0, xor: [0; 32] }; DIGEST_BUCKETS],
        }
    }
}

impl Serialize for SwarmDigest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.buckets.len() * BUCKET_LEN);
        for bucket in &self.buckets {
            bytes.extend_from_slice(&bucket.count.to_be_bytes());
            bytes.extend_from_slice(&bucket.xor);
        }
        #[derive(Serialize)]
        struct Encoded {
            buckets: Base64Bytes,
        }
        Encoded {
            buckets: Base64Bytes(bytes),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SwarmDigest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Encoded {
            buckets: Base64Bytes,
        }
        let encoded = Encoded::deserialize(deserializer)?;
        if encoded.buckets.0.len() != DIGEST_BUCKETS * BUCKET_LEN {
            return Err(serde::de::Error::custom(format!(
                "a digest has {DIGEST_BUCKETS} buckets of {BUCKET_LEN} bytes"
            )));
        }
        let buckets = encoded
            .buckets
            .0
            .chunks_exact(BUCKET_LEN)
            .map(|b| {
                let mut count = [0u8; 4];
                let mut xor = [0u8; 32];
                count.copy_from_slice(&b[..4]);
                xor.copy_from_slice(&b[4..]);
                DigestBucket {
                    count: u32::from_be_bytes(count),
                    xor,
                }
            })
            .collect();
        Ok(Self { buckets })
    }
}

impl SwarmDigest {
    /// The bucket of a message hash (its 43-character base64 form); `None`
    /// if it is not one.
    pub fn bucket_of(hash: &str) -> Option<usize> {
        let bytes: [u8; 32] = crate::encoding::from_base64(hash).ok()?.try_into().ok()?;
        Some(bucket_index(&bytes))
    }

    /// The first two base64 characters every hash in `bucket` starts
    /// with (its 12 bits are exactly two base64 digits); `None` out of
    /// range.
    pub fn bucket_prefix(bucket: usize) -> Option<String> {
        if bucket >= DIGEST_BUCKETS {
            return None;
        }
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        Some(
            [ALPHABET[bucket >> 6] as char, ALPHABET[bucket & 63] as char]
                .iter()
                .collect(),
        )
    }

    /// Adds one message hash; a string that is not a message hash is
    /// ignored (it could not be pushed either).
    pub fn add(&mut self, hash: &str) {
        let Ok(bytes) = crate::encoding::from_base64(hash) else {
            return;
        };
        let Ok(bytes) = <[u8; 32]>::try_from(bytes) else { return };
        let Some(bucket) = self.buckets.get_mut(bucket_index(&bytes)) else {
            return;
        };
        bucket.count = bucket.count.wrapping_add(1);
        for (x, b) in bucket.xor.iter_mut().zip(bytes) {
            *x ^= b;
        }
    }

    /// The buckets in which `self` and `other` differ (all of them if
    /// `other` is malformed).
    pub fn differing(&self, other: &Self) -> Vec<usize> {
        if other.buckets.len() != DIGEST_BUCKETS || self.buckets.len() != DIGEST_BUCKETS {
            return (0..DIGEST_BUCKETS).collect();
        }
        (0..DIGEST_BUCKETS)
            .filter(|&i| self.buckets.get(i) != other.buckets.get(i))
            .collect()
    }
}

/// The top 12 bits of a hash.
fn bucket_index(hash: &[u8; 32]) -> usize {
    (usize::from(hash[0]) << 4) | usize::from(hash[1] >> 4)
}

/// The body of `POST /swarm/v1/digest`: a node sends its digest to a swarm
/// peer, which pushes back its messages in the buckets that differ. Signed
/// like a push, with [`DIGEST_DOMAIN`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestRequest {
    /// The receiving node's Ed25519 key.
    pub to: Hex32,
    /// When the sender signed it, Unix ms.
    pub sent: u64,
    /// The sender's digest of its swarm's live messages.
    pub digest: SwarmDigest,
}

/// The answer to a digest request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestResponse {
    /// Buckets that differed: the sender follows up with a
    /// [`ReconcileRequest`] listing what it holds in them.
    pub differing: Vec<usize>,
}

/// The bytes a node signs to send a digest.
pub fn digest_signed_bytes(body: &[u8]) -> Vec<u8> {
    signed_bytes(DIGEST_DOMAIN, body)
}

/// Domain separator of reconcile-request signatures.
pub const RECONCILE_DOMAIN: &[u8] = b"allium-reconcile-v1\0";
/// Most hashes one [`ReconcileRequest`] lists (512 KiB of hashes, about
/// 700 KB of JSON).
pub const MAX_RECONCILE_HASHES: usize = 16_384;
/// Largest reconcile body a node reads.
pub const MAX_RECONCILE_BODY: usize = 1024 * 1024;

/// The body of `POST /swarm/v1/reconcile`: after a digest exchange, the
/// hashes the sender holds in some of the buckets that differed. The peer
/// pushes back its messages in those buckets that are not listed, so a
/// repair moves what is missing, not whole buckets. Signed like a push,
/// with [`RECONCILE_DOMAIN`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileRequest {
    /// The receiving node's Ed25519 key.
    pub to: Hex32,
    /// When the sender signed it, Unix ms.
    pub sent: u64,
    /// The buckets and what the sender holds in each.
    pub buckets: Vec<BucketHashes>,
}

/// The hashes a node holds in one digest bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketHashes {
    /// The bucket (below [`DIGEST_BUCKETS`]).
    pub bucket: u16,
    /// The raw 32-byte hashes, concatenated. A bucket with more than fit
    /// lists only some: the peer then pushes a few the sender already has,
    /// which costs bytes, never correctness.
    pub hashes: Base64Bytes,
}

impl ReconcileRequest {
    /// Checks the request's shape: buckets in range and not repeated, whole
    /// 32-byte hashes, at most [`MAX_RECONCILE_HASHES`] of them.
    pub fn check(&self) -> Result<(), &'static str> {
        let mut seen = vec![false; DIGEST_BUCKETS];
        let mut total = 0usize;
        for b in &self.buckets {
            let Some(slot) = seen.get_mut(usize::from(b.bucket)) else {
                return Err("a bucket is out of range");
            };
            if std::mem::replace(slot, true) {
                return Err("a bucket is listed twice");
            }
            if b.hashes.0.len() % 32 != 0 {
                return Err("hashes are 32 bytes each");
            }
            total += b.hashes.0.len() / 32;
        }
        if total > MAX_RECONCILE_HASHES {
            return Err("too many hashes");
        }
        Ok(())
    }
}

/// The answer to a reconcile request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReconcileResponse {
    /// Messages the receiver queued for the sender.
    pub pushing: u64,
}

/// The bytes a node signs to send a reconcile request.
pub fn reconcile_signed_bytes(body: &[u8]) -> Vec<u8> {
    signed_bytes(RECONCILE_DOMAIN, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::{Namespace, message_hash};

    fn hashes(n: u8) -> Vec<String> {
        (0..n)
            .map(|i| message_hash(&crate::AccountId::from_x25519([7; 32]).into(), Namespace(0), &[i]))
            .collect()
    }

    #[test]
    fn a_bucket_prefix_starts_exactly_the_hashes_of_its_bucket() {
        for h in hashes(200) {
            let bucket = SwarmDigest::bucket_of(&h).unwrap();
            assert!(
                h.starts_with(&SwarmDigest::bucket_prefix(bucket).unwrap()),
                "{h} in {bucket}"
            );
            for other in [bucket.wrapping_sub(1), bucket + 1] {
                if let Some(prefix) = SwarmDigest::bucket_prefix(other) {
                    assert!(!h.starts_with(&prefix));
                }
            }
        }
        assert_eq!(SwarmDigest::bucket_prefix(0).as_deref(), Some("AA"));
        assert_eq!(SwarmDigest::bucket_prefix(DIGEST_BUCKETS - 1).as_deref(), Some("//"));
        assert_eq!(SwarmDigest::bucket_prefix(DIGEST_BUCKETS), None);
    }

    #[test]
    fn a_reconcile_request_is_checked_for_shape() {
        let request = |buckets: Vec<(u16, usize)>| ReconcileRequest {
            to: Hex32([1; 32]),
            sent: 0,
            buckets: buckets
                .into_iter()
                .map(|(bucket, len)| BucketHashes {
                    bucket,
                    hashes: Base64Bytes(vec![0; len]),
                })
                .collect(),
        };
        assert!(request(vec![(0, 64), (4095, 0)]).check().is_ok());
        assert!(request(vec![(4096, 32)]).check().is_err(), "out of range");
        assert!(request(vec![(7, 32), (7, 32)]).check().is_err(), "twice");
        assert!(request(vec![(7, 33)]).check().is_err(), "partial hash");
        assert!(request(vec![(7, 32 * MAX_RECONCILE_HASHES)]).check().is_ok());
        assert!(
            request(vec![(7, 32 * MAX_RECONCILE_HASHES), (8, 32)]).check().is_err(),
            "too many"
        );
    }

    #[test]
    fn equal_sets_give_equal_digests_in_any_order() {
        let hs = hashes(50);
        let (mut a, mut b) = (SwarmDigest::default(), SwarmDigest::default());
        hs.iter().for_each(|h| a.add(h));
        hs.iter().rev().for_each(|h| b.add(h));
        assert_eq!(a, b);
        assert!(a.differing(&b).is_empty());
        assert_eq!(a.buckets.iter().map(|b| u64::from(b.count)).sum::<u64>(), 50);
    }

    #[test]
    fn a_missing_message_shows_in_exactly_its_bucket() {
        let hs = hashes(50);
        let (mut a, mut b) = (SwarmDigest::default(), SwarmDigest::default());
        hs.iter().for_each(|h| a.add(h));
        hs.iter().skip(1).for_each(|h| b.add(h));
        assert_eq!(a.differing(&b), vec![SwarmDigest::bucket_of(&hs[0]).unwrap()]);
    }

    #[test]
    fn malformed_input_is_ignored_or_differs_everywhere() {
        let mut a = SwarmDigest::default();
        a.add("not a hash");
        a.add("");
        assert_eq!(a, SwarmDigest::default());
        assert_eq!(SwarmDigest::bucket_of("!!"), None);
        let short = SwarmDigest { buckets: vec![] };
        assert_eq!(a.differing(&short).len(), DIGEST_BUCKETS);
        assert!(serde_json::from_str::<SwarmDigest>(r#"{"buckets":"AAAA"}"#).is_err());
    }

    #[test]
    fn the_digest_is_compact_and_buckets_take_the_top_12_bits() {
        let mut digest = SwarmDigest::default();
        let hash = crate::encoding::to_base64_unpadded(&[0xab; 32]);
        digest.add(&hash);
        assert_eq!(SwarmDigest::bucket_of(&hash), Some(0xaba));
        assert_eq!(digest.buckets[0xaba].count, 1);
        let text = serde_json::to_string(&digest).unwrap();
        assert!(text.len() < 200 * 1024, "{} bytes", text.len());
        assert_eq!(serde_json::from_str::<SwarmDigest>(&text).unwrap(), digest);
    }

    /// Computed independently with Python's `cryptography` (X25519 from the
    /// SHA-512 of each seed, as libsodium converts Ed25519 keys) and
    /// `hashlib.blake2b`: nodes with seeds `01`×32 and `02`×32, a body
    /// `"body"` sent at 1700000000000 as the second relay.
    #[test]
    fn link_key_and_relay_mac_vector() {
        use crate::Identity;
        let a = Identity::from_ed25519_seed(&[1; 32]);
        let b = Identity::from_ed25519_seed(&[2; 32]);
        let key = link_key(a.x25519_sk(), a.ed25519_pk(), b.x25519_pk(), b.ed25519_pk()).unwrap();
        assert_eq!(
            hex::encode(key),
            "4c4ada7c1ace62decae8cb2b70d738ea615c65f616b3513e7a714ac52d132006"
        );
        let mac = relay_mac(&key, a.ed25519_pk(), b.ed25519_pk(), 1_700_000_000_000, 2, b"body");
        assert_eq!(
            hex::encode(mac),
            "6b4ca9216bab9115c06866a5a89ca6717f5bea79ea537ccfcc52fe24da1e8959"
        );
    }

    #[test]
    fn both_ends_derive_the_same_link_key_and_macs_bind_every_field() {
        use crate::Identity;
        let a = Identity::from_ed25519_seed(&[1; 32]);
        let b = Identity::from_ed25519_seed(&[2; 32]);
        let c = Identity::from_ed25519_seed(&[3; 32]);
        let ab = link_key(a.x25519_sk(), a.ed25519_pk(), b.x25519_pk(), b.ed25519_pk()).unwrap();
        let ba = link_key(b.x25519_sk(), b.ed25519_pk(), a.x25519_pk(), a.ed25519_pk()).unwrap();
        let ac = link_key(a.x25519_sk(), a.ed25519_pk(), c.x25519_pk(), c.ed25519_pk()).unwrap();
        assert_eq!(ab, ba);
        assert_ne!(ab, ac);
        let (from, to) = (a.ed25519_pk(), b.ed25519_pk());
        let mac = relay_mac(&ab, from, to, 1_700_000_000_000, 1, b"body");
        assert_ne!(
            mac,
            relay_mac(&ab, to, from, 1_700_000_000_000, 1, b"body"),
            "direction"
        );
        assert_ne!(mac, relay_mac(&ab, from, to, 1_700_000_000_001, 1, b"body"), "time");
        assert_ne!(mac, relay_mac(&ab, from, to, 1_700_000_000_000, 2, b"body"), "hops");
        assert_ne!(mac, relay_mac(&ab, from, to, 1_700_000_000_000, 1, b"bodx"), "body");
        assert_ne!(mac, relay_mac(&ac, from, to, 1_700_000_000_000, 1, b"body"), "key");
    }

    #[test]
    fn a_pushed_message_outside_namespace_zero_needs_its_owners_signature() {
        use crate::Identity;
        use crate::encoding::Sig64;
        let owner = Identity::from_ed25519_seed(&[5; 32]);
        let mut m = PushedMessage {
            chunk: None,
            pubkey: owner.account_id().into(),
            namespace: Namespace(2),
            timestamp: 1_700_000_000_000,
            expiry: 1_700_000_060_000,
            data: Base64Bytes(b"config".to_vec()),
            pubkey_ed25519: None,
            signature: None,
            credential: None,
        };
        assert!(!m.owner_signed());
        let hash = crate::rpc::message_hash(&m.pubkey, m.namespace, &m.data.0);
        m.pubkey_ed25519 = Some(Hex32(*owner.ed25519_pk()));
        m.signature = Some(Sig64(owner.sign(&crate::rpc::store_signed_bytes(
            m.namespace,
            m.timestamp,
            &hash,
        ))));
        assert!(m.owner_signed());
        let mut planted = m.clone();
        planted.data = Base64Bytes(b"planted".to_vec());
        assert!(!planted.owner_signed(), "the signature is for other data");
        let mut zero = planted;
        zero.namespace = Namespace::DEFAULT;
        zero.pubkey_ed25519 = None;
        zero.signature = None;
        assert!(zero.owner_signed(), "namespace 0 is open to all");
    }

    #[test]
    fn the_request_round_trips_through_json() {
        let mut digest = SwarmDigest::default();
        hashes(3).iter().for_each(|h| digest.add(h));
        let request = DigestRequest {
            to: Hex32([1; 32]),
            sent: 1,
            digest,
        };
        let text = serde_json::to_string(&request).unwrap();
        assert_eq!(serde_json::from_str::<DigestRequest>(&text).unwrap(), request);
    }
}
