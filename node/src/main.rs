//! `allium-node`: parses flags, sets up logging, and hands over to the
//! library.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use clap::Parser as _;

use allium_node::cli::{Cli, Command, SeedKeyCommand};
use allium_node::config::NodeConfig;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A log that cannot be written (its disk is full) must not stop the
        // node: by default the subscriber reports such errors with
        // eprintln!, which panics when stderr fails too, and took the
        // message store's writer thread down with it.
        .log_internal_errors(false)
        .init();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    match cli.command {
        Command::Run(args) => {
            let config = NodeConfig::load(args.config.as_deref(), args.overrides())?;
            runtime.block_on(allium_node::run::run(config))?;
        }
        Command::Devnet(args) => runtime.block_on(allium_node::devnet::run(args))?,
        Command::Id { data_dir } => {
            let (identity, _) = allium_node::keys::load_or_create(&data_dir)?;
            println!("{}", hex::encode(identity.ed25519_pk()));
        }
        Command::SeedKey(SeedKeyCommand::New { out }) => {
            let identity = allium_node::keys::create_key_file(&out)?;
            println!("{}", hex::encode(identity.ed25519_pk()));
        }
        Command::SeedKey(SeedKeyCommand::Certify {
            identity,
            signing,
            days,
        }) => {
            let signing = allium_common::encoding::hex_array::<32>(signing.trim()).context("--signing")?;
            let cert = allium_node::keys::certify(&identity, signing, allium_node::state::now_ms(), days)?;
            println!("{}", serde_json::to_string_pretty(&cert)?);
        }
    }
    Ok(())
}
