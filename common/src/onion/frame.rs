//! The frame every onion layer is made of:
//! `[u32 little-endian N][N bytes payload][UTF-8 JSON object trailer]`.
//!
//! The trailer runs to the end of the buffer (it has no length of its own),
//! so the decoder checks every bound before it slices.

use serde_json::{Map, Value};

use super::OnionError;

/// Largest onion body (one frame, as POSTed to `/onion_req/v2`) a node
/// accepts or the client builds: 192 KiB.
///
/// The largest legitimate body is the top padding bucket (128 KiB) plus a
/// fixed overhead per hop (see [`super::PAD_BUCKETS`]); 4 hops add 847 bytes.
/// 64 KiB of headroom covers any sane path length and future trailer fields,
/// while bounding what a node must buffer per request before it can
/// authenticate anything.
pub const MAX_ONION_BODY: usize = 192 * 1024;

/// Largest JSON trailer accepted: 1024 bytes. The trailers the protocol
/// defines are at most 188 bytes; the cap keeps the JSON parser's work per
/// unauthenticated request small.
pub const MAX_TRAILER_LEN: usize = 1024;

/// Size of the little-endian length prefix.
const PREFIX_LEN: usize = 4;

/// Builds `[u32 LE payload.len()][payload][trailer]`.
///
/// Refuses what [`decode_frame`] would refuse, so every frame built here can
/// be decoded: a trailer that is not a JSON object of at most
/// [`MAX_TRAILER_LEN`] bytes, or a frame longer than [`MAX_ONION_BODY`] (which
/// also keeps the length within a `u32`).
pub fn encode_frame(payload: &[u8], trailer: &[u8]) -> Result<Vec<u8>, OnionError> {
    let len = PREFIX_LEN.saturating_add(payload.len()).saturating_add(trailer.len());
    if len > MAX_ONION_BODY {
        return Err(OnionError::BodyTooLarge {
            len,
            max: MAX_ONION_BODY,
        });
    }
    parse_trailer(trailer)?;
    let n = u32::try_from(payload.len()).map_err(|_| OnionError::BodyTooLarge {
        len,
        max: MAX_ONION_BODY,
    })?;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(trailer);
    Ok(out)
}

/// Splits a frame into `(payload, trailer)` after checking its bounds: the
/// whole frame at most [`MAX_ONION_BODY`] bytes, the declared payload length
/// within the buffer, and the trailer a JSON object of at most
/// [`MAX_TRAILER_LEN`] bytes.
pub fn decode_frame(frame: &[u8]) -> Result<(&[u8], &[u8]), OnionError> {
    let decoded = decode_frame_object(frame)?;
    Ok((decoded.payload, decoded.trailer_bytes))
}

/// A decoded frame with its trailer parsed.
pub(super) struct Decoded<'a> {
    /// The payload (`N` bytes).
    pub payload: &'a [u8],
    /// The trailer as received.
    pub trailer_bytes: &'a [u8],
    /// The trailer parsed.
    pub trailer: Map<String, Value>,
}

/// [`decode_frame`] that also returns the parsed trailer, so that callers
/// parse it only once.
pub(super) fn decode_frame_object(frame: &[u8]) -> Result<Decoded<'_>, OnionError> {
    if frame.len() > MAX_ONION_BODY {
        return Err(OnionError::BodyTooLarge {
            len: frame.len(),
            max: MAX_ONION_BODY,
        });
    }
    let (prefix, rest) = frame
        .split_first_chunk::<PREFIX_LEN>()
        .ok_or(OnionError::FrameTooShort { len: frame.len() })?;
    let declared = u32::from_le_bytes(*prefix);
    let out_of_bounds = OnionError::PayloadOutOfBounds {
        declared,
        available: rest.len(),
    };
    let n = usize::try_from(declared).map_err(|_| out_of_bounds.clone())?;
    let (payload, trailer) = rest.split_at_checked(n).ok_or(out_of_bounds)?;
    Ok(Decoded {
        payload,
        trailer_bytes: trailer,
        trailer: parse_trailer(trailer)?,
    })
}

/// Checks the trailer's size and that it is one JSON object.
fn parse_trailer(trailer: &[u8]) -> Result<Map<String, Value>, OnionError> {
    if trailer.len() > MAX_TRAILER_LEN {
        return Err(OnionError::TrailerTooLarge {
            len: trailer.len(),
            max: MAX_TRAILER_LEN,
        });
    }
    match serde_json::from_slice::<Value>(trailer) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(OnionError::TrailerNotObject),
        Err(e) => Err(OnionError::TrailerNotJson { reason: e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trip() {
        let frame = encode_frame(b"abc", br#"{"k":1}"#).unwrap();
        assert_eq!(&frame[..4], &[3, 0, 0, 0]);
        assert_eq!(decode_frame(&frame).unwrap(), (&b"abc"[..], &br#"{"k":1}"#[..]));
        // An empty payload is a valid frame; what it means is up to the layer.
        let frame = encode_frame(b"", b"{}").unwrap();
        assert_eq!(decode_frame(&frame).unwrap(), (&b""[..], &b"{}"[..]));
    }

    #[test]
    fn too_short() {
        for len in 0..4 {
            assert_eq!(decode_frame(&vec![0u8; len]), Err(OnionError::FrameTooShort { len }));
        }
    }

    #[test]
    fn payload_out_of_bounds() {
        let mut frame = encode_frame(b"abc", b"{}").unwrap();
        frame[..4].copy_from_slice(&6u32.to_le_bytes());
        assert_eq!(
            decode_frame(&frame),
            Err(OnionError::PayloadOutOfBounds {
                declared: 6,
                available: 5
            })
        );
        frame[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_frame(&frame),
            Err(OnionError::PayloadOutOfBounds { .. })
        ));
    }

    #[test]
    fn body_too_large() {
        let big = vec![0u8; MAX_ONION_BODY];
        assert_eq!(
            encode_frame(&big[..MAX_ONION_BODY - 6], b"{}").map(|f| f.len()),
            Ok(MAX_ONION_BODY)
        );
        let err = OnionError::BodyTooLarge {
            len: MAX_ONION_BODY + 1,
            max: MAX_ONION_BODY,
        };
        assert_eq!(encode_frame(&big[..MAX_ONION_BODY - 5], b"{}"), Err(err.clone()));
        let mut frame = encode_frame(&big[..MAX_ONION_BODY - 6], b"{}").unwrap();
        frame.push(b' ');
        assert_eq!(decode_frame(&frame), Err(err));
    }

    #[test]
    fn trailer_limits() {
        let mut trailer = br#"{"k":""#.to_vec();
        trailer.resize(MAX_TRAILER_LEN - 2, b'x');
        trailer.extend_from_slice(br#""}"#);
        assert!(encode_frame(b"", &trailer).is_ok());
        trailer.insert(7, b'x');
        assert_eq!(
            encode_frame(b"", &trailer),
            Err(OnionError::TrailerTooLarge {
                len: MAX_TRAILER_LEN + 1,
                max: MAX_TRAILER_LEN
            })
        );
        let mut frame = vec![0u8; 4];
        frame.extend_from_slice(&trailer);
        assert!(matches!(decode_frame(&frame), Err(OnionError::TrailerTooLarge { .. })));
    }

    #[test]
    fn trailer_must_be_json_object() {
        for bad in [&b""[..], b"{", b"{} {}", b"\xff", b"{\"a\":\"\xff\"}"] {
            assert!(
                matches!(encode_frame(b"p", bad), Err(OnionError::TrailerNotJson { .. })),
                "{bad:?}"
            );
        }
        for bad in [&b"[]"[..], b"1", b"\"s\"", b"null"] {
            assert_eq!(encode_frame(b"p", bad), Err(OnionError::TrailerNotObject));
            let mut frame = vec![1, 0, 0, 0, b'p'];
            frame.extend_from_slice(bad);
            assert_eq!(decode_frame(&frame), Err(OnionError::TrailerNotObject));
        }
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(
            payload in proptest::collection::vec(any::<u8>(), 0..2048),
            key in "\\PC{0,40}",
            value in "\\PC{0,200}",
        ) {
            let trailer = serde_json::json!({ key: value }).to_string();
            let frame = encode_frame(&payload, trailer.as_bytes()).unwrap();
            let (p, t) = decode_frame(&frame).unwrap();
            prop_assert_eq!(p, &payload[..]);
            prop_assert_eq!(t, trailer.as_bytes());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_frame(&bytes);
        }

        #[test]
        fn decode_never_panics_on_plausible_frames(
            declared in prop_oneof![0u32..64, any::<u32>()],
            body in proptest::collection::vec(any::<u8>(), 0..64),
            trailer in prop_oneof![
                Just(String::from("{}")),
                Just(String::from(r#"{"headers":{}}"#)),
                "\\PC{0,64}",
            ],
        ) {
            let mut frame = declared.to_le_bytes().to_vec();
            frame.extend_from_slice(&body);
            frame.extend_from_slice(trailer.as_bytes());
            if let Ok((p, t)) = decode_frame(&frame) {
                prop_assert_eq!(p.len() + t.len() + 4, frame.len());
            }
        }
    }
}
