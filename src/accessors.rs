//! Claim accessors for RLS policies: STABLE, PARALLEL SAFE, NULL without an identity.
//! They read the identity prepared at authenticate(); none parses JSON per call.

use crate::errors::OrRaise;
use crate::{identity, preload};
use jwt_guard_core::Identity;
use pgrx::prelude::*;
use pgrx::{JsonB, Uuid};
use std::rc::Rc;

fn current() -> Option<Rc<Identity>> {
    preload::require().or_raise();
    identity::current()
}

/// All verified claims.
#[pg_extern(stable, parallel_safe)]
fn claims() -> Option<JsonB> {
    current().map(|i| JsonB(serde_json::Value::Object(i.claims.clone())))
}

/// One claim as text; a name starting with `/` is a JSON Pointer into nested claims.
#[pg_extern(stable, parallel_safe)]
fn claim(name: &str) -> Option<String> {
    current()?.claim_text(name)
}

/// A claim as uuid; NULL when missing or not a uuid.
#[pg_extern(stable, parallel_safe)]
fn claim_uuid(name: &str) -> Option<Uuid> {
    let text = current()?.claim(name)?.as_str()?.to_owned();
    parse_uuid(&text).map(Uuid::from_bytes)
}

fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let canonical = text.len() == 36 && [8, 13, 18, 23].iter().all(|&i| text.as_bytes()[i] == b'-');
    if !canonical || hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A claim as bigint: a JSON integer or a string holding one; NULL otherwise.
#[pg_extern(stable, parallel_safe)]
fn claim_bigint(name: &str) -> Option<i64> {
    match current()?.claim(name)? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse::<i64>().ok().filter(|v| v.to_string() == *s),
        _ => None,
    }
}

/// The `sub` claim.
#[pg_extern(stable, parallel_safe)]
fn sub() -> Option<String> {
    current()?.sub.clone()
}

/// The claim named by pg_jwt_guard.tenant_claim, as text.
#[pg_extern(stable, parallel_safe)]
fn tenant() -> Option<String> {
    current()?.tenant.clone()
}

/// Whether `scope` (space-separated) or `scp` (array) lists the scope, exactly.
#[pg_extern(stable, parallel_safe)]
fn has_scope(scope: &str) -> Option<bool> {
    Some(current()?.has_scope(scope))
}

/// Whether this transaction has a verified identity.
#[pg_extern(stable, parallel_safe)]
fn is_authenticated() -> bool {
    current().is_some()
}

/// Planner support for `tenant()` and `sub()`: the call is replaced by the current value as a
/// constant, so a policy such as `tenant_id = jwt_guard.tenant()` costs what a literal costs and
/// can drive index scans and partition pruning. This is safe because every change of identity
/// (authenticate, reset, COMMIT, ROLLBACK, ROLLBACK TO SAVEPOINT) invalidates every cached plan of
/// the backend (see `identity.rs`), so no plan outlives the identity it was made under.
#[pg_extern(immutable, parallel_safe)]
fn accessor_support(request: pgrx::datum::Internal) -> pgrx::datum::Internal {
    let simplified = request.unwrap().and_then(|datum| {
        // SAFETY: Postgres passes a planner support request node; we act only on Simplify.
        unsafe { simplify(datum.cast_mut_ptr::<pg_sys::Node>()) }
    });
    // "No simplification" is a NULL pointer, not an SQL NULL (fmgr refuses those here).
    let pointer = simplified.map_or(std::ptr::null_mut(), |c| c);
    pgrx::datum::Internal::from(Some(pg_sys::Datum::from(pointer)))
}

unsafe fn simplify(node: *mut pg_sys::Node) -> Option<*mut pg_sys::Const> {
    if preload::require().is_err() {
        return None; // let the call raise its own error at run time
    }
    // SAFETY: casts follow the tag check; the function name comes from the catalog.
    unsafe {
        if node.is_null() || (*node).type_ != pg_sys::NodeTag::T_SupportRequestSimplify {
            return None;
        }
        let fcall = (*(node as *mut pg_sys::SupportRequestSimplify)).fcall;
        let name = std::ffi::CStr::from_ptr(pg_sys::get_func_name((*fcall).funcid).as_ref()?);
        let identity = identity::current();
        let value = match name.to_bytes() {
            b"tenant" => identity.and_then(|i| i.tenant.clone()),
            b"sub" => identity.and_then(|i| i.sub.clone()),
            _ => return None,
        };
        Some(text_const(value.as_deref()))
    }
}

unsafe fn text_const(value: Option<&str>) -> *mut pg_sys::Const {
    // SAFETY: builds a planner node in the current (planner) memory context.
    unsafe {
        let datum = match value {
            Some(v) => pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(v.as_ptr().cast(), v.len() as i32)),
            None => pg_sys::Datum::from(0),
        };
        pg_sys::makeConst(
            pg_sys::TEXTOID,
            -1,
            pg_sys::DEFAULT_COLLATION_OID,
            -1,
            datum,
            value.is_none(),
            false,
        )
    }
}

pgrx::extension_sql!(
    r#"
ALTER FUNCTION jwt_guard.tenant() SUPPORT jwt_guard.accessor_support;
ALTER FUNCTION jwt_guard.sub() SUPPORT jwt_guard.accessor_support;
"#,
    name = "accessor_support",
    requires = [tenant, sub, accessor_support]
);
