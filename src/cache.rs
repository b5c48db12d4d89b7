//! Per-backend caches that keep verification off the catalogs and off the crypto on the hot
//! path, and the invalidation that keeps them honest.
//!
//! One generation counter covers everything cached: it moves on every relcache invalidation
//! (a change to `jwt_guard.key_store` sends one through its trigger; DDL, ownership and RLS
//! changes send them too) and on every change to roles, memberships, databases, functions,
//! schemas or types (ownership of any of them matters to the role check). A cached
//! entry is used only while its generation is current, so `retire_key` and any role change
//! take effect in every session from its next transaction on, and in the same session at once.
//!
//! The token cache is keyed by the SHA-256 of the token, holds at most
//! `pg_jwt_guard.token_cache_size` entries (least recently used out first), and re-checks the
//! time claims and the settings on every hit.

use crate::prepared_jsonb::PreparedJsonb;
use crate::settings;
use crate::settings::Snapshot;
use jwt_guard_core::Identity;
use lru::LruCache;
use pgrx::pg_sys;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::rc::Rc;

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    static TOKENS: RefCell<Option<Tokens>> = const { RefCell::new(None) };
}

/// Keyed by SHA-256 digests: uniform already, so a fast hash loses nothing to a keyed one,
/// and only verified tokens are stored, so no client fills the table with keys it chose.
type Tokens = LruCache<[u8; 32], Rc<Verified>, rustc_hash::FxBuildHasher>;

/// A token that passed every check, with what is needed to apply it again.
pub struct Verified {
    pub identity: Rc<Identity>,
    /// The claims as jsonb, returned by authenticate() and verify().
    pub claims: PreparedJsonb,
    /// The carrier setting's value for this identity (role oid, then the identity's JSON),
    /// built once so a cache hit only copies it into the setting.
    pub carrier: std::ffi::CString,
    /// The claims' JSON, kept when `request.jwt.claims` is the library's to write.
    pub request_claims: Option<String>,
    pub role: Rc<str>,
    pub role_oid: pg_sys::Oid,
    /// Whether its issuer has replay protection (valid for the entry's generation, as the
    /// profiles it was read from).
    pub replay_protected: bool,
    generation: u64,
    settings: Rc<Snapshot>,
    /// The policy it was verified under (the global one, or its issuer's profile applied).
    policy: jwt_guard_core::Policy,
    /// Whether an authenticate() has logged it yet: verify() fills the cache without a line,
    /// so the first authenticate() of an entry is logged as a verification.
    pub audited: std::cell::Cell<bool>,
    /// The version of the revocation lists it last passed (see `revocation::check_cached`).
    pub revocations_passed: std::cell::Cell<u64>,
}

/// Registers the invalidation callbacks; called once while preloading.
pub fn init() {
    use pg_sys::SysCacheIdentifier::*;
    // SAFETY: registration of process-local callbacks at start-up; backends inherit them.
    unsafe {
        pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache), pg_sys::Datum::from(0));
        // Roles, memberships and databases; functions, schemas and types for their owners.
        for cache in [
            AUTHOID,
            AUTHNAME,
            AUTHMEMMEMROLE,
            AUTHMEMROLEMEM,
            DATABASEOID,
            PROCOID,
            NAMESPACEOID,
            TYPEOID,
        ] {
            pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(on_syscache), pg_sys::Datum::from(0));
        }
    }
}

// Callbacks run while invalidations are processed: they only bump a counter.
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    crate::revocation::relation_changed(relid);
    bump();
}

unsafe extern "C-unwind" fn on_syscache(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    bump();
}

fn bump() {
    GENERATION.set(GENERATION.get().wrapping_add(1));
}

pub fn generation() -> u64 {
    GENERATION.get()
}

/// A small map whose entries are valid for one generation.
pub struct GenerationMap<V> {
    generation: u64,
    entries: HashMap<String, V>,
}

impl<V: Clone> GenerationMap<V> {
    pub const CAP: usize = 1024;

    pub fn new() -> Self {
        GenerationMap {
            generation: 0,
            entries: HashMap::new(),
        }
    }

    pub fn get(&mut self, key: &str) -> Option<V> {
        if self.generation != generation() {
            self.entries.clear();
            self.generation = generation();
        }
        self.entries.get(key).cloned()
    }

    pub fn put(&mut self, key: String, value: V, at: u64) {
        if at != generation() {
            return; // the catalogs moved while we computed it
        }
        if self.entries.len() >= Self::CAP {
            self.entries.clear();
        }
        self.entries.insert(key, value);
    }
}

/// The cache key of a token and the role asked for (a token may serve several roles).
pub fn token_key(token: &str, requested_role: Option<&str>) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(token.as_bytes());
    if let Some(role) = requested_role {
        // A token never contains NUL, so the separator cannot be forged.
        ctx.update(b"\0");
        ctx.update(role.as_bytes());
    }
    let digest = ctx.finish();
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

fn with_tokens<R>(f: impl FnOnce(&mut Tokens) -> R) -> Option<R> {
    let size = settings::token_cache_size();
    TOKENS.with_borrow_mut(|slot| {
        let capacity = NonZeroUsize::new(size)?;
        if slot.as_ref().is_none_or(|c| c.cap() != capacity) {
            *slot = Some(LruCache::with_hasher(capacity, rustc_hash::FxBuildHasher));
        }
        slot.as_mut().map(f)
    })
}

/// The cached verification of `key`, if it is still good under the current settings and clock.
pub fn lookup(key: &[u8; 32], settings: &Rc<Snapshot>, now: i64) -> Option<Rc<Verified>> {
    let hit = with_tokens(|c| c.get(key).cloned()).flatten()?;
    let same_settings = Rc::ptr_eq(&hit.settings, settings) || *hit.settings == **settings;
    let current = hit.generation == generation() && same_settings && hit.identity.still_valid(&hit.policy, now).is_ok();
    if !current {
        with_tokens(|c| c.pop(key));
        return None;
    }
    Some(hit)
}

#[allow(clippy::too_many_arguments)]
pub fn store(
    key: [u8; 32],
    identity: Rc<Identity>,
    claims: PreparedJsonb,
    carrier: std::ffi::CString,
    request_claims: Option<String>,
    role: Rc<str>,
    role_oid: pg_sys::Oid,
    replay_protected: bool,
    at: u64,
    settings: Rc<Snapshot>,
    policy: jwt_guard_core::Policy,
) -> Rc<Verified> {
    let verified = Rc::new(Verified {
        identity,
        claims,
        carrier,
        request_claims,
        role,
        role_oid,
        replay_protected,
        generation: at,
        settings,
        policy,
        audited: std::cell::Cell::new(false),
        revocations_passed: std::cell::Cell::new(crate::revocation::version()),
    });
    if at == generation() {
        with_tokens(|c| c.put(key, verified.clone()));
    }
    verified
}
