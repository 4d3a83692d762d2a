//! The client's view of the network: the consensus, from cache, from an
//! ordinary node, or from the seeds.
//!
//! A consensus is used only if more than half of the seeds in the seed
//! file signed it ([`UnverifiedConsensus::verify`]), so no single seed (and
//! no node) can invent one. Every seed is asked and the newest period wins;
//! the client never goes back to an older period than the one it holds
//! (no rollback), and two different documents for one period are refused
//! and reported. Refreshes from ordinary nodes go through an onion path
//! (see `Messenger::nodes`), so only seeds, asked when there is no usable
//! cache, see the client's address, and with `--tor` not even they do
//! (see [`crate::transport`]).

use std::time::Duration;

use allium_common::consensus::{Consensus, UnverifiedConsensus};
use allium_common::seeds::Seed;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::home::Home;
use crate::transport::{Peer, Post, SendError, Transport};

/// A cached consensus fetched less than this long ago is used without
/// asking anyone.
pub const FRESH_FOR_MS: u64 = 10 * 60 * 1000;
/// Timeout of one consensus fetch.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a consensus came from (reported by `allium nodes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced {
    /// The consensus (verified).
    pub list: Consensus,
    /// When it was fetched, Unix ms.
    pub fetched_ms: u64,
    /// `cache`, `seed host:port`, or `node host:port`.
    pub source: String,
}

/// Fetches `node_list` from a seed (through Tor if the transport says so),
/// over TLS pinned to the seed's key.
pub async fn fetch(transport: &Transport, seed: &Seed) -> std::result::Result<UnverifiedConsensus, SendError> {
    let body = json!({"method": "node_list"}).to_string().into_bytes();
    let post = Post {
        address: &seed.address,
        pin: seed.ed25519,
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
    let value: Value = serde_json::from_slice(&reply.body).map_err(|_| SendError::Invalid("not a consensus".into()))?;
    Consensus::from_value(value).map_err(|e| SendError::Invalid(e.to_string()))
}

/// Checks `offered` against the trusted seeds and the consensus `held`:
/// more than half of the seeds signed it, it is not older than `held`, and
/// not a different document for the same period.
pub fn accept(offered: UnverifiedConsensus, seeds: &[Seed], held: Option<&Consensus>, now: u64) -> Result<Consensus> {
    let trusted: Vec<[u8; 32]> = seeds.iter().map(|s| s.ed25519).collect();
    // Keys already checked in the held consensus are not checked again.
    let list = offered
        .verify_after(&trusted, now, held)
        .map_err(|e| Error::NoNodeList(e.to_string()))?;
    if let Some(held) = held {
        if list.period < held.period {
            return Err(Error::NoNodeList(format!(
                "offered period {} is older than the period {} this client holds (a rollback)",
                list.period, held.period
            )));
        }
        if list.period == held.period && list.digest() != held.digest() {
            return Err(Error::NoNodeList(format!(
                "two different consensuses for period {}, both signed by a majority of the seeds: \
                 seeds signed twice; keeping the one held",
                list.period
            )));
        }
    }
    Ok(list)
}

/// Asks every seed and returns the newest consensus a majority of the
/// seeds signed, not older than `held`. Two different documents for one
/// period are refused. If Tor cannot be used, says so at once instead of
/// blaming the seeds.
pub async fn from_seeds(transport: &Transport, seeds: &[Seed], held: Option<&Consensus>) -> Result<Sourced> {
    let now = crate::now_ms();
    let mut accepted: Vec<(Consensus, String)> = Vec::new();
    let mut problems = Vec::new();
    for seed in seeds {
        match fetch(transport, seed).await {
            Ok(offered) => match accept(offered, seeds, held, now) {
                Ok(list) => accepted.push((list, seed.address.clone())),
                Err(e) => problems.push(format!("{}: {e}", seed.address)),
            },
            Err(SendError::Tor(reason)) => return Err(Error::Tor(reason)),
            Err(e) => problems.push(format!("{}: {e}", seed.address)),
        }
    }
    let (best, conflicted) = newest_unconflicted(accepted);
    for period in &conflicted {
        tracing::warn!(
            period,
            "seeds served two different consensuses for one period; refusing both"
        );
        problems.push(format!("two different consensuses for period {period}"));
    }
    match best {
        Some((list, address)) => Ok(Sourced {
            list,
            fetched_ms: now,
            source: format!("seed {address}"),
        }),
        None => Err(Error::NoNodeList(format!(
            "no seed gave a consensus signed by a majority of the trusted seeds ({})",
            problems.join("; ")
        ))),
    }
}

/// The newest of `accepted` (each with where it came from), leaving out
/// every period for which two different documents were offered; and those
/// periods.
fn newest_unconflicted(accepted: Vec<(Consensus, String)>) -> (Option<(Consensus, String)>, Vec<u64>) {
    let mut conflicted: Vec<u64> = accepted
        .iter()
        .filter(|(a, _)| {
            accepted
                .iter()
                .any(|(b, _)| a.period == b.period && a.digest() != b.digest())
        })
        .map(|(a, _)| a.period)
        .collect();
    conflicted.sort_unstable();
    conflicted.dedup();
    let best = accepted
        .into_iter()
        .filter(|(c, _)| !conflicted.contains(&c.period))
        .max_by_key(|(c, _)| c.period);
    (best, conflicted)
}

/// The cached consensus, if any and if a majority of the trusted seeds
/// signed it.
pub fn cached(home: &Home, seeds: &[Seed]) -> Result<Option<Sourced>> {
    let now = crate::now_ms();
    let checked = home.checked_digest()?;
    Ok(home.load_node_list()?.and_then(|(offered, fetched_ms, source)| {
        // The document this client saved after checking it: its signatures
        // and times are checked again, its nodes' keys need not be.
        let itself = (checked.as_deref() == Some(hex::encode(offered.digest()).as_str()))
            .then(|| offered.clone().into_unchecked());
        let list = accept(offered, seeds, itself.as_ref(), now).ok()?;
        (!list.nodes.is_empty()).then_some(Sourced {
            list,
            fetched_ms,
            source,
        })
    }))
}

/// Forces a refresh from the seeds (after a 421 or a failed path); never
/// goes back to an older period than the cached one.
pub async fn refresh(transport: &Transport, home: &mut Home, seeds: &[Seed]) -> Result<Sourced> {
    let held = cached(home, seeds)?;
    let sourced = from_seeds(transport, seeds, held.as_ref().map(|h| &h.list)).await?;
    home.save_node_list(&sourced.list, sourced.fetched_ms, &sourced.source)?;
    Ok(sourced)
}

/// A uniformly random element.
pub fn pick<T>(items: &[T]) -> Option<&T> {
    items.get(allium_common::sodium::random_index(items.len()))
}

#[cfg(test)]
mod tests {
    use allium_common::Identity;
    use allium_common::consensus::Schedule;
    use allium_common::encoding::Hex32;
    use allium_common::node_list::NodeEntry;

    use super::*;

    const PERIOD_MS: u64 = 60_000;
    const P: u64 = 28_333_333;

    fn seed(i: u8) -> Identity {
        Identity::from_ed25519_seed(&[0xe0 + i; 32])
    }

    fn seeds() -> Vec<Seed> {
        (0..3)
            .map(|i| Seed {
                address: format!("seed{i}.example:1"),
                ed25519: *seed(i).ed25519_pk(),
            })
            .collect()
    }

    fn node(i: u8, swarm_id: u64) -> NodeEntry {
        let id = Identity::from_ed25519_seed(&[i; 32]);
        NodeEntry {
            ed25519: Hex32(*id.ed25519_pk()),
            x25519: Hex32(*id.x25519_pk()),
            address: format!("10.{i}.0.1:1"),
            swarm_id,
            version: "0.1.0".into(),
            guard: true,
        }
    }

    fn consensus(period: u64, swarm: u64, by: &[u8]) -> Consensus {
        let signers: Vec<Identity> = by.iter().map(|i| seed(*i)).collect();
        let refs: Vec<&Identity> = signers.iter().collect();
        Consensus::assemble(&Schedule::new(PERIOD_MS), period, vec![node(1, swarm)], &refs).unwrap()
    }

    fn offered(c: &Consensus) -> UnverifiedConsensus {
        Consensus::decode(&c.encode()).unwrap()
    }

    const NOW: u64 = (P + 5) * PERIOD_MS;

    #[test]
    fn a_consensus_needs_a_majority_and_never_goes_back() {
        let held = consensus(P + 3, 1, &[0, 1]);
        assert!(
            accept(offered(&consensus(P + 4, 1, &[0])), &seeds(), None, NOW).is_err(),
            "one of three"
        );
        assert!(accept(offered(&consensus(P + 4, 1, &[0, 2])), &seeds(), Some(&held), NOW).is_ok());
        let e = accept(offered(&consensus(P + 2, 1, &[0, 1, 2])), &seeds(), Some(&held), NOW).unwrap_err();
        assert!(e.to_string().contains("rollback"), "{e}");
        // The same document again (more signatures, same digest) is fine...
        let mut more = held.clone();
        more.add_signature(Consensus::signature_by(&seed(2), &held.digest()));
        assert!(accept(offered(&more), &seeds(), Some(&held), NOW).is_ok());
        // ...another one for the same period is not.
        let e = accept(offered(&consensus(P + 3, 2, &[1, 2])), &seeds(), Some(&held), NOW).unwrap_err();
        assert!(e.to_string().contains("two different consensuses"), "{e}");
    }

    #[test]
    fn two_documents_for_one_period_are_both_refused() {
        let a = consensus(P + 4, 1, &[0, 1]);
        let b = consensus(P + 4, 2, &[1, 2]);
        let older = consensus(P + 3, 1, &[0, 1]);
        let (best, conflicted) = newest_unconflicted(vec![
            (a.clone(), "s0".into()),
            (b, "s1".into()),
            (older.clone(), "s2".into()),
            (a, "s3".into()),
        ]);
        assert_eq!(conflicted, vec![P + 4]);
        assert_eq!(best, Some((older, "s2".into())));
    }
}
