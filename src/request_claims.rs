//! `request.jwt.claims` for policies written for PostgREST, with `pg_jwt_guard.request_claims`.
//!
//! PostgREST's policies read the claims with `current_setting('request.jwt.claims', true)`.
//! Left as a placeholder, that setting is whatever a client writes. When the setting above is
//! on, the library defines it at start-up: a check hook refuses every write but ours, and
//! authenticate() writes the verified claims with transaction-local scope, so PostgreSQL
//! undoes them with the identity (COMMIT, ROLLBACK, ROLLBACK TO SAVEPOINT) and parallel
//! workers receive them. Without an identity it reads as the empty string.

use crate::settings;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};

static CLAIMS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const NAME: &std::ffi::CStr = c"request.jwt.claims";

thread_local! {
    static WRITING: Cell<bool> = const { Cell::new(false) };
}

/// Whether the library owns `request.jwt.claims` (set at server start).
pub fn enabled() -> bool {
    settings::REQUEST_CLAIMS.get()
}

/// From _PG_init, when preloaded.
pub fn define() {
    if !enabled() {
        return;
    }
    // SAFETY: the check hook is an extern fn with the expected signature that cannot panic.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            NAME,
            c"The verified claims of this transaction, as JSON. Written only by jwt_guard.authenticate().",
            c"Empty without an identity.",
            &CLAIMS,
            GucContext::Userset,
            GucFlags::NO_RESET_ALL | GucFlags::DISALLOW_IN_FILE | GucFlags::DISALLOW_IN_AUTO_FILE,
            Some(check_claims),
            None,
            None,
        );
    }
}

/// Refuses SET, set_config, ALTER ROLE/DATABASE SET and function SET clauses; passes our own
/// writes, parallel workers restoring the leader's value, and the boot value.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_claims(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: reads of a backend global and of the string Postgres hands us.
    let restoring_worker = unsafe { pg_sys::InitializingParallelWorker };
    let empty = unsafe { (*newval).is_null() || **newval == 0 };
    if WRITING.get() || restoring_worker || (source == pg_sys::GucSource::PGC_S_DEFAULT && empty) {
        return true;
    }
    // SAFETY: sets the SQLSTATE of the error Postgres raises for this refusal.
    unsafe { pg_sys::GUC_check_errcode(pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE as i32) };
    settings::set_check_detail(
        "With pg_jwt_guard.request_claims on, request.jwt.claims carries only the claims jwt_guard.authenticate() verified.",
    );
    false
}

/// Writes the claims (JSON text; "" clears) for the rest of the transaction.
pub fn write(json: &str) {
    if !enabled() {
        return;
    }
    let Ok(value) = CString::new(json) else { return };
    WRITING.set(true);
    let _reset = Reset;
    // SAFETY: a transaction-local set of our own setting; if it raises, Reset clears the flag
    // while the error unwinds.
    unsafe {
        pg_sys::set_config_option(
            NAME.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            pg_sys::GucAction::GUC_ACTION_LOCAL,
            true,
            0,
            false,
        );
    }
}

struct Reset;

impl Drop for Reset {
    fn drop(&mut self) {
        WRITING.set(false);
    }
}
