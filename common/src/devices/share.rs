//! Key shares: one account key secret sealed to one device.
//!
//! ```text
//! share  = to (32: the device's sign_pk) ‖ key_id (8)
//!        ‖ valid_from_ms (u64) ‖ valid_until_ms (u64) ‖ rotate_at_ms (u64)
//!        ‖ xwing_ciphertext (1,120) ‖ sealed (32 + 16)
//! info   = "allium-key-share-v1" 0x00 ‖ account_id (33) ‖ every byte of the share before `sealed`
//! k      = BLAKE2b-256(key = xwing_shared_secret, info)
//! sealed = XChaCha20-Poly1305-IETF(k, nonce = 24 zero bytes, ad = info, secret (32))
//! ```
//!
//! As in envelope v2, a fresh encapsulation gives a fresh `k`, so the
//! fixed nonce is used once per key. The secret's key id is checked after
//! opening: the secret must derive the public key the share names.

use std::fmt;

use zeroize::Zeroizing;

use crate::identity::AccountId;
use crate::keys::{AccountKeyPair, KEY_ID_LEN, KeyId};
use crate::sodium::{self, AEAD_TAG_LEN, XWING_CIPHERTEXT_LEN, XWING_ENC_SEED_LEN, XwingCiphertext};

use super::DeviceSecret;
use super::record::{DeviceKeys, DeviceRecordError, Reader, account_bytes};

/// Domain label of the share's key derivation.
pub const SHARE_LABEL: &[u8] = b"allium-key-share-v1\0";
/// Bytes before the sealed secret.
const HEAD_LEN: usize = 32 + KEY_ID_LEN + 3 * 8 + XWING_CIPHERTEXT_LEN;
/// Bytes of a share: 1,232.
pub(super) const SHARE_LEN: usize = HEAD_LEN + 32 + AEAD_TAG_LEN;
const NONCE: [u8; sodium::XCHACHA_NONCE_LEN] = [0; sodium::XCHACHA_NONCE_LEN];

/// The times of a shared key, as its maker set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareWindow {
    /// The key's window starts (Unix ms, network time).
    pub valid_from_ms: u64,
    /// The key's window ends.
    pub valid_until_ms: u64,
    /// When the next key is due.
    pub rotate_at_ms: u64,
}

/// One account key secret sealed to one device.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare {
    /// The device it is for (its sign key).
    pub to: [u8; 32],
    /// The key it carries.
    pub key_id: KeyId,
    /// The key's times.
    pub window: ShareWindow,
    ciphertext: XwingCiphertext,
    sealed: [u8; 32 + AEAD_TAG_LEN],
}

impl KeyShare {
    /// Seals `pair`'s secret to `to` for `account`. `kem_seed` is 64 fresh
    /// random bytes: never reuse them.
    pub fn seal(
        account: &AccountId,
        to: &DeviceKeys,
        pair: &AccountKeyPair,
        window: ShareWindow,
        kem_seed: &[u8; XWING_ENC_SEED_LEN],
    ) -> Result<Self, DeviceRecordError> {
        let (ciphertext, shared) =
            sodium::xwing_enc_deterministic(&to.xwing_pk, kem_seed).map_err(|_| DeviceRecordError::RecipientKey)?;
        let mut share = Self {
            to: to.sign_pk,
            key_id: pair.key_id(),
            window,
            ciphertext,
            sealed: [0; 32 + AEAD_TAG_LEN],
        };
        let info = share.info(account);
        let k = Zeroizing::new(sodium::blake2b_keyed::<32>(&shared, &[&info]));
        let sealed = sodium::xchacha_encrypt(&k, &NONCE, pair.secret_key().as_slice(), &info);
        share.sealed = sealed.try_into().map_err(|_| DeviceRecordError::ShareDecrypt)?;
        Ok(share)
    }

    /// Opens the share with this device's keys: the key pair it carries.
    pub fn open(&self, account: &AccountId, me: &DeviceSecret) -> Result<AccountKeyPair, DeviceRecordError> {
        if self.to != me.keys().sign_pk {
            return Err(DeviceRecordError::NotForThisDevice);
        }
        let shared =
            sodium::xwing_dec(&self.ciphertext, me.xwing_secret()).map_err(|_| DeviceRecordError::ShareDecrypt)?;
        let info = self.info(account);
        let k = Zeroizing::new(sodium::blake2b_keyed::<32>(&shared, &[&info]));
        let secret = Zeroizing::new(
            sodium::xchacha_decrypt(&k, &NONCE, &self.sealed, &info).map_err(|_| DeviceRecordError::ShareDecrypt)?,
        );
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            secret
                .as_slice()
                .try_into()
                .map_err(|_| DeviceRecordError::ShareDecrypt)?,
        );
        let pair = AccountKeyPair::from_seed(&seed);
        if pair.key_id() != self.key_id {
            return Err(DeviceRecordError::ShareDecrypt);
        }
        Ok(pair)
    }

    fn head(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD_LEN);
        out.extend_from_slice(&self.to);
        out.extend_from_slice(&self.key_id);
        out.extend_from_slice(&self.window.valid_from_ms.to_be_bytes());
        out.extend_from_slice(&self.window.valid_until_ms.to_be_bytes());
        out.extend_from_slice(&self.window.rotate_at_ms.to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out
    }

    fn info(&self, account: &AccountId) -> Vec<u8> {
        [SHARE_LABEL, &account_bytes(account), &self.head()].concat()
    }

    pub(super) fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head());
        out.extend_from_slice(&self.sealed);
    }

    pub(super) fn read(bytes: &[u8]) -> Result<Self, DeviceRecordError> {
        let mut r = Reader(bytes);
        let share = Self {
            to: r.array()?,
            key_id: r.array()?,
            window: ShareWindow {
                valid_from_ms: u64::from_be_bytes(r.array()?),
                valid_until_ms: u64::from_be_bytes(r.array()?),
                rotate_at_ms: u64::from_be_bytes(r.array()?),
            },
            ciphertext: r.array()?,
            sealed: r.array()?,
        };
        Ok(share)
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("to", &hex::encode(super::device_id(&self.to)))
            .field("key_id", &hex::encode(self.key_id))
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}
