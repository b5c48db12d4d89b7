//! Token shape, base64url, JSON and size (docs/threat-model.md §1.5 item 5; §2.3 E1–E3, E6, E7, E9, E11–E14).
//! Where the signature would otherwise reject a change, the odd text is signed, so only the
//! decoder or parser is left to reject it.

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use jwt_guard_core::{parse, Rejection};

fn hs() -> TestKey {
    key_for(Algorithm::HS256)
}

fn parse_err(token: &str) -> Rejection {
    parse(token, 8192).map(|p| p.alg).unwrap_err()
}

#[test]
fn empty_token() {
    assert_eq!(parse_err(""), Rejection::Empty);
}

// E12: the size cap comes before anything else, including the alphabet.
#[test]
fn oversize_tokens_are_too_large_before_any_other_check() {
    let good = mint(&good_payload(), &hs());
    let max = good.len();
    assert!(parse(&good, max).is_ok(), "exactly at the cap");
    assert_eq!(
        parse(&good, max - 1).map(|p| p.alg).unwrap_err(),
        Rejection::TooLarge {
            bytes: max,
            max: max - 1,
            from_profile: false
        }
    );
    for junk in [
        " ".repeat(8193),
        "\u{0}".repeat(8193),
        "é".repeat(4097),
        "a.".repeat(5000),
        "=".repeat(1 << 20),
    ] {
        assert_eq!(
            parse_err(&junk),
            Rejection::TooLarge {
                bytes: junk.len(),
                max: 8192,
                from_profile: false
            },
            "{}",
            junk.len()
        );
    }
    let mib = "A".repeat(64 << 20);
    assert_eq!(
        parse_err(&mib),
        Rejection::TooLarge {
            bytes: 64 << 20,
            max: 8192,
            from_profile: false
        }
    );
    // A validly signed token just over the default cap.
    let big = claims_with("pad", Some(serde_json::json!("x".repeat(6200))));
    let token = mint(&big, &hs());
    assert!(token.len() > 8192);
    assert_eq!(
        check_hs256(&token),
        Err(Rejection::TooLarge {
            bytes: token.len(),
            max: 8192,
            from_profile: false
        })
    );
}

// E1: padding and the standard alphabet are outside the token alphabet.
#[test]
fn padding_plus_and_slash_are_bad_characters() {
    let token = mint(&good_payload(), &hs());
    let (h, p, s) = segments(&token);
    for bad in [
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}==.{s}"),
        format!("{h}.{p}.{s}="),
        format!("{h}.{p}.{s}=="),
        format!("{}.{p}.{s}", h.replacen('J', "+", 1)),
        format!("{}.{p}.{s}", h.replacen('J', "/", 1)),
        format!("{h}.{p}.{}", s.replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1)),
        format!("{h}.{p}.{}", s.replacen(|c: char| c.is_ascii_alphanumeric(), "/", 1)),
        format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")),
    ] {
        if bad == token {
            continue;
        }
        assert_eq!(parse_err(&bad), Rejection::BadCharacters, "{bad}");
    }
    // Padded segments that were themselves signed: still refused by the alphabet check.
    let padded_payload = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE, good_payload() + " ");
    assert!(padded_payload.ends_with('='));
    let signed = mint_segments(&h, &padded_payload, &hs());
    assert_eq!(check_hs256(&signed), Err(Rejection::BadCharacters));
    // Standard-alphabet payload with '+' or '/', validly signed.
    let std_payload = base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, [0xfbu8, 0xff, 0xfe]);
    assert!(std_payload.contains('+') || std_payload.contains('/'));
    let signed = mint_segments(&h, &std_payload, &hs());
    assert_eq!(check_hs256(&signed), Err(Rejection::BadCharacters));
}

/// A non-canonical spelling: the last character carries non-zero unused bits.
fn non_canonical(segment: &str) -> String {
    assert!(!segment.len().is_multiple_of(4), "segment must have unused bits");
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = segment.as_bytes()[segment.len() - 1];
    let index = alphabet.iter().position(|&c| c == last).unwrap();
    let mut out = segment[..segment.len() - 1].to_owned();
    out.push(alphabet[index | 1] as char);
    assert_ne!(out, segment, "last symbol already had a unused bit set");
    out
}

fn len_with_unused_bits(payload_len: usize) -> bool {
    !payload_len.is_multiple_of(3)
}

// E1: non-canonical trailing bits in each segment, signed where the signature covers it.
#[test]
fn non_canonical_base64_is_bad_encoding() {
    // Header: {"alg":"HS256"} is 15 bytes → 20 chars, no unused bits; add a member to get some.
    let header = r#"{"alg":"HS256","x":12}"#;
    assert!(len_with_unused_bits(header.len()));
    let mut payload = good_payload();
    while !len_with_unused_bits(payload.len()) {
        payload = payload.replacen('{', "{ ", 1);
    }
    let token = mint_with_header(header, &payload, &hs());
    assert!(check_hs256(&token).is_ok());
    let (h, p, _) = segments(&token);

    let signed = mint_segments(&non_canonical(&h), &p, &hs());
    assert_eq!(check_hs256(&signed), Err(Rejection::BadEncoding("header")));

    let signed = mint_segments(&h, &non_canonical(&p), &hs());
    assert_eq!(check_hs256(&signed), Err(Rejection::BadEncoding("payload")));

    // HS256 signatures are 32 bytes → 43 chars with 2 unused bits.
    let (_, _, s) = segments(&token);
    assert_eq!(s.len(), 43);
    let bad_sig = format!("{h}.{p}.{}", non_canonical(&s));
    assert_eq!(check_hs256(&bad_sig), Err(Rejection::BadEncoding("signature")));
    // Impossible lengths (4n+1 characters) in the signature and the header.
    let five = format!("{h}.{p}.{s}AB");
    assert_eq!(s.len() % 4, 3);
    assert_eq!(check_hs256(&five), Err(Rejection::BadEncoding("signature")));
    let mut odd = h.clone();
    while odd.len() % 4 != 1 {
        odd.push('A');
    }
    let odd_header = format!("{odd}.{p}.{s}");
    assert_eq!(check_hs256(&odd_header), Err(Rejection::BadEncoding("header")));
}

// E2: whitespace and the Bearer prefix.
#[test]
fn whitespace_and_bearer_prefix_are_bad_characters() {
    let token = mint(&good_payload(), &hs());
    let (h, p, s) = segments(&token);
    for bad in [
        format!(" {token}"),
        format!("{token} "),
        format!("{token}\n"),
        format!("{token}\r\n"),
        format!("\t{token}"),
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("Bearer\t{token}"),
        format!("{h}. {p}.{s}"),
        format!("{h}.{p}.\n{s}"),
        format!("{h}\r\n.{p}.{s}"),
        format!("{}  {}.{p}.{s}", &h[..4], &h[4..]),
        format!("{token}\u{0}"),
        format!("{token}\u{a0}"),
        format!("{token}\u{200b}"),
        format!("\u{feff}{token}"),
        format!("\"{token}\""),
        format!("{h}.{p}.{s},{token}"),
    ] {
        assert_eq!(parse_err(&bad), Rejection::BadCharacters, "{bad:?}");
    }
}

// E3: exactly three segments.
#[test]
fn wrong_segment_counts() {
    let token = mint(&good_payload(), &hs());
    let (h, p, s) = segments(&token);
    assert_eq!(parse_err(&h), Rejection::Segments(1));
    assert_eq!(parse_err(&format!("{h}.{p}")), Rejection::Segments(2));
    assert_eq!(parse_err(&format!("{h}.{p}.{s}.")), Rejection::Segments(4));
    assert_eq!(parse_err(&format!("{h}.{p}.{s}.{s}")), Rejection::Segments(4));
    assert_eq!(parse_err(&format!(".{h}.{p}.{s}")), Rejection::Segments(4));
    assert_eq!(parse_err(&format!("{h}.{p}.{s}.{s}.{s}")), Rejection::Segments(5));
    assert_eq!(parse_err("."), Rejection::Segments(2));
    assert_eq!(parse_err("...."), Rejection::Segments(5));
    // Three segments, some empty.
    assert_eq!(parse_err(".."), Rejection::BadJson("header"));
    assert_eq!(parse_err(&format!(".{p}.{s}")), Rejection::BadJson("header"));
    // An empty payload is signed and so reaches the payload parser.
    let signed = mint_segments(&h, "", &hs());
    assert_eq!(check_hs256(&signed), Err(Rejection::BadJson("payload")));
}

// E6: the JSON serializations are not compact tokens.
#[test]
fn json_serializations_are_bad_characters() {
    let token = mint(&good_payload(), &hs());
    let (h, p, s) = segments(&token);
    let flattened = format!(r#"{{"payload":"{p}","protected":"{h}","signature":"{s}"}}"#);
    let general = format!(r#"{{"payload":"{p}","signatures":[{{"protected":"{h}","signature":"{s}"}}]}}"#);
    assert_eq!(parse_err(&flattened), Rejection::BadCharacters);
    assert_eq!(parse_err(&general), Rejection::BadCharacters);
}

// E7: duplicate claim names, plain and escaped, at any depth.
#[test]
fn duplicate_claim_names_are_refused() {
    let base = good_payload();
    let body = &base[1..base.len() - 1];
    for extra in [
        r#""role":"postgres""#,
        r#""sub":"victim""#,
        r#""aud":"api""#,
        r#""iss":"https://issuer.test""#,
        r#""\u0072ole":"postgres""#,
        r#""r\u006fle":"postgres""#,
        r#""\u0073\u0075\u0062":"victim""#,
    ] {
        let before = format!("{{{extra},{body}}}");
        let after = format!("{{{body},{extra}}}");
        assert_eq!(
            hs256_claims(&before, &policy(), NOW),
            Err(Rejection::DuplicateKey("payload")),
            "{before}"
        );
        assert_eq!(
            hs256_claims(&after, &policy(), NOW),
            Err(Rejection::DuplicateKey("payload")),
            "{after}"
        );
    }
    let nested = format!(r#"{{{body},"app":{{"tenant":"a","tenant":"b"}}}}"#);
    assert_eq!(
        hs256_claims(&nested, &policy(), NOW),
        Err(Rejection::DuplicateKey("payload"))
    );
    let in_array = format!(r#"{{{body},"list":[{{"a":1}},{{"b":1,"b":2}}]}}"#);
    assert_eq!(
        hs256_claims(&in_array, &policy(), NOW),
        Err(Rejection::DuplicateKey("payload"))
    );
    // Same value twice is still a duplicate.
    let same = format!(r#"{{{body},"role":"app_user"}}"#);
    assert_eq!(
        hs256_claims(&same, &policy(), NOW),
        Err(Rejection::DuplicateKey("payload"))
    );
    // Different names that only look alike are not duplicates.
    let alike = format!(r#"{{{body},"Role":"x","role ":"y"}}"#);
    assert!(hs256_claims(&alike, &policy(), NOW).is_ok());
}

// E13: the payload must be a JSON object.
#[test]
fn payload_not_an_object() {
    let exp = NOW + 600;
    for payload in [
        "[]".to_owned(),
        format!("[{exp},null,null,null,null]"),
        format!(r#"["https://issuer.test","api",{exp}]"#),
        r#""x""#.to_owned(),
        "1".to_owned(),
        exp.to_string(),
        "null".to_owned(),
        "true".to_owned(),
    ] {
        assert_eq!(
            hs256_claims(&payload, &policy(), NOW),
            Err(Rejection::NotAnObject("payload")),
            "{payload}"
        );
    }
}

// E9 and other JSON that is not one valid UTF-8 document.
#[test]
fn invalid_payload_json() {
    let body = good_payload();
    let inner = &body[1..body.len() - 1];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "invalid UTF-8 in a string",
            format!(r#"{{{inner},"x":"#)
                .into_bytes()
                .into_iter()
                .chain(*b"\"\xff\"}")
                .collect(),
        ),
        (
            "overlong slash",
            format!(r#"{{{inner},"x":"#)
                .into_bytes()
                .into_iter()
                .chain(*b"\"\xc0\xaf\"}")
                .collect(),
        ),
        ("lone surrogate", format!(r#"{{{inner},"x":"\ud800"}}"#).into_bytes()),
        (
            "lone low surrogate",
            format!(r#"{{{inner},"x":"\udc00"}}"#).into_bytes(),
        ),
        ("BOM", [b"\xef\xbb\xbf".as_slice(), body.as_bytes()].concat()),
        ("trailing garbage", format!("{body} x").into_bytes()),
        ("two documents", format!("{body}{body}").into_bytes()),
        ("trailing comma", format!("{{{inner},}}").into_bytes()),
        ("single quotes", b"{'exp':1}".to_vec()),
        (
            "raw NUL in a string",
            format!(r#"{{{inner},"x":"a"#)
                .into_bytes()
                .into_iter()
                .chain(*b"\0\"}")
                .collect(),
        ),
        (
            "raw newline in a string",
            format!("{{{inner},\"x\":\"a\nb\"}}").into_bytes(),
        ),
        ("comment", format!("{{{inner}}} // c").into_bytes()),
        ("NaN", format!(r#"{{{inner},"x":NaN}}"#).into_bytes()),
        ("empty", vec![]),
        ("whitespace only", b"   ".to_vec()),
    ];
    let key = hs();
    for (what, payload) in cases {
        let token = mint_raw(br#"{"alg":"HS256"}"#, &payload, &key);
        assert_eq!(check_hs256(&token), Err(Rejection::BadJson("payload")), "{what}");
    }
    // Surrounding whitespace is valid JSON and accepted.
    let token = mint_raw(br#"{"alg":"HS256"}"#, format!(" \r\n{body}\n ").as_bytes(), &key);
    assert!(check_hs256(&token).is_ok());
}

// E11: deep nesting is refused by the parser's recursion limit, never a stack overflow.
#[test]
fn deep_nesting_is_bad_json_not_a_crash() {
    let body = good_payload();
    let inner = &body[1..body.len() - 1];
    let policy = jwt_guard_core::Policy {
        max_token_bytes: 1 << 20,
        ..policy()
    };
    for depth in [200usize, 10_000, 100_000] {
        for (open, close) in [("[", "]"), (r#"{"a":"#, "}")] {
            let payload = format!(r#"{{{inner},"x":{}1{}}}"#, open.repeat(depth), close.repeat(depth));
            let token = mint(&payload, &hs());
            let result = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn({
                    let policy = policy.clone();
                    move || check(&token, &key_for(Algorithm::HS256).verifying(), &policy, NOW)
                })
                .unwrap()
                .join()
                .expect("no stack overflow");
            assert_eq!(result, Err(Rejection::BadJson("payload")), "depth {depth} {open}");
        }
    }
    // Nesting up to the cap is ordinary JSON; beyond it (but within serde_json's own limit)
    // the token is refused, so every accepted identity can be stored and read back.
    let max = jwt_guard_core::json::MAX_DEPTH;
    let payload = format!(r#"{{{inner},"x":{}1{}}}"#, "[".repeat(max - 1), "]".repeat(max - 1));
    assert!(hs256_claims(&payload, &policy, NOW).is_ok());
    for depth in [max, 100] {
        let payload = format!(r#"{{{inner},"x":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        assert_eq!(
            hs256_claims(&payload, &policy, NOW).map(|_| ()),
            Err(Rejection::TooDeep { part: "payload", max }),
            "depth {depth}"
        );
    }
}

// E14: big values in unused claims are parsed (the size cap bounds them).
#[test]
fn big_unused_values_within_the_cap_are_fine() {
    let body = good_payload();
    let inner = &body[1..body.len() - 1];
    let payload = format!(
        r#"{{{inner},"n":1e308,"m":-1e308,"i":123456789012345678901234567890,"s":"{}"}}"#,
        "x".repeat(4000)
    );
    let id = hs256_claims(&payload, &policy(), NOW).unwrap();
    assert!(id.claims["n"].is_f64());
}

// Non-ASCII anywhere in the token text is outside the alphabet.
#[test]
fn non_ascii_token_text_is_bad_characters() {
    let token = mint(&good_payload(), &hs());
    for c in ['é', 'А', '\u{ff0e}', '\u{2024}', '＿'] {
        let bad = replace_at(&token, 5, c);
        assert_eq!(parse_err(&bad), Rejection::BadCharacters, "{c}");
    }
}
