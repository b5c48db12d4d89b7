//! Revocation: tokens (by jti) and subjects (by sub, optionally per issuer, for tokens issued
//! before an instant) that no session accepts any more, from the next `authenticate()` on.
//!
//! The lists live in two tables the extension owns. Each backend keeps them in memory
//! (`jwt_guard_core::revocation`), loaded under the latest committed snapshot and reloaded only
//! when one of the two tables changes: their trigger sends a relcache invalidation, which the
//! callback in `cache` passes here by relation OID. The check runs on every `authenticate()`
//! and `verify()`, token-cache hits included, and costs two hash lookups.

use crate::admin;
use crate::errors::{GuardError, OrRaise};
use jwt_guard_core::revocation::RevocationList;
use jwt_guard_core::{Identity, Rejection};
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};

pgrx::extension_sql!(
    r#"
CREATE SEQUENCE jwt_guard.revoked_tokens_seq;
CREATE TABLE jwt_guard.revoked_tokens (
    -- Backends read new entries by seq (a re-revocation takes a new one); an unrevoke moves
    -- the epoch, and they read all again.
    seq        bigint NOT NULL DEFAULT nextval('jwt_guard.revoked_tokens_seq') UNIQUE,
    jti        text PRIMARY KEY CHECK (length(jti) BETWEEN 1 AND 1024),
    -- What backends load: the first 16 bytes of SHA-256 over the jti's UTF-8 bytes.
    digest     bytea NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    revoked_by name NOT NULL DEFAULT session_user
);
CREATE FUNCTION jwt_guard.revoked_token_digest() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    NEW.digest := substring(sha256(convert_to(NEW.jti, 'UTF8')) FROM 1 FOR 16);
    RETURN NEW;
END $$;
REVOKE EXECUTE ON FUNCTION jwt_guard.revoked_token_digest() FROM PUBLIC;
CREATE TRIGGER revoked_tokens_digest BEFORE INSERT OR UPDATE OF jti ON jwt_guard.revoked_tokens
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.revoked_token_digest();
CREATE TABLE jwt_guard.revoked_subjects (
    sub           text NOT NULL CHECK (length(sub) BETWEEN 1 AND 1024),
    iss           text,
    issued_before timestamptz NOT NULL CHECK (issued_before <> '-infinity'),
    revoked_at    timestamptz NOT NULL DEFAULT now(),
    revoked_by    name NOT NULL DEFAULT session_user
);
CREATE TABLE jwt_guard.revocation_epoch (
    epoch  bigint NOT NULL,
    purged timestamptz NOT NULL
);
INSERT INTO jwt_guard.revocation_epoch VALUES (1, '-infinity');
REVOKE ALL ON jwt_guard.revocation_epoch FROM PUBLIC;
CREATE UNIQUE INDEX revoked_subjects_sub_iss ON jwt_guard.revoked_subjects (sub, (coalesce(iss, '')));
REVOKE ALL ON jwt_guard.revoked_tokens, jwt_guard.revoked_subjects FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.revoked_tokens', '');
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.revoked_tokens_seq', '');
REVOKE ALL ON SEQUENCE jwt_guard.revoked_tokens_seq FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.revoked_subjects', '');
-- Inserts take the epoch row's lock before any row gets its seq, so seqs become visible in
-- order and a backend that has read up to seq n never misses a smaller one committed later.
CREATE FUNCTION jwt_guard.revocations_in_order() RETURNS trigger LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    PERFORM 1 FROM jwt_guard.revocation_epoch FOR UPDATE;
    RETURN NULL;
END $$;
REVOKE EXECUTE ON FUNCTION jwt_guard.revocations_in_order() FROM PUBLIC;
CREATE TRIGGER revoked_tokens_in_order BEFORE INSERT ON jwt_guard.revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.revocations_in_order();
CREATE TRIGGER revoked_tokens_changed AFTER INSERT OR UPDATE OR DELETE ON jwt_guard.revoked_tokens
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE TRIGGER revoked_tokens_truncated AFTER TRUNCATE ON jwt_guard.revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
ALTER TABLE jwt_guard.revoked_tokens ENABLE ALWAYS TRIGGER revoked_tokens_changed, ENABLE ALWAYS TRIGGER revoked_tokens_truncated;
CREATE TRIGGER revoked_subjects_changed AFTER INSERT OR UPDATE OR DELETE ON jwt_guard.revoked_subjects
    FOR EACH ROW EXECUTE FUNCTION jwt_guard.key_store_changed();
CREATE TRIGGER revoked_subjects_truncated AFTER TRUNCATE ON jwt_guard.revoked_subjects
    FOR EACH STATEMENT EXECUTE FUNCTION jwt_guard.key_store_changed();
ALTER TABLE jwt_guard.revoked_subjects ENABLE ALWAYS TRIGGER revoked_subjects_changed, ENABLE ALWAYS TRIGGER revoked_subjects_truncated;
CREATE VIEW jwt_guard.revocations AS
    SELECT 'token'::text AS kind, jti AS value, NULL::text AS iss, expires_at,
           NULL::timestamptz AS issued_before, revoked_at, revoked_by
    FROM jwt_guard.revoked_tokens
    UNION ALL
    SELECT 'subject', sub, iss, NULL, issued_before, revoked_at, revoked_by
    FROM jwt_guard.revoked_subjects;
REVOKE ALL ON jwt_guard.revocations FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.revoke_token(text, timestamptz) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.revoke_subject(text, timestamptz, text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.unrevoke_token(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION jwt_guard.unrevoke_subject(text, text) FROM PUBLIC;
"#,
    name = "revocations",
    requires = [
        "key_store_trigger",
        revoke_token,
        revoke_subject,
        unrevoke_token,
        unrevoke_subject
    ]
);

/// Longest leeway a setting allows: a revoked jti is kept this long past its expiry.
/// (One second more than the leeway: time checks run on whole seconds.)
const MAX_LEEWAY_SECS: i32 = 301;

/// Runs one write to the lists; `removes_jtis` when it can take jtis off, which backends only
/// see by reading the token list whole (the epoch moves). Subjects are always read whole.
fn write(what: &str, sql: &str, args: &[pgrx::datum::DatumWithOid], removes_jtis: bool) -> Result<bool, GuardError> {
    purge()?;
    let fail = |e: pgrx::spi::Error| GuardError::Internal(format!("could not {what}: {e}"));
    let changed = Spi::connect_mut(|c| c.update(sql, None, args).map(|t| !t.is_empty())).map_err(fail)?;
    if changed && removes_jtis {
        new_epoch().map_err(fail)?;
    }
    Ok(changed)
}

/// Tells every backend to read the token list whole again (entries were removed).
fn new_epoch() -> Result<(), pgrx::spi::Error> {
    Spi::run("UPDATE jwt_guard.revocation_epoch SET epoch = epoch OPERATOR(pg_catalog.+) 1")
}

/// At most once an hour, drops revoked jtis whose tokens can no longer verify anyway (past
/// `expires_at` plus the largest leeway). Subject revocations have no end: only
/// `unrevoke_subject` removes them.
fn purge() -> Result<(), GuardError> {
    let fail = |e: pgrx::spi::Error| GuardError::Internal(format!("could not purge expired revocations: {e}"));
    let due = Spi::connect_mut(|c| {
        c.update(
            "UPDATE jwt_guard.revocation_epoch SET purged = pg_catalog.now() \
             WHERE purged OPERATOR(pg_catalog.<) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '1 hour')",
            None,
            &[],
        )
        .map(|t| !t.is_empty())
    })
    .map_err(fail)?;
    if !due {
        return Ok(());
    }
    let deleted = Spi::connect_mut(|c| {
        c.update(
            "DELETE FROM jwt_guard.revoked_tokens WHERE expires_at OPERATOR(pg_catalog.<) \
             (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $1))",
            None,
            &[f64::from(MAX_LEEWAY_SECS).into()],
        )
        .map(|t| t.len())
    })
    .map_err(fail)?;
    if deleted > 0 {
        new_epoch().map_err(fail)?;
    }
    Ok(())
}

fn non_empty<'a>(name: &str, v: Option<&'a str>) -> &'a str {
    v.filter(|s| !s.is_empty() && s.len() <= 1024)
        .unwrap_or_else(|| GuardError::Setting(format!("{name} must be a string of 1 to 1024 bytes")).raise())
}

/// Revokes one token by its `jti`, for every issuer. With `expires_at` (the token's `exp`), the
/// entry is purged once it cannot matter; without it, it stays until `unrevoke_token`.
#[pg_extern(volatile, parallel_unsafe)]
fn revoke_token(jti: Option<&str>, expires_at: default!(Option<pgrx::datum::TimestampWithTimeZone>, "NULL")) {
    let _admin = admin::enter("revoke_token()");
    let jti = non_empty("jti", jti);
    write(
        "revoke the token",
        "INSERT INTO jwt_guard.revoked_tokens AS r (jti, expires_at) VALUES ($1, $2) \
         ON CONFLICT (jti) DO UPDATE SET expires_at = EXCLUDED.expires_at, revoked_at = pg_catalog.now(), \
         revoked_by = EXCLUDED.revoked_by, seq = EXCLUDED.seq",
        &[jti.into(), expires_at.into()],
        false,
    )
    .or_raise();
}

/// Revokes every token of `sub` issued before `issued_before` (tokens without `iat` included),
/// for one issuer or, without `iss`, for all.
#[pg_extern(volatile, parallel_unsafe)]
fn revoke_subject(
    sub: Option<&str>,
    issued_before: default!(Option<pgrx::datum::TimestampWithTimeZone>, "now()"),
    iss: default!(Option<&str>, "NULL"),
) {
    let _admin = admin::enter("revoke_subject()");
    let sub = non_empty("sub", sub);
    let Some(issued_before) = issued_before else {
        GuardError::Setting("issued_before must not be NULL".into()).raise()
    };
    write(
        "revoke the subject",
        "INSERT INTO jwt_guard.revoked_subjects AS r (sub, iss, issued_before) VALUES ($1, $2, $3) \
         ON CONFLICT (sub, (coalesce(iss, ''))) DO UPDATE SET issued_before = EXCLUDED.issued_before, \
         revoked_at = pg_catalog.now(), revoked_by = EXCLUDED.revoked_by",
        &[sub.into(), iss.into(), issued_before.into()],
        false,
    )
    .or_raise();
}

/// Takes a token off the list; false when it was not on it.
#[pg_extern(volatile, parallel_unsafe)]
fn unrevoke_token(jti: &str) -> bool {
    let _admin = admin::enter("unrevoke_token()");
    write(
        "unrevoke the token",
        "DELETE FROM jwt_guard.revoked_tokens WHERE jti OPERATOR(pg_catalog.=) $1",
        &[jti.into()],
        true,
    )
    .or_raise()
}

/// Takes a subject revocation off the list (the one for `iss`, or the one for every issuer
/// when `iss` is NULL); false when there was none.
#[pg_extern(volatile, parallel_unsafe)]
fn unrevoke_subject(sub: &str, iss: default!(Option<&str>, "NULL")) -> bool {
    let _admin = admin::enter("unrevoke_subject()");
    write(
        "unrevoke the subject",
        "DELETE FROM jwt_guard.revoked_subjects WHERE sub OPERATOR(pg_catalog.=) $1 \
         AND coalesce(iss, '') OPERATOR(pg_catalog.=) coalesce($2::text, '')",
        &[sub.into(), iss.into()],
        false,
    )
    .or_raise()
}

// ---- the check ---------------------------------------------------------------------------

/// What a backend holds: the lists, the tables they came from, how far it has read.
#[derive(Default)]
struct Loaded {
    list: RevocationList,
    oids: [u32; 2],
    epoch: i64,
    last_seq: i64,
}

thread_local! {
    static LOADED: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    /// The tables' OIDs, kept apart from the lists so a reload never hides them.
    static OIDS: Cell<[u32; 2]> = const { Cell::new([0, 0]) };
    static LOADING: Cell<bool> = const { Cell::new(false) };
    static STALE: Cell<bool> = const { Cell::new(true) };
    /// Moves every time the lists are read again; 0 until they are first read.
    static VERSION: Cell<u64> = const { Cell::new(0) };
}

/// From the relcache callback: a change to either table (or to every relation) marks the
/// lists for reading; so does any change that arrives while they are being read, whose
/// snapshot may have missed it.
pub fn relation_changed(relid: pg_sys::Oid) {
    let relid = relid.to_u32();
    if relid == 0 || LOADING.get() || OIDS.get().contains(&relid) {
        STALE.set(true);
    }
}

/// Refuses a revoked token. Reads what changed first; fails closed when the lists cannot be
/// read.
pub fn check(identity: &Identity) -> Result<(), GuardError> {
    refresh()?;
    check_loaded(identity)
}

/// `check` for a token served from the token cache: `passed` holds the version of the lists it
/// last passed, and the lists are consulted again only when they have been read since. The
/// verdict depends on the token and the lists alone, never on the time.
pub fn check_cached(identity: &Identity, passed: &Cell<u64>) -> Result<(), GuardError> {
    refresh()?;
    let version = VERSION.get();
    if version != 0 && passed.get() == version {
        return Ok(());
    }
    check_loaded(identity)?;
    passed.set(version);
    Ok(())
}

/// The version of the lists a verification just passed (after `check`).
pub fn version() -> u64 {
    VERSION.get()
}

fn check_loaded(identity: &Identity) -> Result<(), GuardError> {
    let claim = |name: &str| identity.claims.get(name);
    let iss = claim("iss").and_then(|v| v.as_str());
    let iat = claim("iat").and_then(|v| v.as_i64());
    LOADED.with_borrow(|l| match l {
        Some(l) => l
            .list
            .check(identity.jti.as_deref(), identity.sub.as_deref(), iss, iat)
            .map_err(|r: Rejection| r.into()),
        None => Err(unreadable()),
    })
}

fn unreadable() -> GuardError {
    GuardError::Internal("the revocation lists could not be read; no token is accepted".into())
}

/// Brings the lists up to date when a table changed: new jtis only (by seq), unless the epoch
/// moved (entries were removed), then everything; subjects always whole (they are few).
fn refresh() -> Result<(), GuardError> {
    if !STALE.get() && LOADED.with_borrow(Option::is_some) {
        return Ok(());
    }
    // Cleared before reading: an invalidation that arrives meanwhile marks it again.
    STALE.set(false);
    let mut loaded = LOADED.take().unwrap_or_default();
    LOADING.set(true);
    let read = crate::context::as_superuser(|| read_changes(&mut loaded));
    LOADING.set(false);
    match read {
        Ok(()) => {
            OIDS.set(loaded.oids);
            LOADED.set(Some(loaded));
            VERSION.set(VERSION.get().wrapping_add(1).max(1));
            Ok(())
        }
        Err(e) => {
            STALE.set(true);
            Err(e)
        }
    }
}

fn read_changes(l: &mut Loaded) -> Result<(), GuardError> {
    let head = crate::latest::rows(
        "SELECT pg_catalog.to_regclass('jwt_guard.revoked_tokens')::oid::text, \
         pg_catalog.to_regclass('jwt_guard.revoked_subjects')::oid::text, \
         (SELECT epoch::text FROM jwt_guard.revocation_epoch)",
        &[],
    );
    let col = |i: usize| {
        head.first()
            .and_then(|r| r.get(i).cloned().flatten())
            .ok_or_else(unreadable)
    };
    let oids = [
        col(0)?.parse().map_err(|_| unreadable())?,
        col(1)?.parse().map_err(|_| unreadable())?,
    ];
    let epoch: i64 = col(2)?.parse().map_err(|_| unreadable())?;
    if oids != l.oids || epoch != l.epoch {
        *l = Loaded {
            oids,
            epoch,
            ..Loaded::default()
        };
    }
    // One row: the new digests, 16 bytes each, and how far they go.
    let since = l.last_seq.to_string();
    let rows = crate::latest::rows(
        "SELECT pg_catalog.encode(pg_catalog.string_agg(digest, ''::bytea) FILTER (WHERE expires_at IS NULL \
         OR expires_at OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) interval '301 seconds')), 'hex'), \
         max(seq)::text FROM jwt_guard.revoked_tokens WHERE seq OPERATOR(pg_catalog.>) $1::bigint",
        &[Some(&since)],
    );
    let row = rows.first().ok_or_else(unreadable)?;
    let packed = row.first().cloned().flatten().unwrap_or_default();
    for digest in digests(&packed).ok_or_else(unreadable)? {
        l.list.revoke_token_digest(digest);
    }
    if let Some(max) = row.get(1).cloned().flatten() {
        l.last_seq = max.parse().map_err(|_| unreadable())?;
    }
    l.list.clear_subjects();
    for row in crate::latest::rows(
        "SELECT sub, iss, CASE WHEN pg_catalog.isfinite(issued_before) \
         THEN (EXTRACT(epoch FROM issued_before) * 1000000)::bigint ELSE 9223372036854775807 END::text \
         FROM jwt_guard.revoked_subjects",
        &[],
    ) {
        let col = |i: usize| row.get(i).cloned().flatten();
        let (Some(sub), Some(before)) = (col(0), col(2).and_then(|s| s.parse::<i64>().ok())) else {
            return Err(unreadable());
        };
        l.list.revoke_subject(&sub, col(1), before);
    }
    Ok(())
}

/// Hex text of back-to-back 16-byte digests.
fn digests(hex: &str) -> Option<Vec<[u8; 16]>> {
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(32) {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    bytes
        .chunks(32)
        .map(|chunk| {
            let mut d = [0u8; 16];
            for (i, pair) in chunk.chunks(2).enumerate() {
                d[i] = nibble(pair[0])? << 4 | nibble(pair[1])?;
            }
            Some(d)
        })
        .collect()
}
