//! A fake peer: an HTTPS server on 127.0.0.1 that answers every request
//! with the same JSON body (a seed that serves a forged or replayed
//! consensus, say), with the TLS certificate of a key it was given (a
//! stolen one: without it, no Allium peer gets past the TLS pin).

use allium_common::Identity;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running fake server; stops when dropped.
#[derive(Debug)]
pub struct FixedServer {
    /// `127.0.0.1:port`.
    pub address: String,
    task: JoinHandle<()>,
}

impl Drop for FixedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a server, TLS as `key`, that answers every request with `200`
/// and `body`.
pub async fn serve_fixed(key: &Identity, body: Vec<u8>) -> anyhow::Result<FixedServer> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let tls = allium_common::tls::server_config(&allium_common::tls::LinkCert::new(key)?)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls));
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let body = body.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut stream) = acceptor.accept(stream).await else {
                    return;
                };
                // Read the request: headers, then Content-Length bytes.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse().ok())?
                            })
                            .unwrap_or(0usize);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(&body).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    Ok(FixedServer { address, task })
}
