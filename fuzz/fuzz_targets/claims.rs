//! Claims checks (`claims::check`) on arbitrary JSON objects, with two fixed policies.
//!
//! First byte: bit 0 picks how the object is made: 0, the rest is JSON text read by
//! `json::parse_strict` (exactly what a token payload goes through); 1, the rest drives a
//! structure-aware generator (claim names, times near the fixed clock, odd types, nesting up
//! to serde_json's own depth limit, large and empty containers).
//! Bit 1 picks the policy (plain names, or JSON Pointers); bits 2-3 the key's issuer
//! (none, the accepted one, another) and bit 4 whether the token had a kid.
//!
//! On success the identity must be consistent with the claims it came from, still valid at
//! the same instant, and survive the JSON round trip the extension makes between statements.
#![no_main]

use arbitrary::Unstructured;
use jwt_guard_core::claims::check;
use jwt_guard_core::Identity;
use jwt_guard_fuzz::*;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let claims: Map<String, Value> = if mode & 1 == 0 {
        match jwt_guard_core::json::parse_strict(rest) {
            Ok(Value::Object(m)) => m,
            _ => return,
        }
    } else {
        let mut u = Unstructured::new(rest);
        match arbitrary_object(&mut u, 0) {
            Ok(m) => m,
            Err(_) => return,
        }
    };
    let policy = if mode & 2 == 0 {
        policy_plain()
    } else {
        policy_pointer()
    };
    let key_issuer = match (mode >> 2) & 3 {
        0 => None,
        1 | 3 => Some(ISSUER),
        _ => Some("https://other-issuer.fuzz.test"),
    };
    let kid = (mode & 16 != 0).then_some(FUZZ_KID);
    let original = claims.clone();
    match check(claims, key_issuer, kid, policy, NOW) {
        Err(e) => check_message(&e.to_string()),
        Ok(identity) => consistent(&identity, &original, policy),
    }
});

fn consistent(identity: &Identity, original: &Map<String, Value>, policy: &jwt_guard_core::Policy) {
    assert_eq!(&identity.claims, original, "check changed the claims");
    assert_eq!(identity.kid.is_some(), identity.kid.as_deref() == Some(FUZZ_KID));
    // Time rules: exp present, an integer, not expired beyond the leeway.
    let exp = original.get("exp").and_then(Value::as_i64).unwrap_or(i64::MAX);
    assert_eq!(identity.exp, exp);
    assert!(i128::from(identity.exp) + i128::from(policy.leeway) >= i128::from(NOW));
    assert!(
        identity.still_valid(policy, NOW).is_ok(),
        "fresh identity is not still_valid"
    );
    // Issuer: a string on the accepted list when the policy has one.
    let iss = original
        .get("iss")
        .and_then(Value::as_str)
        .expect("accepted without a string iss");
    assert!(policy.issuers.is_empty() || policy.issuers.iter().any(|i| i == iss));
    // No NUL anywhere: claims reach PostgreSQL as C strings.
    assert!(
        !has_nul(&Value::Object(original.clone())),
        "a NUL reached an accepted identity"
    );
    if let Some(role) = &identity.role_claim {
        // The role claim is the value found at the configured name, as it was found.
        assert_eq!(identity.claim(&policy.role_claim), Some(&Value::from(role.clone())));
        assert!(!role.names().is_empty() && role.names().iter().all(|r| !r.is_empty()));
    }
    choose_roles(identity);
    let text = serde_json::to_string(identity).expect("identity serializes");
    let back: Identity = serde_json::from_str(&text).expect("identity deserializes");
    assert_eq!(back.role_claim, identity.role_claim);
    assert_eq!(back.tenant, identity.tenant);
    assert_eq!(back.scopes, identity.scopes);
    assert_eq!(back.exp, identity.exp);
    assert_eq!(back.permissions, identity.permissions);
    assert!(json_same(
        &Value::Object(back.claims.clone()),
        &Value::Object(identity.claims.clone())
    ));
    for name in [
        "scope",
        "/realm_access/role",
        "/org/id",
        "/authz/permissions/0",
        "/a~1b",
        "/~0",
        "/",
    ] {
        let _ = identity.claim_text(name);
    }
}

fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains('\0'),
        Value::Array(a) => a.iter().any(has_nul),
        Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
        _ => false,
    }
}
