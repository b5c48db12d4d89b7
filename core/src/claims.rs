//! Checks on the verified payload and the identity derived from it.
//!
//! jsonwebtoken leaves out most of these (docs/threat-model.md §1.5 item 3), so we do all of them
//! here on the parsed object: integer times, leeway, lifetime, exact issuer, audience type.

use crate::error::Rejection;
use crate::permissions::Permissions;
use crate::policy::Policy;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What a verified token grants, prepared once so accessors never parse JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub claims: Map<String, Value>,
    /// The role claim as found (None when absent); the extension applies the default role.
    pub role_claim: Option<RoleClaim>,
    pub sub: Option<String>,
    pub tenant: Option<String>,
    pub scopes: Vec<String>,
    pub jti: Option<String>,
    pub kid: Option<String>,
    pub exp: i64,
    /// `nbf` and `iat` as verified, kept so a cached token's time rules need no claim lookup.
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    /// The permissions claim, parsed; None when the token has no such claim.
    pub permissions: Option<Permissions>,
}

/// A role claim: one role name, or a list of them (Keycloak `realm_access.roles`, Cognito
/// `cognito:groups`, Okta `groups`, Entra `roles`) in the token's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RoleClaim {
    One(String),
    Many(Vec<String>),
}

impl RoleClaim {
    /// The role when the claim is a single string.
    pub fn single(&self) -> Option<&str> {
        match self {
            RoleClaim::One(r) => Some(r),
            RoleClaim::Many(_) => None,
        }
    }

    /// Every role the claim names, in the token's order.
    pub fn names(&self) -> Vec<&str> {
        match self {
            RoleClaim::One(r) => vec![r.as_str()],
            RoleClaim::Many(rs) => rs.iter().map(String::as_str).collect(),
        }
    }
}

impl From<RoleClaim> for Value {
    fn from(r: RoleClaim) -> Value {
        match r {
            RoleClaim::One(s) => Value::String(s),
            RoleClaim::Many(v) => Value::Array(v.into_iter().map(Value::String).collect()),
        }
    }
}

impl Identity {
    /// `claim(name)`: a top-level claim, or a JSON Pointer when the name starts with `/`.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        lookup(&self.claims, name)
    }

    /// A claim as text: strings as they are, other JSON as its text, null as None.
    pub fn claim_text(&self, name: &str) -> Option<String> {
        value_text(self.claim(name)?)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// Time rules again, for an identity verified earlier (a cached token): `exp`, `nbf` and
    /// the remaining lifetime are checked against `now`.
    pub fn still_valid(&self, policy: &Policy, now: i64) -> Result<(), Rejection> {
        times_in_bounds(self.exp, self.nbf, self.iat, policy, now)
    }
}

/// A claim for reading (`claim()` and friends): a path through the wrong shape is just absent.
pub(crate) fn lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    rule_lookup(claims, name).ok().flatten()
}

/// `lookup` for the claims a rule reads (role, tenant, permissions): Err when a JSON Pointer
/// runs through a value that cannot hold its next step (a string, number, boolean or null, or
/// an array asked for a member name). Such a token has the wrong shape, not a missing claim,
/// so it is refused instead of falling back to a default.
pub(crate) fn rule_lookup<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<Option<&'a Value>, Rejection> {
    if !name.starts_with('/') {
        return Ok(claims.get(name));
    }
    let (first, rest) = split_pointer(name);
    let Some(mut at) = claims.get(&first) else {
        return Ok(None);
    };
    for step in rest.split('/').skip(1) {
        let step = step.replace("~1", "/").replace("~0", "~");
        at = match at {
            Value::Object(members) => match members.get(&step) {
                Some(v) => v,
                None => return Ok(None),
            },
            Value::Array(items) if is_index(&step) => match step.parse::<usize>().ok().and_then(|i| items.get(i)) {
                Some(v) => v,
                None => return Ok(None),
            },
            _ => return Err(Rejection::BadClaimType(name.to_owned())),
        };
    }
    Ok(Some(at))
}

/// An RFC 6901 array index: `0`, or digits without a leading zero.
fn is_index(step: &str) -> bool {
    !step.is_empty() && step.bytes().all(|b| b.is_ascii_digit()) && (step == "0" || !step.starts_with('0'))
}

// "/a~1b/c" → ("a/b", "/c"): the first token unescaped, the rest left as a pointer.
fn split_pointer(pointer: &str) -> (String, &str) {
    let body = &pointer[1..];
    let end = body.find('/').unwrap_or(body.len());
    let first = body[..end].replace("~1", "/").replace("~0", "~");
    (first, &body[end..])
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Applies every claim rule and builds the identity.
pub fn check(
    claims: Map<String, Value>,
    key_issuer: Option<&str>,
    kid: Option<&str>,
    policy: &Policy,
    now: i64,
) -> Result<Identity, Rejection> {
    refuse_nul(&claims)?;
    let (exp, nbf, iat) = check_times(&claims, policy, now)?;
    check_issuer(&claims, key_issuer, policy)?;
    check_audience(&claims, policy)?;
    let role_claim = role_claim(&claims, &policy.role_claim)?;
    let sub = optional_string(&claims, "sub")?;
    let jti = optional_string(&claims, "jti")?;
    let tenant = match rule_lookup(&claims, &policy.tenant_claim)? {
        None => None,
        // Strings only: a number 42 and a string "42" would otherwise name the same tenant.
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(Rejection::BadClaimType(policy.tenant_claim.clone())),
    };
    let scopes = scopes(&claims)?;
    let permissions = match rule_lookup(&claims, &policy.permissions_claim)? {
        None => None,
        Some(v) => Some(Permissions::parse(v).map_err(|e| Rejection::BadPermission(e.to_string()))?),
    };
    Ok(Identity {
        claims,
        role_claim,
        sub,
        tenant,
        scopes,
        jti,
        kid: kid.map(str::to_owned),
        exp,
        nbf,
        iat,
        permissions,
    })
}

/// The role claim: a non-empty string, or a non-empty array of non-empty strings.
pub(crate) fn role_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<RoleClaim>, Rejection> {
    let bad = || Rejection::BadClaimType(name.to_owned());
    match rule_lookup(claims, name)? {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(RoleClaim::One(s.clone()))),
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| v.as_str().filter(|s| !s.is_empty()).map(str::to_owned).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()
            .map(|v| Some(RoleClaim::Many(v))),
        Some(_) => Err(bad()),
    }
}

pub(crate) fn optional_string(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(Rejection::BadClaimType(name.to_owned())),
    }
}

/// A NUL would truncate any C string we hand to PostgreSQL (E10).
pub(crate) fn refuse_nul(claims: &Map<String, Value>) -> Result<(), Rejection> {
    fn walk(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Array(a) => a.iter().any(walk),
            Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || walk(v)),
            _ => false,
        }
    }
    if claims.iter().any(|(k, v)| k.contains('\0') || walk(v)) {
        return Err(Rejection::NulInString);
    }
    Ok(())
}

/// An integer NumericDate. Floats, strings, booleans and negative values are refused
/// (CVE-2026-25537 class). Values beyond i64 are clamped so the lifetime check refuses them.
pub(crate) fn numeric_date(claims: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                if i < 0 {
                    return Err(Rejection::BadClaimType(name.into()));
                }
                Ok(Some(i))
            } else if n.is_u64() {
                Ok(Some(i64::MAX))
            } else {
                Err(Rejection::BadClaimType(name.into()))
            }
        }
        Some(_) => Err(Rejection::BadClaimType(name.into())),
    }
}

/// The time claims, read and checked: `exp`, then `nbf` and `iat` when present.
fn check_times(
    claims: &Map<String, Value>,
    policy: &Policy,
    now: i64,
) -> Result<(i64, Option<i64>, Option<i64>), Rejection> {
    let exp = numeric_date(claims, "exp")?.ok_or(Rejection::MissingClaim("exp"))?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    times_in_bounds(exp, nbf, iat, policy, now)?;
    Ok((exp, nbf, iat))
}

fn times_in_bounds(exp: i64, nbf: Option<i64>, iat: Option<i64>, policy: &Policy, now: i64) -> Result<(), Rejection> {
    exp_in_time(exp, policy, now)?;
    nbf_in_time(nbf, policy, now)?;
    iat_in_time(iat, policy, now)?;
    lifetime_in_bounds(exp, iat, policy, now)
}

pub(crate) fn exp_in_time(exp: i64, policy: &Policy, now: i64) -> Result<(), Rejection> {
    if i128::from(exp) + i128::from(policy.leeway) < i128::from(now) {
        return Err(Rejection::Expired { exp, now });
    }
    Ok(())
}

pub(crate) fn nbf_in_time(nbf: Option<i64>, policy: &Policy, now: i64) -> Result<(), Rejection> {
    match nbf {
        Some(nbf) if i128::from(nbf) > i128::from(now) + i128::from(policy.leeway) => {
            Err(Rejection::NotYetValid { nbf })
        }
        _ => Ok(()),
    }
}

pub(crate) fn iat_in_time(iat: Option<i64>, policy: &Policy, now: i64) -> Result<(), Rejection> {
    match iat {
        Some(iat) if i128::from(iat) > i128::from(now) + i128::from(policy.leeway) => {
            Err(Rejection::IssuedInFuture { iat })
        }
        _ => Ok(()),
    }
}

/// `exp - iat` within the longest lifetime, and `exp - now` within it plus the leeway.
pub(crate) fn lifetime_in_bounds(exp: i64, iat: Option<i64>, policy: &Policy, now: i64) -> Result<(), Rejection> {
    let max = i128::from(policy.max_lifetime);
    if let Some(iat) = iat {
        let lifetime = i128::from(exp) - i128::from(iat);
        if lifetime > max {
            return Err(Rejection::LifetimeTooLong {
                seconds: clamp(lifetime),
                max: policy.max_lifetime,
                from_profile: policy.from_profile.max_lifetime,
            });
        }
    }
    let remaining = i128::from(exp) - i128::from(now);
    if remaining > max + i128::from(policy.leeway) {
        return Err(Rejection::LifetimeTooLong {
            seconds: clamp(remaining),
            max: policy.max_lifetime,
            from_profile: policy.from_profile.max_lifetime,
        });
    }
    Ok(())
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `iss` is one string (RFC 7519), accepted only when it matches every configured source.
pub(crate) fn check_issuer(
    claims: &Map<String, Value>,
    key_issuer: Option<&str>,
    policy: &Policy,
) -> Result<(), Rejection> {
    if key_issuer.is_none() && policy.issuers.is_empty() {
        return Err(Rejection::NoIssuerConfigured);
    }
    let iss = match claims.get("iss") {
        None => return Err(Rejection::MissingClaim("iss")),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Rejection::BadClaimType("iss".into())),
    };
    let key_ok = key_issuer.is_none_or(|k| k == iss);
    let list_ok = policy.issuers.is_empty() || policy.issuers.iter().any(|i| i == iss);
    if key_ok && list_ok {
        Ok(())
    } else {
        // Issuers and audiences are public names, not secrets: say what came and what would do.
        // A key bound to another issuer is the first thing wrong: name that issuer.
        let accepted = match key_issuer {
            Some(k) if list_ok || !key_ok => vec![k.to_owned()],
            _ => policy.issuers.clone(),
        };
        Err(Rejection::IssuerNotAccepted {
            token: iss.to_owned(),
            accepted,
        })
    }
}

pub(crate) fn check_audience(claims: &Map<String, Value>, policy: &Policy) -> Result<(), Rejection> {
    let Some(aud) = claims.get("aud") else {
        if policy.audience.is_empty() {
            return Ok(());
        }
        return Err(Rejection::MissingClaim("aud"));
    };
    let values: Vec<&str> = match aud {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| Rejection::BadClaimType("aud".into())))
            .collect::<Result<_, _>>()?,
        _ => return Err(Rejection::BadClaimType("aud".into())),
    };
    if policy.audience.is_empty() {
        return Err(Rejection::AudienceUnexpected);
    }
    if values.iter().any(|v| policy.audience.iter().any(|a| a == v)) {
        Ok(())
    } else {
        Err(Rejection::AudienceNotAccepted {
            token: values.iter().map(|v| (*v).to_owned()).collect(),
            accepted: policy.audience.clone(),
            from_profile: policy.from_profile.audience,
        })
    }
}

/// `scope` as a space-separated string, or `scp` as an array of strings (or one string).
pub(crate) fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, Rejection> {
    let mut out = Vec::new();
    match claims.get("scope") {
        None => {}
        Some(Value::String(s)) => out.extend(s.split(' ').filter(|p| !p.is_empty()).map(str::to_owned)),
        Some(_) => return Err(Rejection::BadClaimType("scope".into())),
    }
    match claims.get("scp") {
        None => {}
        Some(Value::String(s)) => out.extend(s.split(' ').filter(|p| !p.is_empty()).map(str::to_owned)),
        Some(Value::Array(items)) => {
            for item in items {
                out.push(
                    item.as_str()
                        .ok_or_else(|| Rejection::BadClaimType("scp".into()))?
                        .to_owned(),
                );
            }
        }
        Some(_) => return Err(Rejection::BadClaimType("scp".into())),
    }
    Ok(out)
}
