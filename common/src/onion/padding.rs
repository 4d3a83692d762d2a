//! Length padding: requests and responses are padded to a few fixed sizes
//! so that the length of a layer tells a relay nothing about what is asked.
//!
//! The padding is a `"pad"` string of ASCII `'0'`s, always the last member of
//! the JSON object, so its length adds exactly one byte per character and the
//! padded size can be hit exactly. Decoders ignore `pad`.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// The sizes (bytes) a padded plaintext takes: the smallest one that fits.
///
/// For requests this is the size of the destination's box plaintext, the
/// frame of the JSON-RPC request and `{"headers":{}}`; every relay layer adds
/// a fixed number of bytes, so each layer has one of five sizes per hop
/// position. Powers of four from 1 KiB keep the waste below 4× while giving
/// few classes: 1 KiB covers every control call (`retrieve`, `get_swarm`,
/// `info`, `delete`), 4 KiB a short text message, the larger buckets
/// attachments and batches. The top bucket, 128 KiB, is the largest request.
pub const PAD_BUCKETS: [usize; 5] = [1024, 4096, 16384, 65536, 131072];

/// Largest padding bucket; responses above it are padded to a multiple of it.
pub const TOP_BUCKET: usize = PAD_BUCKETS[PAD_BUCKETS.len() - 1];

/// The smallest bucket that holds `len` bytes, if any.
pub fn request_bucket(len: usize) -> Option<usize> {
    PAD_BUCKETS.iter().copied().find(|&b| b >= len)
}

/// The padded size of a response of `len` bytes: the smallest bucket that
/// fits, else the next multiple of [`TOP_BUCKET`].
pub fn response_target(len: usize) -> usize {
    request_bucket(len).unwrap_or_else(|| len.div_ceil(TOP_BUCKET).saturating_mul(TOP_BUCKET))
}

/// An object serialised with a `"pad"` still to be filled in: `head` is
/// everything up to the opening quote of the pad's value, and the output
/// ends with [`PAD_TAIL`].
pub struct Unpadded {
    head: Zeroizing<Vec<u8>>,
}

const PAD_KEY_WITH_COMMA: &[u8] = br#","pad":""#;
const PAD_TAIL: &[u8] = br#""}"#;

impl Unpadded {
    /// Serialises `members` (minus any existing `"pad"`) in the map's order.
    pub fn from_object(object: &Map<String, Value>) -> Self {
        let mut head = Zeroizing::new(Vec::new());
        head.push(b'{');
        let mut first = true;
        for (key, value) in object.iter().filter(|(k, _)| k.as_str() != "pad") {
            if !first {
                head.push(b',');
            }
            first = false;
            head.extend_from_slice(Value::from(key.as_str()).to_string().as_bytes());
            head.push(b':');
            // Wipe the temporary copy of the value too (best effort).
            let value = Zeroizing::new(value.to_string());
            head.extend_from_slice(value.as_bytes());
        }
        let pad_key = if first {
            &PAD_KEY_WITH_COMMA[1..]
        } else {
            PAD_KEY_WITH_COMMA
        };
        head.extend_from_slice(pad_key);
        Self { head }
    }

    /// Starts from pre-serialised members (`{` and `"k":v,...` without the
    /// closing brace); the pad member is appended after a comma.
    pub fn from_head(members_without_brace: &[u8]) -> Self {
        let mut head = Zeroizing::new(Vec::with_capacity(
            members_without_brace.len() + PAD_KEY_WITH_COMMA.len(),
        ));
        head.extend_from_slice(members_without_brace);
        head.extend_from_slice(PAD_KEY_WITH_COMMA);
        Self { head }
    }

    /// Length of the object with an empty pad.
    pub fn min_len(&self) -> usize {
        self.head.len() + PAD_TAIL.len()
    }

    /// The object with a pad that makes it exactly `len` bytes
    /// (`len` ≥ [`Self::min_len`]; a smaller `len` gives an empty pad).
    pub fn padded_to(&self, len: usize) -> Zeroizing<Vec<u8>> {
        let zeros = len.saturating_sub(self.min_len());
        let mut out = Zeroizing::new(Vec::with_capacity(self.min_len() + zeros));
        out.extend_from_slice(&self.head);
        let padded = out.len() + zeros;
        out.resize(padded, b'0');
        out.extend_from_slice(PAD_TAIL);
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn buckets() {
        assert_eq!(request_bucket(0), Some(1024));
        assert_eq!(request_bucket(1024), Some(1024));
        assert_eq!(request_bucket(1025), Some(4096));
        assert_eq!(request_bucket(131072), Some(131072));
        assert_eq!(request_bucket(131073), None);
        assert_eq!(response_target(10), 1024);
        assert_eq!(response_target(131073), 262144);
        assert_eq!(response_target(262144), 262144);
        assert_eq!(response_target(262145), 393216);
    }

    #[test]
    fn pads_exactly_and_replaces_pad() {
        let obj = json!({"method": "info", "params": {"x": "é\n"}, "pad": "old"});
        let u = Unpadded::from_object(obj.as_object().unwrap());
        for len in [u.min_len(), 1024, 4096] {
            let out = u.padded_to(len);
            assert_eq!(out.len(), len);
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["method"], "info");
            assert_eq!(v["params"], json!({"x": "é\n"}));
            let pad = v["pad"].as_str().unwrap();
            assert!(pad.bytes().all(|b| b == b'0'));
            assert!(out.ends_with(PAD_TAIL));
        }
    }

    #[test]
    fn empty_object() {
        let u = Unpadded::from_object(&Map::new());
        assert_eq!(&*u.padded_to(0), br#"{"pad":""}"#);
        assert_eq!(&*u.padded_to(12), br#"{"pad":"00"}"#);
    }

    #[test]
    fn from_head() {
        let u = Unpadded::from_head(br#"{"status":200,"body":null"#);
        assert_eq!(&*u.padded_to(0), br#"{"status":200,"body":null,"pad":""}"#);
    }
}
