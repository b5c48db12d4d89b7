//! Micro-benchmarks of the verification core: what one `authenticate()` costs before
//! PostgreSQL is involved at all.
//!
//! - `verify/<alg>`: parse + verify of one typical token, per algorithm (signature dominates);
//! - `parse/header`: the structural checks and header JSON alone (paid before the key lookup);
//! - `claims/*`: strict JSON of the payload and `claims::check` on it (paid after the signature);
//! - `permissions/*`: parsing a permissions claim, and matching one table command against it.
//!
//! Keys are made at start-up like the integration tests make them (ring for EC and Ed25519,
//! the `openssl` command line for RSA), by including the tests' helper module.
//!
//!     cargo bench --bench verify -- --warm-up-time 1 --measurement-time 2

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use jsonwebtoken::Algorithm;
use jwt_guard_core::permissions::{Command, Permissions};
use jwt_guard_core::{claims, json, parse, verify};
use serde_json::{json, Value};
use std::hint::black_box;

/// A payload shaped like the one the pgbench runs send: the standard claims, a tenant, a scope
/// string and a short permissions list.
fn typical_claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "role": "app_user",
        "tenant_id": "acme",
        "scope": "orders:read orders:write",
        "jti": "0b7c6a1e-4f7a-4d59-9d0e-5f7f0f6d2c11",
        "permissions": ["select:items_guard", "update:orders(status, note)", "export-report"],
        "iat": NOW - 10,
        "exp": NOW + 600,
    })
}

fn bench_verify(c: &mut Criterion) {
    let policy = policy();
    let payload = typical_claims().to_string();
    let mut group = c.benchmark_group("verify");
    for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let key = key_for(alg);
        let verifying = key.verifying();
        let header = format!(r#"{{"alg":"{}","typ":"JWT","kid":"bench"}}"#, alg_name(alg));
        let token = mint_with_header(&header, &payload, &key);
        // A bench that measures a rejection would be meaningless: check once that it passes.
        check(&token, &verifying, &policy, NOW).expect("bench token verifies");
        group.bench_function(alg_name(alg), |b| {
            b.iter(|| {
                let parsed = parse(black_box(&token), policy.max_token_bytes).unwrap();
                verify(&parsed, &verifying, &policy, NOW).unwrap()
            })
        });
    }
    group.finish();

    let key = key_for(Algorithm::ES256);
    let token = mint_with_header(r#"{"alg":"ES256","typ":"JWT","kid":"bench"}"#, &payload, &key);
    c.bench_function("parse/header", |b| {
        b.iter(|| parse(black_box(&token), policy.max_token_bytes).unwrap())
    });
}

fn bench_claims(c: &mut Criterion) {
    let policy = policy();
    let text = typical_claims().to_string();
    let Value::Object(map) = typical_claims() else {
        unreachable!()
    };

    c.bench_function("claims/parse_strict", |b| {
        b.iter(|| json::parse_strict(black_box(text.as_bytes())).unwrap())
    });
    // check() takes the map by value; the clone is made outside the timed part.
    c.bench_function("claims/check", |b| {
        b.iter_batched(
            || map.clone(),
            |m| claims::check(m, None, Some("bench"), &policy, NOW).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

fn bench_permissions(c: &mut Criterion) {
    let claim = json!([
        "select:items_guard",
        "select:sales.orders",
        "update:sales.orders(status, note)",
        "insert:notes",
        "delete:notes",
        "export-report",
    ]);
    let perms = Permissions::parse(&claim).unwrap();

    c.bench_function("permissions/parse", |b| {
        b.iter(|| Permissions::parse(black_box(&claim)).unwrap())
    });
    c.bench_function("permissions/allows_table", |b| {
        b.iter(|| {
            perms.allows(
                Command::Select,
                black_box("public"),
                black_box("items_guard"),
                &["id", "payload"],
            )
        })
    });
    c.bench_function("permissions/allows_columns", |b| {
        b.iter(|| {
            perms.allows(
                Command::Update,
                black_box("sales"),
                black_box("orders"),
                &["status", "note"],
            )
        })
    });
    c.bench_function("permissions/denied", |b| {
        b.iter(|| perms.allows(Command::Delete, black_box("public"), black_box("items_guard"), &[]))
    });
}

criterion_group!(benches, bench_verify, bench_claims, bench_permissions);
criterion_main!(benches);
