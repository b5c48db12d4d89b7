//! What a locked session may do. A pooled backend passes from client to client, so a locked
//! session must leave nothing behind that the next client would meet: objects, settings,
//! prepared SQL, large objects. Every rule here is an allow-list.
//!
//! - Before a token (a login role listed in `pg_jwt_guard.login_roles`): transaction control,
//!   SHOW, DISCARD, DEALLOCATE, CLOSE, SET/RESET of the client settings below, and SELECTs that
//!   read no table and call only the extension's functions, immutable built-ins and the few
//!   harmless built-ins named below.
//! - Under a token: nothing that outlives the transaction (temporary tables with ON COMMIT DROP
//!   are the one kind of object allowed), no DDL on other objects, no session-level setting
//!   outside the client settings, no large-object creation, no session advisory locks.
//!
//! These places enforce it: the ProcessUtility hook (statements), the ExecutorCheckPerms hook
//! (tables, see guardrails.rs), the object access hook (function calls, including fast-path
//! calls, and object creation), the ExecutorStart hook (named prepared statements), and a
//! pre-commit check of every setting (settings changed by any route: SET, set_config,
//! PL/pgSQL, UPDATE pg_settings).

use crate::errors::GuardError;
use crate::{identity, lockdown, settings};
use pgrx::pg_sys;
use rustc_hash::FxHashMap;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, CStr};

/// Settings a client may change for the session in a locked session. The first five are the
/// ones every pgbouncer tracks and sets again for each client: application_name (a label),
/// client_encoding, DateStyle, TimeZone (text forms of values), standard_conforming_strings
/// (literal syntax). extra_float_digits is not tracked, so only values of 1 or more pass the
/// commit check: they all give exact float output, as the default does. IntervalStyle is not
/// tracked by every pgbouncer, and another style would change how the next client reads
/// intervals, so it is not listed.
pub const CLIENT_SETTINGS: [&str; 6] = [
    "application_name",
    "client_encoding",
    "DateStyle",
    "TimeZone",
    "standard_conforming_strings",
    "extra_float_digits",
];

/// Per-transaction settings that `SET TRANSACTION` writes; PostgreSQL resets them itself.
const TRANSACTION_SETTINGS: [&str; 3] = [
    "transaction_isolation",
    "transaction_read_only",
    "transaction_deferrable",
];

/// Built-ins beyond the immutable ones that a session may call before a token: clocks, the
/// server version, its own settings and backend, recovery state for health checks.
const HARMLESS_BUILTINS: [&str; 10] = [
    "now",
    "statement_timestamp",
    "transaction_timestamp",
    "clock_timestamp",
    "version",
    "current_setting",
    "pg_backend_pid",
    "pg_is_in_recovery",
    "current_database",
    "current_schema",
];

/// Session-level advisory locks outlive the transaction that takes them.
const SESSION_LOCKS: [&str; 4] = [
    "pg_advisory_lock",
    "pg_advisory_lock_shared",
    "pg_try_advisory_lock",
    "pg_try_advisory_lock_shared",
];

/// Per-backend statistics without a role check (PostgreSQL 18): they show earlier clients' I/O
/// and WAL on a pooled backend.
const BACKEND_COUNTERS: [&str; 2] = ["pg_stat_get_backend_io", "pg_stat_get_backend_wal"];

/// Planner-statistics writers (PostgreSQL 18) open to a holder of MAINTAIN.
const PLANNER_STATS: [&str; 4] = [
    "pg_restore_relation_stats",
    "pg_restore_attribute_stats",
    "pg_clear_relation_stats",
    "pg_clear_attribute_stats",
];

/// pg_largeobject's OID (LargeObjectRelationId), the class large objects are created under.
const LARGE_OBJECT_CLASS: pg_sys::Oid = pg_sys::Oid::from_u32(2613);

/// The named action a token lists to use large objects while permissions are enforced.
pub const LARGE_OBJECT_ACTION: &str = "jwt_guard:large_objects";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Phase {
    /// A listed login role before `authenticate()`.
    Anonymous,
    /// A token identity is active.
    Token,
}

/// Which allow-list applies now, if any.
pub fn phase() -> Option<Phase> {
    if identity::current().is_some() {
        Some(Phase::Token)
    } else if lockdown::session_is_login_role() {
        Some(Phase::Anonymous)
    } else {
        None
    }
}

fn refuse(what: String) -> GuardError {
    GuardError::Escape(what)
}

/// Refusal for a utility statement in a locked session, or None to let it run.
pub unsafe fn utility_refusal(
    node: *mut pg_sys::Node,
    context: pg_sys::ProcessUtilityContext::Type,
) -> Option<GuardError> {
    // Statements that an allowed statement runs for itself (the index of a temporary table's
    // primary key) were judged with it.
    if context == pg_sys::ProcessUtilityContext::PROCESS_UTILITY_SUBCOMMAND || node.is_null() {
        return None;
    }
    let phase = phase()?;
    if let Some(refusal) = portal_refusal() {
        return Some(refusal);
    }
    // SAFETY: node is the statement's valid parse tree.
    if let Some(refusal) = unsafe { execute_refusal(node) } {
        return Some(refusal);
    }
    // SAFETY: node is the statement's valid parse tree.
    let verdict = unsafe {
        match phase {
            Phase::Anonymous => anonymous_statement(node),
            Phase::Token => token_statement(node),
        }
    };
    verdict.err().map(|what| {
        // SAFETY: the command tag of a valid statement.
        let tag = unsafe { command_tag(node) };
        refuse(match phase {
            Phase::Anonymous => format!("{tag} is not allowed before jwt_guard.authenticate() in this session{what}"),
            Phase::Token => format!("{tag} is not allowed under a token identity{what}"),
        })
    })
}

/// SQL `EXECUTE` of a named statement follows the same rule as the protocol's, also when
/// wrapped in `EXPLAIN` or `CREATE TABLE ... AS EXECUTE`.
unsafe fn execute_refusal(node: *mut pg_sys::Node) -> Option<GuardError> {
    use pg_sys::NodeTag::*;
    // SAFETY: each cast follows its tag check; names are C strings.
    unsafe {
        if node.is_null() {
            return None;
        }
        match (*node).type_ {
            T_ExecuteStmt => {
                let name = (*(node as *mut pg_sys::ExecuteStmt)).name;
                let name = name.as_ref().map(|n| CStr::from_ptr(n))?;
                statement_name_refusal(name)
            }
            T_ExplainStmt => execute_refusal(query_utility((*(node as *mut pg_sys::ExplainStmt)).query)),
            T_CreateTableAsStmt => execute_refusal(query_utility((*(node as *mut pg_sys::CreateTableAsStmt)).query)),
            _ => None,
        }
    }
}

/// The utility statement a wrapped Query holds, or NULL.
unsafe fn query_utility(query: *mut pg_sys::Node) -> *mut pg_sys::Node {
    // SAFETY: the cast follows the tag check.
    unsafe {
        if query.is_null() || (*query).type_ != pg_sys::NodeTag::T_Query {
            return std::ptr::null_mut();
        }
        (*(query as *mut pg_sys::Query)).utilityStmt
    }
}

unsafe fn command_tag(node: *mut pg_sys::Node) -> String {
    // SAFETY: CreateCommandTag accepts any parse tree; the name is a static string.
    unsafe {
        CStr::from_ptr(pg_sys::GetCommandTagName(pg_sys::CreateCommandTag(node)))
            .to_string_lossy()
            .into_owned()
    }
}

/// Ok to run, or Err with a short reason appended to the refusal ("" for none).
type Verdict = Result<(), String>;

unsafe fn anonymous_statement(node: *mut pg_sys::Node) -> Verdict {
    use pg_sys::NodeTag::*;
    // SAFETY: casts follow the node tag.
    unsafe {
        match (*node).type_ {
            T_TransactionStmt => transaction_statement(node as *mut pg_sys::TransactionStmt),
            T_VariableSetStmt => setting_statement(node as *mut pg_sys::VariableSetStmt),
            T_VariableShowStmt | T_DiscardStmt | T_DeallocateStmt | T_ClosePortalStmt => Ok(()),
            _ => Err(String::new()),
        }
    }
}

unsafe fn token_statement(node: *mut pg_sys::Node) -> Verdict {
    use pg_sys::NodeTag::*;
    // SAFETY: casts follow the node tag.
    unsafe {
        match (*node).type_ {
            T_TransactionStmt => transaction_statement(node as *mut pg_sys::TransactionStmt),
            T_VariableSetStmt => setting_statement(node as *mut pg_sys::VariableSetStmt),
            T_VariableShowStmt | T_DiscardStmt | T_DeallocateStmt | T_ClosePortalStmt | T_ExecuteStmt | T_FetchStmt
            | T_CopyStmt | T_DoStmt | T_CallStmt | T_LockStmt | T_NotifyStmt | T_UnlistenStmt => Ok(()),
            T_TruncateStmt => truncate_statement(node as *mut pg_sys::TruncateStmt),
            T_DeclareCursorStmt => {
                let options = (*(node as *mut pg_sys::DeclareCursorStmt)).options;
                if options & pg_sys::CURSOR_OPT_HOLD as i32 != 0 {
                    Err(" (a cursor WITH HOLD would outlive it)".into())
                } else {
                    Ok(())
                }
            }
            T_ExplainStmt => match crate::nodes::explained_utility(node) {
                Some(inner) => token_statement(inner),
                None => Ok(()),
            },
            T_CreateStmt => {
                let stmt = node as *mut pg_sys::CreateStmt;
                dropped_at_commit((*stmt).relation, (*stmt).oncommit)
            }
            T_CreateTableAsStmt => {
                let into = (*(node as *mut pg_sys::CreateTableAsStmt)).into;
                match into.as_ref() {
                    Some(i) => dropped_at_commit(i.rel, i.onCommit),
                    None => Err(String::new()),
                }
            }
            _ => Err(String::new()),
        }
    }
}

/// TRUNCATE ignores row level security: under a token it would empty every tenant's rows.
unsafe fn truncate_statement(stmt: *mut pg_sys::TruncateStmt) -> Verdict {
    // SAFETY: the statement's own relation list; each relid was just resolved.
    let rls = unsafe {
        crate::nodes::truncate_targets(stmt)
            .into_iter()
            .any(|r| has_row_security(r))
    };
    if rls {
        return Err(" (the table has row level security, which TRUNCATE ignores)".into());
    }
    Ok(())
}

unsafe fn has_row_security(relid: pg_sys::Oid) -> bool {
    // SAFETY: opens the relation's cache entry briefly, without a lock, as planning would.
    unsafe {
        let rel = pg_sys::RelationIdGetRelation(relid);
        if rel.is_null() {
            return false;
        }
        let rls = (*(*rel).rd_rel).relrowsecurity;
        pg_sys::RelationClose(rel);
        rls
    }
}

/// A temporary table dropped at commit is the one object a token may create.
unsafe fn dropped_at_commit(rel: *mut pg_sys::RangeVar, on_commit: pg_sys::OnCommitAction::Type) -> Verdict {
    // SAFETY: rel is NULL or the statement's valid RangeVar.
    let temp = unsafe { rel.as_ref() }.is_some_and(|r| r.relpersistence as u8 == pg_sys::RELPERSISTENCE_TEMP);
    if temp && on_commit == pg_sys::OnCommitAction::ONCOMMIT_DROP {
        Ok(())
    } else {
        Err(" (only temporary tables with ON COMMIT DROP may be created: anything else would outlive it)".into())
    }
}

unsafe fn transaction_statement(stmt: *mut pg_sys::TransactionStmt) -> Verdict {
    use pg_sys::TransactionStmtKind::*;
    // SAFETY: reading the statement's own field.
    match unsafe { (*stmt).kind } {
        TRANS_STMT_PREPARE | TRANS_STMT_COMMIT_PREPARED | TRANS_STMT_ROLLBACK_PREPARED => {
            Err(" (a prepared transaction outlives the session)".into())
        }
        _ => Ok(()),
    }
}

/// SET LOCAL, SET TRANSACTION and RESET are always fine (they end with the transaction or
/// restore the configured value); a session-level SET only for the client settings.
unsafe fn setting_statement(stmt: *mut pg_sys::VariableSetStmt) -> Verdict {
    use pg_sys::VariableSetKind::*;
    // SAFETY: reading the statement's own fields; name is NULL or a C string.
    let (kind, local, name) = unsafe {
        let name = (*stmt)
            .name
            .as_ref()
            .map(|n| CStr::from_ptr(n).to_string_lossy().into_owned());
        ((*stmt).kind, (*stmt).is_local, name.unwrap_or_default())
    };
    match kind {
        // Role and session user: refused in every form by lockdown.rs, with its own message.
        _ if name == "role" || name == "session_authorization" => Ok(()),
        VAR_RESET | VAR_RESET_ALL | VAR_SET_DEFAULT => Ok(()),
        _ if local => Ok(()),
        VAR_SET_MULTI if name == "TRANSACTION" => Ok(()),
        _ if is_client_setting(&name) => Ok(()),
        _ => Err(format!(
            " (a session-level SET of \"{}\" would outlive it; use SET LOCAL)",
            jwt_guard_core::error::printable(&name)
        )),
    }
}

fn is_client_setting(name: &str) -> bool {
    CLIENT_SETTINGS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Pre-commit check of every setting: a locked session's transaction may not leave a
/// session-level value behind, whatever route set it. Raising here aborts the transaction,
/// which undoes the change.
pub fn check_settings_at_commit() {
    // Parallel workers restore the leader's settings (SET LOCAL ones too) in a transaction of
    // their own; what they hold is the leader's, already checked there.
    // SAFETY: reads of backend globals.
    let worker = unsafe { pg_sys::InitializingParallelWorker || pg_sys::ParallelWorkerNumber >= 0 };
    // A transaction that held a token identity is judged as one under a token, even when the
    // identity was dropped before COMMIT (jwt_guard.reset()).
    let judged = phase().is_some() || identity::held_this_transaction();
    if worker || !judged || !SETTINGS_TOUCHED.get() {
        return;
    }
    // SAFETY: walks Postgres' own GUC table, reading fields only.
    if let Some(name) = unsafe { session_level_change() } {
        refuse(format!(
            "a session-level change of \"{}\" is not allowed in this session (use SET LOCAL or set_config(..., true))",
            jwt_guard_core::error::printable(&name)
        ))
        .raise();
    }
}

thread_local! {
    /// Whether this transaction ran something that can change a setting at session level: a
    /// utility statement other than transaction control, set_config(), or a function that is
    /// not built in (its body is out of our sight). Only then is every setting walked at commit.
    static SETTINGS_TOUCHED: Cell<bool> = const { Cell::new(false) };
}

/// Forgets the transaction's flag; called when it ends.
pub fn transaction_ended() {
    SETTINGS_TOUCHED.set(false);
}

/// From the ProcessUtility hook, for every utility statement (nested ones included).
///
/// # Safety
/// `node` is the utility statement Postgres is about to run.
pub unsafe fn note_utility(node: *mut pg_sys::Node) {
    // SAFETY: reads the tag of a valid node.
    if node.is_null() || unsafe { (*node).type_ } != pg_sys::NodeTag::T_TransactionStmt {
        SETTINGS_TOUCHED.set(true);
    }
}

/// From the function-execute check, in every session and phase: a setting changed before a
/// token still counts at a commit under one.
fn note_call(func: pg_sys::Oid) {
    if SETTINGS_TOUCHED.get() {
        return;
    }
    let touches = match builtin_kind(func) {
        Some(kind) => kind == Builtin::SetsSettings,
        None => !is_extension_function(func),
    };
    if touches {
        SETTINGS_TOUCHED.set(true);
    }
}

unsafe fn session_level_change() -> Option<String> {
    // SAFETY: the GUC table and each variable's stack are valid for the life of the backend.
    unsafe { crate::pg_version::find_guc_map(|gen| session_level_set(gen)) }
}

/// The name of `gen` when this transaction changed its session value in a way a locked session
/// may not.
unsafe fn session_level_set(gen: *mut pg_sys::config_generic) -> Option<String> {
    use pg_sys::GucStackState::*;
    // SAFETY: a valid settings entry and, when not null, its stack.
    unsafe {
        let stack = (*gen).stack;
        if stack.is_null() {
            return None;
        }
        // GUC_SET: the session value changes at commit. A RESET also leaves GUC_SET, but
        // restores the configured source; only a client's SET leaves PGC_S_SESSION.
        let set = match (*stack).state {
            GUC_SET => (*gen).source == pg_sys::GucSource::PGC_S_SESSION,
            GUC_SET_LOCAL => true,
            _ => false,
        };
        // A value set back to what it was when the transaction began (drivers such as asyncpg
        // turn jit off and on again around a type lookup) leaves nothing for the next client.
        if !set || kept_value_unchanged(gen, stack) {
            return None;
        }
        let name = CStr::from_ptr((*gen).name).to_string_lossy();
        if name.eq_ignore_ascii_case("extra_float_digits") {
            if exact_float_output() {
                return None;
            }
        } else if is_client_setting(&name) || TRANSACTION_SETTINGS.iter().any(|s| s.eq_ignore_ascii_case(&name)) {
            return None;
        }
        Some(name.into_owned())
    }
}

/// Whether the session value COMMIT keeps equals the value the transaction began with: the
/// current value after a SET, the masked one after a SET then a SET LOCAL.
unsafe fn kept_value_unchanged(gen: *mut pg_sys::config_generic, stack: *mut pg_sys::guc_stack) -> bool {
    use pg_sys::config_type::*;
    // SAFETY: the variable pointers of a settings entry of its declared type; the stack's values
    // have that type too.
    unsafe {
        let (prior, kept) = (&(*stack).prior.val, &(*stack).masked.val);
        let local = (*stack).state == pg_sys::GucStackState::GUC_SET_LOCAL;
        match (*gen).vartype {
            PGC_BOOL => {
                let now = *(*(gen as *mut pg_sys::config_bool)).variable;
                (if local { kept.boolval } else { now }) == prior.boolval
            }
            PGC_INT => {
                let now = *(*(gen as *mut pg_sys::config_int)).variable;
                (if local { kept.intval } else { now }) == prior.intval
            }
            PGC_REAL => {
                let now = *(*(gen as *mut pg_sys::config_real)).variable;
                (if local { kept.realval } else { now }) == prior.realval
            }
            PGC_ENUM => {
                let now = *(*(gen as *mut pg_sys::config_enum)).variable;
                (if local { kept.enumval } else { now }) == prior.enumval
            }
            PGC_STRING => {
                let now = *(*(gen as *mut pg_sys::config_string)).variable;
                let value = if local { kept.stringval } else { now };
                match (value.as_ref(), prior.stringval.as_ref()) {
                    (Some(a), Some(b)) => CStr::from_ptr(a) == CStr::from_ptr(b),
                    (None, None) => true,
                    _ => false,
                }
            }
            _ => false,
        }
    }
}

/// extra_float_digits of 1 or more: exact output, the same as the default.
unsafe fn exact_float_output() -> bool {
    // SAFETY: reads the current value of a built-in setting; NULL only for an unknown name.
    let value = unsafe { pg_sys::GetConfigOption(c"extra_float_digits".as_ptr(), true, false) };
    // SAFETY: NULL or a NUL-terminated string owned by the GUC machinery.
    let text = unsafe { value.as_ref().map(|v| CStr::from_ptr(v).to_string_lossy().into_owned()) };
    text.and_then(|t| t.trim().parse::<i32>().ok()).is_some_and(|v| v >= 1)
}

/// A named prepared statement lives on the backend, so behind a pooler that does not keep
/// clients' statements apart one client could replace the statement another will run. A locked
/// session runs only names the pooler made (`pg_jwt_guard.statement_prefixes`).
fn statement_name_refusal(name: &CStr) -> Option<GuardError> {
    (!settings::statement_name_allowed(name.to_bytes())).then(|| {
        refuse(format!(
            "the named prepared statement \"{}\" may not run in this session: use unnamed statements, or a pooler that keeps clients' statements apart (see pg_jwt_guard.statement_prefixes)",
            jwt_guard_core::error::printable(&name.to_string_lossy())
        ))
    })
}

/// Refusal for the portal running now, when it runs a named prepared statement.
pub fn portal_refusal() -> Option<GuardError> {
    phase()?;
    if !crate::context::own_rights(identity::role()) {
        return None;
    }
    // SAFETY: ActivePortal is NULL or the portal being run; its name is NULL or a C string.
    let name = unsafe {
        let portal = pg_sys::ActivePortal;
        if portal.is_null() || (*portal).prepStmtName.is_null() {
            return None;
        }
        CStr::from_ptr((*portal).prepStmtName)
    };
    if name.is_empty() {
        return None;
    }
    statement_name_refusal(name)
}

/// The planner inlines simple SQL functions, and an inlined function never reaches the
/// executor's function-execute check. Asking for the function-manager hook is what stops the
/// inlining, so a function a session may not call before a token is asked for here.
pub fn needs_fmgr(func: pg_sys::Oid) -> bool {
    phase() == Some(Phase::Anonymous) && crate::context::own_rights(None) && anonymous_call(func).is_some()
}

pub fn object_refusal(
    access: pg_sys::ObjectAccessType::Type,
    class_id: pg_sys::Oid,
    object_id: pg_sys::Oid,
) -> Option<GuardError> {
    use pg_sys::ObjectAccessType::*;
    let interesting = matches!(access, OAT_FUNCTION_EXECUTE | OAT_POST_CREATE);
    if !interesting {
        return None;
    }
    if access == OAT_FUNCTION_EXECUTE {
        note_call(object_id);
    }
    let phase = phase()?;
    if !crate::context::own_rights(identity::role()) {
        return None;
    }
    match (access, phase) {
        (OAT_FUNCTION_EXECUTE, Phase::Anonymous) => anonymous_call(object_id),
        (OAT_FUNCTION_EXECUTE, Phase::Token) => token_call(object_id),
        (OAT_POST_CREATE, Phase::Anonymous) => Some(refuse(
            "creating objects is not allowed before jwt_guard.authenticate() in this session".into(),
        )),
        (OAT_POST_CREATE, Phase::Token) if class_id == LARGE_OBJECT_CLASS => Some(refuse(
            "creating a large object is not allowed under a token identity (it would outlive it)".into(),
        )),
        _ => None,
    }
}

/// What a built-in function is, for the rules above.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Builtin {
    Immutable,
    Harmless,
    LargeObject,
    SessionLock,
    /// pg_stat_get_xact_*, and from 18 pg_stat_get_backend_io/_wal: counters of this backend,
    /// earlier clients' included.
    BackendCounters,
    /// From 18, pg_restore_*_stats and pg_clear_*_stats: planner statistics that outlive the
    /// transaction and steer every tenant's plans.
    PlannerStats,
    /// set_config(): allowed like the harmless ones, but a session-level change is refused at
    /// commit, so it marks the transaction for that check.
    SetsSettings,
    Other,
}

/// Functions of extensions that open connections or cursors kept by the backend after the
/// transaction (dblink), whatever schema they were installed in.
const SESSION_CONNECTIONS: [&str; 3] = ["dblink_connect", "dblink_connect_u", "dblink_open"];

thread_local! {
    /// Built-in functions never change, so their kind is kept for the life of the backend.
    static BUILTINS: RefCell<FxHashMap<u32, Builtin>> = RefCell::new(FxHashMap::default());
}

fn builtin_kind(func: pg_sys::Oid) -> Option<Builtin> {
    if u32::from(func) >= pg_sys::FirstNormalObjectId {
        return None;
    }
    if let Some(kind) = BUILTINS.with_borrow(|m| m.get(&u32::from(func)).copied()) {
        return Some(kind);
    }
    // SAFETY: syscache lookups of a function the executor is about to call.
    let (namespace, volatility, name) = unsafe {
        let name = pg_sys::get_func_name(func);
        let name = name.as_ref().map(|n| CStr::from_ptr(n).to_string_lossy().into_owned());
        (
            pg_sys::get_func_namespace(func),
            pg_sys::func_volatile(func),
            name.unwrap_or_default(),
        )
    };
    let kind = if namespace != pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE) {
        Builtin::Other
    } else if name.starts_with("lo_") || name == "loread" || name == "lowrite" {
        Builtin::LargeObject
    } else if SESSION_LOCKS.contains(&name.as_str()) {
        Builtin::SessionLock
    } else if name.starts_with("pg_stat_get_xact_") || BACKEND_COUNTERS.contains(&name.as_str()) {
        Builtin::BackendCounters
    } else if PLANNER_STATS.contains(&name.as_str()) {
        Builtin::PlannerStats
    } else if name == "set_config" {
        Builtin::SetsSettings
    } else if volatility as u8 == pg_sys::PROVOLATILE_IMMUTABLE {
        Builtin::Immutable
    } else if HARMLESS_BUILTINS.contains(&name.as_str()) {
        Builtin::Harmless
    } else {
        Builtin::Other
    };
    BUILTINS.with_borrow_mut(|m| m.insert(u32::from(func), kind));
    Some(kind)
}

fn anonymous_call(func: pg_sys::Oid) -> Option<GuardError> {
    let allowed = match builtin_kind(func) {
        Some(kind) => matches!(kind, Builtin::Immutable | Builtin::Harmless | Builtin::SetsSettings),
        None => is_extension_function(func),
    };
    (!allowed).then(|| {
        refuse(format!(
            "calling {} is not allowed before jwt_guard.authenticate() in this session",
            function_name(func)
        ))
    })
}

fn token_call(func: pg_sys::Oid) -> Option<GuardError> {
    let Some(kind) = builtin_kind(func) else {
        return extension_call(func);
    };
    match kind {
        Builtin::BackendCounters => Some(refuse(format!(
            "{} is not allowed under a token identity (it shows earlier clients' activity on this backend)",
            function_name(func)
        ))),
        Builtin::PlannerStats => Some(refuse(format!(
            "{} is not allowed under a token identity (planner statistics outlive it and steer every tenant's plans)",
            function_name(func)
        ))),
        Builtin::SessionLock => Some(refuse(format!(
            "{} is not allowed under a token identity (a session-level lock outlives it; use the _xact_ variant)",
            function_name(func)
        ))),
        Builtin::LargeObject if settings::enforce_permissions() && !token_grants_large_objects() => {
            Some(GuardError::Denied(format!(
                "the token does not grant large objects ({}): list \"{LARGE_OBJECT_ACTION}\" in its permissions",
                function_name(func)
            )))
        }
        _ => None,
    }
}

/// Non-built-in functions under a token: only those known to keep connections past the
/// transaction are refused.
fn extension_call(func: pg_sys::Oid) -> Option<GuardError> {
    non_builtin(func).keeps_connection.then(|| {
        refuse(format!(
            "{} is not allowed under a token identity (the connection would outlive it)",
            function_name(func)
        ))
    })
}

/// What the rules need to know of a function that is not built in.
#[derive(Clone, Copy)]
struct NonBuiltin {
    /// One of this extension's own functions (schema jwt_guard).
    ours: bool,
    /// A function that opens a connection or cursor kept past the transaction (dblink).
    keeps_connection: bool,
}

thread_local! {
    /// Non-built-in functions looked up, valid for one functions generation (which moves on
    /// every change to pg_proc or pg_namespace): every function call under a token asks.
    static NON_BUILTINS: RefCell<(u64, FxHashMap<u32, NonBuiltin>)> = RefCell::new((0, FxHashMap::default()));
}

fn non_builtin(func: pg_sys::Oid) -> NonBuiltin {
    let generation = crate::cache::functions_generation();
    let hit =
        NON_BUILTINS.with_borrow(|(at, m)| (*at == generation).then(|| m.get(&u32::from(func)).copied()).flatten());
    if let Some(info) = hit {
        return info;
    }
    // SAFETY: syscache lookups by OID and by name; NULL / InvalidOid when gone.
    let info = unsafe {
        let namespace = pg_sys::get_func_namespace(func);
        let name = pg_sys::get_func_name(func)
            .as_ref()
            .map(|n| CStr::from_ptr(n).to_bytes().to_vec())
            .unwrap_or_default();
        NonBuiltin {
            ours: namespace != pg_sys::InvalidOid
                && namespace == pg_sys::get_namespace_oid(c"jwt_guard".as_ptr(), true),
            keeps_connection: SESSION_CONNECTIONS.iter().any(|c| c.as_bytes() == name.as_slice()),
        }
    };
    NON_BUILTINS.with_borrow_mut(|(at, m)| {
        if *at != generation || m.len() >= 1024 {
            m.clear();
            *at = generation;
        }
        m.insert(u32::from(func), info);
    });
    info
}

fn token_grants_large_objects() -> bool {
    identity::current()
        .and_then(|i| i.permissions.as_ref().map(|p| p.can(LARGE_OBJECT_ACTION)))
        .unwrap_or(false)
}

fn is_extension_function(func: pg_sys::Oid) -> bool {
    non_builtin(func).ours
}

fn function_name(func: pg_sys::Oid) -> String {
    // SAFETY: syscache lookup; NULL when the function is gone.
    let name: *mut c_char = unsafe { pg_sys::get_func_name(func) };
    // SAFETY: NULL or a palloc'd C string.
    let name = unsafe { name.as_ref().map(|n| CStr::from_ptr(n).to_string_lossy().into_owned()) };
    format!(
        "{}()",
        jwt_guard_core::error::printable(&name.unwrap_or_else(|| "?".into()))
    )
}
