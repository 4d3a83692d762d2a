//! Node-to-node bodies (push, sync, digest) from arbitrary bytes: decoding
//! never panics, and comparing any decoded digest with a real one never
//! panics either (a peer's digest may have any number of buckets).
#![no_main]

use allium_common::peer::{DigestRequest, PushRequest, SwarmDigest, SyncRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<PushRequest>(data);
    let _ = serde_json::from_slice::<SyncRequest>(data);
    if let Ok(request) = serde_json::from_slice::<DigestRequest>(data) {
        let mut own = SwarmDigest::default();
        if let Ok(text) = std::str::from_utf8(data) {
            own.add(text);
            let _ = SwarmDigest::bucket_of(text);
        }
        let _ = own.differing(&request.digest);
        let _ = request.digest.differing(&own);
    }
});
