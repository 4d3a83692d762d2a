//! Shared helpers of the node's multi-process tests: a local network of real
//! `allium-node` processes and signed RPC calls against it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use allium_common::consensus::Consensus;
use allium_common::encoding::{Base64Bytes, Hex32, Sig64};
use allium_common::node_list::NodeEntry;
use allium_common::rpc::{self, Call, Namespace, RetrieveParams, StoreParams};
use allium_common::{AccountId, Identity};
use allium_node::devnet::LocalNet;
use serde_json::{Value, json};
use tempfile::TempDir;

/// How long a test waits for a network to form.
pub const FORM_TIMEOUT: Duration = Duration::from_secs(60);

/// A local network that is stopped and deleted when dropped.
pub struct Net {
    pub net: LocalNet,
    pub http: reqwest::Client,
    _dir: TempDir,
}

impl Net {
    /// Starts a seed and `n` nodes and waits until they form a network.
    pub async fn start(n: usize) -> Self {
        Self::start_with(n, "").await
    }

    /// As [`Net::start`], with extra node configuration (TOML).
    pub async fn start_with(n: usize, extra: &str) -> Self {
        let mut dir = tempfile::tempdir().unwrap();
        // ALLIUM_KEEP_TESTNET=1 keeps the nodes' data and logs for a post-mortem.
        if std::env::var_os("ALLIUM_KEEP_TESTNET").is_some() {
            dir.disable_cleanup(true);
            eprintln!("test network kept in {}", dir.path().display());
        }
        let exe = std::path::Path::new(env!("CARGO_BIN_EXE_allium-node"));
        let net = LocalNet::start(exe, dir.path(), n, extra, FORM_TIMEOUT).await.unwrap();
        net.wait_until_formed(FORM_TIMEOUT).await.unwrap();
        Self {
            net,
            http: allium_node::peer::links::unpinned_client(Default::default(), None),
            _dir: dir,
        }
    }

    /// Sends `signal` (`-STOP`, `-CONT`, ...) to the node process listening
    /// at `address`: a stopped node's socket still accepts, nothing answers.
    pub fn signal(&self, address: &str, signal: &str) {
        let pid = self
            .net
            .nodes
            .iter()
            .find(|n| n.address == address)
            .and_then(|n| n.pid())
            .unwrap()
            .to_string();
        let ok = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {signal} {pid}");
    }

    /// A counter or gauge from a node's `/metrics` (`u64::MAX` if absent).
    pub async fn metric(&self, address: &str, name: &str) -> u64 {
        let text = self
            .http
            .get(format!("https://{address}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(u64::MAX)
    }

    /// The current signed node list (from the seed).
    pub async fn node_list(&self) -> Consensus {
        let (status, body) = self
            .rpc(&self.net.seed().address, &json!({"method": "node_list"}))
            .await;
        assert_eq!(status, 200, "{body}");
        Consensus::from_value(body).unwrap().into_unchecked()
    }

    /// POSTs a JSON-RPC body to a node.
    pub async fn rpc(&self, address: &str, body: &Value) -> (u16, Value) {
        post_json(&self.http, address, body).await
    }

    /// Addresses of the running members of `account`'s swarm.
    pub async fn swarm_of(&self, account: &impl allium_common::swarm::SwarmKey) -> Vec<NodeEntry> {
        let list = self.node_list().await;
        let swarm = list.swarm_ring().swarm_of(account).unwrap();
        list.swarm_members(swarm)
            .filter(|n| {
                self.net
                    .nodes
                    .iter()
                    .any(|p| p.is_running() && p.ed25519 == n.ed25519.0)
            })
            .cloned()
            .collect()
    }

    /// A running node outside `account`'s swarm, if any.
    pub async fn outside_swarm_of(&self, account: &AccountId) -> Option<NodeEntry> {
        let list = self.node_list().await;
        let swarm = list.swarm_ring().swarm_of(account).unwrap();
        list.nodes.iter().find(|n| n.swarm_id != swarm).cloned()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // kill_on_drop in the harness reaps every child process.
    }
}

/// POSTs JSON to `/storage_rpc/v1`.
pub async fn post_json(http: &reqwest::Client, address: &str, body: &Value) -> (u16, Value) {
    let response = http
        .post(format!("https://{address}/storage_rpc/v1"))
        .json(body)
        .timeout(Duration::from_secs(40))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The wall clock in Unix ms.
pub fn now_ms() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// A fresh identity from a one-byte seed.
pub fn identity(seed: u8) -> Identity {
    Identity::from_ed25519_seed(&[seed; 32])
}

/// A namespace-0 store of `data` into `to`'s mailbox.
pub fn store(to: &AccountId, data: &[u8], ttl_ms: u64) -> Value {
    store_at(to, data, ttl_ms, now_ms())
}

/// A store with an explicit timestamp.
pub fn store_at(to: &AccountId, data: &[u8], ttl_ms: u64, timestamp: u64) -> Value {
    Call::Store(StoreParams {
        chunk: None,
        pubkey: (*to).into(),
        namespace: Namespace::DEFAULT,
        timestamp,
        ttl: ttl_ms,
        data: Base64Bytes(data.to_vec()),
        pubkey_ed25519: None,
        signature: None,
        credential: None,
    })
    .to_json()
}

/// A signed retrieve of `owner`'s inbox.
pub fn retrieve(owner: &Identity, last_hash: Option<&str>, wait_ms: Option<u64>) -> Value {
    retrieve_at(owner, last_hash, wait_ms, now_ms())
}

/// A signed retrieve with an explicit timestamp.
pub fn retrieve_at(owner: &Identity, last_hash: Option<&str>, wait_ms: Option<u64>, timestamp: u64) -> Value {
    Call::Retrieve(RetrieveParams {
        pubkey: owner.account_id().into(),
        pubkey_ed25519: Hex32(*owner.ed25519_pk()),
        namespace: Namespace::DEFAULT,
        timestamp,
        signature: Sig64(owner.sign(&rpc::retrieve_signed_bytes(Namespace::DEFAULT, timestamp))),
        last_hash: last_hash.map(str::to_owned),
        max_count: None,
        max_size: None,
        wait_ms,
        credential: None,
    })
    .to_json()
}

/// The hashes in a retrieve answer.
pub fn hashes(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["hash"].as_str().unwrap().to_owned())
        .collect()
}
