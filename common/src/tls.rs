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

use crate::identity::{self, Identity};

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
    match spki.strip_prefix(&SPKI_ED25519_PREFIX[..]) {
        Some(key) => key.try_into().map_err(|_| TlsError::NotEd25519("wrong key length")),
        None => Err(TlsError::NotEd25519("the subject key is not Ed25519")),
    }
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
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let key = peer_key(end_entity).map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        match self.key {
            Some(expected) if expected != key => Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

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
