//! Property tests (docs/threat-model.md §4.4, run with every `cargo test`):
//! 1. arbitrary input never panics and never verifies;
//! 2. for random claim sets signed with the test HMAC key, `Ok` exactly when a small independent
//!    reference predicate says so;
//! 3. any single-character change, deletion or insertion in a valid token is rejected.

mod common;

use common::*;
use jsonwebtoken::Algorithm;
use jwt_guard_core::{parse, verify, Policy, Rejection, VerifyingKey};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::sync::OnceLock;

/// Keys for the fuzz-style properties, built once per process.
fn fuzz_keys() -> &'static Vec<VerifyingKey> {
    static KEYS: OnceLock<Vec<VerifyingKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            Algorithm::HS256,
            Algorithm::RS256,
            Algorithm::PS256,
            Algorithm::ES256,
            Algorithm::EdDSA,
        ]
        .into_iter()
        .map(|alg| key_for(alg).verifying())
        .collect()
    })
}

/// The one genuine token of the fuzz properties.
fn genuine() -> &'static str {
    static TOKEN: OnceLock<String> = OnceLock::new();
    TOKEN.get_or_init(|| mint(&good_payload(), &key_for(Algorithm::HS256)))
}

/// parse + verify against every fuzz key; returns true if any accepted.
fn accepted_by_any(input: &str) -> bool {
    let open = Policy {
        max_token_bytes: 1 << 16,
        ..policy()
    };
    let Ok(parsed) = parse(input, open.max_token_bytes) else {
        return false;
    };
    fuzz_keys().iter().any(|key| verify(&parsed, key, &open, NOW).is_ok())
}

fn b64_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{0,120}"
}

/// Header JSON texts that are plausible enough to reach the signature check.
fn header_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"alg":"HS256"}"#.to_owned()),
        Just(r#"{"alg":"RS256","typ":"JWT"}"#.to_owned()),
        Just(r#"{"alg":"PS256"}"#.to_owned()),
        Just(r#"{"alg":"ES256","kid":"k"}"#.to_owned()),
        Just(r#"{"alg":"EdDSA"}"#.to_owned()),
        Just(r#"{"alg":"none"}"#.to_owned()),
        "\\PC{0,40}",
        "[{}\\[\\]\":,a-zA-Z0-9 ]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // Property 1: arbitrary text.
    #[test]
    fn arbitrary_strings_never_verify(input in "\\PC{0,400}") {
        prop_assert!(!accepted_by_any(&input));
    }

    #[test]
    fn arbitrary_token_alphabet_strings_never_verify(input in "[A-Za-z0-9_.=+/ -]{0,400}") {
        prop_assert!(!accepted_by_any(&input));
    }

    #[test]
    fn arbitrary_bytes_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(!accepted_by_any(&text));
        let latin1: String = bytes.iter().map(|&b| b as char).collect();
        prop_assert!(!accepted_by_any(&latin1));
    }

    #[test]
    fn three_random_segments_never_verify(h in b64_text(), p in b64_text(), s in b64_text()) {
        let token = format!("{}.{}.{}", h, p, s);
        prop_assert!(!accepted_by_any(&token));
    }

    #[test]
    fn structured_garbage_with_random_signature_never_verifies(
        header in header_text(),
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        signature in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let token = format!("{}.{}.{}", b64(&header), b64(&payload), b64(&signature));
        prop_assert!(!accepted_by_any(&token));
        // The genuine payload with a random signature.
        let (h, p, _) = segments(genuine());
        let token = format!("{}.{}.{}", h, p, b64(&signature));
        prop_assert!(!accepted_by_any(&token));
    }

    #[test]
    fn genuine_token_with_anything_around_it_never_verifies(prefix in "\\PC{0,20}", suffix in "\\PC{0,20}") {
        let input = format!("{}{}{}", prefix, genuine(), suffix);
        prop_assert_eq!(accepted_by_any(&input), input == genuine());
    }
}

#[test]
fn the_genuine_token_does_verify() {
    assert!(accepted_by_any(genuine()));
}

// ---- Property 2: claims against an independent reference ----

/// What a time value is resolved against: the case's clock, policy and (for iat) exp.
#[derive(Clone, Copy)]
struct Ctx {
    now: i64,
    leeway: i64,
    max: i64,
    exp: Option<i64>,
}

#[derive(Debug, Clone)]
enum Time {
    /// Seconds relative to the case's clock.
    Offset(i64),
    /// now + leeways·leeway + maxes·max_lifetime + delta: one second either side of every
    /// boundary the policy creates, so off-by-one errors are hit, not just approached.
    Edge {
        leeways: i64,
        maxes: i64,
        delta: i64,
    },
    /// exp - max_lifetime + delta (for iat): the lifetime boundary.
    LifetimeEdge(i64),
    Absolute(i64),
    Text(String),
    Float(f64),
    Null,
    Bool(bool),
}

impl Time {
    fn json(&self, ctx: Ctx) -> Value {
        match self {
            Time::Offset(_) | Time::Edge { .. } | Time::LifetimeEdge(_) => json!(self.seconds(ctx)),
            Time::Absolute(a) => json!(a),
            Time::Text(t) => json!(t),
            Time::Float(f) => json!(f),
            Time::Null => Value::Null,
            Time::Bool(b) => json!(b),
        }
    }
    fn seconds(&self, ctx: Ctx) -> i64 {
        match self {
            Time::Offset(o) => ctx.now + o,
            Time::Edge { leeways, maxes, delta } => ctx.now + leeways * ctx.leeway + maxes * ctx.max + delta,
            Time::LifetimeEdge(delta) => ctx.exp.unwrap_or(ctx.now) - ctx.max + delta,
            _ => unreachable!(),
        }
    }
    /// The NumericDate, if this is one (a non-negative JSON integer).
    fn integer(&self, ctx: Ctx) -> Option<i64> {
        match self {
            Time::Offset(_) | Time::Edge { .. } | Time::LifetimeEdge(_) => Some(self.seconds(ctx)).filter(|s| *s >= 0),
            Time::Absolute(a) if *a >= 0 => Some(*a),
            _ => None,
        }
    }
}

fn offsets(range: std::ops::Range<i64>) -> impl Strategy<Value = Time> {
    range.prop_map(Time::Offset)
}

fn edge() -> impl Strategy<Value = Time> {
    (-1i64..=1, 0i64..=1, -1i64..=1).prop_map(|(leeways, maxes, delta)| Time::Edge { leeways, maxes, delta })
}

/// Values that are not NumericDates, and extreme ones that are.
fn odd_time() -> impl Strategy<Value = Time> {
    prop_oneof![
        prop_oneof![Just(0i64), Just(-1), Just(-NOW), Just(i64::MAX), Just(NOW)].prop_map(Time::Absolute),
        prop_oneof![Just("1800000600".to_owned()), Just("never".to_owned())].prop_map(Time::Text),
        prop_oneof![Just(1.8e9), Just(1_800_000_600.5), Just(1e19)].prop_map(Time::Float),
        Just(Time::Null),
        any::<bool>().prop_map(Time::Bool),
    ]
}

/// Each field is a known-good value most of the time and anything (good or bad) otherwise,
/// so that both outcomes are common and every rule meets every other.
fn exp() -> impl Strategy<Value = Option<Time>> {
    let any = prop_oneof![
        6 => edge(),
        3 => offsets(-100..200),
        2 => offsets(3500..3700),
        1 => offsets(-7300..7300),
        2 => odd_time(),
    ];
    proptest::option::weighted(0.95, prop_oneof![1 => offsets(1..40), 1 => any])
}

fn nbf() -> impl Strategy<Value = Option<Time>> {
    let any = prop_oneof![4 => edge(), 2 => offsets(-100..100), 1 => offsets(-7300..7300), 1 => odd_time()];
    proptest::option::of(prop_oneof![2 => offsets(-100..1), 1 => any])
}

fn iat() -> impl Strategy<Value = Option<Time>> {
    let any = prop_oneof![
        3 => edge(),
        3 => (-1i64..=1).prop_map(Time::LifetimeEdge),
        2 => offsets(-100..100),
        1 => offsets(-3700..-3500),
        1 => offsets(-7300..7300),
        1 => odd_time(),
    ];
    proptest::option::of(prop_oneof![2 => offsets(-20..1), 1 => any])
}

fn mostly(good: Value, others: Vec<Option<Value>>) -> impl Strategy<Value = Option<Value>> {
    let mut all = others;
    all.push(Some(good.clone()));
    prop_oneof![3 => Just(Some(good)), 1 => proptest::sample::select(all)]
}

fn iss() -> impl Strategy<Value = Option<Value>> {
    mostly(
        json!(ISSUER),
        vec![
            None,
            Some(json!("https://evil.test")),
            Some(json!(format!("{ISSUER}/"))),
            Some(json!(["https://evil.test", ISSUER])),
            Some(json!([ISSUER])),
            Some(json!(7)),
        ],
    )
}

fn aud() -> impl Strategy<Value = Option<Value>> {
    mostly(
        json!(AUDIENCE),
        vec![
            None,
            None,
            Some(json!("other")),
            Some(json!(["other", AUDIENCE])),
            Some(json!(["other"])),
            Some(json!([])),
            Some(json!("")),
            Some(json!("API")),
            Some(json!(5)),
            Some(json!([AUDIENCE, 1])),
            Some(Value::Null),
        ],
    )
}

fn role() -> impl Strategy<Value = Option<Value>> {
    mostly(
        json!("app_user"),
        vec![
            None,
            None,
            Some(json!("")),
            Some(json!(3)),
            Some(json!(["app_user"])),
            Some(json!(["offline_access", "app_user"])),
            Some(json!([])),
            Some(json!(["app_user", ""])),
            Some(json!("app\u{0}user")),
        ],
    )
}

#[derive(Debug, Clone)]
struct Case {
    exp: Option<Time>,
    nbf: Option<Time>,
    iat: Option<Time>,
    iss: Option<Value>,
    aud: Option<Value>,
    role: Option<Value>,
    audience_configured: bool,
    leeway: u64,
    max_lifetime: u64,
    clock_skew: i64,
}

fn case() -> impl Strategy<Value = Case> {
    (
        (exp(), nbf(), iat()),
        (iss(), aud(), role()),
        (
            proptest::bool::weighted(0.8),
            prop_oneof![Just(0u64), Just(30), Just(60)],
            prop_oneof![Just(60u64), Just(3600)],
            -100i64..100,
        ),
    )
        .prop_map(
            |((exp, nbf, iat), (iss, aud, role), (audience_configured, leeway, max_lifetime, clock_skew))| Case {
                exp,
                nbf,
                iat,
                iss,
                aud,
                role,
                audience_configured,
                leeway,
                max_lifetime,
                clock_skew,
            },
        )
}

impl Case {
    fn now(&self) -> i64 {
        NOW + self.clock_skew
    }

    fn ctx(&self) -> Ctx {
        let base = Ctx {
            now: self.now(),
            leeway: self.leeway as i64,
            max: self.max_lifetime as i64,
            exp: None,
        };
        Ctx {
            exp: self.exp.as_ref().and_then(|t| t.integer(base)),
            ..base
        }
    }

    fn claims(&self) -> String {
        let ctx = self.ctx();
        let mut map = Map::new();
        map.insert("sub".into(), json!("user-1"));
        let mut put = |name: &str, v: Option<Value>| {
            if let Some(v) = v {
                map.insert(name.into(), v);
            }
        };
        put("exp", self.exp.as_ref().map(|t| t.json(ctx)));
        put("nbf", self.nbf.as_ref().map(|t| t.json(ctx)));
        put("iat", self.iat.as_ref().map(|t| t.json(ctx)));
        put("iss", self.iss.clone());
        put("aud", self.aud.clone());
        put("role", self.role.clone());
        Value::Object(map).to_string()
    }

    fn policy(&self) -> Policy {
        Policy {
            issuers: vec![ISSUER.into()],
            audience: if self.audience_configured {
                vec![AUDIENCE.into()]
            } else {
                vec![]
            },
            leeway: self.leeway,
            max_lifetime: self.max_lifetime,
            ..Policy::default()
        }
    }

    fn exp_value(&self) -> Option<i64> {
        self.ctx().exp
    }

    /// The rules written out again, plainly and independently of claims.rs.
    fn reference_accepts(&self) -> bool {
        let ctx = self.ctx();
        let now = ctx.now;
        let integer_or_absent = |t: &Option<Time>| t.as_ref().is_none_or(|t| t.integer(ctx).is_some());
        let Some(exp) = ctx.exp else { return false };
        if !integer_or_absent(&self.nbf) || !integer_or_absent(&self.iat) {
            return false;
        }
        let nbf = self.nbf.as_ref().and_then(|t| t.integer(ctx));
        let iat = self.iat.as_ref().and_then(|t| t.integer(ctx));
        // i128 so that i64::MAX values cannot overflow the reference itself.
        let (exp, now, leeway, max) = (exp as i128, now as i128, self.leeway as i128, self.max_lifetime as i128);
        let window = now <= exp + leeway && exp - now <= max + leeway;
        let not_before = nbf.is_none_or(|n| n as i128 <= now + leeway);
        let issued = iat.is_none_or(|i| i as i128 <= now + leeway && exp - i as i128 <= max);
        let iss_ok = self.iss == Some(json!(ISSUER));
        let aud_ok = match (&self.aud, self.audience_configured) {
            (None, configured) => !configured,
            (Some(_), false) => false,
            (Some(Value::String(s)), true) => s == AUDIENCE,
            (Some(Value::Array(items)), true) => {
                items.iter().all(Value::is_string) && items.iter().any(|v| v == AUDIENCE)
            }
            (Some(_), true) => false,
        };
        let role_ok = match &self.role {
            None => true,
            Some(Value::String(s)) => !s.is_empty() && !s.contains('\0'),
            Some(Value::Array(items)) => {
                !items.is_empty() && items.iter().all(|v| v.as_str().is_some_and(|s| !s.is_empty()))
            }
            Some(_) => false,
        };
        window && not_before && issued && iss_ok && aud_ok && role_ok
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn claims_accepted_exactly_when_the_reference_says_so(case in case()) {
        let key = key_for(Algorithm::HS256);
        let token = mint(&case.claims(), &key);
        let result = check(&token, &key.verifying(), &case.policy(), case.now());
        prop_assert_eq!(result.is_ok(), case.reference_accepts(), "{:?} -> {:?}", case, result);
        if let Ok(id) = result {
            prop_assert_eq!(Some(id.exp), case.exp_value());
            prop_assert_eq!(id.role_claim.map(Value::from), case.role.clone());
        }
    }
}

// The claim property is only meaningful if both outcomes are common.
#[test]
fn claim_cases_cover_both_outcomes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let total = 2000;
    let accepted = (0..total)
        .filter(|_| strategy.new_tree(&mut runner).unwrap().current().reference_accepts())
        .count();
    assert!(
        accepted > total / 5 && accepted < total - total / 5,
        "{accepted} of {total} accepted"
    );
}

// ---- Property 3: any single change to a valid token is rejected ----

fn mutation_tokens() -> &'static Vec<(TestKey, String)> {
    static TOKENS: OnceLock<Vec<(TestKey, String)>> = OnceLock::new();
    TOKENS.get_or_init(|| {
        ALL_ALGS
            .into_iter()
            .map(|alg| {
                let key = key_for(alg);
                let header = format!(r#"{{"alg":"{}","typ":"JWT","kid":"k1"}}"#, alg_name(alg));
                let token = mint_with_header(&header, &good_payload(), &key);
                (key, token)
            })
            .collect()
    })
}

fn verdict(token: &str, key: &TestKey) -> Result<(), Rejection> {
    check(token, &key.verifying(), &policy(), NOW).map(|_| ())
}

fn token_char() -> impl Strategy<Value = char> {
    prop_oneof![
        6 => proptest::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".chars().collect::<Vec<_>>()
        ),
        1 => proptest::sample::select(vec!['.', '=', '+', '/', ' ', '\n', '\0', 'é']),
        1 => any::<char>(),
    ]
}

#[test]
fn mutation_tokens_are_valid() {
    for (key, token) in mutation_tokens() {
        assert_eq!(verdict(token, key), Ok(()), "{:?}", key.alg);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_single_character_change_is_rejected(which in 0usize..12, position in any::<proptest::sample::Index>(), c in token_char()) {
        let (key, token) = &mutation_tokens()[which];
        let chars: Vec<char> = token.chars().collect();
        let i = position.index(chars.len());
        prop_assume!(chars[i] != c);
        let mutated = replace_at(token, i, c);
        prop_assert!(verdict(&mutated, key).is_err(), "{:?}: {} at {}", key.alg, c, i);
    }

    #[test]
    fn any_single_bit_flip_is_rejected(which in 0usize..12, position in any::<proptest::sample::Index>(), bit in 0u8..7) {
        let (key, token) = &mutation_tokens()[which];
        let mut bytes = token.clone().into_bytes();
        let i = position.index(bytes.len());
        bytes[i] ^= 1 << bit;
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(verdict(&mutated, key).is_err(), "{:?}: bit {} of byte {}", key.alg, bit, i);
    }

    #[test]
    fn any_single_deletion_or_insertion_is_rejected(which in 0usize..12, position in any::<proptest::sample::Index>(), c in token_char()) {
        let (key, token) = &mutation_tokens()[which];
        let chars: Vec<char> = token.chars().collect();
        let i = position.index(chars.len());
        let deleted: String = chars.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, c)| c).collect();
        prop_assert!(verdict(&deleted, key).is_err(), "{:?}: deleted {}", key.alg, i);
        let mut inserted = chars.clone();
        inserted.insert(i, c);
        let inserted: String = inserted.into_iter().collect();
        prop_assert!(verdict(&inserted, key).is_err(), "{:?}: inserted {} at {}", key.alg, c, i);
    }
}

// Property 4: whatever verification accepts, the identity carrier can store and read back
// unchanged, so the extension never meets an accepted token whose identity does not parse.
fn nested_claim() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(48, 200, 3, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,3}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn chain(levels: usize) -> Value {
    (0..levels).fold(json!("x"), |inner, _| json!({ "n": inner }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn accepted_identities_round_trip_through_the_carrier(extra in nested_claim(), levels in 0usize..40) {
        let key = key_for(Algorithm::HS256);
        let mut claims: Map<String, Value> = serde_json::from_str(&good_payload()).unwrap();
        claims.insert("extra".into(), extra);
        claims.insert("deep".into(), chain(levels));
        let depth = jwt_guard_core::json::depth(&Value::Object(claims.clone()));
        let token = mint(&Value::Object(claims).to_string(), &key);
        let roomy = Policy { max_token_bytes: 1 << 20, ..policy() };
        match check(&token, &key.verifying(), &roomy, NOW) {
            Ok(identity) => {
                prop_assert!(depth <= jwt_guard_core::json::MAX_DEPTH);
                let stored = serde_json::to_string(&identity).unwrap();
                let read_back: jwt_guard_core::Identity = serde_json::from_str(&stored).unwrap();
                prop_assert_eq!(read_back, identity);
            }
            Err(Rejection::TooDeep { .. }) => prop_assert!(depth > jwt_guard_core::json::MAX_DEPTH),
            Err(other) => prop_assert!(false, "unexpected rejection {:?}", other),
        }
    }
}

// Floats, too, come back from the identity carrier exactly as verified.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn float_claims_round_trip_exactly(bits in any::<u64>()) {
        let f = f64::from_bits(bits);
        prop_assume!(f.is_finite());
        let key = key_for(Algorithm::HS256);
        let mut claims: Map<String, Value> = serde_json::from_str(&good_payload()).unwrap();
        claims.insert("score".into(), json!(f));
        let token = mint(&Value::Object(claims).to_string(), &key);
        let identity = check(&token, &key.verifying(), &policy(), NOW).unwrap();
        let stored = serde_json::to_string(&identity).unwrap();
        let read_back: jwt_guard_core::Identity = serde_json::from_str(&stored).unwrap();
        prop_assert_eq!(read_back.claims["score"].as_f64(), Some(f));
    }
}
