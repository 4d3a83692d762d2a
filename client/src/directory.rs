//! The client's view of the network: the signed node list, from cache,
//! from an ordinary node, or from the seeds.
//!
//! Every list is verified against the trusted seed keys before use. When
//! the seeds themselves are asked, every seed is asked and the answers are
//! cross-checked: only lists signed by a trusted seed count, and the newest
//! of those wins. A list refreshed from an ordinary node must also carry a
//! trusted seed's signature, so a node cannot invent one. Refreshes from
//! ordinary nodes go through an onion path (see `Messenger::nodes`), so
//! only seeds, asked when there is no usable cache, see the client's
//! address.

use std::time::Duration;

use allium_common::node_list::NodeList;
use allium_common::seeds::Seed;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::home::Home;

/// A cached list younger than this is used without asking anyone.
pub const FRESH_FOR_MS: u64 = 10 * 60 * 1000;
/// Timeout of one node-list fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a node list came from (reported by `allium nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    /// The list.
    pub list: NodeList,
    /// When it was fetched, Unix ms.
    pub fetched_ms: u64,
    /// `cache`, `seed host:port`, or `node host:port`.
    pub source: String,
}

/// Fetches `node_list` from one address over plain HTTP.
pub async fn fetch(http: &reqwest::Client, address: &str) -> std::result::Result<NodeList, String> {
    let sent = http
        .post(format!("http://{address}/storage_rpc/v1"))
        .json(&json!({"method": "node_list"}))
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{address}: unreachable ({})", short(&e)))?;
    if !sent.status().is_success() {
        return Err(format!("{address}: answered {}", sent.status().as_u16()));
    }
    let value: Value = sent.json().await.map_err(|_| format!("{address}: not a node list"))?;
    NodeList::from_value(value).map_err(|e| format!("{address}: {e}"))
}

fn short(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or no route"
    } else {
        "request failed"
    }
}

/// Asks every seed and returns the newest list a trusted seed signed.
pub async fn from_seeds(http: &reqwest::Client, seeds: &[Seed]) -> Result<Sourced> {
    let trusted: Vec<[u8; 32]> = seeds.iter().map(|s| s.ed25519).collect();
    let mut best: Option<(NodeList, String)> = None;
    let mut problems = Vec::new();
    for seed in seeds {
        match fetch(http, &seed.address).await {
            Ok(list) => match list.verify(&trusted) {
                Ok(()) if best.as_ref().is_none_or(|(b, _)| list.epoch > b.epoch) => {
                    best = Some((list, seed.address.clone()));
                }
                Ok(()) => {}
                Err(e) => problems.push(format!("{}: {e}", seed.address)),
            },
            Err(e) => problems.push(e),
        }
    }
    match best {
        Some((list, address)) => Ok(Sourced {
            list,
            fetched_ms: crate::now_ms(),
            source: format!("seed {address}"),
        }),
        None => Err(Error::NoNodeList(format!(
            "no seed gave a node list signed by a trusted seed ({})",
            problems.join("; ")
        ))),
    }
}

/// The cached list, if any and if a trusted seed signed it.
pub fn cached(home: &Home, seeds: &[Seed]) -> Result<Option<Sourced>> {
    let trusted: Vec<[u8; 32]> = seeds.iter().map(|s| s.ed25519).collect();
    Ok(home
        .load_node_list()?
        .filter(|(list, _, _)| list.verify(&trusted).is_ok() && !list.nodes.is_empty())
        .map(|(list, fetched_ms, source)| Sourced {
            list,
            fetched_ms,
            source,
        }))
}

/// Forces a refresh from the seeds (after a 421 or a failed path).
pub async fn refresh(http: &reqwest::Client, home: &mut Home, seeds: &[Seed]) -> Result<Sourced> {
    let sourced = from_seeds(http, seeds).await?;
    home.save_node_list(&sourced.list, sourced.fetched_ms, &sourced.source)?;
    Ok(sourced)
}

/// A uniformly random element.
pub fn pick<T>(items: &[T]) -> Option<&T> {
    if items.is_empty() {
        return None;
    }
    let r = u64::from_le_bytes(allium_common::sodium::random_array());
    items.get((r % items.len() as u64) as usize)
}
