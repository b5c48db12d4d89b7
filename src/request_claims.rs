//! `request.jwt.claims` for policies written for PostgREST, with `pg_jwt_guard.request_claims`.
//!
//! PostgREST's policies read the claims with `current_setting('request.jwt.claims', true)`.
//! Left as a placeholder, that setting is whatever a client writes. When the setting above is
//! on, the library defines it at start-up: a check hook refuses every write but ours, and
//! authenticate() writes the verified claims with transaction-local scope, so PostgreSQL
//! undoes them with the identity (COMMIT, ROLLBACK, ROLLBACK TO SAVEPOINT) and parallel
//! workers receive them. Without an identity it reads as the empty string.

use crate::errors::GuardError;
use crate::settings;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::ffi::{c_char, c_void, CString};

static CLAIMS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
const NAME: &std::ffi::CStr = c"request.jwt.claims";

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
    // SAFETY: the arguments Postgres hands the check hook.
    let ours = unsafe { crate::identity::own_write(newval, source) };
    ours || crate::identity::refuse_write(
            "With pg_jwt_guard.request_claims on, request.jwt.claims carries only the claims jwt_guard.authenticate() verified.",
        )
}

/// Writes the claims (JSON text; "" clears) for the rest of the transaction.
pub fn write(json: &str) -> Result<(), GuardError> {
    crate::identity::write_local(NAME, json, pg_sys::GucContext::PGC_USERSET)
}
