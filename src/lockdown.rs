//! Escape blocking. While a token identity is active, and in every session of a role listed in
//! `pg_jwt_guard.login_roles`, no SQL may change the role or the session user, or reach for the
//! few commands that act outside the token's grant.
//!
//! Two places catch every route:
//! - the check hooks of the `role` and `session_authorization` settings, wrapped here, see every
//!   attempt to set a value: SET [LOCAL] ROLE, SET SESSION AUTHORIZATION, set_config() (under any
//!   function name), UPDATE pg_settings, function SET clauses, ALTER ROLE ... SET at login;
//! - the ProcessUtility hook (`hooks`) asks `refusal` about the statements that reset instead of set (RESET ROLE,
//!   SET role = DEFAULT, RESET SESSION AUTHORIZATION) and ALTER SYSTEM, COPY ... PROGRAM, LOAD,
//!   DECLARE ... WITH HOLD and functions created or altered with a role-changing SET clause.
//!
//! Left open because they can only drop privileges: set_config('role', NULL, ...) and
//! DISCARD ALL (outside a transaction, where no identity exists) return to the login role.

use crate::nodes::explained_utility;
use crate::{identity, settings};
use pgrx::pg_sys;
use pgrx::PgList;
use std::cell::Cell;
use std::ffi::{c_char, c_void, CStr};

static mut ROLE_CHECK: pg_sys::GucStringCheckHook = None;
static mut SESSION_AUTH_CHECK: pg_sys::GucStringCheckHook = None;
static mut SESSION_AUTH_ASSIGN: pg_sys::GucStringAssignHook = None;
static mut TEMP_BUFFERS_CHECK: pg_sys::GucIntCheckHook = None;

/// Wraps the check hooks of the settings; only called while preloading, so they are in place
/// before any statement. The ProcessUtility hook is installed by `hooks` and asks `refusal`.
pub fn install() {
    // SAFETY: postmaster start-up, single-threaded; backends inherit these pointers by fork.
    unsafe {
        ROLE_CHECK = wrap_check(c"role", Some(role_check));
        SESSION_AUTH_CHECK = wrap_check(c"session_authorization", Some(session_auth_check));
        SESSION_AUTH_ASSIGN = wrap_assign(c"session_authorization", Some(session_auth_assign));
        TEMP_BUFFERS_CHECK = wrap_int_check(c"temp_buffers", Some(temp_buffers_check));
    }
}

/// Replaces a built-in integer setting's check hook, returning the original.
unsafe fn wrap_int_check(name: &CStr, hook: pg_sys::GucIntCheckHook) -> pg_sys::GucIntCheckHook {
    // SAFETY: an integer setting's generic part starts its config_int.
    unsafe {
        let conf = find_guc(name, pg_sys::config_type::PGC_INT)? as *mut pg_sys::config_int;
        std::mem::replace(&mut (*conf).check_hook, hook)
    }
}

/// temp_buffers sizes the backend's local buffer pool the first time a temporary table is
/// used, for the life of the backend, even when set with SET LOCAL: a locked session may not
/// change it for the clients that come after it on a pooled backend.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn temp_buffers_check(
    newval: *mut std::ffi::c_int,
    extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: forwards Postgres' own arguments to the original hook.
    unsafe {
        if !exempt(source) && source != pg_sys::GucSource::PGC_S_TEST && locked() {
            return refuse_in_check("temp_buffers (it outlives the transaction)");
        }
        TEMP_BUFFERS_CHECK.is_none_or(|original| original(newval, extra, source))
    }
}

/// A built-in setting of the given type, by name.
unsafe fn find_guc(name: &CStr, vartype: pg_sys::config_type::Type) -> Option<*mut pg_sys::config_generic> {
    // SAFETY: the GUC table is fully built before shared_preload_libraries are loaded.
    unsafe {
        crate::pg_version::find_guc_map(|gen| {
            (CStr::from_ptr((*gen).name) == name && (*gen).vartype == vartype).then_some(gen)
        })
    }
}

/// Replaces a built-in string setting's check hook, returning the original.
unsafe fn wrap_check(name: &CStr, hook: pg_sys::GucStringCheckHook) -> pg_sys::GucStringCheckHook {
    // SAFETY: a string setting's generic part starts its config_string.
    unsafe {
        let conf = find_guc(name, pg_sys::config_type::PGC_STRING)? as *mut pg_sys::config_string;
        std::mem::replace(&mut (*conf).check_hook, hook)
    }
}

/// Replaces a built-in string setting's assign hook, returning the original.
unsafe fn wrap_assign(name: &CStr, hook: pg_sys::GucStringAssignHook) -> pg_sys::GucStringAssignHook {
    // SAFETY: a string setting's generic part starts its config_string.
    unsafe {
        let conf = find_guc(name, pg_sys::config_type::PGC_STRING)? as *mut pg_sys::config_string;
        std::mem::replace(&mut (*conf).assign_hook, hook)
    }
}

/// True while a token identity is active or the session belongs to a listed login role.
pub fn locked() -> bool {
    identity::current().is_some() || session_is_login_role()
}

thread_local! {
    /// (session user, login_roles generation) → whether the session is a listed login role.
    static LOGIN_ROLE: Cell<Option<(pg_sys::Oid, u64, bool)>> = const { Cell::new(None) };
}

/// Whether the session user is listed in `pg_jwt_guard.login_roles`; asked on hot paths, so
/// the answer is kept until the session user or the setting changes.
pub fn session_is_login_role() -> bool {
    // SAFETY: read of a backend global; only client backends have a session user.
    if unsafe { pg_sys::MyProcPort.is_null() } {
        return false;
    }
    let user = crate::context::session_user();
    let generation = settings::login_roles_generation();
    if let Some((u, g, answer)) = LOGIN_ROLE.get() {
        if u == user && g == generation {
            return answer;
        }
    }
    let answer = lookup_login_role();
    LOGIN_ROLE.set(Some((user, generation, answer)));
    answer
}

/// The last answer of `session_is_login_role`, without looking anything up (for callbacks that
/// may not touch the catalogs).
pub fn login_role_cached() -> bool {
    LOGIN_ROLE.get().is_some_and(|(_, _, answer)| answer)
}

fn lookup_login_role() -> bool {
    let listed = settings::login_roles();
    // SAFETY: only client backends have a session user; the name lookup tolerates a missing role.
    unsafe {
        if listed.is_empty() || pg_sys::MyProcPort.is_null() {
            return false;
        }
        let name = pg_sys::GetUserNameFromId(pg_sys::GetSessionUserId(), true);
        if name.is_null() {
            return false;
        }
        let name = CStr::from_ptr(name).to_string_lossy();
        listed.iter().any(|r| *r == name)
    }
}

fn refuse_in_check(what: &str) -> bool {
    // SAFETY: sets the SQLSTATE and texts of the error Postgres raises for this refusal.
    unsafe { pg_sys::GUC_check_errcode(pgrx::PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE as i32) };
    crate::settings::set_check_detail(&format!(
        "pg_jwt_guard refuses changing {what} from SQL in this session."
    ));
    crate::settings::set_check_hint(crate::errors::ESCAPE_HINT);
    false
}

// Values Postgres sets itself (defaults, server start, session start-up) and parallel workers
// restoring the leader's values are not a client's doing; everything a client can send is.
unsafe fn exempt(source: pg_sys::GucSource::Type) -> bool {
    use pg_sys::GucSource::*;
    // SAFETY: read of a backend global.
    let worker = unsafe { pg_sys::InitializingParallelWorker };
    worker
        || matches!(
            source,
            PGC_S_DEFAULT | PGC_S_DYNAMIC_DEFAULT | PGC_S_FILE | PGC_S_ARGV | PGC_S_GLOBAL | PGC_S_OVERRIDE
        )
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn role_check(
    newval: *mut *mut c_char,
    extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: Postgres' own arguments, forwarded unchanged.
    unsafe { guarded_check("the role", ROLE_CHECK, newval, extra, source) }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn session_auth_check(
    newval: *mut *mut c_char,
    extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: Postgres' own arguments, forwarded unchanged.
    unsafe { guarded_check("the session user", SESSION_AUTH_CHECK, newval, extra, source) }
}

/// Every change of the session user (SET, RESET, the end of a SET LOCAL): role verdicts refuse
/// the session's login role, so cached ones may be stale.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn session_auth_assign(newval: *const c_char, extra: *mut c_void) {
    // SAFETY: Postgres' own arguments, forwarded unchanged to the hook we replaced.
    unsafe {
        if let Some(original) = SESSION_AUTH_ASSIGN {
            original(newval, extra);
        }
    }
    crate::cache::bump();
}

/// Refuses a client's value while locked, otherwise defers to the hook we replaced.
unsafe fn guarded_check(
    what: &str,
    original: pg_sys::GucStringCheckHook,
    newval: *mut *mut c_char,
    extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: forwards Postgres' own arguments to the original hook.
    unsafe {
        if !exempt(source) && locked() {
            return refuse_in_check(what);
        }
        original.is_none_or(|original| original(newval, extra, source))
    }
}

/// What a utility statement would do that a locked session may not, if anything.
pub unsafe fn refusal(node: *mut pg_sys::Node) -> Option<String> {
    use pg_sys::NodeTag::*;
    // SAFETY: each cast follows the node tag check before it.
    unsafe {
        if node.is_null() {
            return None;
        }
        if let Some(inner) = explained_utility(node) {
            return refusal(inner);
        }
        match (*node).type_ {
            T_VariableSetStmt => {
                let name = role_setting(node as *mut pg_sys::VariableSetStmt)?;
                Some(format!("changing {name} is not allowed in this session"))
            }
            T_AlterSystemStmt => Some("ALTER SYSTEM is not allowed in this session".into()),
            T_LoadStmt => Some("LOAD is not allowed in this session".into()),
            T_CopyStmt if (*(node as *mut pg_sys::CopyStmt)).is_program => {
                Some("COPY with PROGRAM is not allowed in this session".into())
            }
            T_CreateFunctionStmt => sets_role((*(node as *mut pg_sys::CreateFunctionStmt)).options),
            T_AlterFunctionStmt => sets_role((*(node as *mut pg_sys::AlterFunctionStmt)).actions),
            _ => None,
        }
    }
}

/// "role" or "session authorization" when the statement targets one of them.
unsafe fn role_setting(stmt: *mut pg_sys::VariableSetStmt) -> Option<&'static str> {
    // SAFETY: name is NULL (RESET ALL) or a valid C string.
    let name = unsafe { (*stmt).name.as_ref().map(|n| CStr::from_ptr(n)) }?;
    match name.to_bytes() {
        b"role" => Some("the role"),
        b"session_authorization" => Some("the session user"),
        _ => None,
    }
}

/// A function SET clause that changes role or session user.
unsafe fn sets_role(options: *mut pg_sys::List) -> Option<String> {
    // SAFETY: a list of DefElem nodes, as the grammar builds it.
    unsafe {
        let options = PgList::<pg_sys::DefElem>::from_pg(options);
        for def in options.iter_ptr() {
            let arg = (*def).arg;
            let is_set = CStr::from_ptr((*def).defname).to_bytes() == b"set";
            if is_set && !arg.is_null() && (*arg).type_ == pg_sys::NodeTag::T_VariableSetStmt {
                if let Some(name) = role_setting(arg as *mut pg_sys::VariableSetStmt) {
                    return Some(format!(
                        "a function SET clause changing {name} is not allowed in this session"
                    ));
                }
            }
        }
    }
    None
}
