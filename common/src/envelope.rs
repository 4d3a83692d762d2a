//! Envelope v1: Session-compatible sign-then-seal end-to-end encryption.
//!
//! ```text
//! M    = pad(content)                       0x80 then zeros to a multiple of 160
//! SIG  = Ed25519_sign(sender_sk, M ‖ sender_ed_pk ‖ recipient_x25519_pk)
//! data = 0x01 ‖ crypto_box_seal(M ‖ sender_ed_pk ‖ SIG, recipient_x25519_pk)
//! ```
//!
//! The leading version byte lets envelope v2 (forward secrecy, post-quantum
//! KEM) live beside v1 in the same mailbox: a reader dispatches on it and a
//! v1-only reader reports an unknown version instead of failing to decrypt.
//! Signing the recipient's key stops a recipient from re-sealing a signed
//! message to a third party as if it had been sent to them.

use zeroize::Zeroizing;

use crate::content::{Content, ContentError};
use crate::identity::{AccountId, Identity};
use crate::sodium;

/// Version byte of this envelope format.
pub const ENVELOPE_V1: u8 = 0x01;
/// Padding block: padded plaintexts are a multiple of this many bytes.
pub const PAD_BLOCK: usize = 160;
/// Largest envelope the storage RPC accepts (`data` ≤ 76,800 bytes).
pub const MAX_ENVELOPE_LEN: usize = 76_800;
/// Bytes an envelope adds to the padded plaintext: version byte, sealed-box
/// overhead (48), sender Ed25519 key (32) and signature (64).
pub const ENVELOPE_OVERHEAD: usize = 1 + sodium::SEAL_OVERHEAD + 32 + 64;
/// Largest padded plaintext that still fits in [`MAX_ENVELOPE_LEN`].
pub const MAX_PADDED_LEN: usize = (MAX_ENVELOPE_LEN - ENVELOPE_OVERHEAD) / PAD_BLOCK * PAD_BLOCK;
/// Largest content (before padding) an envelope can carry: one byte less
/// than [`MAX_PADDED_LEN`] for the mandatory `0x80` marker.
pub const MAX_CONTENT_LEN: usize = MAX_PADDED_LEN - 1;

/// Why an envelope could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The content is larger than an envelope can carry.
    #[error("message content is {len} bytes; the most an envelope carries is {max}")]
    TooLarge {
        /// Content length in bytes.
        len: usize,
        /// [`MAX_CONTENT_LEN`].
        max: usize,
    },
    /// Empty input.
    #[error("envelope is empty")]
    Empty,
    /// A version byte this code does not read.
    #[error("envelope version {0} is not supported (this build reads version {ENVELOPE_V1})")]
    Version(u8),
    /// Shorter than the smallest possible envelope.
    #[error("envelope is {0} bytes, shorter than any valid envelope")]
    TooShort(usize),
    /// The sealed box did not open: addressed to someone else, or altered.
    #[error("cannot decrypt: the envelope is not addressed to this account or was altered")]
    Decrypt,
    /// The sender's signature does not verify.
    #[error("the sender's signature does not verify: the envelope is forged or altered")]
    BadSignature,
    /// The sender key is not a usable Ed25519 key.
    #[error("the sender's key is not a valid Ed25519 public key")]
    SenderKey,
    /// The recipient's Account ID is a key no one can open boxes for.
    #[error("the recipient's Account ID is not a usable X25519 key")]
    RecipientKey,
    /// The plaintext padding is not `0x80` followed by zeros.
    #[error("the plaintext padding is malformed")]
    Padding,
    /// The decrypted content could not be read.
    #[error("content: {0}")]
    Content(#[from] ContentError),
}

/// A successfully opened envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The sender's Account ID, derived from the key that signed.
    pub sender: AccountId,
    /// The sender's Ed25519 public key.
    pub sender_ed25519: [u8; 32],
    /// The message content.
    pub content: Content,
}

/// Pads `plaintext` with `0x80` then zeros to a multiple of [`PAD_BLOCK`].
pub fn pad(plaintext: &[u8]) -> Vec<u8> {
    let padded_len = (plaintext.len() / PAD_BLOCK + 1) * PAD_BLOCK;
    let mut out = Vec::with_capacity(padded_len);
    out.extend_from_slice(plaintext);
    out.push(0x80);
    out.resize(padded_len, 0);
    out
}

/// Removes [`pad`]'s padding: trailing zeros, then exactly one `0x80`.
pub fn unpad(padded: &[u8]) -> Result<&[u8], EnvelopeError> {
    let end = padded.iter().rposition(|&b| b != 0).ok_or(EnvelopeError::Padding)?;
    if padded[end] != 0x80 {
        return Err(EnvelopeError::Padding);
    }
    Ok(&padded[..end])
}

/// Seals `content` from `sender` to `recipient`. `eph_seed` is 32 random
/// bytes for the sealed box's ephemeral key (fresh for every message).
pub fn seal(
    sender: &Identity,
    recipient: &AccountId,
    content: &Content,
    eph_seed: &[u8; 32],
) -> Result<Vec<u8>, EnvelopeError> {
    seal_bytes(sender, recipient, &content.to_bytes(), eph_seed)
}

/// [`seal`] for content already serialised.
pub fn seal_bytes(
    sender: &Identity,
    recipient: &AccountId,
    content: &[u8],
    eph_seed: &[u8; 32],
) -> Result<Vec<u8>, EnvelopeError> {
    if content.len() > MAX_CONTENT_LEN {
        return Err(EnvelopeError::TooLarge {
            len: content.len(),
            max: MAX_CONTENT_LEN,
        });
    }
    let padded = Zeroizing::new(pad(content));
    let sig = sender.sign(&signed_bytes(&padded, sender.ed25519_pk(), recipient.x25519()));
    let mut inner = Zeroizing::new(Vec::with_capacity(padded.len() + 32 + 64));
    inner.extend_from_slice(&padded);
    inner.extend_from_slice(sender.ed25519_pk());
    inner.extend_from_slice(&sig);
    let sealed =
        sodium::box_seal_with_seed(&inner, recipient.x25519(), eph_seed).map_err(|_| EnvelopeError::RecipientKey)?;
    let mut out = Vec::with_capacity(1 + sealed.len());
    out.push(ENVELOPE_V1);
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens an envelope addressed to `recipient`, verifies the sender's
/// signature and parses the content.
pub fn open(recipient: &Identity, data: &[u8]) -> Result<Opened, EnvelopeError> {
    let (sender_ed25519, padded) = open_padded(recipient, data)?;
    let content = Content::from_bytes(unpad(&padded)?)?;
    let sender = AccountId::from_ed25519(&sender_ed25519).map_err(|_| EnvelopeError::SenderKey)?;
    Ok(Opened {
        sender,
        sender_ed25519,
        content,
    })
}

/// Decrypts and verifies, returning the sender's Ed25519 key and the padded
/// plaintext.
fn open_padded(recipient: &Identity, data: &[u8]) -> Result<([u8; 32], Zeroizing<Vec<u8>>), EnvelopeError> {
    let (&version, sealed) = data.split_first().ok_or(EnvelopeError::Empty)?;
    if version != ENVELOPE_V1 {
        return Err(EnvelopeError::Version(version));
    }
    if data.len() < ENVELOPE_OVERHEAD + PAD_BLOCK {
        return Err(EnvelopeError::TooShort(data.len()));
    }
    let inner = sodium::box_seal_open(sealed, recipient.x25519_pk(), recipient.x25519_sk())
        .map_err(|_| EnvelopeError::Decrypt)?;
    let split_sig = inner.len() - 64;
    let split_key = split_sig - 32;
    let sender_ed25519: [u8; 32] = inner[split_key..split_sig]
        .try_into()
        .map_err(|_| EnvelopeError::TooShort(data.len()))?;
    let sig: [u8; 64] = inner[split_sig..]
        .try_into()
        .map_err(|_| EnvelopeError::TooShort(data.len()))?;
    let padded = Zeroizing::new(inner[..split_key].to_vec());
    let msg = signed_bytes(&padded, &sender_ed25519, recipient.x25519_pk());
    if !sodium::sign_verify_detached(&sig, &msg, &sender_ed25519) {
        return Err(EnvelopeError::BadSignature);
    }
    Ok((sender_ed25519, padded))
}

/// `M ‖ sender_ed_pk ‖ recipient_x25519_pk`, the bytes the sender signs.
fn signed_bytes(padded: &[u8], sender_ed: &[u8; 32], recipient_x: &[u8; 32]) -> Zeroizing<Vec<u8>> {
    let mut msg = Zeroizing::new(Vec::with_capacity(padded.len() + 64));
    msg.extend_from_slice(padded);
    msg.extend_from_slice(sender_ed);
    msg.extend_from_slice(recipient_x);
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity::from_ed25519_seed(&[0xa1; 32])
    }
    fn bob() -> Identity {
        Identity::from_ed25519_seed(&[0xb0; 32])
    }

    #[test]
    fn limits_add_up() {
        assert_eq!(ENVELOPE_OVERHEAD, 145);
        assert_eq!(MAX_PADDED_LEN, 76_640);
        const { assert!(MAX_PADDED_LEN + ENVELOPE_OVERHEAD <= MAX_ENVELOPE_LEN) };
        let biggest = seal_bytes(&alice(), &bob().account_id(), &vec![b'x'; MAX_CONTENT_LEN], &[1; 32]).unwrap();
        assert_eq!(biggest.len(), MAX_PADDED_LEN + ENVELOPE_OVERHEAD);
    }

    #[test]
    fn pad_lengths() {
        assert_eq!(pad(b"").len(), 160);
        assert_eq!(pad(&[1; 159]).len(), 160);
        assert_eq!(pad(&[1; 160]).len(), 320);
        assert_eq!(unpad(&pad(b"ab\0")), Ok(&b"ab\0"[..]));
        assert_eq!(unpad(&[0; 160]), Err(EnvelopeError::Padding));
        assert_eq!(unpad(&[1, 0, 0]), Err(EnvelopeError::Padding));
    }

    #[test]
    fn seal_then_open() {
        let content = Content::text("hello bob", 1_700_000_000_000);
        let data = seal(&alice(), &bob().account_id(), &content, &[7; 32]).unwrap();
        let opened = open(&bob(), &data).unwrap();
        assert_eq!(opened.sender, alice().account_id());
        assert_eq!(opened.content, content);
    }

    #[test]
    fn wrong_recipient_cannot_open() {
        let data = seal(&alice(), &bob().account_id(), &Content::text("x", 1), &[7; 32]).unwrap();
        assert_eq!(open(&alice(), &data), Err(EnvelopeError::Decrypt));
    }

    #[test]
    fn too_large_is_refused() {
        let r = seal_bytes(&alice(), &bob().account_id(), &vec![0; MAX_CONTENT_LEN + 1], &[7; 32]);
        assert_eq!(
            r,
            Err(EnvelopeError::TooLarge {
                len: MAX_CONTENT_LEN + 1,
                max: MAX_CONTENT_LEN
            })
        );
    }

    #[test]
    fn forged_sender_is_refused() {
        // Mallory seals a box claiming Alice's key but signs with her own.
        let mallory = Identity::from_ed25519_seed(&[0x66; 32]);
        let padded = pad(&Content::text("trust me", 1).to_bytes());
        let sig = mallory.sign(&signed_bytes(&padded, alice().ed25519_pk(), bob().x25519_pk()));
        let mut inner = padded.clone();
        inner.extend_from_slice(alice().ed25519_pk());
        inner.extend_from_slice(&sig);
        let mut data = vec![ENVELOPE_V1];
        data.extend(sodium::box_seal_with_seed(&inner, bob().x25519_pk(), &[3; 32]).unwrap());
        assert_eq!(open(&bob(), &data), Err(EnvelopeError::BadSignature));
    }

    #[test]
    fn resealed_to_third_party_is_refused() {
        // Bob opens Alice's message and re-seals it, unchanged, to Carol.
        let carol = Identity::from_ed25519_seed(&[0xc0; 32]);
        let data = seal(&alice(), &bob().account_id(), &Content::text("for bob", 1), &[7; 32]).unwrap();
        let inner = sodium::box_seal_open(&data[1..], bob().x25519_pk(), bob().x25519_sk()).unwrap();
        let mut forwarded = vec![ENVELOPE_V1];
        forwarded.extend(sodium::box_seal_with_seed(&inner, carol.x25519_pk(), &[4; 32]).unwrap());
        assert_eq!(open(&carol, &forwarded), Err(EnvelopeError::BadSignature));
    }

    #[test]
    fn version_and_length_errors() {
        assert_eq!(open(&bob(), &[]), Err(EnvelopeError::Empty));
        assert_eq!(open(&bob(), &[2, 0, 0]), Err(EnvelopeError::Version(2)));
        assert_eq!(open(&bob(), &[1; 100]), Err(EnvelopeError::TooShort(100)));
    }
}
