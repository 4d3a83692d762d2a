//! # allium-common
//!
//! Everything an Allium client and an Allium service node must agree on,
//! with no I/O: keys and identity, the end-to-end envelope, onion layers,
//! swarm mapping, RPC types and the signed node list.
//!
//! Time and randomness are always passed in (`now_ms`, seeds, nonces), so
//! every function here is deterministic and testable against the vectors in
//! `common/tests/vectors/`. The byte layouts are specified in
//! `docs/protocol.md`.
//!
//! All cryptographic primitives come from libsodium through [`sodium`], the
//! only module with `unsafe` code.

pub mod account;
pub mod address;
pub mod announce;
pub mod consensus;
pub mod content;
pub mod devices;
pub mod encoding;
pub mod envelope;
pub mod envelope_v2;
pub mod error;
pub mod files;
pub mod group;
pub mod identity;
pub mod keys;
pub mod mailbox;
pub mod mnemonic;
pub mod node_list;
pub mod onion;
pub mod peer;
pub mod rpc;
pub mod seeds;
pub mod sodium;
pub mod swarm;
pub mod tls;

pub use error::{Error, Result};
pub use identity::{AccountId, Identity};
pub use mailbox::MailboxId;
