//! How the client's HTTP requests leave the machine: directly, or through
//! Tor (with the `tor` cargo feature).
//!
//! The client talks HTTP to two kinds of peers only: seeds (node-list
//! fetches) and guards (the first hop of every onion request). The
//! [`Route`] decides which of them are reached through Tor. Everything else
//! (onion layers, node-list verification) is the same on every route.
//!
//! Every connection is TLS 1.3 pinned to the key the peer must hold: a
//! seed's from the seed file, a guard's from the consensus
//! ([`allium_common::tls`]). Plain HTTP only with the debugging option
//! `plaintext_links`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::config::{ClientConfig, Route};
use crate::error::{Error, Result};

#[cfg(feature = "tor")]
mod tor;

/// The most a reply body may hold unless a request says less (a node list
/// from a seed; an onion answer is bounded by
/// [`allium_common::onion::MAX_ENCODED_RESPONSE`]). Bodies are counted as
/// they stream in, so a peer that sends more is cut off there, and one that
/// announces more is refused before its body is read.
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
    /// The peer's host refused the connection: it is up, but nothing
    /// listens there (the node is down).
    #[error("connection refused")]
    Refused,
    /// The answer announced or sent more than the request allows (bytes).
    #[error("the answer is over {0} bytes")]
    TooLarge(usize),
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
    direct: Direct,
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
        Self::direct_with(false)
    }

    /// Direct connections, in plain HTTP if `plaintext` (debugging only).
    pub fn direct_with(plaintext: bool) -> Result<Self> {
        Ok(Self {
            route: Route::Direct,
            direct: Direct::new(plaintext)?,
            #[cfg(feature = "tor")]
            tor: None,
        })
    }

    /// The transport `config` asks for. Tor is set up here but bootstraps
    /// only when a request first needs it, so a command that uses only the
    /// cache and direct guards never waits for Tor.
    pub fn new(config: &ClientConfig, options: &TorOptions) -> Result<Self> {
        if config.route == Route::Direct {
            return Self::direct_with(config.plaintext_links);
        }
        #[cfg(feature = "tor")]
        {
            Ok(Self {
                route: config.route,
                direct: Direct::new(config.plaintext_links)?,
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
        let (http, scheme) = self.direct.client(&post.pin)?;
        post_direct(&http, scheme, post).await
    }
}

/// An HTTPS POST to `https://{address}{path}`.
#[derive(Debug, Clone)]
pub struct Post<'a> {
    /// `host:port`.
    pub address: &'a str,
    /// The Ed25519 key the peer's TLS certificate must carry.
    pub pin: [u8; 32],
    /// The path, e.g. `/storage_rpc/v1`.
    pub path: &'a str,
    /// The body's media type.
    pub content_type: &'a str,
    /// The body.
    pub body: Vec<u8>,
    /// Covers the request, not a Tor bootstrap (which has its own limit).
    pub timeout: Duration,
    /// The largest answer body taken, bytes (at most [`MAX_REPLY`]).
    pub max_reply: usize,
}

impl Post<'_> {
    /// The body limit of this request.
    pub fn limit(&self) -> usize {
        self.max_reply.min(MAX_REPLY)
    }
}

/// Refuses an announced body length over `limit` before anything is read.
pub(crate) fn check_announced(length: Option<u64>, limit: usize) -> std::result::Result<(), SendError> {
    match length {
        Some(len) if usize::try_from(len).map_or(true, |len| len > limit) => Err(SendError::TooLarge(limit)),
        _ => Ok(()),
    }
}

/// Most pinned clients kept (a client talks to a few seeds and guards).
const MAX_PINNED: usize = 256;

/// Direct connections: one HTTP client per pinned key, so a kept
/// connection is only reused for the key it was verified against.
#[derive(Debug)]
struct Direct {
    plain: Option<reqwest::Client>,
    pinned: Mutex<HashMap<[u8; 32], reqwest::Client>>,
}

impl Direct {
    fn new(plaintext: bool) -> Result<Self> {
        let plain = if plaintext {
            Some(
                builder()
                    .build()
                    .map_err(|e| Error::Network(format!("HTTP client: {e}")))?,
            )
        } else {
            None
        };
        Ok(Self {
            plain,
            pinned: Mutex::new(HashMap::new()),
        })
    }

    /// The client for a peer holding `pin`, and the URL scheme.
    fn client(&self, pin: &[u8; 32]) -> std::result::Result<(reqwest::Client, &'static str), SendError> {
        if let Some(plain) = &self.plain {
            return Ok((plain.clone(), "http"));
        }
        let mut pinned = self.pinned.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = pinned.get(pin) {
            return Ok((client.clone(), "https"));
        }
        let tls =
            allium_common::tls::client_config(Some(*pin), None).map_err(|e| SendError::Unreachable(e.to_string()))?;
        let client = builder()
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| SendError::Unreachable(format!("HTTP client: {e}")))?;
        if pinned.len() >= MAX_PINNED {
            pinned.clear();
        }
        pinned.insert(*pin, client.clone());
        Ok((client, "https"))
    }
}

fn builder() -> reqwest::ClientBuilder {
    allium_common::tls::install_default_provider();
    let builder = reqwest::Client::builder().connect_timeout(Duration::from_secs(5));
    // Tests bind the client to its own loopback address (e.g. 127.0.0.2)
    // so nodes can tell its connections from each other's.
    match std::env::var("ALLIUM_LOCAL_ADDRESS")
        .ok()
        .and_then(|a| a.parse::<std::net::IpAddr>().ok())
    {
        Some(ip) => builder.local_address(ip),
        None => builder,
    }
}

async fn post_direct(http: &reqwest::Client, scheme: &str, post: Post<'_>) -> std::result::Result<Reply, SendError> {
    let limit = post.limit();
    let classify = |e: reqwest::Error| {
        if e.is_connect() {
            if refused(&e) {
                SendError::Refused
            } else {
                SendError::Unreachable("connection failed or no route".into())
            }
        } else if e.is_timeout() {
            SendError::Timeout
        } else {
            SendError::Broken("request failed".into())
        }
    };
    let deadline = tokio::time::Instant::now() + post.timeout;
    let mut response = http
        .post(format!("{scheme}://{}{}", post.address, post.path))
        .header(reqwest::header::CONTENT_TYPE, post.content_type)
        .body(post.body)
        .timeout(post.timeout)
        .send()
        .await
        .map_err(classify)?;
    let status = response.status().as_u16();
    check_announced(response.content_length(), limit)?;
    let mut body = Vec::new();
    loop {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .map_err(|_| SendError::Timeout)?
            .map_err(classify)?;
        let Some(chunk) = chunk else { break };
        if body.len().saturating_add(chunk.len()) > limit {
            return Err(SendError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Reply { status, body })
}

/// Whether a connection error was the peer's host refusing (a reset to
/// the connection attempt), as opposed to a timeout or no route.
fn refused(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused;
        }
        source = err.source();
    }
    false
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

/// A local HTTP server for the transport tests: answers every request
/// with raw bytes and then holds the connection open (as a peer that
/// never finishes would).
#[cfg(test)]
pub(crate) mod test_server {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// Starts a server on 127.0.0.1:0 that writes `head` and then `body_len`
    /// bytes of body in 64 KiB chunks (chunked encoding when `chunked`),
    /// and never ends the body. Returns its address.
    pub(crate) async fn serve(head: String, body_len: usize, chunked: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let head = head.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let _ = stream.read(&mut buf).await;
                    let _ = stream.write_all(head.as_bytes()).await;
                    let mut sent = 0;
                    while sent < body_len {
                        let n = (body_len - sent).min(65536);
                        let chunk = vec![b'x'; n];
                        let ok = if chunked {
                            stream.write_all(format!("{n:x}\r\n").as_bytes()).await.is_ok()
                                && stream.write_all(&chunk).await.is_ok()
                                && stream.write_all(b"\r\n").await.is_ok()
                        } else {
                            stream.write_all(&chunk).await.is_ok()
                        };
                        if !ok {
                            return;
                        }
                        sent += n;
                    }
                    // Hold the connection open, the body unfinished.
                    let _ = stream.read(&mut buf).await;
                    tokio::time::sleep(std::time::Duration::from_secs(120)).await;
                });
            }
        });
        address
    }

    /// A head announcing `len` bytes of body.
    pub(crate) fn announcing(len: usize) -> String {
        format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {len}\r\n\r\n")
    }

    /// A head for a chunked body of unannounced length.
    pub(crate) fn chunked() -> String {
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n".to_owned()
    }
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

    fn post_to(address: &str, limit: usize) -> Post<'_> {
        Post {
            address,
            pin: [0; 32],
            path: "/",
            content_type: "text/plain",
            body: b"hi".to_vec(),
            // Long: the limit, not the deadline, must end these requests.
            timeout: Duration::from_secs(60),
            max_reply: limit,
        }
    }

    /// A peer announcing more than the limit is refused before any of the
    /// body is read (here it sends none and keeps the connection open:
    /// before, the client waited for the whole body until its deadline).
    #[tokio::test]
    async fn an_announced_answer_over_the_limit_is_refused_at_once() {
        let http = builder().build().unwrap();
        let address = test_server::serve(test_server::announcing(MAX_REPLY + 1), 0, false).await;
        let e = post_direct(&http, "http", post_to(&address, MAX_REPLY))
            .await
            .unwrap_err();
        assert_eq!(e, SendError::TooLarge(MAX_REPLY));
        // A request may ask for less than MAX_REPLY, never more.
        let address = test_server::serve(test_server::announcing(1001), 0, false).await;
        let e = post_direct(&http, "http", post_to(&address, 1000)).await.unwrap_err();
        assert_eq!(e, SendError::TooLarge(1000));
        assert_eq!(post_to(&address, usize::MAX).limit(), MAX_REPLY);
    }

    /// A peer that streams more than the limit without announcing a length
    /// is cut off as soon as it passes it, without waiting for an end that
    /// never comes.
    #[tokio::test]
    async fn a_streamed_answer_is_cut_off_once_past_the_limit() {
        let http = builder().build().unwrap();
        let address = test_server::serve(test_server::chunked(), MAX_REPLY + 65536, true).await;
        let e = post_direct(&http, "http", post_to(&address, MAX_REPLY))
            .await
            .unwrap_err();
        assert_eq!(e, SendError::TooLarge(MAX_REPLY));
        // A peer that lies with a small Content-Length is held to it by
        // HTTP itself; one that sends exactly the limit is answered.
        let address = test_server::serve(test_server::announcing(5000), 5000, false).await;
        let reply = post_direct(&http, "http", post_to(&address, 5000)).await.unwrap();
        assert_eq!((reply.status, reply.body.len()), (200, 5000));
    }

    #[tokio::test]
    async fn a_refused_connection_is_told_apart() {
        let http = builder().build().unwrap();
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().to_string()
        };
        assert_eq!(
            post_direct(&http, "http", post_to(&closed, 1000)).await.unwrap_err(),
            SendError::Refused
        );
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
