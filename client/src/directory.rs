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
//! address, and with `--tor` not even they do (see [`crate::transport`]).

use std::time::Duration;

use allium_common::node_list::NodeList;
use allium_common::seeds::Seed;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::home::Home;
use crate::transport::{Peer, Post, SendError, Transport};

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

/// Fetches `node_list` from a seed (through Tor if the transport says so).
pub async fn fetch(transport: &Transport, address: &str) -> std::result::Result<NodeList, SendError> {
    let body = json!({"method": "node_list"}).to_string().into_bytes();
    let post = Post {
        address,
        path: "/storage_rpc/v1",
        content_type: "application/json",
        body,
        timeout: FETCH_TIMEOUT,
        max_reply: crate::transport::MAX_REPLY,
    };
    let reply = transport.post(Peer::Seed, post).await?;
    if !(200..300).contains(&reply.status) {
        return Err(SendError::Invalid(format!("answered {}", reply.status)));
    }
    let value: Value = serde_json::from_slice(&reply.body).map_err(|_| SendError::Invalid("not a node list".into()))?;
    NodeList::from_value(value).map_err(|e| SendError::Invalid(e.to_string()))
}

/// Asks every seed and returns the newest list a trusted seed signed. If
/// Tor cannot be used, says so at once instead of blaming the seeds.
pub async fn from_seeds(transport: &Transport, seeds: &[Seed]) -> Result<Sourced> {
    let trusted: Vec<[u8; 32]> = seeds.iter().map(|s| s.ed25519).collect();
    let mut best: Option<(NodeList, String)> = None;
    let mut problems = Vec::new();
    for seed in seeds {
        match fetch(transport, &seed.address).await {
            Ok(list) => match list.verify(&trusted) {
                Ok(()) if best.as_ref().is_none_or(|(b, _)| list.epoch > b.epoch) => {
                    best = Some((list, seed.address.clone()));
                }
                Ok(()) => {}
                Err(e) => problems.push(format!("{}: {e}", seed.address)),
            },
            Err(SendError::Tor(reason)) => return Err(Error::Tor(reason)),
            Err(e) => problems.push(format!("{}: {e}", seed.address)),
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
pub async fn refresh(transport: &Transport, home: &mut Home, seeds: &[Seed]) -> Result<Sourced> {
    let sourced = from_seeds(transport, seeds).await?;
    home.save_node_list(&sourced.list, sourced.fetched_ms, &sourced.source)?;
    Ok(sourced)
}

/// A uniformly random element.
pub fn pick<T>(items: &[T]) -> Option<&T> {
    items.get(allium_common::sodium::random_index(items.len()))
}
