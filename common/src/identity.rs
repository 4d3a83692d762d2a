//! Identities and Account IDs.
//!
//! An identity is an Ed25519 key pair made from a 32-byte seed, plus the
//! X25519 pair libsodium derives from it. The Account ID is `05` followed by
//! the lowercase hex of the X25519 public key, the form Session uses.

use std::fmt;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::encoding::{self, DecodeError};
use crate::sodium::{self, Secret32, Secret64};

/// The one-byte prefix of an Account ID (`05` in hex).
pub const ACCOUNT_PREFIX: u8 = 0x05;
/// Length of an Account ID in hex characters.
pub const ACCOUNT_ID_LEN: usize = 66;

/// Why a string is not an Account ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccountIdError {
    /// Wrong number of characters.
    #[error("an Account ID has {ACCOUNT_ID_LEN} hex characters, this has {0}")]
    Length(usize),
    /// Does not start with `05`.
    #[error("an Account ID starts with \"05\", this starts with {0:?}")]
    Prefix(String),
    /// A character that is not hex.
    #[error("invalid hex character at position {0}")]
    Hex(usize),
    /// The key is not a usable X25519 public key (a low-order point).
    #[error("the key is not a usable X25519 public key")]
    WeakKey,
}

/// An Account ID: the X25519 public key of an identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; 32]);

impl AccountId {
    /// Wraps a raw X25519 public key.
    pub const fn from_x25519(pk: [u8; 32]) -> Self {
        Self(pk)
    }

    /// The X25519 public key (the 32 bytes after the `05` prefix).
    pub const fn x25519(&self) -> &[u8; 32] {
        &self.0
    }

    /// The Account ID of the owner of an Ed25519 public key.
    pub fn from_ed25519(ed_pk: &[u8; 32]) -> Result<Self, AccountIdError> {
        sodium::ed25519_pk_to_x25519(ed_pk)
            .map(Self)
            .map_err(|_| AccountIdError::WeakKey)
    }
}

impl FromStr for AccountId {
    type Err = AccountIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != ACCOUNT_ID_LEN {
            return Err(AccountIdError::Length(s.chars().count()));
        }
        if !s.is_char_boundary(2) || !s[..2].eq_ignore_ascii_case("05") {
            return Err(AccountIdError::Prefix(s.chars().take(2).collect()));
        }
        match encoding::hex_array::<32>(&s[2..]) {
            Ok(pk) => Ok(Self(pk)),
            Err(DecodeError::HexChar(pos)) => Err(AccountIdError::Hex(pos + 2)),
            Err(_) => Err(AccountIdError::Length(s.len())),
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{ACCOUNT_PREFIX:02x}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({self})")
    }
}

impl serde::Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A full identity: Ed25519 signing keys and the X25519 keys derived from
/// them. Secret halves are wiped on drop and never printed.
pub struct Identity {
    seed: Secret32,
    ed_pk: [u8; 32],
    ed_sk: Secret64,
    x_pk: [u8; 32],
    x_sk: Secret32,
}

impl Identity {
    /// Derives the identity of a 32-byte Ed25519 seed.
    pub fn from_ed25519_seed(seed: &[u8; 32]) -> Self {
        let (ed_pk, ed_sk) = sodium::sign_seed_keypair(seed);
        let x_sk = sodium::ed25519_sk_to_x25519(&ed_sk);
        // The X25519 public key is the base-point multiple of the converted
        // scalar; this equals crypto_sign_ed25519_pk_to_curve25519(ed_pk)
        // for every key libsodium generates, and cannot fail.
        let x_pk = sodium::x25519_base(&x_sk);
        Self {
            seed: Zeroizing::new(*seed),
            ed_pk,
            ed_sk,
            x_pk,
            x_sk,
        }
    }

    /// The Account ID.
    pub fn account_id(&self) -> AccountId {
        AccountId(self.x_pk)
    }

    /// The Ed25519 public key.
    pub fn ed25519_pk(&self) -> &[u8; 32] {
        &self.ed_pk
    }

    /// The X25519 public key.
    pub fn x25519_pk(&self) -> &[u8; 32] {
        &self.x_pk
    }

    /// The X25519 secret scalar (for opening boxes and deriving hop keys).
    pub fn x25519_sk(&self) -> &[u8; 32] {
        &self.x_sk
    }

    /// The 32-byte Ed25519 seed, the only secret a key file needs to hold.
    pub fn ed25519_seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// Detached Ed25519 signature over `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        sodium::sign_detached(&self.ed_sk, msg)
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("account_id", &self.account_id())
            .finish_non_exhaustive()
    }
}

/// Verifies a detached Ed25519 signature.
pub fn verify(ed_pk: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> bool {
    sodium::sign_verify_detached(sig, msg, ed_pk)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libsession_vector_account_id() {
        // libsession-util tests: seed 0123456789abcdef0123456789abcdef
        // (16 ASCII-hex bytes) zero-padded to 32 bytes.
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(&hex::decode("0123456789abcdef0123456789abcdef").unwrap());
        let id = Identity::from_ed25519_seed(&seed);
        assert_eq!(
            id.account_id().to_string(),
            "05d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72"
        );
        assert_eq!(AccountId::from_ed25519(id.ed25519_pk()), Ok(id.account_id()));
    }

    #[test]
    fn account_id_parse_errors_say_what_is_wrong() {
        let good = "05d2ad010eeb72d72e561d9de7bd7b6989af77dcabffa03a5111a6c859ae5c3a72";
        assert_eq!(good.parse::<AccountId>().map(|a| a.to_string()), Ok(good.to_string()));
        assert_eq!(
            good.to_uppercase().parse::<AccountId>().map(|a| a.to_string()),
            Ok(good.into())
        );
        assert_eq!("05ab".parse::<AccountId>(), Err(AccountIdError::Length(4)));
        let bad_prefix = format!("06{}", &good[2..]);
        assert_eq!(
            bad_prefix.parse::<AccountId>(),
            Err(AccountIdError::Prefix("06".into()))
        );
        let bad_char = format!("{}g{}", &good[..10], &good[11..]);
        assert_eq!(bad_char.parse::<AccountId>(), Err(AccountIdError::Hex(10)));
        let multibyte = format!("é{}", &good[2..]);
        assert!(matches!(multibyte.parse::<AccountId>(), Err(AccountIdError::Prefix(_))));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let id = Identity::from_ed25519_seed(&[42u8; 32]);
        let shown = format!("{id:?}");
        assert!(shown.contains(&id.account_id().to_string()));
        assert!(!shown.contains(&hex::encode([42u8; 32])));
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let id = Identity::from_ed25519_seed(&[1u8; 32]);
        let sig = id.sign(b"retrieve1700000000000");
        assert!(verify(id.ed25519_pk(), b"retrieve1700000000000", &sig));
        assert!(!verify(id.ed25519_pk(), b"retrieve1700000000001", &sig));
    }
}
