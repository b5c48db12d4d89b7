//! Key import: JWKS and JWK objects (`keys::import_jwks`, `keys::import_jwk`, and
//! `keys::classify_jwks` as `sync_jwks` reads a provider's document), RFC 7638 thumbprints
//! (`keys::jwk_thumbprint`), PEM public keys and HMAC secrets (`VerifyingKey::from_text`),
//! and stored keys (`VerifyingKey::load`, `KeyFormat::parse`).
//!
//! First byte, low three bits, picks the entry point; bit 3 registers keys with an issuer;
//! bits 4-7 pick classify_jwks's default alg (0: none):
//!   0: the rest is a JWKS as JSON text (serde_json, as jsonb reaches import_jwks);
//!   1: the rest is one JWK as JSON text;
//!   2: `alg NUL key text` for from_text (PEM parsing, secret rules);
//!   3: the rest is DER; the target wraps it in a PEM block whose label byte 2 picks, with
//!      the algorithm byte 3 picks, so the fuzzer mutates the DER, not its base64;
//!   4: a JWK built from raw bytes: byte 2 picks kty/alg/crv, byte 3 the length of the second
//!      member, the rest are the members (n/e, x/y, or k), base64url-encoded by the target;
//!   5: `format NUL alg NUL text` for load (what the key store reads back);
//!   6: the rest is a JWKS for classify_jwks (sync_jwks);
//!   7: the rest is a JWK, or a JWKS, for jwk_thumbprint.
//!
//! A key that imports must reload from the text the store keeps to the same key (same
//! fingerprint, alg and issuer), as the key store does on every later use. import_jwks and
//! classify_jwks must agree on a document import_jwks accepts. Thumbprints ignore members
//! outside RFC 7638's list. Error messages must be printable and bounded.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use jwt_guard_core::keys::{self, parse_alg, JwkVerdict, KeyFormat};
use jwt_guard_core::VerifyingKey;
use jwt_guard_fuzz::{b64, check_message, skip, ISSUER};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};

const ALGS: [&str; 16] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
    "Ed25519", "ES512", "none", "hs256",
];
const LABELS: [&str; 6] = [
    "PUBLIC KEY",
    "RSA PUBLIC KEY",
    "CERTIFICATE",
    "EC PUBLIC KEY",
    "X509 CRL",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let issuer = (mode & 8 != 0).then_some(ISSUER);
    let default_alg = match mode >> 4 {
        0 => None,
        n => Some(ALGS[usize::from(n - 1) % ALGS.len()]),
    };
    match mode & 7 {
        0 => {
            let Ok(jwks) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            import_jwks(&jwks, issuer);
        }
        1 => {
            let Ok(jwk) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            import_jwk(&jwk, issuer);
            thumbprint(&jwk);
        }
        2 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let (alg, key_text) = text.split_once('\0').unwrap_or(("RS256", text));
            from_text(alg, key_text, issuer);
        }
        3 => {
            let [label, alg, der @ ..] = rest else {
                return;
            };
            let label = LABELS[usize::from(*label) % LABELS.len()];
            let alg = ALGS[usize::from(*alg) % ALGS.len()];
            let mut pem = format!("-----BEGIN {label}-----\n");
            for line in STANDARD.encode(der).as_bytes().chunks(64) {
                pem.push_str(std::str::from_utf8(line).unwrap());
                pem.push('\n');
            }
            pem.push_str(&format!("-----END {label}-----\n"));
            from_text(alg, &pem, issuer);
        }
        4 => {
            let [shape, split, raw @ ..] = rest else {
                return;
            };
            let cut = usize::from(*split).min(raw.len());
            let (a, b) = raw.split_at(raw.len() - cut);
            let kid = "fuzz-generated-test-key";
            let rsa_alg = ALGS[3 + usize::from(shape / 8) % 6];
            let jwk = match shape % 8 {
                0 => json!({"kty": "RSA", "kid": kid, "alg": rsa_alg, "n": b64(a), "e": b64(b)}),
                1 => json!({"kty": "EC", "kid": kid, "crv": "P-256", "x": b64(a), "y": b64(b)}),
                2 => json!({"kty": "EC", "kid": kid, "crv": "P-384", "alg": "ES384", "x": b64(a), "y": b64(b)}),
                3 => json!({"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(raw)}),
                4 => json!({"kty": "oct", "kid": kid, "alg": ALGS[usize::from(shape / 8) % 3], "k": b64(raw)}),
                5 => json!({"kty": "EC", "kid": kid, "crv": "P-384", "alg": "ES256", "x": b64(a), "y": b64(b)}),
                // No kid and no alg: sync_jwks takes the thumbprint and the default alg.
                6 => json!({"kty": "RSA", "use": "sig", "key_ops": ["verify"], "n": b64(a), "e": b64(b)}),
                _ => json!({"kty": "OKP", "alg": "Ed25519", "crv": "Ed25519", "x": b64(raw)}),
            };
            import_jwk(&jwk, issuer);
            thumbprint(&jwk);
            classify(&json!({ "keys": [jwk] }), issuer, default_alg.or(Some(rsa_alg)));
        }
        5 => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let mut parts = text.splitn(3, '\0');
            let (format, alg, key_text) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            match KeyFormat::parse(format) {
                Ok(format) => {
                    assert_eq!(KeyFormat::parse(format.as_str()), Ok(format));
                    match VerifyingKey::load(alg, format, key_text, issuer) {
                        Ok(k) => {
                            assert_eq!(parse_alg(alg), Some(k.alg));
                            let _ = k.fingerprint();
                        }
                        Err(e) => check_message(&e.to_string()),
                    }
                }
                Err(e) => check_message(&e.to_string()),
            }
        }
        6 => {
            let Ok(jwks) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            classify(&jwks, issuer, default_alg);
        }
        _ => {
            let Ok(v) = serde_json::from_slice::<Value>(rest) else {
                return;
            };
            match v.get("keys").and_then(Value::as_array) {
                Some(keys) => keys.iter().for_each(thumbprint),
                None => thumbprint(&v),
            }
        }
    }
});

fn import_jwks(jwks: &Value, issuer: Option<&str>) {
    match keys::import_jwks(jwks, issuer) {
        Ok(imported) => {
            let list = jwks["keys"].as_array().expect("an accepted JWKS has a keys array");
            assert_eq!(imported.len(), list.len(), "import_jwks dropped keys");
            for k in &imported {
                assert!(keys::check_kid(&k.kid).is_ok());
                reload_jwk(&k.key, &k.jwk_text, issuer, "import-reload");
            }
            // sync_jwks reads the same document the same way.
            let verdicts = keys::classify_jwks(jwks, issuer, None).expect("classify accepts what import accepts");
            assert_eq!(verdicts.len(), imported.len());
            for (v, k) in verdicts.iter().zip(&imported) {
                match v {
                    JwkVerdict::Use(c) => {
                        assert_eq!(c.kid, k.kid);
                        assert_eq!(c.key.fingerprint(), k.key.fingerprint());
                    }
                    JwkVerdict::Skip { reason, .. } => panic!("classify skipped a key import accepts: {reason}"),
                }
            }
        }
        Err(e) => check_message(&e.to_string()),
    }
}

fn import_jwk(jwk: &Value, issuer: Option<&str>) {
    match keys::import_jwk(jwk, issuer) {
        Ok(k) => {
            assert_eq!(jwk.get("kid").and_then(Value::as_str), Some(k.kid.as_str()));
            reload_jwk(&k.key, &k.jwk_text, issuer, "import-reload");
        }
        Err(e) => check_message(&e.to_string()),
    }
}

fn classify(jwks: &Value, issuer: Option<&str>, default_alg: Option<&str>) {
    let verdicts = match keys::classify_jwks(jwks, issuer, default_alg) {
        Ok(v) => v,
        Err(e) => {
            check_message(&e.to_string());
            return;
        }
    };
    let list = jwks["keys"].as_array().expect("a classified JWKS has a keys array");
    assert_eq!(verdicts.len(), list.len(), "classify_jwks dropped members");
    let mut kids = std::collections::HashSet::new();
    for (v, jwk) in verdicts.iter().zip(list) {
        match v {
            JwkVerdict::Use(k) => {
                assert!(keys::check_kid(&k.kid).is_ok());
                assert!(kids.insert(k.kid.clone()), "two usable keys share a kid");
                match jwk.get("kid").and_then(Value::as_str) {
                    Some(kid) => assert_eq!(kid, k.kid),
                    None => assert_eq!(Some(&k.kid), keys::jwk_thumbprint(jwk).ok().as_ref()),
                }
                // sync_jwks stores jwk_text as a 'jwk' key; every later use reloads it.
                reload_jwk(&k.key, &k.jwk_text, issuer, "classify-reload");
            }
            JwkVerdict::Skip { reason, .. } => check_message(reason),
        }
    }
}

fn thumbprint(jwk: &Value) {
    match keys::jwk_thumbprint(jwk) {
        Ok(t) => {
            assert_eq!(t.len(), 43, "a SHA-256 thumbprint is 43 base64url characters");
            assert!(keys::check_kid(&t).is_ok());
            // RFC 7638: members outside the required set do not change the thumbprint.
            let mut other = jwk.clone();
            if let Some(m) = other.as_object_mut() {
                m.insert("kid".into(), json!("another-kid"));
                m.insert("alg".into(), json!("RS512"));
                m.insert("use".into(), json!("sig"));
            }
            assert_eq!(keys::jwk_thumbprint(&other).ok(), Some(t));
        }
        Err(e) => check_message(&e.to_string()),
    }
}

fn from_text(alg: &str, text: &str, issuer: Option<&str>) {
    match VerifyingKey::from_text(alg, text, issuer) {
        Ok(k) => {
            assert_eq!(parse_alg(alg), Some(k.alg));
            if !alg.starts_with("HS") {
                assert!(!text.contains("PRIVATE KEY"), "a private PEM was accepted");
            }
            // The store keeps the text and rebuilds the key from it.
            let again = VerifyingKey::load(alg, KeyFormat::Text, text, issuer).expect("stored text key reloads");
            assert_eq!(again.fingerprint(), k.fingerprint());
        }
        Err(e) => check_message(&e.to_string()),
    }
}

/// What the key store does with an imported key: keep `jwk_text` under the key's alg name,
/// then rebuild it with `VerifyingKey::load` whenever a token names it.
fn reload_jwk(key: &VerifyingKey, jwk_text: &str, issuer: Option<&str>, check: &str) {
    if skip(check) {
        return;
    }
    let alg = keys::alg_name(key.alg);
    let again = match VerifyingKey::load(alg, KeyFormat::Jwk, jwk_text, issuer) {
        Ok(k) => k,
        Err(e) => panic!("[{check}] a stored {alg} JWK does not reload: {e}; stored text: {jwk_text}"),
    };
    assert_eq!(again.alg, key.alg);
    assert_eq!(
        again.fingerprint(),
        key.fingerprint(),
        "[{check}] stored JWK reloads to another key"
    );
    assert_eq!(again.issuer, key.issuer);
}
