//! Compact JWS handling: cheap structural checks first, then the header (needed to find the
//! key), then the signature (OpenSSL for RSA, our ring provider for the rest), and only then the payload.

use crate::claims::{self, Identity};
use crate::error::Rejection;
use crate::json::{parse_strict, JsonError};
use crate::keys::{alg_name, parse_alg, VerifyingKey};
use crate::policy::Policy;
use crate::provider;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};
use std::cell::RefCell;

/// Header parameters we refuse outright: they ask for behaviour we never provide
/// (remote or embedded keys, nested or encrypted tokens, critical extensions).
const FORBIDDEN_HEADERS: &[&str] = &["crit", "cty", "jku", "x5u", "jwk", "x5c", "enc", "zip", "b64"];

/// A structurally valid token whose signature is not yet checked.
pub struct ParsedToken<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub(crate) signing_input: &'a str,
    pub(crate) payload: &'a str,
    pub(crate) signature: &'a str,
    /// The payload as `unverified_issuer` decoded it, taken by `verify`: parsed once.
    decoded_payload: RefCell<Option<Result<Map<String, Value>, Rejection>>>,
}

/// The bytes a compact JWS may hold: base64url's alphabet and the two dots.
const TOKEN_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.';
        b += 1;
    }
    table
};

/// Size, alphabet, segments and header policy. Nothing here trusts the token.
pub fn parse(token: &str, max_bytes: usize) -> Result<ParsedToken<'_>, Rejection> {
    if token.is_empty() {
        return Err(Rejection::Empty);
    }
    if token.len() > max_bytes {
        return Err(Rejection::TooLarge {
            bytes: token.len(),
            max: max_bytes,
            from_profile: false,
        });
    }
    // Without an early exit: one table lookup per byte, whatever the token holds.
    if !token.bytes().fold(true, |ok, b| ok & TOKEN_BYTE[usize::from(b)]) {
        return Err(Rejection::BadCharacters);
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(Rejection::Segments(parts.len()));
    };
    let header_map = decode_object(header, "header")?;
    let (alg, kid) = check_header(&header_map)?;
    let signing_input = &token[..header.len() + 1 + payload.len()];
    Ok(ParsedToken::new(alg, kid, signing_input, payload, signature))
}

/// Algorithm and kid only: the segments and the decoded claims are the token's.
impl std::fmt::Debug for ParsedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedToken")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl<'a> ParsedToken<'a> {
    pub(crate) fn new(
        alg: Algorithm,
        kid: Option<String>,
        signing_input: &'a str,
        payload: &'a str,
        signature: &'a str,
    ) -> Self {
        ParsedToken {
            alg,
            kid,
            signing_input,
            payload,
            signature,
            decoded_payload: RefCell::new(None),
        }
    }

    /// The `iss` of the payload, read before the signature is checked, only to choose the key
    /// and the issuer's profile; the verified claims are checked against both afterwards. A
    /// payload that does not read gives None here and its own refusal after the signature.
    pub fn unverified_issuer(&self) -> Option<String> {
        let decoded = decode_object(self.payload, "payload");
        let iss = decoded
            .as_ref()
            .ok()
            .and_then(|m| m.get("iss"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.decoded_payload.replace(Some(decoded));
        iss
    }

    /// The payload's claims: the copy `unverified_issuer` decoded, or decoded now.
    fn take_payload(&self) -> Result<Map<String, Value>, Rejection> {
        self.decoded_payload
            .take()
            .unwrap_or_else(|| decode_object(self.payload, "payload"))
    }

    /// The token's length in bytes.
    pub fn byte_len(&self) -> usize {
        self.signing_input.len() + 1 + self.signature.len()
    }
}

pub(crate) fn decode_object(segment: &str, part: &'static str) -> Result<Map<String, Value>, Rejection> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Rejection::BadEncoding(part))?;
    match parse_strict(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(Rejection::NotAnObject(part)),
        Err(JsonError::Duplicate) => Err(Rejection::DuplicateKey(part)),
        Err(JsonError::Invalid) => Err(Rejection::BadJson(part)),
        Err(JsonError::TooDeep) => Err(Rejection::TooDeep {
            part,
            max: crate::json::MAX_DEPTH,
        }),
    }
}

pub(crate) fn check_header(header: &Map<String, Value>) -> Result<(Algorithm, Option<String>), Rejection> {
    if let Some(name) = FORBIDDEN_HEADERS.iter().find(|h| header.contains_key(**h)) {
        return Err(Rejection::ForbiddenHeader((*name).to_owned()));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .and_then(parse_alg)
        .ok_or(Rejection::BadAlgorithm)?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) if crate::keys::check_kid(k).is_ok() => Some(k.clone()),
        Some(_) => {
            return Err(Rejection::BadHeader(
                "kid must be a string of 1 to 256 printable characters",
            ))
        }
    };
    match header.get("typ") {
        None => {}
        Some(Value::String(t)) if typ_accepted(t) => {}
        Some(_) => return Err(Rejection::BadHeader("typ is not JWT or at+jwt")),
    }
    Ok((alg, kid))
}

// RFC 7515 §4.1.9 media types compare case-insensitively, with an optional "application/".
fn typ_accepted(typ: &str) -> bool {
    let t = typ.to_ascii_lowercase();
    let t = t.strip_prefix("application/").unwrap_or(&t);
    t == "jwt" || t == "at+jwt"
}

/// Verifies the signature with `key` (whose algorithm must equal the token's), then the claims.
pub fn verify(parsed: &ParsedToken<'_>, key: &VerifyingKey, policy: &Policy, now: i64) -> Result<Identity, Rejection> {
    check_algorithm(parsed, key)?;
    check_signature(parsed, key)?;
    let claims = parsed.take_payload()?;
    claims::check(claims, key.issuer.as_deref(), parsed.kid.as_deref(), policy, now)
}

/// The token's algorithm must be the one the key is pinned to.
pub fn check_algorithm(parsed: &ParsedToken<'_>, key: &VerifyingKey) -> Result<(), Rejection> {
    if parsed.alg != key.alg {
        return Err(Rejection::AlgorithmMismatch {
            token: alg_name(parsed.alg).into(),
            key: alg_name(key.alg).into(),
        });
    }
    Ok(())
}

/// The signature alone, with the key's algorithm (callers check the algorithm first).
pub fn check_signature(parsed: &ParsedToken<'_>, key: &VerifyingKey) -> Result<(), Rejection> {
    let Ok(signature) = URL_SAFE_NO_PAD.decode(parsed.signature) else {
        return Err(Rejection::BadEncoding("signature"));
    };
    let ok = match &key.rsa {
        Some(rsa) => rsa.verify(parsed.signing_input.as_bytes(), &signature),
        None => provider::verify_signature(key.alg, &key.decoding, parsed.signing_input.as_bytes(), &signature),
    };
    if ok {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}
