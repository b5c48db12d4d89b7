//! The per-transaction identity.
//!
//! The verified identity is carried in the setting `pg_jwt_guard.identity`, set with
//! transaction-local scope. That gives three properties for free: Postgres undoes it at
//! COMMIT, ROLLBACK and ROLLBACK TO SAVEPOINT exactly when it undoes the user id; it is
//! copied into parallel workers; and its check hook refuses every write that does not come
//! from this module. Accessors read a parsed copy that is refreshed only when the setting
//! changes (the assign hook bumps a generation counter), so no call parses JSON.
//!
//! The carrier holds `<role oid> <identity JSON>`: the role the identity switched to travels
//! with the claims, so both follow every rollback together. A carrier that does not read back
//! is an error, never "no identity": the switched role may still be in place.

use crate::context::{self, UserContext};
use crate::errors::GuardError;
use jwt_guard_core::Identity;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CStr, CString};
use std::rc::Rc;

static CARRIER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const CARRIER_NAME: &std::ffi::CStr = c"pg_jwt_guard.identity";

/// An identity and the role it switched to.
#[derive(Clone)]
struct Bound {
    identity: Rc<Identity>,
    role: pg_sys::Oid,
}

thread_local! {
    /// True only while this module writes the carrier.
    static WRITING: Cell<bool> = const { Cell::new(false) };
    /// Bumped by the assign hook on every change of the carrier, including undo.
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    /// The parsed carrier and the generation it belongs to.
    static CACHE: RefCell<(u64, Option<Bound>)> = const { RefCell::new((0, None)) };
    /// The user to return to at COMMIT, saved by the first switch of the transaction.
    static BASE_USER: Cell<Option<UserContext>> = const { Cell::new(None) };
}

pub fn init() {
    let flags = GucFlags::NO_SHOW_ALL
        | GucFlags::NO_RESET_ALL
        | GucFlags::DISALLOW_IN_FILE
        | GucFlags::DISALLOW_IN_AUTO_FILE
        | GucFlags::SUPERUSER_ONLY;
    // SAFETY: hooks are extern fns with the expected signatures that cannot panic.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            CARRIER_NAME,
            c"Internal: the verified identity of this transaction. Written only by pg_jwt_guard.",
            c"",
            &CARRIER,
            GucContext::Suset,
            flags,
            Some(check_carrier),
            Some(assign_carrier),
            None,
        );
        pg_sys::MarkGUCPrefixReserved(c"pg_jwt_guard".as_ptr());
        pg_sys::RegisterXactCallback(Some(on_xact_event), std::ptr::null_mut());
    }
}

/// Refuses every write that is not ours: SET, set_config, ALTER ROLE/DATABASE SET, function
/// SET clauses. Parallel workers restoring the leader's value and the boot value pass.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_carrier(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: the arguments Postgres hands the check hook.
    let ours = unsafe { own_write(newval, source) };
    ours || refuse_write("pg_jwt_guard.identity is written only by jwt_guard.authenticate().")
}

/// For the check hooks of the settings only this library writes: our own write
/// (`write_local`), a parallel worker restoring its leader's value, or the empty boot value.
///
/// # Safety
/// `newval` is the value pointer Postgres passes to a string setting's check hook.
pub(crate) unsafe fn own_write(newval: *mut *mut c_char, source: pg_sys::GucSource::Type) -> bool {
    // SAFETY: reads of a backend global and of the string Postgres hands us.
    let restoring_worker = unsafe { pg_sys::InitializingParallelWorker };
    let empty = unsafe { (*newval).is_null() || **newval == 0 };
    WRITING.get() || restoring_worker || (source == pg_sys::GucSource::PGC_S_DEFAULT && empty)
}

/// Makes the check hook refuse with 42501 and `detail`; returns false for it to return.
pub(crate) fn refuse_write(detail: &str) -> bool {
    // SAFETY: sets the SQLSTATE of the error Postgres raises for this refusal.
    unsafe { pg_sys::GUC_check_errcode(pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE as i32) };
    crate::settings::set_check_detail(detail);
    false
}

unsafe extern "C-unwind" fn assign_carrier(_newval: *const c_char, _extra: *mut c_void) {
    GENERATION.set(GENERATION.get().wrapping_add(1));
}

/// The identity of this transaction, if any. Raises (XX000) when the carrier does not read
/// back, so no guard keyed on "identity present" can be switched off by a broken one.
pub fn current() -> Option<Rc<Identity>> {
    bound().map(|b| b.identity)
}

/// The role the identity of this transaction switched to, if any.
pub fn role() -> Option<pg_sys::Oid> {
    bound().map(|b| b.role)
}

fn bound() -> Option<Bound> {
    read().unwrap_or_else(|e| e.raise())
}

/// Like `current()`, but never raises: Err when the carrier does not read back.
pub fn try_current() -> Result<Option<Rc<Identity>>, GuardError> {
    read().map(|b| b.map(|b| b.identity))
}

fn read() -> Result<Option<Bound>, GuardError> {
    let generation = GENERATION.get();
    if let Some(hit) = CACHE.with_borrow(|(at, cached)| (*at == generation).then(|| cached.clone())) {
        return Ok(hit);
    }
    let parsed = parse_carrier()?;
    CACHE.set((generation, parsed.clone()));
    Ok(parsed)
}

fn parse_carrier() -> Result<Option<Bound>, GuardError> {
    let text = std::str::from_utf8(crate::settings::raw(&CARRIER)).map_err(|_| unreadable())?;
    if text.is_empty() {
        return Ok(None);
    }
    let (role, json) = text.split_once(' ').ok_or_else(unreadable)?;
    let role: u32 = role.parse().map_err(|_| unreadable())?;
    let identity = serde_json::from_str::<Identity>(json).map_err(|_| unreadable())?;
    Ok(Some(Bound {
        identity: Rc::new(identity),
        role: pg_sys::Oid::from(role),
    }))
}

fn unreadable() -> GuardError {
    GuardError::Internal("the identity of this transaction could not be read back; refusing to go on".into())
}

fn write_carrier(value: &CStr) {
    write_local_c(CARRIER_NAME, value, pg_sys::GucContext::PGC_SUSET);
}

/// The carrier's value for an identity serialized as `serialized`, under the role `role`.
pub fn carrier_value(role: pg_sys::Oid, serialized: &str) -> Result<CString, GuardError> {
    c_text(format!("{} {serialized}", u32::from(role)))
}

/// A setting's value as a C string; a NUL in it is the token's fault (claims are checked for
/// NULs, so this is a second line).
fn c_text(value: impl Into<Vec<u8>>) -> Result<CString, GuardError> {
    CString::new(value).map_err(|_| GuardError::Token(jwt_guard_core::Rejection::NulInString))
}

/// Sets one of the settings only this library writes, transaction-locally, past its check hook.
pub(crate) fn write_local(
    name: &std::ffi::CStr,
    value: &str,
    context: pg_sys::GucContext::Type,
) -> Result<(), GuardError> {
    write_local_c(name, &c_text(value)?, context);
    Ok(())
}

fn write_local_c(name: &CStr, value: &CStr, context: pg_sys::GucContext::Type) {
    let _writing = WritingGuard::start();
    // SAFETY: a transaction-local set of our own setting; if it raises, the guard still
    // clears the flag while the error unwinds.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            0,
            false,
        );
    }
}

/// Opens our settings to our own write for as long as it lives, even across an error.
struct WritingGuard;

impl WritingGuard {
    fn start() -> Self {
        WRITING.set(true);
        WritingGuard
    }
}

impl Drop for WritingGuard {
    fn drop(&mut self) {
        WRITING.set(false);
    }
}

/// Makes `identity` (as `role`) the identity of this transaction: claims first, then the
/// user id, so an error leaves neither changed. `request_claims` is the claims' JSON when
/// `request.jwt.claims` is the library's to write.
pub fn apply(
    identity: Rc<Identity>,
    carrier: &CStr,
    request_claims: Option<&str>,
    role: pg_sys::Oid,
) -> Result<(), GuardError> {
    let now = context::current();
    if BASE_USER.get().is_none() {
        BASE_USER.set(Some(now));
    }
    write_carrier(carrier);
    if let Some(claims) = request_claims {
        crate::request_claims::write(claims)?;
    }
    CACHE.set((GENERATION.get(), Some(Bound { identity, role })));
    context::switch_to(UserContext {
        user: role,
        sec: now.sec,
    });
    Ok(())
}

/// Whether a token identity was applied in this transaction, even if dropped since.
pub fn held_this_transaction() -> bool {
    BASE_USER.get().is_some()
}

/// Drops the identity now; the user returns to the one the transaction started with.
pub fn clear() -> Result<(), GuardError> {
    if current().is_some() {
        write_carrier(c"");
        if crate::request_claims::enabled() {
            crate::request_claims::write("")?;
        }
    }
    if let Some(base) = BASE_USER.get() {
        context::switch_to(UserContext {
            user: base.user,
            sec: context::current().sec,
        });
    }
    Ok(())
}

/// random()'s generator state would let this client fix (setseed, SET seed) or learn the
/// values the next client of a pooled backend draws: it is reseeded at every transaction end.
/// The seeds are HMAC-SHA256 of a counter under a key drawn once per backend from the strong
/// source: unpredictable without the key, and far cheaper than the strong source per commit.
/// One tag gives four seeds (its 8-byte quarters are independent): one commit in four signs.
fn reseed_random() {
    let Some(bytes) = next_seed() else {
        return;
    };
    let seed = (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    // SAFETY: setseed only seeds the backend's random() state; the value is within [-1, 1].
    unsafe {
        pg_sys::DirectFunctionCall1Coll(Some(setseed), pg_sys::InvalidOid, pg_sys::Datum::from(seed.to_bits()));
    }
}

const SEEDS_PER_TAG: usize = 4;

thread_local! {
    /// The key of this backend's seed stream; None when no strong randomness was available.
    static SEED_KEY: std::cell::OnceCell<Option<ring::hmac::Key>> = const { std::cell::OnceCell::new() };
    static SEED_COUNTER: Cell<u64> = const { Cell::new(0) };
    /// The seeds of the last tag not yet used, and how many of them were.
    static SEEDS: Cell<([[u8; 8]; SEEDS_PER_TAG], usize)> = const { Cell::new(([[0; 8]; SEEDS_PER_TAG], SEEDS_PER_TAG)) };
}

/// The next 8 bytes of the seed stream, or None (the state is then left as it is).
fn next_seed() -> Option<[u8; 8]> {
    let (mut seeds, used) = SEEDS.get();
    if used < SEEDS_PER_TAG {
        SEEDS.set((seeds, used + 1));
        return Some(seeds[used]);
    }
    let tag = SEED_KEY.with(|key| {
        let key = key.get_or_init(|| {
            let mut bytes = [0u8; 32];
            // SAFETY: fills our own buffer; false means no strong randomness.
            unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) }
                .then(|| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &bytes))
        });
        let n = SEED_COUNTER.get().wrapping_add(1);
        SEED_COUNTER.set(n);
        key.as_ref().map(|k| ring::hmac::sign(k, &n.to_le_bytes()))
    })?;
    for (seed, chunk) in seeds.iter_mut().zip(tag.as_ref().chunks_exact(8)) {
        seed.copy_from_slice(chunk);
    }
    SEEDS.set((seeds, 1));
    Some(seeds[0])
}

extern "C-unwind" {
    /// From commands/sequence.h (not in pgrx's bindings): what DISCARD SEQUENCES runs.
    fn ResetSequenceCaches();
    /// The SQL function setseed(float8), called directly as PostgreSQL's own C function.
    fn setseed(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
}

/// At COMMIT Postgres keeps the user id we set, so we restore it; at ABORT Postgres already
/// restored it. Either way the carrier setting is undone by Postgres.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_xact_event(event: pg_sys::XactEvent::Type, _arg: *mut c_void) {
    use pg_sys::XactEvent::*;
    if event == XACT_EVENT_PRE_COMMIT {
        crate::isolation::check_settings_at_commit();
        return;
    }
    let ended = matches!(
        event,
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE
    );
    let aborted = matches!(event, XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT);
    // Sequence state (currval, lastval) would show the next client of a pooled backend what this
    // one drew: a locked session forgets it with the transaction.
    if (ended || aborted) && (BASE_USER.get().is_some() || crate::lockdown::login_role_cached()) {
        // SAFETY: frees the backend's sequence cache; no catalog access, cannot fail.
        unsafe { ResetSequenceCaches() };
        reseed_random();
    }
    if ended {
        if let Some(base) = BASE_USER.take() {
            context::switch_to(base);
        }
    }
    if ended || aborted {
        BASE_USER.set(None);
        WRITING.set(false);
        crate::isolation::transaction_ended();
        crate::cache::transaction_ended();
    }
}
