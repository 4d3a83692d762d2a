//! Devices of one account and how they share the account's envelope v2
//! key secrets (`docs/devices.md`).
//!
//! Every device makes its own keys at first use, at random: an Ed25519
//! *device key* that signs what the device writes, and an X-Wing key that
//! key shares are sealed to. Neither comes from the recovery phrase, so a
//! phrase alone can neither sign as a device nor open a share.
//!
//! What devices write lives in namespace −22 of the account's swarm as
//! signed [`DeviceRecord`]s (the client seals each record again with the
//! account's state key, so nodes see only ciphertext):
//!
//! - a **link request**: a new device's public keys, signed by itself;
//! - a **device list**: the devices an existing device vouches for,
//!   signed by one of them;
//! - a **key share**: one account key secret sealed to one device's
//!   X-Wing key, signed by the device that shares it;
//! - a **removal**: a device taken off the account, signed by a device
//!   that stays (or by the removed device itself).
//!
//! A record read from the network is an [`UnverifiedRecord`] until
//! [`UnverifiedRecord::verify`] checks its signature for the account it
//! was read from. Which signers to trust is the client's decision: it
//! trusts the devices it approved, the one that approved it, and those on
//! lists they signed.

mod record;
mod share;

#[cfg(test)]
mod tests;

pub use record::{
    DeviceKeys, DeviceRecord, DeviceRecordError, MAX_DEVICES, MAX_NAME_LEN, RECORD_FORMAT, RECORD_LABEL,
    UnverifiedRecord, VerifiedRecord, device_id, link_code,
};
pub use share::{KeyShare, SHARE_LABEL, ShareWindow};

use crate::identity::Identity;
use crate::sodium::{self, Secret32, XWING_SEED_LEN};

/// This device's own keys: the device key (Ed25519) and the X-Wing key
/// shares are sealed to, both from random seeds the device keeps.
pub struct DeviceSecret {
    signer: Identity,
    xwing_seed: Secret32,
    keys: DeviceKeys,
}

impl DeviceSecret {
    /// Fresh random keys, named `name` (cut to [`MAX_NAME_LEN`] bytes),
    /// made at `created_ms`.
    pub fn generate(name: &str, created_ms: u64) -> Self {
        let sign_seed = sodium::random_array::<32>();
        let xwing_seed = sodium::random_array::<XWING_SEED_LEN>();
        Self::from_seeds(&sign_seed, &xwing_seed, name, created_ms)
    }

    /// The keys of two stored seeds.
    pub fn from_seeds(sign_seed: &[u8; 32], xwing_seed: &[u8; XWING_SEED_LEN], name: &str, created_ms: u64) -> Self {
        let signer = Identity::from_ed25519_seed(sign_seed);
        let (xwing_pk, xwing_sk) = sodium::xwing_seed_keypair(xwing_seed);
        let keys = DeviceKeys::new(*signer.ed25519_pk(), xwing_pk, name, created_ms);
        Self {
            signer,
            xwing_seed: xwing_sk,
            keys,
        }
    }

    /// The public keys, as written in link requests and device lists.
    pub fn keys(&self) -> &DeviceKeys {
        &self.keys
    }

    /// The Ed25519 seed of the device key (to store it).
    pub fn sign_seed(&self) -> &[u8; 32] {
        self.signer.ed25519_seed()
    }

    /// The X-Wing secret key (its seed: to store it, and to open shares).
    pub fn xwing_secret(&self) -> &Secret32 {
        &self.xwing_seed
    }

    pub(crate) fn signer(&self) -> &Identity {
        &self.signer
    }
}

impl std::fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSecret")
            .field("device", &hex::encode(device_id(&self.keys.sign_pk)))
            .finish_non_exhaustive()
    }
}
