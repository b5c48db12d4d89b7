//! What a JWKS fetched from an issuer's `jwks_uri` may contribute to the key store.
//!
//! A published document is read like `sync_jwks` reads one, with three differences that come
//! from it arriving unattended over the network:
//! - an RSA key without `alg` is taken as RS256, the algorithm OpenID Connect makes the
//!   default (Entra ID and others publish RSA keys without `alg`);
//! - a shared secret (`kty: oct`) is skipped: a secret published at a URL is not a secret;
//! - a document with no usable verification key is a failed fetch, so an identity provider's
//!   bad day (an empty or broken document) never retires the keys already stored.

use crate::error::KeyError;
use crate::keys::{self, JwkVerdict};
use jsonwebtoken::AlgorithmFamily;

/// Reads a fetched body; `Err` means the fetch failed and nothing may change.
pub fn classify(body: &[u8], issuer: &str) -> Result<Vec<JwkVerdict>, KeyError> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| KeyError::new(format!("the document is not JSON ({e})")))?;
    let verdicts = keys::classify_jwks(&doc, Some(issuer), Some("RS256"))?
        .into_iter()
        .map(|v| match v {
            JwkVerdict::Use(k) if k.key.alg.family() == AlgorithmFamily::Hmac => JwkVerdict::Skip {
                kid: Some(k.kid),
                reason: "a shared secret (kty oct) is never taken from a published document".into(),
            },
            other => other,
        })
        .collect::<Vec<_>>();
    if !verdicts.iter().any(|v| matches!(v, JwkVerdict::Use(_))) {
        return Err(KeyError::new(
            "the document has no usable signature verification key; the stored keys are kept",
        ));
    }
    Ok(verdicts)
}

/// A `jwks_uri` as logs and views may show it: scheme, host, port and path; no user
/// information, query or fragment, which could carry a credential.
pub fn redact_uri(uri: &str) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap_or(("", uri));
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let cut = if end < rest.len() { "?…" } else { "" };
    // Whatever precedes the last '@' is user information, even where a '/' hides in it.
    let rest = &rest[..end];
    let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    format!("{scheme}://{rest}{cut}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    fn rsa(kid: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut k = json!({"kty": "RSA", "kid": kid, "n": N, "e": "AQAB"});
        k.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        k
    }

    fn used(v: &[JwkVerdict]) -> Vec<(String, String)> {
        v.iter()
            .filter_map(|v| match v {
                JwkVerdict::Use(k) => Some((k.kid.clone(), keys::alg_name(k.key.alg).to_owned())),
                JwkVerdict::Skip { .. } => None,
            })
            .collect()
    }

    #[test]
    fn rsa_without_alg_is_rs256() {
        let doc = json!({"keys": [rsa("a", json!({"use": "sig"})), rsa("b", json!({"alg": "PS256"}))]});
        let v = classify(doc.to_string().as_bytes(), "https://idp.test").unwrap();
        assert_eq!(
            used(&v),
            vec![("a".into(), "RS256".into()), ("b".into(), "PS256".into())]
        );
    }

    #[test]
    fn shared_secrets_are_skipped() {
        let doc = json!({"keys": [
            {"kty": "oct", "kid": "s", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
            rsa("a", json!({}))
        ]});
        let v = classify(doc.to_string().as_bytes(), "https://idp.test").unwrap();
        assert_eq!(used(&v), vec![("a".into(), "RS256".into())]);
        assert!(
            matches!(&v[0], JwkVerdict::Skip { kid: Some(k), reason } if k == "s" && reason.contains("shared secret"))
        );
    }

    #[test]
    fn nothing_usable_is_a_failure() {
        for body in [
            json!({"keys": []}).to_string(),
            json!({"keys": [rsa("e", json!({"use": "enc"}))]}).to_string(),
            json!({"keys": [{"kty": "oct", "kid": "s", "alg": "HS256", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}]}).to_string(),
            json!({"kid": "x"}).to_string(),
            "<html>maintenance</html>".to_owned(),
            String::new(),
        ] {
            assert!(classify(body.as_bytes(), "https://idp.test").is_err(), "{body}");
        }
    }

    #[test]
    fn redaction_keeps_only_where_it_points() {
        assert_eq!(
            redact_uri("https://idp.test/.well-known/jwks.json"),
            "https://idp.test/.well-known/jwks.json"
        );
        assert_eq!(
            redact_uri("https://u:pw@idp.test:8443/k?sig=abc#x"),
            "https://idp.test:8443/k?…"
        );
        assert_eq!(redact_uri("https://idp.test?key=1"), "https://idp.test?…");
        assert!(!redact_uri("https://a:b@h/p?q=secret").contains("secret"));
        assert_eq!(redact_uri("https://u:p/w@idp.test/x"), "https://idp.test/x");
    }
}
