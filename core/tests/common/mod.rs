//! Shared helpers for the integration tests: key generation at test time, token minting over
//! hand-written header and payload JSON, and a fixed clock.
//!
//! Tokens are signed through our own ring provider (`jsonwebtoken::crypto::sign`), so odd
//! headers and payloads (duplicates, wrong types, bad encodings) carry a valid signature and
//! only the verifier's own checks can reject them.
//!
//! No key material is stored in the repository: EC and Ed25519 keys come from ring, RSA keys
//! from the `openssl` command line (ring cannot generate RSA keys), once per test process,
//! through pipes only: no key file is ever written.
#![allow(dead_code)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use jwt_guard_core::{parse, provider, verify, Identity, Policy, Rejection, VerifyingKey};
use ring::rand::SystemRandom;
use ring::signature::{self as sig, KeyPair};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The injected clock used by most tests (2027-01-15).
pub const NOW: i64 = 1_800_000_000;
pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "api";

/// All twelve supported algorithms.
pub const ALL_ALGS: [Algorithm; 12] = [
    Algorithm::HS256,
    Algorithm::HS384,
    Algorithm::HS512,
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).expect("test data is base64url")
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    jwt_guard_core::keys::alg_name(alg)
}

/// A PEM block with 64-column lines.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

// SubjectPublicKeyInfo prefixes: SEQUENCE { AlgorithmIdentifier, BIT STRING (0 unused bits) }.
const P256_SPKI_PREFIX: &str = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
const P384_SPKI_PREFIX: &str = "3076301006072a8648ce3d020106052b81040022036200";
const ED25519_SPKI_PREFIX: &str = "302a300506032b6570032100";

pub fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// SPKI PEM for an uncompressed P-256 (65 bytes) or P-384 (97 bytes) point.
pub fn ec_spki_pem(point: &[u8]) -> String {
    let prefix = if point.len() == 65 {
        P256_SPKI_PREFIX
    } else {
        P384_SPKI_PREFIX
    };
    let mut der = hex(prefix);
    der.extend_from_slice(point);
    pem("PUBLIC KEY", &der)
}

pub fn ed_spki_pem(public: &[u8]) -> String {
    let mut der = hex(ED25519_SPKI_PREFIX);
    der.extend_from_slice(public);
    pem("PUBLIC KEY", &der)
}

/// A signing key and the text an administrator would register for it.
#[derive(Clone)]
pub struct TestKey {
    pub alg: Algorithm,
    pub signing: EncodingKey,
    /// PEM public key (asymmetric) or the secret text (HMAC): input to `VerifyingKey::from_text`.
    pub public_text: String,
    /// The public key as a JWK (no kid, no alg), for import tests.
    pub jwk: serde_json::Value,
}

impl TestKey {
    pub fn verifying(&self) -> VerifyingKey {
        VerifyingKey::from_text(alg_name(self.alg), &self.public_text, None).expect("test key registers")
    }
    pub fn verifying_with_issuer(&self, issuer: &str) -> VerifyingKey {
        VerifyingKey::from_text(alg_name(self.alg), &self.public_text, Some(issuer)).expect("test key registers")
    }
}

/// 64 printable bytes: long enough for HS512, so one secret serves all three HMAC algorithms.
pub const HMAC_SECRET: &str = "k9T2vQ7xLm4Pz8Rw1Ys6Nb3Hc5Jd0Fg7Ua2Ie9Ko4Mq1Vt8Xr6Wp3Zs5Bn0Cy2Dl";

pub fn hmac_key(alg: Algorithm) -> TestKey {
    TestKey {
        alg,
        signing: EncodingKey::from_secret(HMAC_SECRET.as_bytes()),
        public_text: HMAC_SECRET.to_owned(),
        jwk: serde_json::json!({"kty": "oct", "k": b64(HMAC_SECRET)}),
    }
}

/// A fresh ECDSA key pair (ES256 → P-256, ES384 → P-384).
pub fn new_ec_key(alg: Algorithm) -> TestKey {
    let curve = if alg == Algorithm::ES256 {
        &sig::ECDSA_P256_SHA256_FIXED_SIGNING
    } else {
        &sig::ECDSA_P384_SHA384_FIXED_SIGNING
    };
    let rng = SystemRandom::new();
    let pkcs8 = sig::EcdsaKeyPair::generate_pkcs8(curve, &rng).unwrap();
    let pair = sig::EcdsaKeyPair::from_pkcs8(curve, pkcs8.as_ref(), &rng).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let half = (point.len() - 1) / 2;
    let crv = if alg == Algorithm::ES256 { "P-256" } else { "P-384" };
    TestKey {
        alg,
        signing: EncodingKey::from_ec_der(pkcs8.as_ref()),
        public_text: ec_spki_pem(&point),
        jwk: serde_json::json!({"kty": "EC", "crv": crv, "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..])}),
    }
}

pub fn new_ed_key() -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = sig::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
    let pair = sig::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref().to_vec();
    TestKey {
        alg: Algorithm::EdDSA,
        signing: EncodingKey::from_ed_der(pkcs8.as_ref()),
        public_text: ed_spki_pem(&public),
        jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&public)}),
    }
}

/// One RSA key pair from openssl, in the forms the tests need.
pub struct RsaMaterial {
    /// PKCS#8 private key PEM (never written to disk).
    pub private_pem: String,
    /// SPKI "PUBLIC KEY" PEM.
    pub spki_pem: String,
    /// PKCS#1 "RSA PUBLIC KEY" PEM.
    pub pkcs1_pem: String,
    /// Self-signed certificate PEM (only for the 2048-bit key).
    pub cert_pem: Option<String>,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

fn openssl(args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command line is needed to generate RSA test keys");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// n and e from a PKCS#1 RSAPublicKey DER.
fn rsa_components(pkcs1_der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    use simple_asn1::ASN1Block;
    let blocks = simple_asn1::from_der(pkcs1_der).unwrap();
    let [ASN1Block::Sequence(_, items)] = blocks.as_slice() else {
        panic!("not PKCS#1")
    };
    let [ASN1Block::Integer(_, n), ASN1Block::Integer(_, e)] = items.as_slice() else {
        panic!("not PKCS#1")
    };
    let strip = |v: Vec<u8>| v.into_iter().skip_while(|b| *b == 0).collect::<Vec<u8>>();
    (strip(n.to_signed_bytes_be()), strip(e.to_signed_bytes_be()))
}

fn pem_body(text: &str) -> Vec<u8> {
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).unwrap()
}

fn generate_rsa(bits: u32, with_cert: bool) -> RsaMaterial {
    let bits_opt = format!("rsa_keygen_bits:{bits}");
    let private = openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", &bits_opt], b"");
    let spki = openssl(&["pkey", "-pubout"], &private);
    let pkcs1 = openssl(&["rsa", "-RSAPublicKey_out"], &private);
    let cert_pem = with_cert.then(|| self_signed_cert(&private));
    let pkcs1_pem = String::from_utf8(pkcs1).unwrap();
    let (n, e) = rsa_components(&pem_body(&pkcs1_pem));
    RsaMaterial {
        private_pem: String::from_utf8(private).unwrap(),
        spki_pem: String::from_utf8(spki).unwrap(),
        pkcs1_pem,
        cert_pem,
        n,
        e,
    }
}

// The private key goes to `openssl req` on stdin (/dev/stdin), so it never touches the disk.
fn self_signed_cert(private_pem: &[u8]) -> String {
    let args = [
        "req",
        "-new",
        "-x509",
        "-key",
        "/dev/stdin",
        "-subj",
        "/CN=jwt-guard-test",
        "-days",
        "2",
    ];
    String::from_utf8(openssl(&args, private_pem)).unwrap()
}

pub fn rsa2048() -> &'static RsaMaterial {
    static KEY: OnceLock<RsaMaterial> = OnceLock::new();
    KEY.get_or_init(|| generate_rsa(2048, true))
}

/// A second, unrelated 2048-bit key (wrong-key tests).
pub fn rsa2048_other() -> &'static RsaMaterial {
    static KEY: OnceLock<RsaMaterial> = OnceLock::new();
    KEY.get_or_init(|| generate_rsa(2048, false))
}

pub fn rsa1024() -> &'static RsaMaterial {
    static KEY: OnceLock<RsaMaterial> = OnceLock::new();
    KEY.get_or_init(|| generate_rsa(1024, false))
}

pub fn rsa_key(alg: Algorithm) -> TestKey {
    rsa_key_from(alg, rsa2048())
}

pub fn rsa_key_from(alg: Algorithm, m: &RsaMaterial) -> TestKey {
    TestKey {
        alg,
        signing: EncodingKey::from_rsa_pem(m.private_pem.as_bytes()).unwrap(),
        public_text: m.spki_pem.clone(),
        jwk: serde_json::json!({"kty": "RSA", "n": b64(&m.n), "e": b64(&m.e)}),
    }
}

fn ec256() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| new_ec_key(Algorithm::ES256))
}

fn ec384() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(|| new_ec_key(Algorithm::ES384))
}

fn ed() -> &'static TestKey {
    static KEY: OnceLock<TestKey> = OnceLock::new();
    KEY.get_or_init(new_ed_key)
}

/// The process-wide test key for an algorithm.
pub fn key_for(alg: Algorithm) -> TestKey {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => hmac_key(alg),
        Algorithm::ES256 => ec256().clone(),
        Algorithm::ES384 => ec384().clone(),
        Algorithm::EdDSA => ed().clone(),
        _ => rsa_key(alg),
    }
}

/// Signature (base64url) over arbitrary signing-input bytes.
pub fn sign_input(input: &str, key: &EncodingKey, alg: Algorithm) -> String {
    provider::install();
    jsonwebtoken::crypto::sign(input.as_bytes(), key, alg).expect("signing works")
}

/// A token from already-encoded header and payload segments, validly signed.
pub fn mint_segments(header_b64: &str, payload_b64: &str, key: &TestKey) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let signature = sign_input(&input, &key.signing, key.alg);
    format!("{input}.{signature}")
}

/// A token from raw header and payload bytes (any JSON text, even invalid), validly signed.
pub fn mint_raw(header: &[u8], payload: &[u8], key: &TestKey) -> String {
    mint_segments(&b64(header), &b64(payload), key)
}

/// A token with the header `{"alg":<key alg>,"typ":"JWT"}` over a payload text.
pub fn mint(payload: &str, key: &TestKey) -> String {
    let header = format!(r#"{{"alg":"{}","typ":"JWT"}}"#, alg_name(key.alg));
    mint_raw(header.as_bytes(), payload.as_bytes(), key)
}

/// A token with the given header text (signed with `key` regardless of what the header says).
pub fn mint_with_header(header: &str, payload: &str, key: &TestKey) -> String {
    mint_raw(header.as_bytes(), payload.as_bytes(), key)
}

/// Claims that pass `policy()` at `NOW`.
pub fn good_claims() -> serde_json::Value {
    serde_json::json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-1",
        "role": "app_user",
        "iat": NOW - 10,
        "exp": NOW + 600,
    })
}

pub fn good_payload() -> String {
    good_claims().to_string()
}

/// The claims of `good_claims` with one member changed (or removed when `value` is None).
pub fn claims_with(name: &str, value: Option<serde_json::Value>) -> String {
    let mut claims = good_claims();
    let map = claims.as_object_mut().unwrap();
    match value {
        Some(v) => {
            map.insert(name.to_owned(), v);
        }
        None => {
            map.remove(name);
        }
    }
    claims.to_string()
}

/// The policy most tests use: one issuer, one audience, default leeway and lifetime.
pub fn policy() -> Policy {
    Policy {
        issuers: vec![ISSUER.into()],
        audience: vec![AUDIENCE.into()],
        ..Policy::default()
    }
}

/// parse + verify with the default size cap.
pub fn check(token: &str, key: &VerifyingKey, policy: &Policy, now: i64) -> Result<Identity, Rejection> {
    let parsed = parse(token, policy.max_token_bytes)?;
    verify(&parsed, key, policy, now)
}

/// `check` with the process-wide HS256 test key and `policy()` at `NOW`.
pub fn check_hs256(token: &str) -> Result<Identity, Rejection> {
    check(token, &key_for(Algorithm::HS256).verifying(), &policy(), NOW)
}

/// Mints `payload` with HS256 and checks it against `policy` at `now`.
pub fn hs256_claims(payload: &str, policy: &Policy, now: i64) -> Result<Identity, Rejection> {
    let key = key_for(Algorithm::HS256);
    check(&mint(payload, &key), &key.verifying(), policy, now)
}

/// Replaces one character of the token.
pub fn replace_at(token: &str, index: usize, with: char) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    chars[index] = with;
    chars.into_iter().collect()
}

/// The three segments of a compact token.
pub fn segments(token: &str) -> (String, String, String) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    (parts[0].to_owned(), parts[1].to_owned(), parts[2].to_owned())
}

/// The token with its signature replaced by these raw bytes.
pub fn with_signature(token: &str, signature: &[u8]) -> String {
    let (h, p, _) = segments(token);
    format!("{h}.{p}.{}", b64(signature))
}

/// A different base64url character (so the mutation keeps the alphabet).
pub fn other_b64_char(c: char) -> char {
    if c == 'A' {
        'B'
    } else {
        'A'
    }
}
