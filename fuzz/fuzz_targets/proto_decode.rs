//! Every wire and audit type decodes arbitrary bytes without panicking, and
//! whatever decodes as a request re-encodes and decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mxtoken_proto::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<CreateLease>(data) {
        let again = serde_json::to_vec(&req).expect("encode");
        assert_eq!(
            serde_json::from_slice::<CreateLease>(&again).expect("decode"),
            req
        );
    }
    let _ = serde_json::from_slice::<SweepRequest>(data);
    let _ = serde_json::from_slice::<ConfirmDecision>(data);
    let _ = serde_json::from_slice::<ConfirmRequest>(data);
    let _ = serde_json::from_slice::<ApiError>(data);
    let _ = serde_json::from_slice::<LeaseGranted>(data);
    let _ = serde_json::from_slice::<LeaseList>(data);
    let _ = serde_json::from_slice::<Status>(data);
    let _ = serde_json::from_slice::<AuditRecord>(data);
});
