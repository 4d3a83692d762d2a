//! Seed keys that can stay offline: a seed's identity key (the one in
//! `seed-nodes.toml`) certifies a medium-term signing key for a limited
//! time, and only the signing key is on the running seed (Tor's authority
//! key certificates, dir-spec §3.1).
//!
//! ```json
//! {"identity": hex, "signing": hex, "valid_from": ms, "valid_until": ms, "signature": base64}
//! ```
//!
//! The identity signs `"allium-seed-key-v1" 0x00 ‖ identity (32) ‖ signing
//! (32) ‖ BE64 valid_from ‖ BE64 valid_until`. A vote or a consensus
//! signature made with the signing key carries the certificate; it counts
//! for the identity only if the certificate verifies and covers the vote's
//! `published` time or the consensus's `valid_after`. A seed's TLS
//! certificate carries the signing key and this certificate
//! ([`crate::tls`]), so peers that pin the identity still reach it.
//!
//! The binary form (in the TLS certificate's extension) is the signed
//! fields without the domain, then the 64-byte signature: 144 bytes.

use serde::{Deserialize, Serialize};

use super::ConsensusError;
use crate::encoding::{Hex32, Sig64};
use crate::identity::{self, Identity};

/// Domain separator of the identity's signature.
pub const SEED_KEY_DOMAIN: &[u8] = b"allium-seed-key-v1\0";
/// Longest a certificate may be valid: a stolen signing key is good for at
/// most this long (Tor's authorities certify for up to twelve months).
pub const MAX_CERT_LIFETIME_MS: u64 = 366 * 24 * 60 * 60 * 1000;
/// Length of the binary form.
pub const CERT_BINARY_LEN: usize = 32 + 32 + 8 + 8 + 64;

/// A seed identity's statement that `signing` signs for it from
/// `valid_from` to `valid_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyCert {
    /// The identity key (in the seed file).
    pub identity: Hex32,
    /// The signing key (on the running seed).
    pub signing: Hex32,
    /// Start of validity, Unix ms.
    pub valid_from: u64,
    /// End of validity, Unix ms.
    pub valid_until: u64,
    /// The identity's signature over [`SigningKeyCert::signed_bytes`].
    pub signature: Sig64,
}

impl SigningKeyCert {
    /// `identity` certifies `signing` from `valid_from` to `valid_until`.
    pub fn issue(identity: &Identity, signing: [u8; 32], valid_from: u64, valid_until: u64) -> Self {
        let mut cert = Self {
            identity: Hex32(*identity.ed25519_pk()),
            signing: Hex32(signing),
            valid_from,
            valid_until,
            signature: Sig64([0; 64]),
        };
        cert.signature = Sig64(identity.sign(&cert.signed_bytes()));
        cert
    }

    /// What the identity signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SEED_KEY_DOMAIN.len() + 80);
        out.extend_from_slice(SEED_KEY_DOMAIN);
        out.extend_from_slice(&self.fields());
        out
    }

    fn fields(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(80);
        out.extend_from_slice(&self.identity.0);
        out.extend_from_slice(&self.signing.0);
        out.extend_from_slice(&self.valid_from.to_be_bytes());
        out.extend_from_slice(&self.valid_until.to_be_bytes());
        out
    }

    /// Checks the identity's signature, the lifetime, and that `at` (Unix
    /// ms) is inside the validity.
    pub fn check(&self, at: u64) -> Result<(), ConsensusError> {
        let bad = |reason| ConsensusError::BadSeedKey {
            seed: hex::encode(self.identity.0),
            reason,
        };
        if self.valid_until < self.valid_from || self.valid_until - self.valid_from > MAX_CERT_LIFETIME_MS {
            return Err(bad("the certificate's lifetime is empty or over a year"));
        }
        if !identity::verify(&self.identity.0, &self.signed_bytes(), &self.signature.0) {
            return Err(bad("the identity's signature does not verify"));
        }
        if at < self.valid_from {
            return Err(bad("the signing key is not yet valid"));
        }
        if at > self.valid_until {
            return Err(bad("the signing key has expired"));
        }
        Ok(())
    }

    /// The binary form (see the module docs).
    pub fn to_binary(&self) -> Vec<u8> {
        let mut out = self.fields();
        out.extend_from_slice(&self.signature.0);
        out
    }

    /// Reads the binary form; the signature is not checked here.
    pub fn from_binary(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != CERT_BINARY_LEN {
            return None;
        }
        let key = |at: usize| bytes.get(at..at + 32)?.try_into().ok().map(Hex32);
        let time = |at: usize| Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?));
        Some(Self {
            identity: key(0)?,
            signing: key(32)?,
            valid_from: time(64)?,
            valid_until: time(72)?,
            signature: Sig64(bytes.get(80..144)?.try_into().ok()?),
        })
    }
}

/// What a running seed signs with: its key, and the certificate that lets
/// that key speak for the seed's identity (none: the key is the identity,
/// as on a local network).
#[derive(Debug, Clone, Copy)]
pub struct SeedKey<'a> {
    /// The key on the running seed.
    pub key: &'a Identity,
    /// Its certificate, if the identity is kept elsewhere.
    pub cert: Option<&'a SigningKeyCert>,
}

impl<'a> From<&'a Identity> for SeedKey<'a> {
    fn from(key: &'a Identity) -> Self {
        Self { key, cert: None }
    }
}

impl SeedKey<'_> {
    /// The identity this key signs for.
    pub fn identity(&self) -> [u8; 32] {
        self.cert.map_or(*self.key.ed25519_pk(), |c| c.identity.0)
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Sig64 {
        Sig64(self.key.sign(message))
    }
}

/// Whether `signature` over `message` counts for the seed identity `seed`
/// at time `at`: made by `seed` itself, or by a signing key that `cert`
/// (which must name `seed`) certifies for `at`.
pub fn signed_for(
    seed: &[u8; 32],
    cert: Option<&SigningKeyCert>,
    message: &[u8],
    signature: &[u8; 64],
    at: u64,
) -> bool {
    match cert {
        None => identity::verify(seed, message, signature),
        Some(cert) => {
            &cert.identity.0 == seed && cert.check(at).is_ok() && identity::verify(&cert.signing.0, message, signature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 60 * 60 * 1000;
    const NOW: u64 = 1_700_000_000_000;

    #[test]
    fn a_certified_key_signs_for_its_identity_while_valid() {
        let identity = Identity::from_ed25519_seed(&[1; 32]);
        let signing = Identity::from_ed25519_seed(&[2; 32]);
        let cert = SigningKeyCert::issue(&identity, *signing.ed25519_pk(), NOW, NOW + 90 * DAY);
        let message = b"a consensus digest";
        let sig = signing.sign(message);
        let id = identity.ed25519_pk();
        assert!(signed_for(id, Some(&cert), message, &sig, NOW + DAY));
        assert!(!signed_for(id, Some(&cert), message, &sig, NOW - 1), "before");
        assert!(!signed_for(id, Some(&cert), message, &sig, NOW + 91 * DAY), "after");
        assert!(
            !signed_for(id, None, message, &sig, NOW),
            "the signing key is not the identity"
        );
        assert!(
            !signed_for(signing.ed25519_pk(), Some(&cert), message, &sig, NOW),
            "another identity"
        );
        let other = Identity::from_ed25519_seed(&[3; 32]);
        assert!(
            !signed_for(id, Some(&cert), message, &other.sign(message), NOW),
            "another signer"
        );
        // Any change to the certificate breaks the identity's signature.
        let mut longer = cert.clone();
        longer.valid_until += DAY;
        assert!(!signed_for(id, Some(&longer), message, &sig, NOW));
        let mut swapped = cert.clone();
        swapped.signing = Hex32(*other.ed25519_pk());
        assert!(!signed_for(id, Some(&swapped), message, &other.sign(message), NOW));
    }

    #[test]
    fn a_certificate_for_over_a_year_is_refused() {
        let identity = Identity::from_ed25519_seed(&[1; 32]);
        let cert = SigningKeyCert::issue(&identity, [2; 32], NOW, NOW + MAX_CERT_LIFETIME_MS + 1);
        assert!(cert.check(NOW + DAY).is_err());
        let backwards = SigningKeyCert::issue(&identity, [2; 32], NOW, NOW - 1);
        assert!(backwards.check(NOW).is_err());
    }

    #[test]
    fn the_binary_form_round_trips() {
        let identity = Identity::from_ed25519_seed(&[1; 32]);
        let cert = SigningKeyCert::issue(&identity, [2; 32], NOW, NOW + DAY);
        let bytes = cert.to_binary();
        assert_eq!(bytes.len(), CERT_BINARY_LEN);
        assert_eq!(SigningKeyCert::from_binary(&bytes), Some(cert));
        assert_eq!(SigningKeyCert::from_binary(&bytes[1..]), None);
    }
}
