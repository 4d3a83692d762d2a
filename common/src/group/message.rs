//! The group message: content sealed under one generation's group key and
//! signed by its sender inside the encryption.
//!
//! ```text
//! group message = 0x01 ‖ generation (u32) ‖ nonce (24)
//!               ‖ XChaCha20-Poly1305-IETF(key, nonce, ad = group_id ‖ generation,
//!                                         sender_ed25519_pk (32) ‖ SIG (64) ‖ pad(content))
//! SIG           = Ed25519(sender, "allium-group-message-v1" 0x00 ‖ group_id ‖ generation ‖ pad(content))
//! ```
//!
//! The key serves many messages, so the nonce is random (24 bytes: no
//! collision to fear). The signature binds the group and the generation:
//! a member cannot replay a signed message into another group.

use zeroize::Zeroizing;

use crate::content::{Content, ContentError};
use crate::envelope::{MAX_ENVELOPE_LEN, PAD_BLOCK, pad, unpad};
use crate::identity::{AccountId, Identity};
use crate::sodium::{self, AEAD_TAG_LEN, XCHACHA_NONCE_LEN};

use super::GroupId;
use super::keys::ad;

/// Format byte.
pub const MESSAGE_FORMAT: u8 = 0x01;
/// Domain label of the sender's signature.
pub const MESSAGE_LABEL: &[u8] = b"allium-group-message-v1\0";
/// Bytes a group message adds to the padded content: 141.
pub const MESSAGE_OVERHEAD: usize = 1 + 4 + XCHACHA_NONCE_LEN + AEAD_TAG_LEN + 32 + 64;
/// Largest content: the padded content must fit one stored message.
pub const MAX_CONTENT_LEN: usize = (MAX_ENVELOPE_LEN - MESSAGE_OVERHEAD) / PAD_BLOCK * PAD_BLOCK - 1;

/// Why a group message could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GroupMessageError {
    /// Content larger than a message carries.
    #[error("the content is {0} bytes; a group message carries at most {MAX_CONTENT_LEN}")]
    TooLarge(usize),
    /// Not the shape of a group message.
    #[error("the group message is malformed")]
    Malformed,
    /// A generation this member holds no key for.
    #[error("sealed under generation {0}, whose key this member does not hold")]
    UnknownGeneration(u32),
    /// Altered, or under another key.
    #[error("cannot decrypt: altered, or not this group's key")]
    Decrypt,
    /// The sender's signature does not verify.
    #[error("the sender's signature does not verify")]
    BadSignature,
    /// Bad padding.
    #[error("the plaintext padding is malformed")]
    Padding,
    /// The content could not be read.
    #[error("content: {0}")]
    Content(#[from] ContentError),
}

/// An opened group message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupOpened {
    /// The sender's Account ID (from the key that signed).
    pub sender: AccountId,
    /// The generation it was sealed under.
    pub generation: u32,
    /// The content.
    pub content: Content,
}

/// Seals `content` from `sender` to `group` under `key` of `generation`;
/// `nonce` is fresh random bytes.
pub fn seal(
    sender: &Identity,
    group: &GroupId,
    generation: u32,
    key: &[u8; 32],
    content: &Content,
    nonce: &[u8; XCHACHA_NONCE_LEN],
) -> Result<Vec<u8>, GroupMessageError> {
    let bytes = content.to_bytes();
    if bytes.len() > MAX_CONTENT_LEN {
        return Err(GroupMessageError::TooLarge(bytes.len()));
    }
    let padded = Zeroizing::new(pad(&bytes));
    let sig = sender.sign(&signed(group, generation, &padded));
    let plain = Zeroizing::new([sender.ed25519_pk().as_slice(), &sig, &padded].concat());
    let mut out = vec![MESSAGE_FORMAT];
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sodium::xchacha_encrypt(key, nonce, &plain, &ad(group, generation)));
    Ok(out)
}

/// The generation a group message was sealed under, read without opening
/// it.
pub fn generation_of(data: &[u8]) -> Option<u32> {
    match data {
        [MESSAGE_FORMAT, g0, g1, g2, g3, ..] => Some(u32::from_be_bytes([*g0, *g1, *g2, *g3])),
        _ => None,
    }
}

/// Opens a group message of `group`; `key_for` gives the key of a
/// generation the member holds.
pub fn open(
    group: &GroupId,
    key_for: impl Fn(u32) -> Option<Zeroizing<[u8; 32]>>,
    data: &[u8],
) -> Result<GroupOpened, GroupMessageError> {
    if data.len() < MESSAGE_OVERHEAD + PAD_BLOCK || data[0] != MESSAGE_FORMAT {
        return Err(GroupMessageError::Malformed);
    }
    let generation = generation_of(data).ok_or(GroupMessageError::Malformed)?;
    let nonce: &[u8; XCHACHA_NONCE_LEN] = data[5..5 + XCHACHA_NONCE_LEN]
        .try_into()
        .map_err(|_| GroupMessageError::Malformed)?;
    let key = key_for(generation).ok_or(GroupMessageError::UnknownGeneration(generation))?;
    let plain = sodium::xchacha_decrypt(&key, nonce, &data[5 + XCHACHA_NONCE_LEN..], &ad(group, generation))
        .map_err(|_| GroupMessageError::Decrypt)?;
    let (sender_pk, rest) = plain.split_first_chunk::<32>().ok_or(GroupMessageError::Malformed)?;
    let (sig, padded) = rest.split_first_chunk::<64>().ok_or(GroupMessageError::Malformed)?;
    if !sodium::sign_verify_detached(sig, &signed(group, generation, padded), sender_pk) {
        return Err(GroupMessageError::BadSignature);
    }
    let content = Content::from_bytes(unpad(padded).map_err(|_| GroupMessageError::Padding)?)?;
    let sender = AccountId::from_ed25519(sender_pk).map_err(|_| GroupMessageError::BadSignature)?;
    Ok(GroupOpened {
        sender,
        generation,
        content,
    })
}

fn signed(group: &GroupId, generation: u32, padded: &[u8]) -> Vec<u8> {
    [MESSAGE_LABEL, &group.to_bytes(), &generation.to_be_bytes(), padded].concat()
}
