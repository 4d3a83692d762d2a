//! Account state that follows the owner across devices (issue 11): what
//! the devices of one account share (profile, contacts, conversation
//! settings), how concurrent edits merge ([`state`]), and how it is sealed
//! for the account's own swarm ([`sealed`]). Pure code: no I/O, time and
//! randomness passed in (the nonce is drawn by [`sealed::seal`]).
//!
//! `docs/account-sync.md` has the design and what is still to come.

pub mod sealed;
pub mod state;

pub use sealed::{SealError, open, seal};
pub use state::{AccountState, Entry, Stamp, StateError};
