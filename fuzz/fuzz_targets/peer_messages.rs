//! Node-to-node bodies (push and its answer, sync, digest, forward) from
//! arbitrary bytes: decoding never panics, checking a pushed message's
//! owner signature never panics, and comparing any decoded digest with a
//! real one never panics either (a peer's digest may have any number of
//! buckets).
#![no_main]

use allium_common::peer::{DigestRequest, ForwardRequest, PushRequest, PushResponse, SwarmDigest, SyncRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(push) = serde_json::from_slice::<PushRequest>(data) {
        for message in &push.messages {
            let _ = message.owner_signed();
        }
    }
    let _ = serde_json::from_slice::<PushResponse>(data);
    let _ = serde_json::from_slice::<SyncRequest>(data);
    if let Ok(forward) = serde_json::from_slice::<ForwardRequest>(data) {
        let _ = allium_common::rpc::Request::from_json(forward.request.to_string().as_bytes())
            .map(|r| matches!(r, allium_common::rpc::Request::Single(call) if call.validate_forwarded(0).is_ok()));
    }
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
