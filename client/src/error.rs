//! The client's error type.

use crate::home::HomeError;

/// What can go wrong in a client operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The home directory or its database.
    #[error(transparent)]
    Home(#[from] HomeError),
    /// A protocol-level refusal from `allium-common` (bad phrase, bad
    /// Account ID, envelope too large, ...).
    #[error(transparent)]
    Protocol(#[from] allium_common::Error),
    /// The seed file is missing or invalid.
    #[error("seed file {path}: {reason}")]
    Seeds {
        /// Where the seeds came from.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// No trusted node list could be obtained.
    #[error("no trusted node list: {0}")]
    NoNodeList(String),
    /// The network has too few nodes to build onion paths.
    #[error("cannot build an onion path: {0}")]
    NoPath(String),
    /// No guard of this client can be used (both unreachable, or gone from
    /// the node list) and no new one may be chosen yet: picking fresh
    /// guards whenever the old ones fail would let whoever makes them fail
    /// choose the client's guards.
    #[error("{0}")]
    GuardsDown(String),
    /// The client's clock is further from the network's than it will
    /// correct by itself.
    #[error("{0}")]
    Clock(String),
    /// A request through the network failed after every retry.
    #[error("network: {0}")]
    Network(String),
    /// `--offline` was given and the command needed the network.
    #[error("offline (--offline): the network is not used; edits are kept and synced by a later command")]
    Offline,
    /// The config file is missing or invalid.
    #[error("config file {path}: {reason}")]
    Config {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Tor could not be used (bootstrap failed or timed out).
    #[error("Tor: {0}")]
    Tor(String),
    /// Tor was asked for, but this build has no Tor support.
    #[error(
        "this allium was built without Tor support. Build one with the `tor` feature: \
         `cargo build --release -p allium-client --features tor` (or \
         `cargo install --path client --features tor`)"
    )]
    TorUnavailable,
    /// The user asked for something that does not exist or does not parse.
    #[error("{0}")]
    Usage(String),
    /// A file could not be sent or fetched (a node refused its chunks, the
    /// file changed while it was sent, a fetched file did not check out).
    #[error("file: {0}")]
    File(String),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The exit code this error maps to (see `allium --help`).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
