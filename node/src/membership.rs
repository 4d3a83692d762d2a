//! A service node's side of the registry: announce to the seeds, fetch the
//! signed node list, install it, and hand messages over when swarms change.
//!
//! Until the node finds itself in a list it polls quickly (every 250 ms) so
//! a new network forms in seconds; after that it refreshes every
//! `node_list_refresh_ms` and re-announces every `announce_interval_ms`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use allium_common::announce::Announce;
use allium_common::node_list::NodeList;
use allium_common::seeds::Seed;
use serde_json::{Value, json};

use crate::directory::InstallError;
use crate::replication;
use crate::state::{Node, VERSION, now_ms};

/// Poll interval while the node is not yet listed.
const BOOTSTRAP_POLL: Duration = Duration::from_millis(250);
/// Timeout of one call to a seed.
const SEED_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs forever.
pub async fn run(node: Arc<Node>, seeds: Vec<Seed>) {
    let announce_every = Duration::from_millis(node.config.timing.announce_interval_ms.max(1000));
    let refresh_every = Duration::from_millis(node.config.timing.node_list_refresh_ms.max(100));
    let mut last_announce: Option<Instant> = None;
    loop {
        let listed = node.directory.current().is_some_and(|s| s.my_swarm.is_some());
        // Re-announce on schedule, and keep announcing while unlisted (the
        // seed may have restarted or dropped us).
        if last_announce.is_none_or(|t| t.elapsed() >= announce_every)
            || (!listed && last_announce.is_some_and(|t| t.elapsed() >= Duration::from_secs(2)))
        {
            announce(&node, &seeds).await;
            last_announce = Some(Instant::now());
        }
        refresh(&node, &seeds).await;
        let listed = node.directory.current().is_some_and(|s| s.my_swarm.is_some());
        tokio::time::sleep(if listed { refresh_every } else { BOOTSTRAP_POLL }).await;
    }
}

async fn announce(node: &Node, seeds: &[Seed]) {
    let record = Announce::sign(&node.identity, &node.config.advertised_address(), VERSION, now_ms());
    for seed in seeds {
        let sent = node
            .http
            .post(format!("http://{}/seed/v1/announce", seed.address))
            .json(&record)
            .send();
        match tokio::time::timeout(SEED_TIMEOUT, sent).await {
            Ok(Ok(r)) if r.status().is_success() => {
                tracing::debug!(seed = %seed.address, "announced")
            }
            Ok(Ok(r)) => {
                tracing::warn!(seed = %seed.address, status = r.status().as_u16(), "seed refused the announce")
            }
            _ => tracing::warn!(seed = %seed.address, "seed unreachable for announce"),
        }
    }
}

/// Fetches the list from every seed and installs the newest valid one.
pub async fn refresh(node: &Arc<Node>, seeds: &[Seed]) {
    for seed in seeds {
        let Some(list) = fetch_node_list(&node.http, &seed.address).await else {
            continue;
        };
        match node.directory.install(list) {
            Ok(change) => {
                // First time in a swarm since this process started: ask the
                // peers for what was stored while this node was away.
                if change.new_swarm.is_some() && change.old_swarm.is_none() {
                    tokio::spawn(replication::request_sync(Arc::clone(node)));
                }
                tracing::info!(
                    epoch = change.new_epoch,
                    swarm = ?change.new_swarm,
                    newcomers = change.newcomers.len(),
                    "installed node list"
                );
                tokio::spawn(replication::hand_over(Arc::clone(node), change));
            }
            Err(InstallError::Stale { .. }) => {}
            Err(e) => tracing::warn!(seed = %seed.address, error = %e, "refused a node list"),
        }
    }
}

/// `node_list` from one node or seed; `None` if unreachable or malformed.
pub async fn fetch_node_list(http: &reqwest::Client, address: &str) -> Option<NodeList> {
    let sent = http
        .post(format!("http://{address}/storage_rpc/v1"))
        .json(&json!({"method": "node_list"}))
        .send();
    let response = tokio::time::timeout(SEED_TIMEOUT, sent).await.ok()?.ok()?;
    if !response.status().is_success() {
        return None;
    }
    let value: Value = response.json().await.ok()?;
    NodeList::from_value(value).ok()
}
