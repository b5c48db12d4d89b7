//! SQL functions that verify tokens and change identity, and the key administration functions.

use crate::audit::{self, Attempt};
use crate::cache::{self, Verified};
use crate::errors::{GuardError, OrRaise};
use crate::prepared_jsonb::PreparedJsonb;
use crate::{context, identity, keystore, preload, profiles, replay, revocation, role_checks, settings};
use jwt_guard_core::{roles, token, KeyError, Rejection};
use pgrx::prelude::*;
use pgrx::JsonB;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Every check a token must pass, without changing anything. A token verified before is
/// taken from the cache when nothing it depends on has changed.
fn check(
    token: Option<&str>,
    requested_role: Option<&str>,
    attempt: &mut Attempt,
    record: bool,
) -> Result<(Rc<Verified>, bool), GuardError> {
    preload::require()?;
    let token = token.ok_or(GuardError::Token(Rejection::Null))?;
    // Take in what other sessions committed (a retired key, a changed role) before any cache
    // is consulted, even in a transaction that has been open for a while.
    // SAFETY: processes pending invalidation messages; callbacks only note what changed.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    let snapshot = settings::snapshot()?;
    let (policy, allowed, default_role) = (&snapshot.policy, &snapshot.allowed, &snapshot.default_role);
    // (policy is the global one; an issuer profile may override it below.)
    let now = now();
    let key = cache::token_key(token, requested_role);
    if let Some(hit) = cache::lookup(&key, &snapshot, now) {
        attempt.identity = Some(hit.identity.clone());
        attempt.role = Some(hit.role.clone());
        revocation::check_cached(&hit.identity, &hit.revocations_passed)?;
        if hit.replay_protected {
            replay::check(&hit.identity, record)?;
        }
        return Ok((hit, true));
    }
    let generation = cache::generation();
    let profiles = profiles::all()?;
    // Before parsing, the largest size any issuer accepts; after, the token's issuer's own.
    let limit = policy.max_token_bytes.max(profiles.max_token_bytes);
    let parsed = token::parse(token, limit).map_err(|e| match e {
        Rejection::TooLarge { bytes, max, .. } => Rejection::TooLarge {
            bytes,
            max,
            from_profile: max > policy.max_token_bytes,
        },
        other => other,
    })?;
    let issuer = parsed.unverified_issuer();
    attempt.kid = parsed.kid.clone();
    attempt.alg = Some(jwt_guard_core::keys::alg_name(parsed.alg));
    attempt.unverified_iss = issuer.clone();
    let profile = issuer.as_deref().and_then(|i| profiles.by_issuer.get(i));
    let policy = profile.map_or_else(|| policy.clone(), |p| policy.with_profile(p));
    if parsed.byte_len() > policy.max_token_bytes {
        return Err(Rejection::TooLarge {
            bytes: parsed.byte_len(),
            max: policy.max_token_bytes,
            from_profile: policy.from_profile.max_token_bytes,
        }
        .into());
    }
    let verifying_key = keystore::find(parsed.kid.as_deref(), parsed.alg, issuer.as_deref())?;
    let identity = Rc::new(token::verify(&parsed, &verifying_key, &policy, now)?);
    attempt.identity = Some(identity.clone());
    revocation::check(&identity)?;
    let replay_protected = replay::protected(&identity)?;
    if replay_protected {
        replay::check(&identity, record)?;
    }
    let default_role = profile
        .and_then(|p| p.default_role.clone())
        .or_else(|| default_role.clone());
    let role = roles::choose_mapped(
        identity.role_claim.as_ref(),
        profile.map_or(&[][..], |p| &p.role_map[..]),
        requested_role,
        default_role.as_deref(),
        allowed,
    )?;
    let role: Rc<str> = role.into();
    attempt.role = Some(role.clone());
    let oid = role_checks::resolve(&role)?;
    let serialized = serde_json::to_string(&*identity)
        .map_err(|_| GuardError::Internal("the identity could not be serialized".into()))?;
    let carrier = identity::carrier_value(oid, &serialized)?;
    let claims_json = serde_json::to_string(&identity.claims)
        .map_err(|_| GuardError::Internal("the claims could not be serialized".into()))?;
    let claims = PreparedJsonb::from_json_text(&claims_json)
        .ok_or_else(|| GuardError::Internal("the claims could not be converted to jsonb".into()))?;
    let request_claims = crate::request_claims::enabled().then_some(claims_json);
    Ok((
        cache::store(
            key,
            identity,
            claims,
            carrier,
            request_claims,
            role,
            oid,
            replay_protected,
            generation,
            snapshot.clone(),
            policy,
        ),
        false,
    ))
}

/// Verifies the token, becomes its role and binds its claims to this transaction. With
/// `role`, that role must be one the token's role claim lists.
#[pg_extern(volatile, parallel_unsafe)]
fn authenticate(token: Option<&str>, role: default!(Option<&str>, "NULL")) -> PreparedJsonb {
    let mut attempt = Attempt::default();
    let result = context::refuse_unsafe("authenticate()").and_then(|_| check(token, role, &mut attempt, true));
    let (verified, from_cache) = result.unwrap_or_else(|e| {
        audit::refused(&attempt, e.reason());
        e.raise()
    });
    identity::apply(
        verified.identity.clone(),
        &verified.carrier,
        verified.request_claims.as_deref(),
        verified.role_oid,
    )
    .or_raise();
    let first_use = !verified.audited.replace(true);
    audit::verified(&attempt, from_cache && !first_use);
    verified.claims.clone()
}

/// The same checks as authenticate(), with no switch and no state change.
#[pg_extern(volatile, parallel_unsafe)]
fn verify(token: Option<&str>, role: default!(Option<&str>, "NULL")) -> PreparedJsonb {
    check(token, role, &mut Attempt::default(), false)
        .or_raise()
        .0
        .claims
        .clone()
}

/// Drops the identity now: claims cleared, back to the user the transaction started as.
#[pg_extern(volatile, parallel_unsafe)]
fn reset() {
    preload::require().or_raise();
    context::refuse_unsafe("reset()").or_raise();
    identity::clear().or_raise();
}

/// Registers a PEM public key or an HMAC secret under `kid`, pinned to `alg`.
#[pg_extern(volatile, parallel_unsafe)]
fn add_key(kid: Option<&str>, alg: Option<&str>, key: Option<&str>, issuer: default!(Option<&str>, "NULL")) {
    let _admin = crate::admin::enter("add_key()");
    let (Some(kid), Some(alg), Some(key)) = (kid, alg, key) else {
        GuardError::Key(KeyError::new("kid, alg and key must not be NULL")).raise()
    };
    keystore::add(kid, alg, key, issuer).or_raise();
}

/// Registers every key of a JWKS; all or none. Returns how many were registered.
#[pg_extern(volatile, parallel_unsafe)]
fn import_jwks(jwks: Option<JsonB>, issuer: default!(Option<&str>, "NULL")) -> i32 {
    let _admin = crate::admin::enter("import_jwks()");
    let Some(jwks) = jwks else {
        GuardError::Key(KeyError::new("jwks must not be NULL")).raise()
    };
    keystore::import(&jwks.0, issuer).or_raise()
}

/// Retires a key: from the next authenticate() on, no session accepts tokens signed with it.
/// Without `issuer`, every active key with that kid is retired.
#[pg_extern(volatile, parallel_unsafe)]
fn retire_key(kid: Option<&str>, issuer: default!(Option<&str>, "NULL")) {
    let _admin = crate::admin::enter("retire_key()");
    let Some(kid) = kid else {
        GuardError::Key(KeyError::new("kid must not be NULL")).raise()
    };
    keystore::retire(kid, issuer).or_raise();
}

/// Brings the keys of `issuer` in line with a JWKS document, idempotently: one line per key
/// (`added`, `unchanged`, `retired`, `skipped`) with the reason for skips and retirements.
#[pg_extern(volatile, parallel_unsafe)]
fn sync_jwks(
    issuer: Option<&str>,
    jwks: Option<JsonB>,
    retire_missing: default!(bool, false),
    default_alg: default!(Option<&str>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(kid, Option<String>),
        name!(action, String),
        name!(reason, Option<String>),
    ),
> {
    let _admin = crate::admin::enter("sync_jwks()");
    let (Some(issuer), Some(jwks)) = (issuer.filter(|i| !i.is_empty()), jwks) else {
        GuardError::Key(KeyError::new("issuer and jwks must not be NULL or empty")).raise()
    };
    let lines = keystore::sync(issuer, &jwks.0, retire_missing, default_alg).or_raise();
    TableIterator::new(lines.into_iter().map(|l| (l.kid, l.action.to_owned(), l.reason)))
}
