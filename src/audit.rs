//! The audit trail: one JSON object per decision of `authenticate()`, written to the server
//! log at LOG level (never sent to the client, never followed by the statement text).
//!
//! Events: `verified` (a token was verified), `cached` (taken from the token cache; only with
//! `audit_log = all`), `refused` (with a stable `reason` code). Refusal lines are limited per
//! backend by a token bucket (a burst of 20, then 10 a second); the next refusal line written
//! says how many were left out (`suppressed`). Never the token or a signature.
//!
//! With `pg_jwt_guard.audit_statements = on`, every statement run under a token identity
//! (with the token role's rights: not the extension's own reads) writes one line with
//! `event: "statement"`, its command and the relations it touches with the privileges each
//! needed.

use crate::pg_version;
use crate::settings::{self, AuditLog};
use jwt_guard_core::Identity;
use pgrx::pg_sys;
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::cell::Cell;
use std::ffi::CString;
use std::rc::Rc;
use std::time::Instant;

/// What is known of an attempt when it is decided. The line's claims are read from the
/// verified identity once there is one; before that, only the header and the payload's
/// unverified `iss` are known.
#[derive(Default)]
pub struct Attempt {
    pub kid: Option<String>,
    pub alg: Option<&'static str>,
    pub unverified_iss: Option<String>,
    pub identity: Option<Rc<Identity>>,
    pub role: Option<Rc<str>>,
}

const BURST: f64 = 20.0;
const PER_SECOND: f64 = 10.0;
/// Longest string a line carries per field (attacker-chosen values are cut, never dropped).
const FIELD_CHARS: usize = 256;

thread_local! {
    static BUCKET: Cell<(f64, Option<Instant>)> = const { Cell::new((BURST, None)) };
    static SUPPRESSED: Cell<u64> = const { Cell::new(0) };
    static CLIENT_ADDR: std::cell::OnceCell<Option<String>> = const { std::cell::OnceCell::new() };
}

pub fn verified(a: &Attempt, from_cache: bool) {
    let wanted = match settings::audit_log() {
        AuditLog::Off => false,
        AuditLog::Verified => !from_cache,
        AuditLog::All => true,
    };
    if wanted {
        emit(&line(if from_cache { "cached" } else { "verified" }, None, a, None));
    }
}

pub fn refused(a: &Attempt, reason: &str) {
    if settings::audit_log() == AuditLog::Off || !take_from_bucket() {
        return;
    }
    let suppressed = SUPPRESSED.replace(0);
    emit(&line("refused", Some(reason), a, Some(suppressed).filter(|n| *n > 0)));
}

/// Refills by elapsed time; false (and one more suppressed) when the bucket is empty.
fn take_from_bucket() -> bool {
    let now = Instant::now();
    let (tokens, last) = BUCKET.get();
    let refilled = last.map_or(BURST, |t| {
        (tokens + now.duration_since(t).as_secs_f64() * PER_SECOND).min(BURST)
    });
    if refilled < 1.0 {
        BUCKET.set((refilled, Some(now)));
        SUPPRESSED.set(SUPPRESSED.get() + 1);
        return false;
    }
    BUCKET.set((refilled - 1.0, Some(now)));
    true
}

/// A string field as a line carries it: cut to FIELD_CHARS characters, borrowed when shorter.
fn cut(v: Option<&str>) -> Option<Cow<'_, str>> {
    let s = v?;
    Some(match s.char_indices().nth(FIELD_CHARS) {
        Some((end, _)) => Cow::Owned(s[..end].to_owned()),
        None => Cow::Borrowed(s),
    })
}

/// The fields every line carries: who, under which identity, in which backend and transaction.
#[derive(Serialize)]
struct Who<'a> {
    iss: Option<Cow<'a, str>>,
    sub: Option<Cow<'a, str>>,
    jti: Option<Cow<'a, str>>,
    tenant: Option<Cow<'a, str>>,
    role: Option<Cow<'a, str>>,
    session_user: Option<String>,
    pid: i32,
    vxid: Option<String>,
}

fn who<'a>(identity: Option<&'a Identity>, iss: Option<&'a str>, role: Option<&'a str>) -> Who<'a> {
    let iss = identity
        .and_then(|i| i.claims.get("iss"))
        .and_then(Value::as_str)
        .or(iss);
    // SAFETY: the session user exists in a client backend (checked first).
    let session = (!unsafe { pg_sys::MyProcPort }.is_null()).then(|| user_name(unsafe { pg_sys::GetSessionUserId() }));
    Who {
        iss: cut(iss),
        sub: cut(identity.and_then(|i| i.sub.as_deref())),
        jti: cut(identity.and_then(|i| i.jti.as_deref())),
        tenant: cut(identity.and_then(|i| i.tenant.as_deref())),
        role: cut(role),
        session_user: session.flatten(),
        // SAFETY: MyProcPid is set at process start.
        pid: unsafe { pg_sys::MyProcPid },
        vxid: crate::pg_version::vxid(),
    }
}

/// A line of `authenticate()`'s decision.
#[derive(Serialize)]
struct Decision<'a> {
    #[serde(flatten)]
    who: Who<'a>,
    event: &'a str,
    reason: Option<&'a str>,
    kid: Option<Cow<'a, str>>,
    alg: Option<&'a str>,
    client_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed: Option<u64>,
}

fn line<'a>(event: &'a str, reason: Option<&'a str>, a: &'a Attempt, suppressed: Option<u64>) -> Decision<'a> {
    let identity = a.identity.as_deref();
    Decision {
        who: who(identity, a.unverified_iss.as_deref(), a.role.as_deref()),
        event,
        reason,
        kid: cut(identity.and_then(|i| i.kid.as_deref()).or(a.kid.as_deref())),
        alg: a.alg,
        client_addr: client_addr(),
        suppressed,
    }
}

fn user_name(role: pg_sys::Oid) -> Option<String> {
    // SAFETY: syscache lookup; noerr returns NULL for a role that is gone.
    unsafe {
        let name = pg_sys::GetUserNameFromId(role, true);
        (!name.is_null()).then(|| std::ffi::CStr::from_ptr(name).to_string_lossy().into_owned())
    }
}

/// The client's address as PostgreSQL reports it (NULL over a Unix socket), read once.
fn client_addr() -> Option<String> {
    CLIENT_ADDR.with(|c| {
        c.get_or_init(|| {
            // SAFETY: a built-in taking no arguments; a direct call never passes the
            // executor's function hooks.
            unsafe { pgrx::direct_function_call::<pgrx::datum::Inet>(pg_sys::inet_client_addr, &[]) }.map(|i| i.0)
        })
        .clone()
    })
}

unsafe extern "C-unwind" {
    fn errstart(elevel: std::ffi::c_int, domain: *const std::ffi::c_char) -> bool;
    fn errfinish(filename: *const std::ffi::c_char, lineno: std::ffi::c_int, funcname: *const std::ffi::c_char);
}

/// One LOG_SERVER_ONLY line, without the statement or context lines PostgreSQL would add.
fn emit(line: &impl Serialize) {
    let text = serde_json::to_string(line).unwrap_or_else(|_| r#"{"event":"unserializable"}"#.into());
    // serde_json writes a NUL as \u0000, so the line is normally taken as it is; were one there,
    // the line is still written, without it.
    let message = CString::new(text).unwrap_or_else(|e| {
        let mut bytes = e.into_vec();
        bytes.retain(|&b| b != 0);
        CString::new(bytes).unwrap_or_default()
    });
    // SAFETY: the elog protocol: errstart, the message and flags, errfinish; at this level
    // errfinish returns.
    unsafe {
        if errstart(pg_sys::LOG_SERVER_ONLY as std::ffi::c_int, std::ptr::null()) {
            pg_sys::errmsg_internal(c"%s".as_ptr(), message.as_ptr());
            pg_sys::errhidestmt(true);
            pg_sys::errhidecontext(true);
            errfinish(c"audit.rs".as_ptr(), 0, c"pg_jwt_guard_audit".as_ptr());
        }
    }
}

// ---- statements ----------------------------------------------------------------------------

/// The identity a statement line is due for, with its role's name; None when no line is due.
fn statement_identity() -> Option<(Rc<Identity>, Option<String>)> {
    if !settings::AUDIT_STATEMENTS.get() {
        return None;
    }
    let identity = crate::identity::current()?;
    let role = crate::identity::role()?;
    if !crate::context::own_rights(Some(role)) {
        return None;
    }
    Some((identity, user_name(role)))
}

/// A relation a statement touches, with the privileges it needed.
#[derive(Serialize)]
struct Touched {
    relation: String,
    privileges: Vec<&'static str>,
}

#[derive(Serialize)]
struct StatementLine<'a> {
    #[serde(flatten)]
    who: Who<'a>,
    event: &'static str,
    command: &'a str,
    relations: Vec<Touched>,
}

fn emit_statement(identity: &Identity, role: Option<&str>, command: &str, relations: Vec<Touched>) {
    let line = StatementLine {
        who: who(Some(identity), None, role),
        event: "statement",
        command,
        relations,
    };
    emit(&line);
}

fn relation_name(relid: pg_sys::Oid) -> String {
    // SAFETY: syscache lookups for a relation the statement names.
    unsafe {
        format!(
            "{}.{}",
            crate::nodes::schema_of(relid),
            crate::nodes::cstr(pg_sys::get_rel_name(relid))
        )
    }
}

/// From the ExecutorStart hook, once the executor has started (its permission checks passed):
/// one line for a SELECT, INSERT, UPDATE, DELETE or MERGE. Not for a plain EXPLAIN, which runs
/// nothing, nor in parallel workers, whose leader writes the line.
///
/// # Safety
/// `query` is the QueryDesc the executor has started.
pub unsafe fn statement(query: *mut pg_sys::QueryDesc, eflags: std::ffi::c_int) {
    // SAFETY: ParallelWorkerNumber is a backend global, -1 outside parallel workers.
    let parallel_worker = unsafe { pg_sys::ParallelWorkerNumber } >= 0;
    if !settings::AUDIT_STATEMENTS.get() || parallel_worker || eflags & pg_sys::EXEC_FLAG_EXPLAIN_ONLY as i32 != 0 {
        return;
    }
    // SAFETY: the executor's own QueryDesc and its planned statement.
    let (operation, stmt) = unsafe { ((*query).operation, (*query).plannedstmt) };
    let command = match operation {
        pg_sys::CmdType::CMD_SELECT => "SELECT",
        pg_sys::CmdType::CMD_INSERT => "INSERT",
        pg_sys::CmdType::CMD_UPDATE => "UPDATE",
        pg_sys::CmdType::CMD_DELETE => "DELETE",
        pg_sys::CmdType::CMD_MERGE => "MERGE",
        _ => "OTHER",
    };
    let Some((identity, role)) = statement_identity() else {
        return;
    };
    // SAFETY: the permission list of the executor's planned statement.
    let needed = unsafe { pg_version::relation_permissions(pg_version::planned_permissions(stmt)) };
    let relations: Vec<Touched> = needed
        .iter()
        .filter(|r| r.required != 0)
        .map(|r| {
            let privileges: Vec<&'static str> = [
                (pg_sys::ACL_SELECT, "SELECT"),
                (pg_sys::ACL_INSERT, "INSERT"),
                (pg_sys::ACL_UPDATE, "UPDATE"),
                (pg_sys::ACL_DELETE, "DELETE"),
            ]
            .into_iter()
            .filter(|(bit, _)| r.required & *bit as pg_sys::AclMode != 0)
            .map(|(_, name)| name)
            .collect();
            Touched {
                relation: relation_name(r.relid),
                privileges,
            }
        })
        .collect();
    emit_statement(&identity, role.as_deref(), command, relations);
}

/// From the ProcessUtility hook: one line for a utility statement (COPY and TRUNCATE name
/// their relations).
///
/// # Safety
/// `node` is the utility statement Postgres is about to run.
pub unsafe fn utility(node: *mut pg_sys::Node) {
    if node.is_null() || !settings::AUDIT_STATEMENTS.get() || crate::identity::current().is_none() {
        return;
    }
    // SAFETY: tag checks before each cast; names come from the catalogs.
    let (command, relations) = unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_CopyStmt => {
                let copy = node as *mut pg_sys::CopyStmt;
                let relid = if (*copy).relation.is_null() {
                    pg_sys::InvalidOid
                } else {
                    pg_sys::RangeVarGetRelidExtended(
                        (*copy).relation,
                        pg_sys::NoLock as pg_sys::LOCKMODE,
                        pg_sys::RVROption::RVR_MISSING_OK,
                        None,
                        std::ptr::null_mut(),
                    )
                };
                let privilege = if (*copy).is_from { "INSERT" } else { "SELECT" };
                let relations = if relid == pg_sys::InvalidOid {
                    vec![]
                } else {
                    vec![Touched {
                        relation: relation_name(relid),
                        privileges: vec![privilege],
                    }]
                };
                ("COPY".to_owned(), relations)
            }
            pg_sys::NodeTag::T_TruncateStmt => (
                "TRUNCATE".to_owned(),
                crate::nodes::truncate_targets(node as *mut pg_sys::TruncateStmt)
                    .into_iter()
                    .map(|r| Touched {
                        relation: relation_name(r),
                        privileges: vec!["TRUNCATE"],
                    })
                    .collect(),
            ),
            _ => {
                let tag = pg_sys::CreateCommandName(node);
                let name = tag
                    .as_ref()
                    .map(|t| std::ffi::CStr::from_ptr(t).to_string_lossy().into_owned());
                (name.unwrap_or_else(|| "UTILITY".into()), vec![])
            }
        }
    };
    if let Some((identity, role)) = statement_identity() {
        emit_statement(&identity, role.as_deref(), &command, relations);
    }
}
