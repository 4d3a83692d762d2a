//! Reading message content (every kind: text, accept, disappear, receipt,
//! unsend, copies of sent messages) from arbitrary bytes never panics; what
//! reads writes back and reads the same.
#![no_main]

use allium_common::content::Content;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(content) = Content::from_bytes(data) {
        let again = Content::from_bytes(&content.to_bytes()).expect("written content reads back");
        assert_eq!(again, content);
    }
});
