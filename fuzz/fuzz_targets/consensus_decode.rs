//! Decoding and verifying a consensus or a vote from arbitrary bytes never
//! panics.
#![no_main]

use allium_common::consensus::{Consensus, Vote};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(consensus) = Consensus::decode(data) {
        let _ = consensus.digest();
        let _ = consensus.verify(&[[0x42; 32]], 1_700_000_000_000);
    }
    if let Ok(vote) = Vote::decode(data) {
        let _ = vote.verify(&[[0x42; 32]]);
    }
});
