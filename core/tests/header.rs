//! Header policy: kid as an opaque string, forbidden parameters, typ, duplicates
//! (docs/threat-model.md §1.5 item 4; §2.1 A7–A10; §2.3 E4, E5, E7).

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use jwt_guard_core::{parse, Rejection};

fn hs() -> TestKey {
    key_for(Algorithm::HS256)
}

fn parse_header(header: &str) -> Result<(Algorithm, Option<String>), Rejection> {
    let token = mint_with_header(header, &good_payload(), &hs());
    parse(&token, 1 << 20).map(|p| (p.alg, p.kid))
}

fn kid_header(kid_json: &str) -> String {
    format!(r#"{{"alg":"HS256","kid":{kid_json}}}"#)
}

// A7: the kid is returned exactly as sent; it is never interpreted here.
#[test]
fn unusual_kids_parse_and_are_returned_verbatim() {
    let long = "k".repeat(256);
    let kids = [
        "../../dev/null",
        "/etc/passwd",
        "' OR 1=1--",
        "'; DROP TABLE jwt_guard.keys; --",
        "$(rm -rf /)",
        "`id`",
        "a b",
        "ключ",
        "🔑",
        "%00",
        "\\\\",
        long.as_str(),
    ];
    for kid in kids {
        let kid_json = serde_json::to_string(kid).unwrap();
        assert_eq!(
            parse_header(&kid_header(&kid_json)),
            Ok((Algorithm::HS256, Some(kid.to_owned()))),
            "{kid}"
        );
        // And the kid reaches the identity unchanged after verification.
        let token = mint_with_header(&kid_header(&kid_json), &good_payload(), &hs());
        assert_eq!(check_hs256(&token).unwrap().kid.as_deref(), Some(kid));
    }
}

#[test]
fn kid_escapes_are_decoded_before_use() {
    // "\u006b1" is "k1": the kid is compared after JSON decoding, like every other string.
    assert_eq!(
        parse_header(&kid_header(r#""\u006b1""#)),
        Ok((Algorithm::HS256, Some("k1".into())))
    );
}

#[test]
fn absent_kid_is_none() {
    assert_eq!(parse_header(r#"{"alg":"HS256"}"#), Ok((Algorithm::HS256, None)));
}

#[test]
fn invalid_kids_are_bad_header() {
    let too_long = format!("\"{}\"", "k".repeat(257));
    for kid_json in [
        "1",
        "0",
        "null",
        "true",
        r#"["k1"]"#,
        r#"{"id":"k1"}"#,
        r#""""#,
        r#""k1\u0000""#,
        r#""\u0000""#,
        r#""k1\n""#,
        r#""k\r1""#,
        r#""k\t1""#,
        r#""k\u007f""#,
        r#""k\u0085""#,
        too_long.as_str(),
    ] {
        assert!(
            matches!(parse_header(&kid_header(kid_json)), Err(Rejection::BadHeader(_))),
            "{kid_json}: {:?}",
            parse_header(&kid_header(kid_json))
        );
    }
}

// A8, A9, A10, E4, E5: parameters asking for behaviour we never provide.
#[test]
fn forbidden_header_parameters_are_refused_by_name() {
    let cases = [
        ("jku", r#""https://attacker.example/jwks.json""#),
        ("x5u", r#""https://attacker.example/cert.pem""#),
        ("jwk", r#"{"kty":"oct","k":"AAAA"}"#),
        ("x5c", r#"["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]"#),
        ("crit", r#"["exp"]"#),
        ("crit", r#"["x-unknown"]"#),
        ("crit", r#"[]"#),
        ("cty", r#""JWT""#),
        ("cty", r#""json""#),
        ("enc", r#""A256GCM""#),
        ("zip", r#""DEF""#),
        ("b64", "false"),
        ("b64", "true"),
        ("jku", "null"),
    ];
    for (name, value) in cases {
        let header = format!(r#"{{"alg":"HS256","{name}":{value}}}"#);
        assert_eq!(
            parse_header(&header),
            Err(Rejection::ForbiddenHeader(name.into())),
            "{header}"
        );
    }
}

// A9: an embedded attacker key with a token signed by that key is refused before any crypto.
#[test]
fn embedded_attacker_jwk_with_matching_signature_is_refused() {
    let attacker = new_ec_key(Algorithm::ES256);
    let header = format!(r#"{{"alg":"ES256","jwk":{}}}"#, attacker.jwk);
    let token = mint_with_header(&header, &good_payload(), &attacker);
    assert_eq!(
        parse(&token, 8192).map(|p| p.alg),
        Err(Rejection::ForbiddenHeader("jwk".into()))
    );
    // Without the header, the attacker's token still fails against our key.
    let plain = mint(&good_payload(), &attacker);
    assert_eq!(
        check(&plain, &key_for(Algorithm::ES256).verifying(), &policy(), NOW),
        Err(Rejection::BadSignature)
    );
}

// The forbidden check comes first, so a forbidden parameter wins over a bad alg.
#[test]
fn forbidden_header_is_reported_before_algorithm() {
    assert_eq!(
        parse_header(r#"{"alg":"none","crit":["b64"]}"#),
        Err(Rejection::ForbiddenHeader("crit".into()))
    );
    assert_eq!(
        parse_header(r#"{"jku":"x"}"#),
        Err(Rejection::ForbiddenHeader("jku".into()))
    );
}

// Only the exact lower-case names are registered parameters; other spellings are ignored.
#[test]
fn header_names_are_case_sensitive() {
    assert_eq!(
        parse_header(r#"{"alg":"HS256","CRIT":["x"],"Jku":"x","KID":5}"#),
        Ok((Algorithm::HS256, None))
    );
}

#[test]
fn accepted_typ_values() {
    for typ in [
        "JWT",
        "jwt",
        "Jwt",
        "at+jwt",
        "AT+JWT",
        "application/jwt",
        "application/at+jwt",
        "APPLICATION/JWT",
    ] {
        let header = format!(r#"{{"alg":"HS256","typ":"{typ}"}}"#);
        assert_eq!(parse_header(&header), Ok((Algorithm::HS256, None)), "{typ}");
    }
}

#[test]
fn other_typ_values_are_bad_header() {
    for typ_json in [
        r#""JWS""#,
        r#""JOSE""#,
        r#""JOSE+JSON""#,
        r#""""#,
        r#"" JWT""#,
        r#""JWT ""#,
        r#""application/json""#,
        r#""text/jwt""#,
        r#""secevent+jwt""#,
        r#""dpop+jwt""#,
        "null",
        "1",
        r#"["JWT"]"#,
    ] {
        let header = format!(r#"{{"alg":"HS256","typ":{typ_json}}}"#);
        assert!(
            matches!(parse_header(&header), Err(Rejection::BadHeader(_))),
            "{typ_json}"
        );
    }
}

// Unknown, non-critical parameters are ignored (RFC 7515 §4).
#[test]
fn unknown_header_parameters_are_ignored() {
    let header = r#"{"alg":"HS256","typ":"JWT","x-custom":{"nested":[1,2,3]},"iss":"spoof"}"#;
    assert_eq!(parse_header(header), Ok((Algorithm::HS256, None)));
    let token = mint_with_header(header, &good_payload(), &hs());
    // A header "iss" does not replace the payload's.
    assert_eq!(check_hs256(&token).unwrap().claims["iss"], ISSUER);
}

// E7 for the header: duplicate names anywhere in it.
#[test]
fn duplicate_header_names_are_refused() {
    for header in [
        r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
        r#"{"alg":"HS256","typ":"JWT","typ":"JWT"}"#,
        r#"{"alg":"HS256","\u006bid":"a","kid":"b"}"#,
        r#"{"alg":"HS256","x":{"y":1,"y":2}}"#,
        r#"{"alg":"HS256","\u0061lg":"HS256"}"#,
    ] {
        assert_eq!(parse_header(header), Err(Rejection::DuplicateKey("header")), "{header}");
    }
}

#[test]
fn header_must_be_a_json_object() {
    for header in ["[]", r#"["HS256"]"#, r#""HS256""#, "1", "null", "true"] {
        assert_eq!(parse_header(header), Err(Rejection::NotAnObject("header")), "{header}");
    }
    for header in [
        "",
        "{",
        r#"{"alg":"HS256"} {}"#,
        r#"{"alg":"HS256",}"#,
        "\u{feff}{\"alg\":\"HS256\"}",
    ] {
        assert_eq!(parse_header(header), Err(Rejection::BadJson("header")), "{header:?}");
    }
}

#[test]
fn header_with_invalid_utf8_is_bad_json() {
    let token = mint_raw(b"{\"alg\":\"HS256\",\"x\":\"\xff\"}", good_payload().as_bytes(), &hs());
    assert_eq!(parse(&token, 8192).map(|p| p.alg), Err(Rejection::BadJson("header")));
}

// The JWE compact form (5 segments) and a JWE-shaped 3-segment header.
#[test]
fn jwe_shapes_are_refused() {
    let h = b64(r#"{"alg":"RSA-OAEP","enc":"A256GCM"}"#);
    let jwe = format!(
        "{h}.{}.{}.{}.{}",
        b64([1u8; 256]),
        b64([2u8; 12]),
        b64(b"ciphertext"),
        b64([3u8; 16])
    );
    assert_eq!(parse(&jwe, 8192).map(|p| p.alg), Err(Rejection::Segments(5)));
    let three = format!("{h}.{}.{}", b64(b"ciphertext"), b64([3u8; 16]));
    assert_eq!(
        parse(&three, 8192).map(|p| p.alg),
        Err(Rejection::ForbiddenHeader("enc".into()))
    );
    let dir = format!(
        "{}.{}.{}",
        b64(r#"{"alg":"dir","enc":"A128GCM"}"#),
        b64(b"x"),
        b64(b"y")
    );
    assert_eq!(
        parse(&dir, 8192).map(|p| p.alg),
        Err(Rejection::ForbiddenHeader("enc".into()))
    );
}

// E5: a nested token in a cty:JWT envelope is refused, not unwrapped.
#[test]
fn nested_jwt_is_refused() {
    let inner = mint(&good_payload(), &hs());
    let outer = mint_raw(br#"{"alg":"HS256","cty":"JWT"}"#, inner.as_bytes(), &hs());
    assert_eq!(
        parse(&outer, 8192).map(|p| p.alg),
        Err(Rejection::ForbiddenHeader("cty".into()))
    );
    // Without cty the payload is a token string, not JSON: refused after the signature.
    let outer = mint_raw(br#"{"alg":"HS256"}"#, inner.as_bytes(), &hs());
    assert_eq!(check_hs256(&outer), Err(Rejection::BadJson("payload")));
}

// The header is parsed before the signature, but only after the size and alphabet checks.
#[test]
fn header_json_is_not_parsed_for_oversize_or_bad_alphabet_tokens() {
    let deep = "[".repeat(100_000);
    let token = format!("{}.e30.", b64(&deep));
    assert!(matches!(
        parse(&token, 8192).map(|p| p.alg),
        Err(Rejection::TooLarge { .. })
    ));
    let token = format!("{}.e30.!", b64(&deep));
    assert_eq!(parse(&token, 1 << 20).map(|p| p.alg), Err(Rejection::BadCharacters));
    // With a cap large enough, the deep header is refused by the recursion limit, not a crash.
    let token = format!("{}.e30.", b64(&deep));
    assert_eq!(parse(&token, 1 << 20).map(|p| p.alg), Err(Rejection::BadJson("header")));
}
