//! Reading PostgreSQL parse trees and catalog names: shared by the modules that judge
//! statements (lockdown, isolation, guardrails, audit), so none of them depends on another
//! for it.

use pgrx::pg_sys;
use pgrx::PgList;
use std::ffi::CStr;

/// The utility statement inside `EXPLAIN`, if any (EXPLAIN ANALYZE CREATE TABLE AS runs it).
pub unsafe fn explained_utility(node: *mut pg_sys::Node) -> Option<*mut pg_sys::Node> {
    // SAFETY: casts follow the tag checks; an analyzed EXPLAIN holds a Query.
    unsafe {
        if node.is_null() || (*node).type_ != pg_sys::NodeTag::T_ExplainStmt {
            return None;
        }
        let query = (*(node as *mut pg_sys::ExplainStmt)).query;
        if query.is_null() || (*query).type_ != pg_sys::NodeTag::T_Query {
            return None;
        }
        let inner = (*(query as *mut pg_sys::Query)).utilityStmt;
        (!inner.is_null()).then_some(inner)
    }
}

pub unsafe fn schema_of(relid: pg_sys::Oid) -> String {
    // SAFETY: syscache lookups; NULL results become empty strings.
    unsafe { cstr(pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid))) }
}

pub unsafe fn cstr(p: *const std::ffi::c_char) -> String {
    // SAFETY: p is NULL or a NUL-terminated string from Postgres.
    unsafe {
        p.as_ref()
            .map(|p| CStr::from_ptr(p).to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// The relations a TRUNCATE names, resolved without locks; missing ones are left out for
/// PostgreSQL to report.
pub unsafe fn truncate_targets(stmt: *mut pg_sys::TruncateStmt) -> Vec<pg_sys::Oid> {
    // SAFETY: a list of RangeVar, as the grammar builds it; each name is resolved as given.
    unsafe {
        let relations = PgList::<pg_sys::RangeVar>::from_pg((*stmt).relations);
        relations
            .iter_ptr()
            .map(|rv| {
                pg_sys::RangeVarGetRelidExtended(
                    rv,
                    pg_sys::NoLock as i32,
                    pg_sys::RVROption::RVR_MISSING_OK,
                    None,
                    std::ptr::null_mut(),
                )
            })
            .filter(|relid| *relid != pg_sys::InvalidOid)
            .collect()
    }
}
