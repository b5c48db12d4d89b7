//! Every check a token goes through, each run on its own, for `jwt_guard.explain()`.
//!
//! Verification stops at the first refusal; an operator asking why a token fails wants to see
//! every check at once. Each step here runs the same rule the verifier runs (the functions of
//! `token`, `claims` and `roles`), on whatever the token lets it read, so a step that fails
//! does not hide the next. A step that cannot run says why, with `ok` None. Details name
//! claims, roles, issuers and key ids, never the token or its signature.

use crate::claims::{self, RoleClaim};
use crate::error::{printable, Rejection};
use crate::keys::{alg_name, VerifyingKey};
use crate::permissions::Permissions;
use crate::policy::Policy;
use crate::roles;
use crate::token::{self, ParsedToken};
use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub check: &'static str,
    /// None: the step could not run (what it needs failed earlier).
    pub ok: Option<bool>,
    pub detail: String,
}

impl Step {
    pub fn passed(check: &'static str, detail: impl Into<String>) -> Step {
        Step {
            check,
            ok: Some(true),
            detail: detail.into(),
        }
    }

    pub fn failed(check: &'static str, detail: impl Into<String>) -> Step {
        Step {
            check,
            ok: Some(false),
            detail: detail.into(),
        }
    }

    pub fn not_run(check: &'static str, why: &str) -> Step {
        Step {
            check,
            ok: None,
            detail: format!("not run: {why}"),
        }
    }

    fn from<T>(check: &'static str, result: Result<T, Rejection>, detail: impl FnOnce(T) -> String) -> Step {
        match result {
            Ok(v) => Step::passed(check, detail(v)),
            Err(r) => Step::failed(check, r.to_string()),
        }
    }
}

/// The token's structure: characters, segments, header and payload.
pub struct Structure<'a> {
    pub steps: Vec<Step>,
    /// Present when the header passed: what the key lookup and the signature need.
    pub parsed: Option<ParsedToken<'a>>,
    /// The payload as JSON, unverified, when it decodes.
    pub payload: Option<Map<String, Value>>,
}

/// Characters, segments, header and payload. A token above `decode_limit` (the largest size
/// any issuer accepts) is not decoded at all, as in verification; its size is judged by `size`.
pub fn structure(token: &str, decode_limit: usize) -> Structure<'_> {
    let mut steps = Vec::new();
    let too_large = token.len() > decode_limit;
    let chars_ok = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    steps.push(if chars_ok {
        Step::passed("characters", "base64url and '.' only")
    } else {
        Step::failed("characters", Rejection::BadCharacters.to_string())
    });
    let parts: Vec<&str> = token.split('.').collect();
    let segments_ok = parts.len() == 3;
    steps.push(if segments_ok {
        Step::passed("segments", "3 segments")
    } else {
        Step::failed("segments", Rejection::Segments(parts.len()).to_string())
    });
    let blocked = if too_large {
        Some("the token is larger than any issuer accepts, so it is not decoded")
    } else if !chars_ok || !segments_ok {
        Some("the token is not three base64url segments")
    } else {
        None
    };
    if let Some(why) = blocked {
        steps.push(Step::not_run("header", why));
        steps.push(Step::not_run("payload", why));
        return Structure {
            steps,
            parsed: None,
            payload: None,
        };
    }
    let (header, payload, signature) = (parts[0], parts[1], parts[2]);
    let head = token::decode_object(header, "header").and_then(|h| token::check_header(&h));
    let parsed = head.as_ref().ok().map(|(alg, kid)| {
        ParsedToken::new(
            *alg,
            kid.clone(),
            &token[..header.len() + 1 + payload.len()],
            payload,
            signature,
        )
    });
    steps.push(Step::from("header", head, |(alg, kid)| match kid {
        Some(k) => format!("alg {}, kid \"{}\"", alg_name(alg), printable(&k)),
        None => format!("alg {}, no kid", alg_name(alg)),
    }));
    let body = token::decode_object(payload, "payload");
    let payload = body.as_ref().ok().cloned();
    steps.push(Step::from("payload", body, |m| {
        format!(
            "a JSON object with {} claims (unverified until the signature passes)",
            m.len()
        )
    }));
    Structure { steps, parsed, payload }
}

/// The token's size against the limit that applies to it.
pub fn size(token: &str, policy: &Policy) -> Step {
    let limit = policy.max_token_bytes;
    if token.is_empty() {
        Step::failed("size", Rejection::Empty.to_string())
    } else if token.len() > limit {
        Step::failed(
            "size",
            Rejection::TooLarge {
                bytes: token.len(),
                max: limit,
                from_profile: policy.from_profile.max_token_bytes,
            }
            .to_string(),
        )
    } else {
        Step::passed("size", format!("{} bytes, at most {limit}", token.len()))
    }
}

/// The algorithm and the signature, given the key found for the token.
pub fn signature(parsed: &ParsedToken<'_>, key: &VerifyingKey) -> Vec<Step> {
    let alg = token::check_algorithm(parsed, key);
    let alg_ok = alg.is_ok();
    let mut steps = vec![Step::from("algorithm", alg, |_| {
        format!("{} matches the key", alg_name(key.alg))
    })];
    steps.push(if alg_ok {
        Step::from("signature", token::check_signature(parsed, key), |_| "verified".into())
    } else {
        Step::not_run("signature", "the token's algorithm is not the key's")
    });
    steps
}

/// What the role selection needs besides the claims.
pub struct RoleInputs<'a> {
    pub role_map: &'a [(String, String)],
    pub requested: Option<&'a str>,
    pub default_role: Option<&'a str>,
    pub allowed: &'a [String],
}

/// The claim checks, split where the extension adds its catalog checks on the chosen role.
pub struct ClaimSteps {
    /// Time claims, issuer, audience, lifetime, claim types, role claim, role selection.
    pub before_role_checks: Vec<Step>,
    /// The role the token would become, when selection passed.
    pub role: Option<String>,
    /// Tenant, scopes and permissions.
    pub after_role_checks: Vec<Step>,
}

pub fn claims(
    claims: &Map<String, Value>,
    key_issuer: Option<&str>,
    policy: &Policy,
    roles: &RoleInputs<'_>,
    now: i64,
) -> ClaimSteps {
    let mut before = time_steps(claims, policy, now);
    before.push(Step::from(
        "iss",
        claims::check_issuer(claims, key_issuer, policy),
        |_| {
            format!(
                "\"{}\" accepted",
                printable(claims.get("iss").and_then(Value::as_str).unwrap_or(""))
            )
        },
    ));
    before.push(Step::from("aud", claims::check_audience(claims, policy), |_| {
        if claims.contains_key("aud") {
            "accepted".into()
        } else {
            "absent, and no audience is required".into()
        }
    }));
    before.push(lifetime_step(claims, policy, now));
    before.push(Step::from("claim types", other_claims(claims), |_| {
        "sub and jti are strings, no NUL in any string".into()
    }));
    let role_claim = claims::role_claim(claims, &policy.role_claim);
    let claimed = role_claim.as_ref().ok().cloned().flatten();
    before.push(Step::from("role claim", role_claim, |c| match c {
        None => format!("\"{}\" absent", printable(&policy.role_claim)),
        Some(RoleClaim::One(r)) => format!("\"{}\"", printable(&r)),
        Some(RoleClaim::Many(rs)) => format!("{} roles listed", rs.len()),
    }));
    let chosen = roles::choose_mapped(
        claimed.as_ref(),
        roles.role_map,
        roles.requested,
        roles.default_role,
        roles.allowed,
    );
    let role = chosen.as_ref().ok().cloned();
    before.push(match chosen {
        Ok(r) => Step::passed(
            "role selection",
            format!("\"{}\", on pg_jwt_guard.allowed_roles", printable(&r)),
        ),
        Err(e) => Step::failed("role selection", e.to_string()),
    });
    ClaimSteps {
        before_role_checks: before,
        role,
        after_role_checks: grant_steps(claims, policy),
    }
}

fn time_steps(claims: &Map<String, Value>, policy: &Policy, now: i64) -> Vec<Step> {
    let exp = claims::numeric_date(claims, "exp")
        .and_then(|e| e.ok_or(Rejection::MissingClaim("exp")))
        .and_then(|e| claims::exp_in_time(e, policy, now).map(|_| e));
    let nbf = claims::numeric_date(claims, "nbf").and_then(|n| claims::nbf_in_time(n, policy, now).map(|_| n));
    let iat = claims::numeric_date(claims, "iat").and_then(|i| claims::iat_in_time(i, policy, now).map(|_| i));
    let present = |v: Option<i64>, what: &str| match v {
        Some(t) => format!("{what} {}", crate::error::iso8601(t)),
        None => "absent".into(),
    };
    vec![
        Step::from("exp", exp, |e| format!("expires {}", crate::error::iso8601(e))),
        Step::from("nbf", nbf, |n| present(n, "valid from")),
        Step::from("iat", iat, |i| present(i, "issued")),
    ]
}

fn lifetime_step(claims: &Map<String, Value>, policy: &Policy, now: i64) -> Step {
    let (Ok(Some(exp)), Ok(iat)) = (claims::numeric_date(claims, "exp"), claims::numeric_date(claims, "iat")) else {
        return Step::not_run("lifetime", "exp or iat is missing or not a NumericDate");
    };
    Step::from("lifetime", claims::lifetime_in_bounds(exp, iat, policy, now), |_| {
        format!("within {} s", policy.max_lifetime)
    })
}

fn other_claims(claims: &Map<String, Value>) -> Result<(), Rejection> {
    claims::refuse_nul(claims)?;
    claims::optional_string(claims, "sub")?;
    claims::optional_string(claims, "jti")?;
    Ok(())
}

fn grant_steps(claims: &Map<String, Value>, policy: &Policy) -> Vec<Step> {
    // A path through the wrong shape and a value that is not a string fail alike.
    let tenant = match claims::rule_lookup(claims, &policy.tenant_claim) {
        Ok(None) => Step::passed("tenant", format!("\"{}\" absent", printable(&policy.tenant_claim))),
        Ok(Some(Value::String(s))) => Step::passed("tenant", format!("\"{}\"", printable(s))),
        _ => Step::failed(
            "tenant",
            Rejection::BadClaimType(policy.tenant_claim.clone()).to_string(),
        ),
    };
    let scopes = Step::from("scopes", claims::scopes(claims), |s| format!("{} scopes", s.len()));
    let permissions = match claims::rule_lookup(claims, &policy.permissions_claim) {
        Err(e) => Step::failed("permissions", e.to_string()),
        Ok(None) => Step::passed(
            "permissions",
            format!(
                "\"{}\" absent: no table or action is granted by it",
                printable(&policy.permissions_claim)
            ),
        ),
        Ok(Some(v)) => match Permissions::parse(v) {
            Ok(_) => Step::passed("permissions", "grammar accepted"),
            Err(e) => Step::failed("permissions", e.to_string()),
        },
    };
    vec![tenant, scopes, permissions]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn policy() -> Policy {
        Policy {
            issuers: vec!["https://issuer.test".into()],
            audience: vec!["api".into()],
            ..Policy::default()
        }
    }

    fn allowed() -> Vec<String> {
        vec!["app_user".into()]
    }

    fn steps(claims: &Map<String, Value>, policy: &Policy) -> ClaimSteps {
        let allowed = allowed();
        let inputs = RoleInputs {
            role_map: &[],
            requested: None,
            default_role: None,
            allowed: &allowed,
        };
        super::claims(claims, None, policy, &inputs, NOW)
    }

    fn all_ok(s: &ClaimSteps) -> bool {
        s.before_role_checks
            .iter()
            .chain(&s.after_role_checks)
            .all(|s| s.ok == Some(true))
    }

    // Each case changes one thing in a good payload; the verifier and explain must agree on
    // every one, and explain must name the failing check.
    fn cases() -> Vec<(Value, Option<&'static str>)> {
        let good = json!({"iss": "https://issuer.test", "aud": "api", "sub": "u1", "role": "app_user",
                          "exp": NOW + 600, "iat": NOW - 10, "tenant_id": "t1"});
        let with = |k: &str, v: Value| {
            let mut g = good.clone();
            g[k] = v;
            g
        };
        let without = |k: &str| {
            let mut g = good.clone();
            g.as_object_mut().unwrap().remove(k);
            g
        };
        vec![
            (good.clone(), None),
            (with("exp", json!(NOW - 100)), Some("exp")),
            (with("exp", json!("soon")), Some("exp")),
            (without("exp"), Some("exp")),
            (with("nbf", json!(NOW + 100)), Some("nbf")),
            (with("nbf", json!(NOW - 100)), None),
            (with("iat", json!(NOW + 100)), Some("iat")),
            (with("iat", json!(1.5)), Some("iat")),
            (with("iss", json!("https://other.test")), Some("iss")),
            (without("iss"), Some("iss")),
            (with("aud", json!(["x", "y"])), Some("aud")),
            (with("aud", json!(["x", "api"])), None),
            (with("aud", json!(5)), Some("aud")),
            (without("aud"), Some("aud")),
            (with("exp", json!(NOW + 100_000)), Some("lifetime")),
            (with("iat", json!(NOW - 100_000)), Some("lifetime")),
            (with("sub", json!(42)), Some("claim types")),
            (with("jti", json!([1])), Some("claim types")),
            (with("sub", json!("a\u{0}b")), Some("claim types")),
            (with("role", json!("other")), Some("role selection")),
            (with("role", json!(["other", "app_user"])), None),
            (with("role", json!(7)), Some("role claim")),
            (with("tenant_id", json!(42)), Some("tenant")),
            (with("scope", json!(3)), Some("scopes")),
            (with("permissions", json!("drop everything")), Some("permissions")),
            (with("permissions", json!(["orders:select"])), None),
        ]
    }

    #[test]
    fn explain_agrees_with_the_verifier_and_names_the_failing_check() {
        let policy = policy();
        for (payload, failing) in cases() {
            let map = payload.as_object().unwrap().clone();
            let verified = claims::check(map.clone(), None, None, &policy, NOW).and_then(|id| {
                roles::choose(id.role_claim.as_ref(), None, None, &allowed())
                    .map_err(|_| Rejection::MissingClaim("role"))
            });
            let s = steps(&map, &policy);
            assert_eq!(verified.is_ok(), all_ok(&s), "verdicts differ for {payload}");
            let failed: Vec<&str> = s
                .before_role_checks
                .iter()
                .chain(&s.after_role_checks)
                .filter(|s| s.ok == Some(false))
                .map(|s| s.check)
                .collect();
            match failing {
                None => assert!(failed.is_empty(), "{payload}: {failed:?}"),
                Some(name) => assert!(failed.contains(&name), "{payload}: expected {name}, got {failed:?}"),
            }
        }
    }

    #[test]
    fn every_failing_check_is_shown_not_only_the_first() {
        let payload = json!({"iss": "https://other.test", "aud": "x", "exp": NOW - 100, "role": "other"});
        let s = steps(payload.as_object().unwrap(), &policy());
        let failed: Vec<&str> = s
            .before_role_checks
            .iter()
            .filter(|s| s.ok == Some(false))
            .map(|s| s.check)
            .collect();
        assert_eq!(failed, vec!["exp", "iss", "aud", "role selection"]);
    }

    #[test]
    fn structure_runs_each_check_and_never_shows_the_token() {
        let header = "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIn0"; // {"alg":"HS256","kid":"k1"}
        let payload = "eyJzdWIiOiJ1MSJ9"; // {"sub":"u1"}
        let token = format!("{header}.{payload}.c2lnbmF0dXJlLWJ5dGVz");
        let s = structure(&token, 8192);
        assert!(s.steps.iter().all(|s| s.ok == Some(true)), "{:?}", s.steps);
        let limit = |max_token_bytes| Policy {
            max_token_bytes,
            ..Policy::default()
        };
        assert_eq!(size(&token, &limit(8192)).ok, Some(true));
        assert!(s.parsed.is_some() && s.payload.is_some());
        for step in &s.steps {
            assert!(!step.detail.contains(header) && !step.detail.contains("c2lnbmF0dXJl"));
        }
        assert_eq!(size(&token, &limit(10)).ok, Some(false));
        assert_eq!(size("", &limit(10)).ok, Some(false));
        let huge = structure(&token, 10);
        assert_eq!(
            huge.steps.last().unwrap().ok,
            None,
            "beyond every limit nothing is decoded"
        );
        let bad = structure("Bearer abc", 8192);
        let oks: Vec<Option<bool>> = bad.steps.iter().map(|s| s.ok).collect();
        assert_eq!(oks, vec![Some(false), Some(false), None, None]);
        assert_eq!(
            token::parse(&token, 8192).is_ok(),
            s.steps.iter().all(|s| s.ok == Some(true))
        );
    }
}
