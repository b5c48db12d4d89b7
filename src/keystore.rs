//! The key store: a table the extension owns that only its owner can read, and the lookup
//! used by verification.
//!
//! Keys are identified by (issuer, kid); a key without an issuer serves any accepted issuer.
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
    kid         text NOT NULL CHECK (length(kid) BETWEEN 1 AND 256),
    alg         text NOT NULL,
    format      text NOT NULL CHECK (format IN ('text', 'jwk')),
    key_text    text NOT NULL,
    issuer      text,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'retired')),
    fingerprint text NOT NULL,
    created     timestamptz NOT NULL DEFAULT now(),
    retired     timestamptz,
    -- Set while the key is missing from its issuer's fetched jwks_uri document.
    unpublished_since timestamptz
);
-- Keys are identified by (issuer, kid): two identity providers may both publish kid "1".
CREATE UNIQUE INDEX key_store_issuer_kid ON jwt_guard.key_store ((coalesce(issuer, '')), kid);
REVOKE ALL ON jwt_guard.key_store FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.key_store', '');

CREATE VIEW jwt_guard.keys AS
    SELECT kid, alg, issuer, status, fingerprint, created, retired, unpublished_since
    FROM jwt_guard.key_store;
REVOKE ALL ON jwt_guard.keys FROM PUBLIC;
GRANT USAGE ON SCHEMA jwt_guard TO PUBLIC;
"#,
    name = "key_store",
    bootstrap
);

pgrx::extension_sql!(
    r#"
CREATE TRIGGER key_store_changed AFTER INSERT OR UPDATE OR DELETE ON jwt_guard.key_store
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE TRIGGER key_store_truncated AFTER TRUNCATE ON jwt_guard.key_store
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
ALTER TABLE jwt_guard.key_store ENABLE ALWAYS TRIGGER key_store_changed, ENABLE ALWAYS TRIGGER key_store_truncated;
REVOKE EXECUTE ON FUNCTION jwt_guard.key_store_changed() FROM PUBLIC;
"#,
    name = "key_store_trigger",
    requires = [key_store_changed]
);

/// Tells every backend, at commit, that cached keys are stale: DML sends no invalidation of
/// its own, so the trigger sends a relcache invalidation for the table it is on. The triggers
/// fire per row and always, whatever `session_replication_role` says: a logical replication
/// subscriber applies rows with it set to `replica` and fires row triggers only.
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

/// The fingerprint of the stored key with this (issuer, kid), if there is one.
fn stored_fingerprint(kid: &str, issuer: Option<&str>) -> Option<String> {
    Spi::get_one_with_args::<String>(
        "SELECT fingerprint FROM jwt_guard.key_store WHERE kid OPERATOR(pg_catalog.=) $1 \
         AND COALESCE(issuer, '') OPERATOR(pg_catalog.=) COALESCE($2::text, '')",
        &[kid.into(), issuer.into()],
    )
    .ok()
    .flatten()
}

fn insert(kid: &str, key: &VerifyingKey, format: KeyFormat, text: &str) -> Result<(), GuardError> {
    keys::check_kid(kid)?;
    if stored_fingerprint(kid, key.issuer.as_deref()).is_some() {
        return Err(KeyError::new(format!(
            "a key with kid \"{}\" already exists for this issuer; retire it and register the new key under a new kid",
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
    .map_err(|e| GuardError::Internal(format!("could not store the key: {e}")))
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

/// `retire_key`: from the next `authenticate()` on, no session accepts tokens signed with it.
/// Without an issuer, every active key with that kid is retired.
pub fn retire(kid: &str, issuer: Option<&str>) -> Result<(), GuardError> {
    match retire_where(Some(kid), issuer) {
        Ok(n) if n > 0 => Ok(()),
        _ => Err(KeyError::new(format!(
            "no active key with kid \"{}\"",
            jwt_guard_core::error::printable(kid)
        ))
        .into()),
    }
}

/// Every active key bound to `issuer`: the issuer is no longer accepted.
pub fn retire_issuer(issuer: &str) -> Result<usize, GuardError> {
    retire_where(None, Some(issuer))
        .map_err(|e| GuardError::Internal(format!("could not retire the issuer's keys: {e}")))
}

/// Retires the active keys with `kid` and/or bound to `issuer` (at least one is given).
fn retire_where(kid: Option<&str>, issuer: Option<&str>) -> Result<usize, pgrx::spi::Error> {
    debug_assert!(kid.is_some() || issuer.is_some());
    // No row limit: with one, the executor stops before the statement trigger fires.
    Spi::connect_mut(|client| {
        client
            .update(
                "UPDATE jwt_guard.key_store SET status = 'retired', retired = pg_catalog.now() \
                 WHERE status OPERATOR(pg_catalog.=) 'active' \
                 AND ($1::text IS NULL OR kid OPERATOR(pg_catalog.=) $1) \
                 AND ($2::text IS NULL OR issuer OPERATOR(pg_catalog.=) $2)",
                None,
                &[kid.into(), issuer.into()],
            )
            .map(|table| table.len())
    })
}

/// One line of `sync_jwks`'s result.
pub struct SyncLine {
    pub kid: Option<String>,
    pub action: &'static str,
    pub reason: Option<String>,
}

/// `sync_jwks`: brings the issuer's keys in line with a JWKS document, idempotently.
pub fn sync(
    issuer: &str,
    jwks: &serde_json::Value,
    retire_missing: bool,
    default_alg: Option<&str>,
) -> Result<Vec<SyncLine>, GuardError> {
    let (mut out, published) = apply(keys::classify_jwks(jwks, Some(issuer), default_alg)?)?;
    if retire_missing {
        for kid in active_kids(issuer)? {
            if !published.contains(&kid) {
                retire_where(Some(&kid), Some(issuer))
                    .map_err(|e| GuardError::Internal(format!("could not retire a key: {e}")))?;
                // A kid the document lists with other material was reported skipped above.
                let relisted = out
                    .iter()
                    .any(|l| l.action == "skipped" && l.kid.as_deref() == Some(kid.as_str()));
                let reason = if relisted {
                    "its key material is no longer in the document (the kid is listed with other material)"
                } else {
                    "no longer in the document"
                };
                out.push(SyncLine {
                    kid: Some(kid),
                    action: "retired",
                    reason: Some(reason.into()),
                });
            }
        }
    }
    Ok(out)
}

/// Applies a document fetched from the issuer's `jwks_uri`: new keys are added; a stored key
/// missing from the document is marked, and retired once it has been missing for `grace_secs`;
/// a key that comes back before then is unmarked.
pub fn sync_published(
    issuer: &str,
    verdicts: Vec<keys::JwkVerdict>,
    grace_secs: i32,
) -> Result<Vec<SyncLine>, GuardError> {
    let (mut out, published) = apply(verdicts)?;
    let fail = |e: pgrx::spi::Error| GuardError::Internal(format!("could not record unpublished keys: {e}"));
    let retired = Spi::connect_mut(|client| {
        client.update(
            "UPDATE jwt_guard.key_store SET unpublished_since = NULL WHERE issuer OPERATOR(pg_catalog.=) $1 \
             AND kid OPERATOR(pg_catalog.=) ANY ($2) AND unpublished_since IS NOT NULL",
            None,
            &[issuer.into(), published.clone().into()],
        )?;
        client.update(
            "UPDATE jwt_guard.key_store SET unpublished_since = pg_catalog.now() \
             WHERE issuer OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'active' \
             AND unpublished_since IS NULL AND kid OPERATOR(pg_catalog.<>) ALL ($2)",
            None,
            &[issuer.into(), published.into()],
        )?;
        let rows = client.update(
            "UPDATE jwt_guard.key_store SET status = 'retired', retired = pg_catalog.now() \
             WHERE issuer OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'active' \
             AND unpublished_since OPERATOR(pg_catalog.<=) (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $2)) \
             RETURNING kid",
            None,
            &[issuer.into(), f64::from(grace_secs).into()],
        )?;
        let mut kids = Vec::new();
        for row in rows {
            kids.extend(row.get::<String>(1)?);
        }
        Ok::<_, pgrx::spi::Error>(kids)
    })
    .map_err(fail)?;
    out.extend(retired.into_iter().map(|kid| SyncLine {
        kid: Some(kid),
        action: "retired",
        reason: Some("missing from the published document for longer than the grace period".into()),
    }));
    Ok(out)
}

/// Adds the usable keys that are new and reports every verdict; returns the published kids.
fn apply(verdicts: Vec<keys::JwkVerdict>) -> Result<(Vec<SyncLine>, Vec<String>), GuardError> {
    let mut out = Vec::new();
    let mut published = Vec::new();
    for verdict in verdicts {
        match verdict {
            keys::JwkVerdict::Skip { kid, reason } => out.push(SyncLine {
                kid,
                action: "skipped",
                reason: Some(reason),
            }),
            keys::JwkVerdict::Use(k) => {
                let line = sync_one(&k)?;
                // A kid now published with other material does not publish the stored key.
                if line.action != "skipped" {
                    published.push(k.kid.clone());
                }
                out.push(line);
            }
        }
    }
    Ok((out, published))
}

fn sync_one(k: &keys::ImportedKey) -> Result<SyncLine, GuardError> {
    let line = |action, reason: Option<&str>| SyncLine {
        kid: Some(k.kid.clone()),
        action,
        reason: reason.map(str::to_owned),
    };
    Ok(match stored_fingerprint(&k.kid, k.key.issuer.as_deref()) {
        None => {
            insert(&k.kid, &k.key, KeyFormat::Jwk, &k.jwk_text)?;
            line("added", None)
        }
        Some(f) if f == k.key.fingerprint() => line("unchanged", None),
        Some(_) => line(
            "skipped",
            Some("a key with this kid is stored with other key material; it is never replaced: retire it and publish the new key under a new kid"),
        ),
    })
}

fn active_kids(issuer: &str) -> Result<Vec<String>, GuardError> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT kid FROM jwt_guard.key_store WHERE issuer OPERATOR(pg_catalog.=) $1 \
             AND status OPERATOR(pg_catalog.=) 'active' ORDER BY kid",
            None,
            &[issuer.into()],
        )?;
        let mut out = Vec::new();
        for row in rows {
            if let Some(kid) = row.get::<String>(1)? {
                out.push(kid);
            }
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .map_err(|e| GuardError::Internal(format!("could not read the issuer's keys: {e}")))
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
/// when the token has no kid; among keys bound to the token's (unverified) issuer first, then
/// keys bound to no issuer. Found keys are cached until the key store (or any relation)
/// changes; its trigger makes sure a change reaches every session.
pub fn find(kid: Option<&str>, alg: Algorithm, issuer: Option<&str>) -> Result<Rc<VerifyingKey>, GuardError> {
    let lookup = format!(
        "{}\0{}",
        issuer.unwrap_or(""),
        match kid {
            Some(k) => format!("kid:{k}"),
            None => format!("alg:{}", keys::alg_name(alg)),
        }
    );
    if let Some(key) = FOUND.with_borrow_mut(|m| m.get(&lookup)) {
        return Ok(key);
    }
    let generation = cache::generation();
    let key = find_uncached(kid, alg, issuer)?;
    FOUND.with_borrow_mut(|m| m.put(lookup, key.clone(), generation));
    Ok(key)
}

fn find_uncached(kid: Option<&str>, alg: Algorithm, issuer: Option<&str>) -> Result<Rc<VerifyingKey>, GuardError> {
    let rows = context::as_superuser(|| fetch(kid, alg, issuer));
    // Rows come issuer-bound first; a kid-less token needs exactly one candidate of the best kind.
    let bound: Vec<&Row> = rows.iter().filter(|r| r.issuer.is_some()).collect();
    let best: Vec<&Row> = if bound.is_empty() { rows.iter().collect() } else { bound };
    let others;
    let row = match (kid, best.as_slice()) {
        (Some(k), []) => {
            crate::jwks_worker::unknown_key(issuer);
            // The kid may be another issuer's key: the signature and the issuer rule then say
            // what is wrong (a wrong or unreadable `iss`) instead of `unknown kid`. The issuer
            // rule refuses a token whose `iss` is not the key's own.
            others = context::as_superuser(|| fetch_other_issuers(k));
            match others.first() {
                Some(row) => row,
                None => return Err(Rejection::UnknownKid(k.to_owned()).into()),
            }
        }
        (None, []) => {
            crate::jwks_worker::unknown_key(issuer);
            return Err(Rejection::NoKid.into());
        }
        (None, [only]) => *only,
        (None, _) => return Err(Rejection::NoKid.into()),
        (Some(_), [row, ..]) => *row,
    };
    if row.status != "active" {
        return Err(Rejection::KeyRetired(row.kid.clone()).into());
    }
    parsed(row)
}

fn fetch(kid: Option<&str>, alg: Algorithm, issuer: Option<&str>) -> Vec<Row> {
    let columns = "SELECT kid, alg, format, key_text, issuer, status, xmin::text FROM jwt_guard.key_store";
    let scope = "(issuer OPERATOR(pg_catalog.=) $2 OR issuer IS NULL)";
    let order = "ORDER BY issuer IS NULL, status LIMIT 3";
    let (query, first) = match kid {
        Some(k) => (format!("{columns} WHERE kid OPERATOR(pg_catalog.=) $1 AND {scope} {order}"), k.to_owned()),
        None => (
            format!(
                "{columns} WHERE alg OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'active' AND {scope} {order}"
            ),
            keys::alg_name(alg).to_owned(),
        ),
    };
    // The latest committed rows: a key retired after this transaction began is retired now.
    rows(&query, &[Some(&first), issuer])
}

/// An active key stored under `kid` for an issuer other than the token's.
fn fetch_other_issuers(kid: &str) -> Vec<Row> {
    rows(
        "SELECT kid, alg, format, key_text, issuer, status, xmin::text FROM jwt_guard.key_store \
         WHERE kid OPERATOR(pg_catalog.=) $1 AND issuer IS NOT NULL \
         AND status OPERATOR(pg_catalog.=) 'active' ORDER BY issuer LIMIT 1",
        &[Some(kid)],
    )
}

fn rows(query: &str, params: &[Option<&str>]) -> Vec<Row> {
    crate::latest::rows(query, params)
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
    let cache_key = (
        format!("{}\0{}", row.issuer.as_deref().unwrap_or(""), row.kid),
        row.version.clone(),
    );
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
