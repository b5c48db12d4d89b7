//! Issuer profiles: per-issuer overrides of the verification settings, kept in a table the
//! extension owns (`jwt_guard.issuer_profiles`, shown by the view `jwt_guard.issuers`).
//!
//! Profiles are read once per backend and kept until the table changes: its trigger sends a
//! relcache invalidation, which moves the cache generation in every session.

use crate::cache::{self, GenerationMap};
use crate::context;
use crate::errors::{GuardError, OrRaise};
use jwt_guard_core::policy::check_claim_name;
use jwt_guard_core::{roles, IssuerProfile, KeyError};
use pgrx::datum::Interval;
use pgrx::prelude::*;
use pgrx::JsonB;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pgrx::extension_sql!(
    r#"
CREATE TABLE jwt_guard.issuer_profiles (
    iss               text PRIMARY KEY CHECK (length(iss) BETWEEN 1 AND 1024),
    audience          text[],
    max_lifetime      interval,
    max_token_bytes   integer CHECK (max_token_bytes BETWEEN 256 AND 1048576),
    role_claim        text CHECK (role_claim <> ''),
    tenant_claim      text CHECK (tenant_claim <> ''),
    default_role      text,
    permissions_claim text CHECK (permissions_claim <> ''),
    jwks_uri          text CHECK (jwks_uri LIKE 'https://%'),
    role_map          jsonb CHECK (jsonb_typeof(role_map) = 'object'),
    replay_protection boolean NOT NULL DEFAULT false,
    updated           timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON jwt_guard.issuer_profiles FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.issuer_profiles', '');
-- What the jwks worker last did for each issuer with a jwks_uri (runtime state, not dumped).
CREATE TABLE jwt_guard.jwks_status (
    iss            text PRIMARY KEY,
    attempted      timestamptz NOT NULL,
    succeeded      timestamptz,
    error          text,
    published_keys integer
);
REVOKE ALL ON jwt_guard.jwks_status FROM PUBLIC;
CREATE VIEW jwt_guard.issuers AS
    SELECT p.iss, p.audience, p.max_lifetime, p.max_token_bytes, p.role_claim, p.tenant_claim,
           p.default_role, p.permissions_claim, p.jwks_uri, p.role_map, p.replay_protection, p.updated,
           s.attempted AS jwks_attempted, s.succeeded AS jwks_fetched, s.error AS jwks_error,
           s.published_keys AS jwks_keys
    FROM jwt_guard.issuer_profiles p
    LEFT JOIN jwt_guard.jwks_status s ON s.iss = p.iss AND p.jwks_uri IS NOT NULL;
REVOKE ALL ON jwt_guard.issuers FROM PUBLIC;
"#,
    name = "issuer_profiles",
    requires = ["key_store"]
);

pgrx::extension_sql!(
    r#"
CREATE TRIGGER issuer_profiles_changed AFTER INSERT OR UPDATE OR DELETE ON jwt_guard.issuer_profiles
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE TRIGGER issuer_profiles_truncated AFTER TRUNCATE ON jwt_guard.issuer_profiles
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
ALTER TABLE jwt_guard.issuer_profiles ENABLE ALWAYS TRIGGER issuer_profiles_changed, ENABLE ALWAYS TRIGGER issuer_profiles_truncated;
REVOKE EXECUTE ON FUNCTION jwt_guard.set_issuer(text, text[], interval, integer, text, text, text, text, text, jsonb, boolean) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.drop_issuer(text) FROM PUBLIC;
"#,
    name = "issuer_profiles_trigger",
    requires = ["issuer_profiles", "key_store_trigger", set_issuer, drop_issuer]
);

/// Longest lifetime a profile may allow: 30 days, as the setting.
const MAX_LIFETIME_LIMIT: i64 = 30 * 86_400;

/// Creates or replaces the profile of `iss`; a NULL argument keeps the global setting.
#[allow(clippy::too_many_arguments)]
#[pg_extern(volatile, parallel_unsafe)]
fn set_issuer(
    iss: Option<&str>,
    audience: default!(Option<Vec<Option<String>>>, "NULL"),
    max_lifetime: default!(Option<Interval>, "NULL"),
    max_token_bytes: default!(Option<i32>, "NULL"),
    role_claim: default!(Option<&str>, "NULL"),
    tenant_claim: default!(Option<&str>, "NULL"),
    default_role: default!(Option<&str>, "NULL"),
    permissions_claim: default!(Option<&str>, "NULL"),
    jwks_uri: default!(Option<&str>, "NULL"),
    role_map: default!(Option<JsonB>, "NULL"),
    replay_protection: default!(Option<bool>, "NULL"),
) {
    let _admin = crate::admin::enter("set_issuer()");
    let iss = iss
        .filter(|i| !i.is_empty() && !i.contains('\0'))
        .unwrap_or_else(|| GuardError::Key(KeyError::new("iss must be a non-empty string")).raise());
    let audience = audience.map(|a| {
        a.into_iter()
            .map(|v| {
                v.filter(|v| !v.is_empty())
                    .unwrap_or_else(|| bad("audience entries must be non-empty strings"))
            })
            .collect::<Vec<_>>()
    });
    let lifetime = max_lifetime.map(|i| {
        let seconds = interval_seconds(&i);
        if !(1..=MAX_LIFETIME_LIMIT).contains(&seconds) {
            bad("max_lifetime must be between 1 second and 30 days")
        }
        seconds
    });
    if let Some(b) = max_token_bytes {
        if !(256..=1_048_576).contains(&b) {
            bad("max_token_bytes must be between 256 and 1048576")
        }
    }
    if let Some(r) = default_role {
        roles::check_name(r)
            .map_err(|e| GuardError::Setting(format!("default_role: {e}")))
            .or_raise();
    }
    if let Some(u) = jwks_uri {
        if !u.starts_with("https://") {
            bad("jwks_uri must be an https:// URL")
        }
    }
    if let Some(m) = &role_map {
        parse_role_map(&m.0).map_err(GuardError::Setting).or_raise();
    }
    for (name, claim) in [
        ("role_claim", role_claim),
        ("tenant_claim", tenant_claim),
        ("permissions_claim", permissions_claim),
    ] {
        if let Some(Err(e)) = claim.map(check_claim_name) {
            bad(&format!("{name}: {e} (NULL keeps the global setting)"))
        }
    }
    let lifetime_text = lifetime.map(|s| format!("{s} seconds"));
    Spi::run_with_args(
        "INSERT INTO jwt_guard.issuer_profiles AS p (iss, audience, max_lifetime, max_token_bytes, role_claim, \
         tenant_claim, default_role, permissions_claim, jwks_uri, role_map, replay_protection) \
         VALUES ($1, $2, $3::interval, $4, $5, $6, $7, $8, $9, $10, coalesce($11, false)) \
         ON CONFLICT (iss) DO UPDATE SET audience = EXCLUDED.audience, max_lifetime = EXCLUDED.max_lifetime, \
         max_token_bytes = EXCLUDED.max_token_bytes, role_claim = EXCLUDED.role_claim, \
         tenant_claim = EXCLUDED.tenant_claim, default_role = EXCLUDED.default_role, \
         permissions_claim = EXCLUDED.permissions_claim, jwks_uri = EXCLUDED.jwks_uri, \
         role_map = EXCLUDED.role_map, replay_protection = EXCLUDED.replay_protection, \
         updated = pg_catalog.now()",
        &[
            iss.into(),
            audience.into(),
            lifetime_text.into(),
            max_token_bytes.into(),
            role_claim.into(),
            tenant_claim.into(),
            default_role.into(),
            permissions_claim.into(),
            jwks_uri.into(),
            role_map.into(),
            replay_protection.into(),
        ],
    )
    .map_err(|e| GuardError::Internal(format!("could not store the issuer profile: {e}")))
    .or_raise();
    if jwks_uri.is_some() {
        crate::jwks_worker::issuer_changed();
    }
}

/// Stops accepting `iss`: removes its profile and retires its active keys (a key bound to an
/// issuer would otherwise go on verifying its tokens). False when there was no profile.
#[pg_extern(volatile, parallel_unsafe)]
fn drop_issuer(iss: &str) -> bool {
    let _admin = crate::admin::enter("drop_issuer()");
    // The profile goes first: its row lock waits for a jwks worker that is applying keys for
    // this issuer, so the retirement below also catches the keys it added.
    let existed = Spi::connect_mut(|c| {
        c.update(
            "DELETE FROM jwt_guard.issuer_profiles WHERE iss OPERATOR(pg_catalog.=) $1",
            None,
            &[iss.into()],
        )
        .map(|t| !t.is_empty())
    })
    .map_err(|e| GuardError::Internal(format!("could not remove the issuer profile: {e}")))
    .or_raise();
    crate::keystore::retire_issuer(iss).or_raise();
    Spi::run_with_args(
        "DELETE FROM jwt_guard.jwks_status WHERE iss OPERATOR(pg_catalog.=) $1",
        &[iss.into()],
    )
    .map_err(|e| GuardError::Internal(format!("could not remove the issuer's fetch status: {e}")))
    .or_raise();
    existed
}

fn bad(message: &str) -> ! {
    GuardError::Setting(message.to_owned()).raise()
}

fn interval_seconds(i: &Interval) -> i64 {
    // Months count as 30 days, as PostgreSQL's own interval arithmetic does.
    i64::from(i.months()) * 30 * 86_400 + i64::from(i.days()) * 86_400 + i.micros() / 1_000_000
}

/// `{"claim value": "database_role", ...}`: every target must be a valid role name.
fn parse_role_map(value: &serde_json::Value) -> Result<Vec<(String, String)>, String> {
    let object = value.as_object().ok_or("role_map must be a JSON object")?;
    object
        .iter()
        .map(|(from, to)| {
            let to = to.as_str().ok_or("role_map values must be role names (strings)")?;
            roles::check_name(to).map_err(|e| format!("role_map: {e}"))?;
            Ok((from.clone(), to.to_owned()))
        })
        .collect()
}

thread_local! {
    static PROFILES: RefCell<GenerationMap<Rc<Profiles>>> = RefCell::new(GenerationMap::new());
}

/// Every profile, by issuer, and the largest token any of them accepts.
#[derive(Default)]
pub struct Profiles {
    pub by_issuer: HashMap<String, IssuerProfile>,
    pub max_token_bytes: usize,
}

/// The profiles as last committed, cached until the table changes.
pub fn all() -> Result<Rc<Profiles>, GuardError> {
    if let Some(hit) = PROFILES.with_borrow_mut(|m| m.get("")) {
        return Ok(hit);
    }
    let generation = cache::generation();
    let loaded = Rc::new(context::as_superuser(load)?);
    PROFILES.with_borrow_mut(|m| m.put(String::new(), loaded.clone(), generation));
    Ok(loaded)
}

fn load() -> Result<Profiles, GuardError> {
    let rows = crate::latest::rows(
        "SELECT iss, pg_catalog.array_to_json(audience)::text, \
         EXTRACT(epoch FROM max_lifetime)::bigint::text, max_token_bytes::text, role_claim, \
         tenant_claim, default_role, permissions_claim, jwks_uri, role_map::text, replay_protection::text \
         FROM jwt_guard.issuer_profiles",
        &[],
    );
    let mut out = Profiles::default();
    for r in rows {
        let col = |i: usize| r.get(i).cloned().flatten();
        let unreadable = || GuardError::Internal("an issuer profile could not be read".into());
        let Some(issuer) = col(0) else { continue };
        let audience = match col(1) {
            Some(json) => Some(serde_json::from_str::<Vec<String>>(&json).map_err(|_| unreadable())?),
            None => None,
        };
        let role_map = match col(9) {
            Some(json) => {
                let value = serde_json::from_str(&json).map_err(|_| unreadable())?;
                parse_role_map(&value).map_err(GuardError::Internal)?
            }
            None => Vec::new(),
        };
        let profile = IssuerProfile {
            issuer: issuer.clone(),
            audience,
            max_lifetime: col(2).and_then(|s| s.parse::<u64>().ok()),
            max_token_bytes: col(3).and_then(|s| s.parse::<usize>().ok()),
            role_claim: col(4),
            tenant_claim: col(5),
            default_role: col(6),
            permissions_claim: col(7),
            jwks_uri: col(8),
            role_map,
            replay_protection: col(10).as_deref() == Some("true"),
        };
        out.max_token_bytes = out.max_token_bytes.max(profile.max_token_bytes.unwrap_or(0));
        out.by_issuer.insert(issuer, profile);
    }
    Ok(out)
}
