//! Node configuration, layered: built-in defaults < config file < flags.
//!
//! Every field has a default, so an empty file (or none) is a valid
//! configuration for a local node. `node.example.toml` in the repository
//! documents each field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// `host:port` other nodes and clients use to reach this node (announced
    /// to the seeds). Defaults to `listen` when that is a concrete address.
    pub public_address: Option<String>,
    /// Directory for the key file and the database.
    pub data_dir: PathBuf,
    /// The seeds to announce to and fetch the node list from.
    pub seed_file: Option<PathBuf>,
    /// Run as a seed: keep the registry and sign the node list.
    pub seed: bool,
    /// Log every HTTP request with the peer's address and port (target
    /// `allium_node::access`). Off by default: it records client addresses.
    pub access_log: bool,
    /// Serve and call plain HTTP instead of TLS. For debugging only (to
    /// read traffic in a capture): anyone on the path then reads which
    /// accounts receive messages, and every node and client of the network
    /// must be set the same way.
    pub plaintext_links: bool,
    /// Request, connection and storage limits.
    pub limits: Limits,
    /// Timers.
    pub timing: Timing,
    /// Seed-mode settings.
    pub seed_mode: SeedMode,
}

/// Bounds on what one node accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most HTTP connections open at once.
    pub max_connections: usize,
    /// Most connections open at once from one IPv4 address or IPv6 /64.
    pub max_connections_per_ip: usize,
    /// Most connections open at once from the address of a listed node
    /// (relays carry many clients' requests).
    pub max_connections_per_node_ip: usize,
    /// Deadline for a request's headers, and longest a keep-alive
    /// connection may stay idle, in ms.
    pub header_timeout_ms: u64,
    /// Deadline for a request's body, from its headers, in ms.
    pub body_timeout_ms: u64,
    /// Longest a write to a peer may make no progress, in ms.
    pub write_stall_ms: u64,
    /// Requests per second each client IP may make (token refill rate).
    pub requests_per_second_per_ip: u32,
    /// Burst size of the per-IP bucket.
    pub burst_per_ip: u32,
    /// Stores per minute into one mailbox.
    pub stores_per_minute_per_mailbox: u32,
    /// Bytes of message data per minute into one mailbox (so a flood takes
    /// minutes, not seconds, to cycle a full inbox).
    pub store_bytes_per_minute_per_mailbox: u32,
    /// Onion requests per second one peer may relay to this node.
    pub relays_per_second_per_peer: u32,
    /// Replication pushes per second one peer may send.
    pub pushes_per_second_per_peer: u32,
    /// Syncs, digests and forwarded owner requests per second one peer may
    /// send.
    pub control_per_second_per_peer: u32,
    /// Most bytes of message data held for one mailbox.
    pub max_mailbox_bytes: u64,
    /// Most messages held for one mailbox.
    pub max_mailbox_messages: u64,
    /// Most bytes of message data the node holds in total.
    pub max_total_bytes: u64,
    /// Most bytes of file chunks the node holds (within `max_total_bytes`).
    pub max_files_bytes: u64,
    /// The largest file whose chunks the node takes (at most 1 GiB): a
    /// chunk past it is refused with 413.
    pub max_file_bytes: u64,
    /// Long-polls held open at once (each holds a connection).
    pub max_long_polls: usize,
}

/// Timers, in milliseconds unless named otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Timing {
    /// How long a relay waits for the next hop.
    pub hop_timeout_ms: u64,
    /// How often the node re-announces itself to the seeds.
    pub announce_interval_ms: u64,
    /// How often the node fetches the node list.
    pub node_list_refresh_ms: u64,
    /// How often expired messages are swept.
    pub expiry_sweep_ms: u64,
    /// How often the node compares digests with a random swarm peer and
    /// gets what it lacks (0: never).
    pub anti_entropy_interval_ms: u64,
    /// How long after a node-list change a node that was a member of an
    /// account's swarm may still push that account's messages (hand-over).
    pub handover_grace_ms: u64,
}

/// Settings that matter only with `seed = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeedMode {
    /// Length of a consensus period: seeds vote, and a new consensus comes
    /// out, once per period (all seeds of a network must use the same).
    pub period_ms: u64,
    /// How often every registered node is probed.
    pub probe_interval_ms: u64,
    /// Consecutive failed probes after which a node is dropped.
    pub drop_after_failures: u32,
    /// Smallest swarm; a swarm below it is dissolved.
    pub min_swarm_size: usize,
    /// Swarm size new nodes fill up to before a new swarm is made.
    pub target_swarm_size: usize,
    /// Largest swarm.
    pub max_swarm_size: usize,
    /// How long a majority of the seeds must have known a node before it
    /// is in the consensus (this seed's vote on it; the consensus takes
    /// the median).
    pub probation_ms: u64,
    /// How long before a node is flagged as a guard (voted likewise).
    pub guard_after_ms: u64,
    /// Added to this seed's clock for everything it does in the consensus
    /// (voting times, periods, checks). Only for testing what a seed with
    /// a wrong clock does to the network; leave it at 0.
    pub clock_offset_ms: i64,
    /// List loopback, private and other non-public addresses (a local
    /// network only; a public seed must not, or anyone could point its
    /// probes at hosts inside its own network).
    pub allow_private_addresses: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 22021)),
            public_address: None,
            data_dir: PathBuf::from("allium-node-data"),
            seed_file: None,
            seed: false,
            access_log: false,
            plaintext_links: false,
            limits: Limits::default(),
            timing: Timing::default(),
            seed_mode: SeedMode::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 2048,
            max_connections_per_ip: 32,
            max_connections_per_node_ip: 256,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            write_stall_ms: 10_000,
            requests_per_second_per_ip: 200,
            burst_per_ip: 400,
            stores_per_minute_per_mailbox: 600,
            store_bytes_per_minute_per_mailbox: 8 * 1024 * 1024,
            relays_per_second_per_peer: 5000,
            pushes_per_second_per_peer: 200,
            control_per_second_per_peer: 20,
            max_mailbox_bytes: 32 * 1024 * 1024,
            max_mailbox_messages: 20_000,
            max_total_bytes: 8 * 1024 * 1024 * 1024,
            max_files_bytes: 2 * 1024 * 1024 * 1024,
            max_file_bytes: allium_common::files::MAX_FILE_LEN,
            max_long_polls: 1024,
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            hop_timeout_ms: 30_000,
            announce_interval_ms: 60_000,
            node_list_refresh_ms: 30_000,
            expiry_sweep_ms: 10_000,
            anti_entropy_interval_ms: 300_000,
            handover_grace_ms: 30 * 60 * 1000,
        }
    }
}

impl Default for SeedMode {
    fn default() -> Self {
        Self {
            period_ms: 300_000,
            probe_interval_ms: 10_000,
            drop_after_failures: 3,
            min_swarm_size: 5,
            target_swarm_size: 7,
            max_swarm_size: 10,
            probation_ms: allium_common::consensus::DEFAULT_PROBATION_MS,
            guard_after_ms: allium_common::consensus::DEFAULT_GUARD_AFTER_MS,
            clock_offset_ms: 0,
            allow_private_addresses: false,
        }
    }
}

/// Values given on the command line; each overrides the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--public-address`.
    pub public_address: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--seed-file`.
    pub seed_file: Option<PathBuf>,
    /// `--seed`.
    pub seed: bool,
}

impl NodeConfig {
    /// Reads the file (if any), applies the flags and checks the result.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                toml::from_str::<Self>(&text).map_err(|e| Error::Config {
                    path: Some(path.to_path_buf()),
                    reason: e.to_string(),
                })?
            }
            None => Self::default(),
        };
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(addr) = overrides.public_address {
            config.public_address = Some(addr);
        }
        if let Some(dir) = overrides.data_dir {
            config.data_dir = dir;
        }
        if let Some(file) = overrides.seed_file {
            config.seed_file = Some(file);
        }
        config.seed |= overrides.seed;
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> Result<()> {
        let s = &self.seed_mode;
        if !(1 <= s.min_swarm_size
            && s.min_swarm_size <= s.target_swarm_size
            && s.target_swarm_size <= s.max_swarm_size)
        {
            return Err(Error::config(
                "seed_mode needs 1 <= min_swarm_size <= target_swarm_size <= max_swarm_size",
            ));
        }
        if !self.seed && self.seed_file.is_none() {
            return Err(Error::config(
                "a service node needs a seed file (seed_file = \"...\" or --seed-file) to find the network",
            ));
        }
        if self.public_address.is_none() && self.listen.ip().is_unspecified() {
            return Err(Error::config(format!(
                "listening on {} (all interfaces): set public_address so others know where to reach this node",
                self.listen
            )));
        }
        let l = &self.limits;
        if l.max_connections == 0
            || l.max_connections_per_ip == 0
            || l.max_connections_per_node_ip == 0
            || l.header_timeout_ms == 0
            || l.body_timeout_ms == 0
            || l.write_stall_ms == 0
            || l.requests_per_second_per_ip == 0
            || l.burst_per_ip == 0
        {
            return Err(Error::config("limits must be positive"));
        }
        if l.max_file_bytes > allium_common::files::MAX_FILE_LEN {
            return Err(Error::config(format!(
                "max_file_bytes is at most {} (1 GiB): no chunk index goes past it",
                allium_common::files::MAX_FILE_LEN
            )));
        }
        Ok(())
    }

    /// The address announced to seeds and listed in the node list.
    pub fn advertised_address(&self) -> String {
        self.public_address.clone().unwrap_or_else(|| self.listen.to_string())
    }

    /// The local address outgoing connections are bound to: the listen
    /// address when this node lives on loopback (a local network, where
    /// every node has its own 127.x address and must be seen by its peers
    /// under it), otherwise whatever the system picks.
    pub fn outbound_address(&self) -> Option<std::net::IpAddr> {
        let advertised_loopback = self
            .advertised_address()
            .parse::<SocketAddr>()
            .is_ok_and(|a| a.ip().is_loopback());
        (self.listen.ip().is_loopback() && advertised_loopback).then(|| self.listen.ip())
    }

    /// What each peer may send.
    pub fn peer_budgets(&self) -> crate::peer::PeerBudgets {
        let l = &self.limits;
        crate::peer::PeerBudgets {
            relays_per_second: l.relays_per_second_per_peer.max(1),
            pushes_per_second: l.pushes_per_second_per_peer.max(1),
            control_per_second: l.control_per_second_per_peer.max(1),
        }
    }

    /// The listener's caps and deadlines.
    pub fn listener_limits(&self) -> crate::listener::ListenerLimits {
        let l = &self.limits;
        crate::listener::ListenerLimits {
            max_connections: l.max_connections,
            per_address: l.max_connections_per_ip,
            per_node_address: l.max_connections_per_node_ip,
            header_timeout: Duration::from_millis(l.header_timeout_ms),
            body_timeout: Duration::from_millis(l.body_timeout_ms),
            write_stall: Duration::from_millis(l.write_stall_ms),
        }
    }

    /// The relay's per-hop timeout.
    pub fn hop_timeout(&self) -> Duration {
        Duration::from_millis(self.timing.hop_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:4000\"\ndata_dir = \"/from/file\"\nseed_file = \"seeds.toml\"\n[limits]\nburst_per_ip = 7\n",
        )
        .unwrap();
        let overrides = Overrides {
            data_dir: Some("/from/flag".into()),
            ..Overrides::default()
        };
        let c = NodeConfig::load(Some(&file), overrides).unwrap();
        assert_eq!(c.listen.port(), 4000);
        assert_eq!(c.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(c.limits.burst_per_ip, 7);
        assert_eq!(
            c.limits.requests_per_second_per_ip,
            Limits::default().requests_per_second_per_ip
        );
        assert_eq!(c.advertised_address(), "127.0.0.1:4000");
    }

    /// The documented example is a valid config whose values are the
    /// defaults.
    #[test]
    fn the_example_config_parses_to_the_defaults() {
        let text = include_str!("../../node.example.toml");
        let example: NodeConfig = toml::from_str(text).unwrap();
        let defaults = NodeConfig::default();
        assert_eq!(format!("{:?}", example.limits), format!("{:?}", defaults.limits));
        assert_eq!(format!("{:?}", example.timing), format!("{:?}", defaults.timing));
        assert_eq!(format!("{:?}", example.seed_mode), format!("{:?}", defaults.seed_mode));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("node.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:4000\"\nlisen = 1\n").unwrap();
        let err = NodeConfig::load(Some(&file), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("lisen") && err.contains("node.toml"), "{err}");
        let seedless = NodeConfig::load(None, Overrides::default()).unwrap_err().to_string();
        assert!(seedless.contains("seed file"), "{seedless}");
        let wildcard = Overrides {
            listen: Some("0.0.0.0:1".parse().unwrap()),
            seed: true,
            ..Overrides::default()
        };
        assert!(
            NodeConfig::load(None, wildcard)
                .unwrap_err()
                .to_string()
                .contains("public_address")
        );
        std::fs::write(&file, "seed_file = \"s.toml\"\n[limits]\nmax_file_bytes = 1073741825\n").unwrap();
        let too_big = NodeConfig::load(Some(&file), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(too_big.contains("max_file_bytes"), "{too_big}");
    }
}
