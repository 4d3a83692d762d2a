//! Tools of the adversarial tests: raw connections from a chosen loopback
//! address, doing what no well-behaved client does.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

/// A connection to a node, TLS over TCP.
pub type Conn = TlsStream<TcpStream>;

/// A TLS connection (unpinned, no certificate) to `target` whose source address is `from` (another
/// loopback address than the nodes', so per-address rules see a stranger).
pub async fn connect_from(from: &str, target: &str) -> anyhow::Result<Conn> {
    let from: IpAddr = from.parse().context("source address")?;
    let target: SocketAddr = target.parse().context("target address")?;
    let socket = if from.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(from, 0))?;
    let tcp = socket.connect(target).await?;
    let config = allium_common::tls::client_config(None, None)?;
    let name = rustls::pki_types::ServerName::IpAddress(target.ip().into());
    Ok(tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await?)
}

/// Whether the peer has closed (or reset) `stream` within `within`: a read
/// returns end of file or an error. Bytes the peer sent first (an error
/// answer) are read and skipped.
pub async fn closed_by_peer(stream: &mut Conn, within: Duration) -> bool {
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
pub async fn send_post_headers(stream: &mut Conn, host: &str, path: &str, len: usize) -> std::io::Result<()> {
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

/// An onion request through `path` (the last node executes `request`),
/// with fresh randomness.
///
/// # Panics
/// If the request cannot be built (an empty path, a request too large).
#[allow(clippy::expect_used)]
pub fn onion(
    path: &[&allium_common::node_list::NodeEntry],
    request: &serde_json::Value,
) -> allium_common::onion::OnionRequest {
    use allium_common::onion::{Hop, LayerSecrets, build_request};
    use allium_common::sodium::random_array;
    let hops: Vec<Hop> = path
        .iter()
        .map(|n| Hop {
            ed25519: n.ed25519.0,
            x25519: n.x25519.0,
        })
        .collect();
    let secrets: Vec<LayerSecrets> = path
        .iter()
        .map(|_| LayerSecrets {
            ephemeral_sk: random_array(),
            nonce: random_array(),
        })
        .collect();
    build_request(&hops, request, &secrets).expect("onion request")
}

/// POSTs `body` to `https://{target}{path}` (a stranger: no certificate)
/// from the loopback address `from`; returns the status and body (`None`
/// on a transport failure).
pub async fn post_from(from: &str, target: &str, path: &str, body: Vec<u8>) -> Option<(u16, Vec<u8>)> {
    let ip: IpAddr = from.parse().ok()?;
    let settings = allium_node::peer::LinkSettings {
        local_address: Some(ip),
        ..Default::default()
    };
    let http = allium_node::peer::links::unpinned_client(settings, None);
    let response = http
        .post(format!("https://{target}{path}"))
        .body(body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.bytes().await.ok()?.to_vec()))
}

/// The wall clock in Unix ms.
pub fn now_ms() -> u64 {
    allium_client::now_ms()
}

/// A signed `retrieve` of `owner`'s inbox sent straight to `node`; the
/// hashes of the messages it holds.
pub async fn retrieve_direct(owner: &allium_common::Identity, node: &str) -> Vec<String> {
    let request = retrieve_request(owner);
    let Some((200, body)) = post_from("127.0.0.9", node, "/storage_rpc/v1", request.to_string().into_bytes()).await
    else {
        return Vec::new();
    };
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    value["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["hash"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The identity behind a recovery phrase (what a test needs to sign as a
/// client it created with `allium init`).
///
/// # Panics
/// If the phrase is not valid.
#[allow(clippy::expect_used)]
pub fn identity_of(phrase: &str) -> allium_common::Identity {
    let seed = allium_common::mnemonic::seed_from_phrase(phrase, "").expect("a valid phrase");
    allium_common::Identity::from_ed25519_seed(&seed)
}

/// A signed `retrieve` request of `owner`'s inbox, whole (no `max_size`).
pub fn retrieve_request(owner: &allium_common::Identity) -> serde_json::Value {
    use allium_common::encoding::{Hex32, Sig64};
    use allium_common::rpc::{Call, Namespace, RetrieveParams, retrieve_signed_bytes};
    let ts = now_ms();
    Call::Retrieve(RetrieveParams {
        pubkey: owner.account_id().into(),
        pubkey_ed25519: Hex32(*owner.ed25519_pk()),
        namespace: Namespace::DEFAULT,
        timestamp: ts,
        signature: Sig64(owner.sign(&retrieve_signed_bytes(Namespace::DEFAULT, ts))),
        last_hash: None,
        max_count: None,
        max_size: None,
        wait_ms: None,
        credential: None,
    })
    .to_json()
}

/// A namespace-0 store of `data` into `to`'s mailbox, as anyone may make.
pub fn store_request(to: &allium_common::AccountId, data: &[u8]) -> serde_json::Value {
    use allium_common::encoding::Base64Bytes;
    use allium_common::rpc::{Call, Namespace, StoreParams};
    Call::Store(StoreParams {
        chunk: None,
        pubkey: (*to).into(),
        namespace: Namespace::DEFAULT,
        timestamp: now_ms(),
        ttl: 3_600_000,
        data: Base64Bytes(data.to_vec()),
        pubkey_ed25519: None,
        signature: None,
        credential: None,
    })
    .to_json()
}

/// Bytes of message data in a retrieve result.
pub fn data_bytes(result: &serde_json::Value) -> usize {
    result["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter_map(|m| m["data"].as_str())
                .filter_map(|d| allium_common::encoding::from_base64(d).ok())
                .map(|d| d.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A `delete` of `hashes` signed by `owner` at `timestamp`.
pub fn delete_request(owner: &allium_common::Identity, hashes: &[String], timestamp: u64) -> serde_json::Value {
    use allium_common::encoding::{Hex32, Sig64};
    use allium_common::rpc::{Call, DeleteParams, delete_signed_bytes};
    Call::Delete(DeleteParams {
        pubkey: owner.account_id().into(),
        pubkey_ed25519: Hex32(*owner.ed25519_pk()),
        messages: hashes.to_vec(),
        timestamp,
        signature: Sig64(owner.sign(&delete_signed_bytes(timestamp, hashes))),
        credential: None,
    })
    .to_json()
}

/// A `delete_all` of namespace 0 signed by `owner` at `timestamp`.
pub fn delete_all_request(owner: &allium_common::Identity, timestamp: u64) -> serde_json::Value {
    use allium_common::encoding::{Hex32, Sig64};
    use allium_common::rpc::{Call, DeleteAllParams, Namespace, delete_all_signed_bytes};
    Call::DeleteAll(DeleteAllParams {
        chunk: None,
        pubkey: owner.account_id().into(),
        pubkey_ed25519: Hex32(*owner.ed25519_pk()),
        namespace: Namespace::DEFAULT,
        timestamp,
        signature: Sig64(owner.sign(&delete_all_signed_bytes(Namespace::DEFAULT, timestamp))),
    })
    .to_json()
}

/// An `expire` of `hashes` to `expiry`, signed by `owner` at `timestamp`.
pub fn expire_request(
    owner: &allium_common::Identity,
    hashes: &[String],
    expiry: u64,
    timestamp: u64,
) -> serde_json::Value {
    use allium_common::encoding::{Hex32, Sig64};
    use allium_common::rpc::{Call, ExpireParams, expire_signed_bytes};
    Call::Expire(ExpireParams {
        pubkey: owner.account_id().into(),
        pubkey_ed25519: Hex32(*owner.ed25519_pk()),
        messages: hashes.to_vec(),
        expiry,
        timestamp,
        signature: Sig64(owner.sign(&expire_signed_bytes(timestamp, expiry, hashes))),
    })
    .to_json()
}

/// POSTs a JSON-RPC request to `node` from 127.0.0.6; status and JSON body.
pub async fn rpc(node: &str, request: &serde_json::Value) -> (u16, serde_json::Value) {
    match post_from("127.0.0.6", node, "/storage_rpc/v1", request.to_string().into_bytes()).await {
        Some((status, body)) => (status, serde_json::from_slice(&body).unwrap_or_default()),
        None => (0, serde_json::Value::Null),
    }
}

/// POSTs `body` to `address`'s `path` signed as `signer` (the node headers
/// and its signature over `domain ‖ BLAKE2b-256(body)`), over a TLS link that presents
/// `link`'s certificate (`None`: none, as a client connects); returns the
/// status and the JSON answer.
///
/// # Panics
/// If the request cannot be made at all.
#[allow(clippy::unwrap_used)]
pub async fn post_signed_over(
    link: Option<&allium_common::Identity>,
    signer: &allium_common::Identity,
    address: &str,
    path: &str,
    domain: &[u8],
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let body = serde_json::to_vec(body).unwrap();
    let signature = signer.sign(&allium_common::peer::signed_bytes(domain, &body));
    let cert = link.map(|id| allium_common::tls::LinkCert::new(id).unwrap());
    let response = allium_node::peer::links::unpinned_client(Default::default(), cert.as_ref())
        .post(format!("https://{address}{path}"))
        .header("x-allium-node", hex::encode(signer.ed25519_pk()))
        .header("x-allium-signature", allium_common::encoding::to_base64(&signature))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}
