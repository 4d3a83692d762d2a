//! The exact bytes a mailbox owner signs, the message hash, and the checks
//! a node makes on a signed request.
//!
//! Every signed string is ASCII: the method name followed by its fields,
//! integers in decimal, and the namespace written as `""` for 0 (see
//! [`Namespace::signing_str`]).

use super::{MAX_CLOCK_SKEW_MS, Namespace, RpcError};
use crate::MailboxId;
use crate::encoding::to_base64_unpadded;
use crate::group::credential::{Credential, Rights};
use crate::identity::{self, AccountId};
use crate::sodium;

/// `"retrieve" ‖ namespace ‖ timestamp_ms`.
pub fn retrieve_signed_bytes(namespace: Namespace, timestamp_ms: u64) -> Vec<u8> {
    format!("retrieve{}{timestamp_ms}", namespace.signing_str()).into_bytes()
}

/// `"store" ‖ namespace ‖ timestamp_ms ‖ hash` (only outside namespace
/// 0): the hash binds the signature to the message, so a node that passes
/// the message on can prove the owner stored exactly it.
pub fn store_signed_bytes(namespace: Namespace, timestamp_ms: u64, hash: &str) -> Vec<u8> {
    format!("store{}{timestamp_ms}{hash}", namespace.signing_str()).into_bytes()
}

/// `"delete" ‖ timestamp_ms ‖ hash₁ ‖ hash₂ ‖ …` (hashes are 43 characters
/// each, so the split is unambiguous).
pub fn delete_signed_bytes(timestamp_ms: u64, hashes: &[String]) -> Vec<u8> {
    let mut s = format!("delete{timestamp_ms}");
    hashes.iter().for_each(|h| s.push_str(h));
    s.into_bytes()
}

/// `"delete_all" ‖ namespace ‖ timestamp_ms`.
pub fn delete_all_signed_bytes(namespace: Namespace, timestamp_ms: u64) -> Vec<u8> {
    format!("delete_all{}{timestamp_ms}", namespace.signing_str()).into_bytes()
}

/// `"expire" ‖ timestamp_ms ‖ "," ‖ expiry_ms ‖ hash₁ ‖ hash₂ ‖ …` (the comma
/// keeps the two numbers apart).
pub fn expire_signed_bytes(timestamp_ms: u64, expiry_ms: u64, hashes: &[String]) -> Vec<u8> {
    let mut s = format!("expire{timestamp_ms},{expiry_ms}");
    hashes.iter().for_each(|h| s.push_str(h));
    s.into_bytes()
}

/// Message hash: unpadded base64 of
/// `BLAKE2b-256(mailbox key (32) ‖ namespace_decimal_or_empty ‖ data)`, the
/// key being an account's X25519 key or a group's Ed25519 key. The two
/// kinds never share a namespace, so their hashes cannot meet.
pub fn message_hash(mailbox: &MailboxId, namespace: Namespace, data: &[u8]) -> String {
    let ns = namespace.signing_str();
    let digest: [u8; 32] = sodium::blake2b(&[mailbox.key(), ns.as_bytes(), data]);
    to_base64_unpadded(&digest)
}

/// Refuses a signed timestamp of an owner's request that a swarm peer
/// passes on: it may be older than the clock window (a delayed retry), but
/// not older than a message lives ([`super::MAX_TTL_MS`]), nor ahead of the
/// clock by more than the window.
pub fn check_forwarded_clock(timestamp_ms: u64, now_ms: u64) -> Result<(), RpcError> {
    if timestamp_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
        return check_clock(timestamp_ms, now_ms);
    }
    if timestamp_ms < now_ms.saturating_sub(super::MAX_TTL_MS) {
        return Err(RpcError::TooOld {
            age_ms: now_ms - timestamp_ms,
        });
    }
    Ok(())
}

/// Refuses timestamps more than [`MAX_CLOCK_SKEW_MS`] from `now_ms`.
pub fn check_clock(timestamp_ms: u64, now_ms: u64) -> Result<(), RpcError> {
    let skew = i128::from(timestamp_ms) - i128::from(now_ms);
    if skew.unsigned_abs() > u128::from(MAX_CLOCK_SKEW_MS) {
        let skew_ms = i64::try_from(skew).unwrap_or(if skew > 0 { i64::MAX } else { i64::MIN });
        return Err(RpcError::ClockSkew { skew_ms });
    }
    Ok(())
}

/// Checks that `ed_pk` is the owner's key of `mailbox` (the account's, or
/// the group key) and that `sig` signs `msg`.
pub fn verify_owner_signature(
    mailbox: &MailboxId,
    ed_pk: &[u8; 32],
    msg: &[u8],
    sig: &[u8; 64],
) -> Result<(), RpcError> {
    let owner = match mailbox {
        MailboxId::Account(account) => AccountId::from_ed25519(ed_pk).is_ok_and(|derived| derived == *account),
        MailboxId::Group(group) => group.ed25519() == ed_pk,
        // A chunk's owner is its upload key, known by the chunk's index
        // (`verify_store`, `delete_all`): nothing else is signed for it.
        MailboxId::Chunk(_) => false,
    };
    if !owner {
        return Err(RpcError::KeyMismatch);
    }
    verify_signature(ed_pk, msg, sig)
}

fn verify_signature(ed_pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Result<(), RpcError> {
    if identity::verify(ed_pk, msg, sig) {
        Ok(())
    } else {
        Err(RpcError::BadSignature)
    }
}

/// Who signed a request about a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signer {
    /// The owner: the account, or the group key (an admin).
    Owner,
    /// A group member, by the sub-key and rights of a credential the group
    /// key signed.
    Member {
        /// The sub-key that signed.
        sub_key: [u8; 32],
        /// What its credential allows.
        rights: Rights,
    },
}

/// Checks a signed request about `mailbox`: without `credential`, as
/// [`verify_owner_signature`]; with one (a group's mailbox only), that the
/// group key signed the credential, that it names `ed_pk`, and that `sig`
/// by `ed_pk` signs `msg`. Whether the credential was since revoked is the
/// node's to check: that needs its store.
pub fn verify_signer(
    mailbox: &MailboxId,
    ed_pk: &[u8; 32],
    credential: Option<&[u8]>,
    msg: &[u8],
    sig: &[u8; 64],
) -> Result<Signer, RpcError> {
    let Some(credential) = credential else {
        return verify_owner_signature(mailbox, ed_pk, msg, sig).map(|()| Signer::Owner);
    };
    let MailboxId::Group(group) = mailbox else {
        return Err(RpcError::InvalidParam {
            param: "credential",
            reason: "only a group's mailbox takes a credential".into(),
        });
    };
    let credential = Credential::verify(credential, group).map_err(RpcError::Credential)?;
    if credential.member_pk != *ed_pk {
        return Err(RpcError::KeyMismatch);
    }
    verify_signature(ed_pk, msg, sig)?;
    Ok(Signer::Member {
        sub_key: credential.member_pk,
        rights: credential.rights,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    #[test]
    fn signed_strings_are_exact() {
        assert_eq!(
            retrieve_signed_bytes(Namespace(0), 1_700_000_000_000),
            b"retrieve1700000000000"
        );
        assert_eq!(retrieve_signed_bytes(Namespace(-10), 5), b"retrieve-105");
        assert_eq!(store_signed_bytes(Namespace(3), 7, "h"), b"store37h");
        assert_eq!(delete_signed_bytes(5, &["a".into(), "b".into()]), b"delete5ab");
        assert_eq!(delete_all_signed_bytes(Namespace(0), 9), b"delete_all9");
        assert_eq!(
            expire_signed_bytes(5, 42, &["h1".into(), "h2".into()]),
            b"expire5,42h1h2"
        );
    }

    #[test]
    fn clock_window_is_inclusive_60s_each_way() {
        assert_eq!(check_clock(1_060_000, 1_000_000), Ok(()));
        assert_eq!(check_clock(940_000, 1_000_000), Ok(()));
        assert_eq!(
            check_clock(1_060_001, 1_000_000),
            Err(RpcError::ClockSkew { skew_ms: 60_001 })
        );
        assert_eq!(check_clock(0, u64::MAX), Err(RpcError::ClockSkew { skew_ms: i64::MIN }));
    }

    #[test]
    fn forwarded_requests_may_be_old_but_not_older_than_a_message_lives() {
        let now = 2_000_000_000_000;
        assert_eq!(check_forwarded_clock(now - 3_600_000, now), Ok(()));
        assert_eq!(check_forwarded_clock(now - super::super::MAX_TTL_MS, now), Ok(()));
        assert!(matches!(
            check_forwarded_clock(now - super::super::MAX_TTL_MS - 1, now),
            Err(RpcError::TooOld { .. })
        ));
        assert_eq!(check_forwarded_clock(now + 60_000, now), Ok(()));
        assert!(matches!(
            check_forwarded_clock(now + 60_001, now),
            Err(RpcError::ClockSkew { .. })
        ));
    }

    #[test]
    fn hash_depends_on_account_namespace_and_data() {
        let a = Identity::from_ed25519_seed(&[1; 32]).account_id().into();
        let b = Identity::from_ed25519_seed(&[2; 32]).account_id().into();
        let h = message_hash(&a, Namespace(0), b"x");
        assert_eq!(h.len(), 43);
        assert_ne!(h, message_hash(&b, Namespace(0), b"x"));
        assert_ne!(h, message_hash(&a, Namespace(1), b"x"));
        assert_ne!(h, message_hash(&a, Namespace(0), b"y"));
    }

    #[test]
    fn owner_signature_checks_key_and_signature() {
        let owner = Identity::from_ed25519_seed(&[1; 32]);
        let other = Identity::from_ed25519_seed(&[2; 32]);
        let msg = retrieve_signed_bytes(Namespace(0), 5);
        let sig = owner.sign(&msg);
        let acct = owner.account_id().into();
        assert_eq!(verify_owner_signature(&acct, owner.ed25519_pk(), &msg, &sig), Ok(()));
        assert_eq!(
            verify_owner_signature(&acct, other.ed25519_pk(), &msg, &other.sign(&msg)),
            Err(RpcError::KeyMismatch)
        );
        assert_eq!(
            verify_owner_signature(&acct, owner.ed25519_pk(), b"retrieve6", &sig),
            Err(RpcError::BadSignature)
        );
    }
}
