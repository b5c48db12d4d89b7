//! Enforcement of the token's permissions claim on every statement, when
//! `pg_jwt_guard.enforce_permissions` is on. It only ever narrows: GRANTs and RLS still apply.
//!
//! Table commands are checked in the ExecutorCheckPerms hook, which sees every relation a
//! statement reads or writes (subqueries, CTEs, RETURNING, COPY) exactly where PostgreSQL checks
//! its own privileges; relations reached through a view are checked as the view owner by
//! PostgreSQL, so here too only the view itself must be listed. TRUNCATE and all other utility
//! statements are checked from the ProcessUtility hook.

use crate::errors::{GuardError, OrRaise};
use crate::isolation::{self, Phase};
use crate::nodes::{cstr, schema_of};
use crate::pg_version::RelPermission;
use crate::{context, identity, preload, settings};
use jwt_guard_core::permissions::{Command, Denial, Permissions};
use jwt_guard_core::Identity;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;
use std::ffi::CStr;
use std::rc::Rc;

/// The identity to enforce, if enforcement applies to the statement running now. Code running
/// with another owner's rights (SECURITY DEFINER, our own catalog reads) is PostgreSQL's to
/// check; a function owned by the token role itself (or a role it belongs to) is not.
fn enforced() -> Option<Rc<Identity>> {
    if !settings::enforce_permissions() {
        return None;
    }
    let identity = identity::current()?;
    context::own_rights(identity::role()).then_some(identity)
}

fn denied(message: String) -> GuardError {
    GuardError::Denied(message)
}

/// Whether a permission check has anything for `verdict` to judge: before a token in a locked
/// session, or with enforcement on. Asked first, so other statements skip collecting their
/// relations.
pub fn judges_relations() -> bool {
    settings::enforce_permissions() || isolation::phase() == Some(Phase::Anonymous)
}

/// Our answer for the relations of one permission check: raises when asked to, else false.
pub fn verdict(relations: &[RelPermission], ereport: bool) -> bool {
    let result = anonymous_tables(relations).and_then(|()| match enforced() {
        // SAFETY: the relations come from the statement being checked now.
        Some(identity) => unsafe { check_relations(relations, identity.permissions.as_ref()) },
        None => Ok(()),
    });
    match result {
        Ok(()) => true,
        Err(e) if ereport => e.raise(),
        Err(_) => false,
    }
}

/// Before a token, a locked session reads and writes no table, catalogs included: they show
/// other sessions' activity (and tokens sent as literals) to the login role.
fn anonymous_tables(relations: &[RelPermission]) -> Result<(), GuardError> {
    if isolation::phase() != Some(Phase::Anonymous) || !context::own_rights(None) {
        return Ok(());
    }
    match relations.iter().find(|r| r.check_as_user == pg_sys::InvalidOid) {
        None => Ok(()),
        Some(r) => {
            // SAFETY: catalog lookups for a relation the statement already opened.
            let name = unsafe { (schema_of(r.relid), cstr(pg_sys::get_rel_name(r.relid))) };
            Err(GuardError::Escape(format!(
                "reading or writing {}.{} is not allowed before jwt_guard.authenticate() in this session",
                name.0, name.1
            )))
        }
    }
}

unsafe fn check_relations(relations: &[RelPermission], permissions: Option<&Permissions>) -> Result<(), GuardError> {
    for r in relations.iter().filter(|r| r.check_as_user == pg_sys::InvalidOid) {
        let wanted = [
            (pg_sys::ACL_SELECT, Command::Select, r.selected_cols),
            (pg_sys::ACL_INSERT, Command::Insert, r.inserted_cols),
            (pg_sys::ACL_UPDATE, Command::Update, r.updated_cols),
            (pg_sys::ACL_DELETE, Command::Delete, std::ptr::null_mut()),
        ];
        for (bit, command, cols) in wanted {
            if r.required & bit as pg_sys::AclMode != 0 {
                // SAFETY: relid and the column set belong to this entry.
                unsafe { check_relation(permissions, command, r.relid, cols)? };
            }
        }
    }
    Ok(())
}

unsafe fn check_relation(
    permissions: Option<&Permissions>,
    command: Command,
    relid: pg_sys::Oid,
    cols: *mut pg_sys::Bitmapset,
) -> Result<(), GuardError> {
    // SAFETY: catalog lookups for a relation the statement already opened.
    let (schema, table, columns) = unsafe {
        (
            schema_of(relid),
            cstr(pg_sys::get_rel_name(relid)),
            column_names(relid, cols),
        )
    };
    let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
    let verdict = match permissions {
        None => Err(Denial::Table),
        Some(p) => p.allows(command, &schema, &table, &refs),
    };
    verdict.map_err(|d| match d {
        Denial::Table => denied(format!("the token does not grant {command} on {schema}.{table}")),
        Denial::Column(c) => denied(format!(
            "the token does not grant {command} on column {c} of {schema}.{table}"
        )),
    })
}

/// Column names of a privilege bitmap; a whole-row reference is reported as "*", which no
/// column list contains, so it needs a grant without a column list.
unsafe fn column_names(relid: pg_sys::Oid, cols: *mut pg_sys::Bitmapset) -> Vec<String> {
    let mut out = Vec::new();
    let mut member = -1;
    loop {
        // SAFETY: iterating a valid (possibly NULL) bitmapset.
        member = unsafe { pg_sys::bms_next_member(cols, member) };
        if member < 0 {
            return out;
        }
        let attno = member + pg_sys::FirstLowInvalidHeapAttributeNumber;
        if attno == 0 {
            out.push("*".into());
        } else {
            // SAFETY: attribute of an open relation; missing_ok returns NULL.
            out.push(unsafe { cstr(pg_sys::get_attname(relid, attno as i16, true)) });
        }
    }
}

/// Refusal for a utility statement under an enforced identity, or None to let it run.
pub unsafe fn utility_refusal(node: *mut pg_sys::Node) -> Option<GuardError> {
    use pg_sys::NodeTag::*;
    let identity = enforced()?;
    // SAFETY: node is the statement's valid parse tree; casts follow the tag.
    unsafe {
        // EXPLAIN of CREATE TABLE AS / SELECT INTO creates the table: judge what it wraps.
        if let Some(inner) = crate::nodes::explained_utility(node) {
            return utility_refusal(inner);
        }
        match (*node).type_ {
            T_TransactionStmt | T_VariableSetStmt | T_VariableShowStmt | T_PrepareStmt | T_ExecuteStmt
            | T_DeallocateStmt | T_DeclareCursorStmt | T_FetchStmt | T_ClosePortalStmt | T_ExplainStmt | T_CopyStmt
            | T_DoStmt | T_CallStmt | T_DiscardStmt => None,
            T_TruncateStmt => truncate_refusal(node as *mut pg_sys::TruncateStmt, identity.permissions.as_ref()),
            _ => {
                let tag = cstr(pg_sys::GetCommandTagName(pg_sys::CreateCommandTag(node)));
                Some(denied(format!(
                    "{tag} is not allowed for a token identity while pg_jwt_guard.enforce_permissions is on"
                )))
            }
        }
    }
}

unsafe fn truncate_refusal(stmt: *mut pg_sys::TruncateStmt, permissions: Option<&Permissions>) -> Option<GuardError> {
    // CASCADE would empty tables the statement does not name.
    // SAFETY: reading the statement's own field.
    if unsafe { (*stmt).behavior } == pg_sys::DropBehavior::DROP_CASCADE {
        return Some(denied(
            "TRUNCATE ... CASCADE is not allowed for a token identity while pg_jwt_guard.enforce_permissions is on"
                .into(),
        ));
    }
    // SAFETY: the statement's own relation list.
    for relid in unsafe { crate::nodes::truncate_targets(stmt) } {
        // SAFETY: relid was just resolved.
        if let Err(e) = unsafe { check_relation(permissions, Command::Truncate, relid, std::ptr::null_mut()) } {
            return Some(e);
        }
    }
    None
}

/// Whether the token lists the named action (exact, case-sensitive). False without identity
/// and for a NULL action.
#[pg_extern(stable, parallel_safe)]
fn can(action: Option<&str>) -> bool {
    preload::require().or_raise();
    let Some(action) = action else { return false };
    identity::current()
        .and_then(|i| i.permissions.as_ref().map(|p| p.can(action)))
        .unwrap_or(false)
}

/// Raises 42501 unless the token lists the named action (a NULL action is never granted).
#[pg_extern(stable, parallel_safe)]
fn require(action: Option<&str>) {
    if !can(action) {
        denied(format!(
            "the token does not grant the action \"{}\"",
            jwt_guard_core::error::printable(action.unwrap_or("NULL"))
        ))
        .raise();
    }
}

/// Row values in error details ("Failing row contains (...)", "Key (...)=(...)", any detail of
/// an integrity violation, whatever the message language) may show columns that a token's
/// permissions do not let it read. Under an enforced identity they are
/// kept for the server log only. When the identity cannot be read, they are hidden too.
pub unsafe fn hide_row_values(edata: *mut pg_sys::ErrorData) {
    // SAFETY: Postgres passes the error being reported; detail strings live in ErrorContext.
    unsafe {
        if let Some(e) = edata.as_mut() {
            let integrity =
                e.sqlerrcode & 0xFFF == PgSqlErrorCode::ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION as i32 & 0xFFF;
            let values = integrity || (!e.detail.is_null() && shows_row_values(e.detail));
            if e.elevel >= pg_sys::PGERROR as i32 && !e.detail.is_null() && values && hide_details() {
                if e.detail_log.is_null() {
                    e.detail_log = e.detail;
                }
                e.detail = std::ptr::null_mut();
            }
        }
    }
}

unsafe fn shows_row_values(detail: *const std::ffi::c_char) -> bool {
    // SAFETY: a NUL-terminated string from the error being reported.
    let detail = unsafe { CStr::from_ptr(detail) }.to_bytes();
    detail.starts_with(b"Failing row contains") || detail.starts_with(b"Key (")
}

fn hide_details() -> bool {
    settings::enforce_permissions() && !matches!(identity::try_current(), Ok(None))
}
