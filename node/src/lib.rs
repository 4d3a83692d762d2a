//! # allium-node
//!
//! The Allium service node and seed node as a library, so the binary stays
//! thin and tests drive the parts directly.
//!
//! - [`storage`]: the SQLite message store (TTL, caps, group commit).
//! - [`rpc`], [`relay`], [`server`], [`listener`]: the storage RPC, the
//!   onion relay, the HTTP routes that serve them, and the connection
//!   handling under them (caps per address, deadlines).
//! - [`directory`], [`membership`]: the node list this node follows, and
//!   announcing to and fetching from the seeds.
//! - [`replication`]: swarm replication and hand-over.
//! - [`seed`]: seed mode (registry, probes, swarm assignment, signed list).
//! - [`run`], [`config`], [`keys`]: start-up, configuration, node key.
//! - [`devnet`]: local networks of real processes.

pub mod anti_entropy;
pub mod api_error;
pub mod cli;
pub mod config;
pub mod devnet;
pub mod directory;
pub mod error;
pub mod keys;
pub mod listener;
pub mod longpoll;
pub mod membership;
pub mod metrics;
pub mod peer;
pub mod ratelimit;
pub mod relay;
pub mod replication;
pub mod rpc;
pub mod run;
pub mod seed;
pub mod server;
pub mod state;
pub mod storage;

pub use error::{Error, Result};
