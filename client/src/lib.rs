//! # allium-client
//!
//! The Allium client library behind the `allium` command-line messenger.
//!
//! - [`home`]: everything the client keeps on disk in its home directory
//!   (`--home DIR` / `ALLIUM_HOME`): the identity key file (mode 0600, never
//!   overwritten), and a SQLite database with contacts, message history, the
//!   outbox of messages not yet confirmed by a swarm node, retrieve cursors,
//!   the cached node list and small settings.
//!
//! Like `allium-common`, the library takes time as an argument (`now_ms`,
//! Unix milliseconds) wherever it matters, so behaviour is testable without
//! a clock.

pub mod home;
