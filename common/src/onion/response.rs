//! The destination's answer: `base64(nonce24 ‖ XChaCha20-Poly1305(key,
//! {"status": u16, "body": <json>, "pad": "0…"}))` under the key of the
//! destination's layer. Relays pass it back unchanged.

use serde_json::Value;

use super::OnionError;
use super::keys::{self, BOX_OVERHEAD, HopKey, OpenError};
use super::padding::{Unpadded, response_target};
use crate::encoding;

/// Largest response plaintext (the padded JSON): 4 MiB. A `retrieve` that
/// would exceed it must be cut short by the node (`more: true`).
pub const MAX_ONION_RESPONSE: usize = 4 * 1024 * 1024;

/// Largest encoded response [`decrypt_response`] accepts: the padded base64
/// of a box holding [`MAX_ONION_RESPONSE`] bytes. Relays and clients can cap
/// how much of a response body they read with it.
pub const MAX_ENCODED_RESPONSE: usize = (MAX_ONION_RESPONSE + BOX_OVERHEAD).div_ceil(3) * 4;

/// Encrypts a response for the client under its destination layer's key,
/// padded to [`super::PAD_BUCKETS`] (above the top bucket, to a multiple of
/// it), and returns the base64 (standard alphabet, padded) the destination
/// sends as its HTTP body.
///
/// Fails with [`OnionError::ResponseTooLarge`] when the padded JSON exceeds
/// [`MAX_ONION_RESPONSE`].
pub fn encrypt_response(key: &HopKey, status: u16, body: &Value, nonce: &[u8; 24]) -> Result<String, OnionError> {
    // The members are written by hand so their order (status, body, pad)
    // does not depend on serde_json's map implementation.
    let mut head = zeroize::Zeroizing::new(format!("{{\"status\":{status},\"body\":"));
    head.push_str(&zeroize::Zeroizing::new(body.to_string()));
    let unpadded = Unpadded::from_head(head.as_bytes());
    let len = response_target(unpadded.min_len());
    if len > MAX_ONION_RESPONSE {
        return Err(OnionError::ResponseTooLarge {
            len,
            max: MAX_ONION_RESPONSE,
        });
    }
    let plaintext = unpadded.padded_to(len);
    Ok(encoding::to_base64(&keys::seal(key, nonce, &plaintext)))
}

/// Decrypts a response (the HTTP body the client got back from its guard)
/// and returns `(status, body)`; `pad` and any unknown members are ignored.
pub fn decrypt_response(key: &HopKey, response: &[u8]) -> Result<(u16, Value), OnionError> {
    if response.len() > MAX_ENCODED_RESPONSE {
        return Err(OnionError::EncodedResponseTooLarge {
            len: response.len(),
            max: MAX_ENCODED_RESPONSE,
        });
    }
    let text = std::str::from_utf8(response).map_err(|_| OnionError::ResponseNotBase64)?;
    let sealed = encoding::from_base64(text).map_err(|_| OnionError::ResponseNotBase64)?;
    // Base64 rounding lets a few bytes more through the check above.
    let plaintext_len = sealed.len().saturating_sub(BOX_OVERHEAD);
    if plaintext_len > MAX_ONION_RESPONSE {
        return Err(OnionError::ResponseTooLarge {
            len: plaintext_len,
            max: MAX_ONION_RESPONSE,
        });
    }
    let plaintext = keys::open(key, &sealed).map_err(|e| match e {
        OpenError::TooShort => OnionError::ResponseTooShort {
            len: sealed.len(),
            min: BOX_OVERHEAD,
        },
        OpenError::Failed => OnionError::ResponseDecryptFailed,
    })?;
    let value: Value =
        serde_json::from_slice(&plaintext).map_err(|e| OnionError::ResponseNotJson { reason: e.to_string() })?;
    let Value::Object(mut object) = value else {
        return Err(OnionError::ResponseNotObject);
    };
    let status = object
        .get("status")
        .ok_or(OnionError::ResponseMissingField { field: "status" })?
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .ok_or(OnionError::ResponseBadStatus)?;
    let body = object
        .remove("body")
        .ok_or(OnionError::ResponseMissingField { field: "body" })?;
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::onion::PAD_BUCKETS;

    fn key() -> HopKey {
        HopKey::from_bytes([7u8; 32])
    }

    /// Encrypts an arbitrary plaintext the way a destination would.
    fn raw(plaintext: &[u8]) -> String {
        encoding::to_base64(&keys::seal(&key(), &[9u8; 24], plaintext))
    }

    #[test]
    fn round_trip_and_padding() {
        let body = json!({"messages": [], "more": false});
        let r = encrypt_response(&key(), 200, &body, &[1u8; 24]).unwrap();
        let sealed = encoding::from_base64(&r).unwrap();
        assert_eq!(sealed.len(), 1024 + BOX_OVERHEAD);
        assert_eq!(r.len() % 4, 0, "padded base64");
        assert_eq!(decrypt_response(&key(), r.as_bytes()), Ok((200, body)));
    }

    #[test]
    fn large_responses_pad_to_multiples_of_the_top_bucket() {
        let body = Value::String("x".repeat(200_000));
        let r = encrypt_response(&key(), 200, &body, &[1u8; 24]).unwrap();
        let sealed = encoding::from_base64(&r).unwrap();
        assert_eq!(sealed.len(), 2 * 131072 + BOX_OVERHEAD);
        assert_eq!(decrypt_response(&key(), r.as_bytes()), Ok((200, body)));
    }

    #[test]
    fn too_large() {
        let body = Value::String("x".repeat(MAX_ONION_RESPONSE));
        assert_eq!(
            encrypt_response(&key(), 200, &body, &[1u8; 24]),
            Err(OnionError::ResponseTooLarge {
                len: MAX_ONION_RESPONSE + 131072,
                max: MAX_ONION_RESPONSE
            })
        );
        // Exactly at the limit is fine.
        let fits = Value::String("x".repeat(MAX_ONION_RESPONSE - 100));
        let r = encrypt_response(&key(), 200, &fits, &[1u8; 24]).unwrap();
        assert_eq!(r.len(), MAX_ENCODED_RESPONSE);
        assert!(decrypt_response(&key(), r.as_bytes()).is_ok());

        let long = vec![b'A'; MAX_ENCODED_RESPONSE + 1];
        assert_eq!(
            decrypt_response(&key(), &long),
            Err(OnionError::EncodedResponseTooLarge {
                len: MAX_ENCODED_RESPONSE + 1,
                max: MAX_ENCODED_RESPONSE
            })
        );
        // Within the encoded limit but one byte of plaintext too many.
        let over = encoding::to_base64(&vec![0u8; MAX_ONION_RESPONSE + 1 + BOX_OVERHEAD]);
        assert!(over.len() <= MAX_ENCODED_RESPONSE);
        assert_eq!(
            decrypt_response(&key(), over.as_bytes()),
            Err(OnionError::ResponseTooLarge {
                len: MAX_ONION_RESPONSE + 1,
                max: MAX_ONION_RESPONSE
            })
        );
    }

    #[test]
    fn errors() {
        let k = key();
        assert_eq!(decrypt_response(&k, b"not base64!"), Err(OnionError::ResponseNotBase64));
        assert_eq!(decrypt_response(&k, b"\xff\xfe"), Err(OnionError::ResponseNotBase64));
        assert_eq!(
            decrypt_response(&k, encoding::to_base64(&[0u8; 39]).as_bytes()),
            Err(OnionError::ResponseTooShort { len: 39, min: 40 })
        );
        let good = encrypt_response(&k, 200, &json!(null), &[1u8; 24]).unwrap();
        assert_eq!(
            decrypt_response(&HopKey::from_bytes([8u8; 32]), good.as_bytes()),
            Err(OnionError::ResponseDecryptFailed)
        );
        assert!(matches!(
            decrypt_response(&k, raw(b"{").as_bytes()),
            Err(OnionError::ResponseNotJson { .. })
        ));
        assert_eq!(
            decrypt_response(&k, raw(b"[200, null]").as_bytes()),
            Err(OnionError::ResponseNotObject)
        );
        assert_eq!(
            decrypt_response(&k, raw(br#"{"body":1}"#).as_bytes()),
            Err(OnionError::ResponseMissingField { field: "status" })
        );
        assert_eq!(
            decrypt_response(&k, raw(br#"{"status":200}"#).as_bytes()),
            Err(OnionError::ResponseMissingField { field: "body" })
        );
        for bad in [r#"-1"#, "65536", "200.5", r#""200""#] {
            let pt = format!(r#"{{"status":{bad},"body":1}}"#);
            assert_eq!(
                decrypt_response(&k, raw(pt.as_bytes()).as_bytes()),
                Err(OnionError::ResponseBadStatus),
                "{bad}"
            );
        }
        // No pad, extra members, unpadded base64: all tolerated.
        let pt = raw(br#"{"status":404,"body":"gone","extra":[]}"#);
        assert_eq!(
            decrypt_response(&k, pt.trim_end_matches('=').as_bytes()),
            Ok((404, json!("gone")))
        );
    }

    proptest! {
        #[test]
        fn round_trip(
            status in any::<u16>(),
            text in "\\PC{0,3000}",
            n in any::<i64>(),
            nonce in any::<[u8; 24]>(),
            k in any::<[u8; 32]>(),
        ) {
            let k = HopKey::from_bytes(k);
            let body = json!({"text": text, "n": n, "list": [1, 2, 3]});
            let r = encrypt_response(&k, status, &body, &nonce).unwrap();
            let sealed = encoding::from_base64(&r).unwrap();
            prop_assert!(PAD_BUCKETS.contains(&(sealed.len() - BOX_OVERHEAD)));
            prop_assert_eq!(decrypt_response(&k, r.as_bytes()), Ok((status, body)));
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decrypt_response(&key(), &bytes);
        }

        #[test]
        fn never_panics_on_valid_boxes(text in "\\PC{0,200}") {
            let _ = decrypt_response(&key(), raw(text.as_bytes()).as_bytes());
        }
    }
}
