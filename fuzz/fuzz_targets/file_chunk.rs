//! Decrypting arbitrary bytes as the chunks of a fixed file never panics and
//! never yields plaintext: without the key, no chunk authenticates (the
//! first byte of the input picks the file's size class).
#![no_main]

use allium_common::files::{CHUNK_LEN, Decryptor, RECORD_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&class, rest)) = data.split_first() else {
        return;
    };
    let size = u64::from(class) * RECORD_LEN as u64 / 3;
    let Ok(mut dec) = Decryptor::new(&[0x5f; 32], &[0x3c; 24], size) else {
        return;
    };
    for chunk in rest.chunks(CHUNK_LEN) {
        assert!(dec.pull(chunk).is_err(), "a made-up chunk decrypted");
    }
    assert!(!dec.is_done(), "nothing was taken, so the file is not whole");
});
