//! The safe face of libsodium: the only module of Allium with `unsafe`.
//!
//! Every primitive the protocol uses goes through here, so that buffer sizes
//! are checked once, in one place, by the type system (fixed-size arrays) and
//! by explicit length checks before each FFI call. Secret outputs come back
//! as [`Zeroizing`] buffers so they are wiped when dropped.
#![allow(unsafe_code)]

use std::sync::OnceLock;

use libsodium_sys as ffi;
use zeroize::Zeroizing;

/// A 32-byte secret that is wiped on drop.
pub type Secret32 = Zeroizing<[u8; 32]>;
/// A 64-byte secret (an Ed25519 secret key: seed ‖ public key) wiped on drop.
pub type Secret64 = Zeroizing<[u8; 64]>;

/// Size of an XChaCha20-Poly1305 nonce.
pub const XCHACHA_NONCE_LEN: usize = 24;
/// Size of the Poly1305 tag appended by the AEAD.
pub const AEAD_TAG_LEN: usize = 16;
/// Bytes `crypto_box_seal` adds: ephemeral public key (32) + MAC (16).
pub const SEAL_OVERHEAD: usize = 48;
/// Size of an X-Wing public key (ML-KEM-768 encapsulation key ‖ X25519 key).
pub const XWING_PUBLIC_KEY_LEN: usize = 1_216;
/// Size of an X-Wing secret key: the 32-byte seed the key pair expands from.
pub const XWING_SECRET_KEY_LEN: usize = 32;
/// Size of an X-Wing ciphertext (ML-KEM-768 ciphertext ‖ X25519 ephemeral key).
pub const XWING_CIPHERTEXT_LEN: usize = 1_120;
/// Size of an X-Wing shared secret.
pub const XWING_SHARED_SECRET_LEN: usize = 32;
/// Size of the seed of an X-Wing key pair.
pub const XWING_SEED_LEN: usize = 32;
/// Size of the randomness of one X-Wing encapsulation: 32 bytes for ML-KEM
/// then the 32-byte X25519 ephemeral scalar (the draft's `eseed`). Not
/// [`XWING_SEED_LEN`]: that one is the key pair's.
pub const XWING_ENC_SEED_LEN: usize = 64;

/// A primitive refused its input (invalid point, failed authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("libsodium rejected the input in {0}")]
pub struct SodiumError(pub &'static str);

/// Initialises libsodium once per process; every wrapper calls it first.
pub fn init() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        // SAFETY: sodium_init is thread-safe and idempotent; it returns -1
        // only when the library cannot be used at all (no entropy source).
        let rc = unsafe { ffi::sodium_init() };
        assert!(rc >= 0, "libsodium failed to initialise (sodium_init = {rc})");
    });
}

/// Fills `buf` with cryptographically secure random bytes.
///
/// `allium-common` never calls this itself (randomness is passed in); it is
/// here so binaries draw their randomness from the same library.
pub fn random_bytes(buf: &mut [u8]) {
    init();
    // SAFETY: writes exactly buf.len() bytes into buf.
    unsafe { ffi::randombytes_buf(buf.as_mut_ptr().cast(), buf.len()) }
}

/// Returns `N` random bytes; see [`random_bytes`].
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    random_bytes(&mut out);
    out
}

/// A random index below `n` (0 when `n` is 0), from 64 random bits: the
/// modulo bias is under `n / 2^64`, nothing for list and path sizes.
pub fn random_index(n: usize) -> usize {
    let r = u64::from_le_bytes(random_array());
    usize::try_from(r % n.max(1) as u64).unwrap_or(0)
}

/// Puts `items` in random order (Fisher-Yates with libsodium's randomness).
pub fn shuffle<T>(items: &mut [T]) {
    for i in (1..items.len()).rev() {
        items.swap(i, random_index(i + 1));
    }
}

/// Ed25519 key pair from a 32-byte seed: (public key, secret key = seed ‖ pk).
pub fn sign_seed_keypair(seed: &[u8; 32]) -> ([u8; 32], Secret64) {
    init();
    let mut pk = [0u8; 32];
    let mut sk = Zeroizing::new([0u8; 64]);
    // SAFETY: pk is 32 bytes, sk 64 bytes, seed 32 bytes, as the API requires.
    unsafe {
        ffi::crypto_sign_seed_keypair(pk.as_mut_ptr(), sk.as_mut_ptr(), seed.as_ptr());
    }
    (pk, sk)
}

/// Detached Ed25519 signature of `msg`.
pub fn sign_detached(sk: &[u8; 64], msg: &[u8]) -> [u8; 64] {
    init();
    let mut sig = [0u8; 64];
    // SAFETY: sig is 64 bytes; siglen may be null; msg pointer/length match.
    unsafe {
        ffi::crypto_sign_detached(
            sig.as_mut_ptr(),
            std::ptr::null_mut(),
            msg.as_ptr(),
            msg.len() as u64,
            sk.as_ptr(),
        );
    }
    sig
}

/// Verifies a detached Ed25519 signature (strict: rejects small-order keys
/// and non-canonical encodings, as libsodium does).
pub fn sign_verify_detached(sig: &[u8; 64], msg: &[u8], pk: &[u8; 32]) -> bool {
    init();
    // SAFETY: sig 64 bytes, pk 32 bytes, msg pointer/length match.
    let rc = unsafe { ffi::crypto_sign_verify_detached(sig.as_ptr(), msg.as_ptr(), msg.len() as u64, pk.as_ptr()) };
    rc == 0
}

/// Compares two 32-byte values in constant time (MACs, keys).
pub fn equal_32(a: &[u8; 32], b: &[u8; 32]) -> bool {
    init();
    // SAFETY: both pointers are to 32 readable bytes.
    unsafe { ffi::crypto_verify_32(a.as_ptr(), b.as_ptr()) == 0 }
}

/// Converts an Ed25519 public key to its X25519 (Montgomery) form.
pub fn ed25519_pk_to_x25519(ed_pk: &[u8; 32]) -> Result<[u8; 32], SodiumError> {
    init();
    let mut out = [0u8; 32];
    // SAFETY: both buffers are 32 bytes.
    let rc = unsafe { ffi::crypto_sign_ed25519_pk_to_curve25519(out.as_mut_ptr(), ed_pk.as_ptr()) };
    if rc == 0 {
        Ok(out)
    } else {
        Err(SodiumError("crypto_sign_ed25519_pk_to_curve25519"))
    }
}

/// Converts an Ed25519 secret key to its X25519 scalar.
pub fn ed25519_sk_to_x25519(ed_sk: &[u8; 64]) -> Secret32 {
    init();
    let mut out = Zeroizing::new([0u8; 32]);
    // SAFETY: out is 32 bytes, ed_sk 64 bytes. The call cannot fail.
    unsafe {
        ffi::crypto_sign_ed25519_sk_to_curve25519(out.as_mut_ptr(), ed_sk.as_ptr());
    }
    out
}

/// X25519 public key of a secret scalar.
pub fn x25519_base(sk: &[u8; 32]) -> [u8; 32] {
    init();
    let mut out = [0u8; 32];
    // SAFETY: both buffers are 32 bytes; the base-point multiplication
    // fails only for a zero result, which a clamped scalar cannot give.
    unsafe {
        ffi::crypto_scalarmult_base(out.as_mut_ptr(), sk.as_ptr());
    }
    out
}

/// X25519 Diffie-Hellman; refuses peers whose result is all zeros
/// (small-order points), so a hostile key cannot force a known secret.
pub fn x25519(sk: &[u8; 32], peer_pk: &[u8; 32]) -> Result<Secret32, SodiumError> {
    init();
    let mut out = Zeroizing::new([0u8; 32]);
    // SAFETY: all three buffers are 32 bytes.
    let rc = unsafe { ffi::crypto_scalarmult(out.as_mut_ptr(), sk.as_ptr(), peer_pk.as_ptr()) };
    if rc == 0 {
        Ok(out)
    } else {
        Err(SodiumError("crypto_scalarmult"))
    }
}

/// Unkeyed BLAKE2b of the concatenation of `parts`, `N` bytes of output
/// (16 ≤ N ≤ 64).
pub fn blake2b<const N: usize>(parts: &[&[u8]]) -> [u8; N] {
    generichash(&[], parts)
}

/// BLAKE2b keyed with `key` (a MAC) of the concatenation of `parts`, `N`
/// bytes of output (16 ≤ N ≤ 64).
pub fn blake2b_keyed<const N: usize>(key: &[u8; 32], parts: &[&[u8]]) -> [u8; N] {
    generichash(key, parts)
}

/// BLAKE2b with an 8-byte digest (RFC 7693 `nn = 8`, not a truncation of a
/// longer one): the key id of `docs/envelope-v2.md`.
///
/// libsodium documents 16 bytes as `crypto_generichash`'s smallest output
/// but has always accepted any length from 1 to 64, and computes the real
/// BLAKE2b-64; a unit test pins the value against Python's `hashlib`, so a
/// libsodium that stopped accepting it would fail the tests, and this
/// asserts rather than return an id of zeros.
pub fn blake2b_64(data: &[u8]) -> [u8; 8] {
    init();
    let mut out = [0u8; 8];
    // SAFETY: out is 8 bytes, the length given; data pointer/length match;
    // the key is null with length 0 (unkeyed).
    let rc = unsafe {
        ffi::crypto_generichash(
            out.as_mut_ptr(),
            out.len(),
            data.as_ptr(),
            data.len() as u64,
            std::ptr::null(),
            0,
        )
    };
    assert_eq!(rc, 0, "this libsodium refuses 8-byte BLAKE2b digests");
    out
}

fn generichash<const N: usize>(key: &[u8], parts: &[&[u8]]) -> [u8; N] {
    const {
        assert!(N >= 16 && N <= 64, "BLAKE2b output must be 16..=64 bytes");
    }
    init();
    let mut out = [0u8; N];
    let mut state = std::mem::MaybeUninit::<ffi::crypto_generichash_state>::uninit();
    let key_ptr = if key.is_empty() { std::ptr::null() } else { key.as_ptr() };
    // SAFETY: the state is initialised by crypto_generichash_init before use;
    // the key is null with length 0 or 32 bytes (within libsodium's 16..=64);
    // each part's pointer/length match; out is N bytes, the same N given to
    // init.
    unsafe {
        ffi::crypto_generichash_init(state.as_mut_ptr(), key_ptr, key.len(), N);
        for part in parts {
            ffi::crypto_generichash_update(state.as_mut_ptr(), part.as_ptr(), part.len() as u64);
        }
        ffi::crypto_generichash_final(state.as_mut_ptr(), out.as_mut_ptr(), N);
    }
    out
}

/// Unkeyed BLAKE2b-256 over data given piece by piece (a whole file read
/// in blocks): the same digest as [`blake2b`] of the pieces joined.
pub struct Blake2b256 {
    // Boxed: libsodium wants the state aligned, and the box keeps the
    // type's alignment wherever the hasher moves.
    state: Box<std::mem::MaybeUninit<ffi::crypto_generichash_state>>,
}

impl Blake2b256 {
    /// A hasher with nothing hashed yet.
    pub fn new() -> Self {
        init();
        let mut state = Box::new(std::mem::MaybeUninit::<ffi::crypto_generichash_state>::uninit());
        // SAFETY: init writes the state; no key (null, 0), 32-byte output.
        unsafe {
            ffi::crypto_generichash_init(state.as_mut_ptr(), std::ptr::null(), 0, 32);
        }
        Self { state }
    }

    /// Hashes `data` after what came before.
    pub fn update(&mut self, data: &[u8]) {
        // SAFETY: the state was initialised by `new`; pointer and length
        // are the slice's.
        unsafe {
            ffi::crypto_generichash_update(self.state.as_mut_ptr(), data.as_ptr(), data.len() as u64);
        }
    }

    /// The digest of everything hashed.
    pub fn finish(mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // SAFETY: initialised state; out is the 32 bytes `new` asked for.
        unsafe {
            ffi::crypto_generichash_final(self.state.as_mut_ptr(), out.as_mut_ptr(), 32);
        }
        out
    }
}

impl Default for Blake2b256 {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Blake2b256 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blake2b256")
    }
}

/// XChaCha20-Poly1305-IETF encryption: returns ciphertext ‖ tag.
pub fn xchacha_encrypt(key: &[u8; 32], nonce: &[u8; 24], plaintext: &[u8], ad: &[u8]) -> Vec<u8> {
    init();
    let mut out = vec![0u8; plaintext.len() + AEAD_TAG_LEN];
    let mut out_len: u64 = 0;
    // SAFETY: out has room for plaintext + tag; ad may be empty (then its
    // pointer is not read); key 32 and nonce 24 bytes as required.
    unsafe {
        ffi::crypto_aead_xchacha20poly1305_ietf_encrypt(
            out.as_mut_ptr(),
            &mut out_len,
            plaintext.as_ptr(),
            plaintext.len() as u64,
            ad.as_ptr(),
            ad.len() as u64,
            std::ptr::null(),
            nonce.as_ptr(),
            key.as_ptr(),
        );
    }
    out.truncate(out_len as usize);
    out
}

/// Size of a secretstream header.
pub const SECRETSTREAM_HEADER_LEN: usize = 24;
/// Bytes a secretstream record adds to its plaintext (tag byte and MAC).
pub const SECRETSTREAM_ABYTES: usize = 17;

/// A `crypto_secretstream_xchacha20poly1305` state, wiped on drop. Made from
/// a key and a header the caller chose ([`SecretStream::new`]), so that the
/// same key and header give the same records: a resumed upload re-encrypts
/// byte for byte the same. libsodium's `init_push` draws the header at
/// random; `init_pull` builds the same state from a given header, and the
/// state serves both directions.
pub struct SecretStream {
    state: ffi::crypto_secretstream_xchacha20poly1305_state,
}

impl SecretStream {
    /// The state of the stream with `key` and `header`.
    pub fn new(key: &[u8; 32], header: &[u8; SECRETSTREAM_HEADER_LEN]) -> Self {
        init();
        let mut state = ffi::crypto_secretstream_xchacha20poly1305_state {
            k: [0; 32],
            nonce: [0; 12],
            _pad: [0; 8],
        };
        // SAFETY: state is a valid, writable state; header has the 24
        // bytes and key the 32 libsodium reads. init_pull always returns 0.
        unsafe {
            ffi::crypto_secretstream_xchacha20poly1305_init_pull(&mut state, header.as_ptr(), key.as_ptr());
        }
        Self { state }
    }

    /// Encrypts the next record; `last` tags it `FINAL`.
    pub fn push(&mut self, plaintext: &[u8], last: bool) -> Vec<u8> {
        let tag = if last {
            ffi::crypto_secretstream_xchacha20poly1305_TAG_FINAL as u8
        } else {
            ffi::crypto_secretstream_xchacha20poly1305_TAG_MESSAGE as u8
        };
        let mut out = vec![0u8; plaintext.len() + SECRETSTREAM_ABYTES];
        let mut out_len: u64 = 0;
        // SAFETY: out has room for plaintext + ABYTES; no additional data.
        unsafe {
            ffi::crypto_secretstream_xchacha20poly1305_push(
                &mut self.state,
                out.as_mut_ptr(),
                &mut out_len,
                plaintext.as_ptr(),
                plaintext.len() as u64,
                std::ptr::null(),
                0,
                tag,
            );
        }
        out.truncate(out_len as usize);
        out
    }

    /// Decrypts the next record; returns its plaintext and whether it was
    /// tagged `FINAL`. A record changed, moved or from another stream is
    /// refused, and the state is then unusable for the records after it.
    pub fn pull(&mut self, record: &[u8]) -> Result<(Zeroizing<Vec<u8>>, bool), SodiumError> {
        const WHAT: &str = "crypto_secretstream_xchacha20poly1305_pull";
        if record.len() < SECRETSTREAM_ABYTES {
            return Err(SodiumError(WHAT));
        }
        let mut out = Zeroizing::new(vec![0u8; record.len() - SECRETSTREAM_ABYTES]);
        let mut out_len: u64 = 0;
        let mut tag: u8 = 0;
        // SAFETY: out has room for record - ABYTES bytes (length checked).
        let rc = unsafe {
            ffi::crypto_secretstream_xchacha20poly1305_pull(
                &mut self.state,
                out.as_mut_ptr(),
                &mut out_len,
                &mut tag,
                record.as_ptr(),
                record.len() as u64,
                std::ptr::null(),
                0,
            )
        };
        if rc != 0 {
            return Err(SodiumError(WHAT));
        }
        out.truncate(out_len as usize);
        Ok((out, tag == ffi::crypto_secretstream_xchacha20poly1305_TAG_FINAL as u8))
    }
}

impl Drop for SecretStream {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.state.k.zeroize();
        self.state.nonce.zeroize();
    }
}

impl std::fmt::Debug for SecretStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretStream")
    }
}

/// XChaCha20-Poly1305-IETF decryption of ciphertext ‖ tag.
pub fn xchacha_decrypt(
    key: &[u8; 32],
    nonce: &[u8; 24],
    ciphertext: &[u8],
    ad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SodiumError> {
    init();
    if ciphertext.len() < AEAD_TAG_LEN {
        return Err(SodiumError("crypto_aead_xchacha20poly1305_ietf_decrypt"));
    }
    let mut out = Zeroizing::new(vec![0u8; ciphertext.len() - AEAD_TAG_LEN]);
    let mut out_len: u64 = 0;
    // SAFETY: out has room for ciphertext - tag bytes; lengths checked above.
    let rc = unsafe {
        ffi::crypto_aead_xchacha20poly1305_ietf_decrypt(
            out.as_mut_ptr(),
            &mut out_len,
            std::ptr::null_mut(),
            ciphertext.as_ptr(),
            ciphertext.len() as u64,
            ad.as_ptr(),
            ad.len() as u64,
            nonce.as_ptr(),
            key.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(SodiumError("crypto_aead_xchacha20poly1305_ietf_decrypt"));
    }
    out.truncate(out_len as usize);
    Ok(out)
}

/// X25519 box key pair from a 32-byte seed: (public, secret).
pub fn box_seed_keypair(seed: &[u8; 32]) -> ([u8; 32], Secret32) {
    init();
    let mut pk = [0u8; 32];
    let mut sk = Zeroizing::new([0u8; 32]);
    // SAFETY: all buffers are 32 bytes.
    unsafe {
        ffi::crypto_box_seed_keypair(pk.as_mut_ptr(), sk.as_mut_ptr(), seed.as_ptr());
    }
    (pk, sk)
}

/// `crypto_box_seal` with the ephemeral key pair derived from `eph_seed`
/// instead of drawn inside libsodium, so that callers pass randomness in and
/// tests can pin vectors. The output is byte-for-byte what `crypto_box_seal`
/// produces for that ephemeral key: `epk ‖ crypto_box_easy(m, nonce, rpk, esk)`
/// with `nonce = BLAKE2b-192(epk ‖ rpk)`, and [`box_seal_open`] opens it.
pub fn box_seal_with_seed(msg: &[u8], recipient_pk: &[u8; 32], eph_seed: &[u8; 32]) -> Result<Vec<u8>, SodiumError> {
    let (epk, esk) = box_seed_keypair(eph_seed);
    let nonce: [u8; 24] = blake2b(&[&epk, recipient_pk]);
    let mut out = vec![0u8; SEAL_OVERHEAD + msg.len()];
    out[..32].copy_from_slice(&epk);
    // SAFETY: out[32..] has msg.len() + MAC (16) bytes; nonce 24, keys 32.
    let rc = unsafe {
        ffi::crypto_box_easy(
            out[32..].as_mut_ptr(),
            msg.as_ptr(),
            msg.len() as u64,
            nonce.as_ptr(),
            recipient_pk.as_ptr(),
            esk.as_ptr(),
        )
    };
    // crypto_box_easy fails only for a small-order recipient key.
    if rc != 0 {
        return Err(SodiumError("crypto_box_easy"));
    }
    Ok(out)
}

/// Opens a sealed box for the key pair (pk, sk).
pub fn box_seal_open(sealed: &[u8], pk: &[u8; 32], sk: &[u8; 32]) -> Result<Zeroizing<Vec<u8>>, SodiumError> {
    init();
    if sealed.len() < SEAL_OVERHEAD {
        return Err(SodiumError("crypto_box_seal_open"));
    }
    let mut out = Zeroizing::new(vec![0u8; sealed.len() - SEAL_OVERHEAD]);
    // SAFETY: out has sealed.len() - 48 bytes as the API writes; keys 32.
    let rc = unsafe {
        ffi::crypto_box_seal_open(
            out.as_mut_ptr(),
            sealed.as_ptr(),
            sealed.len() as u64,
            pk.as_ptr(),
            sk.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(SodiumError("crypto_box_seal_open"));
    }
    Ok(out)
}

/// An X-Wing public key.
pub type XwingPublicKey = [u8; XWING_PUBLIC_KEY_LEN];
/// An X-Wing ciphertext.
pub type XwingCiphertext = [u8; XWING_CIPHERTEXT_LEN];

/// A fresh random X-Wing key pair: (public key, secret key).
pub fn xwing_keypair() -> (XwingPublicKey, Secret32) {
    init();
    let mut pk = [0u8; XWING_PUBLIC_KEY_LEN];
    let mut sk = Zeroizing::new([0u8; XWING_SECRET_KEY_LEN]);
    // SAFETY: pk is 1,216 bytes and sk 32, as the API requires. The call
    // draws a seed from libsodium's generator and always returns 0.
    unsafe {
        ffi::crypto_kem_xwing_keypair(pk.as_mut_ptr(), sk.as_mut_ptr());
    }
    (pk, sk)
}

/// The X-Wing key pair of a 32-byte seed: (public key, secret key). The
/// secret key is the seed itself; decapsulation expands it again.
pub fn xwing_seed_keypair(seed: &[u8; XWING_SEED_LEN]) -> (XwingPublicKey, Secret32) {
    init();
    let mut pk = [0u8; XWING_PUBLIC_KEY_LEN];
    let mut sk = Zeroizing::new([0u8; XWING_SECRET_KEY_LEN]);
    // SAFETY: pk 1,216 bytes, sk 32, seed 32, as the API requires; the call
    // always returns 0.
    unsafe {
        ffi::crypto_kem_xwing_seed_keypair(pk.as_mut_ptr(), sk.as_mut_ptr(), seed.as_ptr());
    }
    (pk, sk)
}

/// X-Wing encapsulation to `pk` with libsodium's randomness: (ciphertext,
/// shared secret). Fails for a public key whose ML-KEM part is not
/// canonical or whose X25519 part has small order.
pub fn xwing_enc(pk: &XwingPublicKey) -> Result<(XwingCiphertext, Secret32), SodiumError> {
    init();
    let mut ct = [0u8; XWING_CIPHERTEXT_LEN];
    let mut ss = Zeroizing::new([0u8; XWING_SHARED_SECRET_LEN]);
    // SAFETY: ct 1,120 bytes, ss 32, pk 1,216, as the API requires.
    let rc = unsafe { ffi::crypto_kem_xwing_enc(ct.as_mut_ptr(), ss.as_mut_ptr(), pk.as_ptr()) };
    if rc == 0 {
        Ok((ct, ss))
    } else {
        Err(SodiumError("crypto_kem_xwing_enc"))
    }
}

/// X-Wing encapsulation to `pk` with the caller's 64 random bytes (the
/// draft's `EncapsulateDerand`), so callers pass randomness in and vectors
/// can be pinned. The same seed for the same key gives the same shared
/// secret: never reuse one. Fails as [`xwing_enc`] does.
pub fn xwing_enc_deterministic(
    pk: &XwingPublicKey,
    seed: &[u8; XWING_ENC_SEED_LEN],
) -> Result<(XwingCiphertext, Secret32), SodiumError> {
    init();
    let mut ct = [0u8; XWING_CIPHERTEXT_LEN];
    let mut ss = Zeroizing::new([0u8; XWING_SHARED_SECRET_LEN]);
    // SAFETY: ct 1,120 bytes, ss 32, pk 1,216 and seed 64, as the API
    // requires (libsodium reads 64 seed bytes: ML-KEM's 32, then X25519's).
    let rc = unsafe {
        ffi::crypto_kem_xwing_enc_deterministic(ct.as_mut_ptr(), ss.as_mut_ptr(), pk.as_ptr(), seed.as_ptr())
    };
    if rc == 0 {
        Ok((ct, ss))
    } else {
        Err(SodiumError("crypto_kem_xwing_enc_deterministic"))
    }
}

/// X-Wing decapsulation. A ciphertext made for another key, or altered,
/// still gives a shared secret (ML-KEM's implicit rejection), only a
/// different one: the caller's authenticated decryption is what refuses
/// it. Fails only when the ciphertext's X25519 part has small order.
pub fn xwing_dec(ct: &XwingCiphertext, sk: &[u8; XWING_SECRET_KEY_LEN]) -> Result<Secret32, SodiumError> {
    init();
    let mut ss = Zeroizing::new([0u8; XWING_SHARED_SECRET_LEN]);
    // SAFETY: ss 32 bytes, ct 1,120, sk 32, as the API requires.
    let rc = unsafe { ffi::crypto_kem_xwing_dec(ss.as_mut_ptr(), ct.as_ptr(), sk.as_ptr()) };
    if rc == 0 {
        Ok(ss)
    } else {
        Err(SodiumError("crypto_kem_xwing_dec"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blake2b_matches_rfc7693_abc_vector() {
        // RFC 7693 Appendix A: BLAKE2b-512("abc").
        let out: [u8; 64] = blake2b(&[b"a", b"bc"]);
        assert_eq!(
            hex::encode(out),
            "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d1\
             7d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923"
        );
    }

    #[test]
    fn keyed_blake2b_matches_an_independent_implementation() {
        // Python's hashlib.blake2b(b"allium", key=bytes(range(32)), digest_size=32).
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let out: [u8; 32] = blake2b_keyed(&key, &[b"all", b"ium"]);
        assert_eq!(
            hex::encode(out),
            "a897599e8e2548bdd44428bc73c26aed1295d3fc71767a4c1be1a031d6244836"
        );
        assert_ne!(out, blake2b::<32>(&[b"allium"]), "the key matters");
    }

    #[test]
    fn seal_with_seed_opens_with_libsodium_seal_open() {
        let (rpk, rsk) = box_seed_keypair(&[7u8; 32]);
        let sealed = box_seal_with_seed(b"hello", &rpk, &[9u8; 32]).unwrap();
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        let opened = box_seal_open(&sealed, &rpk, &rsk).map(|v| v.to_vec());
        assert_eq!(opened, Ok(b"hello".to_vec()));
        let (other_pk, other_sk) = box_seed_keypair(&[8u8; 32]);
        assert!(box_seal_open(&sealed, &other_pk, &other_sk).is_err());
    }

    #[test]
    fn seal_open_rejects_short_input() {
        let (rpk, rsk) = box_seed_keypair(&[7u8; 32]);
        assert!(box_seal_open(&[0u8; 47], &rpk, &rsk).is_err());
    }

    #[test]
    fn x25519_rejects_small_order_point() {
        let sk = [5u8; 32];
        assert!(x25519(&sk, &[0u8; 32]).is_err());
    }

    #[test]
    fn xchacha_round_trip_and_tamper() {
        let key = [1u8; 32];
        let nonce = [2u8; 24];
        let mut ct = xchacha_encrypt(&key, &nonce, b"payload", b"");
        let pt = xchacha_decrypt(&key, &nonce, &ct, b"").map(|v| v.to_vec());
        assert_eq!(pt, Ok(b"payload".to_vec()));
        ct[0] ^= 1;
        assert!(xchacha_decrypt(&key, &nonce, &ct, b"").is_err());
        assert!(xchacha_decrypt(&key, &nonce, &[0u8; 15], b"").is_err());
    }

    #[test]
    fn sign_and_verify() {
        let (pk, sk) = sign_seed_keypair(&[3u8; 32]);
        let sig = sign_detached(&sk, b"msg");
        assert!(sign_verify_detached(&sig, b"msg", &pk));
        assert!(!sign_verify_detached(&sig, b"msh", &pk));
    }

    #[test]
    fn blake2b_64_matches_an_independent_implementation() {
        // Python's hashlib.blake2b(data, digest_size=8).
        assert_eq!(hex::encode(blake2b_64(b"abc")), "d8bb14d833d59559");
        let data: Vec<u8> = (0..5).flat_map(|_| 0..=255u8).collect();
        assert_eq!(hex::encode(blake2b_64(&data)), "19970c06661db846");
        assert_ne!(
            blake2b_64(b"abc")[..],
            blake2b::<16>(&[b"abc"])[..8],
            "not a truncation"
        );
    }

    #[test]
    fn xwing_sizes_match_libsodium() {
        // SAFETY: the size functions take no arguments and only return constants.
        let sizes = unsafe {
            [
                ffi::crypto_kem_xwing_publickeybytes(),
                ffi::crypto_kem_xwing_secretkeybytes(),
                ffi::crypto_kem_xwing_ciphertextbytes(),
                ffi::crypto_kem_xwing_sharedsecretbytes(),
                ffi::crypto_kem_xwing_seedbytes(),
            ]
        };
        assert_eq!(
            sizes,
            [
                XWING_PUBLIC_KEY_LEN,
                XWING_SECRET_KEY_LEN,
                XWING_CIPHERTEXT_LEN,
                XWING_SHARED_SECRET_LEN,
                XWING_SEED_LEN
            ]
        );
        assert_eq!(
            [
                XWING_PUBLIC_KEY_LEN,
                XWING_SECRET_KEY_LEN,
                XWING_CIPHERTEXT_LEN,
                XWING_SHARED_SECRET_LEN
            ],
            [1_216, 32, 1_120, 32]
        );
    }

    #[test]
    fn xwing_round_trip_and_implicit_rejection() {
        let (pk, sk) = xwing_keypair();
        let (ct, ss) = xwing_enc(&pk).unwrap();
        assert_eq!(*xwing_dec(&ct, &sk).unwrap(), *ss);
        // A flipped byte in either part is not an error, only another secret.
        for i in [0, 700, XWING_CIPHERTEXT_LEN - 1] {
            let mut bad = ct;
            bad[i] ^= 0x01;
            let other = xwing_dec(&bad, &sk).unwrap();
            assert_ne!(*other, *ss, "flip at {i}");
        }
        let (_, other_sk) = xwing_keypair();
        assert_ne!(*xwing_dec(&ct, &other_sk).unwrap(), *ss);
    }

    #[test]
    fn xwing_seeded_is_deterministic() {
        let (pk, sk) = xwing_seed_keypair(&[0xc2; 32]);
        assert_eq!(*sk, [0xc2; 32], "the secret key is the seed");
        assert_eq!(xwing_seed_keypair(&[0xc2; 32]).0, pk);
        let (ct, ss) = xwing_enc_deterministic(&pk, &[0xe5; 64]).unwrap();
        let (ct2, ss2) = xwing_enc_deterministic(&pk, &[0xe5; 64]).unwrap();
        assert_eq!((ct, *ss), (ct2, *ss2));
        assert_eq!(*xwing_dec(&ct, &sk).unwrap(), *ss);
        let (ct3, _) = xwing_enc_deterministic(&pk, &[0xe6; 64]).unwrap();
        assert_ne!(ct3, ct);
    }

    #[test]
    fn xwing_refuses_unusable_keys_and_ciphertexts() {
        // An all-ones ML-KEM key has coefficients above q: not canonical.
        assert!(xwing_enc_deterministic(&[0xff; XWING_PUBLIC_KEY_LEN], &[1; 64]).is_err());
        // A small-order X25519 part (zero) is refused on both sides.
        let (mut pk, sk) = xwing_seed_keypair(&[3; 32]);
        let (mut ct, _) = xwing_enc(&pk).unwrap();
        pk[XWING_PUBLIC_KEY_LEN - 32..].fill(0);
        assert!(xwing_enc(&pk).is_err());
        ct[XWING_CIPHERTEXT_LEN - 32..].fill(0);
        assert!(xwing_dec(&ct, &sk).is_err());
    }
}
