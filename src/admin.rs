//! Delegated administration: the NOLOGIN role `jwt_guard_admin` may run the key, issuer and
//! revocation functions without being a superuser.
//!
//! Those functions are revoked from PUBLIC and granted to `jwt_guard_admin`; their writes run
//! as the bootstrap superuser with a pinned search_path, so the role needs no privilege on the
//! tables (and cannot write them directly, which would skip every validation). They refuse to
//! run in a locked session: a login role or a token never administers. The role check refuses
//! `jwt_guard_admin`, and every role that belongs to it, as a token role.

use crate::errors::GuardError;
use crate::{context, lockdown, preload};

/// The first call of every administration function: checks preload and the session, then
/// runs the rest of the function as the bootstrap superuser until the guard is dropped.
pub fn enter(name: &str) -> context::Superuser {
    if let Err(e) = check(name) {
        e.raise()
    }
    context::Superuser::enter()
}

fn check(name: &str) -> Result<(), GuardError> {
    preload::require()?;
    if lockdown::locked() {
        return Err(GuardError::Escape(format!(
            "{name} is an administration function: it cannot be called by a login role listed in pg_jwt_guard.login_roles or under a token"
        )));
    }
    Ok(())
}

pgrx::extension_sql!(
    r#"
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'jwt_guard_admin') THEN
        CREATE ROLE jwt_guard_admin NOLOGIN;
    END IF;
END
$$;
REVOKE EXECUTE ON FUNCTION jwt_guard.add_key(text, text, text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.import_jwks(jsonb, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.retire_key(text, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.sync_jwks(text, jsonb, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    jwt_guard.add_key(text, text, text, text),
    jwt_guard.import_jwks(jsonb, text),
    jwt_guard.retire_key(text, text),
    jwt_guard.sync_jwks(text, jsonb, boolean, text),
    jwt_guard.set_issuer(text, text[], interval, integer, text, text, text, text, text, jsonb, boolean),
    jwt_guard.drop_issuer(text),
    jwt_guard.refresh_jwks(),
    jwt_guard.revoke_token(text, timestamptz),
    jwt_guard.revoke_subject(text, timestamptz, text),
    jwt_guard.unrevoke_token(text),
    jwt_guard.unrevoke_subject(text, text)
    TO jwt_guard_admin;
REVOKE EXECUTE ON FUNCTION jwt_guard.explain(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION jwt_guard.explain(text, text), jwt_guard.check_setup() TO jwt_guard_admin;
GRANT SELECT ON jwt_guard.keys, jwt_guard.issuers, jwt_guard.revocations TO jwt_guard_admin;
"#,
    name = "admin_privileges",
    finalize
);
