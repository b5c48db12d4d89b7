//! `jwt_guard.explain()`: every check authenticate() makes, each on its own, in order, with
//! nothing changed. The checks themselves live in the core (`jwt_guard_core::explain`) and in
//! the modules authenticate() uses; this module runs them in order and adds the catalog steps.

use crate::errors::GuardError;
use crate::{keystore, profiles, replay, revocation, role_checks, settings};
use jwt_guard_core::explain::{self, RoleInputs, Step};
use jwt_guard_core::policy::IssuerProfile;
use jwt_guard_core::{Identity, Rejection};
use pgrx::prelude::*;
use serde_json::{Map, Value};

/// Every verification step for `token` (as `role`, when given), without stopping at the first
/// failure and without changing identity. For administrators only: to anyone else it would
/// say which roles exist and pass the catalog checks, and what is revoked.
#[pg_extern(volatile, parallel_unsafe)]
fn explain(
    token: Option<&str>,
    role: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(step, i32),
        name!(check_name, String),
        name!(ok, Option<bool>),
        name!(detail, String),
    ),
> {
    let _admin = crate::admin::enter("explain()");
    let steps = run(token, role).unwrap_or_else(|e| e.raise());
    let verdict = verdict(&steps);
    let rows: Vec<_> = steps
        .into_iter()
        .chain(std::iter::once(verdict))
        .enumerate()
        .map(|(i, s)| (i as i32 + 1, s.check.to_owned(), s.ok, s.detail))
        .collect();
    TableIterator::new(rows)
}

fn verdict(steps: &[Step]) -> Step {
    match steps.iter().find(|s| s.ok != Some(true)) {
        None => Step::passed("result", "authenticate() would accept this token"),
        Some(s) => Step::failed("result", format!("authenticate() would refuse it: {} failed", s.check)),
    }
}

fn run(token: Option<&str>, requested: Option<&str>) -> Result<Vec<Step>, GuardError> {
    let Some(token) = token else {
        return Ok(vec![Step::failed("size", Rejection::Null.to_string())]);
    };
    let snapshot = settings::snapshot()?;
    let all = profiles::all()?;
    let decode_limit = snapshot.policy.max_token_bytes.max(all.max_token_bytes);
    let s = explain::structure(token, decode_limit);
    // The size limit is the issuer's own when its profile sets one, as in verification.
    let issuer = s
        .payload
        .as_ref()
        .and_then(|p| p.get("iss"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let profile = issuer.as_deref().and_then(|i| all.by_issuer.get(i));
    let policy = profile.map_or_else(|| snapshot.policy.clone(), |p| snapshot.policy.with_profile(p));
    let mut steps = vec![explain::size(token, &policy)];
    steps.extend(s.steps);
    steps.push(profile_step(issuer.as_deref(), profile, s.payload.is_some()));

    let key = match &s.parsed {
        None => {
            steps.push(Step::not_run("key lookup", "the header did not pass"));
            None
        }
        Some(parsed) => match keystore::find(parsed.kid.as_deref(), parsed.alg, issuer.as_deref()) {
            Ok(key) => {
                steps.push(Step::passed(
                    "key lookup",
                    key_detail(parsed.kid.as_deref(), key.issuer.as_deref()),
                ));
                Some(key)
            }
            Err(GuardError::Token(r)) => {
                steps.push(Step::failed("key lookup", r.to_string()));
                None
            }
            Err(e) => return Err(e),
        },
    };
    match (&s.parsed, &key) {
        (Some(parsed), Some(key)) => steps.extend(explain::signature(parsed, key)),
        _ => {
            steps.push(Step::not_run("algorithm", "no key was found"));
            steps.push(Step::not_run("signature", "no key was found"));
        }
    }

    let Some(claims) = s.payload else {
        for name in ["claims", "role checks", "revocation", "replay"] {
            steps.push(Step::not_run(name, "the payload is not a JSON object"));
        }
        return Ok(steps);
    };
    let default_role = profile
        .and_then(|p| p.default_role.clone())
        .or_else(|| snapshot.default_role.clone());
    let inputs = RoleInputs {
        role_map: profile.map_or(&[][..], |p| &p.role_map[..]),
        requested,
        default_role: default_role.as_deref(),
        allowed: &snapshot.allowed,
    };
    let key_issuer = key.as_ref().and_then(|k| k.issuer.as_deref());
    let c = explain::claims(&claims, key_issuer, &policy, &inputs, crate::functions::now());
    steps.extend(c.before_role_checks);
    match &c.role {
        Some(role) => steps.extend(role_checks::explain(role)),
        None => steps.push(Step::not_run("role checks", "no role was selected")),
    }
    steps.extend(c.after_role_checks);
    let identity = partial_identity(claims, s.parsed.as_ref().and_then(|p| p.kid.clone()));
    steps.push(outcome("revocation", revocation::check(&identity), "not revoked")?);
    steps.push(replay_step(&identity, profile)?);
    Ok(steps)
}

fn profile_step(issuer: Option<&str>, profile: Option<&IssuerProfile>, decoded: bool) -> Step {
    match (issuer, profile) {
        (_, Some(p)) => Step::passed(
            "issuer profile",
            format!(
                "\"{}\": its profile applies",
                jwt_guard_core::error::printable(&p.issuer)
            ),
        ),
        (Some(_), None) => Step::passed("issuer profile", "none for this iss: the global settings apply"),
        (None, None) if decoded => Step::passed("issuer profile", "the token has no iss: the global settings apply"),
        (None, None) => Step::not_run("issuer profile", "the payload did not decode"),
    }
}

fn key_detail(kid: Option<&str>, issuer: Option<&str>) -> String {
    let kid = kid.map_or_else(
        || "the one active key of its algorithm".to_owned(),
        |k| format!("kid \"{}\"", jwt_guard_core::error::printable(k)),
    );
    match issuer {
        Some(i) => format!("{kid}, bound to issuer \"{}\"", jwt_guard_core::error::printable(i)),
        None => format!("{kid}, bound to no issuer"),
    }
}

/// What revocation and replay read from a token (jti, sub, iss, iat), from claims that may
/// not have passed every check: explain() runs those steps anyway.
fn partial_identity(claims: Map<String, Value>, kid: Option<String>) -> Identity {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    Identity {
        sub: text("sub"),
        jti: text("jti"),
        exp: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
        nbf: claims.get("nbf").and_then(Value::as_i64),
        iat: claims.get("iat").and_then(Value::as_i64),
        kid,
        role_claim: None,
        tenant: None,
        scopes: Vec::new(),
        permissions: None,
        claims,
    }
}

/// A token refusal becomes a failed step; any other error is raised.
fn outcome(check: &'static str, result: Result<(), GuardError>, passed: &str) -> Result<Step, GuardError> {
    match result {
        Ok(()) => Ok(Step::passed(check, passed)),
        Err(GuardError::Token(r)) => Ok(Step::failed(check, r.to_string())),
        Err(e) => Err(e),
    }
}

fn replay_step(identity: &Identity, profile: Option<&IssuerProfile>) -> Result<Step, GuardError> {
    if !profile.is_some_and(|p| p.replay_protection) {
        return Ok(Step::passed("replay", "its issuer does not use replay protection"));
    }
    outcome(
        "replay",
        replay::guard(identity, false),
        "its jti has not been accepted before",
    )
}
