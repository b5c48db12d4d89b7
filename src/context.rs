//! Who we are running as, and where switching identity would be unsafe.

use crate::errors::GuardError;
use pgrx::pg_sys;
use std::ffi::CString;

/// The current user id and security context, as saved and restored by Postgres itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserContext {
    pub user: pg_sys::Oid,
    pub sec: i32,
}

/// Getters and setters of backend globals that only read or assign them (miscinit.c,
/// xact.c) and so cannot raise: the checks that run on every statement call them without
/// pgrx's error guard, which costs a sigsetjmp per call.
mod plain {
    use pgrx::pg_sys::Oid;
    use std::ffi::c_int;

    extern "C" {
        pub fn GetUserId() -> Oid;
        pub fn GetSessionUserId() -> Oid;
        pub fn GetUserIdAndSecContext(userid: *mut Oid, sec_context: *mut c_int);
        pub fn SetUserIdAndSecContext(userid: Oid, sec_context: c_int);
        pub fn InLocalUserIdChange() -> bool;
        pub fn InSecurityRestrictedOperation() -> bool;
        pub fn GetCurrentTransactionNestLevel() -> c_int;
    }
}

pub fn current() -> UserContext {
    let (mut user, mut sec) = (pg_sys::InvalidOid, 0);
    // SAFETY: plain getter of backend globals.
    unsafe { plain::GetUserIdAndSecContext(&mut user, &mut sec) };
    UserContext { user, sec }
}

pub fn switch_to(ctx: UserContext) {
    // SAFETY: plain setter of backend globals; Postgres restores them on (sub)transaction abort.
    unsafe { plain::SetUserIdAndSecContext(ctx.user, ctx.sec) };
}

/// The session user (the login role of the connection).
pub fn session_user() -> pg_sys::Oid {
    // SAFETY: plain getter of a backend global.
    unsafe { plain::GetSessionUserId() }
}

/// True while the statement runs with the rights of the session's own identity: the token
/// role under a token, the login role before one. Inside a SECURITY DEFINER function (or the
/// extension's own catalog reads) that holds only when the function's owner is the token role
/// or a role it belongs to, so such a function cannot switch a token's rules off.
pub fn own_rights(token_role: Option<pg_sys::Oid>) -> bool {
    // SAFETY: reads of backend state; the membership check uses the role caches.
    unsafe {
        let borrowed = plain::InLocalUserIdChange() || plain::InSecurityRestrictedOperation();
        match token_role {
            Some(role) => !borrowed || pg_sys::is_member_of_role_nosuper(role, plain::GetUserId()),
            None => !borrowed && plain::GetUserId() == plain::GetSessionUserId(),
        }
    }
}

/// Refuses places where a switched user would not stick or would leak: SECURITY DEFINER
/// functions, security-restricted operations, parallel workers, functions with SET clauses.
pub fn refuse_unsafe(function: &str) -> Result<(), GuardError> {
    // SAFETY: reads of backend state.
    let (restricted, local_change, worker) = unsafe {
        (
            plain::InSecurityRestrictedOperation(),
            plain::InLocalUserIdChange(),
            pg_sys::ParallelWorkerNumber >= 0,
        )
    };
    if worker {
        return Err(GuardError::Context(format!(
            "{function} cannot run in a parallel worker"
        )));
    }
    if restricted {
        return Err(GuardError::Context(format!(
            "{function} cannot run inside a security-restricted operation"
        )));
    }
    if local_change {
        return Err(GuardError::Context(format!(
            "{function} cannot run inside a SECURITY DEFINER function"
        )));
    }
    if !guc_level_matches_transaction() {
        return Err(GuardError::Context(format!(
            "{function} cannot run inside a function with SET clauses"
        )));
    }
    Ok(())
}

// Settings made in a function with SET clauses are undone when it returns, the user id is not:
// the claims would vanish while the role stayed. Outside such functions the GUC nest level
// equals the transaction nest level.
fn guc_level_matches_transaction() -> bool {
    // SAFETY: opening and at once closing an empty GUC nest level changes nothing.
    unsafe {
        let probe = pg_sys::NewGUCNestLevel();
        pg_sys::AtEOXact_GUC(true, probe);
        probe - 1 == plain::GetCurrentTransactionNestLevel()
    }
}

/// Runs `f` as the bootstrap superuser with a pinned search_path, for reading the key store
/// and the catalogs. Postgres restores user and settings if `f` raises.
pub fn as_superuser<R>(f: impl FnOnce() -> R) -> R {
    let _scope = Superuser::enter();
    f()
}

/// While alive, the bootstrap superuser with search_path `pg_catalog, pg_temp`; dropping it
/// restores the user and the settings. When an error unwinds through it, the (sub)transaction
/// abort restores both instead.
pub struct Superuser {
    saved: UserContext,
    level: i32,
}

impl Superuser {
    pub fn enter() -> Superuser {
        let saved = current();
        // SAFETY: GUC nest levels and user switches are paired in drop; an error unwinds
        // through (sub)transaction abort, which undoes both.
        let level = unsafe {
            let level = pg_sys::NewGUCNestLevel();
            let path = CString::new("pg_catalog, pg_temp").unwrap();
            pg_sys::set_config_option(
                c"search_path".as_ptr(),
                path.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
            pg_sys::SetUserIdAndSecContext(
                pg_sys::Oid::from(pg_sys::BOOTSTRAP_SUPERUSERID),
                saved.sec | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
            );
            level
        };
        Superuser { saved, level }
    }
}

impl Drop for Superuser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return; // the abort restores user and settings
        }
        // SAFETY: undoes exactly what enter() did.
        unsafe { pg_sys::AtEOXact_GUC(true, self.level) };
        switch_to(UserContext {
            user: self.saved.user,
            sec: self.saved.sec,
        });
    }
}
