//! The account state as a node stores it: padded to a size bucket and
//! encrypted with a key only the account's devices can derive, so a swarm
//! member learns the namespace, a size class and when it changes, never
//! what it holds.
//!
//! ```text
//! key    = BLAKE2b-256(key = identity seed, "allium-account-state-v1" 0x00 ‖ i16be(namespace))
//! sealed = 0x01 ‖ nonce (24, random) ‖ XChaCha20-Poly1305(key, nonce,
//!          ad = 0x01 ‖ i16be(namespace), u32be(len) ‖ state ‖ zero padding)
//! ```
//!
//! The padded plaintext is `4 + len` rounded up to a multiple of 256
//! bytes up to 5,120, of 1,024 up to 20,480, of 2,048 up to 40,960, and
//! of 5,120 beyond (Session's config buckets), and the sealed blob is at
//! most the 76,800 bytes a message may hold.

use zeroize::Zeroizing;

use crate::identity::Identity;
use crate::rpc::{MAX_DATA_LEN, Namespace};
use crate::sodium::{self, AEAD_TAG_LEN, XCHACHA_NONCE_LEN};

/// The format's version byte.
pub const SEALED_VERSION: u8 = 0x01;
/// Domain of the key derivation.
pub const KEY_DOMAIN: &[u8] = b"allium-account-state-v1\0";
/// What sealing adds to the padded plaintext.
pub const OVERHEAD: usize = 1 + XCHACHA_NONCE_LEN + AEAD_TAG_LEN;
/// The largest padded plaintext a message can carry.
pub const MAX_PADDED: usize = MAX_DATA_LEN - OVERHEAD;
/// The largest state (encoded) that fits.
pub const MAX_STATE: usize = MAX_PADDED - 4;

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The state does not fit one message.
    #[error("the account state is {0} bytes; at most {MAX_STATE} fit one message")]
    TooLarge(usize),
    /// Not a sealed state of this version, for this key and namespace.
    #[error("not an account state this account sealed for this namespace")]
    Unopenable,
}

/// The key of `namespace`'s state for the account of `identity`.
pub fn state_key(identity: &Identity, namespace: Namespace) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(sodium::blake2b_keyed::<32>(
        identity.ed25519_seed(),
        &[KEY_DOMAIN, &namespace.0.to_be_bytes()],
    ))
}

/// The padded size of a plaintext of `len` bytes (length prefix included).
pub fn padded_len(len: usize) -> usize {
    let n = len + 4;
    let step = match n {
        0..=5_120 => 256,
        5_121..=20_480 => 1_024,
        20_481..=40_960 => 2_048,
        _ => 5_120,
    };
    n.div_ceil(step).saturating_mul(step).min(MAX_PADDED)
}

/// Seals `state` (encoded) for `namespace` with a fresh random nonce.
pub fn seal(identity: &Identity, namespace: Namespace, state: &[u8]) -> Result<Vec<u8>, SealError> {
    seal_with_nonce(identity, namespace, state, &sodium::random_array())
}

/// [`seal`] with a given nonce (vectors).
pub fn seal_with_nonce(
    identity: &Identity,
    namespace: Namespace,
    state: &[u8],
    nonce: &[u8; XCHACHA_NONCE_LEN],
) -> Result<Vec<u8>, SealError> {
    if state.len() > MAX_STATE {
        return Err(SealError::TooLarge(state.len()));
    }
    let len = u32::try_from(state.len()).map_err(|_| SealError::TooLarge(state.len()))?;
    let mut padded = Zeroizing::new(Vec::with_capacity(padded_len(state.len())));
    padded.extend_from_slice(&len.to_be_bytes());
    padded.extend_from_slice(state);
    padded.resize(padded_len(state.len()), 0);
    let key = state_key(identity, namespace);
    let mut out = Vec::with_capacity(OVERHEAD + padded.len());
    out.push(SEALED_VERSION);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sodium::xchacha_encrypt(&key, nonce, &padded, &ad(namespace)));
    Ok(out)
}

/// Opens what [`seal`] made for `namespace`; the encoded state.
pub fn open(identity: &Identity, namespace: Namespace, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let (&version, rest) = sealed.split_first().ok_or(SealError::Unopenable)?;
    if version != SEALED_VERSION || rest.len() < XCHACHA_NONCE_LEN + AEAD_TAG_LEN + 4 {
        return Err(SealError::Unopenable);
    }
    let (nonce, ciphertext) = rest.split_at(XCHACHA_NONCE_LEN);
    let nonce: [u8; XCHACHA_NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Unopenable)?;
    let key = state_key(identity, namespace);
    let padded =
        sodium::xchacha_decrypt(&key, &nonce, ciphertext, &ad(namespace)).map_err(|_| SealError::Unopenable)?;
    let (len, body) = padded.split_at_checked(4).ok_or(SealError::Unopenable)?;
    let len = usize::try_from(u32::from_be_bytes(len.try_into().map_err(|_| SealError::Unopenable)?))
        .map_err(|_| SealError::Unopenable)?;
    let state = body.get(..len).ok_or(SealError::Unopenable)?;
    if body[len..].iter().any(|b| *b != 0) {
        return Err(SealError::Unopenable);
    }
    Ok(Zeroizing::new(state.to_vec()))
}

fn ad(namespace: Namespace) -> [u8; 3] {
    let [a, b] = namespace.0.to_be_bytes();
    [SEALED_VERSION, a, b]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> Identity {
        Identity::from_ed25519_seed(&[7; 32])
    }

    #[test]
    fn a_sealed_state_opens_only_for_its_account_and_namespace() {
        let state = br#"{"profile/name":{"stamp":{"at":1,"device":"00000000000000000000000000000000"},"value":"Ann"}}"#;
        let sealed = seal(&me(), Namespace(3), state).unwrap();
        assert_eq!(&open(&me(), Namespace(3), &sealed).unwrap()[..], &state[..]);
        assert_eq!(open(&me(), Namespace(4), &sealed), Err(SealError::Unopenable));
        let other = Identity::from_ed25519_seed(&[8; 32]);
        assert_eq!(open(&other, Namespace(3), &sealed), Err(SealError::Unopenable));
        for at in [0, 1, 30, sealed.len() - 1] {
            let mut bent = sealed.clone();
            bent[at] ^= 1;
            assert_eq!(
                open(&me(), Namespace(3), &bent),
                Err(SealError::Unopenable),
                "byte {at}"
            );
        }
        assert_ne!(
            sealed,
            seal(&me(), Namespace(3), state).unwrap(),
            "a fresh nonce each time"
        );
    }

    #[test]
    fn sizes_fall_in_buckets() {
        for (len, padded) in [
            (0, 256),
            (252, 256),
            (253, 512),
            (5_116, 5_120),
            (5_117, 6_144),
            (20_476, 20_480),
            (20_477, 22_528),
            (40_956, 40_960),
            (40_957, 46_080),
        ] {
            assert_eq!(padded_len(len), padded, "{len}");
            let sealed = seal(&me(), Namespace(2), &vec![b'x'; len]).unwrap();
            assert_eq!(sealed.len(), padded + OVERHEAD);
        }
        assert_eq!(
            seal(&me(), Namespace(2), &vec![b'x'; MAX_STATE]).unwrap().len(),
            MAX_DATA_LEN
        );
        assert_eq!(
            seal(&me(), Namespace(2), &vec![b'x'; MAX_STATE + 1]),
            Err(SealError::TooLarge(MAX_STATE + 1))
        );
    }
}
