//! The storage RPC spoken at `POST /storage_rpc/v1` and inside onion
//! requests: request and result types, limits, the strings owners sign, the
//! message hash and the error body.
//!
//! A request is `{"method": ..., "params": {...}}`; parameters follow
//! Session's storage server. See `docs/protocol.md` for every shape.

mod error;
mod request;
mod response;
mod signing;

pub use error::{ErrorBody, ErrorCode, RpcError};
pub use request::{
    Call, DeleteAllParams, DeleteParams, ExpireParams, GetSwarmParams, NodeListParams, Request, RetrieveParams,
    RetrievePublicParams, StoreParams,
};
pub use request::{StoreProof, is_message_hash, verify_store};
pub use response::{
    DeleteResult, ExpireResult, GetSwarmResult, InfoResult, RetrieveResult, StoreResult, StoredMessage, SubResult,
    SwarmConfirmation, SwarmNode,
};
pub use signing::{
    Signer, check_clock, check_forwarded_clock, delete_all_signed_bytes, delete_signed_bytes, expire_signed_bytes,
    message_hash, retrieve_signed_bytes, store_signed_bytes, verify_owner_signature, verify_signer,
};

/// The version of the protocol this code speaks, reported by `info`.
/// Version 2 added signing times to `delete` and `expire`, the message hash
/// to the `store` signature, bounded `retrieve` pages, relay MACs and hop
/// counts, and the receiver to every signed peer request; version 3 replaced the single-seed node list by the seeds' consensus; 4 and 5
/// added public namespaces and `retrieve_public`; 6 added group
/// mailboxes (`03` IDs, namespaces 11–15) with member credentials and
/// revocations; 7 (this one) added file chunk mailboxes (`04` IDs,
/// namespace 16) with the `chunk` index. See `docs/protocol.md` for what changed. Nodes of different
/// versions do not interoperate.
pub const PROTOCOL_VERSION: u32 = 7;

use serde::{Deserialize, Serialize};

/// The largest `data` a `store` accepts, in bytes (decoded).
pub const MAX_DATA_LEN: usize = 76_800;
/// Shortest time to live of a stored message.
pub const MIN_TTL_MS: u64 = 10_000;
/// Longest time to live of a stored message: 14 days.
pub const MAX_TTL_MS: u64 = 14 * 24 * 60 * 60 * 1000;
/// How far a signed timestamp may be from the node's clock, either way.
pub const MAX_CLOCK_SKEW_MS: u64 = 60_000;
/// Most sub-requests in one `batch` or `sequence`.
pub const MAX_SUBREQUESTS: usize = 20;
/// Longest a `retrieve` may be held open waiting for a new message.
pub const MAX_WAIT_MS: u64 = 25_000;
/// Most messages one `retrieve` returns (`max_count` is capped to this).
pub const MAX_RETRIEVE_COUNT: usize = 256;
/// Most bytes of message data one `retrieve` returns (`max_size` is capped
/// to this), and all the retrieves of one `batch` or `sequence` together
/// (each gets an equal share). At least one message is always returned, so
/// a page of one 76,800-byte message is the smallest.
///
/// Why 2 MiB: in base64 with a 256-message page's JSON around it, it stays
/// well under the 4 MiB an onion response may hold (§9), so no mailbox,
/// however full, can make an answer the client cannot read.
pub const MAX_RETRIEVE_SIZE: usize = 2 * 1024 * 1024;
/// The `max_size` of a `retrieve` that gives none.
pub const DEFAULT_RETRIEVE_SIZE: usize = 1024 * 1024;

// The largest answer: base64 of the data, and per message a hash, two
// timestamps and the JSON around them (under 200 bytes).
const _: () = assert!(
    MAX_RETRIEVE_SIZE.div_ceil(3) * 4 + MAX_RETRIEVE_COUNT * 200 + 1024 < crate::onion::MAX_ONION_RESPONSE,
    "a full retrieve page must fit an onion response"
);
/// Most hashes named in one `delete` or `expire`.
pub const MAX_HASHES: usize = 1000;
/// Largest request body a node reads, in bytes: a `store` of the largest
/// data in base64 plus generous room for the other fields.
pub const MAX_REQUEST_BODY: usize = 128 * 1024;

/// A mailbox namespace. Namespace 0 is the public inbox anyone may deposit
/// into; every other namespace needs the owner's signature to store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Namespace(pub i16);

impl Namespace {
    /// The public inbox.
    pub const DEFAULT: Self = Self(0);
    /// The account's published keys (envelope v2): written by the owner,
    /// read by anyone (Session's number for its account keys).
    pub const PUBLIC_KEYS: Self = Self(-21);
    /// A group's messages: members write and read (Session's number).
    pub const GROUP_MESSAGES: Self = Self(11);
    /// A group's key messages: the group key writes, members read.
    pub const GROUP_KEYS: Self = Self(12);
    /// A group's info (name, description, disappearing setting).
    pub const GROUP_INFO: Self = Self(13);
    /// A group's member list.
    pub const GROUP_MEMBERS: Self = Self(14);
    /// A group's revocations: the nodes refuse a credential whose sub-key
    /// one of these names.
    pub const GROUP_REVOKED: Self = Self(15);
    /// File chunks (`docs/files.md`): one chunk per chunk mailbox, written
    /// by the upload key, read by anyone who knows the chunk's ID.
    pub const FILES: Self = Self(16);

    /// Whether anyone may read this namespace (`retrieve_public`); every
    /// other one is read with the owner's signature only.
    pub const fn is_public(self) -> bool {
        self.0 == Self::PUBLIC_KEYS.0 || self.0 == Self::FILES.0
    }

    /// Whether this is a group's namespace (11–15): only a group's mailbox
    /// uses these, and a group's mailbox uses nothing else.
    pub const fn is_group(self) -> bool {
        self.0 >= Self::GROUP_MESSAGES.0 && self.0 <= Self::GROUP_REVOKED.0
    }

    /// The namespace as it appears in signed strings and hashes: decimal,
    /// and the empty string for 0 (so pre-namespace signatures stay valid).
    pub fn signing_str(self) -> String {
        if self.0 == 0 { String::new() } else { self.0.to_string() }
    }
}
