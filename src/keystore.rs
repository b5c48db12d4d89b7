//! The key store: a table the extension owns that only its owner can read, and the lookup
//! used by verification.
//!
//! Verification reads the key's row under the latest committed snapshot, after taking in
//! pending invalidations, so `retire_key` takes effect at the next `authenticate()` in every
//! session, even in a transaction that was already open. Parsed keys are
//! cached per backend by (kid, row version) so a hit costs no PEM or JWK parsing.

use crate::cache::{self, GenerationMap};
use crate::context;
use crate::errors::GuardError;
use jwt_guard_core::keys::{self, KeyFormat};
use jwt_guard_core::{Algorithm, KeyError, Rejection, VerifyingKey};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

pgrx::extension_sql!(
    r#"
CREATE TABLE jwt_guard.key_store (
    kid         text PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 256),
    alg         text NOT NULL,
    format      text NOT NULL CHECK (format IN ('text', 'jwk')),
    key_text    text NOT NULL,
    issuer      text,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    fingerprint text NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    retired     timestamptz
);
REVOKE ALL ON jwt_guard.key_store FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.key_store', '');

CREATE VIEW jwt_guard.keys AS
    SELECT kid, alg, issuer, status, fingerprint, created, retired
    FROM jwt_guard.key_store;
REVOKE ALL ON jwt_guard.keys FROM PUBLIC;
GRANT USAGE ON SCHEMA jwt_guard TO PUBLIC;
"#,
    name = "key_store",
    bootstrap
);

pgrx::extension_sql!(
    r#"
CREATE TRIGGER key_store_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON jwt_guard.key_store
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
REVOKE EXECUTE ON FUNCTION jwt_guard.key_store_changed() FROM PUBLIC;
"#,
    name = "key_store_trigger",
    requires = [key_store_changed]
);

/// Tells every backend, at commit, that cached keys are stale: DML sends no invalidation of
/// its own, so the trigger sends a relcache invalidation for the key store.
#[pg_trigger]
fn key_store_changed<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<pgrx::heap_tuple::PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, pgrx::PgTriggerError> {
    let relid = trigger.relid()?;
    // SAFETY: queues a transactional invalidation for a relation that exists.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
    Ok(None)
}

const INSERT: &str = "INSERT INTO jwt_guard.key_store (kid, alg, format, key_text, issuer, fingerprint) \
                      VALUES ($1, $2, $3, $4, $5, $6)";

fn kid_exists(kid: &str) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM jwt_guard.key_store WHERE kid OPERATOR(pg_catalog.=) $1)",
        &[kid.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

fn insert(kid: &str, key: &VerifyingKey, format: KeyFormat, text: &str) -> Result<(), GuardError> {
    keys::check_kid(kid)?;
    if kid_exists(kid) {
        return Err(KeyError::new(format!(
            "a key with kid \"{}\" already exists; retire it and register the new key under a new kid",
            jwt_guard_core::error::printable(kid)
        ))
        .into());
    }
    Spi::run_with_args(
        INSERT,
        &[
            kid.into(),
            keys::alg_name(key.alg).into(),
            format.as_str().into(),
            text.into(),
            key.issuer.clone().into(),
            key.fingerprint().into(),
        ],
    )
    .map_err(|e| GuardError::Setting(format!("could not store the key: {e}")))
}

/// `add_key`: one PEM public key or HMAC secret under `kid`, pinned to `alg`.
pub fn add(kid: &str, alg: &str, key_text: &str, issuer: Option<&str>) -> Result<(), GuardError> {
    let key = VerifyingKey::from_text(alg, key_text, issuer)?;
    insert(kid, &key, KeyFormat::Text, key_text)
}

/// `import_jwks`: all keys or none; returns how many were stored.
pub fn import(jwks: &serde_json::Value, issuer: Option<&str>) -> Result<i32, GuardError> {
    let imported = keys::import_jwks(jwks, issuer)?;
    for k in &imported {
        insert(&k.kid, &k.key, KeyFormat::Jwk, &k.jwk_text)?;
    }
    Ok(imported.len() as i32)
}

/// `retire_key`: from the next statement on no session accepts tokens signed with it.
pub fn retire(kid: &str) -> Result<(), GuardError> {
    // No row limit: with one, the executor stops before the statement trigger fires.
    let retired = Spi::connect_mut(|client| {
        client
            .update(
                "UPDATE jwt_guard.key_store SET status = 'retired', retired = pg_catalog.now() \
                 WHERE kid OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'active'",
                None,
                &[kid.into()],
            )
            .map(|table| table.len())
    });
    match retired {
        Ok(1) => Ok(()),
        _ => Err(KeyError::new(format!(
            "no active key with kid \"{}\"",
            jwt_guard_core::error::printable(kid)
        ))
        .into()),
    }
}

struct Row {
    kid: String,
    alg: String,
    format: String,
    key_text: String,
    issuer: Option<String>,
    status: String,
    version: String,
}

thread_local! {
    static PARSED: RefCell<HashMap<(String, String), Rc<VerifyingKey>>> = RefCell::new(HashMap::new());
    static FOUND: RefCell<GenerationMap<Rc<VerifyingKey>>> = RefCell::new(GenerationMap::new());
}
const PARSED_CAP: usize = 256;

/// Finds the key for a token: by exact kid, or the one active key of the token's algorithm
/// when the token has no kid. Found keys are cached until the key store (or any relation)
/// changes; its trigger makes sure a change reaches every session.
pub fn find(kid: Option<&str>, alg: Algorithm) -> Result<Rc<VerifyingKey>, GuardError> {
    let lookup = match kid {
        Some(k) => format!("kid:{k}"),
        None => format!("alg:{}", keys::alg_name(alg)),
    };
    if let Some(key) = FOUND.with_borrow_mut(|m| m.get(&lookup)) {
        return Ok(key);
    }
    let generation = cache::generation();
    let key = find_uncached(kid, alg)?;
    FOUND.with_borrow_mut(|m| m.put(lookup, key.clone(), generation));
    Ok(key)
}

fn find_uncached(kid: Option<&str>, alg: Algorithm) -> Result<Rc<VerifyingKey>, GuardError> {
    let rows = context::as_superuser(|| fetch(kid, alg));
    let row = match (kid, rows.as_slice()) {
        (Some(k), []) => return Err(Rejection::UnknownKid(k.to_owned()).into()),
        (None, [only]) => only,
        (None, _) => return Err(Rejection::NoKid.into()),
        (Some(_), [row, ..]) => row,
    };
    if row.status != "active" {
        return Err(Rejection::KeyRetired(row.kid.clone()).into());
    }
    parsed(row)
}

fn fetch(kid: Option<&str>, alg: Algorithm) -> Vec<Row> {
    let columns = "SELECT kid, alg, format, key_text, issuer, status, xmin::text FROM jwt_guard.key_store";
    let (query, arg) = match kid {
        Some(k) => (format!("{columns} WHERE kid OPERATOR(pg_catalog.=) $1"), k.to_owned()),
        None => (
            format!("{columns} WHERE alg OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'active' LIMIT 2"),
            keys::alg_name(alg).to_owned(),
        ),
    };
    // The latest committed rows: a key retired after this transaction began is retired now.
    crate::latest::rows(&query, &[&arg])
        .into_iter()
        .map(|mut r| {
            let mut take = |i: usize| r.get_mut(i).and_then(Option::take);
            Row {
                kid: take(0).unwrap_or_default(),
                alg: take(1).unwrap_or_default(),
                format: take(2).unwrap_or_default(),
                key_text: take(3).unwrap_or_default(),
                issuer: take(4),
                status: take(5).unwrap_or_default(),
                version: take(6).unwrap_or_default(),
            }
        })
        .collect()
}

fn parsed(row: &Row) -> Result<Rc<VerifyingKey>, GuardError> {
    let cache_key = (row.kid.clone(), row.version.clone());
    if let Some(hit) = PARSED.with_borrow(|m| m.get(&cache_key).cloned()) {
        return Ok(hit);
    }
    let format = KeyFormat::parse(&row.format)?;
    let key = Rc::new(VerifyingKey::load(
        &row.alg,
        format,
        &row.key_text,
        row.issuer.as_deref(),
    )?);
    PARSED.with_borrow_mut(|m| {
        if m.len() >= PARSED_CAP {
            m.clear();
        }
        m.insert(cache_key, key.clone());
    });
    Ok(key)
}
