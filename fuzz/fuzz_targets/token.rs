//! Token segments and header: `token::parse` on attacker text, then `token::verify` against
//! the fuzz-only HS256 key, so payload decoding and every claims check run too.
//!
//! The first input byte picks how the rest is used (low two bits):
//!   0: the rest is the token, as is (alphabet, size, segments, base64url, header policy);
//!      almost none of these carry a valid signature, so verify stops at the signature.
//!   1: the same, but a token that parses is re-signed with the fuzz secret first, so verify
//!      gets past the signature and decodes the fuzzed payload.
//!   2, 3: the rest is `header JSON NUL payload JSON`; the target base64url-encodes both
//!      halves and signs them, so the fuzzer mutates the JSON directly, not its base64.
//! Bit 2 of the first byte picks the policy (plain claim names, or JSON Pointers).
//! A parsed token's unverified `iss` (read before the signature, to choose key and profile)
//! must equal the verified one; refusal messages must be printable and bounded; a verified
//! identity goes through role choice (`roles::choose_mapped`) and the identity round trip.
#![no_main]

use jwt_guard_core::{parse, verify, Identity, Policy, Rejection};
use jwt_guard_fuzz::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (policy, key) = if mode & 4 == 0 {
        (policy_plain(), fuzz_key())
    } else {
        (policy_pointer(), fuzz_key_with_issuer())
    };
    match mode & 3 {
        0 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            run(text, policy, key);
        }
        1 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            if parse(text, policy.max_token_bytes).is_ok() {
                // Exactly three segments parsed: everything before the last dot is signed.
                let input = &text[..text.rfind('.').expect("a parsed token has dots")];
                let signed = format!("{input}.{}", sign(input));
                run(&signed, policy, key);
            } else {
                run(text, policy, key);
            }
        }
        _ => {
            let cut = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            let header = &rest[..cut];
            let payload = rest.get(cut + 1..).unwrap_or(&[]);
            run(&mint(header, payload), policy, key);
        }
    }
});

fn run(token: &str, policy: &Policy, key: &jwt_guard_core::VerifyingKey) {
    let parsed = match parse(token, policy.max_token_bytes) {
        Ok(p) => p,
        Err(e) => {
            check_rejection(&e);
            return;
        }
    };
    // parse() promises: bounded size, token alphabet, a supported algorithm, a sane kid.
    assert!(token.len() <= policy.max_token_bytes);
    assert_eq!(token.split('.').count(), 3);
    if let Some(kid) = &parsed.kid {
        assert!(jwt_guard_core::keys::check_kid(kid).is_ok(), "parse kept a bad kid");
    }
    assert_eq!(parsed.byte_len(), token.len());
    // Read before the signature is checked, to choose the key and the issuer's profile.
    let unverified_iss = parsed.unverified_issuer();
    match verify(&parsed, key, policy, NOW) {
        Ok(identity) => {
            // What chose the key is what the verified claims say.
            let iss = identity.claims.get("iss").and_then(|v| v.as_str()).map(str::to_owned);
            assert_eq!(unverified_iss, iss, "unverified and verified issuer differ");
            after_verify(&identity, policy)
        }
        Err(e) => check_rejection(&e),
    }
}

/// Rejections become SQL errors and log lines: they must render, printable and bounded.
fn check_rejection(e: &Rejection) {
    check_message(&e.to_string());
}

/// What the extension does next with a verified identity, all of it on attacker data.
fn after_verify(identity: &Identity, policy: &Policy) {
    assert!(identity.exp >= 0);
    // A fresh identity is still valid at the instant it was verified (the cache relies on it).
    assert!(
        identity.still_valid(policy, NOW).is_ok(),
        "fresh identity is not still_valid"
    );
    choose_roles(identity);
    // The identity crosses transactions as JSON text (identity.rs reads it back).
    let text = serde_json::to_string(identity).expect("identity serializes");
    let back: Identity = serde_json::from_str(&text).expect("identity deserializes");
    assert_eq!(back.role_claim, identity.role_claim);
    assert_eq!(back.sub, identity.sub);
    assert_eq!(back.tenant, identity.tenant);
    assert_eq!(back.scopes, identity.scopes);
    assert_eq!(back.exp, identity.exp);
    assert_eq!(back.permissions, identity.permissions);
    assert!(json_same(
        &serde_json::Value::Object(back.claims.clone()),
        &serde_json::Value::Object(identity.claims.clone())
    ));
    for name in ["role", "sub", "/realm_access/role", "/org/id", "/a~1b", "/", "//"] {
        let _ = identity.claim_text(name);
    }
}
