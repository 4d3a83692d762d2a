//! Command-line interface of `allium-node`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Overrides;

/// Allium service node and seed node.
#[derive(Debug, Parser)]
#[command(name = "allium-node", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `allium_node=debug`.
    #[arg(long, global = true, env = "ALLIUM_LOG", default_value = "info")]
    pub log: String,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a service node (or, with --seed, a seed node).
    Run(RunArgs),
    /// Start a local network on loopback: one seed and N service nodes, each
    /// on its own address (127.1.0.1, 127.2.0.1, ...).
    Devnet(DevnetArgs),
    /// Print this node's Ed25519 key (creating the key if needed).
    Id {
        /// Data directory holding the key.
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Seed identity keys kept offline (docs/node.md, "Seed keys").
    #[command(subcommand)]
    SeedKey(SeedKeyCommand),
}

/// `allium-node seed-key ...`: run on the offline machine.
#[derive(Debug, Subcommand)]
pub enum SeedKeyCommand {
    /// Make a seed identity key file (mode 0600; keep it offline) and print
    /// its public key, the one `seed-nodes.toml` names.
    New {
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Certify a running seed's signing key (`allium-node id` on the seed)
    /// with an identity key; prints the certificate, which goes into the
    /// seed's DATA_DIR/seed_key_cert.json.
    Certify {
        /// The identity key file.
        #[arg(long)]
        identity: PathBuf,
        /// The seed's signing key, 64 hex characters.
        #[arg(long)]
        signing: String,
        /// Days the certificate is valid from now (at most 366).
        #[arg(long, default_value_t = 90)]
        days: u64,
    },
}

/// Flags of `run`; each overrides the config file.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Config file (TOML); see node.example.toml.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. 0.0.0.0:22021 (port 0 picks a free port).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// host:port others use to reach this node.
    #[arg(long)]
    pub public_address: Option<String>,
    /// Directory for the key and the database.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Seeds to announce to and fetch the node list from.
    #[arg(long)]
    pub seed_file: Option<PathBuf>,
    /// Run as a seed node.
    #[arg(long)]
    pub seed: bool,
}

/// Flags of `devnet`.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {
    /// Number of service nodes.
    #[arg(long, default_value_t = 12)]
    pub nodes: usize,
    /// Number of seeds (they vote; the consensus needs more than half).
    #[arg(long, default_value_t = 3)]
    pub seeds: usize,
    /// Directory for every node's data, logs and the seed file.
    #[arg(long)]
    pub dir: PathBuf,
    /// Seconds to wait for the network to form.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// Seeds sign with their node keys as identities, instead of with
    /// signing keys that identity keys (made in DIR/offline/, as an operator
    /// keeps them offline) certify.
    #[arg(long)]
    pub online_seed_keys: bool,
}

impl RunArgs {
    /// The flags as config overrides.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen,
            public_address: self.public_address.clone(),
            data_dir: self.data_dir.clone(),
            seed_file: self.seed_file.clone(),
            seed: self.seed,
        }
    }
}
