//! Device records: link requests, device lists and key shares, each
//! signed by a device key.
//!
//! ```text
//! keys    = sign_pk (32) ‖ xwing_pk (1,216) ‖ created_ms (u64) ‖ name_len (u8) ‖ name (≤ 32 bytes, UTF-8)
//! record  = 0x01 ‖ kind (u8) ‖ body ‖ signer_pk (32) ‖ signature (64)
//! signed  = "allium-device-record-v1" 0x00 ‖ account_id (33) ‖ 0x01 ‖ kind ‖ body ‖ signer_pk
//! kind 1  link request   body = keys                          signer = the keys' sign_pk
//! kind 2  device list    body = created_ms (u64) ‖ n (u8, 1–16) ‖ n × keys      signer = one of them
//! kind 3  key share      body = share (see `share.rs`)         signer = the sharing device
//! kind 4  removal        body = device_pk (32) ‖ removed_ms (u64)     signer = any device (itself too)
//! ```
//!
//! Integers are big-endian. The Account ID in the signed bytes binds a
//! record to one account: it cannot be replayed into another's swarm.

use std::fmt;

use crate::identity::{ACCOUNT_PREFIX, AccountId};
use crate::sodium::{self, XWING_PUBLIC_KEY_LEN, XwingPublicKey};

use super::DeviceSecret;
use super::share::{KeyShare, SHARE_LEN};

/// Format byte of a record.
pub const RECORD_FORMAT: u8 = 0x01;
/// Prefix of the bytes a device key signs.
pub const RECORD_LABEL: &[u8] = b"allium-device-record-v1\0";
/// Longest device name, in bytes.
pub const MAX_NAME_LEN: usize = 32;
/// Most devices on one list.
pub const MAX_DEVICES: usize = 16;

const KIND_LINK_REQUEST: u8 = 1;
const KIND_LIST: u8 = 2;
const KIND_SHARE: u8 = 3;
const KIND_REMOVAL: u8 = 4;
const LINK_CODE_LABEL: &[u8] = b"allium-link-code-v1\0";

/// Why a record could not be read, verified or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceRecordError {
    /// A format byte this code does not read.
    #[error("device record format {0} is not supported (this build reads format {RECORD_FORMAT})")]
    Format(u8),
    /// A kind this code does not read.
    #[error("device record kind {0} is unknown")]
    Kind(u8),
    /// Fewer bytes than the record needs.
    #[error("the device record is truncated")]
    Truncated,
    /// Bytes after the signature.
    #[error("the device record has {0} bytes after its signature")]
    TrailingBytes(usize),
    /// A name longer than [`MAX_NAME_LEN`] or not UTF-8.
    #[error("a device name must be UTF-8 of at most {MAX_NAME_LEN} bytes")]
    Name,
    /// No devices, or more than [`MAX_DEVICES`], on a list.
    #[error("a device list holds 1 to {MAX_DEVICES} devices, this one {0}")]
    DeviceCount(usize),
    /// One device twice on a list.
    #[error("a device list names one device twice")]
    Duplicate,
    /// A list signed by a device not on it, or a link request signed by
    /// another device than the one it asks for.
    #[error("the record is signed by a device it does not name")]
    Signer,
    /// The signature does not verify.
    #[error("the device record's signature does not verify: forged, altered, or another account's")]
    BadSignature,
    /// A share for another device.
    #[error("the key share is for another device")]
    NotForThisDevice,
    /// A share that does not decrypt, or whose secret is not the key it
    /// names.
    #[error("the key share does not open: altered, or not sealed to this device")]
    ShareDecrypt,
    /// The recipient device's key cannot be encapsulated to.
    #[error("the device's X-Wing key is not usable")]
    RecipientKey,
}

/// A device's public keys and name.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceKeys {
    /// The device key (Ed25519): signs what the device writes.
    pub sign_pk: [u8; 32],
    /// The X-Wing key shares are sealed to.
    pub xwing_pk: XwingPublicKey,
    /// When the device made its keys (Unix ms, its clock).
    pub created_ms: u64,
    name: String,
}

impl DeviceKeys {
    /// Keys with `name` cut to [`MAX_NAME_LEN`] bytes on a character
    /// boundary.
    pub fn new(sign_pk: [u8; 32], xwing_pk: XwingPublicKey, name: &str, created_ms: u64) -> Self {
        let mut end = name.len().min(MAX_NAME_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        Self {
            sign_pk,
            xwing_pk,
            created_ms,
            name: name[..end].to_owned(),
        }
    }

    /// The name the device gave itself (as written by it: display escaped).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's short id.
    pub fn id(&self) -> [u8; 8] {
        device_id(&self.sign_pk)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.sign_pk);
        out.extend_from_slice(&self.xwing_pk);
        out.extend_from_slice(&self.created_ms.to_be_bytes());
        // The constructor and the decoder bound the name to 32 bytes.
        out.push(self.name.len() as u8);
        out.extend_from_slice(self.name.as_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DeviceRecordError> {
        let sign_pk = r.array::<32>()?;
        let xwing_pk = r.array::<XWING_PUBLIC_KEY_LEN>()?;
        let created_ms = u64::from_be_bytes(r.array()?);
        let [len] = r.array::<1>()?;
        if usize::from(len) > MAX_NAME_LEN {
            return Err(DeviceRecordError::Name);
        }
        let name = std::str::from_utf8(r.take(usize::from(len))?).map_err(|_| DeviceRecordError::Name)?;
        Ok(Self {
            sign_pk,
            xwing_pk,
            created_ms,
            name: name.to_owned(),
        })
    }
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("id", &hex::encode(self.id()))
            .field("name", &self.name)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// A device's short id: `BLAKE2b-64(sign_pk)`, shown as 16 hex digits.
pub fn device_id(sign_pk: &[u8; 32]) -> [u8; 8] {
    sodium::blake2b_64(sign_pk)
}

/// The short authentication string of a link request: six digits that the
/// new device and the approving device both show, computed from the
/// account and the new device's keys, so that a request a phrase thief
/// wrote shows other digits than the one the user's own device shows.
/// `BLAKE2b-64("allium-link-code-v1" 0x00 ‖ account_id ‖ sign_pk ‖ xwing_pk)`
/// read as a big-endian integer, modulo 1,000,000.
pub fn link_code(account: &AccountId, device: &DeviceKeys) -> u32 {
    let digest = sodium::blake2b_64(
        &[
            LINK_CODE_LABEL,
            &account_bytes(account),
            &device.sign_pk,
            &device.xwing_pk,
        ]
        .concat(),
    );
    // Below 1e6, so it fits: the bias of the modulus is below 2^-44.
    (u64::from_be_bytes(digest) % 1_000_000) as u32
}

/// What a device record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRecord {
    /// A new device asks to be linked.
    LinkRequest(DeviceKeys),
    /// The devices the signer vouches for (itself among them).
    List {
        /// When the list was written (Unix ms, the writer's clock).
        created_ms: u64,
        /// The devices.
        devices: Vec<DeviceKeys>,
    },
    /// An account key secret for one device.
    Share(KeyShare),
    /// A device taken off the account: those who trust the signer stop
    /// trusting it and sharing with it, for good.
    Removal {
        /// The removed device's key.
        device: [u8; 32],
        /// When it was removed (Unix ms, the remover's clock).
        removed_ms: u64,
    },
}

/// A record whose signature verified, with the device key that signed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRecord {
    /// The signing device key.
    pub signer: [u8; 32],
    /// The record.
    pub record: DeviceRecord,
}

/// A record as read from the network: its shape checked, not its
/// signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnverifiedRecord {
    record: DeviceRecord,
    unsigned: Vec<u8>,
    signer: [u8; 32],
    signature: [u8; 64],
}

impl DeviceRecord {
    /// The record signed by `device` for `account`, encoded. Refuses a
    /// link request for another device, and a list that does not name the
    /// signer, names a device twice, or holds too many.
    pub fn sign(&self, device: &DeviceSecret, account: &AccountId) -> Result<Vec<u8>, DeviceRecordError> {
        let signer = device.keys().sign_pk;
        self.check_signer(&signer)?;
        let mut out = self.unsigned(&signer);
        let sig = device.signer().sign(&signed_bytes(account, &out));
        out.extend_from_slice(&sig);
        Ok(out)
    }

    fn unsigned(&self, signer: &[u8; 32]) -> Vec<u8> {
        let mut out = vec![RECORD_FORMAT];
        match self {
            Self::LinkRequest(keys) => {
                out.push(KIND_LINK_REQUEST);
                keys.write(&mut out);
            }
            Self::List { created_ms, devices } => {
                out.push(KIND_LIST);
                out.extend_from_slice(&created_ms.to_be_bytes());
                out.push(devices.len() as u8);
                for d in devices {
                    d.write(&mut out);
                }
            }
            Self::Share(share) => {
                out.push(KIND_SHARE);
                share.write(&mut out);
            }
            Self::Removal { device, removed_ms } => {
                out.push(KIND_REMOVAL);
                out.extend_from_slice(device);
                out.extend_from_slice(&removed_ms.to_be_bytes());
            }
        }
        out.extend_from_slice(signer);
        out
    }

    fn check_signer(&self, signer: &[u8; 32]) -> Result<(), DeviceRecordError> {
        match self {
            Self::LinkRequest(keys) if keys.sign_pk != *signer => Err(DeviceRecordError::Signer),
            Self::List { devices, .. } => {
                if devices.is_empty() || devices.len() > MAX_DEVICES {
                    return Err(DeviceRecordError::DeviceCount(devices.len()));
                }
                for (i, d) in devices.iter().enumerate() {
                    if devices[..i].iter().any(|e| e.sign_pk == d.sign_pk) {
                        return Err(DeviceRecordError::Duplicate);
                    }
                }
                if devices.iter().any(|d| d.sign_pk == *signer) {
                    Ok(())
                } else {
                    Err(DeviceRecordError::Signer)
                }
            }
            _ => Ok(()),
        }
    }
}

impl UnverifiedRecord {
    /// Reads the shape of a record: format, kind, body, signer, signature,
    /// nothing after. The name, list and signer rules are checked here too
    /// (they need no key).
    pub fn decode(bytes: &[u8]) -> Result<Self, DeviceRecordError> {
        let mut r = Reader(bytes);
        let [format, kind] = r.array::<2>()?;
        if format != RECORD_FORMAT {
            return Err(DeviceRecordError::Format(format));
        }
        let record = match kind {
            KIND_LINK_REQUEST => DeviceRecord::LinkRequest(DeviceKeys::read(&mut r)?),
            KIND_LIST => {
                let created_ms = u64::from_be_bytes(r.array()?);
                let [n] = r.array::<1>()?;
                if n == 0 || usize::from(n) > MAX_DEVICES {
                    return Err(DeviceRecordError::DeviceCount(usize::from(n)));
                }
                let devices = (0..n).map(|_| DeviceKeys::read(&mut r)).collect::<Result<_, _>>()?;
                DeviceRecord::List { created_ms, devices }
            }
            KIND_SHARE => DeviceRecord::Share(KeyShare::read(r.take(SHARE_LEN)?)?),
            KIND_REMOVAL => DeviceRecord::Removal {
                device: r.array()?,
                removed_ms: u64::from_be_bytes(r.array()?),
            },
            other => return Err(DeviceRecordError::Kind(other)),
        };
        let signer = r.array::<32>()?;
        let unsigned_len = bytes.len() - r.0.len();
        let signature = r.array::<64>()?;
        if !r.0.is_empty() {
            return Err(DeviceRecordError::TrailingBytes(r.0.len()));
        }
        record.check_signer(&signer)?;
        Ok(Self {
            record,
            unsigned: bytes[..unsigned_len].to_vec(),
            signer,
            signature,
        })
    }

    /// The record's bytes, as decoded (the signed part, then the
    /// signature).
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.unsigned.as_slice(), &self.signature].concat()
    }

    /// What the record says (not yet trusted).
    pub fn record(&self) -> &DeviceRecord {
        &self.record
    }

    /// The device key that claims to have signed it.
    pub fn signer(&self) -> &[u8; 32] {
        &self.signer
    }

    /// Checks the signature for `account` (the account whose swarm the
    /// record was read from).
    pub fn verify(self, account: &AccountId) -> Result<VerifiedRecord, DeviceRecordError> {
        if !sodium::sign_verify_detached(&self.signature, &signed_bytes(account, &self.unsigned), &self.signer) {
            return Err(DeviceRecordError::BadSignature);
        }
        Ok(VerifiedRecord {
            signer: self.signer,
            record: self.record,
        })
    }
}

/// `0x05 ‖ x25519`: the 33 bytes of an Account ID.
pub(super) fn account_bytes(account: &AccountId) -> [u8; 33] {
    let mut out = [ACCOUNT_PREFIX; 33];
    out[1..].copy_from_slice(account.x25519());
    out
}

fn signed_bytes(account: &AccountId, unsigned: &[u8]) -> Vec<u8> {
    [RECORD_LABEL, &account_bytes(account), unsigned].concat()
}

/// A cursor over the bytes of a record.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    pub(super) fn take(&mut self, n: usize) -> Result<&[u8], DeviceRecordError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(DeviceRecordError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Result<[u8; N], DeviceRecordError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(DeviceRecordError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }
}
