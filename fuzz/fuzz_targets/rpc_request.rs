//! Parsing and validating an RPC request body never panics.
#![no_main]

use allium_common::rpc::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::from_json(data) {
        let calls = match req {
            Request::Single(c) => vec![c],
            Request::Batch(cs) | Request::Sequence(cs) => cs,
        };
        for call in calls {
            let _ = call.validate(1_700_000_000_000);
        }
    }
});
