//! SQL functions that verify tokens and change identity, and the key administration functions.

use crate::errors::{GuardError, OrRaise};
use crate::{context, identity, keystore, preload, role_checks, settings};
use jwt_guard_core::error::printable;
use jwt_guard_core::{roles, token, Identity, KeyError, Rejection};
use pgrx::prelude::*;
use pgrx::JsonB;
use std::time::{SystemTime, UNIX_EPOCH};

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Every check a token must pass, without changing anything.
fn check(token: Option<&str>) -> Result<(Identity, pg_sys::Oid, String), GuardError> {
    preload::require()?;
    let token = token.ok_or(GuardError::Token(Rejection::Null))?;
    let policy = settings::policy();
    let parsed = token::parse(token, policy.max_token_bytes)?;
    let key = keystore::find(parsed.kid.as_deref(), parsed.alg)?;
    let identity = token::verify(&parsed, &key, &policy, now())?;
    let allowed = settings::allowed_roles()?;
    let default_role = settings::default_role();
    let role = roles::choose(identity.role_claim.as_deref(), default_role.as_deref(), &allowed)?;
    let oid = role_checks::resolve(&role)?;
    Ok((identity, oid, role))
}

fn claims_json(identity: &Identity) -> JsonB {
    JsonB(serde_json::Value::Object(identity.claims.clone()))
}

fn audit(identity: &Identity, role: &str) {
    if settings::audit_log() {
        let field = |v: &Option<String>| v.as_deref().map(printable).unwrap_or_else(|| "-".into());
        pgrx::log!(
            "pg_jwt_guard: authenticated role={} sub={} kid={} jti={}",
            role,
            field(&identity.sub),
            field(&identity.kid),
            field(&identity.jti)
        );
    }
}

/// Verifies the token, becomes its role and binds its claims to this transaction.
#[pg_extern(volatile, parallel_unsafe)]
fn authenticate(token: Option<&str>) -> JsonB {
    let result = context::refuse_unsafe("authenticate()").and_then(|_| check(token));
    let (identity, oid, role) = result.or_raise();
    let claims = claims_json(&identity);
    let applied = identity::apply(identity, oid).or_raise();
    audit(&applied, &role);
    claims
}

/// The same checks as authenticate(), with no switch and no state change.
#[pg_extern(volatile, parallel_unsafe)]
fn verify(token: Option<&str>) -> JsonB {
    let (identity, _, _) = check(token).or_raise();
    claims_json(&identity)
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
    let Some(jwks) = jwks else { GuardError::Key(KeyError::new("jwks must not be NULL")).raise() };
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
