//! Small, strict text encodings shared by the wire formats: fixed-size hex
//! and unpadded/padded base64, each with an error that says what was wrong.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

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
    STANDARD_NO_PAD.decode(trimmed).map_err(|_| DecodeError::Base64)
}

/// 32 bytes written as 64 hex characters (keys on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hex32(pub [u8; 32]);

impl fmt::Debug for Hex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hex32({})", to_hex(&self.0))
    }
}

impl Serialize for Hex32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for Hex32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        hex_array(&s).map(Self).map_err(de::Error::custom)
    }
}

/// A 64-byte Ed25519 signature written as base64.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Sig64(pub [u8; 64]);

impl fmt::Debug for Sig64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig64({})", to_base64(&self.0))
    }
}

impl Serialize for Sig64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_base64(&self.0))
    }
}

impl<'de> Deserialize<'de> for Sig64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        let bytes = from_base64(&s).map_err(de::Error::custom)?;
        let sig: [u8; 64] = bytes
            .try_into()
            .map_err(|v: Vec<u8>| de::Error::custom(format!("a signature is 64 bytes, this is {}", v.len())))?;
        Ok(Self(sig))
    }
}

/// Arbitrary bytes written as base64 (message `data`).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Base64Bytes(pub Vec<u8>);

impl fmt::Debug for Base64Bytes {
    // Never print contents: they may be message bodies.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_base64(&self.0))
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <Cow<'de, str>>::deserialize(d)?;
        from_base64(&s).map(Self).map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_array_checks_length_and_characters() {
        assert_eq!(hex_array::<2>("0aFf"), Ok([0x0a, 0xff]));
        assert_eq!(
            hex_array::<2>("0a"),
            Err(DecodeError::HexLength { expected: 4, got: 2 })
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

    #[test]
    fn newtypes_round_trip_and_refuse_bad_lengths() {
        let k: Hex32 = serde_json::from_str(&format!("\"{}\"", "ab".repeat(32))).unwrap();
        assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{}\"", "ab".repeat(32)));
        assert!(serde_json::from_str::<Hex32>("\"abcd\"").is_err());
        let sig = Sig64([9; 64]);
        let json = serde_json::to_string(&sig).unwrap();
        assert_eq!(serde_json::from_str::<Sig64>(&json).unwrap(), sig);
        assert!(serde_json::from_str::<Sig64>("\"aGk=\"").is_err());
        let data = Base64Bytes(b"secret".to_vec());
        assert_eq!(format!("{data:?}"), "Base64Bytes(6 bytes)");
    }
}
