//! Calls this node makes to other nodes and seeds: one deadline over the
//! whole exchange (connect, send, the answer's headers and its body) and a
//! cap on the answer's size, read while it streams in.

use std::time::Duration;

use super::links::Links;

/// One HTTP POST to another node or a seed.
#[derive(Debug, Clone)]
pub struct Call {
    /// `host:port`.
    pub address: String,
    /// The key the peer must answer with (`None`: any, for tools only).
    pub pin: Option<[u8; 32]>,
    /// The path, e.g. `/swarm/v1/push`.
    pub path: &'static str,
    /// Extra headers (authentication).
    pub headers: Vec<(&'static str, String)>,
    /// The body's media type.
    pub content_type: &'static str,
    /// The body.
    pub body: Vec<u8>,
    /// Deadline of the whole exchange.
    pub deadline: Duration,
    /// Most answer bytes read.
    pub max_answer: usize,
}

/// An answer, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Whether the answer is `application/json`.
    pub json: bool,
    /// The body.
    pub body: Vec<u8>,
    /// The address the connection reached.
    pub remote: Option<std::net::SocketAddr>,
}

impl Answer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON of type `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, CallError> {
        serde_json::from_slice(&self.body).map_err(|_| CallError::Malformed)
    }
}

/// Why a call got no (usable) answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The deadline passed.
    #[error("no answer in time")]
    Timeout,
    /// The connection could not be made.
    #[error("connection failed")]
    Unreachable,
    /// The answer broke off.
    #[error("the answer broke off")]
    Broken,
    /// The answer is larger than allowed.
    #[error("the answer is larger than allowed")]
    TooLarge,
    /// The answer is not what was asked for.
    #[error("the answer is malformed")]
    Malformed,
    /// The peer's TLS certificate does not carry the key it must have.
    #[error("the peer's TLS key is not the one it must have")]
    WrongKey,
    /// A node tried a call without the key the peer must have.
    #[error("a node's call must name the key of its peer")]
    Unpinned,
}

/// Makes `call` over `links`.
pub async fn call(links: &Links, call: Call) -> Result<Answer, CallError> {
    let Call {
        address,
        pin,
        path,
        headers,
        content_type,
        body,
        deadline,
        max_answer,
    } = call;
    let exchange = async {
        let mut request = links
            .post(pin.as_ref(), &address, path)?
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| {
            if wrong_key(&e) {
                CallError::WrongKey
            } else if e.is_connect() {
                CallError::Unreachable
            } else {
                CallError::Broken
            }
        })?;
        let status = response.status().as_u16();
        let remote = response.remote_addr();
        let json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let body = read_bounded(response, max_answer).await?;
        Ok(Answer {
            status,
            json,
            body,
            remote,
        })
    };
    tokio::time::timeout(deadline, exchange)
        .await
        .unwrap_or(Err(CallError::Timeout))
}

/// Whether a request failed because the server's certificate did not
/// carry the pinned key.
fn wrong_key(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(rustls::Error::InvalidCertificate(_)) = err.downcast_ref::<rustls::Error>() {
            return true;
        }
        // An io::Error's source() skips the error it wraps: step into it.
        source = match err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    false
}

/// Reads a response body, refusing more than `limit` bytes as soon as they
/// arrive (a `Content-Length` over the limit is refused before reading).
pub async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, CallError> {
    if response
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(CallError::TooLarge);
    }
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if out.len() + chunk.len() > limit {
                    return Err(CallError::TooLarge);
                }
                out.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(out),
            Err(_) => return Err(CallError::Broken),
        }
    }
}
