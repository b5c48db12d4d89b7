//! Key parsing and registration rules.
//!
//! A key is registered with exactly one algorithm and refused when it is weak or does not
//! fit that algorithm (docs/threat-model.md §1.5 items 1, 6, 7; A14, A15, A20).

use crate::error::KeyError;
use crate::provider;
use crate::rsa::RsaKey;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::EllipticCurve;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind};
use ring::digest;
use serde_json::Value;
use std::collections::HashSet;

/// How the key text of a stored key is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFormat {
    /// PEM for public-key algorithms, the raw secret text for HS*.
    Text,
    /// One JWK object as JSON text.
    Jwk,
}

impl KeyFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyFormat::Text => "text",
            KeyFormat::Jwk => "jwk",
        }
    }
    pub fn parse(s: &str) -> Result<Self, KeyError> {
        match s {
            "text" => Ok(KeyFormat::Text),
            "jwk" => Ok(KeyFormat::Jwk),
            _ => Err(KeyError::new("unknown key format")),
        }
    }
}

/// A key ready to verify signatures of one algorithm.
#[derive(Clone)]
pub struct VerifyingKey {
    pub alg: Algorithm,
    pub issuer: Option<String>,
    pub(crate) decoding: DecodingKey,
    /// RSA keys, parsed once for OpenSSL (see `rsa`).
    pub(crate) rsa: Option<RsaKey>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({:?}, [redacted])", self.alg)
    }
}

/// A key from a JWKS, with what the store needs to keep it.
#[derive(Debug, Clone)]
pub struct ImportedKey {
    pub kid: String,
    pub key: VerifyingKey,
    /// The JWK re-serialized: what the store keeps as key text.
    pub jwk_text: String,
}

/// The algorithm names we accept, exact and case-sensitive.
pub fn parse_alg(name: &str) -> Option<Algorithm> {
    Some(match name {
        "HS256" => Algorithm::HS256,
        "HS384" => Algorithm::HS384,
        "HS512" => Algorithm::HS512,
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        // RFC 9864 names the Ed25519 instance of EdDSA "Ed25519"; both verify the same way.
        "EdDSA" | "Ed25519" => Algorithm::EdDSA,
        _ => return None,
    })
}

pub fn alg_name(alg: Algorithm) -> &'static str {
    #[allow(unreachable_patterns)]
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

fn require_alg(name: &str) -> Result<Algorithm, KeyError> {
    if name == "ES512" {
        return Err(KeyError::new(
            "ES512 (ECDSA on P-521) is not supported: the ring crypto library used for verification cannot verify it",
        ));
    }
    parse_alg(name).ok_or_else(|| {
        KeyError::new(format!(
            "unsupported algorithm \"{}\": use HS256/384/512, RS256/384/512, PS256/384/512, ES256, ES384, EdDSA or Ed25519",
            crate::error::printable(name)
        ))
    })
}

/// Shortest HMAC secret for an algorithm (RFC 7518 §3.2: at least the hash size).
pub fn min_hmac_bytes(alg: Algorithm) -> usize {
    match alg {
        Algorithm::HS384 => 48,
        Algorithm::HS512 => 64,
        _ => 32,
    }
}

const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

impl VerifyingKey {
    /// From `add_key`: a PEM public key (SPKI, PKCS#1 or certificate) or an HMAC secret.
    pub fn from_text(alg: &str, text: &str, issuer: Option<&str>) -> Result<Self, KeyError> {
        let alg = require_alg(alg)?;
        let decoding = match alg.family() {
            AlgorithmFamily::Hmac => hmac_secret(alg, text.as_bytes())?,
            family => {
                refuse_private_pem(text)?;
                pem_key(alg, family, text)?
            }
        };
        Self::new(alg, decoding, issuer)
    }

    /// Rebuilds a stored key.
    pub fn load(alg: &str, format: KeyFormat, text: &str, issuer: Option<&str>) -> Result<Self, KeyError> {
        match format {
            KeyFormat::Text => Self::from_text(alg, text, issuer),
            KeyFormat::Jwk => {
                let jwk: Value = serde_json::from_str(text).map_err(|_| KeyError::new("stored JWK is not JSON"))?;
                // As sync_jwks read it: the stored algorithm stands in for a missing alg, the
                // thumbprint for a missing kid.
                let imported = read_jwk(&jwk, issuer, Some(require_alg(alg)?), true)?;
                if alg_name(imported.key.alg) != alg {
                    return Err(KeyError::new("stored JWK does not match its algorithm"));
                }
                Ok(imported.key)
            }
        }
    }

    fn new(alg: Algorithm, decoding: DecodingKey, issuer: Option<&str>) -> Result<Self, KeyError> {
        let issuer = match issuer {
            Some(i) if i.is_empty() || i.contains('\0') => {
                return Err(KeyError::new("issuer must be a non-empty string without NUL"))
            }
            other => other.map(str::to_owned),
        };
        let rsa = match alg.family() {
            AlgorithmFamily::Rsa => Some(rsa_key(alg, &decoding)?),
            _ => None,
        };
        Ok(VerifyingKey {
            alg,
            issuer,
            decoding,
            rsa,
        })
    }

    /// A short, non-reversible identifier of the key material for the keys view.
    /// RSA keys hash (n, e) whichever form they came in, so PEM and JWK agree.
    pub fn fingerprint(&self) -> String {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(alg_name(self.alg).as_bytes());
        let components = match self.decoding.kind() {
            DecodingKeyKind::RsaModulusExponent { n, e } => Some((n.clone(), e.clone())),
            DecodingKeyKind::SecretOrDer(b) if self.alg.family() == AlgorithmFamily::Rsa => rsa_components_of_der(b),
            DecodingKeyKind::SecretOrDer(_) => None,
        };
        match (components, self.decoding.kind()) {
            (Some((n, e)), _) => {
                ctx.update(strip_zeros(&n));
                ctx.update(b".");
                ctx.update(strip_zeros(&e));
            }
            (None, DecodingKeyKind::SecretOrDer(b)) => ctx.update(b),
            (None, DecodingKeyKind::RsaModulusExponent { .. }) => {}
        }
        let hex: String = ctx.finish().as_ref()[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

fn hmac_secret(alg: Algorithm, secret: &[u8]) -> Result<DecodingKey, KeyError> {
    let min = min_hmac_bytes(alg);
    if secret.len() < min {
        return Err(KeyError::new(format!(
            "{} secret is {} bytes; at least {min} are required",
            alg_name(alg),
            secret.len()
        )));
    }
    // Trimmed: a pasted PEM with a leading blank line or indentation is still a PEM.
    if secret.trim_ascii_start().starts_with(b"-----BEGIN") {
        return Err(KeyError::new(format!(
            "a PEM key cannot be an {} secret (algorithm confusion)",
            alg_name(alg)
        )));
    }
    Ok(DecodingKey::from_secret(secret))
}

fn refuse_private_pem(text: &str) -> Result<(), KeyError> {
    if text.contains("PRIVATE KEY") {
        return Err(KeyError::new("this is a private key: register the public key only"));
    }
    Ok(())
}

fn pem_key(alg: Algorithm, family: AlgorithmFamily, text: &str) -> Result<DecodingKey, KeyError> {
    let bad = |what: &str| {
        KeyError::new(format!(
            "key is not a valid {what} PEM public key for {}",
            alg_name(alg)
        ))
    };
    match family {
        AlgorithmFamily::Rsa => {
            let key = DecodingKey::from_rsa_pem(text.as_bytes()).map_err(|_| bad("RSA"))?;
            let der = key.try_get_as_bytes().map_err(|_| bad("RSA"))?;
            check_rsa_der(der)?;
            Ok(key)
        }
        AlgorithmFamily::Ec => {
            let key = DecodingKey::from_ec_pem(text.as_bytes()).map_err(|_| bad("EC"))?;
            check_ec_point(alg, key.try_get_as_bytes().map_err(|_| bad("EC"))?)?;
            Ok(key)
        }
        AlgorithmFamily::Ed => {
            let key = DecodingKey::from_ed_pem(text.as_bytes()).map_err(|_| bad("Ed25519"))?;
            check_ed_point(key.try_get_as_bytes().map_err(|_| bad("Ed25519"))?)?;
            Ok(key)
        }
        AlgorithmFamily::Hmac => Err(bad("HMAC")),
    }
}

/// The OpenSSL form of an RSA key whose components were checked when it was read.
fn rsa_key(alg: Algorithm, decoding: &DecodingKey) -> Result<RsaKey, KeyError> {
    let components = match decoding.kind() {
        DecodingKeyKind::RsaModulusExponent { n, e } => Some((n.clone(), e.clone())),
        DecodingKeyKind::SecretOrDer(der) => rsa_components_of_der(der),
    };
    components
        .and_then(|(n, e)| RsaKey::new(alg, &n, &e))
        .ok_or_else(|| KeyError::new("RSA public key could not be read"))
}

/// PKCS#1 RSAPublicKey: SEQUENCE { n INTEGER, e INTEGER }.
fn check_rsa_der(der: &[u8]) -> Result<(), KeyError> {
    let (n, e) =
        rsa_components_of_der(der).ok_or_else(|| KeyError::new("RSA public key is not a valid PKCS#1 structure"))?;
    check_rsa_components(&n, &e)
}

fn rsa_components_of_der(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    use simple_asn1::ASN1Block;
    let blocks = simple_asn1::from_der(der).ok()?;
    let [ASN1Block::Sequence(_, items)] = blocks.as_slice() else {
        return None;
    };
    let [ASN1Block::Integer(_, n), ASN1Block::Integer(_, e)] = items.as_slice() else {
        return None;
    };
    let (n, e) = (n.to_signed_bytes_be(), e.to_signed_bytes_be());
    // A modulus or exponent is a positive INTEGER: a negative one is a malformed key, never
    // read as the unsigned number its bytes would spell.
    let negative = |b: &[u8]| b.first().is_some_and(|first| first & 0x80 != 0);
    (!negative(&n) && !negative(&e)).then_some((n, e))
}

fn check_rsa_components(n: &[u8], e: &[u8]) -> Result<(), KeyError> {
    let bits = bit_length(strip_zeros(n));
    if bits < MIN_RSA_BITS {
        return Err(KeyError::new(format!(
            "RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
        )));
    }
    if bits > MAX_RSA_BITS {
        return Err(KeyError::new(format!(
            "RSA key has {bits} bits; at most {MAX_RSA_BITS} are supported"
        )));
    }
    let e = strip_zeros(e);
    if e.is_empty() || e.len() > 4 || e[e.len() - 1] & 1 == 0 || (e.len() == 1 && e[0] < 3) {
        return Err(KeyError::new("RSA public exponent is not acceptable"));
    }
    Ok(())
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    &b[start..]
}

fn bit_length(b: &[u8]) -> usize {
    match b.first() {
        None => 0,
        Some(first) => (b.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
    }
}

fn check_ec_point(alg: Algorithm, point: &[u8]) -> Result<(), KeyError> {
    let want = if alg == Algorithm::ES256 {
        EllipticCurve::P256
    } else {
        EllipticCurve::P384
    };
    match provider::ec_curve_of_point(point) {
        Some(curve) if curve == want => {}
        Some(_) => return Err(KeyError::new(format!("EC key curve does not match {}", alg_name(alg)))),
        None => return Err(KeyError::new("EC key is not an uncompressed P-256 or P-384 point")),
    }
    if !provider::ec_point_is_valid(point) {
        return Err(KeyError::new("EC public key is not a valid point on its curve"));
    }
    Ok(())
}

fn check_ed_point(point: &[u8]) -> Result<(), KeyError> {
    if point.len() != 32 {
        return Err(KeyError::new("Ed25519 public key must be 32 bytes"));
    }
    Ok(())
}

/// Reads a JWKS (`{"keys":[...]}`); every key must be usable, kids unique.
pub fn import_jwks(jwks: &Value, issuer: Option<&str>) -> Result<Vec<ImportedKey>, KeyError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| KeyError::new("JWKS must be an object with a \"keys\" array"))?;
    if keys.is_empty() {
        return Err(KeyError::new("JWKS has no keys"));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(keys.len());
    for (i, jwk) in keys.iter().enumerate() {
        let key = import_jwk(jwk, issuer).map_err(|e| KeyError::new(format!("JWKS key {i}: {e}")))?;
        if !seen.insert(key.kid.clone()) {
            return Err(KeyError::new(format!(
                "JWKS has the kid \"{}\" more than once",
                crate::error::printable(&key.kid)
            )));
        }
        out.push(key);
    }
    Ok(out)
}

fn str_member<'a>(jwk: &'a Value, name: &str) -> Result<Option<&'a str>, KeyError> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(KeyError::new(format!("JWK member \"{name}\" must be a string"))),
    }
}

fn b64_member(jwk: &Value, name: &str) -> Result<Vec<u8>, KeyError> {
    let text = str_member(jwk, name)?.ok_or_else(|| KeyError::new(format!("JWK member \"{name}\" is missing")))?;
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| KeyError::new(format!("JWK member \"{name}\" is not base64url")))
}

/// What `sync_jwks` does with one member of a JWKS document.
#[derive(Debug)]
pub enum JwkVerdict {
    /// A usable verification key.
    Use(ImportedKey),
    /// Not for verifying signatures, or unusable: the kid if it has one, and why.
    Skip { kid: Option<String>, reason: String },
}

/// Reads a JWKS as identity providers publish it: every member is either a usable key or
/// skipped with a reason (an encryption key, a key without `alg` that nothing implies, a weak
/// key, a repeated kid), never failing the document. Keys without `alg` take it from the curve
/// (EC, OKP) or from `default_alg` (RSA, oct). A key without `kid` gets its RFC 7638 thumbprint.
/// Only a document that is not `{"keys": [...]}` is an error.
pub fn classify_jwks(
    jwks: &Value,
    issuer: Option<&str>,
    default_alg: Option<&str>,
) -> Result<Vec<JwkVerdict>, KeyError> {
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| KeyError::new("JWKS must be an object with a \"keys\" array"))?;
    let default_alg = default_alg.map(require_alg).transpose()?;
    let mut seen = HashSet::new();
    Ok(keys
        .iter()
        .map(|jwk| {
            let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
            match read_jwk(jwk, issuer, default_alg, true) {
                Ok(key) if !seen.insert(key.kid.clone()) => JwkVerdict::Skip {
                    kid: Some(key.kid),
                    reason: "the kid appears more than once in the document".into(),
                },
                Ok(key) => JwkVerdict::Use(key),
                Err(e) => JwkVerdict::Skip {
                    kid,
                    reason: e.to_string(),
                },
            }
        })
        .collect())
}

/// RFC 7638 thumbprint of a public JWK: SHA-256 over its required members, base64url.
pub fn jwk_thumbprint(jwk: &Value) -> Result<String, KeyError> {
    let kty = str_member(jwk, "kty")?.ok_or_else(|| KeyError::new("JWK has no kty"))?;
    let members: &[&str] = match kty {
        "EC" => &["crv", "kty", "x", "y"],
        "RSA" => &["e", "kty", "n"],
        "OKP" => &["crv", "kty", "x"],
        "oct" => &["k", "kty"],
        _ => return Err(KeyError::new("JWK kty is not EC, RSA, OKP or oct")),
    };
    let mut canonical = serde_json::Map::new();
    for m in members {
        let v = str_member(jwk, m)?.ok_or_else(|| KeyError::new(format!("JWK member \"{m}\" is missing")))?;
        canonical.insert((*m).to_owned(), Value::String(v.to_owned()));
    }
    // serde_json's map keeps keys sorted, which is the order RFC 7638 asks for.
    let text = serde_json::to_string(&Value::Object(canonical)).map_err(|_| KeyError::new("JWK cannot be stored"))?;
    Ok(URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, text.as_bytes())))
}

/// One JWK: honours `kid`, `alg`, `use`, `key_ops`; refuses private members.
pub fn import_jwk(jwk: &Value, issuer: Option<&str>) -> Result<ImportedKey, KeyError> {
    read_jwk(jwk, issuer, None, false)
}

fn read_jwk(
    jwk: &Value,
    issuer: Option<&str>,
    default_alg: Option<Algorithm>,
    thumbprint_kid: bool,
) -> Result<ImportedKey, KeyError> {
    if !jwk.is_object() {
        return Err(KeyError::new("JWK must be a JSON object"));
    }
    let kid = match str_member(jwk, "kid")? {
        Some(k) => k.to_owned(),
        None if thumbprint_kid => jwk_thumbprint(jwk)?,
        None => return Err(KeyError::new("JWK has no kid")),
    };
    check_kid(&kid)?;
    if let Some(u) = str_member(jwk, "use")? {
        if u != "sig" {
            return Err(KeyError::new("JWK \"use\" is not \"sig\""));
        }
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ok = ops.as_array().is_some_and(|a| a.iter().any(|o| o == "verify"));
        if !ok {
            return Err(KeyError::new("JWK \"key_ops\" does not include \"verify\""));
        }
    }
    let kty = str_member(jwk, "kty")?.ok_or_else(|| KeyError::new("JWK has no kty"))?;
    if kty != "oct" && ["d", "p", "q", "dp", "dq", "qi"].iter().any(|m| jwk.get(m).is_some()) {
        return Err(KeyError::new(
            "JWK carries private key members: publish the public key only",
        ));
    }
    let crv = str_member(jwk, "crv")?;
    let alg = match (str_member(jwk, "alg")?, default_alg) {
        (Some(a), _) => require_alg(a)?,
        (None, Some(d)) if matches!(kty, "RSA" | "oct") => d,
        (None, _) => implied_alg(kty, crv)?,
    };
    let decoding = match (kty, alg.family()) {
        ("oct", AlgorithmFamily::Hmac) => hmac_secret(alg, &b64_member(jwk, "k")?)?,
        ("RSA", AlgorithmFamily::Rsa) => {
            let (n, e) = (b64_member(jwk, "n")?, b64_member(jwk, "e")?);
            check_rsa_components(&n, &e)?;
            DecodingKey::from_rsa_raw_components(&n, &e)
        }
        ("EC", AlgorithmFamily::Ec) => {
            let want = if alg == Algorithm::ES256 { "P-256" } else { "P-384" };
            if crv != Some(want) {
                return Err(KeyError::new(format!("JWK crv does not match {}", alg_name(alg))));
            }
            let (x, y) = (b64_member(jwk, "x")?, b64_member(jwk, "y")?);
            // RFC 7518 §6.2.1.2: each coordinate is full length; a 31/33 split is not a JWK.
            if x.len() != y.len() {
                return Err(KeyError::new("JWK EC coordinates x and y differ in length"));
            }
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            check_ec_point(alg, &point)?;
            DecodingKey::from_ec_der(&point)
        }
        ("OKP", AlgorithmFamily::Ed) => {
            if crv != Some("Ed25519") {
                return Err(KeyError::new("JWK OKP key must use crv Ed25519"));
            }
            let x = b64_member(jwk, "x")?;
            check_ed_point(&x)?;
            DecodingKey::from_ed_der(&x)
        }
        _ => return Err(KeyError::new(format!("JWK kty does not match {}", alg_name(alg)))),
    };
    let key = VerifyingKey::new(alg, decoding, issuer)?;
    let jwk_text = serde_json::to_string(jwk).map_err(|_| KeyError::new("JWK cannot be stored"))?;
    Ok(ImportedKey { kid, key, jwk_text })
}

fn implied_alg(kty: &str, crv: Option<&str>) -> Result<Algorithm, KeyError> {
    match (kty, crv) {
        ("EC", Some("P-256")) => Ok(Algorithm::ES256),
        ("EC", Some("P-384")) => Ok(Algorithm::ES384),
        ("OKP", Some("Ed25519")) => Ok(Algorithm::EdDSA),
        _ => Err(KeyError::new(
            "JWK has no alg and its kty/crv do not imply one (RSA and oct keys need alg or default_alg)",
        )),
    }
}

/// A kid is an exact lookup key: non-empty, printable, bounded.
pub fn check_kid(kid: &str) -> Result<(), KeyError> {
    if kid.is_empty() || kid.len() > 256 || kid.chars().any(char::is_control) {
        return Err(KeyError::new("kid must be 1 to 256 bytes with no control characters"));
    }
    Ok(())
}
