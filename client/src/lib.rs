//! # allium-client
//!
//! The Allium client library behind the `allium` command-line messenger.
//!
//! - [`cli`]: the `allium` commands.
//! - [`directory`], [`paths`], [`messenger`]: the signed node list, onion
//!   paths, and sending/receiving through them.
//! - [`display`]: text from the network made safe for a terminal.
//! - [`transport`], [`config`]: how requests leave the machine (directly,
//!   or through Tor with the `tor` cargo feature) and the optional config
//!   file that chooses it.
//! - [`home`]: everything the client keeps on disk in its home directory
//!   (`--home DIR` / `ALLIUM_HOME`): the identity key file (mode 0600, never
//!   overwritten), and a SQLite database with contacts, message history, the
//!   outbox of messages not yet confirmed by a swarm node, retrieve cursors,
//!   the cached node list and small settings.
//!
//! Like `allium-common`, the library takes time as an argument (`now_ms`,
//! Unix milliseconds) wherever it matters, so behaviour is testable without
//! a clock.

pub mod cli;
pub mod config;
pub mod directory;
pub mod display;
pub mod error;
pub mod home;
pub mod messenger;
pub mod paths;
pub mod transport;

pub use error::{Error, Result};

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
