//! Installs the PostgreSQL hooks and chains each to the one installed before it. The policy
//! modules only answer: `lockdown` and `isolation` say what a session may not do, `guardrails`
//! what a token's permissions do not grant, `audit` writes what ran.

use pgrx::pg_sys;
use std::ffi::{c_char, c_int, c_void};

static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;
static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREV_CHECK_PERMS: pg_sys::ExecutorCheckPerms_hook_type = None;
static mut PREV_OBJECT_ACCESS: pg_sys::object_access_hook_type = None;
static mut PREV_NEEDS_FMGR: pg_sys::needs_fmgr_hook_type = None;
static mut PREV_EMIT_LOG: pg_sys::emit_log_hook_type = None;

/// Only called while preloading, so every hook is in place before any statement.
pub fn install() {
    // SAFETY: postmaster start-up, single-threaded; backends inherit the pointers by fork.
    unsafe {
        PREV_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
        PREV_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREV_CHECK_PERMS = pg_sys::ExecutorCheckPerms_hook;
        pg_sys::ExecutorCheckPerms_hook = Some(check_perms);
        PREV_OBJECT_ACCESS = pg_sys::object_access_hook;
        pg_sys::object_access_hook = Some(object_access);
        PREV_NEEDS_FMGR = pg_sys::needs_fmgr_hook;
        pg_sys::needs_fmgr_hook = Some(needs_fmgr);
        PREV_EMIT_LOG = pg_sys::emit_log_hook;
        pg_sys::emit_log_hook = Some(emit_log);
    }
}

/// Utility statements: isolation first (what a session may do before and under a token),
/// then the permissions claim, then the escapes of a locked session.
#[allow(clippy::too_many_arguments)]
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query: *const c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: Postgres hands us a valid planned utility statement.
    let node = unsafe { (*pstmt).utilityStmt };
    // SAFETY: node is that statement's parse tree.
    if let Some(refused) = unsafe { crate::isolation::utility_refusal(node, context) } {
        refused.raise();
    }
    // SAFETY: as above.
    if let Some(denied) = unsafe { crate::guardrails::utility_refusal(node) } {
        denied.raise();
    }
    // SAFETY: as above.
    if let Some(what) = unsafe { crate::lockdown::refusal(node) } {
        if crate::lockdown::locked() {
            crate::errors::GuardError::Escape(what).raise();
        }
    }
    // SAFETY: as above.
    unsafe { crate::isolation::note_utility(node) };
    // SAFETY: as above; only allowed statements reach the audit line.
    unsafe { crate::audit::utility(node) };
    // SAFETY: chaining to the previous hook or the standard implementation, as Postgres expects.
    unsafe {
        match PREV_PROCESS_UTILITY {
            Some(prev) => prev(pstmt, query, read_only_tree, context, params, env, dest, qc),
            None => pg_sys::standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc),
        }
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: c_int) {
    if let Some(refusal) = crate::isolation::portal_refusal() {
        refusal.raise();
    }
    // SAFETY: chaining to the previous hook or the standard implementation, as Postgres expects.
    unsafe {
        match PREV_EXECUTOR_START {
            Some(prev) => prev(query, eflags),
            None => pg_sys::standard_ExecutorStart(query, eflags),
        }
    }
    // After the permission checks passed: a refused statement writes no line.
    // SAFETY: the QueryDesc Postgres passes to this hook, now started.
    unsafe { crate::audit::statement(query, eflags) };
}

#[cfg(feature = "pg15")]
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_perms(range_table: *mut pg_sys::List, ereport: bool) -> bool {
    let ours = !crate::guardrails::judges_relations() || {
        // SAFETY: Postgres passes the statement's range table, which holds the permissions.
        let relations = unsafe { crate::pg_version::relation_permissions(range_table) };
        crate::guardrails::verdict(&relations, ereport)
    };
    // SAFETY: chaining to the previous hook with Postgres' own arguments.
    ours && unsafe { PREV_CHECK_PERMS.is_none_or(|prev| prev(range_table, ereport)) }
}

#[cfg(not(feature = "pg15"))]
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_perms(
    range_table: *mut pg_sys::List,
    perm_infos: *mut pg_sys::List,
    ereport: bool,
) -> bool {
    let ours = !crate::guardrails::judges_relations() || {
        // SAFETY: Postgres passes the statement's permission infos.
        let relations = unsafe { crate::pg_version::relation_permissions(perm_infos) };
        crate::guardrails::verdict(&relations, ereport)
    };
    // SAFETY: chaining to the previous hook with Postgres' own arguments.
    ours && unsafe { PREV_CHECK_PERMS.is_none_or(|prev| prev(range_table, perm_infos, ereport)) }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn object_access(
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
    sub_id: c_int,
    arg: *mut c_void,
) {
    if let Some(refusal) = crate::isolation::object_refusal(access, class_id, object_id) {
        refusal.raise();
    }
    // SAFETY: chaining to the previous hook with Postgres' own arguments.
    unsafe {
        if let Some(prev) = PREV_OBJECT_ACCESS {
            prev(access, class_id, object_id, sub_id, arg);
        }
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn needs_fmgr(func: pg_sys::Oid) -> bool {
    // SAFETY: chaining to the previous hook with Postgres' own argument.
    crate::isolation::needs_fmgr(func) || unsafe { PREV_NEEDS_FMGR.is_some_and(|prev| prev(func)) }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn emit_log(edata: *mut pg_sys::ErrorData) {
    // SAFETY: Postgres passes the error being reported.
    unsafe { crate::guardrails::hide_row_values(edata) };
    // SAFETY: chaining to the previous hook with Postgres' own argument.
    unsafe {
        if let Some(prev) = PREV_EMIT_LOG {
            prev(edata);
        }
    }
}
