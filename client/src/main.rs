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
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_default();
    if matches!(cli.command, allium_client::cli::Command::Chat) {
        // The terminal is the chat screen's: logs go to ALLIUM_LOG_FILE,
        // or nowhere.
        let file = std::env::var_os("ALLIUM_LOG_FILE")
            .and_then(|path| std::fs::OpenOptions::new().create(true).append(true).open(path).ok());
        if let Some(file) = file {
            tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::sync::Mutex::new(file))
                .with_ansi(false)
                .init();
        }
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
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
