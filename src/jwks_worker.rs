//! Remote JWKS: a background worker per database keeps the keys of every issuer with a
//! `jwks_uri` in line with what the issuer publishes.
//!
//! - A launcher (connected to no database, restarted after a crash) starts a
//!   worker for every database that accepts connections, at server start and again every
//!   `jwks_refresh`; a worker whose database has no issuer with a `jwks_uri` leaves at once (a
//!   connected worker would hold off DROP DATABASE). `set_issuer` with a `jwks_uri` (at
//!   commit), a token with an unknown kid and `refresh_jwks` start it sooner.
//! - Each issuer's document is fetched when first seen, every `pg_jwt_guard.jwks_refresh`,
//!   and soon after a token arrives with a kid the store does not have (at most once every
//!   `pg_jwt_guard.jwks_min_interval` per issuer, so forged kids cannot make it hammer the
//!   identity provider).
//! - A fetched document is applied like `sync_jwks`; keys missing from it are retired after
//!   `pg_jwt_guard.jwks_retire_grace`. A failed fetch changes no key: it is logged and shown in
//!   `jwt_guard.issuers`.
//!
//! - The same worker moves replay-protected jti uses from shared memory into
//!   `jwt_guard.seen_jtis` (see `replay`) and stays while any wait.
//!
//! Backends and workers meet in a small shared table of slots, one per database.

use crate::errors::GuardError;
use crate::jwks_fetch::{self, FetchConfig};
use crate::{keystore, preload, profiles, settings};
use jwt_guard_core::published::{self, redact_uri};
use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags};
use pgrx::lwlock::PgLwLock;
use pgrx::prelude::*;
use pgrx::shmem::PGRXSharedMemory;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SLOTS: usize = 32;
const ASKED: usize = 8;
/// A worker that has not beaten for this long is gone (it beats at least once a second and
/// before every fetch, and a fetch lasts at most 60 s).
const STALE_SECS: i64 = 90;

#[derive(Copy, Clone, Default)]
struct Slot {
    db: u32,
    heartbeat: i64,
    starting: i64,
    /// The worker serving the database (a second one that finds another pid leaves).
    pid: i32,
    /// A new `jwks_uri` was committed: read the profiles again before leaving.
    run: bool,
    /// `refresh_jwks`: fetch now, whatever the intervals say.
    force: bool,
    /// Issuers (hashed) that saw an unknown kid; `asked_all` when more than fit.
    asked: [u64; ASKED],
    asked_len: u8,
    asked_all: bool,
}

#[derive(Copy, Clone, Default)]
pub struct Slots([Slot; SLOTS]);

// SAFETY: plain Copy data without pointers, valid in any process.
unsafe impl PGRXSharedMemory for Slots {}

// SAFETY: the name is this library's own.
static SHARED: PgLwLock<Slots> = unsafe { PgLwLock::new(c"pg_jwt_guard_jwks") };

/// Shared memory and the launcher; only while shared_preload_libraries is being processed.
pub fn install() {
    pgrx::pg_shmem_init!(SHARED);
    BackgroundWorkerBuilder::new("pg_jwt_guard jwks launcher")
        .set_type("pg_jwt_guard jwks launcher")
        .set_library("pg_jwt_guard")
        .set_function("pg_jwt_guard_jwks_launcher")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        // Restarted after a crash (or an error) so the workers come back too.
        .set_restart_time(Some(Duration::from_secs(30)))
        .load();
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn issuer_hash(iss: &str) -> u64 {
    // SipHash with fixed keys: the same in every process of this build.
    let mut h = DefaultHasher::new();
    iss.hash(&mut h);
    h.finish()
}

pub fn this_database() -> u32 {
    // SAFETY: set once at connection start and never changed.
    unsafe { pg_sys::MyDatabaseId }.to_u32()
}

fn my_pid() -> i32 {
    // SAFETY: MyProcPid is this process's pid, set at start.
    unsafe { pg_sys::MyProcPid }
}

fn in_recovery() -> bool {
    // SAFETY: reads shared state; callable in any backend.
    unsafe { pg_sys::RecoveryInProgress() }
}

/// What a backend asks of its database's worker.
enum Ask<'a> {
    /// Only that it runs (a new `jwks_uri`).
    Run,
    /// Refetch this issuer (a token with an unknown kid).
    Issuer(&'a str),
    /// Refetch every issuer now.
    Force,
}

/// Records the request and starts the worker if none is alive. Returns false when no slot or
/// no worker process could be had (the server log says why).
fn ask(db: u32, what: Ask) -> bool {
    if in_recovery() {
        return false; // keys arrive from the primary; nothing may be written here
    }
    let start = {
        let mut slots = SHARED.exclusive();
        let t = now();
        let Some(slot) = slots.0.slot_of(db, t) else {
            return false;
        };
        match what {
            Ask::Run => slot.run = true,
            Ask::Force => slot.force = true,
            Ask::Issuer(iss) => {
                let h = issuer_hash(iss);
                let n = usize::from(slot.asked_len);
                if !slot.asked[..n].contains(&h) {
                    if n < ASKED {
                        slot.asked[n] = h;
                        slot.asked_len += 1;
                    } else {
                        slot.asked_all = true;
                    }
                }
            }
        }
        let must_start = stale(slot, t);
        if must_start {
            slot.starting = t;
        }
        must_start
    };
    !start || start_worker(db).is_some()
}

/// The database's slot, or a free (or abandoned) one taken for it.
trait SlotOf {
    fn slot_of(&mut self, db: u32, t: i64) -> Option<&mut Slot>;
}

impl SlotOf for [Slot; SLOTS] {
    fn slot_of(&mut self, db: u32, t: i64) -> Option<&mut Slot> {
        let i = self
            .iter()
            .position(|s| s.db == db)
            .or_else(|| self.iter().position(|s| s.db == 0 || stale(s, t)))?;
        if self[i].db != db {
            self[i] = Slot { db, ..Slot::default() };
        }
        Some(&mut self[i])
    }
}

/// Neither beating nor being started.
fn stale(s: &Slot, t: i64) -> bool {
    t - s.heartbeat > STALE_SECS && t - s.starting > STALE_SECS
}

fn start_worker(db: u32) -> Option<pgrx::bgworkers::DynamicBackgroundWorker> {
    let handle = BackgroundWorkerBuilder::new("pg_jwt_guard jwks worker")
        .set_type("pg_jwt_guard jwks worker")
        .set_library("pg_jwt_guard")
        .set_function("pg_jwt_guard_jwks_worker")
        .set_argument(Some(pg_sys::Datum::from(db)))
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(None)
        .set_notify_pid(my_pid())
        .load_dynamic();
    if handle.is_err() {
        // The slot keeps its start time, so the next attempt (and this line) comes only once
        // the start has gone stale: forged kids cannot flood the log.
        log!("pg_jwt_guard: no background worker slot is free for the jwks worker; raise max_worker_processes");
    }
    handle.ok()
}

/// A token arrived with a kid the store does not have: if its issuer publishes a `jwks_uri`,
/// ask for a refetch. Never fails the caller.
pub fn unknown_key(issuer: Option<&str>) {
    let Some(iss) = issuer else { return };
    let has_uri = profiles::all()
        .ok()
        .is_some_and(|p| p.by_issuer.get(iss).is_some_and(|p| p.jwks_uri.is_some()));
    if has_uri && preload::require().is_ok() {
        ask(this_database(), Ask::Issuer(iss));
    }
}

/// A use of a replay-protected jti waits in memory: make sure the worker runs to record it.
pub fn replay_pending() {
    ask(this_database(), Ask::Run);
}

/// `set_issuer` stored a `jwks_uri`: once the profile is committed, make sure the worker runs
/// to see it (a worker started earlier could read the table before the commit and leave).
pub fn issuer_changed() {
    if preload::require().is_ok() {
        let db = this_database();
        // ask() raises no error: it takes an LWLock, and a failed worker start is only logged.
        pgrx::register_xact_callback(pgrx::PgXactCallbackEvent::Commit, move || {
            ask(db, Ask::Run);
        });
    }
}

/// Fetches every `jwks_uri` of this database now, whatever the intervals say.
#[pg_extern(volatile, parallel_unsafe)]
fn refresh_jwks() -> bool {
    let _admin = crate::admin::enter("refresh_jwks()");
    if in_recovery() {
        GuardError::Setting("keys cannot be fetched on a standby; they arrive from the primary".into()).raise()
    }
    ask(this_database(), Ask::Force)
}

pgrx::extension_sql!(
    "REVOKE EXECUTE ON FUNCTION jwt_guard.refresh_jwks() FROM PUBLIC;",
    name = "refresh_jwks_acl",
    requires = [refresh_jwks]
);

// ---- worker side ----------------------------------------------------------------------

/// What the worker takes from its slot at each beat.
#[derive(Default)]
struct Requests {
    force: bool,
    all: bool,
    issuers: Vec<u64>,
}

/// Marks this worker alive; false if another live worker already serves the database.
fn claim(db: u32) -> bool {
    let mut slots = SHARED.exclusive();
    let t = now();
    let Some(slot) = slots.0.slot_of(db, t) else {
        return false;
    };
    if t - slot.heartbeat <= STALE_SECS {
        return false;
    }
    slot.heartbeat = t;
    slot.starting = 0;
    slot.pid = my_pid();
    true
}

/// Takes the requests; None when the slot now belongs to another worker (this one then leaves).
fn beat(db: u32) -> Option<Requests> {
    let mut slots = SHARED.exclusive();
    let me = my_pid();
    let slot = slots.0.iter_mut().find(|s| s.db == db && s.pid == me)?;
    slot.heartbeat = now();
    let taken = Requests {
        force: slot.force,
        all: slot.asked_all,
        issuers: slot.asked[..usize::from(slot.asked_len)].to_vec(),
    };
    slot.force = false;
    slot.run = false;
    slot.asked_all = false;
    slot.asked_len = 0;
    Some(taken)
}

/// Frees the slot unless a request came in meanwhile (then the worker stays).
fn try_release(db: u32) -> bool {
    let mut slots = SHARED.exclusive();
    let me = my_pid();
    let Some(slot) = slots.0.iter_mut().find(|s| s.db == db && s.pid == me) else {
        return true;
    };
    if slot.run || slot.force || slot.asked_all || slot.asked_len > 0 || crate::replay::pending(db) {
        return false;
    }
    *slot = Slot::default();
    true
}

/// Every `jwks_refresh`, and at start, makes sure every database that accepts connections has
/// the worker it needs: one at a time, each either leaving at once or staying. So a worker that
/// was terminated, or lost in a crash, is back within one refresh period.
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jwt_guard_jwks_launcher(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // Connected to no database (shared catalogs only), so it never holds one off DROP DATABASE
    // or CREATE DATABASE … TEMPLATE.
    BackgroundWorker::connect_worker_to_spi(None, None);
    loop {
        for db in databases() {
            if BackgroundWorker::sigterm_received() || !ask(db, Ask::Run) {
                break;
            }
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until && !settled(db) {
                if !BackgroundWorker::wait_latch(Some(Duration::from_millis(100))) {
                    return;
                }
            }
        }
        let next = Instant::now() + Duration::from_secs(settings::JWKS_REFRESH.get().max(1) as u64);
        while Instant::now() < next {
            if !BackgroundWorker::wait_latch(Some(Duration::from_secs(1))) {
                return;
            }
            if BackgroundWorker::sighup_received() {
                // SAFETY: the documented way for a background worker to take in a reload.
                unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
            }
        }
    }
}

/// The databases that accept connections, read from the shared catalog pg_database.
fn databases() -> Vec<u32> {
    let mut out = Vec::new();
    // SAFETY: a catalog heap scan inside a transaction of its own, as PostgreSQL's autovacuum
    // launcher does it; each tuple is read while the scan holds it.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::GetTransactionSnapshot();
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let db = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_database>(tuple);
            if db.datallowconn && !db.datistemplate {
                out.push(db.oid.to_u32());
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as pg_sys::LOCKMODE);
        pg_sys::CommitTransactionCommand();
    }
    out
}

fn settled(db: u32) -> bool {
    let slots = SHARED.share();
    slots.0.iter().find(|s| s.db == db).is_none_or(|s| s.heartbeat > 0)
}

/// The worker of one database (its OID is the argument).
#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jwt_guard_jwks_worker(arg: pg_sys::Datum) {
    let db = arg.value() as u32;
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    BackgroundWorker::connect_worker_to_spi_by_oid(Some(pg_sys::Oid::from_u32(db)), None);
    if !claim(db) {
        return;
    }
    let mut last: HashMap<(String, String), Instant> = HashMap::new();
    let mut last_purge: Option<Instant> = None;
    loop {
        let Some(asked) = beat(db) else {
            return; // another worker serves this database now
        };
        if BackgroundWorker::sighup_received() {
            // SAFETY: the documented way for a background worker to take in a reload.
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        // None: the transaction failed (logged; try again at the next beat); Some(None): the
        // extension is not installed here.
        let issuers = in_transaction(jwks_issuers);
        record_replays(db, &mut last_purge);
        let leave = matches!(&issuers, Some(None)) || matches!(&issuers, Some(Some(list)) if list.is_empty());
        if leave && try_release(db) {
            return;
        }
        let issuers = issuers.flatten().unwrap_or_default();
        last.retain(|k, _| issuers.contains(k));
        for (iss, uri) in issuers {
            if BackgroundWorker::sigterm_received() {
                break;
            }
            let key = (iss.clone(), uri.clone());
            if !due(last.get(&key), &asked, &iss) {
                continue;
            }
            beat_only(db);
            let config = fetch_config();
            let body = jwks_fetch::fetch(&uri, &config);
            let first = last.insert(key, Instant::now()).is_none();
            in_transaction(|| apply(&iss, &uri, body, first));
        }
        if !BackgroundWorker::wait_latch(Some(Duration::from_secs(1))) {
            break;
        }
    }
    record_replays(db, &mut last_purge);
    try_release(db);
}

/// Moves the database's waiting jti uses into `jwt_guard.seen_jtis` (forgotten in memory only
/// once committed), and hourly drops rows of expired tokens.
fn record_replays(db: u32, last_purge: &mut Option<Instant>) {
    if crate::replay::pending(db) {
        if let Some(written) = in_transaction(|| crate::replay::write_pending(db)) {
            crate::replay::forget(db, &written);
        }
    }
    if last_purge.is_none_or(|t| t.elapsed() >= Duration::from_secs(3600)) {
        // Only where the extension is installed: the table may not exist elsewhere.
        if in_transaction(|| jwks_issuers().is_some().then(crate::replay::purge_expired)).is_some() {
            *last_purge = Some(Instant::now());
        }
    }
}

/// Runs `body` in a transaction of its own. An error is logged and rolls the transaction back
/// instead of ending the worker: one bad document or a dropped table must not stop the
/// other issuers' refreshes.
fn in_transaction<R>(body: impl FnOnce() -> R + std::panic::UnwindSafe) -> Option<R> {
    // SAFETY: the worker is connected and between transactions; the snapshot is popped or
    // released with the transaction below.
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = PgTryBuilder::new(|| {
        // Pinned search_path and restricted operation, as the backends read the store: a
        // database owner's objects must not run as the superuser this worker is.
        let _scope = crate::context::Superuser::enter();
        // A row lock held by an open administration transaction must not stall the beats.
        Spi::run("SET LOCAL lock_timeout = '10s'").ok();
        Some(body())
    })
    .catch_others(|e| {
        let message = match &e {
            pg_sys::panic::CaughtError::PostgresError(r)
            | pg_sys::panic::CaughtError::ErrorReport(r)
            | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => r.message().to_owned(),
        };
        warning!("pg_jwt_guard: the jwks worker's transaction failed: {message}");
        None
    })
    .execute();
    // SAFETY: ends the transaction started above; abort also releases the active snapshot.
    unsafe {
        if result.is_some() {
            pg_sys::PopActiveSnapshot();
            pg_sys::CommitTransactionCommand();
        } else {
            pg_sys::AbortCurrentTransaction();
        }
    }
    result
}

fn beat_only(db: u32) {
    let me = my_pid();
    if let Some(slot) = SHARED.exclusive().0.iter_mut().find(|s| s.db == db && s.pid == me) {
        slot.heartbeat = now();
    }
}

fn due(last: Option<&Instant>, asked: &Requests, iss: &str) -> bool {
    let Some(last) = last else { return true };
    if asked.force {
        return true;
    }
    let since = last.elapsed().as_secs();
    let refresh = settings::JWKS_REFRESH.get().max(1) as u64;
    let min = settings::JWKS_MIN_INTERVAL.get().max(1) as u64;
    since >= refresh || ((asked.all || asked.issuers.contains(&issuer_hash(iss))) && since >= min)
}

fn fetch_config() -> FetchConfig {
    FetchConfig {
        timeout: Duration::from_secs(settings::JWKS_TIMEOUT.get().clamp(1, 60) as u64),
        max_bytes: settings::JWKS_MAX_BYTES.get().max(1024) as u64,
        ca_file: settings::JWKS_CA_FILE
            .get()
            .map(|c| c.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty()),
    }
}

/// (issuer, jwks_uri) of every profile with one; None when the extension is not installed.
fn jwks_issuers() -> Option<Vec<(String, String)>> {
    // The extension itself, in its own schema: a look-alike schema or view proves nothing.
    let installed = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n \
         ON n.oid OPERATOR(pg_catalog.=) e.extnamespace WHERE e.extname OPERATOR(pg_catalog.=) 'pg_jwt_guard' \
         AND n.nspname OPERATOR(pg_catalog.=) 'jwt_guard')",
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    if !installed {
        return None;
    }
    Spi::connect(|c| {
        let rows = c.select(
            "SELECT iss, jwks_uri FROM jwt_guard.issuer_profiles WHERE jwks_uri IS NOT NULL ORDER BY iss",
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for row in rows {
            if let (Some(iss), Some(uri)) = (row.get::<String>(1)?, row.get::<String>(2)?) {
                out.push((iss, uri));
            }
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .ok()
}

/// Applies one fetch's outcome and records it; a failure changes no key.
fn apply(iss: &str, uri: &str, body: Result<Vec<u8>, String>, first: bool) {
    // The profile may have been dropped or changed while the document was fetched: keys are
    // applied only while it still names this URI, and it stays locked until they are, so a
    // concurrent drop_issuer waits and then retires them too.
    let current = Spi::get_one_with_args::<bool>(
        "SELECT true FROM jwt_guard.issuer_profiles WHERE iss OPERATOR(pg_catalog.=) $1 \
         AND jwks_uri OPERATOR(pg_catalog.=) $2 FOR UPDATE",
        &[iss.into(), uri.into()],
    );
    if !matches!(current, Ok(Some(true))) {
        return;
    }
    let grace = settings::JWKS_RETIRE_GRACE.get();
    let outcome = body
        .and_then(|b| published::classify(&b, iss).map_err(|e| e.to_string()))
        .and_then(|verdicts| {
            let usable = verdicts
                .iter()
                .filter(|v| matches!(v, jwt_guard_core::keys::JwkVerdict::Use(_)))
                .count();
            keystore::sync_published(iss, verdicts, grace)
                .map(|lines| (usable, lines))
                .map_err(|e| e.message())
        });
    let shown = redact_uri(uri);
    let error = match &outcome {
        Ok((_, lines)) => {
            let count = |a: &str| lines.iter().filter(|l| l.action == a).count();
            let (added, retired) = (count("added"), count("retired"));
            if added + retired > 0 {
                log!("pg_jwt_guard: keys of issuer \"{iss}\" from {shown}: {added} added, {retired} retired");
            }
            // Skipped keys are named at the first fetch; a changed key material at every one.
            let worth = |l: &&keystore::SyncLine| {
                l.action == "skipped"
                    && (first || l.reason.as_deref().is_some_and(|r| r.contains("other key material")))
            };
            for l in lines.iter().filter(worth) {
                log!(
                    "pg_jwt_guard: a key of issuer \"{iss}\" from {shown} was skipped (kid {}): {}",
                    l.kid
                        .as_deref()
                        .map(jwt_guard_core::error::printable)
                        .unwrap_or_else(|| "none".into()),
                    l.reason.as_deref().unwrap_or("")
                );
            }
            None
        }
        Err(e) => {
            warning!("pg_jwt_guard: could not refresh the keys of issuer \"{iss}\" from {shown}: {e}; the stored keys are kept");
            Some(e.clone())
        }
    };
    let usable = outcome.as_ref().ok().map(|(n, _)| *n as i32);
    let recorded = Spi::run_with_args(
        "INSERT INTO jwt_guard.jwks_status AS s (iss, attempted, succeeded, error, published_keys) \
         VALUES ($1, pg_catalog.now(), CASE WHEN $2::text IS NULL THEN pg_catalog.now() END, $2, $3) \
         ON CONFLICT (iss) DO UPDATE SET attempted = EXCLUDED.attempted, \
         succeeded = COALESCE(EXCLUDED.succeeded, s.succeeded), error = EXCLUDED.error, \
         published_keys = COALESCE(EXCLUDED.published_keys, s.published_keys)",
        &[iss.into(), error.into(), usable.into()],
    );
    if let Err(e) = recorded {
        warning!("pg_jwt_guard: could not record the jwks fetch of issuer \"{iss}\": {e}");
    }
}
