//! Decoding and verifying a consensus, a vote or a diff from arbitrary
//! bytes never panics.
#![no_main]

use allium_common::consensus::{Consensus, ConsensusDiff, Vote};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(consensus) = Consensus::decode(data) {
        let _ = consensus.digest();
        let _ = consensus.verify(&[[0x42; 32]], 1_700_000_000_000);
    }
    if let Ok(vote) = Vote::decode(data) {
        let _ = vote.verify(&[[0x42; 32]]);
    }
    if let Ok(diff) = ConsensusDiff::decode(data) {
        // Applied to an empty base of its own period and digest claim.
        let base = Consensus::assemble(
            &allium_common::consensus::Schedule::new(1000),
            diff.from_period,
            Vec::new(),
            &[],
        );
        if let Ok(base) = base {
            let _ = diff.apply(&base);
        }
    }
});
