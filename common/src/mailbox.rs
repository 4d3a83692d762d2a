//! Mailbox IDs: what a storage request names. A mailbox is an account's
//! (`05` ‖ X25519 key) or a group's (`03` ‖ Ed25519 key, see
//! [`crate::group`]).
//!
//! Nodes place and store a mailbox by its 32 key bytes. The two kinds never
//! share a namespace: groups use only [`Namespace::is_group`]'s 11–15 and
//! accounts never do (see `docs/protocol.md` §4.4), so a stored row's key and
//! namespace say which kind it belongs to ([`MailboxId::from_stored`]).

use std::fmt;
use std::str::FromStr;

use crate::group::{GROUP_PREFIX, GroupId};
use crate::identity::{ACCOUNT_PREFIX, AccountId};
use crate::rpc::Namespace;

/// An account's or a group's mailbox.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MailboxId {
    /// An account: namespaces outside 11–15.
    Account(AccountId),
    /// A group: namespaces 11–15.
    Group(GroupId),
}

/// Why a string is not a mailbox ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a mailbox is an Account ID (05…) or a Group ID (03…), 66 hex characters")]
pub struct MailboxIdError;

impl MailboxId {
    /// The 32 bytes that place the mailbox on the swarm ring and key its
    /// rows in a node's store.
    pub const fn key(&self) -> &[u8; 32] {
        match self {
            Self::Account(a) => a.x25519(),
            Self::Group(g) => g.ed25519(),
        }
    }

    /// The mailbox a stored row with this key and namespace belongs to.
    pub const fn from_stored(key: [u8; 32], namespace: Namespace) -> Self {
        if namespace.is_group() {
            Self::Group(GroupId::from_ed25519(key))
        } else {
            Self::Account(AccountId::from_x25519(key))
        }
    }

    /// The account, if this is an account's mailbox.
    pub const fn account(&self) -> Option<&AccountId> {
        match self {
            Self::Account(a) => Some(a),
            Self::Group(_) => None,
        }
    }

    /// The group, if this is a group's mailbox.
    pub const fn group(&self) -> Option<&GroupId> {
        match self {
            Self::Group(g) => Some(g),
            Self::Account(_) => None,
        }
    }

    /// Whether `namespace` is one this kind of mailbox may use.
    pub const fn allows(&self, namespace: Namespace) -> bool {
        match self {
            Self::Account(_) => !namespace.is_group(),
            Self::Group(_) => namespace.is_group(),
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

impl FromStr for MailboxId {
    type Err = MailboxIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let prefix = s.get(..2).and_then(|p| u8::from_str_radix(p, 16).ok());
        match prefix {
            Some(ACCOUNT_PREFIX) => s.parse().map(Self::Account).map_err(|_| MailboxIdError),
            Some(GROUP_PREFIX) => s.parse().map(Self::Group).map_err(|_| MailboxIdError),
            _ => Err(MailboxIdError),
        }
    }
}

impl fmt::Display for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(a) => a.fmt(f),
            Self::Group(g) => g.fmt(f),
        }
    }
}

impl fmt::Debug for MailboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account(a) => a.fmt(f),
            Self::Group(g) => g.fmt(f),
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
        for id in [MailboxId::from(account), MailboxId::from(group)] {
            let text = id.to_string();
            assert_eq!(text.parse::<MailboxId>(), Ok(id));
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<MailboxId>(&json).unwrap(), id);
        }
        assert!(MailboxId::from(group).to_string().starts_with("03"));
        for bad in ["", "0", "04".repeat(33).as_str(), &format!("05{}", "zz".repeat(32))] {
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
    }
}
