//! Envelope v2: sealed to a rotating X-Wing account key, for forward
//! secrecy and protection against a future quantum computer
//! (`docs/envelope-v2.md`).
//!
//! ```text
//! header = 0x02 ‖ key_id (8) ‖ xwing_ciphertext (1,120)
//! k      = BLAKE2b-256(key = xwing_shared_secret, "allium-envelope-v2" 0x00 ‖ header)
//! P      = pad(content)                 as v1: 0x80, then zeros to a multiple of 160
//! SIG    = Ed25519(sender, "allium-envelope-v2" 0x00 ‖ recipient_account_id (33) ‖ header ‖ P)
//! data   = header ‖ XChaCha20-Poly1305-IETF(k, nonce = 24 zero bytes, ad = header,
//!                                           sender_ed25519_pk (32) ‖ SIG (64) ‖ P)
//! ```
//!
//! Every message has its own encapsulation, hence its own `k`, so the fixed
//! nonce never repeats under one key — as long as the caller's encapsulation
//! seed is fresh random bytes for every message. The sender is known only
//! inside the encryption, and its signature covers the recipient's Account
//! ID, so a recipient cannot pass a signed message on to a third party as
//! if it had been sent to them. The padding and the [`Opened`] result are
//! v1's.

use zeroize::Zeroizing;

use crate::content::{Content, ContentError};
use crate::envelope::{MAX_ENVELOPE_LEN, Opened, PAD_BLOCK, pad, unpad};
use crate::identity::{ACCOUNT_PREFIX, AccountId, Identity};
use crate::keys::{KEY_ID_LEN, KeyId, PublishedKey};
use crate::sodium::{self, AEAD_TAG_LEN, Secret32, XWING_CIPHERTEXT_LEN, XWING_ENC_SEED_LEN, XwingCiphertext};

/// Version byte of this envelope format.
pub const ENVELOPE_V2: u8 = 0x02;
/// Domain label of both the key derivation and the sender's signature.
pub const LABEL: &[u8] = b"allium-envelope-v2\0";
/// Bytes of the header: version, key id, X-Wing ciphertext.
pub const HEADER_LEN: usize = 1 + KEY_ID_LEN + XWING_CIPHERTEXT_LEN;
/// Bytes an envelope adds to the padded content: the header, the AEAD tag,
/// the sender's Ed25519 key (32) and signature (64). 1,241.
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + AEAD_TAG_LEN + 32 + 64;
/// Largest padded content that still fits in [`MAX_ENVELOPE_LEN`]: 75,520.
pub const MAX_PADDED_LEN: usize = (MAX_ENVELOPE_LEN - ENVELOPE_OVERHEAD) / PAD_BLOCK * PAD_BLOCK;
/// Largest content (before padding): one byte less than [`MAX_PADDED_LEN`]
/// for the mandatory `0x80` marker. 75,519.
pub const MAX_CONTENT_LEN: usize = MAX_PADDED_LEN - 1;
/// The all-zero nonce: safe because every `k` is used once.
const NONCE: [u8; sodium::XCHACHA_NONCE_LEN] = [0; sodium::XCHACHA_NONCE_LEN];

/// Why an envelope v2 could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeV2Error {
    /// The content is larger than an envelope can carry.
    #[error("message content is {len} bytes; the most an envelope v2 carries is {max}")]
    TooLarge {
        /// Content length in bytes.
        len: usize,
        /// [`MAX_CONTENT_LEN`].
        max: usize,
    },
    /// The recipient's published key cannot be encapsulated to.
    #[error("the recipient's published key is not a usable X-Wing public key")]
    RecipientKey,
    /// Empty input.
    #[error("envelope is empty")]
    Empty,
    /// A version byte other than 2 (1 is envelope v1: open it with v1).
    #[error("envelope version {0} is not read here (this reads version {ENVELOPE_V2})")]
    Version(u8),
    /// Shorter than the smallest possible envelope v2.
    #[error("envelope is {0} bytes, shorter than any valid envelope v2")]
    TooShort(usize),
    /// The key id names no key this device holds.
    #[error("sealed to a key this device does not have (key id {})", hex::encode(.0))]
    UnknownKey(KeyId),
    /// Decapsulation or authenticated decryption failed.
    #[error("cannot decrypt: the envelope was altered or is not for this key")]
    Decrypt,
    /// The sender's signature does not verify for this account.
    #[error("the sender's signature does not verify: the envelope is forged, altered, or addressed to another account")]
    BadSignature,
    /// The sender key is not a usable Ed25519 key.
    #[error("the sender's key is not a valid Ed25519 public key")]
    SenderKey,
    /// The padded content is not content, `0x80`, zeros.
    #[error("the plaintext padding is malformed")]
    Padding,
    /// The decrypted content could not be read.
    #[error("content: {0}")]
    Content(#[from] ContentError),
}

/// Seals `content` from `sender` to `recipient`'s published `key` (the
/// bundle's current key). `kem_seed` is 64 fresh random bytes for the
/// X-Wing encapsulation: never reuse them.
pub fn seal(
    sender: &Identity,
    recipient: &AccountId,
    key: &PublishedKey,
    content: &Content,
    kem_seed: &[u8; XWING_ENC_SEED_LEN],
) -> Result<Vec<u8>, EnvelopeV2Error> {
    seal_bytes(sender, recipient, key, &content.to_bytes(), kem_seed)
}

/// [`seal`] for content already serialised.
pub fn seal_bytes(
    sender: &Identity,
    recipient: &AccountId,
    key: &PublishedKey,
    content: &[u8],
    kem_seed: &[u8; XWING_ENC_SEED_LEN],
) -> Result<Vec<u8>, EnvelopeV2Error> {
    if content.len() > MAX_CONTENT_LEN {
        return Err(EnvelopeV2Error::TooLarge {
            len: content.len(),
            max: MAX_CONTENT_LEN,
        });
    }
    let (ciphertext, shared) =
        sodium::xwing_enc_deterministic(&key.public_key, kem_seed).map_err(|_| EnvelopeV2Error::RecipientKey)?;
    let header = header(&key.key_id(), &ciphertext);
    let k = message_key(&shared, &header);
    let padded = Zeroizing::new(pad(content));
    let sig = sender.sign(&signed_bytes(recipient, &header, &padded));
    let mut inner = Zeroizing::new(Vec::with_capacity(32 + 64 + padded.len()));
    inner.extend_from_slice(sender.ed25519_pk());
    inner.extend_from_slice(&sig);
    inner.extend_from_slice(&padded);
    let body = sodium::xchacha_encrypt(&k, &NONCE, &inner, &header);
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&body);
    Ok(out)
}

/// The key id an envelope v2 is sealed to, read without opening it (to
/// fetch that secret, or to tell that a message needs a key this device
/// has already deleted). `None` for anything shorter than a header or of
/// another version.
pub fn key_id_of(data: &[u8]) -> Option<KeyId> {
    match data.split_first_chunk::<{ 1 + KEY_ID_LEN }>() {
        Some(([ENVELOPE_V2, id @ ..], _)) if data.len() >= HEADER_LEN => Some(*id),
        _ => None,
    }
}

/// Opens an envelope addressed to `identity`'s account. `secret_for`
/// returns the X-Wing secret key of a key id, if the device still holds
/// it. Checks, in order: the version, the length, the key id, the
/// decapsulation and decryption, the sender's signature against this
/// account's ID, the padding, the content.
pub fn open(
    identity: &Identity,
    secret_for: impl Fn(&KeyId) -> Option<Secret32>,
    data: &[u8],
) -> Result<Opened, EnvelopeV2Error> {
    let (&version, _) = data.split_first().ok_or(EnvelopeV2Error::Empty)?;
    if version != ENVELOPE_V2 {
        return Err(EnvelopeV2Error::Version(version));
    }
    if data.len() < ENVELOPE_OVERHEAD + PAD_BLOCK {
        return Err(EnvelopeV2Error::TooShort(data.len()));
    }
    let too_short = EnvelopeV2Error::TooShort(data.len());
    let (header, body) = data.split_at_checked(HEADER_LEN).ok_or(too_short.clone())?;
    let (_, rest) = header.split_first_chunk::<1>().ok_or(too_short.clone())?;
    let (key_id, ciphertext) = rest.split_first_chunk::<KEY_ID_LEN>().ok_or(too_short.clone())?;
    let ciphertext: &XwingCiphertext = ciphertext.try_into().map_err(|_| too_short.clone())?;
    let secret = secret_for(key_id).ok_or(EnvelopeV2Error::UnknownKey(*key_id))?;
    let shared = sodium::xwing_dec(ciphertext, &secret).map_err(|_| EnvelopeV2Error::Decrypt)?;
    let k = message_key(&shared, header);
    let inner = sodium::xchacha_decrypt(&k, &NONCE, body, header).map_err(|_| EnvelopeV2Error::Decrypt)?;
    let (sender_ed25519, rest) = inner.split_first_chunk::<32>().ok_or(too_short.clone())?;
    let (sig, padded) = rest.split_first_chunk::<64>().ok_or(too_short)?;
    let msg = signed_bytes(&identity.account_id(), header, padded);
    if !sodium::sign_verify_detached(sig, &msg, sender_ed25519) {
        return Err(EnvelopeV2Error::BadSignature);
    }
    let content = Content::from_bytes(unpad(padded).map_err(|_| EnvelopeV2Error::Padding)?)?;
    let sender = AccountId::from_ed25519(sender_ed25519).map_err(|_| EnvelopeV2Error::SenderKey)?;
    Ok(Opened {
        sender,
        sender_ed25519: *sender_ed25519,
        content,
    })
}

/// `0x02 ‖ key_id ‖ ciphertext`.
fn header(key_id: &KeyId, ciphertext: &XwingCiphertext) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.push(ENVELOPE_V2);
    out.extend_from_slice(key_id);
    out.extend_from_slice(ciphertext);
    out
}

/// `k = BLAKE2b-256(key = shared secret, LABEL ‖ header)`.
fn message_key(shared: &Secret32, header: &[u8]) -> Secret32 {
    Zeroizing::new(sodium::blake2b_keyed::<32>(shared, &[LABEL, header]))
}

/// `LABEL ‖ 0x05 ‖ recipient x25519 ‖ header ‖ P`, what the sender signs.
fn signed_bytes(recipient: &AccountId, header: &[u8], padded: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut msg = Zeroizing::new(Vec::with_capacity(LABEL.len() + 33 + header.len() + padded.len()));
    msg.extend_from_slice(LABEL);
    msg.push(ACCOUNT_PREFIX);
    msg.extend_from_slice(recipient.x25519());
    msg.extend_from_slice(header);
    msg.extend_from_slice(padded);
    msg
}

#[cfg(test)]
mod tests;
