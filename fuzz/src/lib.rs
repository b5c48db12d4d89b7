//! Shared pieces of the fuzz targets: a fixed clock and policy, the fuzz-only HMAC key,
//! token minting with that key, a structure-aware JSON generator, and a JSON comparison
//! that tolerates serde_json's last-digit float rounding.
//!
//! Nothing here is a real credential: the only secret is the constant below, which exists
//! so that fuzzed headers and payloads carry a valid signature and reach the claims checks.

use arbitrary::{Result as ArbResult, Unstructured};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_guard_core::{Policy, VerifyingKey};
use ring::hmac;
use serde_json::{Map, Number, Value};
use std::sync::OnceLock;

/// The HS256 secret every target signs and verifies with. A test value, never a real key.
pub const FUZZ_SECRET: &[u8] = b"fuzz-only-hmac-secret-not-a-real-key!!";
/// The kid the fuzz key is registered under in the seeds (informational only).
pub const FUZZ_KID: &str = "fuzz-key";
/// The injected clock (2027-01-15), the same instant the core's tests use.
pub const NOW: i64 = 1_800_000_000;
pub const ISSUER: &str = "https://issuer.fuzz.test";
pub const AUDIENCE: &str = "api";

/// Policy A: plain claim names, one issuer, one audience, documented defaults otherwise.
/// Built with `..Policy::default()` so new policy fields (caps) take their defaults.
pub fn policy_plain() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy {
        issuers: vec![ISSUER.into()],
        audience: vec![AUDIENCE.into(), "other-api".into()],
        ..Policy::default()
    })
}

/// Policy B: role, tenant and permissions found through JSON Pointers; no audience, so any
/// `aud` is refused; the issuer comes from the key only.
pub fn policy_pointer() -> &'static Policy {
    static P: OnceLock<Policy> = OnceLock::new();
    P.get_or_init(|| Policy {
        issuers: Vec::new(),
        audience: Vec::new(),
        leeway: 0,
        max_lifetime: 86_400,
        role_claim: "/realm_access/role".into(),
        tenant_claim: "/org/id".into(),
        permissions_claim: "/authz/permissions".into(),
        ..Policy::default()
    })
}

/// The fuzz-only HS256 verifying key, registered without an issuer (policy A supplies one).
pub fn fuzz_key() -> &'static VerifyingKey {
    static K: OnceLock<VerifyingKey> = OnceLock::new();
    K.get_or_init(|| {
        let text = std::str::from_utf8(FUZZ_SECRET).expect("ASCII secret");
        VerifyingKey::from_text("HS256", text, None).expect("the fuzz secret is a valid HS256 key")
    })
}

/// The same key pinned to an issuer, for policy B (which lists no issuers).
pub fn fuzz_key_with_issuer() -> &'static VerifyingKey {
    static K: OnceLock<VerifyingKey> = OnceLock::new();
    K.get_or_init(|| {
        let text = std::str::from_utf8(FUZZ_SECRET).expect("ASCII secret");
        VerifyingKey::from_text("HS256", text, Some(ISSUER)).expect("the fuzz secret is a valid HS256 key")
    })
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HS256 signature over `signing_input` with the fuzz secret, base64url.
pub fn sign(signing_input: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, FUZZ_SECRET);
    b64(hmac::sign(&key, signing_input.as_bytes()).as_ref())
}

/// A compact token over raw header and payload bytes, signed with the fuzz secret.
pub fn mint(header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = sign(&input);
    format!("{input}.{sig}")
}

/// Names the claims checks look at, so generated objects hit them often.
pub const CLAIM_NAMES: &[&str] = &[
    "exp",
    "nbf",
    "iat",
    "iss",
    "aud",
    "sub",
    "jti",
    "role",
    "tenant_id",
    "scope",
    "scp",
    "permissions",
    "realm_access",
    "org",
    "id",
    "authz",
    "a/b",
    "~",
    "",
    "\u{0}",
];

/// Strings that matter to the claims and permissions checks.
pub const STRINGS: &[&str] = &[
    ISSUER,
    AUDIENCE,
    "other-api",
    "https://evil.test",
    "app_user",
    "postgres",
    "pg_read_all_data",
    "public",
    "read write",
    "select:orders",
    "update:sales.orders(status, note)",
    "delete:orders(a)",
    "export-report",
    "",
    " ",
    "\u{0}",
    "a\u{0}b",
];

/// Times around the fixed clock, and the edges of the integer types.
pub const NUMBERS: &[i64] = &[
    NOW,
    NOW - 1,
    NOW + 1,
    NOW - 30,
    NOW + 30,
    NOW - 31,
    NOW + 31,
    NOW + 3600,
    NOW + 3631,
    NOW - 3600,
    NOW + 86_400,
    0,
    -1,
    1,
    i64::MAX,
    i64::MIN,
];

/// Deepest value the generator builds: two levels past the core's cap on nesting (the object
/// itself is level 1), so the boundary is exercised but states that no token can reach (a
/// payload nested 100 deep, which `json::parse_strict` refuses) are not the focus.
pub const MAX_GEN_DEPTH: usize = jwt_guard_core::json::MAX_DEPTH + 1;

/// A JSON value shaped like claims: known names, times near the clock, odd types, nesting.
pub fn arbitrary_value(u: &mut Unstructured<'_>, depth: usize) -> ArbResult<Value> {
    let choices = if depth >= MAX_GEN_DEPTH { 8 } else { 11 };
    Ok(match u.choose_index(choices)? {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(*u.choose(NUMBERS)?),
        3 => Value::from(u.arbitrary::<i64>()?),
        4 => Value::from(u.arbitrary::<u64>()?),
        5 => Number::from_f64(u.arbitrary::<f64>()?).map_or(Value::Null, Value::Number),
        6 => Value::String((*u.choose(STRINGS)?).to_owned()),
        7 => Value::String(u.arbitrary::<String>()?),
        8 | 9 => Value::Object(arbitrary_object(u, depth + 1)?),
        _ => {
            let n = u.int_in_range(0..=8)?;
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                if u.is_empty() {
                    break;
                }
                items.push(arbitrary_value(u, depth + 1)?);
            }
            Value::Array(items)
        }
    })
}

/// An object whose member names are mostly the claim names above.
pub fn arbitrary_object(u: &mut Unstructured<'_>, depth: usize) -> ArbResult<Map<String, Value>> {
    let n = u.int_in_range(0..=12)?;
    let mut map = Map::new();
    for _ in 0..n {
        if u.is_empty() {
            break;
        }
        let name = if u.ratio(3, 4)? {
            (*u.choose(CLAIM_NAMES)?).to_owned()
        } else {
            u.arbitrary::<String>()?
        };
        let value = arbitrary_value(u, depth)?;
        map.insert(name, value);
    }
    Ok(map)
}

/// Equality of JSON values where floats may differ in their last bits: serde_json (without its
/// `float_roundtrip` feature, which this project does not enable) parses floats with
/// "best-effort precision", so a value can come back a few ulps off after a text round trip
/// (found by the claims target on a subnormal: 1.65244455685881e-309 came back as
/// 1.652444556858808e-309). Anything further apart is a real change.
pub fn json_same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q || ulps_apart(p, q) <= 64,
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_same(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_same(v, w)))
        }
        _ => a == b,
    }
}

/// The allow-list the targets choose roles against.
pub const ALLOWED_ROLES: &[&str] = &["app_user", "anon", "Admin"];

/// A fixed role map, as an issuer profile may carry (claim value → database role). It maps
/// onto allowed, reserved and invalid names alike: whatever it maps to, the allow-list and the
/// name rules must still hold.
pub const ROLE_MAP: &[(&str, &str)] = &[
    ("org:admin", "Admin"),
    ("offline_access", "app_user"),
    ("uma_authorization", "pg_read_all_data"),
    ("x", "public"),
    ("y", ""),
];

/// Runs the role choice the extension makes after verification (`roles::choose` and, for
/// issuer profiles, `roles::choose_mapped`), with and without a requested role, and checks
/// what it returns: a valid name on the allow-list, named by the (mapped) claim whenever the
/// token has a role claim, and the requested role when one was requested.
pub fn choose_roles(identity: &jwt_guard_core::Identity) {
    use jwt_guard_core::roles;
    let allowed: Vec<String> = ALLOWED_ROLES.iter().map(|r| (*r).to_owned()).collect();
    let map: Vec<(String, String)> = ROLE_MAP
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    let claimed = identity.role_claim.as_ref();
    let names: Vec<&str> = claimed.map(|c| c.names()).unwrap_or_default();
    let mapped: Vec<&str> = names
        .iter()
        .map(|n| ROLE_MAP.iter().find(|(from, _)| from == n).map_or(*n, |(_, to)| *to))
        .collect();
    let mut requests: Vec<Option<&str>> = vec![None, Some("app_user"), Some("Admin")];
    requests.extend(names.first().map(|n| Some(*n)));
    for requested in requests {
        for (role_map, names) in [(&[][..], &names), (&map[..], &mapped)] {
            match roles::choose_mapped(claimed, role_map, requested, Some("anon"), &allowed) {
                Ok(role) => {
                    assert!(allowed.contains(&role), "chose a role off the allow-list: {role:?}");
                    assert!(roles::check_name(&role).is_ok(), "chose an invalid role name: {role:?}");
                    if claimed.is_some() {
                        assert!(names.contains(&role.as_str()), "chose a role the claim does not name");
                    }
                    if let Some(r) = requested {
                        assert_eq!(role, r, "chose another role than the one requested");
                    }
                }
                Err(e) => check_message(&e.to_string()),
            }
        }
    }
    if let Ok(role) = roles::choose(claimed, None, Some("anon"), &allowed) {
        assert!(allowed.contains(&role));
    }
}

/// Refusal messages go to the client and the server log: attacker text in them must have
/// passed through `error::printable` (no control characters, bounded length).
pub fn check_message(msg: &str) {
    assert!(
        !msg.chars().any(char::is_control),
        "control character in a message: {msg:?}"
    );
    assert!(msg.len() <= 2048, "unbounded message ({} bytes)", msg.len());
}

/// Invariants a run can switch off while a known bug is open, so the rest of a target keeps
/// being fuzzed: `FUZZ_SKIP=name1,name2` (names are given where each check is made).
pub fn skip(check: &str) -> bool {
    static SKIP: OnceLock<Vec<String>> = OnceLock::new();
    SKIP.get_or_init(|| {
        std::env::var("FUZZ_SKIP")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .iter()
    .any(|s| s == check)
}

/// Distance in units in the last place between two finite floats (across zero too).
fn ulps_apart(p: f64, q: f64) -> u64 {
    // Map the sign-magnitude bit patterns onto a monotonic integer line.
    let key = |x: f64| {
        let b = x.to_bits() as i64;
        if b < 0 {
            i64::MIN - b
        } else {
            b
        }
    };
    key(p).abs_diff(key(q))
}
