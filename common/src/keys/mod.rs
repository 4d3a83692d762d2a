//! Account keys for envelope v2 (`docs/envelope-v2.md`): the X-Wing key
//! pairs an account rotates, and the signed bundle in which it publishes
//! their public halves.
//!
//! The key secrets are random, never derived from the recovery phrase: a
//! phrase thief can sign a bundle of its own keys for later messages, but
//! holds no secret that opens what was sent before. The identity key
//! (Ed25519, from the phrase) only vouches for the public keys.
//!
//! A bundle fetched from the network is an [`UnverifiedKeyBundle`] until
//! [`UnverifiedKeyBundle::verify`] checks it against the Account ID the
//! sender meant and the sender's clock; only then is it a [`KeyBundle`] a
//! sender can seal to.

mod account_key;
mod bundle;

#[cfg(test)]
mod tests;

pub use account_key::{AccountKeyPair, KEY_ID_LEN, KeyId, key_id};
pub use bundle::{
    BUNDLE_FORMAT, BUNDLE_SIGNING_LABEL, KeyBundle, KeyBundleError, MAX_CREATED_AHEAD_MS, MAX_KEYS, MAX_WINDOW_MS,
    PUBLISHED_KEY_LEN, PublishedKey, UnverifiedKeyBundle, bundle_len,
};
