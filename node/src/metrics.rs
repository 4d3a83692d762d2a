//! Counters and gauges served at `GET /metrics` in Prometheus text format.
//!
//! Plain atomics rather than a metrics crate: the set is small and fixed,
//! and reading them must never block a request path.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// RPC methods counted separately (anything else is `other`).
const METHODS: [&str; 11] = [
    "store",
    "retrieve",
    "delete",
    "delete_all",
    "expire",
    "get_swarm",
    "info",
    "node_list",
    "batch",
    "sequence",
    "other",
];
/// Status classes counted per method.
const STATUSES: [u16; 12] = [200, 400, 401, 404, 406, 413, 421, 429, 500, 503, 504, 507];

/// All of the node's metrics.
#[derive(Debug)]
pub struct Metrics {
    requests: Vec<AtomicU64>,
    /// Onion layers this node peeled and forwarded to another node.
    pub relayed_hops: AtomicU64,
    /// Onion requests this node executed as the destination.
    pub onion_final: AtomicU64,
    /// Onion layers refused as malformed or undecryptable.
    pub onion_rejected: AtomicU64,
    /// Relays that failed because the next hop did not answer.
    pub relay_failures: AtomicU64,
    /// Node-to-node requests refused because the caller's TLS certificate
    /// is missing, not a consensus member's, or another node's than named.
    pub link_refused: AtomicU64,
    /// Messages accepted from clients.
    pub stored_messages: AtomicU64,
    /// Messages accepted from swarm peers.
    pub replicated_in: AtomicU64,
    /// Messages pushed to swarm peers and confirmed.
    pub replicated_out: AtomicU64,
    /// Messages waiting in the replication queue (gauge).
    pub replication_queue: AtomicU64,
    /// Age in ms of the oldest unconfirmed replication (gauge).
    pub replication_lag_ms: AtomicU64,
    /// Deliveries waiting out a backoff before their next attempt (gauge).
    pub replication_backing_off: AtomicU64,
    /// Digests this node sent to a swarm peer and got an answer for.
    pub anti_entropy_rounds: AtomicU64,
    /// Digest buckets that differed from a peer's, in digests this node
    /// answered.
    pub anti_entropy_buckets_differing: AtomicU64,
    /// Messages a peer's reconcile showed it lacked, queued for it.
    pub anti_entropy_messages_pushed: AtomicU64,
    /// Synchronous pushes (a store waiting for a peer) that timed out.
    pub replication_sync_timeouts: AtomicU64,
    /// Synchronous pushes skipped because the peer recently timed out
    /// (queued instead).
    pub replication_not_waited: AtomicU64,
    /// Requests refused by rate limits.
    pub rate_limited: AtomicU64,
    /// Group members' requests refused because the group revoked their
    /// credential.
    pub revoked_refused: AtomicU64,
    /// Pushed messages refused: not this node's, or not the sender's to
    /// push.
    pub push_refused: AtomicU64,
    /// Owner deletions this node missed and learned from a peer's proof.
    pub deletions_learned: AtomicU64,
    /// Requests from addresses that are not listed nodes, i.e. from
    /// clients (a client's onion requests reach only its guards).
    pub client_requests: AtomicU64,
    /// Second, different consensuses for a period held (seeds signed two).
    pub consensus_conflicts: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: (0..METHODS.len() * STATUSES.len()).map(|_| AtomicU64::new(0)).collect(),
            relayed_hops: AtomicU64::new(0),
            onion_final: AtomicU64::new(0),
            onion_rejected: AtomicU64::new(0),
            link_refused: AtomicU64::new(0),
            relay_failures: AtomicU64::new(0),
            stored_messages: AtomicU64::new(0),
            replicated_in: AtomicU64::new(0),
            replicated_out: AtomicU64::new(0),
            replication_queue: AtomicU64::new(0),
            replication_lag_ms: AtomicU64::new(0),
            replication_backing_off: AtomicU64::new(0),
            anti_entropy_rounds: AtomicU64::new(0),
            anti_entropy_buckets_differing: AtomicU64::new(0),
            anti_entropy_messages_pushed: AtomicU64::new(0),
            replication_sync_timeouts: AtomicU64::new(0),
            replication_not_waited: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            revoked_refused: AtomicU64::new(0),
            push_refused: AtomicU64::new(0),
            deletions_learned: AtomicU64::new(0),
            client_requests: AtomicU64::new(0),
            consensus_conflicts: AtomicU64::new(0),
        }
    }
}

/// Figures read from other subsystems at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Messages held.
    pub messages: u64,
    /// Bytes of message data held.
    pub bytes: u64,
    /// Bytes of file chunks held (within `bytes`).
    pub file_bytes: u64,
    /// HTTP connections open.
    pub connections_open: u64,
    /// HTTP connections refused (over a cap) since start.
    pub connections_refused: u64,
    /// Node-to-node requests refused since start: the peer's budget was
    /// spent.
    pub peer_budget_refused: u64,
    /// Seed mode: announces waiting for their first probe.
    pub seed_pending: u64,
    /// Seed mode: nodes known (listed, or waiting under the per-IP cap).
    pub seed_known: u64,
    /// Seed mode: known nodes whose last probe answer said they are full.
    pub seed_full: u64,
    /// The message store cannot take more now (disk or byte cap full).
    pub storage_full: bool,
    /// Messages evicted from full inboxes since start.
    pub evicted: u64,
    /// Period of the consensus in force (0: none yet).
    pub consensus_period: u64,
    /// Seconds since the consensus in force became valid.
    pub consensus_age_s: u64,
    /// Seed signatures the consensus in force carries.
    pub consensus_signatures: u64,
    /// Seed mode: votes of other seeds taken since start.
    pub seed_votes_received: u64,
    /// Seed mode: periods with no consensus computed since start.
    pub seed_failed_periods: u64,
    /// Seed mode: documents of other seeds that differed from this seed's.
    pub seed_disagreements: u64,
}

impl Metrics {
    /// Counts one RPC answered with `status`.
    pub fn count_request(&self, method: &str, status: u16) {
        let m = METHODS.iter().position(|&x| x == method).unwrap_or(METHODS.len() - 1);
        // Statuses not in the list are folded into 500.
        let s = STATUSES.iter().position(|&x| x == status).unwrap_or(8);
        if let Some(counter) = self.requests.get(m * STATUSES.len() + s) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP allium_rpc_requests_total RPC requests by method and HTTP status.\n");
        out.push_str("# TYPE allium_rpc_requests_total counter\n");
        for (mi, method) in METHODS.iter().enumerate() {
            for (si, status) in STATUSES.iter().enumerate() {
                let n = self
                    .requests
                    .get(mi * STATUSES.len() + si)
                    .map_or(0, |c| c.load(Ordering::Relaxed));
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "allium_rpc_requests_total{{method=\"{method}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        let series: [(&str, &str, &str, u64); 39] = [
            (
                "allium_client_requests_total",
                "counter",
                "Requests from addresses that are not listed nodes.",
                self.client_requests.load(Ordering::Relaxed),
            ),
            (
                "allium_onion_relayed_hops_total",
                "counter",
                "Onion layers peeled and forwarded.",
                self.relayed_hops.load(Ordering::Relaxed),
            ),
            (
                "allium_onion_final_total",
                "counter",
                "Onion requests executed as destination.",
                self.onion_final.load(Ordering::Relaxed),
            ),
            (
                "allium_onion_rejected_total",
                "counter",
                "Onion layers refused.",
                self.onion_rejected.load(Ordering::Relaxed),
            ),
            (
                "allium_link_refused_total",
                "counter",
                "Node-to-node requests refused for the caller's TLS certificate.",
                self.link_refused.load(Ordering::Relaxed),
            ),
            (
                "allium_relay_failures_total",
                "counter",
                "Relays whose next hop failed.",
                self.relay_failures.load(Ordering::Relaxed),
            ),
            (
                "allium_stored_messages_total",
                "counter",
                "Messages accepted from clients.",
                self.stored_messages.load(Ordering::Relaxed),
            ),
            (
                "allium_replicated_in_total",
                "counter",
                "Messages accepted from swarm peers.",
                self.replicated_in.load(Ordering::Relaxed),
            ),
            (
                "allium_replicated_out_total",
                "counter",
                "Messages confirmed by swarm peers.",
                self.replicated_out.load(Ordering::Relaxed),
            ),
            (
                "allium_replication_queue",
                "gauge",
                "Messages waiting to be replicated.",
                self.replication_queue.load(Ordering::Relaxed),
            ),
            (
                "allium_replication_lag_ms",
                "gauge",
                "Age of the oldest unreplicated message.",
                self.replication_lag_ms.load(Ordering::Relaxed),
            ),
            (
                "allium_replication_backing_off",
                "gauge",
                "Deliveries waiting out a backoff before their next attempt.",
                self.replication_backing_off.load(Ordering::Relaxed),
            ),
            (
                "allium_anti_entropy_rounds_total",
                "counter",
                "Digests sent to a swarm peer and answered.",
                self.anti_entropy_rounds.load(Ordering::Relaxed),
            ),
            (
                "allium_anti_entropy_buckets_differing_total",
                "counter",
                "Digest buckets that differed from a peer's, in digests this node answered.",
                self.anti_entropy_buckets_differing.load(Ordering::Relaxed),
            ),
            (
                "allium_anti_entropy_messages_pushed_total",
                "counter",
                "Messages a peer's reconcile showed it lacked, queued for it.",
                self.anti_entropy_messages_pushed.load(Ordering::Relaxed),
            ),
            (
                "allium_replication_sync_timeouts_total",
                "counter",
                "Stores that waited the full 2 s for a swarm peer.",
                self.replication_sync_timeouts.load(Ordering::Relaxed),
            ),
            (
                "allium_replication_not_waited_total",
                "counter",
                "Peer copies queued without waiting, the peer having timed out recently.",
                self.replication_not_waited.load(Ordering::Relaxed),
            ),
            (
                "allium_rate_limited_total",
                "counter",
                "Requests refused by rate limits.",
                self.rate_limited.load(Ordering::Relaxed),
            ),
            (
                "allium_revoked_refused_total",
                "counter",
                "Group members' requests refused: the group revoked their credential.",
                self.revoked_refused.load(Ordering::Relaxed),
            ),
            (
                "allium_push_refused_total",
                "counter",
                "Pushed messages refused: not this node's, or not the sender's to push.",
                self.push_refused.load(Ordering::Relaxed),
            ),
            (
                "allium_deletions_learned_total",
                "counter",
                "Owner deletions this node missed and applied from a peer's proof.",
                self.deletions_learned.load(Ordering::Relaxed),
            ),
            ("allium_messages", "gauge", "Messages held.", gauges.messages),
            (
                "allium_message_bytes",
                "gauge",
                "Bytes of message data held.",
                gauges.bytes,
            ),
            (
                "allium_file_bytes",
                "gauge",
                "Bytes of file chunks held (namespace 16, within allium_message_bytes).",
                gauges.file_bytes,
            ),
            (
                "allium_connections_open",
                "gauge",
                "HTTP connections open.",
                gauges.connections_open,
            ),
            (
                "allium_seed_pending",
                "gauge",
                "Seed: announces waiting for their first probe.",
                gauges.seed_pending,
            ),
            (
                "allium_seed_known",
                "gauge",
                "Seed: nodes known (listed, or waiting under the per-IP cap).",
                gauges.seed_known,
            ),
            (
                "allium_seed_full_nodes",
                "gauge",
                "Seed: known nodes that said they are full at their last probe.",
                gauges.seed_full,
            ),
            (
                "allium_consensus_period",
                "gauge",
                "Period of the consensus in force (0: none yet).",
                gauges.consensus_period,
            ),
            (
                "allium_consensus_age_seconds",
                "gauge",
                "Seconds since the consensus in force became valid.",
                gauges.consensus_age_s,
            ),
            (
                "allium_consensus_signatures",
                "gauge",
                "Seed signatures the consensus in force carries.",
                gauges.consensus_signatures,
            ),
            (
                "allium_consensus_conflicts_total",
                "counter",
                "Second, different consensuses offered for a period held: seeds signed two.",
                self.consensus_conflicts.load(Ordering::Relaxed),
            ),
            (
                "allium_seed_votes_received_total",
                "counter",
                "Seed: votes of other seeds taken.",
                gauges.seed_votes_received,
            ),
            (
                "allium_seed_failed_periods_total",
                "counter",
                "Seed: periods for which no consensus could be computed (too few votes, no common method).",
                gauges.seed_failed_periods,
            ),
            (
                "allium_seed_disagreements_total",
                "counter",
                "Seed: documents of other seeds that differed from this seed's.",
                gauges.seed_disagreements,
            ),
            (
                "allium_storage_full",
                "gauge",
                "1 while the message store cannot take more (disk or byte cap full); it still serves reads.",
                u64::from(gauges.storage_full),
            ),
            (
                "allium_mailbox_evictions_total",
                "counter",
                "Oldest messages evicted from full inboxes (namespace 0) to make room.",
                gauges.evicted,
            ),
            (
                "allium_connections_refused_total",
                "counter",
                "HTTP connections closed at once: the node or the peer's address held its share.",
                gauges.connections_refused,
            ),
            (
                "allium_peer_budget_refused_total",
                "counter",
                "Relays, pushes and control requests from a node refused with 429: that node's budget was spent.",
                gauges.peer_budget_refused,
            ),
        ];
        for (name, kind, help, value) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counted_requests_and_gauges() {
        let m = Metrics::default();
        m.count_request("store", 200);
        m.count_request("store", 200);
        m.count_request("bogus", 418);
        Metrics::inc(&m.relayed_hops);
        let text = m.render(Gauges {
            messages: 5,
            bytes: 70,
            file_bytes: 65_553,
            ..Gauges::default()
        });
        assert!(
            text.contains("allium_rpc_requests_total{method=\"store\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("allium_rpc_requests_total{method=\"other\",status=\"500\"} 1"),
            "{text}"
        );
        assert!(text.contains("allium_onion_relayed_hops_total 1"));
        assert!(text.contains("allium_messages 5"));
        assert!(text.contains("allium_file_bytes 65553"));
        assert!(!text.contains("status=\"401\""), "zero series are omitted");
    }
}
