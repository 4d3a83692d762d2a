//! Tools of the adversarial tests: raw connections from a chosen loopback
//! address, doing what no well-behaved client does.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// A TCP connection to `target` whose source address is `from` (another
/// loopback address than the nodes', so per-address rules see a stranger).
pub async fn connect_from(from: &str, target: &str) -> anyhow::Result<TcpStream> {
    let from: IpAddr = from.parse().context("source address")?;
    let target: SocketAddr = target.parse().context("target address")?;
    let socket = if from.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(from, 0))?;
    Ok(socket.connect(target).await?)
}

/// Whether the peer has closed (or reset) `stream` within `within`: a read
/// returns end of file or an error. Bytes the peer sent first (an error
/// answer) are read and skipped.
pub async fn closed_by_peer(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends the headers of a `POST path` announcing a `len`-byte body, and no
/// body.
pub async fn send_post_headers(stream: &mut TcpStream, host: &str, path: &str, len: usize) -> std::io::Result<()> {
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await
}

/// A plain `GET path` from `from` on a new connection; returns the status,
/// or `None` if no answer came within `within`.
pub async fn get_status(from: &str, target: &str, path: &str, within: Duration) -> Option<u16> {
    let attempt = async {
        let mut stream = connect_from(from, target).await.ok()?;
        let head = format!("GET {path} HTTP/1.1\r\nhost: {target}\r\nconnection: close\r\n\r\n");
        stream.write_all(head.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.ok()?;
        let text = String::from_utf8_lossy(&answer);
        text.split(' ').nth(1)?.parse().ok()
    };
    tokio::time::timeout(within, attempt).await.ok().flatten()
}
