//! Per-backend caches that keep verification off the catalogs and off the crypto on the hot
//! path, and the invalidation that keeps them honest.
//!
//! One generation counter covers everything cached (verified tokens, keys, issuer profiles,
//! role verdicts). It moves:
//! - at once, on every change to roles or memberships, to the `pg_jwt_guard.login_roles`
//!   setting, and of the session user;
//! - on a relcache invalidation of one of this extension's tables (a change to the key store,
//!   the issuer profiles or the revocation lists sends one through their triggers), or of every
//!   relation;
//! - on any other relcache invalidation, or a change to the catalogs of objects a role can own
//!   (databases, functions, schemas, types, operators, collations, languages, …), only when
//!   a role verdict this backend holds could depend on it: a role a cached verdict accepted (or
//!   a role it belongs to) now owns an object, or holds TRIGGER or MAINTAIN on a changed
//!   relation. A cached refusal is re-examined on any such change.
//!
//! The last group is examined lazily, at the next read of the generation, with an index scan
//! per role and a syscache lookup per relation: a neighbour's temporary tables, autovacuum's
//! ANALYZE or unrelated DDL no longer make every backend verify its tokens and check its roles
//! again. If that examination fails, the generation moves (fail closed). So `retire_key` and any role change take effect in every
//! session from its next transaction on, and in the same session at once.
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
use rustc_hash::FxHashSet;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::rc::Rc;

thread_local! {
    static GENERATION: Cell<u64> = const { Cell::new(1) };
    /// Moves at once on every change to functions and schemas (the isolation rules' table of
    /// non-built-in functions).
    static FUNCTIONS_GENERATION: Cell<u64> = const { Cell::new(1) };
    static TOKENS: RefCell<Option<Tokens>> = const { RefCell::new(None) };
    /// Invalidations not yet examined, and a cheap flag for "there are some".
    static PENDING: RefCell<Pending> = RefCell::new(Pending::default());
    static DIRTY: Cell<bool> = const { Cell::new(false) };
    static SETTLING: Cell<bool> = const { Cell::new(false) };
    /// What the role verdicts of the current generation rest on.
    static WATCHED: RefCell<Watched> = RefCell::new(Watched::default());
    /// Relations seen in this extension's schema (so that dropping one is recognised).
    static OURS: RefCell<FxHashSet<u32>> = RefCell::new(FxHashSet::default());
}

/// Relations past this many pending invalidations count as "everything changed" (an idle
/// backend beside heavy temporary-table churn collects a few per table).
const MAX_PENDING: usize = 256;

#[derive(Default)]
struct Pending {
    relids: Vec<u32>,
    all: bool,
    owners: bool,
}

/// For one generation: the roles accepted verdicts rest on (each accepted role and every role
/// it belongs to), and whether a refusal for a dangerous power is cached.
#[derive(Default)]
struct Watched {
    generation: u64,
    roles: FxHashSet<u32>,
    refusals: bool,
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
        // Roles and memberships: every verdict may depend on them.
        for cache in [AUTHOID, AUTHNAME, AUTHMEMMEMROLE, AUTHMEMROLEMEM] {
            pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(on_role_syscache), pg_sys::Datum::from(0));
        }
        // Catalogs of objects a role can own: examined for the owners of accepted roles. A
        // database's owner is in pg_shdepend too; autovacuum updates pg_database often.
        for cache in [
            DATABASEOID,
            PROCOID,
            NAMESPACEOID,
            TYPEOID,
            TABLESPACEOID,
            OPEROID,
            COLLOID,
            CLAOID,
            OPFAMILYOID,
            CONVOID,
            TSCONFIGOID,
            TSDICTOID,
            FOREIGNDATAWRAPPEROID,
            FOREIGNSERVEROID,
            STATEXTOID,
            EVENTTRIGGEROID,
            LANGOID,
            PUBLICATIONOID,
        ] {
            pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(on_owned_syscache), pg_sys::Datum::from(0));
        }
    }
}

// Callbacks run while invalidations are processed: they only note what changed.
unsafe extern "C-unwind" fn on_relcache(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    crate::revocation::relation_changed(relid);
    let relid = relid.to_u32();
    PENDING.with_borrow_mut(|p| {
        if relid == 0 || p.relids.len() >= MAX_PENDING {
            p.all = true;
        } else if !p.relids.contains(&relid) {
            p.relids.push(relid);
        }
    });
    DIRTY.set(true);
}

unsafe extern "C-unwind" fn on_role_syscache(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    bump();
}

unsafe extern "C-unwind" fn on_owned_syscache(_arg: pg_sys::Datum, cache: i32, _hash: u32) {
    use pg_sys::SysCacheIdentifier::{NAMESPACEOID, PROCOID};
    // Only a function's name or schema matters to that table, not a new type or database row.
    if cache == PROCOID as i32 || cache == NAMESPACEOID as i32 {
        FUNCTIONS_GENERATION.set(FUNCTIONS_GENERATION.get().wrapping_add(1));
    }
    PENDING.with_borrow_mut(|p| p.owners = true);
    DIRTY.set(true);
}

/// Everything cached is stale from now on.
pub fn bump() {
    GENERATION.set(GENERATION.get().wrapping_add(1));
}

/// The current generation, after examining the invalidations that arrived since the last read.
pub fn generation() -> u64 {
    settle();
    GENERATION.get()
}

/// At the end of a transaction: an examination that an error cut short without unwinding
/// (which would leave every later one skipped) counts as failed.
pub fn transaction_ended() {
    if SETTLING.replace(false) {
        bump();
    }
}

/// The generation of the isolation rules' function table.
pub fn functions_generation() -> u64 {
    FUNCTIONS_GENERATION.get()
}

/// A role verdict computed at `at`: accepted, resting on `roles` (the role and every role it
/// belongs to), or refused for a power it holds.
pub fn watch(at: u64, verdict: Result<&[u32], ()>) {
    if at != GENERATION.get() {
        return;
    }
    WATCHED.with_borrow_mut(|w| {
        if w.generation != at {
            *w = Watched {
                generation: at,
                ..Watched::default()
            };
        }
        match verdict {
            Ok(roles) => w.roles.extend(roles.iter().copied()),
            Err(()) => w.refusals = true,
        }
    });
}

/// Moves the generation if a pending invalidation may change something cached. Runs inside a
/// transaction (every reader of the generation is one); callbacks only note what changed.
fn settle() {
    if !DIRTY.get() || SETTLING.get() {
        return;
    }
    SETTLING.set(true);
    // Fail closed: if the examination is cut short (an error), everything is stale.
    let unfinished = Unfinished;
    DIRTY.set(false);
    let pending = PENDING.take();
    if examine(pending) {
        bump();
    }
    std::mem::forget(unfinished);
    SETTLING.set(false);
}

struct Unfinished;

impl Drop for Unfinished {
    fn drop(&mut self) {
        bump();
        SETTLING.set(false);
    }
}

/// True when what changed may change a cached answer.
fn examine(pending: Pending) -> bool {
    if pending.all {
        return true;
    }
    // SAFETY: syscache lookup by name; InvalidOid when the schema does not exist.
    let ours = unsafe { pg_sys::get_namespace_oid(c"jwt_guard".as_ptr(), true) };
    let mut others = Vec::with_capacity(pending.relids.len());
    for relid in pending.relids {
        // SAFETY: syscache lookup by OID; InvalidOid when the relation is gone.
        let namespace = unsafe { pg_sys::get_rel_namespace(pg_sys::Oid::from(relid)) };
        if namespace == pg_sys::InvalidOid {
            if ours == pg_sys::InvalidOid || OURS.with_borrow(|o| o.contains(&relid)) {
                return true;
            }
        } else if namespace == ours {
            OURS.with_borrow_mut(|o| o.insert(relid));
            return true;
        }
        others.push(relid);
    }
    if others.is_empty() && !pending.owners {
        return false;
    }
    let (roles, refusals) = WATCHED.with_borrow(|w| {
        if w.generation == GENERATION.get() {
            (w.roles.iter().copied().collect::<Vec<_>>(), w.refusals)
        } else {
            (Vec::new(), false)
        }
    });
    // A cached refusal may be lifted by any change; no accepted verdict, nothing to protect.
    refusals || (!roles.is_empty() && crate::role_checks::may_have_gained_power(&others, &roles))
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
