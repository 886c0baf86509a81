//! Property tests: decoding never panics on arbitrary input, and what the
//! client encodes the broker decodes unchanged. Kept to a few hundred cases
//! so CI stays quick.

use mxtoken_proto::{
    ApiError, AuditRecord, ConfirmDecision, ConfirmRequest, CreateLease, LeaseGranted, LeaseList,
    Released, Status, SweepReport, SweepRequest, Timestamp,
};
use proptest::prelude::*;

fn decode_all(bytes: &[u8]) {
    let _ = serde_json::from_slice::<CreateLease>(bytes);
    let _ = serde_json::from_slice::<SweepRequest>(bytes);
    let _ = serde_json::from_slice::<ConfirmDecision>(bytes);
    let _ = serde_json::from_slice::<ApiError>(bytes);
    let _ = serde_json::from_slice::<LeaseGranted>(bytes);
    let _ = serde_json::from_slice::<LeaseList>(bytes);
    let _ = serde_json::from_slice::<Released>(bytes);
    let _ = serde_json::from_slice::<Status>(bytes);
    let _ = serde_json::from_slice::<SweepReport>(bytes);
    let _ = serde_json::from_slice::<ConfirmRequest>(bytes);
    let _ = serde_json::from_slice::<AuditRecord>(bytes);
    let _ = serde_json::from_slice::<Timestamp>(bytes);
}

/// JSON-ish text: objects with the real field names and odd values, which
/// reaches deeper into the decoders than uniform bytes.
fn jsonish() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "profile",
        "ttl",
        "purpose",
        "bind_to_client",
        "bind_pid",
        "dry_run",
        "approve",
        "code",
        "message",
        "token",
        "lease",
        "at",
        "event",
        "tll",
        "",
    ]);
    let value = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
        ".{0,20}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("\"1970-01-01T00:00:00Z\"".to_owned()),
        Just("\"9999999-99-99T99:99:99Z\"".to_owned()),
    ];
    prop::collection::vec((key, value), 0..6).prop_map(|kv| {
        let body: Vec<String> = kv.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        decode_all(&bytes);
    }

    #[test]
    fn json_like_objects_never_panic(text in jsonish()) {
        decode_all(text.as_bytes());
    }

    #[test]
    fn create_lease_round_trips(
        profile in proptest::option::of(".{0,16}"),
        ttl in proptest::option::of(".{0,16}"),
        purpose in proptest::option::of(".{0,40}"),
        bind_to_client in any::<bool>(),
        bind_pid in proptest::option::of(any::<u32>()),
    ) {
        let req = CreateLease { profile, ttl, purpose, bind_to_client, bind_pid };
        let json = serde_json::to_vec(&req).expect("encode");
        prop_assert_eq!(serde_json::from_slice::<CreateLease>(&json).expect("decode"), req);
    }

    #[test]
    fn timestamps_round_trip(ms in 0u64..253_402_300_799_000) {
        let t = Timestamp::from_unix_ms(ms);
        let json = serde_json::to_string(&t).expect("encode");
        prop_assert_eq!(serde_json::from_str::<Timestamp>(&json).expect("decode"), t);
    }
}
