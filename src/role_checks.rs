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
/// cache generation moves (see `cache`).
pub fn resolve(name: &str) -> Result<pg_sys::Oid, GuardError> {
    if let Some(verdict) = CHECKED.with_borrow_mut(|m| m.get(name)) {
        return verdict.map_err(GuardError::Role);
    }
    let generation = cache::generation();
    let verdict = check(name, generation);
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

/// The verdict, registered with the cache (before it is stored) as resting on the roles the
/// checks read, so that a later change to what they own or may do is noticed.
fn check(name: &str, generation: u64) -> Result<pg_sys::Oid, GuardError> {
    let refuse = |why: String| GuardError::Role(format!("role \"{}\" may not be assumed: {why}", printable(name)));
    let oid = existing(name)?;
    if is_login_role(name) {
        return Err(refuse(LOGIN_ROLE.into()));
    }
    let (why, roles) = context::as_superuser(|| danger(oid));
    match why {
        None => {
            cache::watch(generation, Ok(&roles));
            Ok(oid)
        }
        Some(why) => {
            cache::watch(generation, Err(()));
            Err(refuse(why))
        }
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
        Ok(oid) => match context::as_superuser(|| danger(oid)).0 {
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
// returns one row: the OIDs of those roles, and why (NULL when nothing is dangerous).
const DANGER: &str = r#"
SELECT (SELECT array_agg(oid) FROM pg_roles WHERE pg_has_role($1::oid, oid, 'MEMBER'))::text,
       (SELECT why FROM (SELECT CASE
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
fn danger(role: pg_sys::Oid) -> (Option<String>, Vec<u32>) {
    let role = u32::from(role).to_string();
    let rows = crate::latest::rows(DANGER, &[Some(&role)]);
    match rows.first().map(Vec::as_slice) {
        Some([roles, why]) => (why.clone(), oid_array(roles.as_deref())),
        _ => (
            Some("its attributes and memberships could not be checked".into()),
            Vec::new(),
        ),
    }
}

/// `{1,2,3}` (an oid[] as text) → the OIDs; anything unreadable is left out.
fn oid_array(text: Option<&str>) -> Vec<u32> {
    text.unwrap_or("")
        .trim_matches(|c| c == '{' || c == '}')
        .split(',')
        .filter_map(|o| o.trim().parse().ok())
        .collect()
}

/// True when one of `roles` (each accepted role and every role it belongs to) now owns an
/// object in this database or a shared one, or holds TRIGGER or MAINTAIN (itself or through
/// PUBLIC) on one of `relids`: the powers the checks above refuse that a change to a relation,
/// function, schema or type can bring. One index scan per role and one syscache lookup per
/// relation, so that unrelated DDL costs next to nothing.
pub fn may_have_gained_power(relids: &[u32], roles: &[u32]) -> bool {
    roles.iter().any(|&role| owns_something(role)) || relids.iter().any(|&relid| grants_power(relid, roles))
}

/// pg_shdepend and its (refclassid, refobjid) index: fixed catalog OIDs (catalog/pg_shdepend.h).
const SHARED_DEPEND_RELATION: u32 = 1214;
const SHARED_DEPEND_REFERENCE_INDEX: u32 = 1233;
const ANUM_REFCLASSID: pg_sys::AttrNumber = 5;
const ANUM_REFOBJID: pg_sys::AttrNumber = 6;

/// A pg_shdepend row as the catalog lays it out (FormData_pg_shdepend).
#[repr(C)]
struct SharedDependency {
    dbid: pg_sys::Oid,
    classid: pg_sys::Oid,
    objid: pg_sys::Oid,
    objsubid: i32,
    refclassid: pg_sys::Oid,
    refobjid: pg_sys::Oid,
    deptype: std::ffi::c_char,
}

/// The ownership test of the checks above ("it owns objects"), for one role.
fn owns_something(role: u32) -> bool {
    let equal = |key: &mut pg_sys::ScanKeyData, attribute, value: pg_sys::Oid| {
        // SAFETY: fills a caller-owned scan key.
        unsafe {
            pg_sys::ScanKeyInit(
                key,
                attribute,
                pg_sys::BTEqualStrategyNumber as pg_sys::StrategyNumber,
                pg_sys::Oid::from(pg_sys::F_OIDEQ),
                pg_sys::Datum::from(value),
            )
        }
    };
    // SAFETY: zeroed scan keys are filled in just below.
    let mut keys: [pg_sys::ScanKeyData; 2] = unsafe { std::mem::zeroed() };
    equal(&mut keys[0], ANUM_REFCLASSID, pg_sys::AuthIdRelationId);
    equal(&mut keys[1], ANUM_REFOBJID, pg_sys::Oid::from(role));
    // SAFETY: an index scan of a catalog under AccessShareLock with the catalog snapshot,
    // ended and closed before returning; rows are read through the catalog's C layout.
    unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let relation = pg_sys::table_open(pg_sys::Oid::from(SHARED_DEPEND_RELATION), lock);
        let scan = pg_sys::systable_beginscan(
            relation,
            pg_sys::Oid::from(SHARED_DEPEND_REFERENCE_INDEX),
            true,
            std::ptr::null_mut(),
            2,
            keys.as_mut_ptr(),
        );
        let mut owns = false;
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() {
                break;
            }
            // Field by field: the tuple holds the row's 25 bytes, not the struct's padded 28.
            let row = pg_sys::heap_tuple_get_struct::<SharedDependency>(tuple);
            let dbid = std::ptr::addr_of!((*row).dbid).read();
            let deptype = std::ptr::addr_of!((*row).deptype).read();
            let here = dbid == pg_sys::InvalidOid || dbid == pg_sys::MyDatabaseId;
            if deptype as u8 == b'o' && here {
                owns = true;
                break;
            }
        }
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(relation, lock);
        owns
    }
}

/// The privilege tests of the checks above, on one relation (gone: nothing to hold).
fn grants_power(relid: u32, roles: &[u32]) -> bool {
    let reloid = pg_sys::SysCacheIdentifier::RELOID as i32;
    // SAFETY: a syscache lookup released before returning; the ACL is detoasted into the
    // current memory context; aclmask reads it and the role memberships.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(reloid, pg_sys::Datum::from(pg_sys::Oid::from(relid)));
        if tuple.is_null() {
            return false;
        }
        let mut is_null = false;
        let datum = pg_sys::SysCacheGetAttr(
            reloid,
            tuple,
            pg_sys::Anum_pg_class_relacl as pg_sys::AttrNumber,
            &mut is_null,
        );
        let holds = !is_null && {
            let stored = datum.cast_mut_ptr::<pg_sys::varlena>();
            let acl = pg_sys::pg_detoast_datum(stored);
            let held = roles.iter().any(|&role| {
                let mask = pg_sys::aclmask(
                    acl as *const pg_sys::Acl,
                    pg_sys::Oid::from(role),
                    pg_sys::InvalidOid,
                    crate::pg_version::POWER_PRIVILEGES,
                    pg_sys::AclMaskHow::ACLMASK_ANY,
                );
                mask != 0
            });
            if acl != stored {
                pg_sys::pfree(acl.cast());
            }
            held
        };
        pg_sys::ReleaseSysCache(tuple);
        holds
    }
}
