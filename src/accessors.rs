//! Claim accessors for RLS policies: STABLE, PARALLEL SAFE, NULL without an identity.
//! They read the identity prepared at authenticate(); none parses JSON per call.
//!
//! None is folded into plans: a folded value would live wherever PostgreSQL caches a planned
//! expression (prepared statements, domain constraints in the type cache), beyond the identity
//! it was read under. As STABLE functions they still drive index scans and run-time partition
//! pruning, and a cached plan stays valid across identities.

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
