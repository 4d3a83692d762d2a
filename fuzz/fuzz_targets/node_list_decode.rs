//! Decoding and verifying a node list from arbitrary bytes never panics.
#![no_main]

use allium_common::node_list::NodeList;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = NodeList::decode(data) {
        let _ = list.verify(&[[0x42; 32]]);
        let _ = list.swarm_ring();
    }
});
