//! What moved between the supported PostgreSQL versions (15, 17, 18), in one place.
//!
//! - The permission-check input: up to 15, each range-table entry carries its required
//!   permissions; from 16 they live in a separate list of `RTEPermissionInfo`, and the
//!   ExecutorCheckPerms hook takes both lists.
//! - The virtual transaction id: from 17, `PGPROC.vxid` holds the proc number and local id.
//! - The MAINTAIN table privilege exists from 17.

use pgrx::pg_sys;
use pgrx::PgList;

/// The table privileges a token role must not hold (see `role_checks`): TRIGGER, and MAINTAIN
/// where it exists.
#[cfg(feature = "pg15")]
pub const POWER_PRIVILEGES: pg_sys::AclMode = pg_sys::ACL_TRIGGER as pg_sys::AclMode;
#[cfg(not(feature = "pg15"))]
pub const POWER_PRIVILEGES: pg_sys::AclMode = (pg_sys::ACL_TRIGGER | pg_sys::ACL_MAINTAIN) as pg_sys::AclMode;

/// One relation a statement needs permission on, whatever the version stores it in.
pub struct RelPermission {
    pub relid: pg_sys::Oid,
    pub required: pg_sys::AclMode,
    pub check_as_user: pg_sys::Oid,
    pub selected_cols: *mut pg_sys::Bitmapset,
    pub inserted_cols: *mut pg_sys::Bitmapset,
    pub updated_cols: *mut pg_sys::Bitmapset,
}

/// The relations of a permission check: the range table up to 15, the permission infos from 16.
///
/// # Safety
/// `list` is the list Postgres handed to the ExecutorCheckPerms hook (or a planned statement's
/// `rtable` / `permInfos`), valid for the duration of the call.
#[cfg(feature = "pg15")]
pub unsafe fn relation_permissions(list: *mut pg_sys::List) -> Vec<RelPermission> {
    // SAFETY: a list of RangeTblEntry, as the planner builds it.
    let entries = unsafe { PgList::<pg_sys::RangeTblEntry>::from_pg(list) };
    entries
        .iter_ptr()
        // SAFETY: entries of a valid range table.
        .map(|rte| unsafe { &*rte })
        .filter(|rte| rte.rtekind == pg_sys::RTEKind::RTE_RELATION)
        .map(|rte| RelPermission {
            relid: rte.relid,
            required: rte.requiredPerms,
            check_as_user: rte.checkAsUser,
            selected_cols: rte.selectedCols,
            inserted_cols: rte.insertedCols,
            updated_cols: rte.updatedCols,
        })
        .collect()
}

#[cfg(not(feature = "pg15"))]
pub unsafe fn relation_permissions(list: *mut pg_sys::List) -> Vec<RelPermission> {
    // SAFETY: a list of RTEPermissionInfo, as the parser and planner build it.
    let entries = unsafe { PgList::<pg_sys::RTEPermissionInfo>::from_pg(list) };
    entries
        .iter_ptr()
        // SAFETY: entries of a valid permission-info list.
        .map(|info| unsafe { &*info })
        .map(|info| RelPermission {
            relid: info.relid,
            required: info.requiredPerms,
            check_as_user: info.checkAsUser,
            selected_cols: info.selectedCols,
            inserted_cols: info.insertedCols,
            updated_cols: info.updatedCols,
        })
        .collect()
}

/// The list of a planned statement that `relation_permissions` reads.
///
/// # Safety
/// `stmt` is a valid planned statement.
pub unsafe fn planned_permissions(stmt: *mut pg_sys::PlannedStmt) -> *mut pg_sys::List {
    #[cfg(feature = "pg15")]
    // SAFETY: reading a field of the statement Postgres handed us.
    return unsafe { (*stmt).rtable };
    #[cfg(not(feature = "pg15"))]
    // SAFETY: reading a field of the statement Postgres handed us.
    return unsafe { (*stmt).permInfos };
}

/// This backend's virtual transaction id as `procnumber/lxid`, when it has a PGPROC.
pub fn vxid() -> Option<String> {
    // SAFETY: MyProc is this backend's own PGPROC, or null before it has one.
    unsafe {
        let proc_ = pg_sys::MyProc;
        if proc_.is_null() {
            return None;
        }
        #[cfg(feature = "pg15")]
        return Some(format!("{}/{}", (*proc_).backendId, (*proc_).lxid));
        #[cfg(not(feature = "pg15"))]
        return Some(format!("{}/{}", (*proc_).vxid.procNumber, (*proc_).vxid.lxid));
    }
}

/// Calls `f` on every setting PostgreSQL knows, built-in and custom, until it returns Some.
///
/// Up to 15 this walks PostgreSQL's own array. From 16 the settings live in a hash table and
/// `get_guc_variables` returns a freshly sorted copy (tens of microseconds): callers on a hot
/// path walk only when something may have changed (see `isolation::check_settings_at_commit`).
///
/// # Safety
/// Call in a backend (or the postmaster) after the GUC table is built.
pub unsafe fn find_guc_map<T>(f: impl FnMut(*mut pg_sys::config_generic) -> Option<T>) -> Option<T> {
    #[cfg(feature = "pg15")]
    {
        // SAFETY: the GUC array and its length, read together.
        let (vars, n) = unsafe { (pg_sys::get_guc_variables(), pg_sys::GetNumConfigOptions() as usize) };
        // SAFETY: `vars` holds `n` valid entries.
        (0..n).map(|i| unsafe { *vars.add(i) }).find_map(f)
    }
    #[cfg(not(feature = "pg15"))]
    {
        let mut n: std::ffi::c_int = 0;
        // SAFETY: returns a palloc'd array and writes its length.
        let vars = unsafe { pg_sys::get_guc_variables(&mut n) };
        // SAFETY: `vars` holds `n` valid entries.
        let found = (0..n as usize).map(|i| unsafe { *vars.add(i) }).find_map(f);
        // SAFETY: the array get_guc_variables allocated for us (it may be in a long-lived
        // context, a procedure's); the entries themselves stay valid.
        unsafe { pg_sys::pfree(vars.cast()) };
        found
    }
}
