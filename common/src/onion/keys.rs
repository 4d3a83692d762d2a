//! Hop keys and the per-layer box.
//!
//! key = BLAKE2b-256(X25519(a, N) ‖ A ‖ N) on the client, and
//! BLAKE2b-256(X25519(n, A) ‖ A ‖ N) on the node, where (a, A) is the
//! client's ephemeral pair and (n, N) the node's X25519 pair. Hashing `A` and
//! `N` in binds the key to this exact pair of public keys: X25519 ignores the
//! top bit of a peer key and the low-order component of a point, so several
//! encodings of `A` share one DH result, but only one gives this key.
//!
//! box = nonce24 ‖ XChaCha20-Poly1305-IETF(key, nonce, plaintext, no AD).

use std::fmt;

use zeroize::Zeroizing;

use super::OnionError;
use crate::sodium::{self, AEAD_TAG_LEN, Secret32, XCHACHA_NONCE_LEN};

/// Smallest possible box: nonce and tag around an empty plaintext.
pub const BOX_OVERHEAD: usize = XCHACHA_NONCE_LEN + AEAD_TAG_LEN;

/// The symmetric key of one onion layer, wiped on drop. Its `Debug` output
/// never shows the key.
#[derive(Clone)]
pub struct HopKey(Secret32);

impl HopKey {
    /// Wraps raw key bytes (for a key held elsewhere or a test vector).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The raw key bytes; keep them out of logs.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for HopKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HopKey(<redacted>)")
    }
}

/// The client's side of a hop key: from the ephemeral secret `a` and the
/// node's X25519 public key, returns the key and the ephemeral public key
/// `A` the node needs to derive it too.
///
/// Fails with [`OnionError::WeakNodeKey`] for a small-order node key, which
/// would make the shared secret predictable.
pub fn client_hop_key(ephemeral_sk: &[u8; 32], node_x25519: &[u8; 32]) -> Result<(HopKey, [u8; 32]), OnionError> {
    let ephemeral_pk = sodium::x25519_base(ephemeral_sk);
    let shared = sodium::x25519(ephemeral_sk, node_x25519).map_err(|_| OnionError::WeakNodeKey {
        node_x25519: *node_x25519,
    })?;
    Ok((hash_key(&shared, &ephemeral_pk, node_x25519), ephemeral_pk))
}

/// The node's side of a hop key, from its own X25519 pair and the client's
/// ephemeral public key `A` (from the trailer).
///
/// Fails with [`OnionError::WeakEphemeralKey`] when `A` is a small-order
/// point.
pub fn node_hop_key(
    node_x25519_sk: &[u8; 32],
    node_x25519_pk: &[u8; 32],
    ephemeral_pk: &[u8; 32],
) -> Result<HopKey, OnionError> {
    let shared = sodium::x25519(node_x25519_sk, ephemeral_pk).map_err(|_| OnionError::WeakEphemeralKey)?;
    Ok(hash_key(&shared, ephemeral_pk, node_x25519_pk))
}

fn hash_key(shared: &[u8; 32], ephemeral_pk: &[u8; 32], node_pk: &[u8; 32]) -> HopKey {
    HopKey(Zeroizing::new(sodium::blake2b::<32>(&[shared, ephemeral_pk, node_pk])))
}

/// `nonce ‖ XChaCha20-Poly1305(key, nonce, plaintext)`.
pub(super) fn seal(key: &HopKey, nonce: &[u8; XCHACHA_NONCE_LEN], plaintext: &[u8]) -> Vec<u8> {
    let ct = sodium::xchacha_encrypt(key.as_bytes(), nonce, plaintext, b"");
    let mut out = Vec::with_capacity(XCHACHA_NONCE_LEN + ct.len());
    out.extend_from_slice(nonce);
    out.extend_from_slice(&ct);
    out
}

/// Why a box did not open.
pub(super) enum OpenError {
    /// Shorter than [`BOX_OVERHEAD`].
    TooShort,
    /// Authentication failed.
    Failed,
}

/// Opens `nonce ‖ ciphertext ‖ tag`.
pub(super) fn open(key: &HopKey, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    if sealed.len() < BOX_OVERHEAD {
        return Err(OpenError::TooShort);
    }
    let (nonce, ct) = sealed
        .split_first_chunk::<XCHACHA_NONCE_LEN>()
        .ok_or(OpenError::TooShort)?;
    sodium::xchacha_decrypt(key.as_bytes(), nonce, ct, b"").map_err(|_| OpenError::Failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_node_agree() {
        let (node_pk, node_sk) = sodium::box_seed_keypair(&[1u8; 32]);
        let a = [2u8; 32];
        let (k1, big_a) = client_hop_key(&a, &node_pk).unwrap();
        assert_eq!(big_a, sodium::x25519_base(&a));
        let k2 = node_hop_key(&node_sk, &node_pk, &big_a).unwrap();
        assert_eq!(k1.as_bytes(), k2.as_bytes());
        // The key is not the raw DH result: A and N are hashed in.
        let shared = sodium::x25519(&a, &node_pk).unwrap();
        assert_ne!(k1.as_bytes(), &*shared);
    }

    #[test]
    fn equivalent_encoding_of_a_gives_another_key() {
        // X25519 ignores bit 255 of the peer key, so A with that bit set has
        // the same DH result; the hash of A must still separate the keys.
        let (node_pk, node_sk) = sodium::box_seed_keypair(&[1u8; 32]);
        let (k, mut big_a) = client_hop_key(&[2u8; 32], &node_pk).unwrap();
        big_a[31] ^= 0x80;
        let k2 = node_hop_key(&node_sk, &node_pk, &big_a).unwrap();
        assert_ne!(k.as_bytes(), k2.as_bytes());
    }

    #[test]
    fn small_order_points_are_refused() {
        let (node_pk, node_sk) = sodium::box_seed_keypair(&[1u8; 32]);
        // 0 and 1 are small-order u-coordinates on Curve25519.
        for weak in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            assert_eq!(
                client_hop_key(&[2u8; 32], &weak).map(|(_, a)| a),
                Err(OnionError::WeakNodeKey { node_x25519: weak })
            );
            assert!(matches!(
                node_hop_key(&node_sk, &node_pk, &weak),
                Err(OnionError::WeakEphemeralKey)
            ));
        }
    }

    #[test]
    fn debug_redacts() {
        let k = HopKey::from_bytes([0xab; 32]);
        assert_eq!(format!("{k:?}"), "HopKey(<redacted>)");
    }

    #[test]
    fn seal_open() {
        let k = HopKey::from_bytes([3u8; 32]);
        let mut b = seal(&k, &[4u8; 24], b"hi");
        assert_eq!(b.len(), 2 + BOX_OVERHEAD);
        assert_eq!(&b[..24], &[4u8; 24]);
        assert_eq!(open(&k, &b).ok().map(|p| p.to_vec()), Some(b"hi".to_vec()));
        assert!(matches!(open(&k, &b[..39]), Err(OpenError::TooShort)));
        b[0] ^= 1;
        assert!(matches!(open(&k, &b), Err(OpenError::Failed)));
    }
}
