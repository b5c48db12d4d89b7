//! The strict JSON parser (`json::parse_strict`), which reads every token header and payload
//! before anything else looks at them.
//!
//! Besides "never panics", it checks parse_strict against plain serde_json on the same bytes:
//! - accepted: serde_json accepts too and builds the same value, and the value re-parses
//!   strictly from its own serialization;
//! - refused as a duplicate: anything (parsing stops at the first duplicate name, so what
//!   follows may be invalid too; refusing is right either way);
//! - refused as too deep: serde_json accepts, and the value is nested deeper than the cap;
//! - refused as invalid: serde_json refuses too.
//!
//! Accepted values are never nested deeper than `json::MAX_DEPTH`.
#![no_main]

use jwt_guard_core::json::{depth, parse_strict, JsonError, MAX_DEPTH};
use jwt_guard_fuzz::json_same;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let strict = parse_strict(data);
    let plain = serde_json::from_slice::<Value>(data);
    match (&strict, &plain) {
        (Ok(v), Ok(w)) => {
            assert!(depth(v) <= MAX_DEPTH, "accepted a document nested deeper than the cap");
            assert!(json_same(v, w), "parse_strict and serde_json disagree on the value");
            let text = serde_json::to_vec(v).expect("a parsed value serializes");
            let again = parse_strict(&text).expect("a parsed value re-parses strictly");
            assert!(json_same(v, &again), "value changed across a strict round trip");
        }
        (Ok(_), Err(e)) => panic!("parse_strict accepted what serde_json refuses: {e}"),
        (Err(JsonError::Duplicate), _) => {}
        (Err(JsonError::TooDeep), Ok(w)) => assert!(depth(w) > MAX_DEPTH, "TooDeep within the cap"),
        (Err(JsonError::TooDeep), Err(e)) => panic!("TooDeep reported on invalid JSON: {e}"),
        (Err(JsonError::Invalid), Err(_)) => {}
        (Err(JsonError::Invalid), Ok(_)) => panic!("parse_strict refused valid JSON without duplicates"),
    }
});
