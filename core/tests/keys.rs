//! Key registration: PEM forms, HMAC secret strength, family and curve checks, JWK and JWKS import
//! (docs/threat-model.md §1.5 items 1, 6, 7; §2.1 A4, A14, A15, A20).

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use jwt_guard_core::keys::{import_jwk, import_jwks, KeyFormat};
use jwt_guard_core::{KeyError, VerifyingKey};
use serde_json::{json, Value};

/// Asserts a KeyError whose message names the reason.
#[track_caller]
fn refused<T: std::fmt::Debug>(result: Result<T, KeyError>, reason: &str) {
    match result {
        Err(KeyError(msg)) => assert!(msg.contains(reason), "expected {reason:?} in {msg:?}"),
        Ok(v) => panic!("expected a KeyError ({reason}), got {v:?}"),
    }
}

fn text(alg: &str, key_text: &str) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_text(alg, key_text, None)
}

/// Round trip with a key registered from `key_text`.
#[track_caller]
fn accepts_tokens_of(key: &VerifyingKey, signer: &TestKey) {
    let token = mint(&good_payload(), signer);
    assert!(
        check(&token, key, &policy(), NOW).is_ok(),
        "{:?}",
        check(&token, key, &policy(), NOW)
    );
}

// A15: RFC 7518 §3.2 minimum HMAC key sizes.
#[test]
fn weak_hmac_secrets_are_refused() {
    refused(text("HS256", ""), "at least 32");
    refused(text("HS256", "secret"), "at least 32");
    refused(text("HS256", &"x".repeat(31)), "31 bytes");
    refused(text("HS384", &"x".repeat(47)), "at least 48");
    refused(text("HS512", &"x".repeat(63)), "at least 64");
    refused(text("HS512", &"x".repeat(48)), "at least 64");
    assert!(text("HS256", &"x".repeat(32)).is_ok());
    assert!(text("HS384", &"x".repeat(48)).is_ok());
    assert!(text("HS512", &"x".repeat(64)).is_ok());
    // Length is in bytes, not characters.
    refused(text("HS256", &"é".repeat(15)), "30 bytes");
    assert!(text("HS256", &"é".repeat(16)).is_ok());
}

// A4: a PEM public key can never become an HMAC secret.
#[test]
fn pem_text_as_hmac_secret_is_refused() {
    let rsa = rsa2048();
    for pem in [
        rsa.spki_pem.as_str(),
        rsa.pkcs1_pem.as_str(),
        rsa.cert_pem.as_deref().unwrap(),
        key_for(Algorithm::ES256).public_text.as_str(),
        key_for(Algorithm::EdDSA).public_text.as_str(),
    ] {
        for alg in ["HS256", "HS384", "HS512"] {
            refused(text(alg, pem), "algorithm confusion");
        }
    }
}

// The same with the blank lines or indentation a copy and paste brings along.
#[test]
fn pem_text_with_leading_whitespace_as_hmac_secret_is_refused() {
    let pem = &rsa2048().spki_pem;
    for prefix in ["\n", "\r\n", "  ", "\t", "\n\n  "] {
        refused(text("HS256", &format!("{prefix}{pem}")), "algorithm confusion");
    }
}

#[test]
fn every_public_pem_form_is_accepted_for_its_family() {
    let rsa = rsa2048();
    for alg in [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
    ] {
        let signer = rsa_key(alg);
        for (form, pem) in [
            ("SPKI", &rsa.spki_pem),
            ("PKCS#1", &rsa.pkcs1_pem),
            ("certificate", rsa.cert_pem.as_ref().unwrap()),
        ] {
            let key = text(alg_name(alg), pem).unwrap_or_else(|e| panic!("{alg:?} {form}: {e}"));
            accepts_tokens_of(&key, &signer);
        }
    }
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        let signer = key_for(alg);
        accepts_tokens_of(&text(alg_name(alg), &signer.public_text).unwrap(), &signer);
    }
}

#[test]
fn private_keys_are_refused() {
    let rsa = rsa2048();
    refused(text("RS256", &rsa.private_pem), "private key");
    let pkcs1_private = rsa.private_pem.replace("PRIVATE KEY", "RSA PRIVATE KEY");
    refused(text("RS256", &pkcs1_private), "private key");
    refused(
        text(
            "ES256",
            "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n",
        ),
        "private key",
    );
}

#[test]
fn weak_rsa_pem_is_refused() {
    let weak = rsa1024();
    refused(text("RS256", &weak.spki_pem), "1024 bits");
    refused(text("PS256", &weak.pkcs1_pem), "1024 bits");
}

// PKCS#1 integers are signed: a modulus whose first content byte has the high bit set is
// negative, a malformed key, and is refused rather than read as an unsigned number.
#[test]
fn negative_rsa_modulus_is_refused() {
    let der_integer = |content: &[u8]| {
        let mut out = vec![0x02, 0x82, (content.len() >> 8) as u8, content.len() as u8];
        out.extend_from_slice(content);
        out
    };
    let sequence = |n: &[u8], e: &[u8]| {
        let body = [der_integer(n), vec![0x02, e.len() as u8], e.to_vec()].concat();
        [vec![0x30, 0x82, (body.len() >> 8) as u8, body.len() as u8], body].concat()
    };
    let modulus = strip_leading_zero(&rsa2048().n);
    let exponent = [0x01, 0x00, 0x01];
    // The key as it is (its leading zero restored) is accepted, so the refusal below is the sign's.
    let positive = [&[0u8][..], modulus].concat();
    assert!(text("RS256", &pem("RSA PUBLIC KEY", &sequence(&positive, &exponent))).is_ok());
    refused(
        text("RS256", &pem("RSA PUBLIC KEY", &sequence(modulus, &exponent))),
        "not a valid PKCS#1",
    );
}

fn strip_leading_zero(b: &[u8]) -> &[u8] {
    b.strip_prefix(&[0u8][..]).unwrap_or(b)
}

#[test]
fn key_family_must_match_the_algorithm() {
    let rsa = &rsa2048().spki_pem;
    let es256 = &key_for(Algorithm::ES256).public_text;
    let es384 = &key_for(Algorithm::ES384).public_text;
    let ed = &key_for(Algorithm::EdDSA).public_text;
    refused(text("RS256", es256), "not a valid RSA");
    refused(text("RS256", ed), "not a valid RSA");
    refused(text("PS256", es256), "not a valid RSA");
    refused(text("ES256", rsa), "not a valid EC");
    refused(text("ES256", ed), "not a valid EC");
    refused(text("EdDSA", rsa), "not a valid Ed25519");
    refused(text("EdDSA", es256), "not a valid Ed25519");
    // Curve must match the algorithm.
    refused(text("ES256", es384), "curve does not match");
    refused(text("ES384", es256), "curve does not match");
}

#[test]
fn malformed_pem_is_refused() {
    for bad in [
        "",
        "not a key",
        "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
    ] {
        for alg in ["RS256", "ES256", "ES384", "EdDSA"] {
            assert!(text(alg, bad).is_err(), "{alg} {bad:?}");
        }
    }
}

// A14: an EC point that is not on its curve, or the point at infinity, in a PEM.
#[test]
fn off_curve_ec_pem_is_refused() {
    let good = key_for(Algorithm::ES256).jwk;
    let x = unb64(good["x"].as_str().unwrap());
    let mut y = unb64(good["y"].as_str().unwrap());
    y[31] ^= 1;
    let point = [&[4u8][..], &x, &y].concat();
    refused(text("ES256", &ec_spki_pem(&point)), "not a valid point");
    let mut zero = vec![4u8];
    zero.extend([0u8; 64]);
    refused(text("ES256", &ec_spki_pem(&zero)), "not a valid point");
    // A compressed point is not accepted either.
    let mut compressed = vec![2u8];
    compressed.extend(&x);
    let mut der = hex("3039301306072a8648ce3d020106082a8648ce3d030107032200");
    der.extend(&compressed);
    assert!(text("ES256", &pem("PUBLIC KEY", &der)).is_err());
}

#[test]
fn unsupported_algorithm_names_are_refused_at_registration() {
    for alg in ["ES256K", "none", "hs256", "RS1", "HS1", "Ed448", ""] {
        refused(text(alg, HMAC_SECRET), "unsupported algorithm");
    }
    // ES512 is refused with the reason; Ed25519 is a name for EdDSA and wants an Ed25519 key.
    refused(text("ES512", HMAC_SECRET), "ring crypto library");
    refused(text("Ed25519", HMAC_SECRET), "Ed25519");
}

#[test]
fn issuer_must_be_non_empty_without_nul() {
    refused(VerifyingKey::from_text("HS256", HMAC_SECRET, Some("")), "issuer");
    refused(VerifyingKey::from_text("HS256", HMAC_SECRET, Some("a\0b")), "issuer");
    let key = VerifyingKey::from_text("HS256", HMAC_SECRET, Some(ISSUER)).unwrap();
    assert_eq!(key.issuer.as_deref(), Some(ISSUER));
    assert_eq!(key.alg, Algorithm::HS256);
}

#[test]
fn debug_output_redacts_key_material() {
    let key = VerifyingKey::from_text("HS256", HMAC_SECRET, None).unwrap();
    let debug = format!("{key:?}");
    assert!(!debug.contains(HMAC_SECRET));
    assert!(debug.contains("redacted"));
}

// ---- JWK ----

fn jwk_of(alg: Algorithm, kid: &str) -> Value {
    let mut jwk = key_for(alg).jwk;
    jwk["kid"] = json!(kid);
    if !matches!(alg, Algorithm::ES256 | Algorithm::ES384 | Algorithm::EdDSA) {
        jwk["alg"] = json!(alg_name(alg));
    }
    jwk
}

#[test]
fn jwk_of_every_algorithm_imports_and_verifies() {
    for alg in ALL_ALGS {
        let imported = import_jwk(&jwk_of(alg, "k1"), None).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(imported.kid, "k1");
        assert_eq!(imported.key.alg, alg);
        accepts_tokens_of(&imported.key, &key_for(alg));
        // The stored text loads back to the same key.
        let loaded = VerifyingKey::load(alg_name(alg), KeyFormat::Jwk, &imported.jwk_text, None).unwrap();
        assert_eq!(loaded.fingerprint(), imported.key.fingerprint());
        accepts_tokens_of(&loaded, &key_for(alg));
    }
}

#[test]
fn ec_and_okp_jwk_without_alg_take_it_from_crv() {
    let es256 = import_jwk(&jwk_of(Algorithm::ES256, "e"), None).unwrap();
    assert_eq!(es256.key.alg, Algorithm::ES256);
    let es384 = import_jwk(&jwk_of(Algorithm::ES384, "e"), None).unwrap();
    assert_eq!(es384.key.alg, Algorithm::ES384);
    let ed = import_jwk(&jwk_of(Algorithm::EdDSA, "e"), None).unwrap();
    assert_eq!(ed.key.alg, Algorithm::EdDSA);
    // RSA and oct keys have no implied algorithm.
    let mut rsa = jwk_of(Algorithm::RS256, "r");
    rsa.as_object_mut().unwrap().remove("alg");
    refused(import_jwk(&rsa, None), "no alg");
    let mut oct = jwk_of(Algorithm::HS256, "h");
    oct.as_object_mut().unwrap().remove("alg");
    refused(import_jwk(&oct, None), "no alg");
}

// A20: keys meant for encryption are not signature keys.
#[test]
fn jwk_use_and_key_ops() {
    let base = jwk_of(Algorithm::RS256, "k");
    let with = |name: &str, value: Value| {
        let mut jwk = base.clone();
        jwk[name] = value;
        import_jwk(&jwk, None)
    };
    refused(with("use", json!("enc")), "\"use\"");
    refused(with("use", json!("SIG")), "\"use\"");
    refused(with("use", json!(["sig"])), "must be a string");
    refused(with("key_ops", json!(["encrypt"])), "key_ops");
    refused(with("key_ops", json!(["encrypt", "decrypt", "wrapKey"])), "key_ops");
    refused(with("key_ops", json!(["sign"])), "key_ops");
    refused(with("key_ops", json!([])), "key_ops");
    refused(with("key_ops", json!("verify")), "key_ops");
    assert!(with("use", json!("sig")).is_ok());
    assert!(with("key_ops", json!(["verify"])).is_ok());
    assert!(with("key_ops", json!(["sign", "verify"])).is_ok());
}

#[test]
fn jwk_private_members_are_refused() {
    for (alg, member) in [
        (Algorithm::RS256, "d"),
        (Algorithm::RS256, "p"),
        (Algorithm::RS256, "q"),
        (Algorithm::RS256, "dp"),
        (Algorithm::RS256, "dq"),
        (Algorithm::RS256, "qi"),
        (Algorithm::ES256, "d"),
        (Algorithm::EdDSA, "d"),
    ] {
        let mut jwk = jwk_of(alg, "k");
        jwk[member] = json!("AQAB");
        refused(import_jwk(&jwk, None), "private key members");
    }
}

#[test]
fn jwk_kid_is_required_and_checked() {
    let mut jwk = jwk_of(Algorithm::ES256, "k");
    jwk.as_object_mut().unwrap().remove("kid");
    refused(import_jwk(&jwk, None), "no kid");
    for kid in [json!(""), json!("a\nb"), json!("k".repeat(257))] {
        jwk["kid"] = kid;
        refused(import_jwk(&jwk, None), "kid must be");
    }
    jwk["kid"] = json!(5);
    refused(import_jwk(&jwk, None), "must be a string");
}

#[test]
fn jwk_rsa_strength_and_exponent() {
    let weak = rsa1024();
    let jwk = json!({"kty": "RSA", "kid": "w", "alg": "RS256", "n": b64(&weak.n), "e": b64(&weak.e)});
    refused(import_jwk(&jwk, None), "1024 bits");
    let strong = rsa2048();
    let jwk = json!({"kty": "RSA", "kid": "s", "alg": "RS256", "n": b64(&strong.n), "e": b64(&strong.e)});
    assert_eq!(import_jwk(&jwk, None).unwrap().key.alg, Algorithm::RS256);
    // Leading zero bytes do not count as key size.
    let padded = [vec![0u8; 200], weak.n.clone()].concat();
    let jwk = json!({"kty": "RSA", "kid": "w", "alg": "RS256", "n": b64(&padded), "e": "AQAB"});
    refused(import_jwk(&jwk, None), "1024 bits");
    for e in [
        b64([1u8]),
        b64([2u8]),
        b64([0u8]),
        b64([0x01, 0x00, 0x00]),
        String::new(),
        b64([1u8, 0, 0, 0, 1]),
    ] {
        let jwk = json!({"kty": "RSA", "kid": "s", "alg": "RS256", "n": b64(&strong.n), "e": e});
        refused(import_jwk(&jwk, None), "exponent");
    }
    let huge = json!({"kty": "RSA", "kid": "h", "alg": "RS256", "n": b64(vec![0xffu8; 1025]), "e": "AQAB"});
    refused(import_jwk(&huge, None), "at most 8192");
}

// A14: off-curve points, wrong curves, wrong lengths.
#[test]
fn jwk_ec_point_and_curve_checks() {
    let good = jwk_of(Algorithm::ES256, "k");
    let mut off = good.clone();
    let mut y = unb64(good["y"].as_str().unwrap());
    y[0] ^= 0x80;
    off["y"] = json!(b64(&y));
    refused(import_jwk(&off, None), "not a valid point");

    let mut zero = good.clone();
    zero["x"] = json!(b64([0u8; 32]));
    zero["y"] = json!(b64([0u8; 32]));
    refused(import_jwk(&zero, None), "not a valid point");

    // crv disagrees with alg, or with the coordinate size.
    let mut crv = good.clone();
    crv["alg"] = json!("ES384");
    refused(import_jwk(&crv, None), "crv does not match");
    let mut crv = good.clone();
    crv["crv"] = json!("P-384");
    refused(import_jwk(&crv, None), "curve does not match");
    let mut p521 = good.clone();
    p521["crv"] = json!("P-521");
    refused(import_jwk(&p521, None), "no alg");
    let mut secp = good.clone();
    secp["crv"] = json!("secp256k1");
    secp["alg"] = json!("ES256");
    refused(import_jwk(&secp, None), "crv does not match");

    // Coordinates of the wrong length.
    let mut short = good.clone();
    short["x"] = json!(b64(&unb64(good["x"].as_str().unwrap())[1..]));
    assert!(import_jwk(&short, None).is_err());
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("y");
    refused(import_jwk(&missing, None), "\"y\" is missing");
    let mut not_b64 = good.clone();
    not_b64["x"] = json!("not base64!");
    refused(import_jwk(&not_b64, None), "not base64url");
    let mut padded = good;
    padded["x"] = json!(format!("{}=", padded["x"].as_str().unwrap()));
    refused(import_jwk(&padded, None), "not base64url");
}

// RFC 7518 §6.2.1.2: each coordinate is exactly the curve's field size.
#[test]
fn jwk_ec_coordinates_must_each_be_full_length() {
    let good = jwk_of(Algorithm::ES256, "k");
    let x = unb64(good["x"].as_str().unwrap());
    let y = unb64(good["y"].as_str().unwrap());
    // The same 64 bytes split 31/33: the concatenation is the valid point, the JWK is not.
    let mut shifted = good.clone();
    shifted["x"] = json!(b64(&x[..31]));
    shifted["y"] = json!(b64([&x[31..], y.as_slice()].concat()));
    refused(import_jwk(&shifted, None), "coordinates");
}

#[test]
fn jwk_okp_checks() {
    let good = jwk_of(Algorithm::EdDSA, "k");
    let mut x448 = good.clone();
    x448["crv"] = json!("X25519");
    refused(import_jwk(&x448, None), "no alg");
    x448["alg"] = json!("EdDSA");
    refused(import_jwk(&x448, None), "crv Ed25519");
    let mut ed448 = good.clone();
    ed448["crv"] = json!("Ed448");
    ed448["alg"] = json!("EdDSA");
    refused(import_jwk(&ed448, None), "crv Ed25519");
    let mut short = good;
    short["x"] = json!(b64([7u8; 31]));
    refused(import_jwk(&short, None), "32 bytes");
}

#[test]
fn jwk_kty_must_match_alg() {
    let mut ec_as_rsa = jwk_of(Algorithm::ES256, "k");
    ec_as_rsa["alg"] = json!("RS256");
    refused(import_jwk(&ec_as_rsa, None), "kty does not match");
    let mut rsa_as_hs = jwk_of(Algorithm::RS256, "k");
    rsa_as_hs["alg"] = json!("HS256");
    refused(import_jwk(&rsa_as_hs, None), "kty does not match");
    let mut oct_as_es = jwk_of(Algorithm::HS256, "k");
    oct_as_es["alg"] = json!("ES256");
    refused(import_jwk(&oct_as_es, None), "kty does not match");
    let mut unknown = jwk_of(Algorithm::RS256, "k");
    unknown["alg"] = json!("RSA-OAEP");
    refused(import_jwk(&unknown, None), "unsupported algorithm");
    let mut no_kty = jwk_of(Algorithm::RS256, "k");
    no_kty.as_object_mut().unwrap().remove("kty");
    refused(import_jwk(&no_kty, None), "no kty");
    refused(import_jwk(&json!("{}"), None), "JSON object");
    refused(import_jwk(&json!([]), None), "JSON object");
}

#[test]
fn jwk_oct_secret_strength() {
    for (alg, len) in [("HS256", 31), ("HS384", 47), ("HS512", 63), ("HS256", 0)] {
        let jwk = json!({"kty": "oct", "kid": "h", "alg": alg, "k": b64(vec![7u8; len])});
        refused(import_jwk(&jwk, None), "at least");
    }
    let jwk = json!({"kty": "oct", "kid": "h", "alg": "HS256", "k": b64(vec![7u8; 32])});
    assert!(import_jwk(&jwk, None).is_ok());
}

// ---- JWKS ----

#[test]
fn jwks_imports_every_key() {
    let jwks = json!({"keys": [
        jwk_of(Algorithm::RS256, "rsa"),
        jwk_of(Algorithm::ES256, "ec"),
        jwk_of(Algorithm::EdDSA, "ed"),
        jwk_of(Algorithm::HS512, "mac"),
    ]});
    let keys = import_jwks(&jwks, Some(ISSUER)).unwrap();
    let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
    assert_eq!(kids, ["rsa", "ec", "ed", "mac"]);
    let algs: Vec<Algorithm> = keys.iter().map(|k| k.key.alg).collect();
    assert_eq!(
        algs,
        [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA, Algorithm::HS512]
    );
    assert!(keys.iter().all(|k| k.key.issuer.as_deref() == Some(ISSUER)));
    // The issuer given at import binds the keys: with no policy issuers, tokens from it pass.
    let open = jwt_guard_core::Policy {
        issuers: vec![],
        ..policy()
    };
    let token = mint(&good_payload(), &key_for(Algorithm::ES256));
    assert!(check(&token, &keys[1].key, &open, NOW).is_ok());
}

// §1.5 item 7: a duplicate kid is a configuration error, not "first one wins".
#[test]
fn jwks_duplicate_kid_is_refused() {
    let jwks = json!({"keys": [jwk_of(Algorithm::RS256, "same"), jwk_of(Algorithm::ES256, "same")]});
    refused(import_jwks(&jwks, None), "more than once");
    let jwks = json!({"keys": [jwk_of(Algorithm::ES256, "a"), jwk_of(Algorithm::ES256, "a")]});
    refused(import_jwks(&jwks, None), "more than once");
}

#[test]
fn jwks_one_bad_key_refuses_the_set() {
    let mut private = jwk_of(Algorithm::ES256, "p");
    private["d"] = json!("AQAB");
    let jwks = json!({"keys": [jwk_of(Algorithm::RS256, "ok"), private]});
    refused(import_jwks(&jwks, None), "JWKS key 1");
    let mut no_kid = jwk_of(Algorithm::ES256, "x");
    no_kid.as_object_mut().unwrap().remove("kid");
    refused(import_jwks(&json!({"keys": [no_kid]}), None), "no kid");
    let weak = rsa1024();
    let weak_jwk = json!({"kty": "RSA", "kid": "w", "alg": "RS256", "n": b64(&weak.n), "e": b64(&weak.e)});
    refused(import_jwks(&json!({"keys": [weak_jwk]}), None), "1024 bits");
    let mut enc = jwk_of(Algorithm::RS256, "e");
    enc["use"] = json!("enc");
    refused(import_jwks(&json!({"keys": [enc]}), None), "\"use\"");
}

#[test]
fn jwks_shape() {
    refused(import_jwks(&json!({"keys": []}), None), "no keys");
    for bad in [
        json!({}),
        json!([]),
        json!({"keys": {}}),
        json!({"keys": "x"}),
        json!(null),
    ] {
        refused(import_jwks(&bad, None), "\"keys\" array");
    }
    refused(
        import_jwks(&json!({"keys": [jwk_of(Algorithm::ES256, "a")]}), Some("")),
        "issuer",
    );
}

// ---- stored keys ----

#[test]
fn load_rebuilds_text_keys_and_checks_the_algorithm() {
    let es = key_for(Algorithm::ES256);
    let loaded = VerifyingKey::load("ES256", KeyFormat::Text, &es.public_text, Some(ISSUER)).unwrap();
    assert_eq!(loaded.issuer.as_deref(), Some(ISSUER));
    accepts_tokens_of(&loaded, &es);
    let jwk = jwk_of(Algorithm::ES256, "k").to_string();
    refused(
        VerifyingKey::load("ES384", KeyFormat::Jwk, &jwk, None),
        "does not match its algorithm",
    );
    refused(
        VerifyingKey::load("ES256", KeyFormat::Jwk, "{not json", None),
        "not JSON",
    );
    assert_eq!(KeyFormat::parse("text"), Ok(KeyFormat::Text));
    assert_eq!(KeyFormat::parse("jwk"), Ok(KeyFormat::Jwk));
    assert!(KeyFormat::parse("JWK").is_err());
    assert_eq!(KeyFormat::Jwk.as_str(), "jwk");
    assert_eq!(KeyFormat::Text.as_str(), "text");
}

#[test]
fn fingerprints_identify_material_without_revealing_it() {
    let a = VerifyingKey::from_text("HS256", HMAC_SECRET, None).unwrap();
    let b = VerifyingKey::from_text("HS256", HMAC_SECRET, Some(ISSUER)).unwrap();
    let c = VerifyingKey::from_text("HS384", HMAC_SECRET, None).unwrap();
    let d = VerifyingKey::from_text("HS256", &format!("{HMAC_SECRET}!"), None).unwrap();
    let fp = a.fingerprint();
    assert!(fp.starts_with("sha256:"));
    assert_eq!(fp.len(), "sha256:".len() + 24);
    assert!(fp["sha256:".len()..].chars().all(|c| c.is_ascii_hexdigit()));
    assert!(!fp.contains(HMAC_SECRET));
    assert_eq!(fp, b.fingerprint(), "the issuer is not key material");
    assert_ne!(fp, c.fingerprint(), "the algorithm is part of the identity");
    assert_ne!(fp, d.fingerprint());
    // The same key gives the same fingerprint from PEM and from JWK.
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA, Algorithm::RS256] {
        let from_pem = key_for(alg).verifying().fingerprint();
        let from_jwk = import_jwk(&jwk_of(alg, "k"), None).unwrap().key.fingerprint();
        assert_eq!(from_pem, from_jwk, "{alg:?}");
    }
    // Different RSA keys differ.
    let one = rsa_key(Algorithm::RS256).verifying().fingerprint();
    let two = rsa_key_from(Algorithm::RS256, rsa2048_other())
        .verifying()
        .fingerprint();
    assert_ne!(one, two);
}

// ---- JWKS as identity providers publish them (sync) ----

fn verdicts(doc: &Value, default_alg: Option<&str>) -> Vec<(Option<String>, Result<Algorithm, String>)> {
    jwt_guard_core::keys::classify_jwks(doc, Some(ISSUER), default_alg)
        .unwrap()
        .into_iter()
        .map(|v| match v {
            jwt_guard_core::keys::JwkVerdict::Use(k) => (Some(k.kid), Ok(k.key.alg)),
            jwt_guard_core::keys::JwkVerdict::Skip { kid, reason } => (kid, Err(reason)),
        })
        .collect()
}

#[test]
fn sync_skips_what_cannot_verify_and_keeps_the_rest() {
    let mut enc = jwk_of(Algorithm::RS256, "enc-key");
    enc["use"] = json!("enc");
    enc["alg"] = json!("RSA-OAEP");
    let mut ops = jwk_of(Algorithm::ES256, "wrap-key");
    ops["key_ops"] = json!(["wrapKey"]);
    let mut no_alg_rsa = jwk_of(Algorithm::RS256, "entra-style");
    no_alg_rsa.as_object_mut().unwrap().remove("alg");
    let weak = json!({"kty": "oct", "k": "c2hvcnQ", "alg": "HS256", "kid": "weak"});
    let doc = json!({"keys": [
        jwk_of(Algorithm::RS256, "sig-key"), enc, ops, no_alg_rsa, weak,
        jwk_of(Algorithm::ES256, "sig-key"), "not a key"
    ]});
    let got = verdicts(&doc, None);
    assert_eq!(got[0], (Some("sig-key".into()), Ok(Algorithm::RS256)));
    assert!(
        matches!(&got[1], (Some(k), Err(r)) if k == "enc-key" && r.contains("use")),
        "{:?}",
        got[1]
    );
    assert!(
        matches!(&got[2], (Some(k), Err(r)) if k == "wrap-key" && r.contains("key_ops")),
        "{:?}",
        got[2]
    );
    assert!(
        matches!(&got[3], (Some(k), Err(r)) if k == "entra-style" && r.contains("default_alg")),
        "{:?}",
        got[3]
    );
    assert!(
        matches!(&got[4], (Some(k), Err(r)) if k == "weak" && r.contains("at least")),
        "{:?}",
        got[4]
    );
    assert!(
        matches!(&got[5], (Some(k), Err(r)) if k == "sig-key" && r.contains("more than once")),
        "{:?}",
        got[5]
    );
    assert!(matches!(&got[6], (None, Err(_))), "{:?}", got[6]);
    // With a default algorithm, the alg-less RSA key (Entra, Google) is used.
    assert_eq!(
        verdicts(&doc, Some("RS256"))[3],
        (Some("entra-style".into()), Ok(Algorithm::RS256))
    );
    // Not a JWKS at all is the one error.
    assert!(jwt_guard_core::keys::classify_jwks(&json!({"kid": "x"}), None, None).is_err());
}

#[test]
fn a_jwk_without_kid_is_named_by_its_rfc7638_thumbprint() {
    // RFC 7638 section 3.1.
    let rfc = json!({"kty": "RSA", "e": "AQAB", "alg": "RS256",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"});
    assert_eq!(
        jwt_guard_core::keys::jwk_thumbprint(&rfc).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
    // jose's exportJWK(): no kid, no alg; the curve implies ES256.
    let bare = key_for(Algorithm::ES256).jwk;
    let got = verdicts(&json!({"keys": [bare.clone()]}), None);
    let thumb = jwt_guard_core::keys::jwk_thumbprint(&bare).unwrap();
    assert_eq!(got, vec![(Some(thumb), Ok(Algorithm::ES256))]);
}

#[test]
fn synced_keys_without_alg_or_kid_load_back_and_verify() {
    let mut rsa = key_for(Algorithm::RS256).jwk;
    rsa["kid"] = json!("entra-style");
    let bare_ec = key_for(Algorithm::ES256).jwk;
    let doc = json!({"keys": [rsa, bare_ec]});
    let verdicts = jwt_guard_core::keys::classify_jwks(&doc, Some(ISSUER), Some("RS256")).unwrap();
    assert_eq!(verdicts.len(), 2);
    for (v, alg) in verdicts.into_iter().zip([Algorithm::RS256, Algorithm::ES256]) {
        let jwt_guard_core::keys::JwkVerdict::Use(k) = v else {
            panic!("skipped: {v:?}")
        };
        let loaded = VerifyingKey::load(alg_name(alg), KeyFormat::Jwk, &k.jwk_text, Some(ISSUER))
            .unwrap_or_else(|e| panic!("{alg:?} does not load back: {e}"));
        assert_eq!(loaded.fingerprint(), k.key.fingerprint());
        accepts_tokens_of(&loaded, &key_for(alg));
    }
}
