//! The client's optional config file: `HOME/config.toml`, or `--config FILE`.
//!
//! ```toml
//! tor = true                     # fetch the node list from seeds through Tor
//! tor_all = false                # also reach the guard nodes through Tor
//! tor_bootstrap_timeout_secs = 120
//! plaintext_links = false        # debugging only: plain HTTP to nodes that also set it
//! forward_secrecy = true         # publish envelope v2 keys (false: every message to this account is v1)
//!
//! # Only for a private Tor network (tests, labs); without this section the
//! # public Tor network is used.
//! [tor_network]
//! local = true                   # relays and targets on loopback/private addresses
//! authorities = [{ v3ident = "82F3...B840" }]
//! fallbacks = [{ rsa_identity = "393E...BD98", ed_identity = "Ihek...gzqQ", orports = ["127.0.0.1:35689"] }]
//! ```
//!
//! Flags win over the file: `--tor` and `--tor-all` switch Tor on whatever
//! the file says. The file is parsed and checked in full even in a build
//! without Tor support, so a mistake shows up at once.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The config file's name inside the home directory.
pub const CONFIG_FILE: &str = "config.toml";
/// How long Tor may take to bootstrap when the file does not say.
pub const DEFAULT_BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(120);

/// Which connections go through Tor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Route {
    /// None: seeds and guards see the client's address.
    #[default]
    Direct,
    /// Node-list fetches from seeds; guards still see the client's address.
    TorSeeds,
    /// Seeds and guards: no Allium node sees the client's address.
    TorAll,
}

/// The parsed config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// Which connections go through Tor.
    pub route: Route,
    /// How long Tor may take to bootstrap.
    pub bootstrap_timeout: Duration,
    /// A private Tor network instead of the public one.
    pub tor_network: Option<TorNetwork>,
    /// Plain HTTP to seeds and guards instead of TLS: for debugging a
    /// network whose nodes set `plaintext_links` too, never otherwise.
    pub plaintext_links: bool,
    /// Publish envelope v2 keys and seal this account's own copies with
    /// them (`docs/devices.md`). Off, the account stays v1-only: senders
    /// find no bundle and every message to it can be read with the phrase.
    pub forward_secrecy: bool,
    /// Files up to this size in messages from contacts are fetched as the
    /// messages arrive (0: never).
    pub auto_download_bytes: u64,
    /// Where fetched files go without `allium save` naming a directory
    /// (default: `HOME/downloads`).
    pub download_dir: Option<std::path::PathBuf>,
}

/// The default of [`ClientConfig::auto_download_bytes`]: 10 MB.
pub const DEFAULT_AUTO_DOWNLOAD_BYTES: u64 = 10_000_000;

/// A private Tor network: its directory authorities and the caches a client
/// bootstraps from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TorNetwork {
    /// The network runs on loopback or private addresses: allow such
    /// targets and let relays that share a subnet be on one circuit.
    pub local: bool,
    /// The authorities' v3 identities (RSA key fingerprints).
    pub authorities: Vec<[u8; 20]>,
    /// Directory caches to bootstrap from.
    pub fallbacks: Vec<Fallback>,
}

/// One fallback directory cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fallback {
    /// RSA identity fingerprint.
    pub rsa_identity: [u8; 20],
    /// Ed25519 identity.
    pub ed_identity: [u8; 32],
    /// Its OR ports.
    pub orports: Vec<SocketAddr>,
}

impl Default for ClientConfig {
    /// What an empty (or missing) file means: no Tor, the public network.
    fn default() -> Self {
        Self {
            route: Route::Direct,
            bootstrap_timeout: DEFAULT_BOOTSTRAP_TIMEOUT,
            tor_network: None,
            plaintext_links: false,
            forward_secrecy: true,
            auto_download_bytes: DEFAULT_AUTO_DOWNLOAD_BYTES,
            download_dir: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    tor: bool,
    #[serde(default)]
    tor_all: bool,
    tor_bootstrap_timeout_secs: Option<u64>,
    tor_network: Option<RawNetwork>,
    #[serde(default)]
    plaintext_links: bool,
    forward_secrecy: Option<bool>,
    auto_download_bytes: Option<u64>,
    download_dir: Option<std::path::PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    #[serde(default)]
    local: bool,
    authorities: Vec<RawAuthority>,
    fallbacks: Vec<RawFallback>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthority {
    v3ident: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFallback {
    rsa_identity: String,
    ed_identity: String,
    orports: Vec<SocketAddr>,
}

impl ClientConfig {
    /// Reads `path`; a missing file is the default configuration unless
    /// `required` (a file named with `--config` must exist).
    pub fn load(path: &Path, required: bool) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            path: path.display().to_string(),
            reason,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map_err(bad),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Self::default()),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// Parses the file's text.
    pub fn parse(text: &str) -> std::result::Result<Self, String> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        let route = match (raw.tor, raw.tor_all) {
            (_, true) => Route::TorAll,
            (true, false) => Route::TorSeeds,
            (false, false) => Route::Direct,
        };
        let bootstrap_timeout = match raw.tor_bootstrap_timeout_secs {
            Some(0) => return Err("tor_bootstrap_timeout_secs must be at least 1".into()),
            Some(s) => Duration::from_secs(s),
            None => DEFAULT_BOOTSTRAP_TIMEOUT,
        };
        let tor_network = raw.tor_network.map(TorNetwork::from_raw).transpose()?;
        Ok(Self {
            route,
            bootstrap_timeout,
            tor_network,
            plaintext_links: raw.plaintext_links,
            forward_secrecy: raw.forward_secrecy.unwrap_or(true),
            auto_download_bytes: raw.auto_download_bytes.unwrap_or(DEFAULT_AUTO_DOWNLOAD_BYTES),
            download_dir: raw.download_dir,
        })
    }

    /// The route after command-line flags: a flag only ever adds Tor.
    pub fn with_flags(mut self, tor: bool, tor_all: bool) -> Self {
        if tor_all {
            self.route = Route::TorAll;
        } else if tor && self.route == Route::Direct {
            self.route = Route::TorSeeds;
        }
        self
    }
}

impl TorNetwork {
    fn from_raw(raw: RawNetwork) -> std::result::Result<Self, String> {
        if raw.authorities.is_empty() || raw.fallbacks.is_empty() {
            return Err("[tor_network] needs at least one authority and one fallback".into());
        }
        let authorities = raw
            .authorities
            .iter()
            .map(|a| rsa_fingerprint(&a.v3ident).map_err(|e| format!("authority v3ident: {e}")))
            .collect::<std::result::Result<_, _>>()?;
        let fallbacks = raw
            .fallbacks
            .into_iter()
            .map(|f| {
                if f.orports.is_empty() {
                    return Err(format!("fallback {}: no orports", f.rsa_identity));
                }
                Ok(Fallback {
                    rsa_identity: rsa_fingerprint(&f.rsa_identity)
                        .map_err(|e| format!("fallback rsa_identity: {e}"))?,
                    ed_identity: ed25519_identity(&f.ed_identity).map_err(|e| format!("fallback ed_identity: {e}"))?,
                    orports: f.orports,
                })
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(Self {
            local: raw.local,
            authorities,
            fallbacks,
        })
    }
}

/// 40 hex digits (either case, as Tor prints them).
fn rsa_fingerprint(text: &str) -> std::result::Result<[u8; 20], String> {
    let bytes = hex::decode(text.trim()).map_err(|_| format!("{text:?} is not hex"))?;
    bytes.try_into().map_err(|_| format!("{text:?} is not 40 hex digits"))
}

/// Base64 of 32 bytes, padded or not (Tor's `fingerprint-ed25519` omits
/// the padding).
fn ed25519_identity(text: &str) -> std::result::Result<[u8; 32], String> {
    let bytes = allium_common::encoding::from_base64(text.trim()).map_err(|_| format!("{text:?} is not base64"))?;
    bytes
        .try_into()
        .map_err(|_| format!("{text:?} is not 32 bytes of base64"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETWORK: &str = r#"
tor = true
tor_bootstrap_timeout_secs = 30
[tor_network]
local = true
authorities = [{ v3ident = "82F3338CACE99780AC01EA5B47A2A6533082B840" }]
fallbacks = [{ rsa_identity = "393e37d086f74f781e042ae94cd77e1ef14ebd98", ed_identity = "Ihek3KZqgLtyUNsHiGUu9LVtemNxin9p/mfrlD5gzqQ", orports = ["127.0.0.1:35689"] }]
"#;

    #[test]
    fn empty_file_is_direct_with_the_public_network() {
        let c = ClientConfig::parse("").unwrap();
        assert_eq!(c, ClientConfig::default());
        assert_eq!(c.route, Route::Direct);
        assert_eq!(c.bootstrap_timeout, DEFAULT_BOOTSTRAP_TIMEOUT);
        assert!(c.tor_network.is_none());
    }

    #[test]
    fn private_network_section_is_parsed_into_keys() {
        let c = ClientConfig::parse(NETWORK).unwrap();
        assert_eq!(c.route, Route::TorSeeds);
        assert_eq!(c.bootstrap_timeout, Duration::from_secs(30));
        let net = c.tor_network.unwrap();
        assert!(net.local);
        assert_eq!(net.authorities[0][0], 0x82);
        assert_eq!(net.fallbacks[0].rsa_identity[19], 0x98);
        assert_eq!(net.fallbacks[0].ed_identity[0], 0x22);
        assert_eq!(net.fallbacks[0].orports, vec!["127.0.0.1:35689".parse().unwrap()]);
    }

    #[test]
    fn small_files_download_unless_the_file_says_otherwise() {
        let default = ClientConfig::parse("").unwrap();
        assert_eq!(default.auto_download_bytes, 10_000_000);
        assert_eq!(default.download_dir, None);
        let set = ClientConfig::parse("auto_download_bytes = 0\ndownload_dir = \"/tmp/in\"").unwrap();
        assert_eq!(set.auto_download_bytes, 0);
        assert_eq!(set.download_dir, Some("/tmp/in".into()));
    }

    #[test]
    fn forward_secrecy_is_on_unless_the_file_turns_it_off() {
        assert!(ClientConfig::parse("").unwrap().forward_secrecy);
        assert!(ClientConfig::parse("forward_secrecy = true").unwrap().forward_secrecy);
        assert!(!ClientConfig::parse("forward_secrecy = false").unwrap().forward_secrecy);
    }

    #[test]
    fn tor_all_wins_and_flags_only_add_tor() {
        assert_eq!(ClientConfig::parse("tor_all = true").unwrap().route, Route::TorAll);
        let file = ClientConfig::parse("tor = true").unwrap();
        assert_eq!(file.clone().with_flags(false, false).route, Route::TorSeeds);
        assert_eq!(file.with_flags(false, true).route, Route::TorAll);
        let direct = ClientConfig::parse("").unwrap();
        assert_eq!(direct.clone().with_flags(true, false).route, Route::TorSeeds);
        assert_eq!(direct.with_flags(true, true).route, Route::TorAll);
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("tor = 1", "invalid type"),
            ("tro = true", "unknown field"),
            ("tor_bootstrap_timeout_secs = 0", "at least 1"),
            (
                "[tor_network]\nauthorities = []\nfallbacks = []",
                "at least one authority",
            ),
            (
                "[tor_network]\nauthorities = [{ v3ident = \"XYZ\" }]\nfallbacks = [{ rsa_identity = \"00\", ed_identity = \"AA\", orports = [\"127.0.0.1:1\"] }]",
                "not hex",
            ),
            (
                "[tor_network]\nauthorities = [{ v3ident = \"82F3338CACE99780AC01EA5B47A2A6533082B840\" }]\nfallbacks = [{ rsa_identity = \"82F3338CACE99780AC01EA5B47A2A6533082B840\", ed_identity = \"AAAA\", orports = [\"127.0.0.1:1\"] }]",
                "32 bytes",
            ),
        ] {
            let e = ClientConfig::parse(text).unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_missing_file_is_fine_unless_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        assert_eq!(ClientConfig::load(&path, false).unwrap().route, Route::Direct);
        assert!(matches!(ClientConfig::load(&path, true), Err(Error::Config { .. })));
    }
}
