//! RFC 7515 Appendix A vectors (docs/threat-model.md §4.1): fixed tokens and keys from outside this code base.
//!
//! All of them carry exp = 1300819380 (2011-03-22 18:43:00 UTC) and iss "joe"; header and payload
//! contain CR LF and spaces, which the strict parser must accept.

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use jwt_guard_core::keys::import_jwk;
use jwt_guard_core::{parse, verify, Policy, Rejection, VerifyingKey};
use serde_json::json;

const EXP: i64 = 1_300_819_380;

/// The payload shared by A.1, A.2, A.3 and A.5, as the RFC prints its octets.
const PAYLOAD: &[u8] = b"{\"iss\":\"joe\",\r\n \"exp\":1300819380,\r\n \"http://example.com/is_root\":true}";

// A.1: HS256.
const A1_JWK_K: &str = "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
const A1_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

// A.2: RS256 (public modulus n; e = AQAB).
const A2_N: &str = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
const A2_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";

// A.3: ES256 (P-256 public point).
const A3_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
const A3_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";
const A3_TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";

// A.4: ES512 over the payload "Payload".
const A4_TOKEN: &str = "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn";

// A.5: unsecured JWS (also RFC 7519 §6.1).
const A5_TOKEN: &str = "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.";

fn joe() -> Policy {
    Policy {
        issuers: vec!["joe".into()],
        audience: vec![],
        ..Policy::default()
    }
}

fn real_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn a1_key() -> VerifyingKey {
    let jwk = json!({"kty": "oct", "kid": "rfc7515-a1", "alg": "HS256", "k": A1_JWK_K});
    import_jwk(&jwk, None).unwrap().key
}

fn a2_key() -> VerifyingKey {
    let jwk = json!({"kty": "RSA", "kid": "rfc7515-a2", "alg": "RS256", "n": A2_N, "e": "AQAB"});
    import_jwk(&jwk, None).unwrap().key
}

fn a3_key() -> VerifyingKey {
    let jwk = json!({"kty": "EC", "kid": "rfc7515-a3", "crv": "P-256", "x": A3_X, "y": A3_Y});
    let imported = import_jwk(&jwk, None).unwrap();
    assert_eq!(imported.key.alg, Algorithm::ES256, "implied by crv");
    imported.key
}

#[test]
fn vectors_carry_the_rfc_payload() {
    for token in [A1_TOKEN, A2_TOKEN, A3_TOKEN, A5_TOKEN] {
        assert_eq!(unb64(token.split('.').nth(1).unwrap()), PAYLOAD);
    }
    assert_eq!(
        unb64("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"),
        b"{\"typ\":\"JWT\",\r\n \"alg\":\"HS256\"}"
    );
    assert_eq!(unb64("eyJhbGciOiJub25lIn0"), br#"{"alg":"none"}"#);
    assert_eq!(unb64("eyJhbGciOiJFUzUxMiJ9"), br#"{"alg":"ES512"}"#);
}

#[track_caller]
fn passes_before_exp_and_expires_after(token: &str, key: &VerifyingKey, alg: Algorithm) {
    let parsed = parse(token, 8192).unwrap();
    assert_eq!(parsed.alg, alg);
    assert_eq!(parsed.kid, None);
    // Signature and claims pass one second before exp.
    let id = verify(&parsed, key, &joe(), EXP - 1).unwrap();
    assert_eq!(id.exp, EXP);
    assert_eq!(id.claims["iss"], "joe");
    assert_eq!(id.claims["http://example.com/is_root"], true);
    assert_eq!(id.role_claim, None);
    // Exactly at the leeway boundary, and one second past it.
    assert!(verify(&parsed, key, &joe(), EXP + 30).is_ok());
    assert_eq!(
        verify(&parsed, key, &joe(), EXP + 31),
        Err(Rejection::Expired {
            exp: EXP,
            now: EXP + 31
        })
    );
    // With the real clock the token is long expired (the signature was checked first).
    let now = real_clock();
    assert_eq!(
        verify(&parsed, key, &joe(), now),
        Err(Rejection::Expired { exp: EXP, now })
    );
    // Another issuer list, or an audience requirement, refuses it.
    let other = Policy {
        issuers: vec!["jane".into()],
        ..joe()
    };
    assert!(matches!(
        verify(&parsed, key, &other, EXP - 1),
        Err(Rejection::IssuerNotAccepted { .. })
    ));
    let with_aud = Policy {
        audience: vec!["api".into()],
        ..joe()
    };
    assert_eq!(
        verify(&parsed, key, &with_aud, EXP - 1),
        Err(Rejection::MissingClaim("aud"))
    );
    // Neither a policy issuer list nor an issuer on the key: nothing is accepted.
    let unbound = Policy {
        issuers: vec![],
        ..joe()
    };
    assert_eq!(
        verify(&parsed, key, &unbound, EXP - 1),
        Err(Rejection::NoIssuerConfigured)
    );
}

#[test]
fn a1_hs256() {
    passes_before_exp_and_expires_after(A1_TOKEN, &a1_key(), Algorithm::HS256);
    // A key imported with issuer "joe" is enough without a policy issuer list.
    let jwk = json!({"kty": "oct", "kid": "rfc7515-a1", "alg": "HS256", "k": A1_JWK_K});
    let bound = import_jwk(&jwk, Some("joe")).unwrap().key;
    let parsed = parse(A1_TOKEN, 8192).unwrap();
    assert!(verify(
        &parsed,
        &bound,
        &Policy {
            issuers: vec![],
            ..joe()
        },
        EXP - 1
    )
    .is_ok());
}

#[test]
fn a2_rs256() {
    passes_before_exp_and_expires_after(A2_TOKEN, &a2_key(), Algorithm::RS256);
}

#[test]
fn a3_es256() {
    passes_before_exp_and_expires_after(A3_TOKEN, &a3_key(), Algorithm::ES256);
    // The same key as an SPKI PEM.
    let point = [vec![4u8], unb64(A3_X), unb64(A3_Y)].concat();
    let pem_key = VerifyingKey::from_text("ES256", &ec_spki_pem(&point), None).unwrap();
    passes_before_exp_and_expires_after(A3_TOKEN, &pem_key, Algorithm::ES256);
}

#[test]
fn vectors_reject_tampering() {
    for (token, key) in [(A1_TOKEN, a1_key()), (A2_TOKEN, a2_key()), (A3_TOKEN, a3_key())] {
        let sig_start = token.rfind('.').unwrap() + 1;
        let payload_start = token.find('.').unwrap() + 1;
        for index in [payload_start + 5, sig_start + 3, token.len() - 3] {
            let c = token.as_bytes()[index] as char;
            let changed = replace_at(token, index, other_b64_char(c));
            let parsed = parse(&changed, 8192).unwrap();
            assert_eq!(
                verify(&parsed, &key, &joe(), EXP - 1),
                Err(Rejection::BadSignature),
                "index {index}"
            );
        }
    }
}

#[test]
fn vectors_against_each_others_keys_are_algorithm_mismatches() {
    let mismatch = |t: &str, k: &str| Rejection::AlgorithmMismatch {
        token: t.into(),
        key: k.into(),
    };
    let a2 = parse(A2_TOKEN, 8192).unwrap();
    let a3 = parse(A3_TOKEN, 8192).unwrap();
    let a1 = parse(A1_TOKEN, 8192).unwrap();
    assert_eq!(verify(&a2, &a3_key(), &joe(), EXP - 1), Err(mismatch("RS256", "ES256")));
    assert_eq!(verify(&a3, &a2_key(), &joe(), EXP - 1), Err(mismatch("ES256", "RS256")));
    assert_eq!(verify(&a1, &a2_key(), &joe(), EXP - 1), Err(mismatch("HS256", "RS256")));
    assert_eq!(verify(&a2, &a1_key(), &joe(), EXP - 1), Err(mismatch("RS256", "HS256")));
}

#[test]
fn a4_es512_is_unsupported() {
    assert_eq!(parse(A4_TOKEN, 8192).map(|p| p.alg), Err(Rejection::BadAlgorithm));
}

#[test]
fn a5_unsecured_is_refused() {
    assert_eq!(parse(A5_TOKEN, 8192).map(|p| p.alg), Err(Rejection::BadAlgorithm));
    // Also with a signature segment copied from a signed vector.
    let with_sig = format!("{A5_TOKEN}{}", A1_TOKEN.rsplit('.').next().unwrap());
    assert_eq!(parse(&with_sig, 8192).map(|p| p.alg), Err(Rejection::BadAlgorithm));
}
