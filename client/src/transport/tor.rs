//! HTTP through Tor with `arti-client`.
//!
//! The Tor client is built when the transport is, but bootstraps only when
//! a request first needs it; bootstrap has its own time limit and reports
//! progress on stderr. Each peer address gets its own isolation token, so
//! requests to two seeds, or to a seed and a guard, never share a circuit
//! (an exit cannot link them), while repeated requests to one peer reuse
//! one circuit and one kept-alive HTTP connection, closed after a minute
//! unused. Inside the Tor stream the connection is TLS pinned to the
//! peer's key, as a direct one is, so the exit sees nothing but sizes.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arti_client::config::TorClientConfigBuilder;
use arti_client::config::dir::FallbackDir;
use arti_client::{BootstrapBehavior, IsolationToken, StreamPrefs, TorClient, TorClientConfig};
use futures_util::StreamExt as _;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::sync::{Mutex, OnceCell};
use tor_rtcompat::PreferredRuntime;

use super::{Peer, Post, Reply, SendError, TorOptions, check_announced, split_address};
use crate::config::{ClientConfig, TorNetwork};
use crate::error::{Error, Result};

/// Kept connections at most (one per seed and guard in practice).
const MAX_KEPT: usize = 32;
/// A kept connection unused this long is closed, so a long `watch` does not
/// hold an idle connection open at a seed (or its exit) for hours.
const KEEP_IDLE: Duration = Duration::from_secs(60);

type Client = Arc<TorClient<PreferredRuntime>>;

/// One peer's circuit isolation and its kept HTTP connection.
#[derive(Debug)]
struct Kept {
    isolation: IsolationToken,
    sender: Option<SendRequest<Full<Bytes>>>,
    last_used: Instant,
}

/// Kept connections by peer kind, address and pinned key.
type KeptTable = Mutex<HashMap<(Peer, String, [u8; 32]), Kept>>;
type KeptMap = Arc<KeptTable>;

/// A lazily bootstrapped Tor client and the connections made through it.
pub(crate) struct TorLink {
    config: TorClientConfig,
    bootstrap_timeout: Duration,
    progress: bool,
    client: OnceCell<std::result::Result<Client, String>>,
    kept: KeptMap,
    plaintext: bool,
}

impl std::fmt::Debug for TorLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorLink")
            .field("bootstrap_timeout", &self.bootstrap_timeout)
            .field("bootstrapped", &self.client.initialized())
            .finish_non_exhaustive()
    }
}

impl TorLink {
    pub(crate) fn new(config: &ClientConfig, options: &TorOptions) -> Result<Self> {
        Ok(Self {
            config: arti_config(config, options)?,
            bootstrap_timeout: config.bootstrap_timeout,
            progress: options.progress,
            client: OnceCell::new(),
            kept: Arc::new(Mutex::new(HashMap::new())),
            plaintext: config.plaintext_links,
        })
    }

    /// POSTs through Tor, reusing the peer's kept connection when it is
    /// still open; a kept connection that fails is replaced once.
    pub(crate) async fn post(&self, peer: Peer, post: Post<'_>) -> std::result::Result<Reply, SendError> {
        let client = self.client().await?;
        let limit = post.limit();
        let Post {
            address,
            pin,
            path,
            content_type,
            body,
            timeout,
            ..
        } = post;
        let key = (peer, address.to_owned(), pin);
        let (isolation, kept) = {
            let mut kept = self.kept.lock().await;
            if kept.len() >= MAX_KEPT && !kept.contains_key(&key) {
                kept.clear();
            }
            let entry = kept.entry(key.clone()).or_insert_with(|| Kept {
                isolation: IsolationToken::new(),
                sender: None,
                last_used: Instant::now(),
            });
            (entry.isolation, entry.sender.take().filter(|s| !s.is_closed()))
        };
        let body = Bytes::from(body);
        let attempt = async {
            if let Some(sender) = kept
                && let Ok(done) = exchange(sender, address, path, content_type, body.clone(), limit).await
            {
                return Ok(done);
            }
            let tls = (!self.plaintext).then_some(&pin);
            let sender = connect(&client, isolation, address, tls).await?;
            exchange(sender, address, path, content_type, body, limit).await
        };
        let (reply, sender) = tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| SendError::Timeout)??;
        if let Some(entry) = self.kept.lock().await.get_mut(&key) {
            entry.sender = Some(sender);
            entry.last_used = Instant::now();
        }
        Ok(reply)
    }

    /// The bootstrapped client; the first call bootstraps (once: a failure
    /// is remembered, so later requests fail at once with the same reason).
    async fn client(&self) -> std::result::Result<Client, SendError> {
        self.client
            .get_or_init(|| async {
                let client = bootstrap(self.config.clone(), self.bootstrap_timeout, self.progress).await;
                if client.is_ok() {
                    tokio::spawn(close_idle(Arc::downgrade(&self.kept)));
                }
                client
            })
            .await
            .clone()
            .map_err(SendError::Tor)
    }
}

/// Drops the senders of connections idle for [`KEEP_IDLE`] (hyper then
/// closes the connection and arti the stream); ends with the link.
async fn close_idle(kept: std::sync::Weak<KeptTable>) {
    loop {
        tokio::time::sleep(KEEP_IDLE / 4).await;
        let Some(kept) = kept.upgrade() else {
            return;
        };
        for entry in kept.lock().await.values_mut() {
            if entry.last_used.elapsed() >= KEEP_IDLE {
                entry.sender = None;
            }
        }
    }
}

/// arti's configuration: state and cache under the home, and a private
/// network if the config names one.
fn arti_config(config: &ClientConfig, options: &TorOptions) -> Result<TorClientConfig> {
    let mut builder = TorClientConfigBuilder::from_directories(options.dir.join("state"), options.dir.join("cache"));
    if let Some(network) = &config.tor_network {
        private_network(&mut builder, network)?;
    }
    builder
        .build()
        .map_err(|e| Error::Tor(format!("invalid Tor configuration: {e}")))
}

fn private_network(builder: &mut TorClientConfigBuilder, network: &TorNetwork) -> Result<()> {
    let authorities = builder.tor_network().authorities();
    authorities.v3idents().clear();
    for id in &network.authorities {
        authorities.v3idents().push((*id).into());
    }
    let mut fallbacks = Vec::with_capacity(network.fallbacks.len());
    for f in &network.fallbacks {
        let mut fallback = FallbackDir::builder();
        fallback
            .rsa_identity(f.rsa_identity.into())
            .ed_identity(f.ed_identity.into());
        for orport in &f.orports {
            fallback.orports().push(*orport);
        }
        fallbacks.push(fallback);
    }
    builder.tor_network().set_fallback_caches(fallbacks);
    if network.local {
        builder.address_filter().allow_local_addrs(true);
        // Every relay of a loopback network has the same address; with the
        // usual "one relay per /16" rule no circuit could be built.
        builder
            .path_rules()
            .ipv4_subnet_family_prefix(33)
            .ipv6_subnet_family_prefix(129);
    }
    Ok(())
}

/// Bootstraps, showing progress, within `limit`.
async fn bootstrap(config: TorClientConfig, limit: Duration, progress: bool) -> std::result::Result<Client, String> {
    // arti and rustls need a process-wide crypto provider; a second install
    // (another client in the same process) is refused harmlessly.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let started = Instant::now();
    let client = TorClient::builder()
        .config(config)
        .bootstrap_behavior(BootstrapBehavior::Manual)
        .create_unbootstrapped()
        .map_err(|e| format!("cannot start the Tor client: {e}"))?;
    let mut events = client.bootstrap_events();
    let reporter = tokio::spawn(async move {
        let mut shown = Progress::new(progress);
        while let Some(status) = events.next().await {
            shown.update(&status);
        }
    });
    let outcome = tokio::time::timeout(limit, client.bootstrap()).await;
    let last_status = client.bootstrap_status().to_string();
    // Wait until the reporter has really stopped (it may be printing on
    // another worker thread), so no progress line follows the last one.
    reporter.abort();
    let _ = reporter.await;
    let mut shown = Progress::new(progress);
    match outcome {
        Ok(Ok(())) => {
            shown.finish(&format!("connected to Tor in {:.1} s", started.elapsed().as_secs_f64()));
            Ok(client)
        }
        Ok(Err(e)) => {
            shown.finish("could not connect to Tor");
            Err(format!("could not bootstrap: {e} (last status: {last_status})"))
        }
        Err(_) => {
            shown.finish("could not connect to Tor");
            Err(format!(
                "did not bootstrap within {} s (last status: {last_status}); check the network, \
                 or raise tor_bootstrap_timeout_secs in the config file",
                limit.as_secs()
            ))
        }
    }
}

/// A byte stream HTTP runs on: a Tor stream, or TLS inside one.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for S {}

/// Opens a stream to `address` on the circuit of `isolation`, starts TLS
/// pinned to `pin` on it (plain with `None`), then HTTP/1.1.
async fn connect(
    client: &Client,
    isolation: IsolationToken,
    address: &str,
    pin: Option<&[u8; 32]>,
) -> std::result::Result<SendRequest<Full<Bytes>>, SendError> {
    let (host, port) = split_address(address)?;
    let mut prefs = StreamPrefs::new();
    prefs.set_isolation(isolation);
    let stream = client
        .connect_with_prefs((host.as_str(), port), &prefs)
        .await
        .map_err(|e| SendError::Unreachable(format!("through Tor: {e}")))?;
    let stream: Box<dyn Stream> = match pin {
        None => Box::new(stream),
        Some(pin) => {
            let config = allium_common::tls::client_config(Some(*pin), None)
                .map_err(|e| SendError::Unreachable(e.to_string()))?;
            // SNI is off and the key pinned: the name is never sent or checked.
            let name = rustls::pki_types::ServerName::try_from("allium.invalid")
                .map_err(|e| SendError::Unreachable(e.to_string()))?;
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, stream)
                .await
                .map_err(|e| SendError::Unreachable(format!("TLS through Tor: {e}")))?;
            Box::new(tls)
        }
    };
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| SendError::Broken(e.to_string()))?;
    // Drives the connection; ends when the sender is dropped or the peer
    // closes. At most MAX_KEPT of these live at once.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request and its answer on `sender`; gives the sender back for reuse.
/// An answer that announces more than `limit` bytes is refused before its
/// body is read, and one that sends more is cut off as soon as it passes
/// the limit (the connection is then dropped, not reused).
async fn exchange(
    mut sender: SendRequest<Full<Bytes>>,
    address: &str,
    path: &str,
    content_type: &str,
    body: Bytes,
    limit: usize,
) -> std::result::Result<(Reply, SendRequest<Full<Bytes>>), SendError> {
    let broken = |e: hyper::Error| SendError::Broken(e.to_string());
    sender.ready().await.map_err(broken)?;
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, address)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
        .map_err(|e| SendError::Broken(format!("cannot build the request: {e}")))?;
    let response = sender.send_request(request).await.map_err(broken)?;
    let status = response.status().as_u16();
    let announced = response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    check_announced(announced, limit)?;
    let body = read_limited(response.into_body(), limit).await?;
    Ok((
        Reply {
            status,
            body: body.to_vec(),
        },
        sender,
    ))
}

/// Reads `body` frame by frame, stopping as soon as it passes `limit`.
async fn read_limited<B>(body: B, limit: usize) -> std::result::Result<Bytes, SendError>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(SendError::TooLarge(limit)),
        Err(e) => Err(SendError::Broken(e.to_string())),
    }
}

/// The bootstrap progress line on stderr: rewritten in place on a terminal,
/// one line per whole-percent step otherwise; nothing with `--json`.
struct Progress {
    enabled: bool,
    terminal: bool,
    last_percent: Option<u32>,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Self {
            enabled,
            terminal: std::io::stderr().is_terminal(),
            last_percent: None,
        }
    }

    fn update(&mut self, status: &arti_client::status::BootstrapStatus) {
        let percent = (status.as_frac() * 100.0).round() as u32;
        // The first event is the "not told to bootstrap yet" state.
        if !self.enabled || self.last_percent == Some(percent) || (percent == 0 && status.blocked().is_some()) {
            return;
        }
        self.last_percent = Some(percent);
        let line = format!("tor: {status}");
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            write!(err, "\r\x1b[2K{}", line.chars().take(100).collect::<String>())
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    fn finish(&mut self, message: &str) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = if self.terminal {
            writeln!(err, "\r\x1b[2Ktor: {message}")
        } else {
            writeln!(err, "tor: {message}")
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::transport::{MAX_REPLY, test_server};

    /// An HTTP/1.1 sender over a plain TCP connection to `address`: the
    /// same `exchange` runs on it as on a Tor stream.
    async fn sender_to(address: &str) -> SendRequest<Full<Bytes>> {
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(connection);
        sender
    }

    /// `exchange` with `address`, or `None` if it did not finish within a
    /// minute (the peer never ends its body: only the limit can end it).
    async fn exchange_with(address: &str, limit: usize) -> Option<std::result::Result<Reply, SendError>> {
        let sender = sender_to(address).await;
        let attempt = exchange(sender, address, "/", "text/plain", Bytes::from_static(b"hi"), limit);
        tokio::time::timeout(Duration::from_secs(60), attempt)
            .await
            .ok()
            .map(|r| r.map(|(reply, _)| reply))
    }

    #[tokio::test]
    async fn an_announced_answer_over_the_limit_is_refused_at_once() {
        let address = test_server::serve(test_server::announcing(MAX_REPLY + 1), 0, false).await;
        let outcome = exchange_with(&address, MAX_REPLY).await;
        assert_eq!(outcome, Some(Err(SendError::TooLarge(MAX_REPLY))));
    }

    #[tokio::test]
    async fn a_streamed_answer_is_cut_off_once_past_the_limit() {
        let address = test_server::serve(test_server::chunked(), MAX_REPLY + 65536, true).await;
        let outcome = exchange_with(&address, MAX_REPLY).await;
        assert_eq!(outcome, Some(Err(SendError::TooLarge(MAX_REPLY))));
        let address = test_server::serve(test_server::announcing(5000), 5000, false).await;
        let reply = exchange_with(&address, 5000).await.unwrap().unwrap();
        assert_eq!((reply.status, reply.body.len()), (200, 5000));
    }
}
