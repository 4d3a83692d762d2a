//! TLS 1.3 on every link, keyed by the node's Ed25519 identity.
//!
//! A node's certificate is self-signed X.509 whose subject public key is
//! the node's Ed25519 identity key, so any standard TLS client can connect
//! (and pin it with `curl --pinnedpubkey`, say). Allium peers ignore names,
//! issuers and validity dates: a server is accepted only if the key in its
//! certificate is the one the caller expected (from the consensus for a
//! node, from `seed-nodes.toml` for a seed) and the handshake's signature
//! verifies under that key ([`PinnedServer`]). Nodes present the same
//! certificate when they call each other, so the callee learns which
//! consensus member is calling ([`NodeClients`], [`peer_key`]); clients
//! present none.
//!
//! Handshake signatures are checked here with libsodium under the key this
//! module read from the certificate: no second certificate parser decides
//! which key a signature is checked against.
//!
//! Only TLS 1.3 is offered or accepted, and only the Ed25519 signature
//! scheme.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};

use crate::consensus::SigningKeyCert;
use crate::identity::{self, Identity};

/// The arcs of the OID of the certificate extension that carries a seed's
/// signing-key certificate: `2.25.1350134688343274355`, under the arc any
/// UUID-sized number may take without registration (ITU-T X.667).
pub const SEED_KEY_EXTENSION_OID: [u64; 3] = [2, 25, 1_350_134_688_343_274_355];

/// Why a certificate or a TLS configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate is not DER X.509 with an Ed25519 subject key.
    #[error("the certificate does not carry an Ed25519 key: {0}")]
    NotEd25519(&'static str),
    /// The certificate could not be made.
    #[error("cannot make the link certificate: {0}")]
    Certificate(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// The crypto provider every Allium TLS configuration uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default crypto provider (once; later calls and
/// a provider installed by someone else are left alone). An HTTP client
/// built without an Allium configuration (plain HTTP for debugging) still
/// needs one.
pub fn install_default_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A node's link certificate and its private key.
#[derive(Debug)]
pub struct LinkCert {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Clone for LinkCert {
    fn clone(&self) -> Self {
        Self {
            cert: self.cert.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// RFC 8410 §7: PKCS#8 v1 of an Ed25519 private key is this prefix and the
/// 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// RFC 8410 §4: the SubjectPublicKeyInfo of an Ed25519 key is this prefix
/// and the 32-byte key.
const SPKI_ED25519_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

impl LinkCert {
    /// The self-signed certificate of `identity`.
    pub fn new(identity: &Identity) -> Result<Self, TlsError> {
        Self::with_seed_key(identity, None)
    }

    /// The self-signed certificate of `identity` (a seed's signing key),
    /// carrying `seed_key`: the certificate by which the seed's offline
    /// identity key lets it sign, so callers that pin the identity accept
    /// it ([`PinnedServer`]).
    pub fn with_seed_key(identity: &Identity, seed_key: Option<&SigningKeyCert>) -> Result<Self, TlsError> {
        let mut pkcs8 = Vec::with_capacity(48);
        pkcs8.extend_from_slice(&PKCS8_ED25519_PREFIX);
        pkcs8.extend_from_slice(identity.ed25519_seed());
        let key = PrivatePkcs8KeyDer::from(pkcs8);
        let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&key, &rcgen::PKCS_ED25519)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let mut params =
            rcgen::CertificateParams::new(Vec::<String>::new()).map_err(|e| TlsError::Certificate(e.to_string()))?;
        let mut name = rcgen::DistinguishedName::new();
        name.push(
            rcgen::DnType::CommonName,
            format!("allium node {}", hex::encode(identity.ed25519_pk())),
        );
        params.distinguished_name = name;
        if let Some(cert) = seed_key {
            // extnValue holds DER: an OCTET STRING of the binary form.
            let mut value = vec![0x04, 0x81, u8::try_from(crate::consensus::CERT_BINARY_LEN).unwrap_or(0)];
            value.extend_from_slice(&cert.to_binary());
            params
                .custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(&SEED_KEY_EXTENSION_OID, value));
        }
        // Peers pin the key and ignore dates; these cover any clock.
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(9999, 12, 31);
        let cert = params
            .self_signed(&pair)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        Ok(Self {
            cert: cert.der().clone(),
            key,
        })
    }

    /// The certificate, DER.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    fn chain(&self) -> Vec<CertificateDer<'static>> {
        vec![self.cert.clone()]
    }

    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

/// The Ed25519 key in a DER X.509 certificate's SubjectPublicKeyInfo.
///
/// Reads just enough DER to find that field (the seventh of
/// `tbsCertificate`, counting the optional version); any other key type,
/// indefinite length or trailing byte is refused.
pub fn peer_key(cert: &[u8]) -> Result<[u8; 32], TlsError> {
    read_certificate(cert).map(|(key, _)| key)
}

/// The Ed25519 key of a certificate and the seed-key certificate its
/// extension carries, if any (its signature not yet checked).
pub fn peer_key_and_seed_key(cert: &[u8]) -> Result<([u8; 32], Option<SigningKeyCert>), TlsError> {
    let (key, after_key) = read_certificate(cert)?;
    Ok((key, seed_key_extension(after_key)))
}

/// The SubjectPublicKeyInfo's key and what follows it in `tbsCertificate`.
fn read_certificate(cert: &[u8]) -> Result<([u8; 32], &[u8]), TlsError> {
    let (certificate, rest) = der_element(cert, 0x30)?;
    if !rest.is_empty() {
        return Err(TlsError::NotEd25519("bytes after the certificate"));
    }
    let (mut tbs, _) = der_element(certificate, 0x30)?;
    if tbs.first() == Some(&0xa0) {
        tbs = der_skip(tbs)?;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        tbs = der_skip(tbs)?;
    }
    let spki_len = der_len(tbs)?;
    let spki = tbs.get(..spki_len).ok_or(TlsError::NotEd25519("truncated key"))?;
    let key = match spki.strip_prefix(&SPKI_ED25519_PREFIX[..]) {
        Some(key) => key.try_into().map_err(|_| TlsError::NotEd25519("wrong key length"))?,
        None => return Err(TlsError::NotEd25519("the subject key is not Ed25519")),
    };
    Ok((key, &tbs[spki_len..]))
}

/// The DER of the extension OID (see [`SEED_KEY_EXTENSION_OID`]).
fn seed_key_oid_der() -> Vec<u8> {
    let mut body = vec![0x69]; // 2 × 40 + 25
    let mut digits = Vec::new();
    let mut n = SEED_KEY_EXTENSION_OID[2];
    loop {
        digits.push(u8::try_from(n & 0x7f).unwrap_or(0));
        n >>= 7;
        if n == 0 {
            break;
        }
    }
    for (i, d) in digits.iter().enumerate().rev() {
        body.push(if i == 0 { *d } else { d | 0x80 });
    }
    let mut der = vec![0x06, u8::try_from(body.len()).unwrap_or(0)];
    der.extend_from_slice(&body);
    der
}

/// The seed-key certificate in the extensions that follow the subject key
/// (`[1]` and `[2]` unique ids skipped, `[3]` read); `None` if absent or
/// malformed: such a certificate is then only its key.
fn seed_key_extension(mut rest: &[u8]) -> Option<SigningKeyCert> {
    while let Some(&tag) = rest.first() {
        if tag == 0xa3 {
            let (explicit, _) = der_element(rest, 0xa3).ok()?;
            let (mut extensions, _) = der_element(explicit, 0x30).ok()?;
            let oid = seed_key_oid_der();
            while !extensions.is_empty() {
                let (extension, next) = der_element(extensions, 0x30).ok()?;
                extensions = next;
                let Some(mut fields) = extension.strip_prefix(oid.as_slice()) else {
                    continue;
                };
                if fields.first() == Some(&0x01) {
                    fields = der_skip(fields).ok()?;
                }
                let (value, _) = der_element(fields, 0x04).ok()?;
                let (binary, _) = der_element(value, 0x04).ok()?;
                return SigningKeyCert::from_binary(binary);
            }
            return None;
        }
        rest = der_skip(rest).ok()?;
    }
    None
}

/// The header and content length of the DER element at the start of
/// `bytes`: (header length, content length).
fn der_header(bytes: &[u8]) -> Result<(usize, usize), TlsError> {
    let truncated = TlsError::NotEd25519("truncated DER");
    let tag = *bytes.first().ok_or(truncated.clone())?;
    if tag & 0x1f == 0x1f {
        return Err(TlsError::NotEd25519("multi-byte DER tag"));
    }
    let first = *bytes.get(1).ok_or(truncated.clone())?;
    if first < 0x80 {
        return Ok((2, usize::from(first)));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 3 {
        return Err(TlsError::NotEd25519("unsupported DER length"));
    }
    let digits = bytes.get(2..2 + count).ok_or(truncated)?;
    let len = digits.iter().fold(0usize, |n, d| (n << 8) | usize::from(*d));
    Ok((2 + count, len))
}

/// The whole length (header and content) of the element at the start.
fn der_len(bytes: &[u8]) -> Result<usize, TlsError> {
    let (header, content) = der_header(bytes)?;
    let total = header + content;
    if total > bytes.len() {
        return Err(TlsError::NotEd25519("truncated DER"));
    }
    Ok(total)
}

/// What follows the element at the start.
fn der_skip(bytes: &[u8]) -> Result<&[u8], TlsError> {
    Ok(&bytes[der_len(bytes)?..])
}

/// The content of the element at the start, which must have `tag`, and
/// what follows it.
fn der_element(bytes: &[u8], tag: u8) -> Result<(&[u8], &[u8]), TlsError> {
    if bytes.first() != Some(&tag) {
        return Err(TlsError::NotEd25519("unexpected DER tag"));
    }
    let (header, _) = der_header(bytes)?;
    let total = der_len(bytes)?;
    Ok((&bytes[header..total], &bytes[total..]))
}

/// Checks a TLS 1.3 handshake signature under the certificate's key.
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if dss.scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    let key = peer_key(cert).map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let signature: [u8; 64] = dss
        .signature()
        .try_into()
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadSignature))?;
    if identity::verify(&key, message, &signature) {
        Ok(HandshakeSignatureValid::assertion())
    } else {
        Err(rustls::Error::InvalidCertificate(CertificateError::BadSignature))
    }
}

fn no_tls12() -> rustls::Error {
    rustls::Error::General("Allium links are TLS 1.3 only".into())
}

/// The handshake-signature methods both verifier traits require, the same
/// for both: TLS 1.3 and Ed25519 only, checked by [`verify_signature`].
macro_rules! ed25519_handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            _message: &[u8],
            _cert: &CertificateDer<'_>,
            _dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            Err(no_tls12())
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            vec![SignatureScheme::ED25519]
        }
    };
}

/// Accepts a server only if its certificate carries `key` (or, built with
/// [`PinnedServer::any`], any Ed25519 key: for tools that learn the key
/// from the answer, never for Allium's own links).
#[derive(Debug)]
pub struct PinnedServer {
    key: Option<[u8; 32]>,
}

impl PinnedServer {
    /// Pinned to `key`.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key: Some(key) }
    }

    /// Any Ed25519 key.
    pub fn any() -> Self {
        Self { key: None }
    }
}

impl ServerCertVerifier for PinnedServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let (key, seed_key) = peer_key_and_seed_key(end_entity)
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let now_ms = now.as_secs().saturating_mul(1000);
        match self.key {
            None => Ok(ServerCertVerified::assertion()),
            Some(expected) if expected == key => Ok(ServerCertVerified::assertion()),
            // A seed whose identity stays offline: its signing key, certified
            // by the pinned identity for now.
            Some(expected)
                if seed_key
                    .is_some_and(|c| c.identity.0 == expected && c.signing.0 == key && c.check(now_ms).is_ok()) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            Some(_) => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    ed25519_handshake_signatures!();
}

/// A server's view of callers: a certificate is optional (clients send
/// none), but one that is sent must carry an Ed25519 key and sign the
/// handshake. Whether that key may make a call is the endpoint's decision
/// (see [`peer_key`]).
#[derive(Debug)]
pub struct NodeClients;

impl ClientCertVerifier for NodeClients {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        peer_key(end_entity).map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        Ok(ClientCertVerified::assertion())
    }

    ed25519_handshake_signatures!();
}

/// The configuration a node serves with: TLS 1.3, its link certificate,
/// an optional caller certificate.
pub fn server_config(own: &LinkCert) -> Result<rustls::ServerConfig, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(Arc::new(NodeClients))
        .with_single_cert(own.chain(), own.private_key())
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The configuration of a call to a server that must hold `pin`
/// (`None`: any key; see [`PinnedServer::any`]), presenting `own` if given
/// (a node calling a node or seed).
pub fn client_config(pin: Option<[u8; 32]>, own: Option<&LinkCert>) -> Result<rustls::ClientConfig, TlsError> {
    let verifier = Arc::new(match pin {
        Some(key) => PinnedServer::new(key),
        None => PinnedServer::any(),
    });
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut config = match own {
        Some(cert) => builder
            .with_client_auth_cert(cert.chain(), cert.private_key())
            .map_err(|e| TlsError::Config(e.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    // The server's key is pinned; a name would only tell an observer which
    // seed is being asked.
    config.enable_sni = false;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(n: u8) -> Identity {
        Identity::from_ed25519_seed(&[n; 32])
    }

    #[test]
    fn the_certificate_carries_the_identity_key() {
        let id = identity(7);
        let cert = LinkCert::new(&id).unwrap();
        assert_eq!(&peer_key(cert.der()).unwrap(), id.ed25519_pk());
        assert_ne!(
            &peer_key(LinkCert::new(&identity(8)).unwrap().der()).unwrap(),
            id.ed25519_pk()
        );
    }

    #[test]
    fn truncated_or_padded_certificates_are_refused() {
        let der = LinkCert::new(&identity(1)).unwrap().der().to_vec();
        for len in 0..der.len() {
            assert!(peer_key(&der[..len]).is_err(), "prefix of {len} bytes accepted");
        }
        let mut padded = der.clone();
        padded.push(0);
        assert!(peer_key(&padded).is_err());
    }

    #[test]
    fn a_key_that_is_not_ed25519_is_refused() {
        let der = LinkCert::new(&identity(1)).unwrap().der().to_vec();
        let at = der
            .windows(SPKI_ED25519_PREFIX.len())
            .position(|w| w == SPKI_ED25519_PREFIX)
            .unwrap();
        let mut other = der.clone();
        other[at + 8] = 0x71; // 1.3.101.113: Ed448's OID.
        assert_eq!(
            peer_key(&other),
            Err(TlsError::NotEd25519("the subject key is not Ed25519"))
        );
    }

    #[test]
    fn a_seed_signing_key_passes_for_the_identity_that_certified_it() {
        let (seed_id, signing) = (identity(5), identity(6));
        let now = UnixTime::now();
        let now_ms = now.as_secs() * 1000;
        let day = 86_400_000;
        let check = |cert: &LinkCert, pin: &Identity| {
            let name = ServerName::try_from("allium.invalid").unwrap();
            PinnedServer::new(*pin.ed25519_pk())
                .verify_server_cert(cert.der(), &[], &name, &[], now)
                .is_ok()
        };
        let valid = SigningKeyCert::issue(&seed_id, *signing.ed25519_pk(), now_ms - day, now_ms + day);
        let tls = LinkCert::with_seed_key(&signing, Some(&valid)).unwrap();
        assert_eq!(
            peer_key_and_seed_key(tls.der()).unwrap(),
            (*signing.ed25519_pk(), Some(valid))
        );
        assert!(check(&tls, &seed_id), "the identity's pin accepts its certified key");
        assert!(check(&tls, &signing), "and the key itself");
        assert!(!check(&tls, &identity(7)), "another identity's pin does not");
        let expired = SigningKeyCert::issue(&seed_id, *signing.ed25519_pk(), now_ms - 2 * day, now_ms - day);
        assert!(!check(
            &LinkCert::with_seed_key(&signing, Some(&expired)).unwrap(),
            &seed_id
        ));
        // A certificate for another key, carried by this one, does not help.
        let others = SigningKeyCert::issue(&seed_id, *identity(8).ed25519_pk(), now_ms - day, now_ms + day);
        assert!(!check(
            &LinkCert::with_seed_key(&signing, Some(&others)).unwrap(),
            &seed_id
        ));
        assert!(
            !check(&LinkCert::new(&signing).unwrap(), &seed_id),
            "no extension, no pass"
        );
    }

    #[test]
    fn the_extension_oid_is_encoded_as_der() {
        // 2.25.1350134688343274355, base 128 by hand.
        let oid = seed_key_oid_der();
        assert_eq!(oid[..3], [0x06, 0x0a, 0x69]);
        let mut n: u64 = 0;
        for b in &oid[3..] {
            n = (n << 7) | u64::from(b & 0x7f);
        }
        assert_eq!(n, SEED_KEY_EXTENSION_OID[2]);
        assert_eq!(oid.last().unwrap() & 0x80, 0);
    }

    #[test]
    fn the_pin_decides() {
        let cert = LinkCert::new(&identity(3)).unwrap();
        let name = ServerName::try_from("allium.invalid").unwrap();
        let now = UnixTime::now();
        let check = |v: &PinnedServer| v.verify_server_cert(cert.der(), &[], &name, &[], now).is_ok();
        assert!(check(&PinnedServer::new(*identity(3).ed25519_pk())));
        assert!(!check(&PinnedServer::new(*identity(4).ed25519_pk())));
        assert!(check(&PinnedServer::any()));
    }
}
