//! Request types and their validation.
//!
//! Parsing goes through [`Request::from_json`], which reads `method` first
//! and then the parameters of that method, so an error names the method and
//! the parameter that is wrong. Unknown fields (such as an onion request's
//! `pad`) are ignored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::signing::{
    Signer, check_clock, delete_all_signed_bytes, delete_signed_bytes, expire_signed_bytes, retrieve_signed_bytes,
    store_signed_bytes, verify_owner_signature, verify_signer,
};
use super::{
    MAX_CLOCK_SKEW_MS, MAX_DATA_LEN, MAX_HASHES, MAX_SUBREQUESTS, MAX_TTL_MS, MAX_WAIT_MS, MIN_TTL_MS, Namespace,
    RpcError,
};
use crate::MailboxId;
use crate::encoding::{Base64Bytes, Hex32, Sig64};
use crate::files::{CHUNK_LEN, ChunkId, MAX_FILE_CHUNKS};
use crate::group::credential::{Revocation, Rights};

/// `store`: deposit a message into a mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreParams {
    /// The mailbox: an Account ID, or a Group ID.
    pub pubkey: MailboxId,
    /// Namespace; 0 (the default) needs no signature.
    #[serde(default, skip_serializing_if = "is_default_namespace")]
    pub namespace: Namespace,
    /// Sender's clock, Unix ms; the message expires at `timestamp + ttl`.
    pub timestamp: u64,
    /// Time to live in ms.
    pub ttl: u64,
    /// The message (an envelope), base64.
    pub data: Base64Bytes,
    /// Owner's Ed25519 key; required outside namespace 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pubkey_ed25519: Option<Hex32>,
    /// Owner's signature of `"store" ‖ namespace ‖ timestamp ‖ hash`;
    /// required outside namespace 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Sig64>,
    /// A group member's credential (signed by the group key, naming
    /// `pubkey_ed25519`), when a member rather than the owner signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Base64Bytes>,
    /// For a chunk's mailbox: the chunk's index in its upload, so the node
    /// can check that `pubkey_ed25519` (the upload key) owns the chunk ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
}

/// `retrieve`: read a mailbox (signed by its owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrieveParams {
    /// The mailbox: an Account ID, or a Group ID.
    pub pubkey: MailboxId,
    /// The owner's Ed25519 key.
    pub pubkey_ed25519: Hex32,
    /// Namespace to read.
    #[serde(default, skip_serializing_if = "is_default_namespace")]
    pub namespace: Namespace,
    /// Signing time, Unix ms (must be within ±60 s of the node's clock).
    pub timestamp: u64,
    /// Signature of `"retrieve" ‖ namespace ‖ timestamp`.
    pub signature: Sig64,
    /// Return only messages stored after this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_hash: Option<String>,
    /// Most messages to return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
    /// Most bytes of `data` to return (at least one message is returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Long-poll: if nothing is new, wait up to this long for a message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
    /// A group member's credential (signed by the group key, naming
    /// `pubkey_ed25519`), when a member rather than the owner signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Base64Bytes>,
}

/// `retrieve_public`: read a public namespace of a mailbox, which anyone
/// may read (and only the owner write): the account's published keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetrievePublicParams {
    /// The mailbox: an Account ID, or a Group ID.
    pub pubkey: MailboxId,
    /// The namespace: one that [`Namespace::is_public`] says is public.
    pub namespace: Namespace,
    /// Return only messages stored after this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_hash: Option<String>,
    /// Most messages to return.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u32>,
    /// Most bytes of `data` to return (at least one message is returned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

/// `delete`: remove named messages (signed by the owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteParams {
    /// The mailbox: an Account ID, or a Group ID.
    pub pubkey: MailboxId,
    /// The owner's Ed25519 key.
    pub pubkey_ed25519: Hex32,
    /// Hashes of the messages to delete.
    pub messages: Vec<String>,
    /// Signing time, Unix ms (within ±60 s of the node's clock).
    pub timestamp: u64,
    /// Signature of `"delete" ‖ timestamp ‖ hash₁ ‖ hash₂ ‖ …`.
    pub signature: Sig64,
    /// A group member's credential (signed by the group key, naming
    /// `pubkey_ed25519`), when a member rather than the owner signs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<Base64Bytes>,
}

/// `delete_all`: empty one namespace of a mailbox (signed by the owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteAllParams {
    /// The mailbox: an Account ID, or a Group ID.
    pub pubkey: MailboxId,
    /// The owner's Ed25519 key.
    pub pubkey_ed25519: Hex32,
    /// Namespace to empty: every message whose timestamp is not after
    /// `timestamp` (so the request, played again later, cannot touch what
    /// came after it).
    #[serde(default, skip_serializing_if = "is_default_namespace")]
    pub namespace: Namespace,
    /// Signing time, Unix ms.
    pub timestamp: u64,
    /// Signature of `"delete_all" ‖ namespace ‖ timestamp`.
    pub signature: Sig64,
    /// For a chunk's mailbox: the chunk's index in its upload (see
    /// [`StoreParams::chunk`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<u32>,
}

/// `expire`: set a new expiry on named messages (signed by the owner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpireParams {
    /// The mailbox: an Account ID, or a Group ID.
    pub pubkey: MailboxId,
    /// The owner's Ed25519 key.
    pub pubkey_ed25519: Hex32,
    /// Hashes of the messages.
    pub messages: Vec<String>,
    /// New expiry, Unix ms (in the future: to end a message now, delete
    /// it).
    pub expiry: u64,
    /// Signing time, Unix ms. A message's expiry changes only for an
    /// `expire` signed later than the one that set it last.
    pub timestamp: u64,
    /// Signature of `"expire" ‖ timestamp ‖ "," ‖ expiry ‖ hash₁ ‖ hash₂ ‖ …`.
    pub signature: Sig64,
}

/// `get_swarm`: which nodes hold an account's mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetSwarmParams {
    /// The Account ID or Group ID.
    pub pubkey: MailboxId,
}

/// `node_list`: the consensus the node follows. With `since_period`, the
/// answer may instead be the difference from that period's consensus
/// (`docs/protocol.md` §7.4), when the node still holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeListParams {
    /// The period of the consensus the asker holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_period: Option<u64>,
}

/// One RPC call (anything but `batch`/`sequence`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// `store`.
    Store(StoreParams),
    /// `retrieve`.
    Retrieve(RetrieveParams),
    /// `retrieve_public`.
    RetrievePublic(RetrievePublicParams),
    /// `delete`.
    Delete(DeleteParams),
    /// `delete_all`.
    DeleteAll(DeleteAllParams),
    /// `expire`.
    Expire(ExpireParams),
    /// `get_swarm`.
    GetSwarm(GetSwarmParams),
    /// `info`: the node's own description.
    Info,
    /// `node_list`.
    NodeList(NodeListParams),
}

/// A whole request body.
// One per HTTP body, made once and matched at once: boxing the single call
// to shrink it would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// One call.
    Single(Call),
    /// `batch`: run every call, independently, and return every result.
    Batch(Vec<Call>),
    /// `sequence`: run calls in order, stopping at the first failure.
    Sequence(Vec<Call>),
}

#[derive(Deserialize)]
struct RawRequest {
    method: String,
    #[serde(default)]
    params: Value,
}

#[derive(Serialize, Deserialize)]
struct BatchParams {
    requests: Vec<Value>,
}

fn is_default_namespace(ns: &Namespace) -> bool {
    *ns == Namespace::DEFAULT
}

fn params_of<T: for<'de> Deserialize<'de>>(method: &str, params: Value) -> Result<T, RpcError> {
    // A missing `params` is read as an empty object, so methods without
    // parameters may omit it.
    let params = if params.is_null() {
        Value::Object(Default::default())
    } else {
        params
    };
    serde_json::from_value(params).map_err(|e| RpcError::Malformed(format!("{method} params: {e}")))
}

fn to_value<T: Serialize>(params: &T) -> Value {
    // These types are plain data with string keys: serialising cannot fail.
    serde_json::to_value(params).unwrap_or(Value::Null)
}

impl Call {
    /// The method name on the wire.
    pub const fn method(&self) -> &'static str {
        match self {
            Self::Store(_) => "store",
            Self::Retrieve(_) => "retrieve",
            Self::RetrievePublic(_) => "retrieve_public",
            Self::Delete(_) => "delete",
            Self::DeleteAll(_) => "delete_all",
            Self::Expire(_) => "expire",
            Self::GetSwarm(_) => "get_swarm",
            Self::Info => "info",
            Self::NodeList(_) => "node_list",
        }
    }

    /// The mailbox whose swarm must serve this call, if any.
    pub fn mailbox(&self) -> Option<&MailboxId> {
        match self {
            Self::Store(p) => Some(&p.pubkey),
            Self::Retrieve(p) => Some(&p.pubkey),
            Self::RetrievePublic(p) => Some(&p.pubkey),
            Self::Delete(p) => Some(&p.pubkey),
            Self::DeleteAll(p) => Some(&p.pubkey),
            Self::Expire(p) => Some(&p.pubkey),
            Self::GetSwarm(_) | Self::Info | Self::NodeList(_) => None,
        }
    }

    fn from_parts(method: &str, params: Value) -> Result<Self, RpcError> {
        Ok(match method {
            "store" => Self::Store(params_of(method, params)?),
            "retrieve" => Self::Retrieve(params_of(method, params)?),
            "retrieve_public" => Self::RetrievePublic(params_of(method, params)?),
            "delete" => Self::Delete(params_of(method, params)?),
            "delete_all" => Self::DeleteAll(params_of(method, params)?),
            "expire" => Self::Expire(params_of(method, params)?),
            "get_swarm" => Self::GetSwarm(params_of(method, params)?),
            "info" => Self::Info,
            "node_list" => Self::NodeList(params_of(method, params)?),
            "batch" | "sequence" => return Err(RpcError::NestedBatch),
            other => return Err(RpcError::UnknownMethod(truncate(other))),
        })
    }

    fn params_value(&self) -> Value {
        match self {
            Self::Store(p) => to_value(p),
            Self::Retrieve(p) => to_value(p),
            Self::RetrievePublic(p) => to_value(p),
            Self::Delete(p) => to_value(p),
            Self::DeleteAll(p) => to_value(p),
            Self::Expire(p) => to_value(p),
            Self::GetSwarm(p) => to_value(p),
            Self::Info => Value::Object(Default::default()),
            Self::NodeList(p) => to_value(p),
        }
    }

    /// `{"method": ..., "params": {...}}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({ "method": self.method(), "params": self.params_value() })
    }

    fn from_value(v: Value) -> Result<Self, RpcError> {
        let raw: RawRequest = serde_json::from_value(v).map_err(|e| RpcError::Malformed(e.to_string()))?;
        Self::from_parts(&raw.method, raw.params)
    }

    /// The sub-key of the group member whose credential signed this call:
    /// the node refuses it if the group revoked that sub-key.
    pub fn member_key(&self) -> Option<&[u8; 32]> {
        let (credential, key) = match self {
            Self::Store(p) => (&p.credential, p.pubkey_ed25519.as_ref()?),
            Self::Retrieve(p) => (&p.credential, &p.pubkey_ed25519),
            Self::Delete(p) => (&p.credential, &p.pubkey_ed25519),
            _ => return None,
        };
        credential.as_ref().map(|_| &key.0)
    }

    /// Checks limits, the clock window and the signature (the owner's, or a
    /// group member's with its credential and rights), with the node's
    /// clock at `now_ms`. Stateless: it does not look at storage.
    pub fn validate(&self, now_ms: u64) -> Result<(), RpcError> {
        self.validate_with(now_ms, check_clock)
    }

    /// [`Call::validate`] for an owner's request a swarm peer passes on:
    /// its signing time may be older than the clock window (see
    /// [`super::check_forwarded_clock`]); everything else is checked alike.
    pub fn validate_forwarded(&self, now_ms: u64) -> Result<(), RpcError> {
        self.validate_with(now_ms, super::check_forwarded_clock)
    }

    fn validate_with(&self, now_ms: u64, clock: fn(u64, u64) -> Result<(), RpcError>) -> Result<(), RpcError> {
        match self {
            Self::Store(p) => p.validate(now_ms),
            Self::Retrieve(p) => p.validate(now_ms),
            Self::RetrievePublic(p) => p.validate(),
            Self::Delete(p) => p.validate(now_ms, clock),
            Self::DeleteAll(p) => p.validate(now_ms, clock),
            Self::Expire(p) => p.validate(now_ms, clock),
            Self::GetSwarm(_) | Self::Info | Self::NodeList(_) => Ok(()),
        }
    }
}

/// Method names can be attacker-chosen and long; echo at most 64 chars.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

impl Request {
    /// Parses a request body.
    pub fn from_json(bytes: &[u8]) -> Result<Self, RpcError> {
        let raw: RawRequest = serde_json::from_slice(bytes).map_err(|e| RpcError::Malformed(e.to_string()))?;
        match raw.method.as_str() {
            "batch" | "sequence" => {
                let batch: BatchParams = params_of(&raw.method, raw.params)?;
                let n = batch.requests.len();
                if n == 0 || n > MAX_SUBREQUESTS {
                    return Err(RpcError::BadBatch {
                        got: n,
                        max: MAX_SUBREQUESTS,
                    });
                }
                let calls = batch
                    .requests
                    .into_iter()
                    .map(Call::from_value)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if raw.method == "batch" {
                    Self::Batch(calls)
                } else {
                    Self::Sequence(calls)
                })
            }
            method => Call::from_parts(method, raw.params).map(Self::Single),
        }
    }

    /// The request as a JSON value.
    pub fn to_json(&self) -> Value {
        let batch = |name: &str, calls: &[Call]| {
            let requests: Vec<Value> = calls.iter().map(Call::to_json).collect();
            serde_json::json!({ "method": name, "params": { "requests": requests } })
        };
        match self {
            Self::Single(call) => call.to_json(),
            Self::Batch(calls) => batch("batch", calls),
            Self::Sequence(calls) => batch("sequence", calls),
        }
    }
}

fn check_hashes(hashes: &[String]) -> Result<(), RpcError> {
    if hashes.is_empty() || hashes.len() > MAX_HASHES {
        return Err(RpcError::InvalidParam {
            param: "messages",
            reason: format!("give 1 to {MAX_HASHES} hashes, not {}", hashes.len()),
        });
    }
    if let Some(bad) = hashes.iter().position(|h| !is_message_hash(h)) {
        return Err(RpcError::InvalidParam {
            param: "messages",
            reason: format!("entry {bad} is not a message hash (43 base64 characters)"),
        });
    }
    Ok(())
}

/// Whether `s` has the form of a message hash: 43 characters of unpadded
/// standard base64 (32 bytes).
pub fn is_message_hash(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

impl StoreParams {
    fn validate(&self, now_ms: u64) -> Result<(), RpcError> {
        if self.data.0.len() > MAX_DATA_LEN {
            return Err(RpcError::DataTooLarge {
                len: self.data.0.len(),
                max: MAX_DATA_LEN,
            });
        }
        if !(MIN_TTL_MS..=MAX_TTL_MS).contains(&self.ttl) {
            return Err(RpcError::TtlOutOfRange {
                ttl_ms: self.ttl,
                min: MIN_TTL_MS,
                max: MAX_TTL_MS,
            });
        }
        check_clock(self.timestamp, now_ms)?;
        verify_store(&self.pubkey, self.namespace, self.timestamp, &self.data.0, self.proof())
    }

    /// What vouches for the stored message.
    pub fn proof(&self) -> StoreProof<'_> {
        StoreProof {
            ed25519: self.pubkey_ed25519.as_ref().map(|k| &k.0),
            signature: self.signature.as_ref().map(|s| &s.0),
            credential: credential(&self.credential),
            chunk: self.chunk,
        }
    }

    /// When the message expires, Unix ms.
    pub fn expiry(&self) -> u64 {
        self.timestamp.saturating_add(self.ttl)
    }
}

impl RetrievePublicParams {
    fn validate(&self) -> Result<(), RpcError> {
        if !self.namespace.is_public() || !self.pubkey.allows(self.namespace) {
            return Err(RpcError::InvalidParam {
                param: "namespace",
                reason: format!(
                    "namespace {} is not public: reading it needs the owner's signed retrieve",
                    self.namespace.0
                ),
            });
        }
        check_last_hash(self.last_hash.as_deref())
    }
}

/// What vouches for a stored message beside its data: what a `store`
/// carries, and what a node keeps to pass the message on to its peers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreProof<'a> {
    /// The signer's Ed25519 key: the owner's, a group member's sub-key, or
    /// a chunk's upload key.
    pub ed25519: Option<&'a [u8; 32]>,
    /// Its signature of `"store" ‖ namespace ‖ timestamp ‖ hash`.
    pub signature: Option<&'a [u8; 64]>,
    /// A group member's credential.
    pub credential: Option<&'a [u8]>,
    /// A chunk's index in its upload.
    pub chunk: Option<u32>,
}

/// Checks who stored a message outside namespace 0: the owner, or a group
/// member whose credential allows writing, into namespace 11 only, or a
/// chunk's upload key; that namespace 15 holds only the group's
/// revocations; and that a chunk is one secretstream record of a file no
/// larger than 1 GiB. A node checks this for a client's `store` and again
/// for a message a peer passes on.
pub fn verify_store(
    mailbox: &MailboxId,
    namespace: Namespace,
    timestamp_ms: u64,
    data: &[u8],
    proof: StoreProof<'_>,
) -> Result<(), RpcError> {
    check_namespace(mailbox, namespace)?;
    check_chunk_param(mailbox, proof.chunk)?;
    if namespace == Namespace::DEFAULT {
        return Ok(());
    }
    let (Some(ed), Some(sig)) = (proof.ed25519, proof.signature) else {
        return Err(RpcError::SignatureRequired);
    };
    let hash = super::message_hash(mailbox, namespace, data);
    let msg = store_signed_bytes(namespace, timestamp_ms, &hash);
    if let (MailboxId::Chunk(chunk), Some(index)) = (mailbox, proof.chunk) {
        if data.len() != CHUNK_LEN {
            return Err(RpcError::InvalidParam {
                param: "data",
                reason: format!("a chunk is {CHUNK_LEN} bytes, not {}", data.len()),
            });
        }
        if proof.credential.is_some() {
            return Err(RpcError::InvalidParam {
                param: "credential",
                reason: "only a group's mailbox takes a credential".into(),
            });
        }
        return verify_chunk_owner(chunk, index, ed, &msg, sig);
    }
    if let Signer::Member { rights, .. } = verify_signer(mailbox, ed, proof.credential, &msg, sig)? {
        require(rights, Rights::WRITE, "its credential does not allow writing")?;
        if namespace != Namespace::GROUP_MESSAGES {
            return Err(RpcError::Forbidden("only the group key writes outside namespace 11"));
        }
    }
    if let (Namespace::GROUP_REVOKED, MailboxId::Group(group)) = (namespace, mailbox) {
        Revocation::verify(data, group).map_err(|e| RpcError::InvalidParam {
            param: "data",
            reason: format!("namespace 15 holds only the group's revocations: {e}"),
        })?;
    }
    Ok(())
}

/// Groups use namespaces 11–15, chunks 16, and accounts every other one.
fn check_namespace(mailbox: &MailboxId, namespace: Namespace) -> Result<(), RpcError> {
    if mailbox.allows(namespace) {
        return Ok(());
    }
    Err(RpcError::InvalidParam {
        param: "namespace",
        reason: match mailbox {
            MailboxId::Account(_) if namespace.is_group() => {
                format!("namespace {} belongs to groups (11 to 15)", namespace.0)
            }
            MailboxId::Account(_) => format!("namespace {} belongs to file chunks", namespace.0),
            MailboxId::Group(_) => format!("a group's mailbox has namespaces 11 to 15, not {}", namespace.0),
            MailboxId::Chunk(_) => format!("a chunk's mailbox has namespace 16 only, not {}", namespace.0),
        },
    })
}

/// A chunk's mailbox names its index; no other mailbox does.
fn check_chunk_param(mailbox: &MailboxId, chunk: Option<u32>) -> Result<(), RpcError> {
    let reason = match (mailbox, chunk) {
        (MailboxId::Chunk(_), None) => "a chunk's mailbox needs the chunk's index",
        (MailboxId::Chunk(_), Some(i)) if i >= MAX_FILE_CHUNKS => "past the last chunk of a 1 GiB file",
        (MailboxId::Account(_) | MailboxId::Group(_), Some(_)) => "only a chunk's mailbox takes a chunk index",
        _ => return Ok(()),
    };
    Err(RpcError::InvalidParam {
        param: "chunk",
        reason: reason.into(),
    })
}

/// Checks that `upload_pk` owns the chunk mailbox (the chunk's ID is
/// derived from it and `index`) and signed `msg`.
fn verify_chunk_owner(
    chunk: &ChunkId,
    index: u32,
    upload_pk: &[u8; 32],
    msg: &[u8],
    sig: &[u8; 64],
) -> Result<(), RpcError> {
    if !chunk.is_chunk_of(upload_pk, index) {
        return Err(RpcError::KeyMismatch);
    }
    if crate::identity::verify(upload_pk, msg, sig) {
        Ok(())
    } else {
        Err(RpcError::BadSignature)
    }
}

fn credential(c: &Option<Base64Bytes>) -> Option<&[u8]> {
    c.as_ref().map(|c| c.0.as_slice())
}

/// A request's mailbox, signer key, credential and signature.
type Signed<'a> = (&'a MailboxId, &'a Hex32, &'a Option<Base64Bytes>, &'a Sig64);

/// Checks that the owner, or a member whose credential allows `needed`,
/// signed `msg`.
fn owner_or_member(signed: Signed<'_>, msg: &[u8], needed: Rights, refusal: &'static str) -> Result<(), RpcError> {
    let (mailbox, ed, cred, sig) = signed;
    match verify_signer(mailbox, &ed.0, credential(cred), msg, &sig.0)? {
        Signer::Member { rights, .. } => require(rights, needed, refusal),
        Signer::Owner => Ok(()),
    }
}

fn require(rights: Rights, needed: Rights, refusal: &'static str) -> Result<(), RpcError> {
    if rights.contains(needed) {
        Ok(())
    } else {
        Err(RpcError::Forbidden(refusal))
    }
}

/// A `last_hash` is empty or a message hash.
fn check_last_hash(last_hash: Option<&str>) -> Result<(), RpcError> {
    match last_hash {
        Some(h) if !h.is_empty() && !is_message_hash(h) => Err(RpcError::InvalidParam {
            param: "last_hash",
            reason: "not a message hash (43 base64 characters)".into(),
        }),
        _ => Ok(()),
    }
}

impl RetrieveParams {
    fn validate(&self, now_ms: u64) -> Result<(), RpcError> {
        if let Some(wait) = self.wait_ms
            && wait > MAX_WAIT_MS
        {
            return Err(RpcError::InvalidParam {
                param: "wait_ms",
                reason: format!("{wait} is more than the {MAX_WAIT_MS} ms a node waits"),
            });
        }
        check_last_hash(self.last_hash.as_deref())?;
        check_clock(self.timestamp, now_ms)?;
        check_namespace(&self.pubkey, self.namespace)?;
        let msg = retrieve_signed_bytes(self.namespace, self.timestamp);
        let signed = (&self.pubkey, &self.pubkey_ed25519, &self.credential, &self.signature);
        owner_or_member(signed, &msg, Rights::READ, "its credential does not allow reading")
    }
}

type Clock = fn(u64, u64) -> Result<(), RpcError>;

impl DeleteParams {
    fn validate(&self, now_ms: u64, clock: Clock) -> Result<(), RpcError> {
        check_hashes(&self.messages)?;
        clock(self.timestamp, now_ms)?;
        let msg = delete_signed_bytes(self.timestamp, &self.messages);
        let signed = (&self.pubkey, &self.pubkey_ed25519, &self.credential, &self.signature);
        owner_or_member(signed, &msg, Rights::DELETE, "its credential does not allow deleting")
    }
}

impl DeleteAllParams {
    fn validate(&self, now_ms: u64, clock: Clock) -> Result<(), RpcError> {
        clock(self.timestamp, now_ms)?;
        check_namespace(&self.pubkey, self.namespace)?;
        check_chunk_param(&self.pubkey, self.chunk)?;
        let msg = delete_all_signed_bytes(self.namespace, self.timestamp);
        match (&self.pubkey, self.chunk) {
            (MailboxId::Chunk(chunk), Some(index)) => {
                verify_chunk_owner(chunk, index, &self.pubkey_ed25519.0, &msg, &self.signature.0)
            }
            _ => verify_owner_signature(&self.pubkey, &self.pubkey_ed25519.0, &msg, &self.signature.0),
        }
    }
}

impl ExpireParams {
    fn validate(&self, now_ms: u64, clock: Clock) -> Result<(), RpcError> {
        check_hashes(&self.messages)?;
        clock(self.timestamp, now_ms)?;
        let latest = self.timestamp.saturating_add(MAX_TTL_MS + MAX_CLOCK_SKEW_MS);
        if self.expiry > latest {
            return Err(RpcError::InvalidParam {
                param: "expiry",
                reason: "more than 14 days after the request was signed".into(),
            });
        }
        if self.expiry <= self.timestamp {
            return Err(RpcError::InvalidParam {
                param: "expiry",
                reason: "not after the request was signed; to end a message now, delete it".into(),
            });
        }
        let msg = expire_signed_bytes(self.timestamp, self.expiry, &self.messages);
        verify_owner_signature(&self.pubkey, &self.pubkey_ed25519.0, &msg, &self.signature.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;
    use crate::rpc::{ErrorCode, message_hash};

    const NOW: u64 = 1_700_000_000_000;

    fn owner() -> Identity {
        Identity::from_ed25519_seed(&[0x11; 32])
    }

    fn retrieve(ts: u64) -> RetrieveParams {
        let o = owner();
        RetrieveParams {
            pubkey: o.account_id().into(),
            pubkey_ed25519: Hex32(*o.ed25519_pk()),
            namespace: Namespace::DEFAULT,
            timestamp: ts,
            signature: Sig64(o.sign(&retrieve_signed_bytes(Namespace::DEFAULT, ts))),
            last_hash: None,
            max_count: None,
            max_size: None,
            wait_ms: Some(20_000),
            credential: None,
        }
    }

    fn store(data: Vec<u8>, ttl: u64) -> StoreParams {
        StoreParams {
            chunk: None,
            pubkey: owner().account_id().into(),
            namespace: Namespace::DEFAULT,
            timestamp: NOW,
            ttl,
            data: Base64Bytes(data),
            pubkey_ed25519: None,
            signature: None,
            credential: None,
        }
    }

    #[test]
    fn parses_session_shaped_store() {
        let body = format!(
            r#"{{"method":"store","params":{{"pubkey":"{}","timestamp":{NOW},"ttl":86400000,"data":"aGk="}},"pad":"000"}}"#,
            owner().account_id()
        );
        let req = Request::from_json(body.as_bytes()).unwrap();
        let Request::Single(Call::Store(p)) = &req else {
            panic!("not a store: {req:?}")
        };
        assert_eq!(p.data.0, b"hi");
        assert_eq!(p.namespace, Namespace::DEFAULT);
        assert_eq!(p.expiry(), NOW + 86_400_000);
        assert_eq!(
            Request::from_json(&serde_json::to_vec(&req.to_json()).unwrap()).unwrap(),
            req
        );
    }

    #[test]
    fn method_and_param_errors_are_named() {
        assert_eq!(
            Request::from_json(br#"{"method":"steal","params":{}}"#),
            Err(RpcError::UnknownMethod("steal".into()))
        );
        let e = Request::from_json(br#"{"method":"store","params":{"pubkey":"05ab"}}"#).unwrap_err();
        assert!(e.to_string().contains("store params"), "{e}");
        assert!(matches!(Request::from_json(b"[1,2]"), Err(RpcError::Malformed(_))));
        assert_eq!(
            Request::from_json(br#"{"method":"info"}"#),
            Ok(Request::Single(Call::Info))
        );
    }

    #[test]
    fn batches_are_bounded_and_flat() {
        let info = r#"{"method":"info"}"#;
        let ok = format!(r#"{{"method":"batch","params":{{"requests":[{info},{info}]}}}}"#);
        assert_eq!(
            Request::from_json(ok.as_bytes()),
            Ok(Request::Batch(vec![Call::Info, Call::Info]))
        );
        let many = vec![info; 21].join(",");
        let too_many = format!(r#"{{"method":"sequence","params":{{"requests":[{many}]}}}}"#);
        assert_eq!(
            Request::from_json(too_many.as_bytes()),
            Err(RpcError::BadBatch { got: 21, max: 20 })
        );
        let empty = r#"{"method":"batch","params":{"requests":[]}}"#;
        assert_eq!(
            Request::from_json(empty.as_bytes()),
            Err(RpcError::BadBatch { got: 0, max: 20 })
        );
        let nested = format!(r#"{{"method":"batch","params":{{"requests":[{ok}]}}}}"#);
        assert_eq!(Request::from_json(nested.as_bytes()), Err(RpcError::NestedBatch));
    }

    #[test]
    fn store_limits() {
        assert_eq!(
            Call::Store(store(vec![0; MAX_DATA_LEN], MIN_TTL_MS)).validate(NOW),
            Ok(())
        );
        assert_eq!(
            Call::Store(store(vec![0; MAX_DATA_LEN + 1], MIN_TTL_MS)).validate(NOW),
            Err(RpcError::DataTooLarge {
                len: MAX_DATA_LEN + 1,
                max: MAX_DATA_LEN
            })
        );
        for ttl in [MIN_TTL_MS - 1, MAX_TTL_MS + 1] {
            let e = Call::Store(store(vec![1], ttl)).validate(NOW).unwrap_err();
            assert_eq!(e.code(), ErrorCode::BadRequest);
        }
        assert!(matches!(
            Call::Store(store(vec![1], MIN_TTL_MS)).validate(NOW + 61_000),
            Err(RpcError::ClockSkew { skew_ms: -61_000 })
        ));
    }

    #[test]
    fn only_public_namespaces_are_read_without_a_signature() {
        let public = |namespace| {
            Call::RetrievePublic(RetrievePublicParams {
                pubkey: owner().account_id().into(),
                namespace,
                last_hash: None,
                max_count: None,
                max_size: None,
            })
        };
        assert_eq!(public(Namespace::PUBLIC_KEYS).validate(NOW), Ok(()));
        for private in [
            Namespace::DEFAULT,
            Namespace(2),
            Namespace(3),
            Namespace(-20),
            Namespace(-22),
        ] {
            assert!(
                matches!(
                    public(private).validate(NOW),
                    Err(RpcError::InvalidParam { param: "namespace", .. })
                ),
                "namespace {}",
                private.0
            );
        }
        let parsed = Request::from_json(public(Namespace::PUBLIC_KEYS).to_json().to_string().as_bytes()).unwrap();
        assert_eq!(parsed, Request::Single(public(Namespace::PUBLIC_KEYS)));
    }

    #[test]
    fn store_outside_namespace_zero_needs_owner_signature_over_the_message() {
        let mut p = store(vec![1], MIN_TTL_MS);
        p.namespace = Namespace(5);
        assert_eq!(Call::Store(p.clone()).validate(NOW), Err(RpcError::SignatureRequired));
        let o = owner();
        let hash = message_hash(&o.account_id().into(), Namespace(5), &[1]);
        p.pubkey_ed25519 = Some(Hex32(*o.ed25519_pk()));
        p.signature = Some(Sig64(o.sign(&store_signed_bytes(Namespace(5), NOW, &hash))));
        assert_eq!(Call::Store(p.clone()).validate(NOW), Ok(()));
        let mut other_data = p.clone();
        other_data.data = Base64Bytes(vec![2]);
        assert_eq!(
            Call::Store(other_data).validate(NOW),
            Err(RpcError::BadSignature),
            "the signature covers the data"
        );
        p.signature = Some(Sig64(o.sign(&store_signed_bytes(Namespace(6), NOW, &hash))));
        assert_eq!(Call::Store(p).validate(NOW), Err(RpcError::BadSignature));
    }

    #[test]
    fn retrieve_checks_signature_clock_and_wait() {
        assert_eq!(Call::Retrieve(retrieve(NOW)).validate(NOW), Ok(()));
        assert_eq!(
            Call::Retrieve(retrieve(NOW)).validate(NOW - 60_001),
            Err(RpcError::ClockSkew { skew_ms: 60_001 })
        );
        let mut tampered = retrieve(NOW);
        tampered.timestamp += 1;
        assert_eq!(Call::Retrieve(tampered).validate(NOW), Err(RpcError::BadSignature));
        let mut impostor = retrieve(NOW);
        impostor.pubkey = Identity::from_ed25519_seed(&[0x22; 32]).account_id().into();
        assert_eq!(Call::Retrieve(impostor).validate(NOW), Err(RpcError::KeyMismatch));
        let mut long = retrieve(NOW);
        long.wait_ms = Some(MAX_WAIT_MS + 1);
        assert!(matches!(
            Call::Retrieve(long).validate(NOW),
            Err(RpcError::InvalidParam { param: "wait_ms", .. })
        ));
    }

    #[test]
    fn delete_and_expire_check_hashes_signatures_and_times() {
        let o = owner();
        let h = message_hash(&o.account_id().into(), Namespace::DEFAULT, b"m");
        let del = DeleteParams {
            pubkey: o.account_id().into(),
            pubkey_ed25519: Hex32(*o.ed25519_pk()),
            messages: vec![h.clone()],
            timestamp: NOW,
            signature: Sig64(o.sign(&delete_signed_bytes(NOW, std::slice::from_ref(&h)))),
            credential: None,
        };
        assert_eq!(Call::Delete(del.clone()).validate(NOW), Ok(()));
        // Played again two minutes later: refused, unless a swarm peer
        // passes it on.
        assert!(matches!(
            Call::Delete(del.clone()).validate(NOW + 120_000),
            Err(RpcError::ClockSkew { .. })
        ));
        assert_eq!(Call::Delete(del.clone()).validate_forwarded(NOW + 120_000), Ok(()));
        let mut bad = del.clone();
        bad.messages = vec!["nope".into()];
        assert!(matches!(
            Call::Delete(bad).validate(NOW),
            Err(RpcError::InvalidParam { param: "messages", .. })
        ));
        let mut retimed = del;
        retimed.timestamp += 1;
        assert_eq!(Call::Delete(retimed).validate(NOW), Err(RpcError::BadSignature));
        let exp = ExpireParams {
            pubkey: o.account_id().into(),
            pubkey_ed25519: Hex32(*o.ed25519_pk()),
            messages: vec![h.clone()],
            expiry: NOW + 1000,
            timestamp: NOW,
            signature: Sig64(o.sign(&expire_signed_bytes(NOW, NOW + 1000, std::slice::from_ref(&h)))),
        };
        assert_eq!(Call::Expire(exp.clone()).validate(NOW), Ok(()));
        assert!(matches!(
            Call::Expire(exp.clone()).validate(NOW + 120_000),
            Err(RpcError::ClockSkew { .. })
        ));
        let mut far = exp.clone();
        far.expiry = NOW + MAX_TTL_MS + MAX_CLOCK_SKEW_MS + 1;
        assert!(matches!(
            Call::Expire(far).validate(NOW),
            Err(RpcError::InvalidParam { param: "expiry", .. })
        ));
        let mut past = exp;
        past.expiry = NOW - 1;
        past.signature = Sig64(o.sign(&expire_signed_bytes(NOW, NOW - 1, std::slice::from_ref(&h))));
        assert!(matches!(
            Call::Expire(past).validate(NOW),
            Err(RpcError::InvalidParam { param: "expiry", .. })
        ));
        let all = DeleteAllParams {
            chunk: None,
            pubkey: o.account_id().into(),
            pubkey_ed25519: Hex32(*o.ed25519_pk()),
            namespace: Namespace::DEFAULT,
            timestamp: NOW,
            signature: Sig64(o.sign(&delete_all_signed_bytes(Namespace::DEFAULT, NOW))),
        };
        assert_eq!(Call::DeleteAll(all).validate(NOW), Ok(()));
    }

    mod groups {
        use super::*;
        use crate::group::GroupId;
        use crate::group::credential::{Credential, CredentialError, Revocation, Rights};

        fn group_key() -> Identity {
            Identity::from_ed25519_seed(&[0x31; 32])
        }

        fn group() -> MailboxId {
            GroupId::from_ed25519(*group_key().ed25519_pk()).into()
        }

        fn member() -> Identity {
            Identity::from_ed25519_seed(&[0x32; 32])
        }

        fn credential(rights: Rights) -> Base64Bytes {
            Base64Bytes(Credential::issue(&group_key(), member().ed25519_pk(), rights, NOW))
        }

        /// A store into the group, signed by `signer` with `cred`.
        fn store(namespace: Namespace, data: &[u8], signer: &Identity, cred: Option<Base64Bytes>) -> Call {
            let hash = message_hash(&group(), namespace, data);
            Call::Store(StoreParams {
                chunk: None,
                pubkey: group(),
                namespace,
                timestamp: NOW,
                ttl: MIN_TTL_MS,
                data: Base64Bytes(data.to_vec()),
                pubkey_ed25519: Some(Hex32(*signer.ed25519_pk())),
                signature: Some(Sig64(signer.sign(&store_signed_bytes(namespace, NOW, &hash)))),
                credential: cred,
            })
        }

        fn retrieve(namespace: Namespace, signer: &Identity, cred: Option<Base64Bytes>) -> Call {
            Call::Retrieve(RetrieveParams {
                pubkey: group(),
                pubkey_ed25519: Hex32(*signer.ed25519_pk()),
                namespace,
                timestamp: NOW,
                signature: Sig64(signer.sign(&retrieve_signed_bytes(namespace, NOW))),
                last_hash: None,
                max_count: None,
                max_size: None,
                wait_ms: None,
                credential: cred,
            })
        }

        #[test]
        fn a_member_with_its_credential_reads_every_group_namespace_and_writes_only_messages() {
            let cred = Some(credential(Rights::MEMBER));
            for ns in 11..=15 {
                assert_eq!(
                    retrieve(Namespace(ns), &member(), cred.clone()).validate(NOW),
                    Ok(()),
                    "read {ns}"
                );
            }
            let call = store(Namespace::GROUP_MESSAGES, b"hi", &member(), cred.clone());
            assert_eq!(call.validate(NOW), Ok(()));
            assert_eq!(call.member_key(), Some(member().ed25519_pk()));
            for ns in 12..=14 {
                assert!(
                    matches!(
                        store(Namespace(ns), b"hi", &member(), cred.clone()).validate(NOW),
                        Err(RpcError::Forbidden(_))
                    ),
                    "write {ns}"
                );
            }
        }

        #[test]
        fn the_group_key_writes_everything_and_needs_no_credential() {
            for ns in 11..=14 {
                let call = store(Namespace(ns), b"x", &group_key(), None);
                assert_eq!(call.validate(NOW), Ok(()), "write {ns}");
                assert_eq!(call.member_key(), None);
            }
            assert_eq!(retrieve(Namespace(13), &group_key(), None).validate(NOW), Ok(()));
        }

        #[test]
        fn strangers_and_forged_or_narrow_credentials_are_refused() {
            let stranger = Identity::from_ed25519_seed(&[0x33; 32]);
            // No credential: only the group key may sign.
            assert_eq!(
                retrieve(Namespace(11), &stranger, None).validate(NOW),
                Err(RpcError::KeyMismatch)
            );
            // The member's credential presented by someone else.
            assert_eq!(
                retrieve(Namespace(11), &stranger, Some(credential(Rights::MEMBER))).validate(NOW),
                Err(RpcError::KeyMismatch)
            );
            // A credential the stranger signed for itself.
            let forged = Credential::issue(&stranger, stranger.ed25519_pk(), Rights::MEMBER, NOW);
            assert_eq!(
                retrieve(Namespace(11), &stranger, Some(Base64Bytes(forged))).validate(NOW),
                Err(RpcError::Credential(CredentialError::WrongGroup))
            );
            // A read-only credential does not write; a write-only one does
            // not read.
            assert!(matches!(
                store(Namespace(11), b"x", &member(), Some(credential(Rights::READ))).validate(NOW),
                Err(RpcError::Forbidden(_))
            ));
            assert!(matches!(
                retrieve(Namespace(11), &member(), Some(credential(Rights::WRITE))).validate(NOW),
                Err(RpcError::Forbidden(_))
            ));
            assert_eq!(
                Call::Retrieve(RetrieveParams {
                    credential: Some(credential(Rights::MEMBER)),
                    ..retrieve_of_account()
                })
                .validate(NOW),
                Err(RpcError::InvalidParam {
                    param: "credential",
                    reason: "only a group's mailbox takes a credential".into()
                })
            );
        }

        fn retrieve_of_account() -> RetrieveParams {
            super::retrieve(NOW)
        }

        #[test]
        fn groups_and_accounts_keep_to_their_own_namespaces() {
            for ns in [0, 2, -21, 16] {
                assert!(
                    matches!(
                        store(Namespace(ns), b"x", &group_key(), None).validate(NOW),
                        Err(RpcError::InvalidParam { param: "namespace", .. })
                    ),
                    "group namespace {ns}"
                );
            }
            let o = owner();
            let account: MailboxId = o.account_id().into();
            let hash = message_hash(&account, Namespace(11), b"x");
            let into_11 = StoreParams {
                namespace: Namespace(11),
                pubkey_ed25519: Some(Hex32(*o.ed25519_pk())),
                signature: Some(Sig64(o.sign(&store_signed_bytes(Namespace(11), NOW, &hash)))),
                ..super::store(b"x".to_vec(), MIN_TTL_MS)
            };
            assert!(matches!(
                Call::Store(into_11).validate(NOW),
                Err(RpcError::InvalidParam { param: "namespace", .. })
            ));
        }

        #[test]
        fn namespace_15_holds_only_the_groups_own_revocations() {
            let revocation = Revocation::issue(&group_key(), member().ed25519_pk(), NOW);
            assert_eq!(
                store(Namespace::GROUP_REVOKED, &revocation, &group_key(), None).validate(NOW),
                Ok(())
            );
            let other_group = Identity::from_ed25519_seed(&[0x34; 32]);
            let foreign = Revocation::issue(&other_group, member().ed25519_pk(), NOW);
            for data in [b"not a revocation".to_vec(), foreign] {
                assert!(matches!(
                    store(Namespace::GROUP_REVOKED, &data, &group_key(), None).validate(NOW),
                    Err(RpcError::InvalidParam { param: "data", .. })
                ));
            }
        }
    }

    #[test]
    fn long_unknown_method_is_truncated_in_the_error() {
        let body = format!(r#"{{"method":"{}"}}"#, "x".repeat(10_000));
        let Err(RpcError::UnknownMethod(m)) = Request::from_json(body.as_bytes()) else {
            panic!()
        };
        assert_eq!(m.len(), 64);
    }
}
