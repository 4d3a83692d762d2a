//! The key bundle: the X-Wing public keys an account publishes, signed by
//! its identity key.
//!
//! ```text
//! bundle = 0x01                         format
//!        ‖ account_ed25519_pk (32)      the account's identity key
//!        ‖ created_ms (u64)
//!        ‖ n (u8)                       1 ≤ n ≤ 4
//!        ‖ n × ( valid_from_ms (u64) ‖ valid_until_ms (u64) ‖ xwing_pk (1,216) )
//!        ‖ signature (64)               Ed25519 over "allium-key-bundle-v1" 0x00 ‖ every byte above
//! ```
//!
//! Integers are big-endian. Decoding checks only the shape; the signature,
//! the account, the clock and the keys' order and windows are checked by
//! [`UnverifiedKeyBundle::verify`], so no code can seal to a bundle that
//! was not checked.

use std::fmt;

use crate::identity::{self, AccountId, Identity};
use crate::sodium::{XWING_PUBLIC_KEY_LEN, XwingPublicKey};

use super::account_key::{KeyId, key_id};

/// Format byte of this bundle layout.
pub const BUNDLE_FORMAT: u8 = 0x01;
/// Prefix of the bytes the identity key signs (domain separation from
/// every other signature the identity makes).
pub const BUNDLE_SIGNING_LABEL: &[u8] = b"allium-key-bundle-v1\0";
/// Most keys one bundle holds.
pub const MAX_KEYS: usize = 4;
/// How far ahead of the verifier's clock `created_ms` may be (clock skew).
pub const MAX_CREATED_AHEAD_MS: u64 = 60_000;
/// Longest window a key may be valid for: 17 days, the 16 days a secret is
/// kept after it stopped being current plus a day of margin, so a stale
/// bundle cannot make senders use a key its owner has deleted long ago.
pub const MAX_WINDOW_MS: u64 = 17 * 86_400_000;
/// Bytes of one key entry: two times and the public key.
pub const PUBLISHED_KEY_LEN: usize = 8 + 8 + XWING_PUBLIC_KEY_LEN;
/// Bytes before the key entries: format, identity key, creation time, n.
const HEAD_LEN: usize = 1 + 32 + 8 + 1;
/// Bytes of the signature.
const SIGNATURE_LEN: usize = 64;

/// The encoded size of a bundle of `n` keys (2,570 for two).
pub const fn bundle_len(n: usize) -> usize {
    HEAD_LEN + n * PUBLISHED_KEY_LEN + SIGNATURE_LEN
}

/// Why a bundle could not be decoded, verified or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyBundleError {
    /// A format byte this code does not read.
    #[error("key bundle format {0} is not supported (this build reads format {BUNDLE_FORMAT})")]
    Format(u8),
    /// Fewer bytes than the header and the keys it announces need.
    #[error("the key bundle is truncated: {len} bytes, {needed} needed")]
    Truncated {
        /// Bytes given.
        len: usize,
        /// Bytes the bundle needs as far as it could be read.
        needed: usize,
    },
    /// Bytes after the signature.
    #[error("the key bundle has {0} bytes after its signature")]
    TrailingBytes(usize),
    /// No keys, or more than [`MAX_KEYS`].
    #[error("a key bundle holds 1 to {MAX_KEYS} keys, this one {0}")]
    KeyCount(usize),
    /// The identity key does not belong to the Account ID it was fetched
    /// for (or is not a usable Ed25519 key).
    #[error("the key bundle is signed by another account's identity key")]
    WrongAccount,
    /// The signature does not verify under the bundle's identity key.
    #[error("the key bundle's signature does not verify: forged or altered")]
    BadSignature,
    /// Created more than [`MAX_CREATED_AHEAD_MS`] after the verifier's now.
    #[error("the key bundle was created at {created_ms}, more than 60 s after now ({now_ms})")]
    CreatedAhead {
        /// The bundle's `created_ms`.
        created_ms: u64,
        /// The verifier's clock.
        now_ms: u64,
    },
    /// A key's `valid_from_ms` is not after the previous key's.
    #[error("key {index} of the bundle does not start after the key before it: keys go in increasing valid_from")]
    Unordered {
        /// Position of the key (from 0).
        index: usize,
    },
    /// A key's window ends before or when it starts.
    #[error("key {index} of the bundle is valid until {valid_until_ms}, not after it is valid from {valid_from_ms}")]
    EmptyWindow {
        /// Position of the key (from 0).
        index: usize,
        /// Its start.
        valid_from_ms: u64,
        /// Its end.
        valid_until_ms: u64,
    },
    /// A key's window is longer than [`MAX_WINDOW_MS`].
    #[error("key {index} of the bundle is valid for {window_ms} ms, more than 17 days")]
    WindowTooLong {
        /// Position of the key (from 0).
        index: usize,
        /// `valid_until_ms - valid_from_ms`.
        window_ms: u64,
    },
    /// Two keys with one key id (the same key twice, in practice).
    #[error("keys {first} and {index} of the bundle have the same key id")]
    DuplicateKeyId {
        /// The earlier key.
        first: usize,
        /// The later key.
        index: usize,
    },
}

/// One public key of a bundle and the window in which senders may seal to
/// it: from `valid_from_ms` (inclusive) to `valid_until_ms` (exclusive),
/// Unix milliseconds.
#[derive(Clone, PartialEq, Eq)]
pub struct PublishedKey {
    /// First instant senders may use the key.
    pub valid_from_ms: u64,
    /// First instant senders may no longer use it.
    pub valid_until_ms: u64,
    /// The X-Wing public key.
    pub public_key: XwingPublicKey,
}

impl PublishedKey {
    /// A key with its window.
    pub const fn new(valid_from_ms: u64, valid_until_ms: u64, public_key: XwingPublicKey) -> Self {
        Self {
            valid_from_ms,
            valid_until_ms,
            public_key,
        }
    }

    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        key_id(&self.public_key)
    }

    /// Whether `now_ms` is inside the key's window.
    pub const fn is_valid_at(&self, now_ms: u64) -> bool {
        self.valid_from_ms <= now_ms && now_ms < self.valid_until_ms
    }
}

impl fmt::Debug for PublishedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublishedKey")
            .field("valid_from_ms", &self.valid_from_ms)
            .field("valid_until_ms", &self.valid_until_ms)
            .field("key_id", &hex::encode(self.key_id()))
            .finish()
    }
}

/// What the bytes of a bundle say, verified or not.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Body {
    account_ed25519: [u8; 32],
    created_ms: u64,
    keys: Vec<PublishedKey>,
    signature: [u8; SIGNATURE_LEN],
}

/// A bundle whose signature, account, time and keys were checked; only
/// [`UnverifiedKeyBundle::verify`] and [`KeyBundle::sign`] make one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBundle {
    account: AccountId,
    body: Body,
}

/// A bundle as it came off the wire: its shape is checked, nothing else.
/// Only [`UnverifiedKeyBundle::verify`] turns it into a [`KeyBundle`] (the
/// "unchecked until verified" pattern of arti's tor-checkable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedKeyBundle(Body);

impl KeyBundle {
    /// Builds and signs the bundle of `identity`'s account publishing
    /// `keys` (in increasing `valid_from_ms`), created at `created_ms`.
    /// Refuses what a verifier would refuse about the keys.
    pub fn sign(identity: &Identity, created_ms: u64, keys: Vec<PublishedKey>) -> Result<Self, KeyBundleError> {
        check_keys(&keys)?;
        let account_ed25519 = *identity.ed25519_pk();
        let signature = identity.sign(&signed_bytes(&account_ed25519, created_ms, &keys));
        Ok(Self {
            account: identity.account_id(),
            body: Body {
                account_ed25519,
                created_ms,
                keys,
                signature,
            },
        })
    }

    /// Reads a bundle's shape; see [`UnverifiedKeyBundle::decode`].
    pub fn decode(bytes: &[u8]) -> Result<UnverifiedKeyBundle, KeyBundleError> {
        UnverifiedKeyBundle::decode(bytes)
    }

    /// The bytes to publish.
    pub fn encode(&self) -> Vec<u8> {
        let b = &self.body;
        let mut out = Vec::with_capacity(bundle_len(b.keys.len()));
        write_unsigned(&mut out, &b.account_ed25519, b.created_ms, &b.keys);
        out.extend_from_slice(&b.signature);
        out
    }

    /// The account that published it.
    pub fn account_id(&self) -> AccountId {
        self.account
    }

    /// The account's Ed25519 identity key.
    pub fn account_ed25519(&self) -> &[u8; 32] {
        &self.body.account_ed25519
    }

    /// When it was created, Unix ms.
    pub fn created_ms(&self) -> u64 {
        self.body.created_ms
    }

    /// Its keys, in increasing `valid_from_ms`.
    pub fn keys(&self) -> &[PublishedKey] {
        &self.body.keys
    }

    /// The key a sender seals to at `now_ms`: of those whose window holds
    /// `now_ms`, the one with the largest `valid_from_ms`. `None` when no
    /// window holds it (a stale bundle: fetch a new one, or fall back).
    pub fn current_key(&self, now_ms: u64) -> Option<&PublishedKey> {
        self.body.keys.iter().rev().find(|k| k.is_valid_at(now_ms))
    }

    /// The key with this id.
    pub fn key(&self, id: &KeyId) -> Option<&PublishedKey> {
        self.body.keys.iter().find(|k| &k.key_id() == id)
    }
}

impl From<KeyBundle> for UnverifiedKeyBundle {
    /// A bundle to check again (against another account or clock).
    fn from(bundle: KeyBundle) -> Self {
        Self(bundle.body)
    }
}

impl UnverifiedKeyBundle {
    /// Reads the layout: format byte, key count, exact length. Nothing the
    /// bytes claim is trusted yet.
    pub fn decode(bytes: &[u8]) -> Result<Self, KeyBundleError> {
        let mut r = Reader(bytes);
        let format = r.array::<1>().ok_or(KeyBundleError::Truncated {
            len: bytes.len(),
            needed: HEAD_LEN,
        })?[0];
        if format != BUNDLE_FORMAT {
            return Err(KeyBundleError::Format(format));
        }
        let head = r.array::<{ HEAD_LEN - 1 }>().ok_or(KeyBundleError::Truncated {
            len: bytes.len(),
            needed: HEAD_LEN,
        })?;
        let n = usize::from(head[HEAD_LEN - 2]);
        if !(1..=MAX_KEYS).contains(&n) {
            return Err(KeyBundleError::KeyCount(n));
        }
        let needed = bundle_len(n);
        if bytes.len() < needed {
            return Err(KeyBundleError::Truncated {
                len: bytes.len(),
                needed,
            });
        }
        if bytes.len() > needed {
            return Err(KeyBundleError::TrailingBytes(bytes.len() - needed));
        }
        let truncated = KeyBundleError::Truncated {
            len: bytes.len(),
            needed,
        };
        let mut account_ed25519 = [0u8; 32];
        account_ed25519.copy_from_slice(&head[..32]);
        let mut created = [0u8; 8];
        created.copy_from_slice(&head[32..40]);
        let mut keys = Vec::with_capacity(n);
        for _ in 0..n {
            let from = r.array::<8>().ok_or_else(|| truncated.clone())?;
            let until = r.array::<8>().ok_or_else(|| truncated.clone())?;
            let public_key = r.array::<XWING_PUBLIC_KEY_LEN>().ok_or_else(|| truncated.clone())?;
            keys.push(PublishedKey::new(
                u64::from_be_bytes(from),
                u64::from_be_bytes(until),
                public_key,
            ));
        }
        let signature = r.array::<SIGNATURE_LEN>().ok_or(truncated)?;
        Ok(Self(Body {
            account_ed25519,
            created_ms: u64::from_be_bytes(created),
            keys,
            signature,
        }))
    }

    /// When it claims to have been created (to choose the newest of several
    /// before verifying).
    pub fn created_ms(&self) -> u64 {
        self.0.created_ms
    }

    /// Checks, in this order: the identity key belongs to `account` (the
    /// Account ID the sender meant), the signature, `created_ms` at most
    /// 60 s after `now_ms`, and the keys (increasing `valid_from_ms`, each
    /// window non-empty and at most 17 days, no key id twice).
    pub fn verify(self, account: &AccountId, now_ms: u64) -> Result<KeyBundle, KeyBundleError> {
        let b = self.0;
        if AccountId::from_ed25519(&b.account_ed25519).ok().as_ref() != Some(account) {
            return Err(KeyBundleError::WrongAccount);
        }
        let msg = signed_bytes(&b.account_ed25519, b.created_ms, &b.keys);
        if !identity::verify(&b.account_ed25519, &msg, &b.signature) {
            return Err(KeyBundleError::BadSignature);
        }
        if b.created_ms > now_ms.saturating_add(MAX_CREATED_AHEAD_MS) {
            return Err(KeyBundleError::CreatedAhead {
                created_ms: b.created_ms,
                now_ms,
            });
        }
        check_keys(&b.keys)?;
        Ok(KeyBundle {
            account: *account,
            body: b,
        })
    }
}

/// The checks on the keys a signer and a verifier both make.
fn check_keys(keys: &[PublishedKey]) -> Result<(), KeyBundleError> {
    if !(1..=MAX_KEYS).contains(&keys.len()) {
        return Err(KeyBundleError::KeyCount(keys.len()));
    }
    let ids: Vec<KeyId> = keys.iter().map(PublishedKey::key_id).collect();
    for (index, key) in keys.iter().enumerate() {
        if index > 0 && keys[index - 1].valid_from_ms >= key.valid_from_ms {
            return Err(KeyBundleError::Unordered { index });
        }
        if key.valid_until_ms <= key.valid_from_ms {
            return Err(KeyBundleError::EmptyWindow {
                index,
                valid_from_ms: key.valid_from_ms,
                valid_until_ms: key.valid_until_ms,
            });
        }
        let window_ms = key.valid_until_ms - key.valid_from_ms;
        if window_ms > MAX_WINDOW_MS {
            return Err(KeyBundleError::WindowTooLong { index, window_ms });
        }
        if let Some(first) = ids[..index].iter().position(|id| *id == ids[index]) {
            return Err(KeyBundleError::DuplicateKeyId { first, index });
        }
    }
    Ok(())
}

/// `"allium-key-bundle-v1" 0x00 ‖` every byte before the signature.
fn signed_bytes(account_ed25519: &[u8; 32], created_ms: u64, keys: &[PublishedKey]) -> Vec<u8> {
    let mut out = Vec::with_capacity(BUNDLE_SIGNING_LABEL.len() + bundle_len(keys.len()));
    out.extend_from_slice(BUNDLE_SIGNING_LABEL);
    write_unsigned(&mut out, account_ed25519, created_ms, keys);
    out
}

/// Appends every byte of the bundle before the signature. `keys` holds at
/// most [`MAX_KEYS`] (checked before any bundle is built or verified).
fn write_unsigned(out: &mut Vec<u8>, account_ed25519: &[u8; 32], created_ms: u64, keys: &[PublishedKey]) {
    out.push(BUNDLE_FORMAT);
    out.extend_from_slice(account_ed25519);
    out.extend_from_slice(&created_ms.to_be_bytes());
    out.push(u8::try_from(keys.len()).unwrap_or(u8::MAX));
    for k in keys {
        out.extend_from_slice(&k.valid_from_ms.to_be_bytes());
        out.extend_from_slice(&k.valid_until_ms.to_be_bytes());
        out.extend_from_slice(&k.public_key);
    }
}

/// Takes fixed-size pieces off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
}
