//! SQL functions that verify tokens and change identity, and the key administration functions.

use crate::cache::{self, Verified};
use crate::errors::{GuardError, OrRaise};
use crate::prepared_jsonb::PreparedJsonb;
use crate::{context, identity, keystore, preload, role_checks, settings};
use jwt_guard_core::error::printable;
use jwt_guard_core::{roles, token, Identity, KeyError, Rejection};
use pgrx::prelude::*;
use pgrx::JsonB;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Every check a token must pass, without changing anything. A token verified before is
/// taken from the cache when nothing it depends on has changed.
fn check(token: Option<&str>, requested_role: Option<&str>) -> Result<(Rc<Verified>, bool), GuardError> {
    preload::require()?;
    let token = token.ok_or(GuardError::Token(Rejection::Null))?;
    // Take in what other sessions committed (a retired key, a changed role) before any cache
    // is consulted, even in a transaction that has been open for a while.
    // SAFETY: processes pending invalidation messages; callbacks only bump generations.
    unsafe { pg_sys::AcceptInvalidationMessages() };
    let snapshot = settings::snapshot()?;
    let (policy, allowed, default_role) = (&snapshot.policy, &snapshot.allowed, &snapshot.default_role);
    let now = now();
    let key = cache::token_key(token, requested_role);
    if let Some(hit) = cache::lookup(&key, &snapshot, now) {
        return Ok((hit, true));
    }
    let generation = cache::generation();
    let parsed = token::parse(token, policy.max_token_bytes)?;
    let verifying_key = keystore::find(parsed.kid.as_deref(), parsed.alg)?;
    let identity = token::verify(&parsed, &verifying_key, policy, now)?;
    let role = roles::choose(
        identity.role_claim.as_ref(),
        requested_role,
        default_role.as_deref(),
        allowed,
    )?;
    let oid = role_checks::resolve(&role)?;
    let serialized =
        serde_json::to_string(&identity).map_err(|_| GuardError::Setting("identity could not be serialized".into()))?;
    let claims = serde_json::to_string(&identity.claims)
        .ok()
        .and_then(|text| PreparedJsonb::from_json_text(&text))
        .ok_or_else(|| GuardError::Setting("claims could not be converted to jsonb".into()))?;
    Ok((
        cache::store(
            key,
            Rc::new(identity),
            claims,
            serialized,
            role,
            oid,
            generation,
            snapshot.clone(),
        ),
        false,
    ))
}

fn audit(identity: &Identity, role: &str, from_cache: bool) {
    let wanted = match settings::audit_log() {
        settings::AuditLog::Off => false,
        settings::AuditLog::Verified => !from_cache,
        settings::AuditLog::All => true,
    };
    if wanted {
        let field = |v: &Option<String>| v.as_deref().map(printable).unwrap_or_else(|| "-".into());
        pgrx::log!(
            "pg_jwt_guard: authenticated role={} sub={} kid={} jti={}{}",
            role,
            field(&identity.sub),
            field(&identity.kid),
            field(&identity.jti),
            if from_cache { " (cached)" } else { "" }
        );
    }
}

/// Verifies the token, becomes its role and binds its claims to this transaction. With
/// `role`, that role must be one the token's role claim lists.
#[pg_extern(volatile, parallel_unsafe)]
fn authenticate(token: Option<&str>, role: default!(Option<&str>, "NULL")) -> PreparedJsonb {
    let result = context::refuse_unsafe("authenticate()").and_then(|_| check(token, role));
    let (verified, from_cache) = result.or_raise();
    identity::apply(verified.identity.clone(), &verified.serialized, verified.role_oid).or_raise();
    audit(&verified.identity, &verified.role, from_cache);
    verified.claims.clone()
}

/// The same checks as authenticate(), with no switch and no state change.
#[pg_extern(volatile, parallel_unsafe)]
fn verify(token: Option<&str>, role: default!(Option<&str>, "NULL")) -> PreparedJsonb {
    check(token, role).or_raise().0.claims.clone()
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
    preload::require().or_raise();
    let (Some(kid), Some(alg), Some(key)) = (kid, alg, key) else {
        GuardError::Key(KeyError::new("kid, alg and key must not be NULL")).raise()
    };
    keystore::add(kid, alg, key, issuer).or_raise();
}

/// Registers every key of a JWKS; all or none. Returns how many were registered.
#[pg_extern(volatile, parallel_unsafe)]
fn import_jwks(jwks: Option<JsonB>, issuer: default!(Option<&str>, "NULL")) -> i32 {
    preload::require().or_raise();
    let Some(jwks) = jwks else {
        GuardError::Key(KeyError::new("jwks must not be NULL")).raise()
    };
    keystore::import(&jwks.0, issuer).or_raise()
}

/// Retires a key: from the next statement on, no session accepts tokens signed with it.
#[pg_extern(volatile, parallel_unsafe)]
fn retire_key(kid: &str) {
    preload::require().or_raise();
    keystore::retire(kid).or_raise();
}

pgrx::extension_sql!(
    r#"
REVOKE EXECUTE ON FUNCTION jwt_guard.add_key(text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.import_jwks(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.retire_key(text) FROM PUBLIC;
"#,
    name = "admin_privileges",
    finalize
);
