//! How the client's HTTP requests leave the machine: directly, or through
//! Tor (with the `tor` cargo feature).
//!
//! The client talks HTTP to two kinds of peers only: seeds (node-list
//! fetches) and guards (the first hop of every onion request). The
//! [`Route`] decides which of them are reached through Tor. Everything else
//! (onion layers, node-list verification) is the same on every route.

use std::time::Duration;

use crate::config::{ClientConfig, Route};
use crate::error::{Error, Result};

#[cfg(feature = "tor")]
mod tor;

/// The most a reply body may hold (the largest onion response is far
/// smaller; this only stops a broken peer from filling memory).
pub const MAX_REPLY: usize = 16 * 1024 * 1024;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The peer could not be reached.
    #[error("unreachable ({0})")]
    Unreachable(String),
    /// The answer broke off or was not HTTP.
    #[error("the answer broke off ({0})")]
    Broken(String),
    /// An answer came, but not the one expected (status, content).
    #[error("{0}")]
    Invalid(String),
    /// Tor itself is not usable (bootstrap failed): no retry can help.
    #[error("{0}")]
    Tor(String),
}

/// Who a request is for: decides whether it goes through Tor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// A seed (node-list fetch).
    Seed,
    /// A guard (first hop of an onion path).
    Guard,
}

/// The client's way out.
#[derive(Debug)]
pub struct Transport {
    route: Route,
    direct: reqwest::Client,
    #[cfg(feature = "tor")]
    tor: Option<tor::TorLink>,
}

/// What a Tor-enabled transport needs besides the config file.
#[derive(Debug, Clone)]
pub struct TorOptions {
    /// Where arti keeps its state and directory cache (inside the home).
    pub dir: std::path::PathBuf,
    /// Show bootstrap progress on stderr.
    pub progress: bool,
}

impl Transport {
    /// Direct connections only.
    pub fn direct() -> Result<Self> {
        Ok(Self {
            route: Route::Direct,
            direct: direct_client()?,
            #[cfg(feature = "tor")]
            tor: None,
        })
    }

    /// The transport `config` asks for. Tor is set up here but bootstraps
    /// only when a request first needs it, so a command that uses only the
    /// cache and direct guards never waits for Tor.
    pub fn new(config: &ClientConfig, options: &TorOptions) -> Result<Self> {
        if config.route == Route::Direct {
            return Self::direct();
        }
        #[cfg(feature = "tor")]
        {
            Ok(Self {
                route: config.route,
                direct: direct_client()?,
                tor: Some(tor::TorLink::new(config, options)?),
            })
        }
        #[cfg(not(feature = "tor"))]
        {
            let _ = options;
            Err(Error::TorUnavailable)
        }
    }

    /// Which connections go through Tor.
    pub fn route(&self) -> Route {
        self.route
    }

    /// Whether requests to `peer` go through Tor.
    pub fn via_tor(&self, peer: Peer) -> bool {
        match (self.route, peer) {
            (Route::Direct, _) | (Route::TorSeeds, Peer::Guard) => false,
            (Route::TorSeeds, Peer::Seed) | (Route::TorAll, _) => true,
        }
    }

    /// Sends `post` to `peer` and returns the answer.
    pub async fn post(&self, peer: Peer, post: Post<'_>) -> std::result::Result<Reply, SendError> {
        #[cfg(feature = "tor")]
        if self.via_tor(peer)
            && let Some(tor) = &self.tor
        {
            return tor.post(peer, post).await;
        }
        let _ = peer;
        post_direct(&self.direct, post).await
    }
}

/// An HTTP POST to `http://{address}{path}`.
#[derive(Debug, Clone)]
pub struct Post<'a> {
    /// `host:port`.
    pub address: &'a str,
    /// The path, e.g. `/storage_rpc/v1`.
    pub path: &'a str,
    /// The body's media type.
    pub content_type: &'a str,
    /// The body.
    pub body: Vec<u8>,
    /// Covers the request, not a Tor bootstrap (which has its own limit).
    pub timeout: Duration,
}

fn direct_client() -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
    // Tests bind the client to its own loopback address (e.g. 127.0.0.2)
    // so nodes can tell its connections from each other's.
    if let Some(ip) = std::env::var("ALLIUM_LOCAL_ADDRESS")
        .ok()
        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
    {
        builder = builder.local_address(ip);
    }
    builder.build().map_err(|e| Error::Network(format!("HTTP client: {e}")))
}

async fn post_direct(http: &reqwest::Client, post: Post<'_>) -> std::result::Result<Reply, SendError> {
    let classify = |e: reqwest::Error| {
        if e.is_timeout() {
            SendError::Timeout
        } else if e.is_connect() {
            SendError::Unreachable("connection refused or no route".into())
        } else {
            SendError::Broken("request failed".into())
        }
    };
    let response = http
        .post(format!("http://{}{}", post.address, post.path))
        .header(reqwest::header::CONTENT_TYPE, post.content_type)
        .body(post.body)
        .timeout(post.timeout)
        .send()
        .await
        .map_err(classify)?;
    let status = response.status().as_u16();
    let body = response.bytes().await.map_err(classify)?;
    if body.len() > MAX_REPLY {
        return Err(SendError::Broken(format!("answer over {MAX_REPLY} bytes")));
    }
    Ok(Reply {
        status,
        body: body.to_vec(),
    })
}

/// Splits `host:port` (IPv6 hosts in brackets).
pub fn split_address(address: &str) -> std::result::Result<(String, u16), SendError> {
    let bad = || SendError::Unreachable(format!("{address:?} is not host:port"));
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_decide_per_peer() {
        let mut t = Transport::direct().unwrap();
        assert!(!t.via_tor(Peer::Seed) && !t.via_tor(Peer::Guard));
        t.route = Route::TorSeeds;
        assert!(t.via_tor(Peer::Seed) && !t.via_tor(Peer::Guard));
        t.route = Route::TorAll;
        assert!(t.via_tor(Peer::Seed) && t.via_tor(Peer::Guard));
    }

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split_address("127.0.0.3:22021").unwrap(), ("127.0.0.3".into(), 22021));
        assert_eq!(split_address("[::1]:80").unwrap(), ("::1".into(), 80));
        assert_eq!(split_address("seed.example:443").unwrap(), ("seed.example".into(), 443));
        for bad in ["127.0.0.3", ":80", "host:port", "host:70000"] {
            assert!(split_address(bad).is_err(), "{bad}");
        }
    }

    #[cfg(not(feature = "tor"))]
    #[test]
    fn asking_for_tor_without_the_feature_says_how_to_get_it() {
        let config = ClientConfig::parse("tor = true").unwrap();
        let options = TorOptions {
            dir: std::path::PathBuf::from("/nonexistent"),
            progress: false,
        };
        let e = Transport::new(&config, &options).unwrap_err();
        assert!(matches!(e, Error::TorUnavailable));
        assert!(e.to_string().contains("--features tor"), "{e}");
    }
}
