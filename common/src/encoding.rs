//! Small, strict text encodings shared by the wire formats: fixed-size hex
//! and unpadded/padded base64, each with an error that says what was wrong.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};

/// Why a hex or base64 field could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Hex of the wrong length.
    #[error("expected {expected} hex characters, got {got}")]
    HexLength {
        /// Characters expected.
        expected: usize,
        /// Characters given.
        got: usize,
    },
    /// A character that is not a hex digit.
    #[error("invalid hex character at position {0}")]
    HexChar(usize),
    /// Not valid base64 (standard alphabet, padding optional).
    #[error("invalid base64")]
    Base64,
}

/// Decodes exactly `N` bytes from hex (either case).
pub fn hex_array<const N: usize>(s: &str) -> Result<[u8; N], DecodeError> {
    if s.len() != 2 * N {
        return Err(DecodeError::HexLength {
            expected: 2 * N,
            got: s.len(),
        });
    }
    if let Some(pos) = s.bytes().position(|b| !b.is_ascii_hexdigit()) {
        return Err(DecodeError::HexChar(pos));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).map_err(|_| DecodeError::HexChar(0))?;
    Ok(out)
}

/// Lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Standard base64 with padding (the form the RPC uses for `data` and
/// signatures).
pub fn to_base64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// Standard base64 without padding (the form of message hashes).
pub fn to_base64_unpadded(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Decodes standard base64, accepting it with or without padding.
pub fn from_base64(s: &str) -> Result<Vec<u8>, DecodeError> {
    let trimmed = s.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(trimmed)
        .map_err(|_| DecodeError::Base64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_array_checks_length_and_characters() {
        assert_eq!(hex_array::<2>("0aFf"), Ok([0x0a, 0xff]));
        assert_eq!(
            hex_array::<2>("0a"),
            Err(DecodeError::HexLength {
                expected: 4,
                got: 2
            })
        );
        assert_eq!(hex_array::<2>("0a+f"), Err(DecodeError::HexChar(2)));
    }

    #[test]
    fn base64_accepts_padded_and_unpadded() {
        assert_eq!(from_base64("aGk="), Ok(b"hi".to_vec()));
        assert_eq!(from_base64("aGk"), Ok(b"hi".to_vec()));
        assert_eq!(from_base64("a*k"), Err(DecodeError::Base64));
        assert_eq!(to_base64(b"hi"), "aGk=");
        assert_eq!(to_base64_unpadded(b"hi"), "aGk");
    }
}
