//! A service node's side of the registry: announce to the seeds, fetch the
//! signed node list, install it, and hand messages over when swarms change.
//!
//! Until the node finds itself in a list it polls quickly (every 250 ms) so
//! a new network forms in seconds; after that it refreshes every
//! `node_list_refresh_ms` and re-announces every `announce_interval_ms`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use allium_common::announce::Announce;
use allium_common::consensus::{Consensus, ConsensusDiff, UnverifiedConsensus};
use allium_common::node_list::MAX_ENCODED_LEN;
use allium_common::seeds::Seed;
use serde_json::{Value, json};

use crate::directory::InstallError;
use crate::peer::Links;
use crate::peer::outbound::{self, Answer, Call};
use crate::replication;
use crate::state::{Node, VERSION, now_ms};

/// Poll interval while the node is not yet listed.
const BOOTSTRAP_POLL: Duration = Duration::from_millis(250);
/// Deadline of one call to a seed.
const SEED_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer to an announce.
const MAX_SMALL_ANSWER: usize = 4096;

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
    let body = serde_json::to_vec(&record).unwrap_or_default();
    for seed in seeds {
        let call = Call {
            address: seed.address.clone(),
            pin: Some(seed.ed25519),
            path: "/seed/v1/announce",
            headers: Vec::new(),
            content_type: "application/json",
            body: body.clone(),
            deadline: SEED_TIMEOUT,
            max_answer: MAX_SMALL_ANSWER,
        };
        match node.peers.call(call).await {
            Ok(a) if a.is_success() => tracing::debug!(seed = %seed.address, "announced"),
            Ok(a) => tracing::warn!(seed = %seed.address, status = a.status, "seed refused the announce"),
            Err(e) => tracing::warn!(seed = %seed.address, error = %e, "seed unreachable for announce"),
        }
    }
}

/// Installs the next consensus, if one is out: nothing is fetched before
/// the held one's `fresh_until` (unless this node is not listed yet);
/// then the seeds are asked in random order for the difference from the
/// held period (or the whole document), until one gives a newer consensus.
pub async fn refresh(node: &Arc<Node>, seeds: &[Seed]) {
    let held = node.directory.current();
    if let Some(h) = &held
        && h.my_swarm.is_some()
        && now_ms() < h.list.fresh_until
    {
        return;
    }
    let mut order: Vec<&Seed> = seeds.iter().collect();
    allium_common::sodium::shuffle(&mut order);
    for seed in order {
        let since = held.as_ref().map(|h| h.list.period);
        let offered = match fetch_since(node.peers.links(), Some(&seed.ed25519), &seed.address, since).await {
            Some(Fetched::Full(full)) => full,
            Some(Fetched::Diff(diff)) => match held.as_ref().map(|h| diff.apply(&h.list)) {
                Some(Ok(rebuilt)) => rebuilt,
                _ => {
                    tracing::debug!(seed = %seed.address, "a consensus diff did not apply; fetching the whole document");
                    let Some(Fetched::Full(full)) =
                        fetch_since(node.peers.links(), Some(&seed.ed25519), &seed.address, None).await
                    else {
                        continue;
                    };
                    full
                }
            },
            None => continue,
        };
        match node.directory.install(offered, now_ms()) {
            Ok(change) => {
                // First time in a swarm since this process started: ask the
                // peers for what was stored while this node was away.
                if change.new_swarm.is_some() && change.old_swarm.is_none() {
                    tokio::spawn(replication::request_sync(Arc::clone(node)));
                }
                if change.network_changed {
                    tracing::info!(
                        period = change.new_period,
                        swarm = ?change.new_swarm,
                        newcomers = change.newcomers.len(),
                        "installed a consensus"
                    );
                    tokio::spawn(replication::hand_over(Arc::clone(node), change));
                } else {
                    tracing::debug!(
                        period = change.new_period,
                        "installed a consensus; the network is unchanged"
                    );
                }
                return;
            }
            Err(InstallError::Stale { .. }) => {}
            Err(e @ InstallError::Conflict { .. }) => {
                node.metrics
                    .consensus_conflicts
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(seed = %seed.address, error = %e, "two consensuses for one period: seeds signed twice");
            }
            Err(e) => tracing::warn!(seed = %seed.address, error = %e, "refused a consensus"),
        }
    }
}

/// What `node_list` answered.
enum Fetched {
    /// The whole consensus.
    Full(UnverifiedConsensus),
    /// The difference from the period asked about.
    Diff(ConsensusDiff),
}

/// `node_list` from one node or seed, as a diff from `since` if the peer
/// can make one (the whole exchange within 5 s, at most a consensus's
/// largest size read); `None` if unreachable or malformed.
async fn fetch_since(links: &Links, pin: Option<&[u8; 32]>, address: &str, since: Option<u64>) -> Option<Fetched> {
    let request = match since {
        Some(period) => json!({"method": "node_list", "params": {"since_period": period}}),
        None => json!({"method": "node_list"}),
    };
    let call = Call {
        address: address.to_owned(),
        pin: pin.copied(),
        path: "/storage_rpc/v1",
        headers: Vec::new(),
        content_type: "application/json",
        body: request.to_string().into_bytes(),
        deadline: SEED_TIMEOUT,
        max_answer: MAX_ENCODED_LEN,
    };
    let answer = outbound::call(links, call).await.ok().filter(Answer::is_success)?;
    let value: Value = answer.parse().ok()?;
    if value.get("from_period").is_some() {
        serde_json::from_value(value).ok().map(Fetched::Diff)
    } else {
        Consensus::from_value(value).ok().map(Fetched::Full)
    }
}

/// The consensus a node or seed serves, without checking its signatures
/// or the key it answers with: for harnesses and tools that look at what
/// a peer says.
pub async fn fetch_node_list(links: &Links, address: &str) -> Option<Consensus> {
    match fetch_since(links, None, address, None).await? {
        Fetched::Full(full) => Some(full.into_unchecked()),
        Fetched::Diff(_) => None,
    }
}
