//! Catalog checks on the role a token asks for. The allow-list is the only thing between a
//! signed token and a role (the switch needs no membership), so a listed role is still
//! refused when it, or any role it belongs to, holds a dangerous attribute or power.

use crate::cache::{self, GenerationMap};
use crate::context;
use crate::errors::GuardError;
use jwt_guard_core::error::printable;
use jwt_guard_core::explain::Step;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::ffi::CString;

thread_local! {
    static CHECKED: RefCell<GenerationMap<Result<pg_sys::Oid, String>>> = RefCell::new(GenerationMap::new());
}

/// Returns the role's OID if it exists and may be assumed. The verdict is cached until the
/// next change to roles, memberships or relations.
pub fn resolve(name: &str) -> Result<pg_sys::Oid, GuardError> {
    if let Some(verdict) = CHECKED.with_borrow_mut(|m| m.get(name)) {
        return verdict.map_err(GuardError::Role);
    }
    let generation = cache::generation();
    let verdict = check(name);
    // Only verdicts on the role itself are kept; anything else is raised and retried next time.
    let stored = match &verdict {
        Ok(oid) => Some(Ok(*oid)),
        Err(GuardError::Role(m)) => Some(Err(m.clone())),
        Err(_) => None,
    };
    if let Some(stored) = stored {
        CHECKED.with_borrow_mut(|m| m.put(name.to_owned(), stored, generation));
    }
    verdict
}

fn check(name: &str) -> Result<pg_sys::Oid, GuardError> {
    let refuse = |why: String| GuardError::Role(format!("role \"{}\" may not be assumed: {why}", printable(name)));
    let oid = existing(name)?;
    if is_login_role(name) {
        return Err(refuse(LOGIN_ROLE.into()));
    }
    match context::as_superuser(|| danger(oid)) {
        None => Ok(oid),
        Some(why) => Err(refuse(why)),
    }
}

const LOGIN_ROLE: &str = "it is listed in pg_jwt_guard.login_roles";

fn existing(name: &str) -> Result<pg_sys::Oid, GuardError> {
    let cname = CString::new(name).map_err(|_| GuardError::Role("role name contains NUL".into()))?;
    // SAFETY: catalog lookup by exact name; missing_ok returns InvalidOid instead of raising.
    let oid = unsafe { pg_sys::get_role_oid(cname.as_ptr(), true) };
    if oid == pg_sys::InvalidOid {
        return Err(GuardError::Role(format!("role \"{}\" does not exist", printable(name))));
    }
    Ok(oid)
}

/// A login role's sessions are the ones tokens are presented in; a token never becomes one.
fn is_login_role(name: &str) -> bool {
    crate::settings::login_roles().iter().any(|r| r == name)
}

/// The same checks as `resolve`, each on its own and uncached, for explain().
pub fn explain(name: &str) -> Vec<Step> {
    let oid = existing(name);
    let exists = match &oid {
        Ok(_) => Step::passed("role exists", format!("\"{}\"", printable(name))),
        Err(GuardError::Role(m)) => Step::failed("role exists", m.clone()),
        Err(e) => Step::failed("role exists", e.reason()),
    };
    let login = if is_login_role(name) {
        Step::failed("role is not a login role", LOGIN_ROLE)
    } else {
        Step::passed("role is not a login role", "not in pg_jwt_guard.login_roles")
    };
    let powers = match oid {
        Err(_) => Step::not_run("role attributes and memberships", "the role does not exist"),
        Ok(oid) => match context::as_superuser(|| danger(oid)) {
            None => Step::passed(
                "role attributes and memberships",
                "no dangerous attribute, membership, ownership or privilege",
            ),
            Some(why) => Step::failed("role attributes and memberships", why),
        },
    };
    vec![exists, login, powers]
}

// One query over the role and every role it is a member of, directly or not. It always
// returns one row: NULL when nothing is dangerous.
const DANGER: &str = r#"
SELECT (SELECT why FROM (SELECT CASE
  WHEN m.rolsuper THEN 'it is or belongs to a superuser role'
  WHEN m.rolbypassrls THEN 'it is or belongs to a role with BYPASSRLS'
  WHEN m.rolcreaterole THEN 'it is or belongs to a role with CREATEROLE'
  WHEN m.rolcreatedb THEN 'it is or belongs to a role with CREATEDB'
  WHEN m.rolreplication THEN 'it is or belongs to a role with REPLICATION'
  WHEN m.rolname = 'jwt_guard_admin' THEN 'it is or belongs to jwt_guard_admin (administration is never a token''s)'
  WHEN m.rolname ~ '^pg_' AND m.rolname <> 'pg_database_owner' THEN 'it belongs to the predefined role ' || m.rolname
  WHEN EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = current_database() AND d.datdba = m.oid)
    THEN 'it is or belongs to the owner of this database'
  WHEN EXISTS (SELECT 1 FROM pg_extension e WHERE e.extname = 'pg_jwt_guard' AND e.extowner = m.oid)
    THEN 'it is or belongs to the owner of pg_jwt_guard'
  WHEN m.oid = session_user::regrole::oid THEN 'it is or belongs to the login role of this session'
  WHEN EXISTS (SELECT 1 FROM pg_shdepend d
               WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = m.oid AND d.deptype = 'o'
                 AND d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())))
    THEN 'it owns objects (an owner can drop or alter them, or turn row level security off)'
  WHEN EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
               WHERE c.relacl IS NOT NULL AND a.grantee IN (m.oid, 0) AND a.privilege_type = 'TRIGGER')
    THEN 'it holds the TRIGGER privilege on a table (a trigger would see every tenant''s writes)'
  WHEN EXISTS (SELECT 1 FROM pg_class c, aclexplode(c.relacl) a
               WHERE c.relacl IS NOT NULL AND a.grantee IN (m.oid, 0) AND a.privilege_type = 'MAINTAIN')
    THEN 'it holds the MAINTAIN privilege on a table (it could lock the table against every tenant or rewrite its planner statistics)'
END AS why, m.rolsuper
  FROM pg_roles m
  WHERE pg_has_role($1::oid, m.oid, 'MEMBER')) AS q
WHERE why IS NOT NULL
ORDER BY rolsuper DESC
LIMIT 1)
"#;

// Fails closed: if the check returns no row, the role is refused. It reads the latest
// committed catalogs, so a change made after this transaction began counts.
fn danger(role: pg_sys::Oid) -> Option<String> {
    let role = u32::from(role).to_string();
    match crate::latest::rows(DANGER, &[Some(&role)])
        .first()
        .and_then(|r| r.first())
    {
        Some(why) => why.clone(),
        None => Some("its attributes and memberships could not be checked".into()),
    }
}
