//! The `pg_jwt_guard.*` settings. All are superuser-only (or reload-only), so no client can
//! loosen them; the role allow-list is validated when it is set.

use crate::errors::GuardError;
use jwt_guard_core::policy::split_list;
use jwt_guard_core::{roles, Policy};
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::ffi::{c_char, c_void, CStr, CString};

pub static ISSUERS: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static AUDIENCE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static LEEWAY: GucSetting<i32> = GucSetting::<i32>::new(30);
pub static MAX_LIFETIME: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static MAX_TOKEN_BYTES: GucSetting<i32> = GucSetting::<i32>::new(8192);
pub static ROLE_CLAIM: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"role"));
pub static ALLOWED_ROLES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static DEFAULT_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static TENANT_CLAIM: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"tenant_id"));
/// What `authenticate()` writes to the server log.
#[derive(pgrx::PostgresGucEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum AuditLog {
    #[name = c"off"]
    Off,
    /// One line whenever a token is verified (its first use in a backend, or after the cache
    /// let it go): the decision itself, without a line per reuse.
    #[name = c"verified"]
    Verified,
    /// One line for every identity switch.
    #[name = c"all"]
    All,
}

pub static AUDIT_LOG: GucSetting<AuditLog> = GucSetting::<AuditLog>::new(AuditLog::Verified);
pub static PERMISSIONS_CLAIM: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"permissions"));
pub static ENFORCE_PERMISSIONS: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static AUDIT_STATEMENTS: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static REQUEST_CLAIMS: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static TOKEN_CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1000);
pub static LOGIN_ROLES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static JWKS_REFRESH: GucSetting<i32> = GucSetting::<i32>::new(600);
pub static JWKS_MIN_INTERVAL: GucSetting<i32> = GucSetting::<i32>::new(30);
pub static JWKS_RETIRE_GRACE: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static JWKS_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(10);
pub static JWKS_MAX_BYTES: GucSetting<i32> = GucSetting::<i32>::new(262_144);
pub static JWKS_CA_FILE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static STATEMENT_PREFIXES: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"PGBOUNCER_"));

fn text(setting: &GucSetting<Option<CString>>) -> String {
    setting
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Everything verification reads from the settings, built once per change of any of them.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub policy: Policy,
    pub allowed: Vec<String>,
    pub default_role: Option<String>,
}

thread_local! {
    static SNAPSHOT: std::cell::RefCell<Option<(u64, std::rc::Rc<Snapshot>)>> = const { std::cell::RefCell::new(None) };
    /// Moves whenever a setting the snapshot reads takes a new value: Postgres calls the assign
    /// hook on every change (SET, RESET, reload, role and database settings, the rollback of a
    /// SET LOCAL), so comparing this number replaces comparing every value on each use.
    static SNAPSHOT_GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

unsafe extern "C-unwind" fn snapshot_text_changed(_newval: *const c_char, _extra: *mut c_void) {
    SNAPSHOT_GENERATION.set(SNAPSHOT_GENERATION.get().wrapping_add(1));
}

unsafe extern "C-unwind" fn snapshot_int_changed(_newval: i32, _extra: *mut c_void) {
    SNAPSHOT_GENERATION.set(SNAPSHOT_GENERATION.get().wrapping_add(1));
}

/// The current bytes of a string setting, without copying (empty for NULL).
pub(crate) fn raw(setting: &GucSetting<Option<CString>>) -> &[u8] {
    // SAFETY: the value pointer Postgres keeps for the setting; it stays valid until the
    // setting changes, which cannot happen while this borrow is used.
    unsafe {
        let value = *setting.as_ptr();
        if value.is_null() {
            b""
        } else {
            CStr::from_ptr(value).to_bytes()
        }
    }
}

/// The settings verification uses, shared until one of them changes.
pub fn snapshot() -> Result<std::rc::Rc<Snapshot>, GuardError> {
    let generation = SNAPSHOT_GENERATION.get();
    if let Some(hit) = SNAPSHOT.with_borrow(|s| s.as_ref().filter(|(g, _)| *g == generation).map(|(_, v)| v.clone())) {
        return Ok(hit);
    }
    let fresh = std::rc::Rc::new(Snapshot {
        policy: policy(),
        allowed: allowed_roles()?,
        default_role: default_role(),
    });
    SNAPSHOT.set(Some((generation, fresh.clone())));
    Ok(fresh)
}

/// The verification policy as configured now.
pub fn policy() -> Policy {
    Policy {
        issuers: split_list(&text(&ISSUERS)),
        audience: split_list(&text(&AUDIENCE)),
        leeway: LEEWAY.get().max(0) as u64,
        max_lifetime: MAX_LIFETIME.get().max(1) as u64,
        max_token_bytes: MAX_TOKEN_BYTES.get().max(1) as usize,
        role_claim: text(&ROLE_CLAIM),
        tenant_claim: text(&TENANT_CLAIM),
        permissions_claim: text(&PERMISSIONS_CLAIM),
        from_profile: Default::default(),
    }
}

pub fn allowed_roles() -> Result<Vec<String>, GuardError> {
    roles::parse_allowed(&text(&ALLOWED_ROLES))
        .map_err(|e| GuardError::Setting(format!("pg_jwt_guard.allowed_roles: {e}")))
}

pub fn default_role() -> Option<String> {
    Some(text(&DEFAULT_ROLE).trim().to_owned()).filter(|r| !r.is_empty())
}

/// Roles whose sessions are locked down even before a token is presented.
pub fn login_roles() -> Vec<String> {
    split_list(&text(&LOGIN_ROLES))
}

thread_local! {
    static LOGIN_ROLES_GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// Moves whenever `pg_jwt_guard.login_roles` takes a new value (set, reload, rollback).
pub fn login_roles_generation() -> u64 {
    LOGIN_ROLES_GENERATION.get()
}

unsafe extern "C-unwind" fn assign_login_roles(_newval: *const c_char, _extra: *mut c_void) {
    LOGIN_ROLES_GENERATION.set(LOGIN_ROLES_GENERATION.get().wrapping_add(1));
    // Role verdicts refuse login roles: cached ones are stale.
    crate::cache::bump();
}

thread_local! {
    /// `statement_prefixes` as last parsed: the setting's bytes, then its items.
    static PREFIXES: std::cell::RefCell<(Vec<u8>, Vec<String>)> = const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// True when a prepared statement's name starts with one of `statement_prefixes` (`*`: any).
/// It runs for every execution of a named statement, so the list is parsed again only when
/// the setting's value differs from the one last parsed.
pub fn statement_name_allowed(name: &[u8]) -> bool {
    let value = raw(&STATEMENT_PREFIXES);
    PREFIXES.with_borrow_mut(|(parsed_from, items)| {
        if parsed_from.as_slice() != value {
            *items = jwt_guard_core::policy::list_items(&String::from_utf8_lossy(value))
                .map(str::to_owned)
                .collect();
            *parsed_from = value.to_vec();
        }
        items.iter().any(|p| p == "*" || name.starts_with(p.as_bytes()))
    })
}

pub fn token_cache_size() -> usize {
    TOKEN_CACHE_SIZE.get().max(0) as usize
}

pub fn enforce_permissions() -> bool {
    ENFORCE_PERMISSIONS.get()
}

pub fn audit_log() -> AuditLog {
    AUDIT_LOG.get()
}

/// Refuses an allow-list that names a reserved or malformed role.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_role_list(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: the pointer Postgres passes to a check hook.
    let value = unsafe { check_value(newval) };
    accept_or_explain(roles::parse_allowed(&value).map(|_| ()))
}

/// Refuses a default role that is not exactly one valid, unreserved name.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_one_role(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: the pointer Postgres passes to a check hook.
    let value = unsafe { check_value(newval) };
    let value = value.trim();
    accept_or_explain(if value.is_empty() {
        Ok(())
    } else {
        roles::check_name(value)
    })
}

/// Refuses an empty claim name and a JSON Pointer with an escape RFC 6901 does not have.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_claim_setting(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    // SAFETY: the pointer Postgres passes to a check hook.
    let value = unsafe { check_value(newval) };
    match jwt_guard_core::policy::check_claim_name(&value) {
        Ok(()) => true,
        Err(e) => {
            set_check_detail(&e);
            false
        }
    }
}

/// The proposed value of a string setting (NULL reads as empty).
unsafe fn check_value(newval: *mut *mut c_char) -> String {
    // SAFETY: Postgres passes a valid pointer to a NUL-terminated string or NULL.
    unsafe {
        (*newval)
            .as_ref()
            .map(|p| CStr::from_ptr(p).to_string_lossy().into_owned())
    }
    .unwrap_or_default()
}

fn accept_or_explain(verdict: Result<(), roles::RoleRefusal>) -> bool {
    match verdict {
        Ok(()) => true,
        Err(e) => {
            set_check_detail(&e.to_string());
            false
        }
    }
}

/// Puts a hint into the "invalid value for parameter" error Postgres raises.
pub fn set_check_hint(hint: &str) {
    let hint = CString::new(hint.replace('\0', "")).unwrap_or_default();
    // SAFETY: as for set_check_detail.
    unsafe {
        pg_sys::GUC_check_errhint_string = pg_sys::pstrdup(hint.as_ptr());
    }
}

/// Puts a reason into the "invalid value for parameter" error Postgres raises.
pub fn set_check_detail(detail: &str) {
    let detail = CString::new(detail.replace('\0', "")).unwrap_or_default();
    // SAFETY: GUC_check_errdetail_string is read by the GUC machinery right after the
    // check hook returns; pstrdup copies into the current memory context as it expects.
    unsafe {
        pg_sys::GUC_check_errdetail_string = pg_sys::pstrdup(detail.as_ptr());
    }
}

pub fn define() {
    let flags = GucFlags::default();
    snapshot_text(
        c"pg_jwt_guard.issuers",
        c"Accepted iss values, comma-separated, compared exactly.",
        c"Empty: only keys registered with their own issuer can verify tokens.",
        &ISSUERS,
    );
    snapshot_text(
        c"pg_jwt_guard.audience",
        c"Accepted aud values, comma-separated. When set, tokens must carry a matching aud.",
        c"Empty: tokens that carry aud are refused.",
        &AUDIENCE,
    );
    snapshot_int(
        c"pg_jwt_guard.leeway",
        c"Clock skew allowed on exp, nbf and iat.",
        c"",
        &LEEWAY,
        (0, 300),
        GucFlags::UNIT_S,
    );
    snapshot_int(
        c"pg_jwt_guard.max_lifetime",
        c"Longest accepted token lifetime (exp - iat and exp - now).",
        c"Tokens without exp are always refused.",
        &MAX_LIFETIME,
        (1, 30 * 86_400),
        GucFlags::UNIT_S,
    );
    snapshot_int(
        c"pg_jwt_guard.max_token_bytes",
        c"Largest token accepted, checked before any parsing.",
        c"",
        &MAX_TOKEN_BYTES,
        (256, 1_048_576),
        GucFlags::UNIT_BYTE,
    );
    snapshot_text_checked(
        c"pg_jwt_guard.role_claim",
        c"Claim that names the database role; a name starting with / is a JSON Pointer.",
        c"",
        &ROLE_CLAIM,
        Some(check_claim_setting),
    );
    snapshot_text_checked(
        c"pg_jwt_guard.tenant_claim",
        c"Claim returned by jwt_guard.tenant(); a name starting with / is a JSON Pointer.",
        c"",
        &TENANT_CLAIM,
        Some(check_claim_setting),
    );
    // SAFETY: the check hook is a pg_guard'ed extern fn with the signature Postgres expects;
    // the assign hook only moves a counter.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"pg_jwt_guard.allowed_roles",
            c"Roles a token may assume, comma-separated, matched exactly.",
            c"Roles with dangerous attributes or memberships are refused even when listed.",
            &ALLOWED_ROLES,
            GucContext::Suset,
            flags,
            Some(check_role_list),
            Some(snapshot_text_changed),
            None,
        );
        GucRegistry::define_string_guc_with_hooks(
            c"pg_jwt_guard.default_role",
            c"Role for tokens without a role claim; empty refuses such tokens.",
            c"It must also be listed in pg_jwt_guard.allowed_roles.",
            &DEFAULT_ROLE,
            GucContext::Suset,
            flags,
            Some(check_one_role),
            Some(snapshot_text_changed),
            None,
        );
    }
    // SAFETY: as above.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            c"pg_jwt_guard.login_roles",
            c"Login roles whose sessions may never change role or session user from SQL.",
            c"Such sessions get a role only from jwt_guard.authenticate().",
            &LOGIN_ROLES,
            GucContext::Suset,
            flags,
            Some(check_role_list),
            Some(assign_login_roles),
            None,
        );
    }
    GucRegistry::define_string_guc(
        c"pg_jwt_guard.statement_prefixes",
        c"Name prefixes of named prepared statements that locked sessions may run; * allows any name.",
        c"A pooler that does not keep clients' statements apart lets one client run another's: the default allows only pgbouncer's own names.",
        &STATEMENT_PREFIXES,
        GucContext::Suset,
        flags,
    );
    snapshot_text_checked(
        c"pg_jwt_guard.permissions_claim",
        c"Claim listing the table commands and named actions a token grants.",
        c"A name starting with / is a JSON Pointer.",
        &PERMISSIONS_CLAIM,
        Some(check_claim_setting),
    );
    GucRegistry::define_bool_guc(
        c"pg_jwt_guard.enforce_permissions",
        c"Check every statement of a token identity against its permissions claim.",
        c"Off: GRANTs and row level security alone decide.",
        &ENFORCE_PERMISSIONS,
        GucContext::Suset,
        flags,
    );
    // A start-up setting can only be defined while the server starts (preloading).
    if crate::preload::is_preloading() {
        GucRegistry::define_bool_guc(
            c"pg_jwt_guard.request_claims",
            c"Own request.jwt.claims: it carries the verified claims and nothing a client can set.",
            c"For policies written for PostgREST. Needs a restart; clients can then no longer set request.jwt.claims.",
            &REQUEST_CLAIMS,
            GucContext::Postmaster,
            flags,
        );
    }
    GucRegistry::define_bool_guc(
        c"pg_jwt_guard.audit_statements",
        c"Log every statement run under a token identity as one JSON line, with the relations it touches.",
        c"The identity's sub, role, tenant and jti are on each line, as on its authentication line.",
        &AUDIT_STATEMENTS,
        GucContext::Suset,
        flags,
    );
    GucRegistry::define_int_guc(
        c"pg_jwt_guard.token_cache_size",
        c"Verified tokens each backend keeps (by SHA-256), re-checked for time and settings on every use.",
        c"0 turns the cache off.",
        &TOKEN_CACHE_SIZE,
        0,
        100_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"pg_jwt_guard.audit_log",
        c"Log identity switches (role, sub, kid, jti; never the token) at LOG level: off, verified or all.",
        c"verified: when a token is verified rather than taken from the token cache; all: every switch.",
        &AUDIT_LOG,
        GucContext::Suset,
        flags,
    );
    define_jwks();
}

/// A superuser-only text setting that verification reads (part of the snapshot).
fn snapshot_text(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
) {
    snapshot_text_checked(name, short, long, setting, None);
}

/// `snapshot_text` with a check hook for the values it accepts.
fn snapshot_text_checked(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<Option<CString>>,
    check: pg_sys::GucStringCheckHook,
) {
    // SAFETY: the check hook is a pg_guard'ed extern fn with the signature Postgres expects;
    // the assign hook only moves a counter.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            name,
            short,
            long,
            setting,
            GucContext::Suset,
            GucFlags::default(),
            check,
            Some(snapshot_text_changed),
            None,
        );
    }
}

/// A superuser-only integer setting that verification reads (part of the snapshot).
fn snapshot_int(
    name: &'static CStr,
    short: &'static CStr,
    long: &'static CStr,
    setting: &'static GucSetting<i32>,
    (min, max): (i32, i32),
    unit: GucFlags,
) {
    // SAFETY: the assign hook only moves a counter; it cannot raise.
    unsafe {
        GucRegistry::define_int_guc_with_hooks(
            name,
            short,
            long,
            setting,
            min,
            max,
            GucContext::Suset,
            unit,
            None,
            Some(snapshot_int_changed),
            None,
        );
    }
}

/// The remote JWKS settings: read by the worker at each reload.
fn define_jwks() {
    let seconds = |name, short, long, setting, min, max| {
        GucRegistry::define_int_guc(
            name,
            short,
            long,
            setting,
            min,
            max,
            GucContext::Sighup,
            GucFlags::UNIT_S,
        )
    };
    seconds(
        c"pg_jwt_guard.jwks_refresh",
        c"How often each issuer's jwks_uri is fetched.",
        c"",
        &JWKS_REFRESH,
        1,
        86_400,
    );
    seconds(
        c"pg_jwt_guard.jwks_min_interval",
        c"Least time between two fetches of one jwks_uri prompted by tokens with unknown kids.",
        c"",
        &JWKS_MIN_INTERVAL,
        1,
        3_600,
    );
    seconds(
        c"pg_jwt_guard.jwks_retire_grace",
        c"How long a key may be missing from its issuer's fetched document before it is retired.",
        c"",
        &JWKS_RETIRE_GRACE,
        0,
        30 * 86_400,
    );
    seconds(
        c"pg_jwt_guard.jwks_timeout",
        c"Longest a jwks_uri fetch may take, connection to last byte.",
        c"",
        &JWKS_TIMEOUT,
        1,
        60,
    );
    GucRegistry::define_int_guc(
        c"pg_jwt_guard.jwks_max_bytes",
        c"Largest jwks_uri document accepted; a larger one is a failed fetch.",
        c"",
        &JWKS_MAX_BYTES,
        1024,
        16 * 1024 * 1024,
        GucContext::Sighup,
        GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_string_guc(
        c"pg_jwt_guard.jwks_ca_file",
        c"PEM file of the certificate authorities trusted for jwks_uri; empty trusts the system's roots.",
        c"",
        &JWKS_CA_FILE,
        GucContext::Sighup,
        GucFlags::default(),
    );
}
