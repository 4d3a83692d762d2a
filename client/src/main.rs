//! `allium`: parses flags, sets up logging, and hands over to the library.

// As in the library: a command's future (sync, inbox and receipts through
// onion paths, and Tor with the `tor` feature) nests deeper than 128.
#![recursion_limit = "256"]

use std::io::IsTerminal as _;

use clap::Parser as _;

fn main() {
    let cli = allium_client::cli::Cli::parse();
    // arti's own warnings (e.g. "only 1 usable guard" on a small private
    // network) are not the user's business unless asked for with ALLIUM_LOG;
    // a Tor failure reaches the user as allium's own error.
    let filter = std::env::var("ALLIUM_LOG").unwrap_or_else(|_| "warn,tor=error,arti=error".to_owned());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_default())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let code = match tokio::runtime::Runtime::new() {
        Ok(runtime) => match runtime.block_on(allium_client::cli::run(cli)) {
            Ok(code) => code,
            Err(e) => {
                // Errors can quote what a node answered: escape it.
                eprintln!("allium: {}", allium_client::display::escape(&e.to_string()));
                e.exit_code()
            }
        },
        Err(e) => {
            eprintln!("allium: cannot start the async runtime: {e}");
            allium_client::cli::EXIT_ERROR
        }
    };
    std::process::exit(code);
}
