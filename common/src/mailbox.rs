//! Mailbox IDs: what a storage request names. A mailbox is an account's
//! (`05` ‖ X25519 key), a group's (`03` ‖ Ed25519 key, see
//! [`crate::group`]) or one file chunk's (`04` ‖ chunk ID, see
//! [`crate::files`]).
//!
//! Nodes place and store a mailbox by its 32 key bytes. The kinds never
//! share a namespace: groups use only [`Namespace::is_group`]'s 11–15,
//! chunks only [`Namespace::FILES`] (16), and accounts neither (see
//! `docs/protocol.md` §4.4), so a stored row's key and namespace say which
//! kind it belongs to ([`MailboxId::from_stored`]).

use std::fmt;
use std::str::FromStr;

use crate::files::{CHUNK_PREFIX, ChunkId};
use crate::group::{GROUP_PREFIX, GroupId};
use crate::identity::{ACCOUNT_PREFIX, AccountId};
use crate::rpc::Namespace;

/// An account's, a group's or a file chunk's mailbox.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MailboxId {
    /// An account: namespaces outside 11–16.
    Account(AccountId),
    /// A group: namespaces 11–15.
    Group(GroupId),
    /// One chunk of a file: namespace 16 only.
    Chunk(ChunkId),
}

/// Why a string is not a mailbox ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a mailbox is an Account ID (05…), a Group ID (03…) or a chunk ID (04…), 66 hex characters")]
pub struct MailboxIdError;

impl MailboxId {
    /// The 32 bytes that place the mailbox on the swarm ring and key its
    /// rows in a node's store.
    pub const fn key(&self) -> &[u8; 32] {
        match self {
            Self::Account(a) => a.x25519(),
            Self::Group(g) => g.ed25519(),
            Self::Chunk(c) => c.bytes(),
        }
    }

    /// The mailbox a stored row with this key and namespace belongs to.
    pub const fn from_stored(key: [u8; 32], namespace: Namespace) -> Self {
        if namespace.is_group() {
            Self::Group(GroupId::from_ed25519(key))
        } else if namespace.0 == Namespace::FILES.0 {
            Self::Chunk(ChunkId::from_bytes(key))
        } else {
            Self::Account(AccountId::from_x25519(key))
        }
    }

    /// The account, if this is an account's mailbox.
    pub const fn account(&self) -> Option<&AccountId> {
        match self {
            Self::Account(a) => Some(a),
            Self::Group(_) | Self::Chunk(_) => None,
        }
    }

    /// The group, if this is a group's mailbox.
    pub const fn group(&self) -> Option<&GroupId> {
        match self {
            Self::Group(g) => Some(g),
            Self::Account(_) | Self::Chunk(_) => None,
        }
    }

    /// Whether `namespace` is one this kind of mailbox may use.
    pub const fn allows(&self, namespace: Namespace) -> bool {
        match self {
            Self::Account(_) => !namespace.is_group() && namespace.0 != Namespace::FILES.0,
            Self::Group(_) => namespace.is_group(),
            Self::Chunk(_) => namespace.0 == Namespace::FILES.0,
        }
    }
}

impl From<AccountId> for MailboxId {
    fn from(a: AccountId) -> Self {
        Self::Account(a)
    }
}

impl From<GroupId> for MailboxId {
    fn from(g: GroupId) -> Self {
        Self::Group(g)
    }
}

impl From<ChunkId> for MailboxId {
    fn from(c: ChunkId) -> Self {
        Self::Chunk(c)
    }
}

impl FromStr for MailboxId {
    type Err = MailboxIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let prefix = s.get(..2).and_then(|p| u8::from_str_radix(p, 16).ok());
        match prefix {
            Some(ACCOUNT_PREFIX) => s.parse().map(Self::Account).map_err(|_| MailboxIdError),
            Some(GROUP_PREFIX) => s.parse().map(Self::Group).map_err(|_| MailboxIdError),
            Some(CHUNK_PREFIX) => s.parse().map(Self::Chunk).map_err(|_| MailboxIdError),
            _ => Err(MailboxIdError),
        }
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(a) => a.fmt(f),
            Self::Group(g) => g.fmt(f),
            Self::Chunk(c) => c.fmt(f),
        }
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(a) => a.fmt(f),
            Self::Group(g) => g.fmt(f),
            Self::Chunk(c) => c.fmt(f),
        }
    }
}

impl serde::Serialize for MailboxId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for MailboxId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    #[test]
    fn both_kinds_read_back_and_keep_their_prefix() {
        let account = Identity::from_ed25519_seed(&[1; 32]).account_id();
        let group = GroupId::from_ed25519([7; 32]);
        let chunk = ChunkId::of(&[8; 32], 3);
        for id in [MailboxId::from(account), MailboxId::from(group), MailboxId::from(chunk)] {
            let text = id.to_string();
            assert_eq!(text.parse::<MailboxId>(), Ok(id));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<MailboxId>(&json).unwrap(), id);
        }
        assert!(MailboxId::from(group).to_string().starts_with("03"));
        assert!(MailboxId::from(chunk).to_string().starts_with("04"));
        for bad in [
            "",
            "0",
            "06".repeat(33).as_str(),
            &"04".repeat(32),
            &format!("05{}", "zz".repeat(32)),
        ] {
            assert_eq!(bad.parse::<MailboxId>(), Err(MailboxIdError), "{bad:?}");
        }
    }

    #[test]
    fn the_namespace_says_whose_a_stored_row_is() {
        let key = [9; 32];
        assert_eq!(
            MailboxId::from_stored(key, Namespace(11)),
            MailboxId::Group(GroupId::from_ed25519(key))
        );
        assert_eq!(
            MailboxId::from_stored(key, Namespace(0)),
            MailboxId::Account(AccountId::from_x25519(key))
        );
        let group = MailboxId::from_stored(key, Namespace(15));
        assert!(group.allows(Namespace(15)) && !group.allows(Namespace(0)) && !group.allows(Namespace(16)));
        let account = MailboxId::from_stored(key, Namespace(-21));
        assert!(account.allows(Namespace(-21)) && !account.allows(Namespace(11)));
        assert!(!account.allows(Namespace::FILES));
        let chunk = MailboxId::from_stored(key, Namespace::FILES);
        assert_eq!(chunk, MailboxId::Chunk(ChunkId::from_bytes(key)));
        assert!(chunk.allows(Namespace::FILES) && !chunk.allows(Namespace(0)) && !chunk.allows(Namespace(11)));
    }
}
