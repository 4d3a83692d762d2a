//! # allium-client
//!
//! The Allium client library behind the `allium` command-line messenger.
//!
//! - [`cli`]: the `allium` commands.
//! - [`directory`], [`paths`], [`messenger`]: the signed node list, onion
//!   paths, and sending/receiving through them; [`guards`] bounds how often
//!   a path gets a new guard, [`confirm`] decides when a store is done, and
//!   [`clock`] keeps the client's timestamps within the nodes' window.
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

// The futures of a round (sync, inbox, receipts, each through the onion
// paths and, with the `tor` feature, Tor) nest deeper than the default
// limit of 128 when their layout is computed.
#![recursion_limit = "256"]

pub mod book;
pub mod chat;
pub mod cli;
pub mod clock;
pub mod config;
pub mod confirm;
pub mod conversation;
pub mod convo;
pub mod devices;
pub mod directory;
pub mod disappear;
pub mod display;
pub mod doubts;
pub mod error;
pub mod files;
pub mod groups;
pub mod guards;
pub mod home;
pub mod incoming;
pub mod keyring;
pub mod messenger;
pub mod paths;
pub mod publish;
pub mod requests;
pub mod seal;
pub mod sync;
pub mod transport;

pub use error::{Error, Result};

/// **Test hook**: an environment variable that shifts this process's
/// wall clock ([`now_ms`]) by that many milliseconds (an integer, negative
/// for behind), so tests can run a client whose clock is wrong. Read here
/// and nowhere else; unset, or not an integer, it shifts nothing.
pub const CLOCK_SKEW_ENV: &str = "ALLIUM_CLOCK_SKEW_MS";

/// The wall clock in Unix milliseconds (shifted by [`CLOCK_SKEW_ENV`] if
/// set). Timestamps sent to nodes add the [`clock::Clock`] offset to it.
pub fn now_ms() -> u64 {
    static SKEW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    let skew = *SKEW.get_or_init(|| {
        std::env::var(CLOCK_SKEW_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0)
    });
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .saturating_add_signed(skew)
}
