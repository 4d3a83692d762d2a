//! Onion requests: building, peeling and answering the layered request a
//! client sends through guard → middle → exit → destination.
//!
//! Every node receives the same shape of body on `POST /onion_req/v2`:
//!
//! ```text
//! [u32 LE N][N bytes: box][{"ephemeral_key": hex(A), "enc_type": "xchacha20"}]
//! box = nonce24 ‖ XChaCha20-Poly1305(key, nonce, plaintext)
//! key = BLAKE2b-256(X25519(a, N_x) ‖ A ‖ N_x)
//! ```
//!
//! Inside a relay's box is the frame of the next box with a trailer naming
//! the next node (`destination`); inside the destination's box is the frame
//! of the JSON-RPC request with `{"headers":{}}`. The destination answers
//! with [`encrypt_response`] under its layer key. The byte layouts, limits
//! and padding are specified in `docs/protocol.md` (section "Onion
//! requests") and pinned by `common/tests/vectors/onion.json`.
//!
//! Everything here is pure: ephemeral keys and nonces are passed in
//! ([`LayerSecrets`]), so the same inputs always give the same bytes.

mod frame;
mod keys;
mod padding;
mod response;
#[cfg(test)]
mod tests;

use std::fmt;

use serde_json::{Map, Value};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub use frame::{MAX_ONION_BODY, MAX_TRAILER_LEN, decode_frame, encode_frame};
pub use keys::{BOX_OVERHEAD, HopKey, client_hop_key, node_hop_key};
pub use padding::PAD_BUCKETS;
pub use response::{MAX_ENCODED_RESPONSE, MAX_ONION_RESPONSE, decrypt_response, encrypt_response};

use crate::encoding::{self, DecodeError};

/// The only `enc_type` Allium speaks (Session's name for this hop
/// encryption). Compared exactly, case included.
pub const ENC_TYPE: &str = "xchacha20";

/// The trailer of the destination's frame; `headers` marks the final hop.
const FINAL_TRAILER: &[u8] = br#"{"headers":{}}"#;

/// Why an onion layer or response could not be built, peeled or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OnionError {
    /// The frame cannot even hold its 4-byte length prefix.
    #[error("frame of {len} bytes is shorter than its 4-byte length prefix")]
    FrameTooShort {
        /// Bytes given.
        len: usize,
    },
    /// The length prefix claims more payload than the frame holds.
    #[error("frame declares a {declared}-byte payload but only {available} bytes follow the prefix")]
    PayloadOutOfBounds {
        /// Payload length from the prefix.
        declared: u32,
        /// Bytes after the prefix.
        available: usize,
    },
    /// The frame is longer than [`MAX_ONION_BODY`].
    #[error("onion frame of {len} bytes exceeds the {max}-byte limit")]
    BodyTooLarge {
        /// Frame length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The JSON trailer is longer than [`MAX_TRAILER_LEN`].
    #[error("frame trailer of {len} bytes exceeds the {max}-byte limit")]
    TrailerTooLarge {
        /// Trailer length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The trailer is not valid UTF-8 JSON.
    #[error("frame trailer is not valid JSON: {reason}")]
    TrailerNotJson {
        /// The parser's message.
        reason: String,
    },
    /// The trailer is valid JSON but not an object.
    #[error("frame trailer is JSON but not an object")]
    TrailerNotObject,
    /// A required trailer member is absent.
    #[error("trailer has no `{field}`")]
    MissingField {
        /// The member.
        field: &'static str,
    },
    /// A trailer member has the wrong JSON type.
    #[error("trailer member `{field}` must be {expected}")]
    FieldType {
        /// The member.
        field: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A key member is not 64 hex characters.
    #[error("trailer member `{field}` is not a 32-byte hex key: {reason}")]
    BadHex {
        /// The member.
        field: &'static str,
        /// What is wrong with the hex.
        reason: DecodeError,
    },
    /// A key member uses uppercase hex; keys are lowercase so that each has
    /// exactly one encoding.
    #[error("trailer member `{field}` has an uppercase hex digit at position {position}; keys are lowercase hex")]
    UppercaseHex {
        /// The member.
        field: &'static str,
        /// Index of the first uppercase digit.
        position: usize,
    },
    /// `enc_type` is not exactly [`ENC_TYPE`].
    #[error("unsupported enc_type {got:?}: only \"xchacha20\" is supported")]
    UnsupportedEncType {
        /// The value given.
        got: String,
    },
    /// The decrypted trailer names a next node and also marks the final hop.
    #[error("decrypted trailer has both `destination` (relay) and `headers` (final hop)")]
    BothDestinationAndHeaders,
    /// The decrypted trailer is neither a relay nor a final hop.
    #[error("decrypted trailer has neither `destination` (relay) nor `headers` (final hop)")]
    NeitherDestinationNorHeaders,
    /// The ephemeral key in the trailer is a small-order point.
    #[error("ephemeral_key is a small-order X25519 point")]
    WeakEphemeralKey,
    /// A node's X25519 key in the path is a small-order point.
    #[error("node X25519 key {} is a small-order point", encoding::to_hex(.node_x25519))]
    WeakNodeKey {
        /// The node's key.
        node_x25519: [u8; 32],
    },
    /// A box is shorter than nonce and tag.
    #[error("box of {len} bytes is shorter than nonce and tag ({min} bytes)")]
    BoxTooShort {
        /// Box length.
        len: usize,
        /// The minimum, [`BOX_OVERHEAD`].
        min: usize,
    },
    /// The box did not authenticate under this node's hop key.
    #[error("box did not decrypt: it is not for this node's key, or it was altered")]
    DecryptFailed,
    /// [`build_request`] was given no hops.
    #[error("onion path has no hops")]
    EmptyPath,
    /// [`build_request`] needs exactly one [`LayerSecrets`] per hop.
    #[error("path has {hops} hops but {secrets} layer secrets were given")]
    SecretsMismatch {
        /// Hops in the path.
        hops: usize,
        /// Secrets given.
        secrets: usize,
    },
    /// Two layers share an ephemeral secret, which would let their nodes
    /// link the layers by the equal `ephemeral_key`.
    #[error("layers {first} and {second} use the same ephemeral secret")]
    ReusedEphemeralKey {
        /// Index of the first layer.
        first: usize,
        /// Index of the second layer.
        second: usize,
    },
    /// The request to wrap is not a JSON object.
    #[error("onion request must be a JSON object")]
    RequestNotObject,
    /// The request does not fit the largest padding bucket.
    #[error("request frame of {len} bytes exceeds the largest padding bucket ({max} bytes)")]
    RequestTooLarge {
        /// Unpadded size of the destination's plaintext.
        len: usize,
        /// The top bucket.
        max: usize,
    },
    /// The padded response plaintext is larger than [`MAX_ONION_RESPONSE`].
    #[error("response plaintext of {len} bytes exceeds the {max}-byte limit")]
    ResponseTooLarge {
        /// Padded plaintext length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The encoded response is longer than [`MAX_ENCODED_RESPONSE`].
    #[error("encoded response of {len} bytes exceeds the {max}-byte limit")]
    EncodedResponseTooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The response is not standard base64.
    #[error("response is not standard base64")]
    ResponseNotBase64,
    /// The decoded response is shorter than nonce and tag.
    #[error("response box of {len} bytes is shorter than nonce and tag ({min} bytes)")]
    ResponseTooShort {
        /// Decoded length.
        len: usize,
        /// The minimum, [`BOX_OVERHEAD`].
        min: usize,
    },
    /// The response did not authenticate under the request's key.
    #[error("response did not decrypt: wrong key, or it was altered")]
    ResponseDecryptFailed,
    /// The decrypted response is not JSON.
    #[error("decrypted response is not valid JSON: {reason}")]
    ResponseNotJson {
        /// The parser's message.
        reason: String,
    },
    /// The decrypted response is JSON but not an object.
    #[error("decrypted response is JSON but not an object")]
    ResponseNotObject,
    /// The decrypted response lacks `status` or `body`.
    #[error("decrypted response has no `{field}`")]
    ResponseMissingField {
        /// The member.
        field: &'static str,
    },
    /// `status` is not an integer in 0..=65535.
    #[error("response `status` is not an integer in 0..=65535")]
    ResponseBadStatus,
}

/// One node of a path: its Ed25519 identity (how the previous hop names it)
/// and its X25519 key (what its layer is encrypted to).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// Ed25519 public key.
    pub ed25519: [u8; 32],
    /// X25519 public key.
    pub x25519: [u8; 32],
}

impl fmt::Debug for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hop")
            .field("ed25519", &encoding::to_hex(&self.ed25519))
            .field("x25519", &encoding::to_hex(&self.x25519))
            .finish()
    }
}

/// The randomness of one layer, drawn by the caller (e.g. with
/// [`crate::sodium::random_array`]); wiped on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LayerSecrets {
    /// Ephemeral X25519 secret `a`; must differ between layers.
    pub ephemeral_sk: [u8; 32],
    /// Nonce of this layer's box.
    pub nonce: [u8; 24],
}

impl fmt::Debug for LayerSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LayerSecrets(<redacted>)")
    }
}

/// A built onion request.
pub struct OnionRequest {
    /// The body to POST to the first hop's `/onion_req/v2`.
    pub body: Vec<u8>,
    /// The destination's layer key, to [`decrypt_response`] with.
    pub response_key: HopKey,
}

impl fmt::Debug for OnionRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnionRequest")
            .field("body_len", &self.body.len())
            .field("response_key", &self.response_key)
            .finish()
    }
}

/// What a node finds when it peels its layer.
pub enum Peeled {
    /// Forward `body` to the node with Ed25519 key `next_ed25519` (POST to
    /// its `/onion_req/v2`) and return its answer unchanged.
    Relay {
        /// The next node's Ed25519 public key.
        next_ed25519: [u8; 32],
        /// The body to POST, in the same shape as the one received.
        body: Vec<u8>,
    },
    /// This node is the destination: execute `request` and answer with
    /// [`encrypt_response`] under `key`.
    Final {
        /// The JSON-RPC request bytes exactly as sent, `pad` included; not
        /// parsed here.
        request: Zeroizing<Vec<u8>>,
        /// This layer's key, for the response.
        key: HopKey,
    },
}

impl fmt::Debug for Peeled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the request: a destination must not log payloads.
        match self {
            Self::Relay { next_ed25519, body } => f
                .debug_struct("Relay")
                .field("next_ed25519", &encoding::to_hex(next_ed25519))
                .field("body_len", &body.len())
                .finish(),
            Self::Final { request, key } => f
                .debug_struct("Final")
                .field("request_len", &request.len())
                .field("key", key)
                .finish(),
        }
    }
}

/// Builds an onion request through `path` (`[guard, middle, exit,
/// destination]`, or any length ≥ 1; the body goes to `path[0]`, the request
/// is executed by the last hop).
///
/// `request` must be a JSON object (`{"method", "params"}`); any `"pad"` in
/// it is replaced by padding, written as its last member, that brings the
/// destination's plaintext to one of [`PAD_BUCKETS`]. `secrets[i]` is the
/// randomness of the layer for `path[i]`.
pub fn build_request(path: &[Hop], request: &Value, secrets: &[LayerSecrets]) -> Result<OnionRequest, OnionError> {
    if path.is_empty() {
        return Err(OnionError::EmptyPath);
    }
    if secrets.len() != path.len() {
        return Err(OnionError::SecretsMismatch {
            hops: path.len(),
            secrets: secrets.len(),
        });
    }
    for (second, s) in secrets.iter().enumerate() {
        if let Some(first) = secrets
            .iter()
            .take(second)
            .position(|p| p.ephemeral_sk == s.ephemeral_sk)
        {
            return Err(OnionError::ReusedEphemeralKey { first, second });
        }
    }
    let object = request.as_object().ok_or(OnionError::RequestNotObject)?;

    let mut plaintext = final_plaintext(object)?;
    let mut response_key = None;
    // Innermost layer first: seal `plaintext` for `hop`, then frame the box
    // as the previous hop's plaintext (naming `hop` as its destination) or,
    // at `path[0]`, as the body to POST.
    let mut layers = path.iter().zip(secrets).rev().peekable();
    while let Some((hop, secret)) = layers.next() {
        let (key, ephemeral_pk) = client_hop_key(&secret.ephemeral_sk, &hop.x25519)?;
        let sealed = keys::seal(&key, &secret.nonce, &plaintext);
        if response_key.is_none() {
            response_key = Some(key);
        }
        let trailer = if layers.peek().is_some() {
            relay_trailer(&hop.ed25519, &ephemeral_pk)
        } else {
            outer_trailer(&ephemeral_pk)
        };
        plaintext = Zeroizing::new(encode_frame(&sealed, trailer.as_bytes())?);
    }
    // `path` is not empty, so the loop ran and set the key.
    let response_key = response_key.ok_or(OnionError::EmptyPath)?;
    Ok(OnionRequest {
        body: std::mem::take(&mut *plaintext),
        response_key,
    })
}

/// The destination's plaintext: frame(request with pad, `{"headers":{}}`),
/// exactly one bucket long.
fn final_plaintext(object: &Map<String, Value>) -> Result<Zeroizing<Vec<u8>>, OnionError> {
    let unpadded = padding::Unpadded::from_object(object);
    let overhead = 4 + FINAL_TRAILER.len();
    let min = unpadded.min_len() + overhead;
    let bucket = padding::request_bucket(min).ok_or(OnionError::RequestTooLarge {
        len: min,
        max: padding::TOP_BUCKET,
    })?;
    let request = unpadded.padded_to(bucket.saturating_sub(overhead));
    let framed = Zeroizing::new(encode_frame(&request, FINAL_TRAILER)?);
    debug_assert_eq!(framed.len(), bucket);
    Ok(framed)
}

/// Trailer of the body a node receives.
fn outer_trailer(ephemeral_pk: &[u8; 32]) -> String {
    format!(
        r#"{{"ephemeral_key":"{}","enc_type":"{ENC_TYPE}"}}"#,
        encoding::to_hex(ephemeral_pk)
    )
}

/// Trailer inside a relay's box, naming the next hop.
fn relay_trailer(next_ed25519: &[u8; 32], next_ephemeral_pk: &[u8; 32]) -> String {
    format!(
        r#"{{"destination":"{}","ephemeral_key":"{}","enc_type":"{ENC_TYPE}"}}"#,
        encoding::to_hex(next_ed25519),
        encoding::to_hex(next_ephemeral_pk)
    )
}

/// Peels one layer with this node's X25519 pair: either the body to forward
/// to the next node, or the request to execute.
///
/// Fails on anything that is not exactly a well-formed layer for this node;
/// the error says which check failed (safe to log: it holds no payload).
pub fn peel(body: &[u8], node_x25519_sk: &[u8; 32], node_x25519_pk: &[u8; 32]) -> Result<Peeled, OnionError> {
    let outer = frame::decode_frame_object(body)?;
    check_enc_type(&outer.trailer)?;
    let ephemeral_pk = key_field(&outer.trailer, "ephemeral_key")?;
    let key = node_hop_key(node_x25519_sk, node_x25519_pk, &ephemeral_pk)?;
    let plaintext = open_layer(&key, outer.payload)?;
    let frame::Decoded {
        payload: inner,
        trailer,
        ..
    } = frame::decode_frame_object(&plaintext)?;
    match (trailer.contains_key("destination"), trailer.contains_key("headers")) {
        (true, true) => Err(OnionError::BothDestinationAndHeaders),
        (false, false) => Err(OnionError::NeitherDestinationNorHeaders),
        (true, false) => {
            let next_ed25519 = key_field(&trailer, "destination")?;
            check_enc_type(&trailer)?;
            let next_ephemeral_pk = key_field(&trailer, "ephemeral_key")?;
            if inner.len() < BOX_OVERHEAD {
                return Err(OnionError::BoxTooShort {
                    len: inner.len(),
                    min: BOX_OVERHEAD,
                });
            }
            // Re-serialised rather than copied, so the next node gets the
            // canonical trailer and nothing else from inside this layer.
            let body = encode_frame(inner, outer_trailer(&next_ephemeral_pk).as_bytes())?;
            Ok(Peeled::Relay { next_ed25519, body })
        }
        (false, true) => {
            if !trailer.get("headers").is_some_and(Value::is_object) {
                return Err(OnionError::FieldType {
                    field: "headers",
                    expected: "an object",
                });
            }
            Ok(Peeled::Final {
                request: Zeroizing::new(inner.to_vec()),
                key,
            })
        }
    }
}

fn open_layer(key: &HopKey, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OnionError> {
    keys::open(key, sealed).map_err(|e| match e {
        keys::OpenError::TooShort => OnionError::BoxTooShort {
            len: sealed.len(),
            min: BOX_OVERHEAD,
        },
        keys::OpenError::Failed => OnionError::DecryptFailed,
    })
}

/// `enc_type` must be present and exactly [`ENC_TYPE`].
fn check_enc_type(trailer: &Map<String, Value>) -> Result<(), OnionError> {
    let got = str_field(trailer, "enc_type")?;
    if got == ENC_TYPE {
        Ok(())
    } else {
        Err(OnionError::UnsupportedEncType { got: got.to_owned() })
    }
}

fn str_field<'a>(trailer: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, OnionError> {
    trailer
        .get(field)
        .ok_or(OnionError::MissingField { field })?
        .as_str()
        .ok_or(OnionError::FieldType {
            field,
            expected: "a string",
        })
}

/// A 32-byte key as exactly 64 lowercase hex digits: one encoding per key, so
/// a relayed body cannot be altered without the next hop noticing.
fn key_field(trailer: &Map<String, Value>, field: &'static str) -> Result<[u8; 32], OnionError> {
    let text = str_field(trailer, field)?;
    let key = encoding::hex_array::<32>(text).map_err(|reason| OnionError::BadHex { field, reason })?;
    if let Some(position) = text.bytes().position(|b| b.is_ascii_uppercase()) {
        return Err(OnionError::UppercaseHex { field, position });
    }
    Ok(key)
}
