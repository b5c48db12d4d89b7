//! Queries that must see the latest committed state, not the statement's or the transaction's
//! snapshot: a key retired or a role changed after a REPEATABLE READ transaction began must
//! count at its next `authenticate()`. Used only for the key store and catalog checks, which
//! run as the bootstrap superuser (see `context::as_superuser`).

use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};

/// Plans kept per backend, by query text: planning a catalog query costs more than running
/// it. PostgreSQL's plan cache re-plans a kept plan when what it reads changes.
const KEPT_PLANS: usize = 64;

thread_local! {
    static PLANS: RefCell<HashMap<String, pg_sys::SPIPlanPtr>> = RefCell::new(HashMap::new());
}

/// The kept plan for `query`, prepared and kept on first use (inside an SPI connection).
unsafe fn plan(query: &CStr, types: &mut [pg_sys::Oid]) -> pg_sys::SPIPlanPtr {
    let key = query.to_string_lossy();
    if let Some(p) = PLANS.with_borrow(|m| m.get(key.as_ref()).copied()) {
        return p;
    }
    // SAFETY: called between SPI_connect and SPI_finish; SPI_keepplan moves the plan out of
    // the SPI procedure's memory so it outlives this call.
    unsafe {
        let p = pg_sys::SPI_prepare(query.as_ptr(), types.len() as i32, types.as_mut_ptr());
        if !p.is_null() && PLANS.with_borrow(|m| m.len()) < KEPT_PLANS && pg_sys::SPI_keepplan(p) == 0 {
            PLANS.with_borrow_mut(|m| m.insert(key.into_owned(), p));
        }
        p
    }
}

/// Runs `query` with text arguments (None is NULL) under a fresh snapshot; every column comes back as text
/// (NULL as None). Errors are raised by PostgreSQL and undo the SPI connection on abort.
pub fn rows(query: &str, args: &[Option<&str>]) -> Vec<Vec<Option<String>>> {
    let query = CString::new(query).expect("queries are constants");
    let args: Vec<Option<CString>> = args
        .iter()
        .map(|a| a.map(|a| CString::new(a).unwrap_or_default()))
        .collect();
    // SAFETY: a balanced SPI_connect/SPI_finish around one prepared, read-only execution; the
    // snapshot is registered for as long as the execution uses it.
    unsafe {
        pg_sys::SPI_connect();
        let mut types: Vec<pg_sys::Oid> = vec![pg_sys::TEXTOID; args.len()];
        let plan = plan(&query, &mut types);
        let mut values: Vec<pg_sys::Datum> = args
            .iter()
            .map(|a| match a {
                Some(a) => pg_sys::Datum::from(pg_sys::cstring_to_text(a.as_ptr())),
                None => pg_sys::Datum::from(0),
            })
            .collect();
        let nulls: Vec<std::ffi::c_char> = args
            .iter()
            .map(|a| if a.is_some() { b' ' } else { b'n' } as std::ffi::c_char)
            .collect();
        if plan.is_null() {
            pg_sys::SPI_finish();
            failed(pg_sys::SPI_result);
        }
        let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
        let code = pg_sys::SPI_execute_snapshot(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr(),
            snapshot,
            std::ptr::null_mut(),
            true,
            false,
            0,
        );
        pg_sys::UnregisterSnapshot(snapshot);
        if code < 0 {
            pg_sys::SPI_finish();
            failed(code);
        }
        let out = collect();
        pg_sys::SPI_finish();
        out
    }
}

/// A query of the key store or the catalogs that SPI could not run is an internal error: an
/// empty answer would read as "no such key" or "nothing dangerous".
fn failed(code: i32) -> ! {
    crate::errors::GuardError::Internal(format!(
        "a read of the key store, the revocation lists or the catalogs failed (SPI code {code})"
    ))
    .raise()
}

/// The rows SPI just produced, copied out as text.
unsafe fn collect() -> Vec<Vec<Option<String>>> {
    // SAFETY: reads SPI's result globals right after an execution.
    unsafe {
        let table = pg_sys::SPI_tuptable;
        if table.is_null() {
            return Vec::new();
        }
        let desc = (*table).tupdesc;
        let columns = (*desc).natts;
        (0..pg_sys::SPI_processed as usize)
            .map(|i| {
                let tuple = *(*table).vals.add(i);
                (1..=columns)
                    .map(|c| {
                        let value = pg_sys::SPI_getvalue(tuple, desc, c);
                        value.as_ref().map(|v| CStr::from_ptr(v).to_string_lossy().into_owned())
                    })
                    .collect()
            })
            .collect()
    }
}
