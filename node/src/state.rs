//! The state every request handler shares.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use allium_common::{Identity, MailboxId};

use crate::config::NodeConfig;
use crate::directory::Directory;
use crate::longpoll::Waiters;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use crate::replication::Replicator;
use crate::seed::Registry;
use crate::storage::StorageHandle;

/// Most client IPs and mailboxes whose rate buckets are tracked at once.
const MAX_RATE_KEYS: usize = 100_000;

/// Software version announced to seeds and reported by `info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One running node.
#[derive(Debug)]
pub struct Node {
    /// The node's keys.
    pub identity: Identity,
    /// Its configuration.
    pub config: NodeConfig,
    /// The message store.
    pub storage: StorageHandle,
    /// The current node list.
    pub directory: Directory,
    /// Long-poll wake-ups.
    pub waiters: Arc<Waiters>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Per-IP request budget.
    pub ip_limiter: RateLimiter<IpAddr>,
    /// Per-mailbox store budget.
    pub mailbox_limiter: RateLimiter<MailboxId>,
    /// Per-mailbox budget of stored bytes.
    pub mailbox_bytes_limiter: RateLimiter<MailboxId>,
    /// Calls to other nodes, and who is calling.
    pub peers: crate::peer::Peers,
    /// Swarm replication.
    pub replicator: Replicator,
    /// The registry and the voting, when this node is a seed.
    pub seed: Option<SeedRole>,
    /// Digest comparisons with swarm peers.
    pub anti_entropy: crate::anti_entropy::AntiEntropy,
    /// Open connections per address.
    pub connections: Arc<crate::listener::ConnectionTable>,
}

/// What a seed has beyond a node.
#[derive(Debug)]
pub struct SeedRole {
    /// The nodes this seed measures.
    pub registry: Registry,
    /// Its part in the consensus.
    pub voting: crate::seed::voting::Voting,
}

impl Node {
    /// The registry, when this node is a seed.
    pub fn registry(&self) -> Option<&Registry> {
        self.seed.as_ref().map(|s| &s.registry)
    }

    /// The seed's voting, when this node is a seed.
    pub fn voting(&self) -> Option<&crate::seed::voting::Voting> {
        self.seed.as_ref().map(|s| &s.voting)
    }

    /// Builds the shared state.
    pub fn new(
        identity: Identity,
        config: NodeConfig,
        storage: StorageHandle,
        directory: Directory,
        links: crate::peer::Links,
        replicator: Replicator,
        seed: Option<SeedRole>,
    ) -> Self {
        let limits = &config.limits;
        let ip_limiter = RateLimiter::new(
            f64::from(limits.requests_per_second_per_ip),
            limits.burst_per_ip,
            MAX_RATE_KEYS,
        );
        let per_minute = limits.stores_per_minute_per_mailbox;
        let mailbox_limiter = RateLimiter::new(f64::from(per_minute) / 60.0, per_minute, MAX_RATE_KEYS);
        let bytes_per_minute = limits.store_bytes_per_minute_per_mailbox.max(1);
        let mailbox_bytes_limiter =
            RateLimiter::new(f64::from(bytes_per_minute) / 60.0, bytes_per_minute, MAX_RATE_KEYS);
        let waiters = Waiters::new(limits.max_long_polls);
        let connections = crate::listener::ConnectionTable::new(config.listener_limits());
        let peers = crate::peer::Peers::new(links, config.peer_budgets());
        Self {
            identity,
            config,
            storage,
            directory,
            waiters,
            metrics: Metrics::default(),
            ip_limiter,
            mailbox_limiter,
            mailbox_bytes_limiter,
            peers,
            replicator,
            seed,
            anti_entropy: crate::anti_entropy::AntiEntropy::default(),
            connections,
        }
    }

    /// Whether `ip` is the address of a node in the current node list.
    pub fn is_node_ip(&self, ip: IpAddr) -> bool {
        self.directory.current().is_some_and(|s| s.node_ips.contains(&ip))
    }

    /// The node's Ed25519 key as hex (how other nodes name it).
    pub fn id_hex(&self) -> String {
        hex::encode(self.identity.ed25519_pk())
    }
}

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `Duration` from milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
