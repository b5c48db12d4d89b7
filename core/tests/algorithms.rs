//! Algorithms and signatures: round trips for every supported algorithm, tampering, algorithm
//! confusion and downgrade, ECDSA special cases, truncated and padded signatures
//! (docs/threat-model.md §2.1 A1–A5, A11, A12, A15, A16, A19, A21).

mod common;

use common::*;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use jwt_guard_core::{parse, provider, verify, Rejection, VerifyingKey};

fn mismatch(token: Algorithm, key: Algorithm) -> Rejection {
    Rejection::AlgorithmMismatch {
        token: alg_name(token).into(),
        key: alg_name(key).into(),
    }
}

#[test]
fn every_algorithm_round_trips() {
    for alg in ALL_ALGS {
        let key = key_for(alg);
        let header = format!(
            r#"{{"alg":"{}","typ":"JWT","kid":"k-{}"}}"#,
            alg_name(alg),
            alg_name(alg)
        );
        let token = mint_with_header(&header, &good_payload(), &key);
        let parsed = parse(&token, 8192).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(parsed.alg, alg);
        assert_eq!(parsed.kid.as_deref(), Some(format!("k-{}", alg_name(alg)).as_str()));
        let id = verify(&parsed, &key.verifying(), &policy(), NOW).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(id.sub.as_deref(), Some("user-1"), "{alg:?}");
        assert_eq!(
            id.role_claim.as_ref().and_then(|r| r.single()),
            Some("app_user"),
            "{alg:?}"
        );
        assert_eq!(id.exp, NOW + 600, "{alg:?}");
        assert_eq!(
            id.kid.as_deref(),
            Some(format!("k-{}", alg_name(alg)).as_str()),
            "{alg:?}"
        );
        assert_eq!(id.claims["iss"], ISSUER);
    }
}

#[test]
fn every_algorithm_rejects_a_flipped_signature_bit() {
    for alg in ALL_ALGS {
        let key = key_for(alg);
        let token = mint(&good_payload(), &key);
        let (_, _, s) = segments(&token);
        let sig = unb64(&s);
        for (byte, bit) in [(0, 0), (sig.len() / 2, 3), (sig.len() - 1, 7)] {
            let mut bad = sig.clone();
            bad[byte] ^= 1 << bit;
            assert_eq!(
                check(&with_signature(&token, &bad), &key.verifying(), &policy(), NOW),
                Err(Rejection::BadSignature),
                "{alg:?} byte {byte}"
            );
        }
    }
}

#[test]
fn every_algorithm_rejects_a_flipped_payload_bit() {
    for alg in ALL_ALGS {
        let key = key_for(alg);
        let payload = good_payload();
        let token = mint(&payload, &key);
        // 'u' of "user-1" becomes 't': still valid JSON, so only the signature can catch it.
        let at = payload.find("user-1").unwrap();
        let mut bytes = payload.into_bytes();
        bytes[at] ^= 1;
        let (h, _, s) = segments(&token);
        let forged = format!("{h}.{}.{s}", b64(&bytes));
        assert_eq!(
            check(&forged, &key.verifying(), &policy(), NOW),
            Err(Rejection::BadSignature),
            "{alg:?}"
        );
        // And a role upgrade with the original signature.
        let upgraded = good_payload().replace("app_user", "postgres");
        let forged = format!("{h}.{}.{s}", b64(upgraded));
        assert_eq!(
            check(&forged, &key.verifying(), &policy(), NOW),
            Err(Rejection::BadSignature),
            "{alg:?}"
        );
    }
}

#[test]
fn every_algorithm_rejects_a_flipped_header_bit() {
    for alg in ALL_ALGS {
        let key = key_for(alg);
        let header = format!(r#"{{"alg":"{}","x":"a"}}"#, alg_name(alg));
        let token = mint_with_header(&header, &good_payload(), &key);
        // "a" becomes "`": the header still parses and passes policy.
        let mut bytes = header.clone().into_bytes();
        let at = header.rfind('a').unwrap();
        bytes[at] ^= 1;
        let (_, p, s) = segments(&token);
        let forged = format!("{}.{p}.{s}", b64(&bytes));
        assert_eq!(
            check(&forged, &key.verifying(), &policy(), NOW),
            Err(Rejection::BadSignature),
            "{alg:?}"
        );
    }
}

#[test]
fn a_token_from_another_key_of_the_same_algorithm_is_rejected() {
    let pairs = [
        (key_for(Algorithm::ES256), new_ec_key(Algorithm::ES256)),
        (key_for(Algorithm::ES384), new_ec_key(Algorithm::ES384)),
        (key_for(Algorithm::EdDSA), new_ed_key()),
        (
            key_for(Algorithm::RS256),
            rsa_key_from(Algorithm::RS256, rsa2048_other()),
        ),
        (
            key_for(Algorithm::PS256),
            rsa_key_from(Algorithm::PS256, rsa2048_other()),
        ),
    ];
    for (ours, theirs) in pairs {
        let token = mint(&good_payload(), &theirs);
        assert_eq!(
            check(&token, &ours.verifying(), &policy(), NOW),
            Err(Rejection::BadSignature),
            "{:?}",
            ours.alg
        );
    }
    let other_secret = "a".repeat(32) + "different-secret-value";
    let theirs = TestKey {
        signing: EncodingKey::from_secret(other_secret.as_bytes()),
        ..hmac_key(Algorithm::HS256)
    };
    assert_eq!(
        check_hs256(&mint(&good_payload(), &theirs)),
        Err(Rejection::BadSignature)
    );
}

// A1, A2, A21: the algorithm name is an exact, case-sensitive member of our list.
#[test]
fn unsupported_and_none_algorithms_are_bad_algorithm() {
    let hs = key_for(Algorithm::HS256);
    let names = [
        "none",
        "None",
        "NONE",
        "nOnE",
        " none",
        "none ",
        "none\\u0000",
        "hs256",
        "Hs256",
        "HS256 ",
        " HS256",
        "",
        "ES512",
        "ES256K",
        "Ed448",
        "EDDSA",
        "eddsa",
        "HS1",
        "RS1",
        "HS128",
        "RSA-OAEP",
        "dir",
        "HS256\\u0000",
    ];
    for name in names {
        let header = format!(r#"{{"alg":"{name}","typ":"JWT"}}"#);
        // With an HMAC signature by a real key, and with an empty signature.
        let signed = mint_with_header(&header, &good_payload(), &hs);
        assert_eq!(
            parse(&signed, 8192).map(|p| p.alg),
            Err(Rejection::BadAlgorithm),
            "{name:?}"
        );
        let (h, p, _) = segments(&signed);
        let unsigned = format!("{h}.{p}.");
        assert_eq!(
            parse(&unsigned, 8192).map(|p| p.alg),
            Err(Rejection::BadAlgorithm),
            "{name:?} unsigned"
        );
    }
}

// A3: alg missing or of the wrong JSON type.
#[test]
fn missing_or_mistyped_alg_is_bad_algorithm() {
    let hs = key_for(Algorithm::HS256);
    for header in [
        r#"{"typ":"JWT"}"#,
        r#"{}"#,
        r#"{"alg":null}"#,
        r#"{"alg":["HS256"]}"#,
        r#"{"alg":256}"#,
        r#"{"alg":true}"#,
        r#"{"alg":{"name":"HS256"}}"#,
        r#"{"ALG":"HS256"}"#,
    ] {
        let token = mint_with_header(header, &good_payload(), &hs);
        assert_eq!(
            parse(&token, 8192).map(|p| p.alg),
            Err(Rejection::BadAlgorithm),
            "{header}"
        );
    }
}

// A6: a parser that keeps the first alg and one that keeps the last would disagree.
#[test]
fn duplicate_alg_is_a_duplicate_key() {
    let hs = key_for(Algorithm::HS256);
    for header in [
        r#"{"alg":"HS256","alg":"none"}"#,
        r#"{"alg":"none","alg":"HS256"}"#,
        r#"{"alg":"HS256","alg":"HS256"}"#,
    ] {
        let token = mint_with_header(header, &good_payload(), &hs);
        assert_eq!(
            parse(&token, 8192).map(|p| p.alg),
            Err(Rejection::DuplicateKey("header")),
            "{header}"
        );
    }
}

// A4: HS256 tokens MACed with every byte form of a public key, presented against that key.
#[test]
fn hs256_token_macd_with_public_key_bytes_is_an_algorithm_mismatch() {
    let rsa = rsa2048();
    let es = key_for(Algorithm::ES256);
    let ed = key_for(Algorithm::EdDSA);
    let rsa_jwk = key_for(Algorithm::RS256).jwk.to_string();
    let der_of = |pem: &str| {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, body).unwrap()
    };
    let cases: Vec<(VerifyingKey, Algorithm, Vec<Vec<u8>>)> = vec![
        (
            key_for(Algorithm::RS256).verifying(),
            Algorithm::RS256,
            vec![
                rsa.spki_pem.clone().into_bytes(),
                rsa.pkcs1_pem.clone().into_bytes(),
                der_of(&rsa.spki_pem),
                der_of(&rsa.pkcs1_pem),
                rsa_jwk.into_bytes(),
                rsa.n.clone(),
            ],
        ),
        (
            es.verifying(),
            Algorithm::ES256,
            vec![
                es.public_text.clone().into_bytes(),
                der_of(&es.public_text),
                es.jwk.to_string().into_bytes(),
            ],
        ),
        (
            ed.verifying(),
            Algorithm::EdDSA,
            vec![ed.public_text.clone().into_bytes(), der_of(&ed.public_text)],
        ),
    ];
    for (key, key_alg, secrets) in cases {
        for secret in secrets {
            for mac_alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                let forger = TestKey {
                    alg: mac_alg,
                    signing: EncodingKey::from_secret(&secret),
                    ..hmac_key(mac_alg)
                };
                let token = mint(&good_payload(), &forger);
                assert_eq!(check(&token, &key, &policy(), NOW), Err(mismatch(mac_alg, key_alg)));
            }
        }
    }
}

// A4 defence in depth: the provider itself refuses a public key used with an HMAC algorithm.
#[test]
fn provider_refuses_key_family_mismatch() {
    provider::install();
    let rsa = DecodingKey::from_rsa_pem(rsa2048().spki_pem.as_bytes()).unwrap();
    let ec = DecodingKey::from_ec_pem(key_for(Algorithm::ES256).public_text.as_bytes()).unwrap();
    let secret = DecodingKey::from_secret(HMAC_SECRET.as_bytes());
    let msg = b"eyJhbGciOiJIUzI1NiJ9.e30";
    for (key, alg) in [
        (&rsa, Algorithm::HS256),
        (&rsa, Algorithm::ES256),
        (&ec, Algorithm::HS256),
        (&ec, Algorithm::RS256),
        (&ec, Algorithm::EdDSA),
        (&secret, Algorithm::RS256),
        (&secret, Algorithm::ES256),
        (&secret, Algorithm::EdDSA),
    ] {
        let err = jsonwebtoken::crypto::verify("AAAA", msg, key, alg).unwrap_err();
        assert_eq!(
            *err.kind(),
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm,
            "{alg:?}"
        );
    }
    // The signing side as well: an RSA private key cannot produce an HMAC.
    let rsa_signing = EncodingKey::from_rsa_pem(rsa2048().private_pem.as_bytes()).unwrap();
    let err = jsonwebtoken::crypto::sign(msg, &rsa_signing, Algorithm::HS256).unwrap_err();
    assert_eq!(*err.kind(), jsonwebtoken::errors::ErrorKind::InvalidAlgorithm);
}

// A5: one algorithm per key, even within a family.
#[test]
fn downgrade_within_a_family_is_an_algorithm_mismatch() {
    let cases = [
        (Algorithm::RS256, Algorithm::PS256),
        (Algorithm::RS256, Algorithm::RS384),
        (Algorithm::RS256, Algorithm::RS512),
        (Algorithm::PS256, Algorithm::RS256),
        (Algorithm::PS512, Algorithm::PS256),
        (Algorithm::RS512, Algorithm::RS256),
        (Algorithm::HS512, Algorithm::HS256),
        (Algorithm::HS256, Algorithm::HS512),
    ];
    for (key_alg, token_alg) in cases {
        let key = key_for(key_alg).verifying();
        let token = mint(&good_payload(), &key_for(token_alg));
        assert_eq!(
            check(&token, &key, &policy(), NOW),
            Err(mismatch(token_alg, key_alg)),
            "{key_alg:?}"
        );
    }
    // ES256 key, token claims ES384 (signed by a P-384 key), and the reverse.
    let token = mint(&good_payload(), &key_for(Algorithm::ES384));
    assert_eq!(
        check(&token, &key_for(Algorithm::ES256).verifying(), &policy(), NOW),
        Err(mismatch(Algorithm::ES384, Algorithm::ES256))
    );
    let token = mint(&good_payload(), &key_for(Algorithm::ES256));
    assert_eq!(
        check(&token, &key_for(Algorithm::ES384).verifying(), &policy(), NOW),
        Err(mismatch(Algorithm::ES256, Algorithm::ES384))
    );
}

// The same RSA key registered once per algorithm: a PS256 signature relabelled RS256 fails.
#[test]
fn relabelled_rsa_signature_fails_under_the_labelled_algorithm() {
    let ps = key_for(Algorithm::PS256);
    let token = mint(&good_payload(), &ps);
    let (_, p, s) = segments(&token);
    let relabelled = format!("{}.{p}.{s}", b64(r#"{"alg":"RS256","typ":"JWT"}"#));
    let rs_key = key_for(Algorithm::RS256).verifying();
    assert_eq!(
        check(&relabelled, &rs_key, &policy(), NOW),
        Err(Rejection::BadSignature)
    );
}

// A15: a token MACed with an empty or dictionary secret does not verify against a real key.
#[test]
fn tokens_macd_with_weak_secrets_are_rejected() {
    for secret in ["", "secret", "password", "your-256-bit-secret"] {
        let forger = TestKey {
            signing: EncodingKey::from_secret(secret.as_bytes()),
            ..hmac_key(Algorithm::HS256)
        };
        assert_eq!(
            check_hs256(&mint(&good_payload(), &forger)),
            Err(Rejection::BadSignature),
            "{secret:?}"
        );
    }
}

// P-256 group order n.
const P256_N: &str = "ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551";

fn scalar(text: &str) -> Vec<u8> {
    match text {
        "0" => vec![0; 32],
        "1" => {
            let mut v = vec![0; 32];
            v[31] = 1;
            v
        }
        "n" => hex(P256_N),
        "n-1" => {
            let mut v = hex(P256_N);
            v[31] -= 1;
            v
        }
        "n+1" => {
            let mut v = hex(P256_N);
            v[31] += 1;
            v
        }
        "ff" => vec![0xff; 32],
        _ => unreachable!(),
    }
}

// A11: psychic signatures (CVE-2022-21449) and other special r, s values.
#[test]
fn es256_special_signatures_are_rejected() {
    let key = key_for(Algorithm::ES256);
    let token = mint(&good_payload(), &key);
    let verifying = key.verifying();
    let values = ["0", "1", "n-1", "n", "n+1", "ff"];
    for r in values {
        for s in values {
            let mut sig = scalar(r);
            sig.extend(scalar(s));
            assert_eq!(
                check(&with_signature(&token, &sig), &verifying, &policy(), NOW),
                Err(Rejection::BadSignature),
                "r={r} s={s}"
            );
        }
    }
    let es384 = key_for(Algorithm::ES384);
    let token = mint(&good_payload(), &es384);
    assert_eq!(
        check(&with_signature(&token, &[0; 96]), &es384.verifying(), &policy(), NOW),
        Err(Rejection::BadSignature)
    );
}

/// DER INTEGER for a big-endian unsigned value.
fn der_integer(v: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
    if v.is_empty() || v[0] & 0x80 != 0 {
        v.insert(0, 0);
    }
    let mut out = vec![0x02, v.len() as u8];
    out.extend(v);
    out
}

// A12: the right r and s in the wrong shape.
#[test]
fn es256_signature_shapes_other_than_raw_64_bytes_are_rejected() {
    let key = key_for(Algorithm::ES256);
    let verifying = key.verifying();
    let token = mint(&good_payload(), &key);
    let sig = unb64(&segments(&token).2);
    assert_eq!(sig.len(), 64);
    assert!(check(&token, &verifying, &policy(), NOW).is_ok());

    let mut der_body = der_integer(&sig[..32]);
    der_body.extend(der_integer(&sig[32..]));
    let mut der = vec![0x30, der_body.len() as u8];
    der.extend(der_body);

    let mut leading_zero = vec![0];
    leading_zero.extend(&sig);
    let mut trailing_zero = sig.clone();
    trailing_zero.push(0);
    let mut two_trailing = sig.clone();
    two_trailing.extend([0, 0]);
    let shapes: Vec<(&str, Vec<u8>)> = vec![
        ("DER", der),
        ("63 bytes", sig[..63].to_vec()),
        ("63 bytes from the end", sig[1..].to_vec()),
        ("65 bytes (leading zero)", leading_zero),
        ("65 bytes (trailing zero)", trailing_zero),
        ("66 bytes", two_trailing),
        ("r only", sig[..32].to_vec()),
        ("s then r", [&sig[32..], &sig[..32]].concat()),
        ("128 bytes", [sig.as_slice(), sig.as_slice()].concat()),
    ];
    for (what, bytes) in shapes {
        assert_eq!(
            check(&with_signature(&token, &bytes), &verifying, &policy(), NOW),
            Err(Rejection::BadSignature),
            "{what}"
        );
    }
}

// A13 is documented, not refused: (r, n-s) is a second valid signature for the same claims.
#[test]
fn es256_malleated_signature_still_verifies_so_replay_must_not_key_on_the_token() {
    let key = key_for(Algorithm::ES256);
    let token = mint(&good_payload(), &key);
    let sig = unb64(&segments(&token).2);
    // n - s, big-endian subtraction.
    let n = hex(P256_N);
    let mut neg = vec![0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = n[i] as i16 - sig[32 + i] as i16 - borrow;
        borrow = i16::from(d < 0);
        neg[i] = (d + if d < 0 { 256 } else { 0 }) as u8;
    }
    let malleated = with_signature(&token, &[&sig[..32], neg.as_slice()].concat());
    assert_ne!(malleated, token);
    let a = check(&token, &key.verifying(), &policy(), NOW).unwrap();
    let b = check(&malleated, &key.verifying(), &policy(), NOW).unwrap();
    assert_eq!(a, b, "same claims under two token strings");
}

// A16: truncated, empty and extended signatures for every algorithm.
#[test]
fn truncated_empty_and_extended_signatures_are_rejected() {
    for alg in ALL_ALGS {
        let key = key_for(alg);
        let verifying = key.verifying();
        let token = mint(&good_payload(), &key);
        let sig = unb64(&segments(&token).2);
        let variants: Vec<(&str, Vec<u8>)> = vec![
            ("empty", vec![]),
            ("one byte", sig[..1].to_vec()),
            ("missing last byte", sig[..sig.len() - 1].to_vec()),
            ("half", sig[..sig.len() / 2].to_vec()),
            ("extra zero", [sig.as_slice(), &[0]].concat()),
            ("extra byte", [sig.as_slice(), &[0x5a]].concat()),
            ("doubled", [sig.as_slice(), sig.as_slice()].concat()),
            ("all zero", vec![0; sig.len()]),
        ];
        for (what, bytes) in variants {
            assert_eq!(
                check(&with_signature(&token, &bytes), &verifying, &policy(), NOW),
                Err(Rejection::BadSignature),
                "{alg:?} {what}"
            );
        }
        // The signature segment dropped entirely (trailing dot kept).
        let (h, p, _) = segments(&token);
        assert_eq!(
            check(&format!("{h}.{p}."), &verifying, &policy(), NOW),
            Err(Rejection::BadSignature),
            "{alg:?}"
        );
    }
}

// An HMAC secret registered as text is used as its UTF-8 bytes, and nothing else.
#[test]
fn hmac_key_is_the_exact_secret_text() {
    let key = VerifyingKey::from_text("HS256", HMAC_SECRET, None).unwrap();
    let token = mint(&good_payload(), &hmac_key(Algorithm::HS256));
    assert!(check(&token, &key, &policy(), NOW).is_ok());
    let padded = VerifyingKey::from_text("HS256", &format!("{HMAC_SECRET}\n"), None).unwrap();
    assert_eq!(check(&token, &padded, &policy(), NOW), Err(Rejection::BadSignature));
}

// RFC 9864: "Ed25519" names the Ed25519 instance of EdDSA; an EdDSA key verifies it.
#[test]
fn ed25519_is_a_name_for_eddsa() {
    let key = key_for(Algorithm::EdDSA);
    let token = mint_with_header(r#"{"alg":"Ed25519","typ":"JWT"}"#, &good_payload(), &key);
    assert_eq!(parse(&token, 8192).map(|p| p.alg), Ok(Algorithm::EdDSA));
    assert!(check(&token, &key.verifying(), &policy(), NOW).is_ok());
}

// A17, A18: RSA signatures made with other parameters than the algorithm names. A signer
// other than ring (OpenSSL's) makes them; the matching parameters are signed too, so a
// rejection is the verifier's and not a broken signer's.
#[test]
fn rsa_signatures_with_other_parameters_are_rejected() {
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::rsa::Padding;
    use openssl::sign::{RsaPssSaltlen, Signer};

    let private = PKey::private_key_from_pem(rsa2048().private_pem.as_bytes()).unwrap();
    let sign = |alg: Algorithm, digest: MessageDigest, pss: Option<(RsaPssSaltlen, MessageDigest)>| {
        let key = rsa_key(alg);
        let token = mint(&good_payload(), &key);
        let (h, p, _) = segments(&token);
        let mut signer = Signer::new(digest, &private).unwrap();
        match pss {
            Some((salt, mgf)) => {
                signer.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
                signer.set_rsa_pss_saltlen(salt).unwrap();
                signer.set_rsa_mgf1_md(mgf).unwrap();
            }
            None => signer.set_rsa_padding(Padding::PKCS1).unwrap(),
        }
        let signature = signer.sign_oneshot_to_vec(format!("{h}.{p}").as_bytes()).unwrap();
        check(&with_signature(&token, &signature), &key.verifying(), &policy(), NOW)
    };
    let sha256 = MessageDigest::sha256;
    let salt32 = || RsaPssSaltlen::custom(32);

    assert!(
        sign(Algorithm::RS256, sha256(), None).is_ok(),
        "PKCS#1 v1.5 with SHA-256"
    );
    assert!(
        sign(Algorithm::PS256, sha256(), Some((salt32(), sha256()))).is_ok(),
        "PSS, 32-byte salt"
    );

    type Case = (
        &'static str,
        Algorithm,
        MessageDigest,
        Option<(RsaPssSaltlen, MessageDigest)>,
    );
    let refused: [Case; 7] = [
        ("RS256 over SHA-384", Algorithm::RS256, MessageDigest::sha384(), None),
        ("RS256 over SHA-1", Algorithm::RS256, MessageDigest::sha1(), None),
        ("RS384 over SHA-256", Algorithm::RS384, sha256(), None),
        (
            "PS256 with no salt",
            Algorithm::PS256,
            sha256(),
            Some((RsaPssSaltlen::custom(0), sha256())),
        ),
        (
            "PS256 with the longest salt",
            Algorithm::PS256,
            sha256(),
            Some((RsaPssSaltlen::MAXIMUM_LENGTH, sha256())),
        ),
        (
            "PS256 with MGF1-SHA1",
            Algorithm::PS256,
            sha256(),
            Some((salt32(), MessageDigest::sha1())),
        ),
        ("PS256 as PKCS#1 v1.5", Algorithm::PS256, sha256(), None),
    ];
    for (what, alg, digest, pss) in refused {
        assert_eq!(sign(alg, digest, pss), Err(Rejection::BadSignature), "{what}");
    }
}
