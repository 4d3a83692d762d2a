//! Node-to-node bodies (push and its answer, sync, digest, reconcile,
//! forward) from arbitrary bytes: decoding never panics, checking a pushed
//! message's owner signature never panics, comparing any decoded digest
//! with a real one never panics either (a peer's digest may have any number
//! of buckets), and neither does checking a reconcile's shape and turning
//! its buckets into prefixes.
#![no_main]

use allium_common::peer::{
    DigestRequest, ForwardRequest, PushRequest, PushResponse, ReconcileRequest, SwarmDigest, SyncRequest,
};
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
    if let Ok(request) = serde_json::from_slice::<ReconcileRequest>(data) {
        if request.check().is_ok() {
            for bucket in &request.buckets {
                let _ = SwarmDigest::bucket_prefix(usize::from(bucket.bucket));
                let _ = bucket.hashes.0.chunks_exact(32).count();
            }
        }
    }
});
