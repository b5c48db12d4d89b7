//! Replay protection, per issuer profile (`set_issuer(…, replay_protection => true)`): each
//! `jti` of that issuer is accepted once, across sessions and restarts, until its `exp`.
//!
//! A use must count even when the client's transaction rolls back, so it is not written in
//! that transaction. It goes into a table in shared memory at once (every backend sees it from
//! then on), and the database's background worker (`jwks_worker`) moves it into
//! `jwt_guard.seen_jtis` within about a second, then forgets it in memory. An entry leaves
//! memory only after its row is committed, so a replay is seen in one place or the other. A
//! backend reads the table (latest snapshot) before it claims the jti in memory, and claims it
//! only if no flush forgot entries in between (else it reads again): its own use, flushed right
//! after the claim, is then never taken for an earlier one. A crash loses at most the uses of
//! the last second.

use crate::errors::GuardError;
use jwt_guard_core::revocation::replay_digest;
use jwt_guard_core::{Identity, Rejection, ReplayRefusal};
use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;

pgrx::extension_sql!(
    r#"
CREATE TABLE jwt_guard.seen_jtis (
    digest     bytea PRIMARY KEY,
    expires_at timestamptz NOT NULL
);
CREATE INDEX seen_jtis_expires_at ON jwt_guard.seen_jtis (expires_at);
REVOKE ALL ON jwt_guard.seen_jtis FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('jwt_guard.seen_jtis', '');
"#,
    name = "seen_jtis",
    requires = ["issuer_profiles"]
);

const SLOTS: usize = 32_768;

#[derive(Copy, Clone, Default)]
struct Seen {
    db: u32,
    digest: [u8; 16],
    /// Unix seconds; 0 marks a free slot.
    exp: i64,
}

/// The waiting uses, and how many flushes have forgotten written ones (see `guard`).
#[derive(Copy, Clone)]
pub struct Pending([Seen; SLOTS], u64);

impl Default for Pending {
    fn default() -> Self {
        Pending([Seen::default(); SLOTS], 0)
    }
}

// SAFETY: plain Copy data without pointers, valid in any process.
unsafe impl PGRXSharedMemory for Pending {}

// SAFETY: the name is this library's own.
static PENDING: PgLwLock<Pending> = unsafe { PgLwLock::new(c"pg_jwt_guard_replay") };

pub fn install() {
    pgrx::pg_shmem_init!(PENDING);
}

/// For an issuer with replay protection: refuses a jti seen before, and with `record`
/// (authenticate) remembers this one. Tokens of other issuers pass untouched.
pub fn guard(identity: &Identity, record: bool) -> Result<(), GuardError> {
    if !protected(identity)? {
        return Ok(());
    }
    check(identity, record)
}

/// Whether the token's issuer has replay protection. The answer holds for one cache
/// generation: the profiles are read again after any change to them.
pub fn protected(identity: &Identity) -> Result<bool, GuardError> {
    let Some(iss) = identity.claims.get("iss").and_then(|v| v.as_str()) else {
        return Ok(false);
    };
    Ok(crate::profiles::all()?
        .by_issuer
        .get(iss)
        .is_some_and(|p| p.replay_protection))
}

/// `guard` for a token already known to be under replay protection.
pub fn check(identity: &Identity, record: bool) -> Result<(), GuardError> {
    let Some(iss) = identity.claims.get("iss").and_then(|v| v.as_str()) else {
        return Ok(());
    };
    let refuse = |why| Err(GuardError::Token(Rejection::Replay(why)));
    let Some(jti) = identity.jti.as_deref() else {
        return refuse(ReplayRefusal::NoJti);
    };
    let digest = replay_digest(iss, jti);
    let db = crate::jwks_worker::this_database();
    if !record {
        // verify(): uses nothing up, so memory and table are read in either order.
        if in_memory(db, &digest) || in_table(&digest)? {
            return refuse(ReplayRefusal::Replayed);
        }
        return Ok(());
    }
    // SAFETY: reads shared state; callable in any backend.
    if unsafe { pg_sys::RecoveryInProgress() } {
        return refuse(ReplayRefusal::Standby);
    }
    // The table is read before the claim, so our own use, written by the worker right after
    // the claim, is never mistaken for an earlier one. An earlier use is in memory until its
    // row has committed: if no flush forgot anything between the table read and the claim, an
    // earlier use is either still in memory (Taken) or was committed before the table read.
    // Otherwise read again.
    for _ in 0..RETRIES {
        let flushes = PENDING.share().1;
        if in_table(&digest)? {
            return refuse(ReplayRefusal::Replayed);
        }
        match claim(db, digest, identity.exp, flushes) {
            Claim::Taken => return refuse(ReplayRefusal::Replayed),
            Claim::Full => {
                crate::jwks_worker::replay_pending();
                return refuse(ReplayRefusal::Full);
            }
            Claim::Claimed => {
                crate::jwks_worker::replay_pending();
                return Ok(());
            }
            Claim::Moved => continue,
        }
    }
    // Flushes end about once a second: four in a row during one check mean something is off.
    refuse(ReplayRefusal::Full)
}

/// Attempts at a claim while flushes keep finishing in between.
const RETRIES: usize = 4;

enum Claim {
    Claimed,
    Taken,
    Full,
    /// A flush forgot uses since the caller read the table: read it again.
    Moved,
}

fn home(digest: &[u8; 16]) -> usize {
    usize::from(digest[0]) << 8 | usize::from(digest[1]) | (usize::from(digest[2]) << 16)
}

/// Linear probing from the digest's home slot: `Ok` with the slot holding it, or `Err` with
/// the free slot that ends the search (None when the table is full).
fn find(slots: &[Seen; SLOTS], db: u32, digest: &[u8; 16]) -> Result<usize, Option<usize>> {
    let start = home(digest);
    for step in 0..SLOTS {
        let i = (start + step) % SLOTS;
        let slot = &slots[i];
        if slot.exp == 0 {
            return Err(Some(i));
        }
        if slot.db == db && &slot.digest == digest {
            return Ok(i);
        }
    }
    Err(None)
}

fn claim(db: u32, digest: [u8; 16], exp: i64, flushes_seen: u64) -> Claim {
    let mut table = PENDING.exclusive();
    if table.1 != flushes_seen {
        return Claim::Moved;
    }
    match find(&table.0, db, &digest) {
        Ok(_) => Claim::Taken,
        Err(None) => Claim::Full,
        Err(Some(i)) => {
            table.0[i] = Seen {
                db,
                digest,
                exp: exp.max(1),
            };
            Claim::Claimed
        }
    }
}

fn in_memory(db: u32, digest: &[u8; 16]) -> bool {
    find(&PENDING.share().0, db, digest).is_ok()
}

fn hex(digest: &[u8; 16]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether the jti's row is committed, read under the latest snapshot as the superuser.
fn in_table(digest: &[u8; 16]) -> Result<bool, GuardError> {
    let hex = hex(digest);
    let rows = crate::context::as_superuser(|| {
        crate::latest::rows(
            "SELECT count(*)::text FROM jwt_guard.seen_jtis WHERE digest OPERATOR(pg_catalog.=) pg_catalog.decode($1, 'hex')",
            &[Some(&hex)],
        )
    });
    match rows.first().and_then(|r| r.first()).cloned().flatten().as_deref() {
        Some("0") => Ok(false),
        Some(_) => Ok(true),
        None => Err(GuardError::Internal(
            "replay protection could not read jwt_guard.seen_jtis".into(),
        )),
    }
}

/// Whether uses of this database wait in memory (the worker stays while they do).
pub fn pending(db: u32) -> bool {
    PENDING.share().0.iter().any(|s| s.exp != 0 && s.db == db)
}

/// Worker side, in a transaction: writes the database's waiting uses to the table and returns
/// their digests, to be forgotten once the transaction has committed.
pub fn write_pending(db: u32) -> Vec<[u8; 16]> {
    let waiting: Vec<Seen> = PENDING
        .share()
        .0
        .iter()
        .filter(|s| s.exp != 0 && s.db == db)
        .copied()
        .collect();
    if waiting.is_empty() {
        return Vec::new();
    }
    let digests: Vec<String> = waiting.iter().map(|s| hex(&s.digest)).collect();
    let exps: Vec<i64> = waiting.iter().map(|s| s.exp).collect();
    Spi::run_with_args(
        "INSERT INTO jwt_guard.seen_jtis (digest, expires_at) \
         SELECT pg_catalog.decode(d, 'hex'), pg_catalog.to_timestamp(e) FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::bigint[])) AS u(d, e) \
         ON CONFLICT (digest) DO NOTHING",
        &[digests.into(), exps.into()],
    )
    .map(|_| waiting.iter().map(|s| s.digest).collect())
    .unwrap_or_else(|e| {
        warning!("pg_jwt_guard: could not record used jtis: {e}; they stay in memory");
        Vec::new()
    })
}

/// Worker side, after the commit: forgets the written uses. The table is rebuilt without them,
/// so every remaining entry stays reachable from its home slot.
pub fn forget(db: u32, written: &[[u8; 16]]) {
    if written.is_empty() {
        return;
    }
    let written: std::collections::HashSet<&[u8; 16]> = written.iter().collect();
    let mut table = PENDING.exclusive();
    let keep: Vec<Seen> = table
        .0
        .iter()
        .filter(|s| s.exp != 0 && !(s.db == db && written.contains(&s.digest)))
        .copied()
        .collect();
    // In place: the table is a megabyte, too large for a temporary on the stack.
    table.0.iter_mut().for_each(|s| *s = Seen::default());
    for s in keep {
        // Fewer entries than before: a free slot is always found.
        if let Err(Some(i)) = find(&table.0, s.db, &s.digest) {
            table.0[i] = s;
        }
    }
    table.1 = table.1.wrapping_add(1);
}

/// Worker side: rows whose tokens expired (plus the largest leeway) can go.
pub fn purge_expired() {
    Spi::run(
        "DELETE FROM jwt_guard.seen_jtis WHERE expires_at OPERATOR(pg_catalog.<) \
         (pg_catalog.now() OPERATOR(pg_catalog.-) interval '301 seconds')",
    )
    .ok();
}
