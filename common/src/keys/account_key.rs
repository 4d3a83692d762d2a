//! One X-Wing key pair of an account, and the key id that names it.

use std::fmt;

use crate::sodium::{self, Secret32, XWING_PUBLIC_KEY_LEN, XWING_SEED_LEN, XwingPublicKey};

use super::bundle::PublishedKey;

/// Length of a key id.
pub const KEY_ID_LEN: usize = 8;
/// The name of an X-Wing public key in bundles and envelope headers.
pub type KeyId = [u8; KEY_ID_LEN];

/// `BLAKE2b-64(pk)`: unkeyed BLAKE2b with an 8-byte digest. Eight bytes
/// are enough to pick among the few keys one account holds; nothing relies
/// on the id being unforgeable, because a message sealed to the wrong key
/// does not decrypt.
pub fn key_id(pk: &XwingPublicKey) -> KeyId {
    sodium::blake2b_64(pk)
}

/// An X-Wing key pair of the account: the secret half stays on the
/// account's devices, in memory wiped on drop, and is deleted (dropped)
/// 16 days after the key stopped being current.
pub struct AccountKeyPair {
    public_key: XwingPublicKey,
    secret_key: Secret32,
}

impl AccountKeyPair {
    /// A fresh random key pair, drawn by libsodium: what a device makes when
    /// it rotates. (Everything else in this crate takes its randomness as an
    /// argument; a key pair is the one place where the secret never needs
    /// to exist outside the key.)
    pub fn generate() -> Self {
        let (public_key, secret_key) = sodium::xwing_keypair();
        Self { public_key, secret_key }
    }

    /// The key pair of a 32-byte seed: for vectors and tests, and for
    /// reloading a stored key (the X-Wing secret key is its seed).
    pub fn from_seed(seed: &[u8; XWING_SEED_LEN]) -> Self {
        let (public_key, secret_key) = sodium::xwing_seed_keypair(seed);
        Self { public_key, secret_key }
    }

    /// The public key, as published in a bundle.
    pub fn public_key(&self) -> &[u8; XWING_PUBLIC_KEY_LEN] {
        &self.public_key
    }

    /// The secret key (its seed), for decapsulation and for storing it.
    pub fn secret_key(&self) -> &Secret32 {
        &self.secret_key
    }

    /// The id of the public key.
    pub fn key_id(&self) -> KeyId {
        key_id(&self.public_key)
    }

    /// The public key with the window in which senders may seal to it.
    pub fn publish(&self, valid_from_ms: u64, valid_until_ms: u64) -> PublishedKey {
        PublishedKey::new(valid_from_ms, valid_until_ms, self.public_key)
    }
}

impl fmt::Debug for AccountKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountKeyPair")
            .field("key_id", &hex::encode(self.key_id()))
            .finish_non_exhaustive()
    }
}
