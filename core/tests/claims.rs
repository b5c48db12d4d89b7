//! Registered and identity claims with an injected clock (docs/threat-model.md §1.5 item 3; §2.2 T1–T13, T15, T16).
//! Every token here carries a valid HS256 signature, so only the claim rules can refuse it.

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use jwt_guard_core::{Policy, Rejection};
use serde_json::{json, Value};

fn with(name: &str, value: Value) -> Result<jwt_guard_core::Identity, Rejection> {
    hs256_claims(&claims_with(name, Some(value)), &policy(), NOW)
}

fn without(name: &str) -> Result<jwt_guard_core::Identity, Rejection> {
    hs256_claims(&claims_with(name, None), &policy(), NOW)
}

/// Claims text with exactly these time members (others from `good_claims`, time members removed).
fn times(members: &[(&str, &str)]) -> String {
    let mut claims = good_claims();
    let map = claims.as_object_mut().unwrap();
    map.remove("exp");
    map.remove("iat");
    let mut text = claims.to_string();
    text.pop();
    for (name, raw) in members {
        text.push_str(&format!(r#","{name}":{raw}"#));
    }
    text.push('}');
    text
}

fn at(members: &[(&str, &str)], now: i64) -> Result<jwt_guard_core::Identity, Rejection> {
    hs256_claims(&times(members), &policy(), now)
}

fn bad_type(name: &str) -> Result<jwt_guard_core::Identity, Rejection> {
    Err(Rejection::BadClaimType(name.into()))
}

#[test]
fn good_claims_pass() {
    let id = hs256_claims(&good_payload(), &policy(), NOW).unwrap();
    assert_eq!(id.exp, NOW + 600);
    assert_eq!(id.sub.as_deref(), Some("user-1"));
}

// T1
#[test]
fn expired_token() {
    let exp = NOW - 3600;
    assert_eq!(
        at(&[("exp", &exp.to_string())], NOW),
        Err(Rejection::Expired { exp, now: NOW })
    );
}

// T2, T16: the leeway boundary on exp (default leeway 30 s).
#[test]
fn exp_leeway_boundary() {
    let leeway = policy().leeway as i64;
    assert_eq!(leeway, 30);
    for exp in [NOW, NOW - 1, NOW - leeway] {
        assert!(
            at(&[("exp", &exp.to_string())], NOW).is_ok(),
            "exp = now - {}",
            NOW - exp
        );
    }
    let exp = NOW - leeway - 1;
    assert_eq!(
        at(&[("exp", &exp.to_string())], NOW),
        Err(Rejection::Expired { exp, now: NOW })
    );
    // The same boundary seen by moving the clock.
    let exp = NOW + 600;
    assert!(at(&[("exp", &exp.to_string())], exp + leeway).is_ok());
    assert_eq!(
        at(&[("exp", &exp.to_string())], exp + leeway + 1),
        Err(Rejection::Expired {
            exp,
            now: exp + leeway + 1
        })
    );
}

// T16 with no leeway: a token is valid up to and including its exp second (as jsonwebtoken does).
#[test]
fn exp_boundary_without_leeway() {
    let strict = Policy { leeway: 0, ..policy() };
    let exp = NOW + 60;
    let token = times(&[("exp", &exp.to_string())]);
    assert!(hs256_claims(&token, &strict, exp - 1).is_ok());
    assert!(hs256_claims(&token, &strict, exp).is_ok());
    assert_eq!(
        hs256_claims(&token, &strict, exp + 1),
        Err(Rejection::Expired { exp, now: exp + 1 })
    );
}

// T3, T16: nbf in the future, and its leeway boundary.
#[test]
fn nbf_boundaries() {
    let exp = (NOW + 600).to_string();
    let leeway = policy().leeway as i64;
    assert_eq!(
        at(&[("exp", &exp), ("nbf", &(NOW + 86_400).to_string())], NOW),
        Err(Rejection::NotYetValid { nbf: NOW + 86_400 })
    );
    for nbf in [NOW - 1000, NOW, NOW + leeway] {
        assert!(
            at(&[("exp", &exp), ("nbf", &nbf.to_string())], NOW).is_ok(),
            "nbf = now + {}",
            nbf - NOW
        );
    }
    let nbf = NOW + leeway + 1;
    assert_eq!(
        at(&[("exp", &exp), ("nbf", &nbf.to_string())], NOW),
        Err(Rejection::NotYetValid { nbf })
    );
    // Seen from the clock: valid from nbf - leeway on.
    let nbf = NOW;
    assert!(at(&[("exp", &exp), ("nbf", &nbf.to_string())], nbf - leeway).is_ok());
    assert_eq!(
        at(&[("exp", &exp), ("nbf", &nbf.to_string())], nbf - leeway - 1),
        Err(Rejection::NotYetValid { nbf })
    );
}

// T4: iat in the future.
#[test]
fn iat_in_the_future() {
    let exp = (NOW + 600).to_string();
    let ten_years = NOW + 10 * 365 * 86_400;
    assert_eq!(
        at(&[("exp", &exp), ("iat", &ten_years.to_string())], NOW),
        Err(Rejection::IssuedInFuture { iat: ten_years })
    );
    assert!(at(&[("exp", &exp), ("iat", &(NOW + 30).to_string())], NOW).is_ok());
    assert_eq!(
        at(&[("exp", &exp), ("iat", &(NOW + 31).to_string())], NOW),
        Err(Rejection::IssuedInFuture { iat: NOW + 31 })
    );
}

// T5
#[test]
fn missing_exp() {
    assert_eq!(at(&[], NOW), Err(Rejection::MissingClaim("exp")));
    assert_eq!(
        at(&[("iat", &NOW.to_string()), ("nbf", &NOW.to_string())], NOW),
        Err(Rejection::MissingClaim("exp"))
    );
}

// Maximum lifetime, measured from iat and from now.
#[test]
fn max_lifetime_via_iat() {
    let max = policy().max_lifetime as i64;
    assert_eq!(max, 3600);
    let iat = NOW - 100;
    let ok = at(&[("iat", &iat.to_string()), ("exp", &(iat + max).to_string())], NOW);
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(
        at(&[("iat", &iat.to_string()), ("exp", &(iat + max + 1).to_string())], NOW),
        Err(Rejection::LifetimeTooLong {
            seconds: max + 1,
            max: 3600,
            from_profile: false
        })
    );
    // A long-lived token that is about to expire is still too long-lived.
    let iat = NOW - 86_400;
    assert_eq!(
        at(&[("iat", &iat.to_string()), ("exp", &(NOW + 10).to_string())], NOW),
        Err(Rejection::LifetimeTooLong {
            seconds: 86_410,
            max: 3600,
            from_profile: false
        })
    );
}

// A refusal names the limit that applied: the setting, or the issuer profile's own value.
#[test]
fn refusals_name_the_profile_limit_that_applied() {
    let profile = jwt_guard_core::IssuerProfile {
        issuer: ISSUER.into(),
        audience: Some(vec!["billing-api".into()]),
        max_lifetime: Some(300),
        ..Default::default()
    };
    let profiled = policy().with_profile(&profile);
    let long = times(&[("iat", &NOW.to_string()), ("exp", &(NOW + 600).to_string())]);
    let refusal = hs256_claims(&long, &profiled, NOW).unwrap_err().to_string();
    assert!(
        refusal.ends_with("exceeds the max_lifetime of the issuer's profile (300 s)"),
        "{refusal}"
    );
    let longer = times(&[("iat", &NOW.to_string()), ("exp", &(NOW + 7200).to_string())]);
    let refusal = hs256_claims(&longer, &policy(), NOW).unwrap_err().to_string();
    assert!(refusal.contains("pg_jwt_guard.max_lifetime"), "{refusal}");
    let audience_only = jwt_guard_core::IssuerProfile {
        max_lifetime: None,
        ..profile
    };
    let refusal = hs256_claims(&good_payload(), &policy().with_profile(&audience_only), NOW)
        .unwrap_err()
        .to_string();
    assert!(
        refusal.contains("does not include the audience of the issuer's profile (accepted: \"billing-api\")"),
        "{refusal}"
    );
    let refusal = with("aud", json!("billing-api")).unwrap_err().to_string();
    assert!(refusal.contains("does not include pg_jwt_guard.audience"), "{refusal}");
}

#[test]
fn max_lifetime_via_exp_minus_now() {
    let max = policy().max_lifetime as i64;
    let leeway = policy().leeway as i64;
    assert!(at(&[("exp", &(NOW + max + leeway).to_string())], NOW).is_ok());
    assert_eq!(
        at(&[("exp", &(NOW + max + leeway + 1).to_string())], NOW),
        Err(Rejection::LifetimeTooLong {
            seconds: max + leeway + 1,
            max: 3600,
            from_profile: false
        })
    );
    // Far-future exp: an iat that would make exp - iat fit is itself in the future.
    let exp = NOW + 10 * 86_400;
    assert_eq!(
        at(&[("iat", &(exp - 100).to_string()), ("exp", &exp.to_string())], NOW),
        Err(Rejection::IssuedInFuture { iat: exp - 100 })
    );
    assert_eq!(
        at(&[("exp", &exp.to_string())], NOW),
        Err(Rejection::LifetimeTooLong {
            seconds: 10 * 86_400,
            max: 3600,
            from_profile: false
        })
    );
}

#[test]
fn a_longer_configured_lifetime_is_honoured() {
    let day = Policy {
        max_lifetime: 86_400,
        ..policy()
    };
    let token = times(&[("iat", &NOW.to_string()), ("exp", &(NOW + 86_400).to_string())]);
    assert!(hs256_claims(&token, &day, NOW).is_ok());
    assert!(matches!(
        hs256_claims(&token, &policy(), NOW),
        Err(Rejection::LifetimeTooLong { .. })
    ));
}

// T6: exp, nbf and iat of the wrong JSON type (CVE-2026-25537 class).
#[test]
fn time_claims_of_the_wrong_type() {
    let wrong = [
        r#""9999999999""#,
        r#""never""#,
        r#""""#,
        "true",
        "false",
        "null",
        "{}",
        r#"{"$date":1800000600}"#,
        "[]",
        "[1800000600]",
    ];
    let exp = (NOW + 600).to_string();
    for raw in wrong {
        assert_eq!(at(&[("exp", raw)], NOW), bad_type("exp"), "exp = {raw}");
        assert_eq!(at(&[("exp", &exp), ("nbf", raw)], NOW), bad_type("nbf"), "nbf = {raw}");
        assert_eq!(at(&[("exp", &exp), ("iat", raw)], NOW), bad_type("iat"), "iat = {raw}");
    }
}

// T7: only non-negative JSON integers are NumericDates here.
#[test]
fn time_claims_must_be_non_negative_integers() {
    let now_plus_float = format!("{}.4", NOW + 60);
    let floats = [
        "1.7e9",
        "1800000600.0",
        now_plus_float.as_str(),
        "1e19",
        "1e20",
        "-0",
        "-0.0",
        "18446744073709551616",
        "1.7e308",
    ];
    for raw in floats {
        assert_eq!(at(&[("exp", raw)], NOW), bad_type("exp"), "exp = {raw}");
        assert_eq!(
            at(&[("exp", "1800000600"), ("nbf", raw)], NOW),
            bad_type("nbf"),
            "nbf = {raw}"
        );
        assert_eq!(
            at(&[("exp", "1800000600"), ("iat", raw)], NOW),
            bad_type("iat"),
            "iat = {raw}"
        );
    }
    for raw in ["-1", "-1800000600", "-9223372036854775808"] {
        assert_eq!(at(&[("exp", raw)], NOW), bad_type("exp"), "exp = {raw}");
        assert_eq!(
            at(&[("exp", "1800000600"), ("nbf", raw)], NOW),
            bad_type("nbf"),
            "nbf = {raw}"
        );
        assert_eq!(
            at(&[("exp", "1800000600"), ("iat", raw)], NOW),
            bad_type("iat"),
            "iat = {raw}"
        );
    }
    // Not representable as a finite double: the JSON itself is refused.
    assert_eq!(at(&[("exp", "1e400")], NOW), Err(Rejection::BadJson("payload")));
}

// T7: huge integers never mean "never expires".
#[test]
fn huge_exp_is_too_long_not_eternal() {
    for raw in [
        "18446744073709551615",
        "9223372036854775807",
        "9223372036854775808",
        "9007199254740993",
        "99999999999",
    ] {
        assert!(
            matches!(
                at(&[("exp", raw)], NOW),
                Err(Rejection::LifetimeTooLong { max: 3600, .. })
            ),
            "exp = {raw}: {:?}",
            at(&[("exp", raw)], NOW)
        );
    }
    assert_eq!(
        at(&[("exp", "18446744073709551615")], NOW),
        Err(Rejection::LifetimeTooLong {
            seconds: i64::MAX - NOW,
            max: 3600,
            from_profile: false
        })
    );
    // Huge nbf and iat are refused as being in the future, not wrapped around.
    let exp = (NOW + 600).to_string();
    assert_eq!(
        at(&[("exp", &exp), ("nbf", "18446744073709551615")], NOW),
        Err(Rejection::NotYetValid { nbf: i64::MAX })
    );
    assert_eq!(
        at(&[("exp", &exp), ("iat", "18446744073709551615")], NOW),
        Err(Rejection::IssuedInFuture { iat: i64::MAX })
    );
    // Their messages format extreme dates without overflowing.
    for err in [
        Rejection::NotYetValid { nbf: i64::MAX },
        Rejection::IssuedInFuture { iat: i64::MAX },
        Rejection::LifetimeTooLong {
            seconds: i64::MAX,
            max: u64::MAX,
            from_profile: false,
        },
        Rejection::Expired { exp: 0, now: i64::MAX },
    ] {
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn zero_exp_is_expired() {
    assert_eq!(at(&[("exp", "0")], NOW), Err(Rejection::Expired { exp: 0, now: NOW }));
}

// T8
#[test]
fn duplicate_exp_is_a_duplicate_key() {
    let text = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":1,"exp":{}}}"#, NOW + 600);
    assert_eq!(
        hs256_claims(&text, &policy(), NOW),
        Err(Rejection::DuplicateKey("payload"))
    );
}

// T9
#[test]
fn missing_aud_when_an_audience_is_configured() {
    assert_eq!(without("aud"), Err(Rejection::MissingClaim("aud")));
}

// T10
#[test]
fn aud_string_or_array_containing_the_audience() {
    assert!(with("aud", json!("api")).is_ok());
    assert!(with("aud", json!(["api"])).is_ok());
    assert!(with("aud", json!(["other", "api"])).is_ok());
    let two = Policy {
        audience: vec!["db".into(), "api".into()],
        ..policy()
    };
    assert!(hs256_claims(&claims_with("aud", Some(json!("db"))), &two, NOW).is_ok());
    assert!(hs256_claims(&claims_with("aud", Some(json!(["x", "api"]))), &two, NOW).is_ok());
}

// T11, T15
#[test]
fn aud_wrong_type_or_value() {
    for aud in [
        json!(123),
        json!(null),
        json!({}),
        json!({"api": true}),
        json!(["api", 1]),
        json!([null]),
        json!(true),
        json!([["api"]]),
    ] {
        assert_eq!(with("aud", aud.clone()), bad_type("aud"), "{aud}");
    }
    for aud in [
        json!(""),
        json!([]),
        json!("API"),
        json!("api/"),
        json!(" api"),
        json!(["other"]),
        json!("https://other.service"),
    ] {
        assert!(
            matches!(with("aud", aud.clone()), Err(Rejection::AudienceNotAccepted { .. })),
            "{aud}"
        );
    }
}

// Audience not configured: any aud is refused (jsonwebtoken ≥ 9 behaviour, kept on purpose).
#[test]
fn aud_present_without_configured_audience() {
    let no_aud = Policy {
        audience: vec![],
        ..policy()
    };
    for aud in [json!("api"), json!(["api"]), json!([]), json!("")] {
        assert_eq!(
            hs256_claims(&claims_with("aud", Some(aud.clone())), &no_aud, NOW),
            Err(Rejection::AudienceUnexpected),
            "{aud}"
        );
    }
    // The type check still comes first.
    assert_eq!(
        hs256_claims(&claims_with("aud", Some(json!(5))), &no_aud, NOW),
        bad_type("aud")
    );
    assert!(hs256_claims(&claims_with("aud", None), &no_aud, NOW).is_ok());
}

// T12: exact, single-string issuer.
#[test]
fn issuer_rules() {
    assert_eq!(without("iss"), Err(Rejection::MissingClaim("iss")));
    for iss in [
        json!(["https://evil.test", ISSUER]),
        json!([ISSUER]),
        json!(42),
        json!(null),
        json!({"iss": ISSUER}),
        json!(true),
    ] {
        assert_eq!(with("iss", iss.clone()), bad_type("iss"), "{iss}");
    }
    for iss in [
        "https://issuer.test/",
        "http://issuer.test",
        "https://ISSUER.test",
        "HTTPS://issuer.test",
        "https://issuer.test ",
        "https://issuer.test.evil",
        "",
        "https://evil.test",
    ] {
        assert!(
            matches!(with("iss", json!(iss)), Err(Rejection::IssuerNotAccepted { .. })),
            "{iss}"
        );
    }
    // An escaped spelling of the right issuer is the right issuer.
    let text = good_payload().replace(r#""iss":"https://issuer.test""#, r#""iss":"https:\/\/issuer.test""#);
    assert!(text.contains(r#"\/"#));
    assert!(hs256_claims(&text, &policy(), NOW).is_ok());
}

#[test]
fn no_issuer_anywhere_refuses_every_token() {
    let none = Policy {
        issuers: vec![],
        ..policy()
    };
    assert_eq!(
        hs256_claims(&good_payload(), &none, NOW),
        Err(Rejection::NoIssuerConfigured)
    );
    assert_eq!(
        hs256_claims(&claims_with("iss", None), &none, NOW),
        Err(Rejection::NoIssuerConfigured)
    );
}

#[test]
fn key_issuer_and_policy_issuers_must_both_accept() {
    let hs = key_for(Algorithm::HS256);
    let token = mint(&good_payload(), &hs);
    let other = mint(&claims_with("iss", Some(json!("https://other.test"))), &hs);
    // Key issuer alone.
    let only_key = Policy {
        issuers: vec![],
        ..policy()
    };
    assert!(check(&token, &hs.verifying_with_issuer(ISSUER), &only_key, NOW).is_ok());
    assert!(matches!(
        check(&other, &hs.verifying_with_issuer(ISSUER), &only_key, NOW),
        Err(Rejection::IssuerNotAccepted { .. })
    ));
    // Both: the token must satisfy both.
    let both = Policy {
        issuers: vec![ISSUER.into(), "https://other.test".into()],
        ..policy()
    };
    assert!(check(&token, &hs.verifying_with_issuer(ISSUER), &both, NOW).is_ok());
    assert!(matches!(
        check(&other, &hs.verifying_with_issuer(ISSUER), &both, NOW),
        Err(Rejection::IssuerNotAccepted { .. })
    ));
    assert!(check(&other, &hs.verifying(), &both, NOW).is_ok());
    // A key bound to an issuer the policy does not list accepts nothing.
    let elsewhere = Policy {
        issuers: vec!["https://other.test".into()],
        ..policy()
    };
    assert!(matches!(
        check(&token, &hs.verifying_with_issuer(ISSUER), &elsewhere, NOW),
        Err(Rejection::IssuerNotAccepted { .. })
    ));
    // A token of neither names the key's issuer, the first thing that is wrong.
    let stranger = mint(&claims_with("iss", Some(json!("https://stranger.test"))), &hs);
    match check(&stranger, &hs.verifying_with_issuer(ISSUER), &elsewhere, NOW) {
        Err(Rejection::IssuerNotAccepted { accepted, .. }) => assert_eq!(accepted, vec![ISSUER.to_owned()]),
        other => panic!("{other:?}"),
    }
}

// T13 and friends: identity claims are strings or absent.
#[test]
fn sub_and_jti_must_be_strings() {
    for v in [json!(1), json!(null), json!(["u"]), json!({}), json!(true)] {
        assert_eq!(with("sub", v.clone()), bad_type("sub"), "{v}");
        assert_eq!(with("jti", v.clone()), bad_type("jti"), "{v}");
    }
    let id = with("jti", json!("j-1")).unwrap();
    assert_eq!(id.jti.as_deref(), Some("j-1"));
    let id = without("sub").unwrap();
    assert_eq!(id.sub, None);
    assert_eq!(id.jti, None);
}

// RC8, RC10 at the claim level: the role claim is a non-empty string, a non-empty array of
// non-empty strings, or absent.
#[test]
fn role_claim_type() {
    for v in [
        json!(""),
        json!(1),
        json!(null),
        json!([]),
        json!(["app_user", ""]),
        json!(["app_user", 1]),
        json!([["app_user"]]),
        json!({"name": "app_user"}),
        json!(true),
    ] {
        assert_eq!(with("role", v.clone()), bad_type("role"), "{v}");
    }
    assert_eq!(without("role").unwrap().role_claim, None);
    assert_eq!(
        with("role", json!("app_user"))
            .unwrap()
            .role_claim
            .as_ref()
            .and_then(|r| r.single()),
        Some("app_user")
    );
    assert_eq!(
        with("role", json!(["offline_access", "app_user"])).unwrap().role_claim,
        Some(jwt_guard_core::RoleClaim::Many(vec![
            "offline_access".into(),
            "app_user".into()
        ]))
    );
}

#[test]
fn role_claim_name_and_pointer_are_configurable() {
    let custom = Policy {
        role_claim: "db_role".into(),
        ..policy()
    };
    let text = claims_with("db_role", Some(json!("reader")));
    let id = hs256_claims(&text, &custom, NOW).unwrap();
    assert_eq!(id.role_claim.as_ref().and_then(|r| r.single()), Some("reader"));
    let pointer = Policy {
        role_claim: "/app_metadata/role".into(),
        ..policy()
    };
    let text = claims_with("app_metadata", Some(json!({"role": "writer"})));
    assert_eq!(
        hs256_claims(&text, &pointer, NOW)
            .unwrap()
            .role_claim
            .as_ref()
            .and_then(|r| r.single()),
        Some("writer")
    );
    let text = claims_with("app_metadata", Some(json!({"role": 7})));
    assert_eq!(hs256_claims(&text, &pointer, NOW), bad_type("/app_metadata/role"));
    let text = claims_with("app_metadata", Some(json!({"other": 1})));
    assert_eq!(hs256_claims(&text, &pointer, NOW).unwrap().role_claim, None);
    // "~1" in a pointer is "/" in the member name.
    let slashed = Policy {
        role_claim: "/https:~1~1example.com~1role".into(),
        ..policy()
    };
    let text = claims_with("https://example.com/role", Some(json!("scoped")));
    assert_eq!(
        hs256_claims(&text, &slashed, NOW)
            .unwrap()
            .role_claim
            .as_ref()
            .and_then(|r| r.single()),
        Some("scoped")
    );
}

/// A pointer that runs through a value that cannot hold its next step is the wrong shape, not
/// an absent claim: no fallback to the default role or to no tenant.
#[test]
fn a_pointer_through_the_wrong_shape_is_refused() {
    let pointer = |role: &str, tenant: &str| Policy {
        role_claim: role.into(),
        tenant_claim: tenant.into(),
        ..policy()
    };
    let roles = pointer("/realm_access/roles", "tenant_id");
    for blocked in [json!(["orders-user"]), json!("x"), json!(7), json!(true), json!(null)] {
        let text = claims_with("realm_access", Some(blocked.clone()));
        assert_eq!(
            hs256_claims(&text, &roles, NOW),
            bad_type("/realm_access/roles"),
            "{blocked}"
        );
    }
    let tenant = pointer("role", "/firebase/tenant");
    let text = claims_with("firebase", Some(json!("x")));
    assert_eq!(hs256_claims(&text, &tenant, NOW), bad_type("/firebase/tenant"));
    // Absent stays absent: a missing member, or an index past the end of an array.
    let text = claims_with("realm_access", Some(json!({"other": 1})));
    assert_eq!(hs256_claims(&text, &roles, NOW).unwrap().role_claim, None);
    let second = pointer("/groups/1", "tenant_id");
    let text = claims_with("groups", Some(json!(["only"])));
    assert_eq!(hs256_claims(&text, &second, NOW).unwrap().role_claim, None);
    let text = claims_with("groups", Some(json!(["a", "b"])));
    assert_eq!(
        hs256_claims(&text, &second, NOW)
            .unwrap()
            .role_claim
            .as_ref()
            .and_then(|r| r.single()),
        Some("b")
    );
    // Array steps must be RFC 6901 indexes: "01" and "-" are not.
    for step in ["01", "-", "x"] {
        let policy = pointer(&format!("/groups/{step}"), "tenant_id");
        assert_eq!(
            hs256_claims(&text, &policy, NOW),
            bad_type(&format!("/groups/{step}")),
            "{step}"
        );
    }
}

#[test]
fn tenant_claim() {
    assert_eq!(with("tenant_id", json!("t-1")).unwrap().tenant.as_deref(), Some("t-1"));
    assert_eq!(with("tenant_id", json!("42")).unwrap().tenant.as_deref(), Some("42"));
    assert_eq!(without("tenant_id").unwrap().tenant, None);
    // Strings only: the number 42 must not name the tenant "42".
    for v in [
        json!(42),
        json!(u64::MAX),
        json!(1.5),
        json!(null),
        json!(true),
        json!(["t"]),
        json!({"id": "t"}),
    ] {
        assert_eq!(with("tenant_id", v.clone()), bad_type("tenant_id"), "{v}");
    }
}

#[test]
fn scopes() {
    let id = with("scope", json!("read  write admin:x")).unwrap();
    assert_eq!(id.scopes, vec!["read", "write", "admin:x"]);
    assert!(id.has_scope("write"));
    assert!(!id.has_scope("WRITE"));
    assert!(!id.has_scope("rea"));
    let id = with("scp", json!(["a", "b c"])).unwrap();
    assert_eq!(id.scopes, vec!["a", "b c"]);
    assert_eq!(with("scp", json!("x y")).unwrap().scopes, vec!["x", "y"]);
    for v in [json!(1), json!(["a", 1]), json!(null), json!({})] {
        assert_eq!(with("scp", v.clone()), bad_type("scp"), "scp {v}");
    }
    for v in [json!(1), json!(["a"]), json!(null)] {
        assert_eq!(with("scope", v.clone()), bad_type("scope"), "scope {v}");
    }
}

#[test]
fn claim_accessors() {
    let text = claims_with(
        "app",
        Some(json!({"org": {"id": 7}, "list": [1, "two"], "a/b": "slash", "t~": "tilde"})),
    );
    let id = hs256_claims(&text, &policy(), NOW).unwrap();
    assert_eq!(id.claim("sub"), Some(&json!("user-1")));
    assert_eq!(id.claim_text("sub").as_deref(), Some("user-1"));
    assert_eq!(id.claim_text("exp").as_deref(), Some((NOW + 600).to_string().as_str()));
    assert_eq!(id.claim_text("/app/org/id").as_deref(), Some("7"));
    assert_eq!(id.claim_text("/app/list/1").as_deref(), Some("two"));
    assert_eq!(id.claim_text("/app/a~1b").as_deref(), Some("slash"));
    assert_eq!(id.claim_text("/app/t~0").as_deref(), Some("tilde"));
    assert_eq!(id.claim_text("/app/org").as_deref(), Some(r#"{"id":7}"#));
    assert_eq!(id.claim("/app/missing"), None);
    assert_eq!(id.claim("missing"), None);
    assert_eq!(id.claim("/"), None);
    let id = with("nothing", json!(null)).unwrap();
    assert_eq!(id.claim("nothing"), Some(&Value::Null));
    assert_eq!(id.claim_text("nothing"), None);
}

// E8: claim names match exactly.
#[test]
fn claim_names_are_exact() {
    let text = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"Role":"admin","ROLE":"admin","role ":"admin","rоle":"admin","role":"user"}}"#,
        NOW + 60
    );
    assert_eq!(
        hs256_claims(&text, &policy(), NOW)
            .unwrap()
            .role_claim
            .as_ref()
            .and_then(|r| r.single()),
        Some("user")
    );
    let text = format!(
        r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","exp":{},"Role":"admin"}}"#,
        NOW + 60
    );
    assert_eq!(hs256_claims(&text, &policy(), NOW).unwrap().role_claim, None);
    // Same for the registered claims: "EXP" is not "exp".
    let text = format!(r#"{{"iss":"{ISSUER}","aud":"{AUDIENCE}","EXP":{}}}"#, NOW + 60);
    assert_eq!(hs256_claims(&text, &policy(), NOW), Err(Rejection::MissingClaim("exp")));
    let text = format!(r#"{{"ISS":"{ISSUER}","aud":"{AUDIENCE}","exp":{}}}"#, NOW + 60);
    assert_eq!(hs256_claims(&text, &policy(), NOW), Err(Rejection::MissingClaim("iss")));
}

// E10: NUL anywhere in the claims.
#[test]
fn nul_in_any_string_is_refused() {
    for (name, value) in [
        ("role", json!("app_user\u{0}postgres")),
        ("sub", json!("\u{0}")),
        ("custom", json!(["ok", "x\u{0}"])),
        ("custom", json!({"deep": {"deeper": "\u{0}"}})),
        ("custom", json!({"k\u{0}": 1})),
    ] {
        assert_eq!(with(name, value.clone()), Err(Rejection::NulInString), "{name} {value}");
    }
    let text = good_payload().replacen('{', "{\"a\\u0000\":1,", 1);
    assert_eq!(hs256_claims(&text, &policy(), NOW), Err(Rejection::NulInString));
}

// E15: escapes are decoded before any comparison.
#[test]
fn unicode_escapes_decode_to_the_real_name() {
    let text = good_payload().replace(r#""role":"app_user""#, r#""\u0072ole":"\u0070ostgres""#);
    let id = hs256_claims(&text, &policy(), NOW).unwrap();
    assert_eq!(id.role_claim.as_ref().and_then(|r| r.single()), Some("postgres"));
    let allowed = vec!["app_user".to_owned()];
    assert!(jwt_guard_core::roles::choose(id.role_claim.as_ref(), None, None, &allowed).is_err());
}

// Rejection messages never contain the token, nor claim values other than the public names iss
// and aud (brief: "never echoing the token").
#[test]
fn rejection_messages_do_not_echo_claims() {
    let secret_marker = "S3CR3T-MARKER";
    for name in ["sub", "jti", "scope", "tenant_id", "exp", "role"] {
        let err = with(name, json!({ "x": secret_marker })).unwrap_err();
        assert!(!err.to_string().contains(secret_marker), "{name}: {err}");
    }
}

// Refusals of iss and aud name what the token carried and what is accepted (public names).
#[test]
fn issuer_and_audience_refusals_name_the_values() {
    let iss = with("iss", json!("https://evil.test")).unwrap_err().to_string();
    assert!(
        iss.contains("\"https://evil.test\"") && iss.contains(&format!("\"{ISSUER}\"")),
        "{iss}"
    );
    let aud = with("aud", json!(["billing-api", "x"])).unwrap_err().to_string();
    assert!(
        aud.contains("\"billing-api\", \"x\"") && aud.contains(&format!("\"{AUDIENCE}\"")),
        "{aud}"
    );
}

// A cached identity is checked again on every use: exp, nbf and the lifetime rules apply to
// the values verified, at the new time and under the current policy.
#[test]
fn a_verified_identity_is_rechecked_against_a_later_clock() {
    let members = [("exp", "1800000600"), ("nbf", "1800000000"), ("iat", "1800000000")];
    let id = at(&members, NOW).unwrap();
    assert_eq!((id.exp, id.nbf, id.iat), (NOW + 600, Some(NOW), Some(NOW)));
    let policy = policy();
    assert_eq!(id.still_valid(&policy, NOW + 600), Ok(()));
    assert_eq!(
        id.still_valid(&policy, NOW + 600 + policy.leeway as i64 + 1),
        Err(Rejection::Expired {
            exp: NOW + 600,
            now: NOW + 631
        })
    );
    // A clock set back before nbf (beyond the leeway) refuses it again.
    assert_eq!(
        id.still_valid(&policy, NOW - 31),
        Err(Rejection::NotYetValid { nbf: NOW })
    );
    // A shorter max_lifetime set since applies to the cached identity too.
    let shorter = Policy {
        max_lifetime: 300,
        ..policy
    };
    assert!(matches!(
        id.still_valid(&shorter, NOW),
        Err(Rejection::LifetimeTooLong { .. })
    ));
}
