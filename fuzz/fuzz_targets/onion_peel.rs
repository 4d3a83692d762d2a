//! Peeling an onion layer, reading a frame and decrypting a response from
//! arbitrary bytes never panics. The first byte picks the decoder so one
//! target covers all three entry points a node or client exposes.
#![no_main]

use allium_common::onion::{self, HopKey};
use allium_common::sodium;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    match which % 3 {
        0 => {
            let (pk, sk) = sodium::box_seed_keypair(&[0x42; 32]);
            let _ = onion::peel(rest, &sk, &pk);
        }
        1 => {
            let _ = onion::decode_frame(rest);
        }
        _ => {
            let _ = onion::decrypt_response(&HopKey::from_bytes([7; 32]), rest);
        }
    }
});
