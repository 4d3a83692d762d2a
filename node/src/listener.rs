//! Accepting and serving HTTP connections, with a bound and a deadline on
//! everything a peer can hold.
//!
//! - **Connections per address.** No IPv4 address (or IPv6 /64) holds more
//!   than `max_connections_per_ip` connections at once, the addresses of
//!   listed nodes (relays carry many clients) `max_connections_per_node_ip`;
//!   no more than `max_connections` in all. A connection over a cap is
//!   closed at once, so slow clients from one address cannot hold the slots
//!   everyone else needs.
//! - **Request headers** must arrive within `header_timeout_ms` of the
//!   connection's first byte or of the end of the previous answer (hyper's
//!   header-read timeout, which so also closes keep-alive connections idle
//!   that long).
//! - **Request bodies** must be complete within `body_timeout_ms` of their
//!   headers ([`DeadlineBody`]): a peer trickling a body a byte at a time
//!   gets cut off, not waited for.
//! - **Writes** that make no progress for `write_stall_ms` (a peer that
//!   does not read its answer) end the connection ([`StallGuard`]).
//!
//! - **TLS handshakes** must finish within `header_timeout_ms` too.
//!
//! Handlers see the peer's address as axum's `ConnectInfo<SocketAddr>` and
//! what its TLS handshake proved as a [`LinkPeer`].

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Sleep;
use tower::ServiceExt as _;

/// How long a shutdown waits for open connections to finish their request.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Caps and deadlines of the listener (from `[limits]` in the config).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections open at once, in all.
    pub max_connections: usize,
    /// Connections open at once from one IPv4 address or IPv6 /64.
    pub per_address: usize,
    /// The same for the address of a listed node.
    pub per_node_address: usize,
    /// Deadline for a request's headers (and for an idle keep-alive).
    pub header_timeout: Duration,
    /// Deadline for a request's body, from its headers.
    pub body_timeout: Duration,
    /// Longest a write may make no progress.
    pub write_stall: Duration,
}

/// The key a connection is counted under: the IPv4 address, or the /64 of
/// an IPv6 address (one customer's allocation is usually a /64 or larger).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` are open.
    Full,
    /// The address (or /64) holds its share.
    AddressFull,
}

/// The open connections, counted per address.
#[derive(Debug)]
pub struct ConnectionTable {
    limits: ListenerLimits,
    open: Mutex<Counts>,
    refused: AtomicU64,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_key: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Slot {
    table: Arc<ConnectionTable>,
    key: IpAddr,
}

impl ConnectionTable {
    /// An empty table with these limits.
    pub fn new(limits: ListenerLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new(Counts::default()),
            refused: AtomicU64::new(0),
        })
    }

    /// The limits.
    pub fn limits(&self) -> ListenerLimits {
        self.limits
    }

    /// Admits a connection from `ip` (`node`: the address of a listed node)
    /// if the caps allow it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr, node: bool) -> Result<Slot, Refusal> {
        let key = address_key(ip);
        let cap = if node {
            self.limits.per_node_address
        } else {
            self.limits.per_address
        };
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let refusal = if open.total >= self.limits.max_connections {
            Some(Refusal::Full)
        } else if open.per_key.get(&key).copied().unwrap_or(0) >= cap {
            Some(Refusal::AddressFull)
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(refusal);
        }
        open.total += 1;
        *open.per_key.entry(key).or_default() += 1;
        Ok(Slot {
            table: Arc::clone(self),
            key,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).total
    }

    /// Connections refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_key.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.per_key.remove(&self.key);
            }
        }
    }
}

/// Who is at the other end of a connection, as its TLS handshake proved.
/// Every request carries it as an extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPeer {
    /// Plain HTTP (`plaintext_links`): nothing is proved.
    Plaintext,
    /// TLS without a certificate: a client.
    Anonymous,
    /// TLS with a certificate carrying this Ed25519 key, whose handshake
    /// signature verified.
    Key([u8; 32]),
}

impl std::fmt::Display for LinkPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plaintext => f.write_str("plaintext"),
            Self::Anonymous => f.write_str("no certificate"),
            Self::Key(key) => f.write_str(&hex::encode(key)),
        }
    }
}

impl LinkPeer {
    fn of(connection: &rustls::ServerConnection) -> Self {
        connection
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| allium_common::tls::peer_key(cert).ok())
            .map_or(Self::Anonymous, Self::Key)
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open
/// connections finish their request (at most 30 s). With `tls`, every
/// connection is TLS, its handshake due within the header timeout.
/// `is_node` says whether an address belongs to a listed node.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    table: Arc<ConnectionTable>,
    is_node: impl Fn(IpAddr) -> bool,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limits = table.limits();
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                // Out of file descriptors and the like: wait, do not spin.
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let slot = match table.admit(peer.ip(), is_node(peer.ip())) {
            Ok(slot) => slot,
            Err(refusal) => {
                tracing::debug!(?refusal, "connection refused");
                drop(stream);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = StallGuard::new(stream, limits.write_stall);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let watcher = graceful.watcher();
        // The handshake runs in the connection's own task, so a slow one
        // holds its slot, never the accept loop.
        tokio::spawn(async move {
            match acceptor {
                None => serve_connection(stream, peer, LinkPeer::Plaintext, app, limits, watcher).await,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(tls)) => {
                            let link = LinkPeer::of(tls.get_ref().1);
                            serve_connection(tls, peer, link, app, limits, watcher).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period");
    }
    Ok(())
}

/// Serves HTTP/1.1 on one accepted (and, with TLS, handshaken) connection.
async fn serve_connection<S>(
    io: S,
    peer: SocketAddr,
    link: LinkPeer,
    app: Router,
    limits: ListenerLimits,
    watcher: Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let body_timeout = limits.body_timeout;
    let service = app.map_request(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(link);
        request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)))
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let connection = watcher.watch(http.serve_connection(TokioIo::new(io), TowerToHyperService::new(service)));
    if let Err(e) = connection.await {
        tracing::trace!(error = %e, "connection ended with an error");
    }
}

/// A request body that fails once `timeout` has passed since it was made
/// (the request's headers arrived) without reaching its end.
#[derive(Debug)]
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
}

impl<B> DeadlineBody<B> {
    /// `inner`, due within `timeout` from now.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

/// The body did not arrive in time.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within the deadline")]
pub struct BodyTimedOut;

impl<B> http_body::Body for DeadlineBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A stream whose writes fail with `TimedOut` after making no progress for
/// `stall`: a peer that stops reading cannot hold a connection (and the
/// answer buffered for it) for ever. Reads are not limited here; the
/// header and body deadlines cover them.
#[derive(Debug)]
pub struct StallGuard<S> {
    inner: S,
    stall: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<S> StallGuard<S> {
    /// Guards `inner`.
    pub fn new(inner: S, stall: Duration) -> Self {
        Self {
            inner,
            stall,
            waiting: None,
        }
    }

    /// Maps a pending write to an error once it has been pending too long.
    fn check<T>(&mut self, cx: &mut Context<'_>, poll: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.waiting = None;
            return poll;
        }
        let stall = self.stall;
        let timer = self.waiting.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the peer stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    fn limits() -> ListenerLimits {
        ListenerLimits {
            max_connections: 6,
            per_address: 2,
            per_node_address: 3,
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            write_stall: Duration::from_secs(1),
        }
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 1, 2, 3).to_ipv6_mapped());
        assert_eq!(address_key(mapped), IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        assert_eq!(
            address_key(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            "::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn caps_per_address_per_node_address_and_in_all() {
        let table = ConnectionTable::new(limits());
        let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        let a1 = table.admit(ip(1), false).unwrap();
        let _a2 = table.admit(ip(1), false).unwrap();
        assert_eq!(table.admit(ip(1), false).unwrap_err(), Refusal::AddressFull);
        let v6: Vec<Slot> = ["2001:db8::1", "2001:db8::2"]
            .iter()
            .map(|a| table.admit(a.parse().unwrap(), false).unwrap())
            .collect();
        assert_eq!(
            table.admit("2001:db8::3".parse().unwrap(), false).unwrap_err(),
            Refusal::AddressFull,
            "one /64 is one address"
        );
        let n1 = table.admit(ip(9), true).unwrap();
        let n2 = table.admit(ip(9), true).unwrap();
        assert_eq!(table.open(), 6);
        assert_eq!(table.admit(ip(7), false).unwrap_err(), Refusal::Full);
        drop(v6);
        let _n3 = table.admit(ip(9), true).unwrap();
        assert_eq!(table.admit(ip(9), true).unwrap_err(), Refusal::AddressFull);
        drop(a1);
        assert!(table.admit(ip(1), false).is_ok(), "a freed place is taken again");
        drop((n1, n2));
        assert_eq!(table.refused(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_trickles_past_its_deadline_fails() {
        use http_body_util::BodyExt as _;
        let (mut tx, body) = http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(4);
        let mut body = DeadlineBody::new(body, Duration::from_secs(10));
        let feeder = tokio::spawn(async move {
            for _ in 0..100 {
                if tx.send_data(Bytes::from_static(b"x")).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        let mut got = 0;
        let error = loop {
            match body.frame().await {
                Some(Ok(_)) => got += 1,
                Some(Err(e)) => break e,
                None => panic!("the body ended"),
            }
        };
        assert!(error.is::<BodyTimedOut>(), "{error}");
        assert!((9..=11).contains(&got), "{got} frames before the deadline");
        feeder.abort();
    }
}
