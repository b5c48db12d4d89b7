//! Typed errors. Messages never contain the token, key material or raw claim text;
//! attacker-chosen strings that are worth naming (kid, role) pass through `printable`.

use std::fmt;

/// Why a token was refused. Maps to SQLSTATE 28000 at the SQL boundary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Null,
    Empty,
    /// `from_profile`: the limit is an issuer profile's `max_token_bytes`, not the setting's.
    TooLarge {
        bytes: usize,
        max: usize,
        from_profile: bool,
    },
    BadCharacters,
    Segments(usize),
    BadEncoding(&'static str),
    BadJson(&'static str),
    DuplicateKey(&'static str),
    TooDeep {
        part: &'static str,
        max: usize,
    },
    NotAnObject(&'static str),
    BadAlgorithm,
    ForbiddenHeader(String),
    BadHeader(&'static str),
    UnknownKid(String),
    NoKid,
    AlgorithmMismatch {
        token: String,
        key: String,
    },
    KeyRetired(String),
    BadSignature,
    BadClaimType(String),
    MissingClaim(&'static str),
    Expired {
        exp: i64,
        now: i64,
    },
    NotYetValid {
        nbf: i64,
    },
    IssuedInFuture {
        iat: i64,
    },
    LifetimeTooLong {
        seconds: i64,
        max: u64,
        from_profile: bool,
    },
    NoIssuerConfigured,
    IssuerNotAccepted {
        token: String,
        accepted: Vec<String>,
    },
    AudienceNotAccepted {
        token: Vec<String>,
        accepted: Vec<String>,
        from_profile: bool,
    },
    AudienceUnexpected,
    NulInString,
    BadPermission(String),
    /// On the revocation list: its jti, or its subject for tokens issued before a time.
    Revoked(Revocation),
    /// Its issuer accepts each jti once, and this one cannot be accepted (again).
    Replay(ReplayRefusal),
}

/// Why replay protection refused a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayRefusal {
    /// The jti was accepted before.
    Replayed,
    /// The token has no jti.
    NoJti,
    /// A standby cannot record the jti.
    Standby,
    /// Too many jtis wait to be recorded.
    Full,
}

/// What revoked a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    Token,
    Subject { issued_before: i64 },
}

impl Rejection {
    /// A stable, machine-readable reason for logs and audit lines.
    pub fn code(&self) -> &'static str {
        use Rejection::*;
        match self {
            Null => "null",
            Empty => "empty",
            TooLarge { .. } => "too_large",
            BadCharacters => "bad_characters",
            Segments(_) => "segments",
            BadEncoding(_) => "bad_encoding",
            BadJson(_) => "bad_json",
            DuplicateKey(_) => "duplicate_member",
            TooDeep { .. } => "too_deep",
            NotAnObject(_) => "not_an_object",
            BadAlgorithm => "bad_alg",
            ForbiddenHeader(_) => "forbidden_header",
            BadHeader(_) => "bad_header",
            UnknownKid(_) => "unknown_kid",
            NoKid => "no_kid",
            AlgorithmMismatch { .. } => "alg_mismatch",
            KeyRetired(_) => "key_retired",
            BadSignature => "bad_signature",
            BadClaimType(_) => "bad_claim_type",
            MissingClaim(_) => "missing_claim",
            Expired { .. } => "expired",
            NotYetValid { .. } => "not_yet_valid",
            IssuedInFuture { .. } => "issued_in_future",
            LifetimeTooLong { .. } => "lifetime_too_long",
            NoIssuerConfigured => "no_issuer_configured",
            IssuerNotAccepted { .. } => "issuer_not_accepted",
            AudienceNotAccepted { .. } => "audience_not_accepted",
            AudienceUnexpected => "audience_unexpected",
            NulInString => "nul_in_string",
            BadPermission(_) => "bad_permission",
            Revoked(_) => "revoked",
            Replay(ReplayRefusal::Replayed) => "replayed",
            Replay(ReplayRefusal::NoJti) => "replay_no_jti",
            Replay(ReplayRefusal::Standby) => "replay_standby",
            Replay(ReplayRefusal::Full) => "replay_full",
        }
    }
}

/// Up to eight values, each printable and quoted, for a message.
fn quoted_list(values: &[String]) -> String {
    if values.is_empty() {
        return "none".into();
    }
    let mut out: Vec<String> = values.iter().take(8).map(|v| format!("\"{}\"", printable(v))).collect();
    if values.len() > 8 {
        out.push(format!("and {} more", values.len() - 8));
    }
    out.join(", ")
}

/// Where a limit in a refusal comes from: the setting, or an issuer profile's own value.
fn limit_name(limit: &str, profile: &str, from_profile: bool) -> String {
    if from_profile {
        format!("the {limit} of {profile}")
    } else {
        format!("pg_jwt_guard.{limit}")
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Rejection::*;
        match self {
            Null => write!(f, "token is NULL"),
            Empty => write!(f, "token is empty"),
            TooLarge { bytes, max, from_profile } => write!(
                f,
                "token is {bytes} bytes, more than {} ({max})",
                limit_name("max_token_bytes", "an issuer profile", *from_profile)
            ),
            BadCharacters => write!(
                f,
                "token contains characters outside base64url and '.' (no 'Bearer ' prefix or whitespace)"
            ),
            Segments(n) => write!(f, "token has {n} segments, a signed JWT has exactly 3"),
            BadEncoding(part) => write!(f, "token {part} is not canonical unpadded base64url"),
            BadJson(part) => write!(f, "token {part} is not valid JSON"),
            DuplicateKey(part) => write!(f, "token {part} has a duplicate member name"),
            TooDeep { part, max } => write!(f, "token {part} is nested deeper than {max} levels"),
            NotAnObject(part) => write!(f, "token {part} is not a JSON object"),
            BadAlgorithm => write!(f, "token header has a missing or unsupported alg"),
            ForbiddenHeader(name) => write!(f, "token header parameter \"{}\" is not accepted", printable(name)),
            BadHeader(what) => write!(f, "token header {what}"),
            UnknownKid(kid) => write!(f, "unknown kid \"{}\"", printable(kid)),
            NoKid => write!(
                f,
                "token has no kid and there is not exactly one active key for its algorithm"
            ),
            AlgorithmMismatch { token, key } => {
                write!(f, "token alg {token} does not match the key's algorithm {key}")
            }
            KeyRetired(kid) => write!(f, "key \"{}\" is retired", printable(kid)),
            BadSignature => write!(f, "token signature does not verify"),
            BadClaimType(name) => write!(f, "claim \"{}\" has the wrong type", printable(name)),
            MissingClaim(name) => write!(f, "required claim \"{name}\" is missing"),
            Expired { exp, .. } => write!(f, "token expired at {} (exp {exp})", iso8601(*exp)),
            NotYetValid { nbf } => write!(f, "token not valid before {} (nbf {nbf})", iso8601(*nbf)),
            IssuedInFuture { iat } => write!(f, "token issued in the future at {} (iat {iat})", iso8601(*iat)),
            LifetimeTooLong { seconds, max, from_profile } => write!(
                f,
                "token lifetime of {seconds} s exceeds {} ({max} s)",
                limit_name("max_lifetime", "the issuer's profile", *from_profile)
            ),
            NoIssuerConfigured => write!(
                f,
                "no issuer is configured: set pg_jwt_guard.issuers or register the key with an issuer"
            ),
            IssuerNotAccepted { token, accepted } => write!(
                f,
                "issuer (iss) \"{}\" is not accepted for this key (accepted: {})",
                printable(token),
                quoted_list(accepted)
            ),
            AudienceNotAccepted { token, accepted, from_profile } => write!(
                f,
                "audience (aud) {} does not include {} (accepted: {})",
                quoted_list(token),
                limit_name("audience", "the issuer's profile", *from_profile),
                quoted_list(accepted)
            ),
            AudienceUnexpected => write!(
                f,
                "token has an audience (aud) but no audience is accepted (pg_jwt_guard.audience, or the audience of the issuer's profile, is empty)"
            ),
            NulInString => write!(f, "token contains a NUL character in a string"),
            BadPermission(why) => f.write_str(why),
            Replay(ReplayRefusal::Replayed) => write!(
                f,
                "replayed: its issuer accepts each jti once, and this one was accepted before"
            ),
            Replay(ReplayRefusal::NoJti) => write!(f, "its issuer accepts each jti once, and the token has no jti"),
            Replay(ReplayRefusal::Standby) => write!(
                f,
                "its issuer accepts each jti once, which a standby cannot record: send it to the primary"
            ),
            Replay(ReplayRefusal::Full) => write!(
                f,
                "its issuer accepts each jti once, and too many jtis wait to be recorded; retry shortly"
            ),
            Revoked(Revocation::Token) => write!(f, "revoked: its jti is on the revocation list"),
            Revoked(Revocation::Subject { issued_before }) if *issued_before > 253_402_300_799 => {
                write!(f, "revoked: every token of its subject is revoked")
            }
            Revoked(Revocation::Subject { issued_before }) => write!(
                f,
                "revoked: its subject's tokens issued before {} are revoked",
                iso8601(*issued_before)
            ),
        }
    }
}

impl std::error::Error for Rejection {}

/// Bad key material or key set. Maps to SQLSTATE 22023.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl KeyError {
    pub fn new(msg: impl Into<String>) -> Self {
        KeyError(msg.into())
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

/// Attacker-chosen text made safe to show: printable ASCII only, at most 64 characters.
pub fn printable(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect();
    if s.chars().count() > 64 {
        out.push_str("...");
    }
    out
}

/// UTC timestamp for messages; avoids a date crate for one formatting need.
pub fn iso8601(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}+00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0), "1970-01-01 00:00:00+00");
        assert_eq!(iso8601(1_300_819_380), "2011-03-22 18:43:00+00");
        assert_eq!(iso8601(951_782_400), "2000-02-29 00:00:00+00");
    }

    #[test]
    fn printable_strips_controls_and_truncates() {
        assert_eq!(printable("a\nb\0c"), "a?b?c");
        assert_eq!(printable(&"x".repeat(100)).len(), 67);
    }
}
