//! The revocation list as verification reads it: revoked jtis and revoked subjects.
//!
//! Lookups are O(1). A jti is kept as the first 16 bytes of its SHA-256, so 100,000 entries
//! take a few megabytes per backend whatever the jtis' length; two different jtis share a
//! digest with negligible probability, and then a token is refused, never accepted.

use crate::error::{Rejection, Revocation};
use ring::digest;
use std::collections::{HashMap, HashSet};

#[derive(Default, Debug)]
pub struct RevocationList {
    tokens: HashSet<[u8; 16]>,
    /// sub → (issuer or any, tokens issued before this instant in microseconds are revoked).
    subjects: HashMap<String, Vec<(Option<String>, i64)>>,
}

/// What replay protection remembers of a token: 16 bytes of SHA-256 over issuer, NUL, jti.
pub fn replay_digest(iss: &str, jti: &str) -> [u8; 16] {
    let mut input = Vec::with_capacity(iss.len() + 1 + jti.len());
    input.extend_from_slice(iss.as_bytes());
    input.push(0);
    input.extend_from_slice(jti.as_bytes());
    digest16_bytes(&input)
}

fn digest16(jti: &str) -> [u8; 16] {
    digest16_bytes(jti.as_bytes())
}

fn digest16_bytes(bytes: &[u8]) -> [u8; 16] {
    let d = digest::digest(&digest::SHA256, bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.as_ref()[..16]);
    out
}

impl RevocationList {
    pub fn revoke_token(&mut self, jti: &str) {
        self.tokens.insert(digest16(jti));
    }

    /// A jti given by its digest: the first 16 bytes of SHA-256 over its UTF-8 bytes.
    pub fn revoke_token_digest(&mut self, digest: [u8; 16]) {
        self.tokens.insert(digest);
    }

    /// `issued_before_us`: microseconds since the epoch; `iss` None applies to every issuer.
    pub fn revoke_subject(&mut self, sub: &str, iss: Option<String>, issued_before_us: i64) {
        self.subjects
            .entry(sub.to_owned())
            .or_default()
            .push((iss, issued_before_us));
    }

    /// Forgets every subject revocation (they are read again as a whole).
    pub fn clear_subjects(&mut self) {
        self.subjects.clear();
    }

    pub fn len(&self) -> usize {
        self.tokens.len() + self.subjects.values().map(Vec::len).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses a token whose jti is revoked, or whose subject is revoked for its issuer and it
    /// was issued before the revocation's instant (a token without `iat` always is).
    pub fn check(
        &self,
        jti: Option<&str>,
        sub: Option<&str>,
        iss: Option<&str>,
        iat: Option<i64>,
    ) -> Result<(), Rejection> {
        if let Some(j) = jti {
            if !self.tokens.is_empty() && self.tokens.contains(&digest16(j)) {
                return Err(Rejection::Revoked(Revocation::Token));
            }
        }
        let Some(entries) = sub.and_then(|s| self.subjects.get(s)) else {
            return Ok(());
        };
        for (rev_iss, before_us) in entries {
            let issuer_matches = rev_iss.is_none() || rev_iss.as_deref() == iss;
            let issued_before = iat.is_none_or(|t| t.saturating_mul(1_000_000) < *before_us);
            if issuer_matches && issued_before {
                return Err(Rejection::Revoked(Revocation::Subject {
                    issued_before: before_us.div_euclid(1_000_000),
                }));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: i64 = 1_800_000_000;

    #[test]
    fn a_digest_revokes_like_the_jti() {
        let mut l = RevocationList::default();
        // SHA-256("abc") begins ba7816bf8f01cfea414140de5dae2223.
        l.revoke_token_digest([
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
        ]);
        assert!(l.check(Some("abc"), None, None, Some(T)).is_err());
        assert!(l.check(Some("abd"), None, None, Some(T)).is_ok());
    }

    #[test]
    fn revoked_jti_is_refused_others_pass() {
        let mut l = RevocationList::default();
        l.revoke_token("abc");
        assert!(matches!(
            l.check(Some("abc"), None, None, Some(T)),
            Err(Rejection::Revoked(Revocation::Token))
        ));
        assert!(l.check(Some("abd"), None, None, Some(T)).is_ok());
        assert!(l.check(None, None, None, Some(T)).is_ok());
    }

    #[test]
    fn subject_revocation_honours_iat_and_issuer() {
        let mut l = RevocationList::default();
        l.revoke_subject("u1", Some("https://a/".into()), T * 1_000_000 + 500_000);
        l.revoke_subject("u2", None, T * 1_000_000);
        let a = Some("https://a/");
        assert!(
            l.check(None, Some("u1"), a, Some(T)).is_err(),
            "same second, before the instant"
        );
        assert!(l.check(None, Some("u1"), a, Some(T + 1)).is_ok(), "issued after");
        assert!(l.check(None, Some("u1"), a, None).is_err(), "no iat");
        assert!(
            l.check(None, Some("u1"), Some("https://b/"), Some(T - 10)).is_ok(),
            "other issuer"
        );
        assert!(
            l.check(None, Some("u2"), Some("https://b/"), Some(T - 1)).is_err(),
            "any issuer"
        );
        assert!(
            l.check(None, Some("u2"), a, Some(T)).is_ok(),
            "iat equal to the instant is not before it"
        );
        assert!(l.check(None, Some("u3"), a, None).is_ok());
        assert_eq!(l.len(), 2);
    }
}
