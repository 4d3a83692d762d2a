//! # allium-node
//!
//! The Allium service node as a library, so the binary stays thin and the
//! integration tests and benchmarks can drive its parts directly.
//!
//! - [`storage`]: the SQLite message store with TTL, per-mailbox caps and a
//!   group-committing async handle.

pub mod storage;
